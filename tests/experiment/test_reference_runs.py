"""Reference-model attacks in runs: ``skmia run/attack --attacks ... --reference-models K``
trains the bank in the run directory, reuses it, grows it, and adds rows to the results."""

import json
import re

import numpy as np
import pandas as pd
import pytest
from safetensors.numpy import load_file

from skmia.attacks import CALIBRATED_ATTACKS
from skmia.cli import main
from skmia.experiment import load_estimator

LABELS = [label for label, _ in CALIBRATED_ATTACKS.values()]


def skmia(*args):
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def run(tmp_path_factory, location_data_home):
    out = tmp_path_factory.mktemp("results")
    args = ("run", "--dataset", "location", "--method", "vanilla", "--mode", "defense_attack",
            "--epochs", 3, "--out", out, "--no-white-box", "-q", "--data-home",
            location_data_home, "--attacks", "all", "--reference-models", 4, "--jobs", 2)
    assert skmia(*args) == 0
    return out / "location" / "vanilla" / "seed1000", args


def test_the_bank_is_saved_with_the_run(run):
    folder, _ = run
    bank_dir = folder / "reference"
    assert sorted(p.name for p in bank_dir.iterdir()) == [
        "complete.json", "model.json", "model.safetensors"]
    assert json.loads((bank_dir / "complete.json").read_text())["n_models"] == 4
    bank = load_estimator(bank_dir)
    assert len(bank.estimators_) == 4
    np.testing.assert_array_equal(bank.in_mask_.sum(axis=1), 2)
    # the pool is the target's members and non-members: 1,002 + 1,002 Location30 rows
    assert bank.in_mask_.shape == (2004, 4)
    assert bank.estimators_[0].get_params()["max_epochs"] == 3


def test_results_hold_every_calibrated_attack(run):
    folder, _ = run
    results = pd.read_csv(folder / "attack" / "results.csv")
    assert results["attack"].tolist()[-len(LABELS):] == LABELS
    for column in ("tpr_at_0.01%fpr", "tpr_at_0.1%fpr", "tpr_at_1%fpr"):
        assert column in results
    assert "empirical_epsilon" not in results  # one model's records prove no ε
    new = results.set_index("attack").loc[LABELS]
    assert new["auc"].between(0, 1).all() and new["accuracy"].between(0, 1).all()
    # 1,002 non-members cannot measure an FPR of 0.01 %: NaN, not a made-up number
    assert new["tpr_at_0.01%fpr"].isna().all()
    rows = json.loads((folder / "attack" / "results.json").read_text())["rows"]
    assert [r["attack"] for r in rows][-len(LABELS):] == LABELS


def test_a_second_run_reuses_the_bank_and_a_larger_k_grows_it(run):
    folder, args = run
    weights = folder / "reference" / "model.safetensors"
    before = weights.stat().st_mtime_ns
    first = load_file(weights)
    assert skmia(*args) == 0
    assert weights.stat().st_mtime_ns == before  # reused, not retrained
    grown = [*args[:-4], "--reference-models", 6, "--jobs", 2]
    assert skmia(*grown) == 0
    bank = load_estimator(folder / "reference")
    assert len(bank.estimators_) == 6
    after = load_file(weights)
    for key, value in first.items():  # the first four models are kept as they were
        if key.startswith("bank."):
            np.testing.assert_array_equal(after[key], value)
    np.testing.assert_array_equal(after["in_mask_"][:, :4], first["in_mask_"])
    np.testing.assert_array_equal(bank.in_mask_.sum(axis=1), 3)


def test_skmia_attack_runs_them_on_an_existing_run(run, capsys):
    folder, _ = run
    status = skmia("attack", "--target", folder, "--shadow", folder / "shadow",
                   "--no-white-box", "-q", "--attacks", "lira,attack_p",
                   "--reference-models", 4)
    assert status == 0
    printed = capsys.readouterr().out
    assert "LiRA online" in printed and "Attack-P" in printed
    results = pd.read_csv(folder / "attack" / "results.csv")
    # the two attacks run again, then the rows of the run's --attacks all that this
    # call did not recompute: kept, never dropped (issue 20)
    names = results["attack"].tolist()
    assert names.index("Attack-P") == names.index("LiRA online") + 1
    assert set(LABELS) <= set(names) and len(names) == len(set(names))
    assert names.index("Attack-P") < names.index("RMIA offline")


