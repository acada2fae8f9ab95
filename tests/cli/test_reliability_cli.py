"""Exit statuses and messages of bad values: a usage error (status 2) names its option,
before anything is trained or written; a bank too large is refused with its estimate
before any training; audit_model says when its non-members are its members."""

import numpy as np
import pytest

from skmia.cli import main


def _usage_error(capsys, argv):
    with pytest.raises(SystemExit) as info:
        main(argv)
    assert info.value.code == 2
    return capsys.readouterr().err


@pytest.mark.parametrize("command", [
    ["run", "--dataset", "purchase-like", "--method", "vanilla", "--mode", "defense"],
    ["audit", "--dataset", "purchase-like", "--methods", "vanilla"],
    ["split", "--dataset", "purchase-like"],
])
@pytest.mark.parametrize("seed", ["-1", "4294967296", "x"])
def test_a_bad_seed_is_a_usage_error_naming_the_option(capsys, tmp_path, command, seed):
    err = _usage_error(capsys, [*command, "--seed", seed, *(
        ["--out", str(tmp_path)] if command[0] != "split" else [])])
    assert f"argument --seed: must be an integer in 0 .. 4294967295, got '{seed}'" in err
    assert not any(tmp_path.iterdir())


def test_a_refused_method_option_leaves_no_folder(capsys, tmp_path):
    err = _usage_error(capsys, ["run", "--dataset", "purchase-like", "--method", "relaxloss",
                                "--alpha", "-1", "--mode", "defense", "--out", str(tmp_path)])
    assert "argument --alpha: The 'alpha' parameter of RelaxLossClassifier" in err
    assert not any(tmp_path.rglob("params.json"))  # main left params.json behind


def test_a_bank_too_large_is_a_usage_error_naming_the_option(capsys, monkeypatch, tmp_path):
    import types

    import torch

    from skmia.experiment import _run_bank as _bank

    target = types.SimpleNamespace(module_=torch.nn.Linear(1000, 1000))  # 4 MB of weights
    with pytest.raises(ValueError, match="1000000 reference models would take about") as info:
        _bank.check_bank_size(target, 10**6, 5000, tmp_path)
    assert info.value.option == "--reference-models"

    def refuse(*args, **kwargs):  # what the attack stage meets: the bank's estimate
        raise info.value

    monkeypatch.setattr("skmia.experiment.attack", refuse)
    status = main(["attack", "--target", str(tmp_path), "--shadow", str(tmp_path), "-q",
                   "--attacks", "lira", "--reference-models", "1000000"])
    err = capsys.readouterr().err
    assert status == 2  # main: 1, and the option was not named
    assert "skmia attack: error: argument --reference-models: 1000000 reference models" in err


def test_a_vectorised_bank_of_millions_is_refused_before_training():
    from skmia.defenses import VanillaClassifier
    from skmia.model_selection import ReferenceModels

    X, y = np.zeros((40, 3), np.float32), np.arange(40) % 2
    bank = ReferenceModels(VanillaClassifier(max_epochs=1), n_estimators=2_000_000,
                           vectorize=True)
    with pytest.raises(ValueError, match=r"n_estimators=2,000,000: the masks \(40 records x "
                                         r"2,000,000 models\) and the fitted models .* would "
                                         r"need 53.6 GiB"):
        bank.fit(X, y)  # main drew 2,000,000 masks and set up models: no estimate
    assert not hasattr(bank, "estimators_")


def test_audit_model_warns_when_non_members_are_members():
    from sklearn.linear_model import LogisticRegression

    from skmia.audit import audit_model

    rng = np.random.default_rng(0)
    X, y = rng.normal(size=(60, 4)), np.arange(60) % 2
    model = LogisticRegression().fit(X[:30], y[:30])
    with pytest.warns(UserWarning, match="12 of the 30 non-member records are also member "
                                         "records"):
        audit_model(model, X[:30], y[:30], np.r_[X[:12], X[42:]], np.r_[y[:12], y[42:]],
                    n_reference=0, attacks=["loss"])
    with pytest.warns(UserWarning, match="30 of the 30 population records are also member"):
        audit_model(model, X[:30], y[:30], X[30:], y[30:], population=(X[:30], y[:30]),
                    n_reference=0, attacks=["loss"])
