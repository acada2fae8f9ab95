"""Every table and figure shows every run and every row (issue 20, section 3)."""

import contextlib
import io
import os
import re
import subprocess
import sys
import warnings

import pandas as pd
import pytest
from test_html_report import _parse  # its folder is on sys.path (pytest's prepend mode)

from skmia._rundir import CONTEXT_COLUMNS, RESULT_COLUMNS
from skmia.cli import main
from skmia.report import privacy_utility_figure

TINY = ["--dataset", "location", "--epochs", "2", "--no-white-box"]


def _call(argv):
    """``(status, stdout, stderr)`` of the skmia command run in this process."""
    out, err = io.StringIO(), io.StringIO()
    with contextlib.redirect_stdout(out), contextlib.redirect_stderr(err):
        status = main(argv)
    return status, out.getvalue(), err.getvalue()


def _header(text):
    """The columns of the first markdown table in ``text``."""
    line = next(line for line in text.splitlines() if line.startswith("|"))
    return [cell.strip() for cell in line.strip("|").split("|")]


@pytest.fixture(scope="module")
def attacked(location_data_home, tmp_path_factory):
    """compare (with progress output), then attack with calibrated attacks, then compare
    again: what each call printed and the results between them."""
    out = tmp_path_factory.mktemp("rows") / "results"
    compare = ["compare", *TINY, "--methods", "vanilla,relaxloss", "--out", str(out)]
    first = _call(compare)  # not quiet: the progress output is checked below
    run = out / "location" / "vanilla" / "seed1000"
    attack = _call(["attack", "--target", str(run), "--shadow", str(run / "shadow"),
                    "--no-white-box", "--attacks", "lira,attack_p", "--reference-models", "2",
                    "-q"])
    after_attack = pd.read_csv(run / "attack" / "results.csv")
    second = _call(compare)
    return {"out": out, "run": run, "first": first, "attack": attack, "second": second,
            "after_attack": after_attack}


def test_compare_after_attack_all_keeps_every_row(attacked):
    assert attacked["attack"][0] == 0 and attacked["second"][0] == 0
    before = attacked["after_attack"]
    assert {"LiRA online", "Attack-P"} <= set(before["attack"])
    after = pd.read_csv(attacked["run"] / "attack" / "results.csv")
    assert len(after) == len(before) == 7  # five of the reference code's, LiRA, Attack-P
    assert set(after["attack"]) == set(before["attack"])
    kept = after.set_index("attack").loc[["LiRA online", "Attack-P"]]
    pd.testing.assert_frame_equal(kept, before.set_index("attack").loc[kept.index])
    assert "kept 2 row(s)" in attacked["second"][2]
    table = _printed_table(attacked["second"][1])
    vanilla = table.set_index("method").loc["vanilla"]
    lira = before.set_index("attack").loc["LiRA online"]
    assert vanilla["lira_auc"] == f"{lira['auc']:.4f}"


def _printed_table(text):
    lines = [line for line in text.splitlines() if line.startswith("|")]
    header = [cell.strip() for cell in lines[0].strip("|").split("|")]
    return pd.DataFrame([[c.strip() for c in line.strip("|").split("|")]
                         for line in lines[2:]], columns=header)


def test_a_failed_attack_keeps_the_previous_results(attacked, monkeypatch):
    from skmia.experiment import _attack

    run = attacked["run"]
    before = (run / "attack" / "results.csv").read_bytes()

    def fail(*args, **kwargs):  # after the new rows are computed, before they are written
        raise KeyboardInterrupt

    monkeypatch.setattr(_attack, "_attack_figures", fail)
    status, _, err = _call(["attack", "--target", str(run), "--shadow", str(run / "shadow"),
                            "--no-white-box", "-q"])
    assert status == 130 and "previous attack/ results are kept" in err
    assert (run / "attack" / "results.csv").read_bytes() == before
    assert (run / "attack" / "complete.json").is_file()
    assert not any(p.name.startswith(".attack") for p in run.iterdir())


def test_shadow_reuse_is_said_once_and_the_attack_has_one_bar(attacked):
    err = attacked["first"][2]
    # vanilla trains its shadow; relaxloss reuses it: one line, not one per lookup
    assert err.count("vanilla shadow: reused the finished run") == 1
    assert "vanilla target: reused" not in err
    for run in err.split("vanilla shadow: reused")[:2]:
        totals = {int(t) for t in re.findall(r"attack:.*?\d+/(\d+)", run)}
        assert len(totals) == 1, totals  # one bar per attack, never reset to 0/1


