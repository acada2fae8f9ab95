"""DP-SGD: its accounting against independent values, its updates against plain SGD."""

import json
import pickle
import struct

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from opacus.accountants import PRVAccountant, RDPAccountant
from scipy.optimize import brentq
from scipy.stats import norm
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from skorch.callbacks import Callback
from torch import nn

from skmia.defenses import _dpsgd
from skmia.defenses._dpsgd import DPSGDClassifier, WeakPrivacyWarning
from skmia.experiment import RunConfig, load_estimator, save_estimator, train
from skmia.io._codec import _digest
from skmia.nn import MLP

DELTA = 1e-5
# 240 rows, batch 24: sample rate 0.1, 10 steps per epoch
NET = {"module__hidden_sizes": (16,)}
SMALL = {
    "batch_size": 24,
    "lr": 0.1,
    "milestones": (),
    "noise_multiplier": 2.0,
    "accountant": "rdp",
    "random_state": 0,
}


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(240, n_features=12, n_informative=8, n_classes=3,
                               random_state=0)
    return X.astype(np.float32), y


def accountant_epsilon(accountant_class, history, delta=DELTA):
    accountant = accountant_class()
    accountant.history = list(history)
    with np.errstate(all="ignore"):
        return accountant.get_epsilon(delta)


# ---------------------------------------------------------------------------- accounting


def test_epsilon_equals_opacus_prv_accountant(data):
    X, y = data
    clf = DPSGDClassifier(**NET, **{**SMALL, "accountant": "prv", "noise_multiplier": 1.0},
                          max_epochs=2).fit(X, y)
    assert (clf.noise_multiplier_, clf.sample_rate_, clf.n_steps_) == (1.0, 0.1, 20)
    assert clf.delta_ == DELTA
    assert clf.epsilon_ == pytest.approx(
        accountant_epsilon(PRVAccountant, [(1.0, 0.1, 20)]), rel=1e-9
    )
    assert clf.accountant_.history == [(1.0, 0.1, 20)]


def test_epsilon_after_each_epoch_equals_opacus_rdp_accountant(data):
    X, y = data
    clf = DPSGDClassifier(**NET, **SMALL, max_epochs=3).fit(X, y)
    expected = [accountant_epsilon(RDPAccountant, [(2.0, 0.1, 10 * e)]) for e in (1, 2, 3)]
    np.testing.assert_allclose(clf.history[:, "epsilon"], expected, rtol=1e-12)
    assert clf.epsilon_ == clf.history[-1, "epsilon"]


def test_full_batch_epsilon_matches_the_analytic_gaussian_mechanism(data):
    # q = 1: T Gaussian steps of noise sigma compose to one Gaussian mechanism with
    # mu = sqrt(T) / sigma, whose exact (eps, delta) curve is (Balle & Wang, 2018)
    # delta(eps) = Phi(-eps / mu + mu / 2) - e^eps Phi(-eps / mu - mu / 2)
    X, y = data
    sigma, steps = 2.0, 10
    clf = DPSGDClassifier(**NET, **{**SMALL, "accountant": "prv", "noise_multiplier": sigma,
                                    "batch_size": 1000}, max_epochs=steps).fit(X, y)
    assert (clf.sample_rate_, clf.n_steps_) == (1.0, steps)
    mu = np.sqrt(steps) / sigma

    def delta_of(eps):
        return norm.cdf(-eps / mu + mu / 2) - np.exp(eps) * norm.cdf(-eps / mu - mu / 2)

    exact = brentq(lambda eps: delta_of(eps) - DELTA, 0.0, 100.0)  # 7.511
    assert exact <= clf.epsilon_ <= exact + 0.02  # PRV's upper bound, eps_error 0.01
    rdp = accountant_epsilon(RDPAccountant, [(sigma, 1.0, steps)])
    assert clf.epsilon_ < rdp  # RDP is the looser bound


# the PRV search costs a few seconds per accountant call at q = 0.1: full batches there
@pytest.mark.parametrize("accountant, batch_size, q", [("rdp", 24, 0.1), ("prv", 1000, 1.0)])
def test_target_epsilon_is_reached_from_below(data, accountant, batch_size, q):
    X, y = data
    clf = DPSGDClassifier(**NET, **{**SMALL, "accountant": accountant, "batch_size": batch_size},
                          target_epsilon=3.0, max_epochs=2).fit(X, y)
    assert 2.95 <= clf.epsilon_ <= 3.0, clf.epsilon_
    assert clf.noise_multiplier_ != SMALL["noise_multiplier"]
    # the noise was chosen for these steps: the same accountant on the same steps agrees
    steps = clf.n_steps_
    assert steps == (20 if q < 1 else 2)
    accountant_class = PRVAccountant if accountant == "prv" else RDPAccountant
    expected = accountant_epsilon(accountant_class, [(clf.noise_multiplier_, q, steps)])
    assert clf.epsilon_ == pytest.approx(expected, rel=1e-9)


