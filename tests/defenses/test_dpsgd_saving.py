"""DP-SGD's saved models and runs: no file holds the noise seed, a loaded model continues
its accountant with fresh noise, the noise is secure."""

import json
import struct

import dpsgd_fixtures
import numpy as np
import pytest
import torch
from dpsgd_fixtures import NET, SMALL
from sklearn.datasets import make_classification

from skmia.defenses import _dpsgd
from skmia.defenses._dpsgd import DPSGDClassifier, WeakPrivacyWarning
from skmia.experiment import RunConfig, load_estimator, save_estimator, train
from skmia.io._codec import _digest

# fixtures shared with the other files split from test_dpsgd.py, bound here by name
# (a nested conftest.py would break --doctest-modules)
data = dpsgd_fixtures.data


def files_holding(folder, seed):
    """The files under ``folder`` whose bytes hold ``seed`` (as decimal text or as an
    int64) or the name of the attribute that keeps it."""
    needles = (str(seed).encode(), struct.pack("<q", seed), b"training_seed")
    return sorted(str(path.relative_to(folder)) for path in folder.rglob("*")
                  if path.is_file() and any(n in path.read_bytes() for n in needles))


def test_no_saved_file_holds_the_noise_seed(tmp_path, data):
    X, y = data
    clf = DPSGDClassifier(**NET, **SMALL, max_epochs=2).fit(X, y)
    save_estimator(clf, tmp_path)
    assert files_holding(tmp_path, clf.training_seed_) == []
    # a file that holds it anyway (written by hand, or by an older skmia) is refused
    path = tmp_path / "model.json"
    doc = json.loads(path.read_text())
    doc["fitted"]["training_seed_"] = {"value": clf.training_seed_}
    doc["digest"] = _digest(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="'fitted.training_seed_' holds the seed of "
                                         "DPSGDClassifier's noise"):
        load_estimator(tmp_path)


def test_no_file_of_a_finished_dp_run_holds_the_noise_seed(tmp_path, monkeypatch,
                                                           location_data_home):
    seeds = []
    setup = DPSGDClassifier._setup

    def recording_setup(self, X, y, classes=None):
        X, y = setup(self, X, y, classes=classes)
        seeds.append(self.training_seed_)
        return X, y

    monkeypatch.setattr(DPSGDClassifier, "_setup", recording_setup)
    config = RunConfig(dataset="location", method="dpsgd", epochs=1, verbose=0,
                       overrides={"noise_multiplier": 1.0}, out=str(tmp_path),
                       data_home=str(location_data_home))
    folder = train(config)
    assert len(seeds) == 1
    names = {path.name for path in folder.rglob("*") if path.is_file()}
    assert {"params.json", "history.json", "model.json", "model.safetensors"} <= names
    assert files_holding(tmp_path, seeds[0]) == []
    assert load_estimator(folder).training_seed_ != seeds[0]


def test_a_loaded_model_continues_the_accountant_with_fresh_noise(tmp_path, data):
    X, y = data
    clf = DPSGDClassifier(**NET, **SMALL, max_epochs=2).fit(X, y)
    save_estimator(clf, tmp_path)
    loaded = load_estimator(tmp_path)
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), rtol=1e-6)
    assert loaded.n_steps_ == clf.n_steps_ == 20 and loaded.epsilon_ == clf.epsilon_
    assert loaded.accountant_.history == clf.accountant_.history
    assert loaded.accountant_.mechanism() == "rdp"
    # the seed of the noise is drawn afresh at each load, never the saved model's
    assert loaded.training_seed_ != clf.training_seed_
    assert load_estimator(tmp_path).training_seed_ != loaded.training_seed_
    clf.partial_fit(X, y)
    loaded.partial_fit(X, y)
    # the same 20 more steps, accounted alike ...
    assert loaded.n_steps_ == clf.n_steps_ == 40
    assert loaded.accountant_.history == clf.accountant_.history
    assert loaded.epsilon_ == pytest.approx(clf.epsilon_) and loaded.epsilon_ > 0
    assert len(loaded.history) == 4
    # ... with other noise and other Poisson batches than the unsaved model draws
    assert not np.allclose(loaded.predict_proba(X), clf.predict_proba(X))


def test_secure_noise_is_not_replayable_from_random_state(monkeypatch):
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6)).astype(np.float32)
    y = rng.integers(0, 3, 120)
    settings = {"max_epochs": 2, "module__hidden_sizes": (8,), "noise_multiplier": 1.0,
                "random_state": 0}

    def weights(clf):
        return torch.cat([p.detach().flatten() for p in clf.module_.parameters()])

    plain = [DPSGDClassifier(**settings).fit(X, y) for _ in range(2)]
    assert torch.equal(weights(plain[0]), weights(plain[1]))  # replayable: random_state
    secure = [DPSGDClassifier(**settings, secure_noise=True).fit(X, y) for _ in range(2)]
    assert not torch.equal(weights(secure[0]), weights(secure[1]))
    assert secure[0].training_seed_ != plain[0].training_seed_
    assert secure[0].init_seed_ == plain[0].init_seed_  # the initial weights still follow it
    # the only difference is the seed: with the same "fresh" seed, the same fit
    monkeypatch.setattr(_dpsgd, "fresh_seed", lambda: 42)
    again = [DPSGDClassifier(**settings, secure_noise=True).fit(X, y) for _ in range(2)]
    assert torch.equal(weights(again[0]), weights(again[1]))
    assert again[0].epsilon_ == plain[0].epsilon_


def test_dp_runs_use_secure_noise(tmp_path, location_data_home):
    from skmia.experiment import RunConfig
    from skmia.experiment._config import estimator as _estimator

    config = RunConfig(dataset="location", method="dpsgd", out=str(tmp_path))
    assert _estimator(config, "dpsgd").secure_noise is True
    assert "secure_noise" not in _estimator(config, "vanilla").get_params()


def test_in_place_noise_gives_opacus_optimizer_model(monkeypatch):
    # the fast path's optimizer draws the same noise in the same order as opacus' own
    # (it only drops its copies), so a seeded training gives the same weights exactly
    from opacus.optimizers import DPOptimizerFastGradientClipping

    from skmia.defenses import _dp_clipping

    X, y = make_classification(300, n_features=10, n_informative=6, n_classes=3,
                               random_state=0)
    X = X.astype(np.float32)
    params = {"noise_multiplier": 1.0, "max_epochs": 2, "random_state": 0,
              "module__hidden_sizes": (16, 8), "accountant": "rdp", "batch_size": 32}
    ours = DPSGDClassifier(**params).fit(X, y)
    monkeypatch.setattr(_dp_clipping, "_InPlaceNoiseOptimizer",
                        DPOptimizerFastGradientClipping)
    theirs = DPSGDClassifier(**params).fit(X, y)
    for a, b in zip(ours.module_.parameters(), theirs.module_.parameters(), strict=True):
        assert torch.equal(a, b)
    with pytest.warns(WeakPrivacyWarning, match="epsilon = inf"):  # no noise
        quiet = DPSGDClassifier(**{**params, "noise_multiplier": 0.0}).fit(X, y)
    assert not torch.equal(next(quiet.module_.parameters()), next(ours.module_.parameters()))