def test_report_markdown_csv_and_html_show_the_same_columns(attacked, tmp_path):
    run = attacked["run"]
    status, markdown, _ = _call(["report", str(run)])
    assert status == 0
    status, csv, _ = _call(["report", str(run), "--format", "csv"])
    assert status == 0
    assert list(pd.read_csv(io.StringIO(csv)).columns) == list(RESULT_COLUMNS)
    for column in ("auc", "tpr_at_0.1%fpr", "tpr_at_1%fpr"):
        assert column in _header(markdown)
    assert "empirical_epsilon" not in _header(markdown)
    html = tmp_path / "report.html"
    assert main(["report", str(run), "--html", str(html)]) == 0
    page = _parse(html.read_text(encoding="utf-8"))
    (results,) = page.of_class("results")
    context = ("method", *CONTEXT_COLUMNS)
    assert [c for c in _header(markdown) if c not in context] == results["header"]
    # the intervals: one cell per rate, in both
    cell = re.compile(r"\d\.\d{4} \[\d\.\d{4}, \d\.\d{4}\]")
    assert cell.search(markdown)
    column = results["header"].index("tpr_at_1%fpr")
    assert all(cell.fullmatch(row[column]) for row in results["rows"])


@pytest.fixture(scope="module")
def dpsgd_runs(location_data_home, tmp_path_factory):
    """vanilla and the paper's DP-SGD under one root, DP-SGD at epsilon 8 under another."""
    from skmia.defenses import WeakPrivacyWarning

    base = tmp_path_factory.mktemp("dpsgd")
    # the paper's sigma: no meaningful epsilon (no -q, which silences the warning)
    with pytest.warns(WeakPrivacyWarning):
        paper = _call(["compare", *TINY, "--methods", "vanilla,dpsgd",
                       "--out", str(base / "paper")])
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        private = _call(["compare", *TINY, "--methods", "dpsgd", "-q", "--out",
                         str(base / "eps8"), "--method-option", "dpsgd:target_epsilon=8"])
    return base, paper, private


def test_dpsgd_epsilon_is_chosen_and_a_vacuous_one_flagged(dpsgd_runs):
    _, paper, private = dpsgd_runs
    assert paper[0] == 0 and private[0] == 0
    paper_table = _printed_table(paper[1]).set_index("method")
    assert float(paper_table.loc["dpsgd", "epsilon"]) > 100
    assert paper_table.loc["dpsgd", "epsilon_note"] == "vacuous"
    assert paper_table.loc["vanilla", "epsilon_note"] == ""
    private_table = _printed_table(private[1]).set_index("method")
    assert 7 < float(private_table.loc["dpsgd", "epsilon"]) <= 8
    assert "epsilon_note" not in private_table  # no vacuous epsilon: the column is left out


def test_privacy_utility_plot_has_a_point_per_run(dpsgd_runs, tmp_path):
    base, _, _ = dpsgd_runs
    html = tmp_path / "report.html"
    assert main(["report", str(base / "paper"), str(base / "eps8"), "--html", str(html)]) == 0
    page = _parse(html.read_text(encoding="utf-8"))
    runs = page.of_class("runs")[0]["rows"]
    (points,) = page.of_class("privacy-utility")
    assert len(runs) == len(points["rows"]) == 3
    labels = dict(zip(points["header"], zip(*points["rows"], strict=True), strict=True))
    dpsgd = [label for method, label in zip(labels["method"], labels["label"], strict=True)
             if method == "dpsgd"]
    assert len(set(dpsgd)) == 2 and all("ε=" in label for label in dpsgd)
    assert any("eps8" in label for label in dpsgd)  # the differing part of the out root