def test_partial_fit_continues_the_accountant_and_fit_restarts_it(data):
    X, y = data
    clf = DPSGDClassifier(**NET, **SMALL, max_epochs=2)
    clf.partial_fit(X, y)
    first = clf.epsilon_
    clf.partial_fit(X, y)
    assert clf.n_steps_ == 40 and len(clf.history) == 4
    assert clf.epsilon_ > first
    assert clf.epsilon_ == pytest.approx(
        accountant_epsilon(RDPAccountant, [(2.0, 0.1, 40)]), rel=1e-12
    )
    clf.fit(X, y)
    assert clf.n_steps_ == 20 and clf.epsilon_ == pytest.approx(first, rel=1e-12)
    clf.set_params(warm_start=True).fit(X, y)  # keeps the weights: keeps the accountant
    assert clf.n_steps_ == 40 and len(clf.history) == 4


# ---------------------------------------------------------------------------- updates


class _RecordBatches(Callback):
    """Keep the initial weights and every training batch of a fit."""

    def on_train_begin(self, net, **kwargs):
        self.initial = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}
        self.batches = []

    def on_batch_begin(self, net, batch, training, **kwargs):
        if training:
            self.batches.append((batch[0].clone(), batch[1].clone()))


def _hand_dp_sgd(recorder, max_grad_norm, expected_batch_size, lr):
    """Per-record gradients one record at a time, clipped, summed, / expected batch."""
    net = MLP(12, 3, hidden_sizes=(16,))
    net.load_state_dict(recorder.initial)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    for xb, yb in recorder.batches:
        total = [torch.zeros_like(p) for p in net.parameters()]
        for i in range(len(yb)):
            grads = torch.autograd.grad(
                F.cross_entropy(net(xb[i : i + 1]), yb[i : i + 1]), list(net.parameters())
            )
            norm_i = torch.sqrt(sum((g**2).sum() for g in grads))
            coef = min(1.0, max_grad_norm / (float(norm_i) + 1e-6))
            total = [t + coef * g for t, g in zip(total, grads, strict=True)]
        for p, t in zip(net.parameters(), total, strict=True):
            p.grad = t / expected_batch_size
        opt.step()
    return net


@pytest.mark.parametrize("mode", ["ghost", "hooks"])
def test_without_noise_or_clipping_the_updates_are_plain_sgd(data, mode):
    X, y = data
    recorder = _RecordBatches()
    clf = DPSGDClassifier(**NET, **{**SMALL, "noise_multiplier": 0.0}, max_grad_norm=1e6,
                          grad_sample_mode=mode, max_epochs=2,
                          callbacks=[("record", recorder)])
    with pytest.warns(WeakPrivacyWarning, match="epsilon = inf"):
        clf.fit(X, y)
    assert clf.grad_sample_mode_ == mode and np.isinf(clf.epsilon_)
    # plain SGD on the same batches: the batch-summed cross-entropy over the batch size
    net = MLP(12, 3, hidden_sizes=(16,))
    net.load_state_dict(recorder.initial)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    for xb, yb in recorder.batches:
        opt.zero_grad()
        (F.cross_entropy(net(xb), yb, reduction="sum") / 24).backward()
        opt.step()
    sizes = [len(b[1]) for b in recorder.batches]
    assert len(sizes) == 20 and len(set(sizes)) > 1, "Poisson batches vary in size"
    for ours, plain in zip(clf.module_.parameters(), net.parameters(), strict=True):
        torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["ghost", "hooks"])
def test_each_record_gradient_is_clipped(data, mode):
    X, y = data
    recorder = _RecordBatches()
    clf = DPSGDClassifier(**NET, **{**SMALL, "noise_multiplier": 0.0}, max_grad_norm=0.05,
                          grad_sample_mode=mode, max_epochs=1,
                          callbacks=[("record", recorder)])
    with pytest.warns(WeakPrivacyWarning):
        clf.fit(X, y)
    net = _hand_dp_sgd(recorder, max_grad_norm=0.05, expected_batch_size=24, lr=0.1)
    for ours, hand in zip(clf.module_.parameters(), net.parameters(), strict=True):
        torch.testing.assert_close(ours, hand, rtol=1e-4, atol=1e-6)


