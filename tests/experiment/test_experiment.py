"""End-to-end runs of the ``skmia`` command, tiny settings, real Location30 data.

Every method trained and attacked once (the module's ``runs``), then read back.
"""

import json

import numpy as np
import pandas as pd
import pytest
from experiment_helpers import BLACK_BOX, METHODS, run_dir, skmia

from skmia.cli import main
from skmia.experiment import load_run
from skmia.io._codec import _digest
from skmia.model_selection._split import load_split


@pytest.fixture(scope="module")
def runs(tmp_path_factory, location_data_home):
    """Every method trained and attacked (defense_attack), 2 epochs, one output root."""
    out = tmp_path_factory.mktemp("results")
    for method in METHODS:
        # the paper's sigma = 0.01 warns that it guarantees nothing: use a real one here
        extra = ("--noise-multiplier", {"dpsgd": 1.0, "dpsgd_hu": 2.0}[method]) if (
            method in ("dpsgd", "dpsgd_hu")) else ()
        status = skmia("run", "--dataset", "location", "--method", method, "--mode",
                       "defense_attack", "--epochs", 2, "--out", out, "--no-white-box",
                       "-q", "--data-home", location_data_home, *extra)
        assert status == 0, method
    return out


@pytest.mark.parametrize("method", METHODS)
def test_defense_attack_writes_a_complete_run(runs, method):
    folder = run_dir(runs, method)
    for name in ("params.json", "history.json", "model.safetensors", "model.json",
                 "complete.json"):
        assert (folder / name).is_file(), name
    for name in ("results.csv", "results.json", "roc.png", "loss_hist.png", "complete.json"):
        assert (folder / "attack" / name).is_file(), name
    assert (folder / "attack" / "roc.png").read_bytes()[:4] == b"\x89PNG"
    results = pd.read_csv(folder / "attack" / "results.csv")
    final = results[results["snapshot_epoch"].isna()]
    assert final["attack"].tolist() == BLACK_BOX
    assert final["auc"].between(0, 1).all() and final["accuracy"].between(0, 1).all()
    assert (final["shadow_method"] == "vanilla").all()
    history = json.loads((folder / "history.json").read_text())
    assert len(history) == 2 and "train_loss" in history[0]
    # the shadow was trained once, by vanilla, and reused by every method
    assert (runs / "location" / "vanilla" / "seed1000" / "shadow" / "complete.json").is_file()


def test_early_stopping_attacks_every_snapshot(runs):
    results = pd.read_csv(run_dir(runs, "early_stopping") / "attack" / "results.csv")
    assert sorted(results["snapshot_epoch"].dropna().unique()) == [2.0]
    assert len(results) == 2 * len(BLACK_BOX)


def test_snapshots_share_the_attacks_fitted_once_on_the_shadow(runs, monkeypatch):
    from skmia.attacks import NNAttack

    folder = run_dir(runs, "early_stopping")
    before = (folder / "attack" / "results.csv").read_bytes()
    real_fit, fits = NNAttack.fit, []

    def counted(self, *args, **kwargs):
        fits.append(self)
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(NNAttack, "fit", counted)
    shadow = runs / "location" / "vanilla" / "seed1000" / "shadow"
    assert skmia("attack", "--target", folder, "--shadow", shadow, "--no-white-box",
                 "-q") == 0
    assert len(fits) == 1  # not once per snapshot
    # the same rows as when each snapshot refitted its own (identically seeded) attacks
    assert (folder / "attack" / "results.csv").read_bytes() == before


def test_reloaded_run_predicts_what_the_attacks_saw(runs, location_data_home):
    model, params = load_run(run_dir(runs, "relaxloss"))
    again, _ = load_run(run_dir(runs, "relaxloss"))
    split = load_split("location", 1000, location_data_home)
    X, y = split.target_train
    np.testing.assert_array_equal(model.predict_proba(X), again.predict_proba(X))
    results = pd.read_csv(run_dir(runs, "relaxloss") / "attack" / "results.csv")
    assert results["train_accuracy"].iloc[0] == pytest.approx(model.score(X, y))
    assert params["method"] == "relaxloss" and params["seed"] == 1000
    np.testing.assert_array_equal(model.train_indices_, np.arange(len(y)))


def test_attack_command_reproduces_the_results(runs, capsys):
    folder = run_dir(runs, "label_smoothing")
    before = pd.read_csv(folder / "attack" / "results.csv")
    shadow = runs / "location" / "vanilla" / "seed1000" / "shadow"
    assert skmia("attack", "--target", folder, "--shadow", shadow, "--no-white-box", "-q") == 0
    after = pd.read_csv(folder / "attack" / "results.csv")
    pd.testing.assert_frame_equal(before, after)
    assert "| label_smoothing |" in capsys.readouterr().out


def test_report(runs, capsys):
    assert skmia("report", runs) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].startswith("| dataset | method | seed |")
    for method in ("vanilla", "relaxloss", "distillation"):
        assert any(f"| {method} |" in line for line in lines)
    assert skmia("report", runs, "--format", "csv") == 0
    table = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert set(table["attack"]) == set(BLACK_BOX)
    assert len(table) == (len(METHODS) + 1) * len(BLACK_BOX)  # + early stopping's snapshot
    epsilon = table.loc[table["method"] == "dpsgd", "epsilon"]
    assert (epsilon > 0).all() and np.isfinite(epsilon).all()
    assert table.loc[table["method"] == "vanilla", "epsilon"].isna().all()


def test_tampered_model_is_refused(runs, capsys):
    source = run_dir(runs, "vanilla")
    target = runs / "tampered"
    target.mkdir()
    for name in ("params.json", "complete.json", "model.safetensors"):
        (target / name).write_bytes((source / name).read_bytes())
    doc = json.loads((source / "model.json").read_text())
    doc["params"]["lr"] = {"value": 1.0}
    (target / "model.json").write_text(json.dumps(doc))
    assert main(["attack", "--target", str(target), "--shadow", str(source / "shadow")]) == 1
    assert "has been modified" in capsys.readouterr().err
    doc["skmia_version"] = "0.0.0"
    doc["digest"] = _digest(doc)
    (target / "model.json").write_text(json.dumps(doc))
    assert main(["attack", "--target", str(target), "--shadow", str(source / "shadow")]) == 1
    assert "saved by skmia 0.0.0" in capsys.readouterr().err