def test_privacy_utility_figure_one_marker_per_run():
    rows = []
    for run, (method, epsilon, accuracy) in enumerate([("vanilla", None, 0.5),
                                                       ("dpsgd", 5.3e6, 0.45),
                                                       ("dpsgd", 8.0, 0.30),
                                                       ("dpsgd", 8.0, 0.31)]):
        for attack, auc in (("loss", 0.6 + run / 100), ("NN", 0.55)):
            rows.append({"run": f"out{run}/location/{method}/seed1000", "dataset": "location",
                         "method": method, "seed": 1000, "epsilon": epsilon,
                         "attack": attack, "test_accuracy": accuracy, "auc": auc})
    fig = privacy_utility_figure(pd.DataFrame(rows))
    ax = fig.axes[0]
    points = sum(len(line.get_xdata()) for line in ax.lines if line.get_marker() == "o")
    assert points == 4  # the two runs at epsilon 8 differ only by their folder
    labels = sorted(text.get_text() for text in ax.texts)
    assert labels == ["ε=5.3e+06, out1", "ε=8, out2", "ε=8, out3"]


def test_data_home_from_the_environment_is_recorded(location_data_home, tmp_path,
                                                    monkeypatch):
    import json

    monkeypatch.setenv("SKMIA_DATA_HOME", str(location_data_home))
    out = tmp_path / "results"
    status, _, _ = _call(["run", *TINY, "--method", "vanilla", "--mode", "defense_attack",
                          "-q", "--out", str(out)])
    assert status == 0
    run = out / "location" / "vanilla" / "seed1000"
    params = json.loads((run / "params.json").read_text())
    assert params["data_home"] == str(location_data_home.resolve())
    # another shell, without the variable: the attack reads the data where the run did
    monkeypatch.delenv("SKMIA_DATA_HOME")
    monkeypatch.setenv("HOME", str(tmp_path / "home"))  # no ~/skmia_data to fall back on
    status, _, err = _call(["attack", "--target", str(run), "--shadow", str(run / "shadow"),
                            "--no-white-box", "-q"])
    assert status == 0, err


def test_missing_data_names_the_cli_option(tmp_path):
    status, _, err = _call(["split", "--dataset", "location", "--data-home",
                            str(tmp_path), "--no-download"])
    assert status == 1
    assert "--data-home" in err and "data_home=" not in err


@pytest.mark.parametrize(("argv", "message"), [
    (["--alpha", "0.5", "--methods", "vanilla,dpsgd"], "--alpha applies to"),
    (["--method-option", "dpsgd=8", "--methods", "dpsgd"], "METHOD:NAME=VALUE"),
    (["--method-option", "relaxloss:alpha=1", "--methods", "dpsgd"], "not in --methods"),
])
def test_compare_refuses_options_for_no_compared_method(argv, message, capsys):
    with pytest.raises(SystemExit) as exc:
        main(["compare", "--dataset", "location", *argv])
    assert exc.value.code == 2
    assert message in capsys.readouterr().err


def test_compare_refuses_an_unknown_parameter(tmp_path):
    status, _, err = _call(["compare", *TINY, "--methods", "dpsgd", "--out", str(tmp_path),
                            "--method-option", "dpsgd:target_eps=8"])
    assert status == 1
    assert "no parameter 'target_eps'" in err and "target_epsilon" in err
    assert not any(tmp_path.iterdir())


def test_help_imports_no_torch():
    code = ("import sys, contextlib, io\n"
            "import skmia.cli\n"
            "buffer = io.StringIO()\n"
            "with contextlib.redirect_stdout(buffer), contextlib.suppress(SystemExit):\n"
            "    skmia.cli.main(['compare', '--help'])\n"
            "assert '--method-option' in buffer.getvalue(), buffer.getvalue()\n"
            "assert '--target-epsilon' in buffer.getvalue()\n"
            "heavy = [m for m in ('torch', 'sklearn', 'pandas') if m in sys.modules]\n"
            "assert not heavy, heavy\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            env={**os.environ, "PYTHONWARNINGS": "error"})
    assert result.returncode == 0, result.stderr


def test_cli_lists_are_the_library_lists():
    from skmia import _cli_parser as cli  # the lists the parser offers
    from skmia.attacks import CALIBRATED_ATTACKS
    from skmia.datasets import DATASETS
    from skmia.experiment import IMAGE_DATASETS, method_classes

    assert cli.METHODS == tuple(method_classes())
    assert cli.DATASETS == DATASETS and cli.IMAGE_DATASETS == IMAGE_DATASETS
    assert cli.CALIBRATED_ATTACKS is CALIBRATED_ATTACKS