def test_ghost_clipping_and_per_record_gradients_agree(data):
    X, y = data
    ghost = DPSGDClassifier(**NET, **SMALL, max_grad_norm=0.1, max_epochs=2).fit(X, y)
    hooks = DPSGDClassifier(**NET, **SMALL, max_grad_norm=0.1, max_epochs=2,
                            grad_sample_mode="hooks").fit(X, y)
    assert (ghost.grad_sample_mode_, hooks.grad_sample_mode_) == ("ghost", "hooks")
    for p, q in zip(ghost.module_.parameters(), hooks.module_.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_first_ghost_pass_missing_a_layer_falls_back_to_the_full_pass(data, monkeypatch):
    X, y = data
    expected = DPSGDClassifier(**NET, **SMALL, max_epochs=1).fit(X, y)
    keep_output = _dpsgd._PrivateTraining._keep_output
    restarts = []
    start = DPSGDClassifier._start_private_training

    def skip_first_layer(self, layer, args, output):
        if getattr(layer, "in_features", None) != 12:
            keep_output(self, layer, args, output)

    def spy(self, n_rows, fast_norms=True):
        restarts.append(fast_norms)
        start(self, n_rows, fast_norms=fast_norms)

    monkeypatch.setattr(_dpsgd._PrivateTraining, "_keep_output", skip_first_layer)
    monkeypatch.setattr(DPSGDClassifier, "_start_private_training", spy)
    clf = DPSGDClassifier(**NET, **SMALL, max_epochs=1).fit(X, y)
    assert restarts == [True, False] and clf.n_steps_ == 10
    for p, q in zip(clf.module_.parameters(), expected.module_.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_noise_changes_the_updates_reproducibly(data):
    X, y = data
    a = DPSGDClassifier(**NET, **SMALL, max_epochs=1).fit(X, y)
    b = DPSGDClassifier(**NET, **SMALL, max_epochs=1).fit(X, y)
    c = DPSGDClassifier(**NET, **{**SMALL, "random_state": 1}, max_epochs=1).fit(X, y)
    for p, q in zip(a.module_.parameters(), b.module_.parameters(), strict=True):
        assert torch.equal(p, q)
    assert not all(
        torch.equal(p, q)
        for p, q in zip(a.module_.parameters(), c.module_.parameters(), strict=True)
    )


def test_empty_poisson_batches_are_noisy_steps(data):
    X, y = data
    # batch 1 of 240 rows: P(empty batch) = (1 - 1/240)^240 ~ 0.37
    clf = DPSGDClassifier(**NET, **{**SMALL, "batch_size": 1}, max_epochs=1).fit(X, y)
    sizes = [batch["train_batch_size"] for batch in clf.history[-1, "batches"]]
    assert sizes.count(0) > 50 and clf.n_steps_ == 240 == len(sizes)
    assert all(torch.isfinite(p).all() for p in clf.module_.parameters())
    assert np.isfinite(clf.history[-1, "train_loss"])


# ---------------------------------------------------------------------------- modules


class _WithBatchNorm(nn.Module):
    def __init__(self, n_features, n_classes):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features, 16), nn.BatchNorm1d(16), nn.ReLU())
        self.head = nn.Linear(16, n_classes)

    def forward(self, x):
        return self.head(self.body(x))


def test_batchnorm_is_replaced_and_the_model_trains(data):
    X, y = data
    clf = DPSGDClassifier(**{**SMALL, "noise_multiplier": 1.0}, module=_WithBatchNorm,
                          max_epochs=5).fit(X, y)
    norms = [m for m in clf.module_.modules() if isinstance(m, (nn.BatchNorm1d, nn.GroupNorm))]
    assert [(type(m), m.num_groups) for m in norms] == [(nn.GroupNorm, 1)]
    assert clf.score(X, y) > 0.6  # 3 classes: chance is 1/3


class _ConvWithBatchNorm(nn.Module):
    def __init__(self, n_classes):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, padding=1)
        self.bn = nn.BatchNorm2d(64)
        self.fc = nn.Linear(64, n_classes)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


def test_image_batchnorm_becomes_opacus_groupnorm():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(40, 3, 6, 6)).astype(np.float32)
    clf = DPSGDClassifier(**{**SMALL, "batch_size": 20}, module=_ConvWithBatchNorm,
                          max_epochs=1).fit(images, rng.integers(0, 2, 40))
    assert isinstance(clf.module_.bn, nn.GroupNorm) and clf.module_.bn.num_groups == 32
    assert clf.predict_proba(images).shape == (40, 2)


