"""benchmarks/privacy_utility.py: the tiny preset end to end, and its tables by hand."""

import json
import subprocess
import sys
from pathlib import Path

import numpy as np
import pandas as pd
import pytest

ROOT = Path(__file__).resolve().parents[2]
SCRIPT = ROOT / "benchmarks" / "privacy_utility.py"
ATTACKS = ["NN", "confidence", "entropy", "modified entropy", "loss", "grad_wrt_x_l1",
           "grad_wrt_x_l2", "grad_wrt_w_l1", "grad_wrt_w_l2"]


@pytest.fixture(scope="module")
def bench(benchmark_script):
    return benchmark_script("privacy_utility")


@pytest.fixture(scope="module")
def tiny(tmp_path_factory, location_data_home):
    """The --tiny preset (Location30, vanilla and RelaxLoss, 2 epochs), two jobs."""
    out = tmp_path_factory.mktemp("privacy_utility")
    done = subprocess.run(
        [sys.executable, str(SCRIPT), "--tiny", "--jobs", "2", "--out", str(out),
         "--data-home", str(location_data_home)],
        capture_output=True, text=True, timeout=300, cwd=ROOT,
    )
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out, done.stdout


def test_tiny_preset_writes_summary_results_and_plot(tiny):
    out, stdout = tiny
    assert (out / "privacy_utility.png").read_bytes()[:4] == b"\x89PNG"
    summary = pd.read_csv(out / "summary.csv")
    assert summary["method"].tolist() == ["vanilla", "relaxloss"]
    assert (summary["dataset"] == "location").all() and (summary["n_seeds"] == 1).all()
    for column in ("test_accuracy", "train_accuracy", "epsilon", "strongest_auc",
                   "best_tpr_at_0.1%fpr", *(f"{a}|{m}" for a in ATTACKS
                                           for m in ("accuracy", "auc", "tpr_at_0.1%fpr"))):
        assert f"{column}_mean" in summary and f"{column}_std" in summary, column
    assert summary["test_accuracy_mean"].between(0, 1).all()
    assert summary["epsilon_mean"].isna().all()  # no DP-SGD here

    results = pd.read_csv(out / "results.csv")
    assert len(results) == 2 * len(ATTACKS)
    assert set(results["attack"]) == set(ATTACKS)
    # the summary is the attack results, aggregated: strongest AUC = max over attacks
    for row in summary.itertuples():
        mine = results[results["method"] == row.method]
        assert row.strongest_auc_mean == pytest.approx(mine["auc"].max())
        assert row.test_accuracy_mean == pytest.approx(mine["test_accuracy"].iloc[0])
        assert row.strongest_attack in set(mine.loc[mine["auc"] == mine["auc"].max(), "attack"])

    markdown = (out / "summary.md").read_text()
    assert "**2 epochs instead of the paper's 120**" in markdown
    assert "| method | test acc | train acc | strongest AUC |" in markdown
    assert "| method | " + " | ".join(ATTACKS) + " |" in markdown
    assert "--tiny --jobs 2" in markdown and "wall time" in markdown
    assert markdown.split("### location")[1] in stdout
    assert not [w for w in json.loads((out / "warnings.json").read_text()) if w["from_skmia"]]


def test_second_call_reuses_every_run_and_attack(bench, tiny, location_data_home):
    out, _ = tiny
    marker = out / "runs" / "location" / "relaxloss" / "seed1000" / "complete.json"
    stamp = marker.stat().st_mtime_ns
    before = pd.read_csv(out / "summary.csv")
    bench.main(["--tiny", "--out", str(out), "--data-home", str(location_data_home)])
    assert marker.stat().st_mtime_ns == stamp
    pd.testing.assert_frame_equal(pd.read_csv(out / "summary.csv"), before)
    with pytest.raises(SystemExit, match="other settings"):
        bench.main(["--tiny", "--epochs", "3", "--out", str(out)])


def test_label_only_reruns_the_attacks_only(bench, tiny, location_data_home, tmp_path):
    import shutil

    out = tmp_path / "copy"
    shutil.copytree(tiny[0], out)
    marker = out / "runs" / "location" / "vanilla" / "seed1000" / "complete.json"
    stamp = marker.stat().st_mtime_ns
    bench.main(["--tiny", "--methods", "vanilla", "--label-only", "--out", str(out),
                "--data-home", str(location_data_home)])
    assert marker.stat().st_mtime_ns == stamp  # the training was reused
    results = pd.read_csv(out / "results.csv")
    assert set(results["attack"]) == {*ATTACKS, "label-only"}
    auc = results.loc[results["attack"] == "label-only", "auc"].item()
    assert 0 <= auc <= 1
    markdown = (out / "summary.md").read_text()
    assert "| method | " + " | ".join(ATTACKS) + " | label-only |" in markdown
    assert "label-only column reads predicted labels only" in markdown


def test_missing_archives_are_reported_not_downloaded(bench, tmp_path):
    assert "dataset_texas.tgz" in bench.missing_data("texas", tmp_path)
    (tmp_path / "dataset_purchase.tgz").write_bytes(b"")
    assert "random_r_purchase100.npy" in bench.missing_data("purchase", tmp_path)
    (tmp_path / "random_r_purchase100.npy").write_bytes(b"")
    assert bench.missing_data("purchase", tmp_path) is None
    assert bench.missing_data("texas-like", tmp_path) is None
    args = bench.parse_args(["--quick", "--datasets", "texas", "location", "--data-home",
                             str(tmp_path)])
    pairs, skipped = bench.plan(args)
    assert pairs == []
    assert any(s.startswith("dataset texas: neither dataset_texas.tgz") for s in skipped)
    assert any(s.startswith("dataset location:") for s in skipped)


