"""skmia compare: several methods on one split, side by side, from their runs' results."""

import contextlib
import io
import time

import numpy as np
import pandas as pd
import pytest

from skmia.cli import main
from skmia.experiment import COMPARE_COLUMNS, RunConfig, compare
from skmia.experiment._compare import _summary


def _printed_table(text):
    """The markdown table that skmia compare printed, as rows of strings."""
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    rows = [[cell.strip() for cell in line.strip("|").split("|")] for line in lines[2:]]
    return pd.DataFrame(rows, columns=header)


def _files(root):
    """mtime of every model and attack result below ``root``."""
    return {str(p): p.stat().st_mtime_ns for pattern in ("model.safetensors", "results.csv")
            for p in sorted(root.rglob(pattern))}


@pytest.fixture(scope="module")
def compared(location_data_home, tmp_path_factory):
    """Two tiny real runs through the CLI, twice; what each call printed and took."""
    out = tmp_path_factory.mktemp("compare") / "results"
    argv = ["compare", "--dataset", "location", "--methods", "vanilla,relaxloss",
            "--epochs", "2", "--no-white-box", "-q", "--out", str(out),
            "--data-home", str(location_data_home)]
    calls = []
    for _ in range(2):
        start = time.perf_counter()
        buffer = io.StringIO()
        with contextlib.redirect_stdout(buffer):
            status = main(argv)
        calls.append({"status": status, "out": buffer.getvalue(),
                      "seconds": time.perf_counter() - start, "files": _files(out)})
    return out, argv, calls


def test_one_row_per_method_with_the_runs_numbers(compared):
    out, _, calls = compared
    assert calls[0]["status"] == 0
    table = _printed_table(calls[0]["out"])
    assert list(table["method"]) == ["vanilla", "relaxloss"]
    for _, row in table.iterrows():
        results = pd.read_csv(out / "location" / row["method"] / "seed1000" / "attack"
                              / "results.csv")
        assert len(results) == 5  # the reference code's black-box attacks
        strongest = results.loc[results["auc"].idxmax()]
        best_tpr = results.loc[results["tpr_at_1%fpr"].idxmax()]
        assert row["strongest_attack"] == strongest["attack"]
        assert row["auc"] == f"{strongest['auc']:.4f}"
        assert row["tpr_attack"] == best_tpr["attack"]
        # the TPR with its 95 % Clopper-Pearson interval, as results.csv holds them
        assert row["tpr_at_1%fpr"] == (f"{best_tpr['tpr_at_1%fpr']:.4f} "
                                       f"[{best_tpr['tpr_at_1%fpr_low']:.4f}, "
                                       f"{best_tpr['tpr_at_1%fpr_high']:.4f}]")
        assert row["train_accuracy"] == f"{results['train_accuracy'].iloc[0]:.4f}"
        assert row["test_accuracy"] == f"{results['test_accuracy'].iloc[0]:.4f}"
        assert "empirical_epsilon" not in row  # one model's records prove no ε
    # no LiRA ran and no method is DP-SGD: those columns are left out of the print
    assert "lira_auc" not in table and "epsilon" not in table
    assert "runs in " in calls[0]["out"]
    assert str(out / "location" / "relaxloss" / "seed1000") in calls[0]["out"]


def test_a_second_call_reuses_the_runs_and_their_attacks(compared):
    _, _, (first, second) = compared
    assert second["status"] == 0
    assert first["files"] and second["files"] == first["files"]  # nothing trained or attacked
    assert _printed_table(second["out"]).equals(_printed_table(first["out"]))
    assert second["seconds"] < first["seconds"] / 2


def test_other_attacks_are_run_not_reused(compared):
    out, argv, calls = compared
    config = RunConfig(dataset="location", method="vanilla", epochs=2, white_box=True,
                       verbose=0, out=str(out), data_home=argv[-1])
    table = compare(config, ["vanilla"])
    assert table.attrs["reused"] == {"vanilla": False}
    results = pd.read_csv(out / "location" / "vanilla" / "seed1000" / "attack" / "results.csv")
    assert "grad_wrt_w_l2" in set(results["attack"])  # attacked again, white-box this time
    assert table["auc"].iloc[0] == results["auc"].max()
    models = {k: v for k, v in _files(out).items() if k.endswith("model.safetensors")}
    assert models == {k: v for k, v in calls[0]["files"].items() if k in models}
    again = compare(config, ["vanilla"])
    assert again.attrs["reused"] == {"vanilla": True}
    assert again.equals(table)


def test_unknown_method_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--dataset", "location", "--methods", "vanilla,relaxlos"])
    assert exc.value.code == 2
    err = capsys.readouterr().err
    assert "relaxlos" in err and "relaxloss" in err and "early_stopping" in err


@pytest.mark.parametrize(("methods", "overrides", "message"), [
    (["vanilla", "nope"], {}, "unknown method"),
    (["vanilla", "vanilla"], {}, "given twice"),
    ([], {}, "at least one"),
    (["relaxloss"], {"alpha": 0.5}, "overrides"),
])
def test_bad_arguments_are_refused(methods, overrides, message, tmp_path):
    config = RunConfig(dataset="location", method="vanilla", overrides=overrides,
                       out=str(tmp_path))
    with pytest.raises(ValueError, match=message):
        compare(config, methods)
    assert not any(tmp_path.iterdir())


def test_summary_of_hand_made_results():
    nan = float("nan")
    rows = [
        # attack, snapshot, auc, tpr_at_1%fpr, empirical epsilon (of older results)
        ("loss", 10.0, 0.99, 0.90, 5.0),  # a snapshot: never counts
        ("loss", nan, 0.80, 0.02, 0.3),
        ("NN", nan, 0.70, 0.05, 0.9),
        ("LiRA online", nan, 0.75, 0.04, 0.6),
    ]
    results = pd.DataFrame(
        [{"attack": a, "snapshot_epoch": e, "auc": auc, "tpr_at_1%fpr": tpr,
          "empirical_epsilon": eps, "train_accuracy": 0.9, "test_accuracy": 0.6,
          "epsilon": 8.0} for a, e, auc, tpr, eps in rows]
    )
    row = _summary("dpsgd", results, "somewhere")
    assert list(row) == list(COMPARE_COLUMNS)
    assert row["strongest_attack"] == "loss" and row["auc"] == 0.80
    assert row["tpr_attack"] == "NN" and row["tpr_at_1%fpr"] == 0.05
    assert row["lira_auc"] == 0.75 and row["lira_tpr_at_1%fpr"] == 0.04
    assert row["epsilon"] == 8.0 and "empirical_epsilon" not in row
    assert row["epsilon_note"] is None  # 8 is a meaningful epsilon
    assert _summary("dpsgd", results.assign(epsilon=5.3e6), "x")["epsilon_note"] == "vacuous"
    assert (row["train_accuracy"], row["test_accuracy"]) == (0.9, 0.6)
    no_lira = _summary("vanilla", results[results["attack"] != "LiRA online"]
                       .assign(epsilon=nan), "somewhere")
    assert np.isnan(no_lira["lira_auc"]) and np.isnan(no_lira["epsilon"])