class _Tied(nn.Module):
    """One linear layer applied twice: ghost clipping cannot split its norm."""

    def __init__(self, n_features, n_classes):
        super().__init__()
        self.fc = nn.Linear(n_features, n_features)
        self.out = nn.Linear(n_features, n_classes)

    def forward(self, x):
        return self.out(torch.tanh(self.fc(torch.tanh(self.fc(x)))))


def test_auto_mode_falls_back_from_ghost_clipping(data):
    X, y = data
    auto = DPSGDClassifier(**SMALL, module=_Tied, max_epochs=1).fit(X, y)
    hooks = DPSGDClassifier(**SMALL, module=_Tied, max_epochs=1,
                            grad_sample_mode="hooks").fit(X, y)
    assert auto.grad_sample_mode_ == "hooks" and auto.n_steps_ == 10
    for p, q in zip(auto.module_.parameters(), hooks.module_.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    with pytest.raises(NotImplementedError, match="Ghost Clipping"):
        DPSGDClassifier(**SMALL, module=_Tied, max_epochs=1,
                        grad_sample_mode="ghost").fit(X, y)


def test_ghost_clipping_is_the_default(data):
    X, y = data
    clf = DPSGDClassifier(**NET, **SMALL, max_epochs=1).fit(X, y)
    assert clf.grad_sample_mode == "auto" and clf.grad_sample_mode_ == "ghost"


# ---------------------------------------------------------------------------- warnings


def test_reference_noise_gives_a_loud_warning(data):
    X, y = data
    clf = DPSGDClassifier(**NET, **{**SMALL, "noise_multiplier": 0.01}, max_epochs=2)
    with pytest.warns(WeakPrivacyWarning, match=r"epsilon = [0-9.e+]+ at delta = 1e-05"):
        clf.fit(X, y)
    assert clf.epsilon_ > 1e3


def test_delta_not_below_one_over_n_warns(data):
    X, y = data
    with pytest.warns(WeakPrivacyWarning, match="not below 1/n"):
        DPSGDClassifier(**NET, **SMALL, delta=0.01, max_epochs=1).fit(X, y)


# ---------------------------------------------------------------------------- estimator


def _has_opacus_state(module):
    for sub in module.modules():
        if sub._forward_hooks or sub._backward_hooks or hasattr(sub, "activations"):
            return True
        if hasattr(sub, "autograd_grad_sample_hooks"):
            return True
    return any(hasattr(p, "grad_sample") or hasattr(p, "summed_grad")
               for p in module.parameters())


def test_clone_pickle_and_no_training_machinery_left(data):
    X, y = data
    clf = DPSGDClassifier(**NET, **SMALL, max_epochs=2).fit(X, y)
    assert not _has_opacus_state(clf.module_)
    assert getattr(clf, "_private", None) is None
    restored = pickle.loads(pickle.dumps(clf))  # noqa: S301 - our own object
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X), rtol=1e-6)
    assert restored.epsilon_ == clf.epsilon_
    restored.partial_fit(X, y)  # training machinery is re-created
    assert restored.n_steps_ == 40
    fresh = clone(clf)
    assert fresh.get_params()["noise_multiplier"] == 2.0 and not hasattr(fresh, "epsilon_")


def test_grid_search(data):
    X, y = data
    search = GridSearchCV(DPSGDClassifier(**NET, **SMALL, max_epochs=2),
                          {"noise_multiplier": [1.5, 3.0]}, cv=2)
    search.fit(X, y)
    assert search.best_params_["noise_multiplier"] in (1.5, 3.0)
    assert search.best_estimator_.epsilon_ < 10


@pytest.mark.parametrize(
    "params, match",
    [
        ({"noise_multiplier": -1.0}, "noise_multiplier"),
        ({"noise_multiplier": float("inf")}, r"'noise_multiplier' .* \[0.0, inf\)\. Got inf"),
        ({"max_grad_norm": 0.0}, "max_grad_norm"),
        ({"delta": 1.0}, "delta"),
        ({"delta": 0.0}, "delta"),
        ({"target_epsilon": 0.0}, "target_epsilon"),
        ({"target_epsilon": -2.0}, "target_epsilon"),
        ({"accountant": "gdp"}, "accountant"),
        ({"grad_sample_mode": "fast"}, "grad_sample_mode"),
    ],
)
def test_bad_values(data, params, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        DPSGDClassifier(**NET, **{**SMALL, **params}, max_epochs=1).fit(X, y)


def test_unreachable_target_epsilon(data):
    X, y = data
    with pytest.raises(ValueError, match="no noise multiplier reaches target_epsilon"):
        DPSGDClassifier(**NET, **SMALL, target_epsilon=1e-7, max_epochs=1).fit(X, y)


# ---------------------------------------------------------------------------- saving


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