def test_presets_and_scaled_schedule(bench):
    quick = bench.parse_args(["--quick"])
    assert quick.datasets == ("location", "purchase-like") and quick.methods is None
    assert quick.epochs == 20 and len(quick.seeds) == 2
    full = bench.parse_args(["--full", "--jobs", "4"])
    assert full.epochs is None and "texas" in full.datasets and full.threads == 1
    assert bench.parse_args(["--quick", "--epochs", "7"]).epochs == 7
    assert bench.scaled_schedule("relaxloss", "purchase-like", 20) == {"milestones": (8, 17)}
    assert bench.scaled_schedule("vanilla", "location", 2) == {"milestones": (1,)}
    assert bench.scaled_schedule("vanilla", "location", None) == {}
    with pytest.raises(SystemExit):
        bench.parse_args(["--quick", "--full"])


def _fake_results():
    rows = []
    for seed, (auc_loss, test_acc) in zip((1, 2), ((0.7, 0.5), (0.9, 0.7)), strict=True):
        for method, epoch in (("vanilla", None), ("early_stopping", 5),
                              ("early_stopping", None)):
            for attack, auc in (("NN", 0.6), ("loss", auc_loss)):
                rows.append({"dataset": "location", "method": method, "seed": seed,
                             "snapshot_epoch": epoch, "epsilon": None, "attack": attack,
                             "train_accuracy": 1.0, "test_accuracy": test_acc,
                             "accuracy": auc - 0.1, "auc": auc, "tpr_at_0.1%fpr": auc / 10,
                             "tpr_at_1%fpr": auc / 5})
    return pd.DataFrame(rows)


def test_tables_take_mean_and_std_over_seeds(bench):
    labelled = bench.label_rows(_fake_results())
    # early stopping: its snapshot only, never its final model
    assert sorted(set(labelled["label"])) == ["early_stopping@5", "vanilla"]
    runs = bench.per_run(labelled)
    assert len(runs) == 4
    assert runs["strongest_auc"].tolist() == [0.7, 0.7, 0.9, 0.9]
    summary = bench.summarize(runs)
    vanilla = summary.set_index("method").loc["vanilla"]
    assert vanilla["strongest_auc_mean"] == pytest.approx(0.8)
    assert vanilla["strongest_auc_std"] == pytest.approx(np.std([0.7, 0.9], ddof=1))
    assert vanilla["test_accuracy_mean"] == pytest.approx(0.6)
    assert vanilla["NN|auc_std"] == pytest.approx(0.0)
    assert vanilla["best_tpr_at_0.1%fpr_mean"] == pytest.approx(0.08)
    assert vanilla["strongest_attack"] == "loss"
    markdown = bench.markdown_tables(summary, ["NN", "loss"])
    assert "| vanilla | 0.600 ± 0.141 | 1.000 ± 0.000 | 0.800 ± 0.141 | loss |" in markdown
    assert "| vanilla | 0.50 ± 0.00 / 0.60 ± 0.00 | 0.70 ± 0.14 / 0.80 ± 0.14 |" in markdown
    assert "ε" not in markdown  # no DP-SGD row, no ε column
    fig = bench.privacy_utility_figure(summary)
    assert [ax.get_title() for ax in fig.axes] == ["location"]
    import matplotlib.pyplot as plt

    plt.close(fig)


def test_dpsgd_rows_get_an_epsilon_column(bench):
    results = _fake_results()
    results.loc[results["method"] == "vanilla", "method"] = "dpsgd"
    results.loc[results["method"] == "dpsgd", "epsilon"] = [2.0, 2.0, 4.0, 4.0]
    summary = bench.summarize(bench.per_run(bench.label_rows(results)))
    assert summary.set_index("method").loc["dpsgd", "epsilon_mean"] == pytest.approx(3.0)
    markdown = bench.markdown_tables(summary, ["NN", "loss"])
    assert "| method | test acc | train acc | ε |" in markdown
    assert "| dpsgd | 0.600 ± 0.141 | 1.000 ± 0.000 | 3 ± 1.4 |" in markdown
    assert bench._epsilon(float("inf"), float("nan")) == "∞"


def test_reference_model_attacks_get_their_own_table(bench):
    results = _fake_results()
    lira = results[results["attack"] == "loss"].copy()
    lira["attack"] = "LiRA online"
    lira["auc"], lira["tpr_at_0.1%fpr"], lira["tpr_at_1%fpr"] = 0.95, 0.2, 0.4
    summary = bench.summarize(bench.per_run(bench.label_rows(pd.concat([results, lira]))))
    markdown = bench.markdown_tables(summary, ["NN", "loss", "LiRA online"])
    assert "| method | LiRA online AUC | LiRA online TPR@0.1% | LiRA online TPR@1% |" in markdown
    assert "| vanilla | 0.950 ± 0.000 | 0.200 ± 0.000 | 0.400 ± 0.000 |" in markdown
    assert "ε" not in markdown.split("Reference-model attacks")[1]
    assert "RMIA" not in markdown  # it did not run
    assert "Reference-model attacks" not in bench.markdown_tables(
        bench.summarize(bench.per_run(bench.label_rows(results))), ["NN", "loss"])
    with pytest.raises(SystemExit):
        bench.parse_args(["--reference-models", "3"])