@pytest.mark.parametrize(("extra", "message"), [
    (("--attacks", "lira"), "--attacks lira needs --reference-models K"),
    (("--attacks", "lira", "--reference-models", "3"), "must be an even number >= 2, got 3"),
    (("--attacks", "lira,bogus", "--reference-models", "4"), "unknown attack.*bogus"),
])
def test_bad_options_are_usage_errors(extra, message, capsys):
    with pytest.raises(SystemExit) as exit_:
        skmia("run", "--dataset", "location", "--method", "vanilla", "--mode", "attack",
              *extra)
    assert exit_.value.code == 2
    assert re.search(message, capsys.readouterr().err)


def test_an_interrupted_bank_keeps_its_finished_rounds_and_grows_from_there(
        run, tmp_path, monkeypatch, capsys):
    import shutil

    import torch

    from skmia.model_selection import ReferenceModels

    folder, _ = run
    copy = tmp_path / "location" / "vanilla" / "seed1000"
    shutil.copytree(folder, copy, ignore=shutil.ignore_patterns("reference", "attack"))
    real_fit, rounds = ReferenceModels.fit, []

    def fit_then_ctrl_c(self, *args, **kwargs):
        rounds.append(self.n_estimators)
        if len(rounds) == 2:
            raise KeyboardInterrupt
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(ReferenceModels, "fit", fit_then_ctrl_c)
    attack = ("attack", "--target", copy, "--shadow", copy / "shadow", "--no-white-box",
              "-q", "--attacks", "lira", "--reference-models", 4)
    assert skmia(*attack) == 130
    assert "reference/ keeps the reference models of the rounds that finished" in (
        capsys.readouterr().err)
    assert rounds == [2, 4]  # one job: rounds of a pair of models
    assert json.loads((copy / "reference" / "complete.json").read_text())["n_models"] == 2
    assert len(load_estimator(copy / "reference").estimators_) == 2
    assert not (copy / "attack" / "complete.json").exists()

    monkeypatch.setattr(ReferenceModels, "fit", real_fit)
    assert skmia(*attack) == 0
    resumed, whole = load_estimator(copy / "reference"), load_estimator(folder / "reference")
    assert len(resumed.estimators_) == 4
    # the bank trained in two rounds, across an interruption, is the one trained at once
    np.testing.assert_array_equal(resumed.in_mask_, whole.in_mask_[:, :4])
    for mine, theirs in zip(resumed.estimators_, whole.estimators_[:4], strict=True):
        for (name, a), b in zip(mine.module_.state_dict().items(),
                                theirs.module_.state_dict().values(), strict=True):
            assert torch.equal(a, b), name


@pytest.mark.parametrize(("n_models", "jobs", "keep", "expected"), [
    (16, 1, 0.5, 2),   # pairs, eight rounds
    (16, 2, 0.5, 2),   # two jobs train a pair at once
    (16, 3, 0.5, 4),   # three jobs: whole pairs, so four
    (64, 2, 0.5, 8),   # never more than eight rounds
    (6, 1, 1 / 3, 3),  # keep = 1/3: blocks of three models
])
def test_bank_rounds_are_whole_blocks_of_the_masks(n_models, jobs, keep, expected):
    from skmia.experiment._run_bank import _bank_round

    assert _bank_round(n_models, jobs, keep) == expected


@pytest.mark.parametrize(("n_models", "jobs", "expected"), [
    (4, 1, 2),    # pairs still: an interrupted bank keeps its first pair
    (16, 1, 4),   # four rounds of a batched network
    (64, 2, 16),
])
def test_batched_bank_rounds_are_at_most_four(n_models, jobs, expected):
    from skmia.experiment._run_bank import _bank_round

    assert _bank_round(n_models, jobs, 0.5, batched=True) == expected
