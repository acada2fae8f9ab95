"""``skmia audit-dp``: the DP audit directory (locked, resumable, complete.json last), its
table (claimed vs lower-bound ε with the verdict) and its plot."""

import json
import re

import pandas as pd
import pytest

from skmia._rundir import DP_AUDIT_FILES
from skmia.cli import main
from skmia.experiment import _dp_audit
from skmia.report._dp import format_dp_audit_table

FAST = ["--dataset", "location", "--noise-multipliers", "2,4", "--canaries", "200",
        "--white-box", "--records", "200", "--epochs", "2", "--hidden", "32",
        "--batch-size", "50"]


@pytest.fixture(scope="module")
def audited(location_data_home, tmp_path_factory):
    out = tmp_path_factory.mktemp("dp_audit")
    status = main(["audit-dp", *FAST, "--data-home", str(location_data_home),
                   "--out", str(out)])
    assert status == 0
    return location_data_home, out, out / "location" / "audit_dp" / "seed1000"


def test_directory_holds_every_file_complete_last(audited):
    _, _, folder = audited
    names = {DP_AUDIT_FILES[k] for k in ("settings", "table_csv", "table_json", "plot",
                                         "complete")}
    assert names <= {p.name for p in folder.iterdir()}
    for setting in ("sigma2", "sigma4"):
        assert {p.name for p in (folder / setting).iterdir()} == {
            DP_AUDIT_FILES["result"], DP_AUDIT_FILES["scores"], DP_AUDIT_FILES["complete"]}
    complete = (folder / DP_AUDIT_FILES["complete"]).stat().st_mtime_ns
    assert all(p.stat().st_mtime_ns <= complete for p in folder.rglob("*") if p.is_file())
    assert (folder / DP_AUDIT_FILES["plot"]).read_bytes()[:4] == b"\x89PNG"
    scores = pd.read_csv(folder / "sigma2" / DP_AUDIT_FILES["scores"])
    assert len(scores) == 200 and set(scores["member"]) == {True, False}


def test_table_compares_claim_and_bounds(audited):
    _, _, folder = audited
    table = pd.read_csv(folder / DP_AUDIT_FILES["table_csv"])
    assert list(table["method"]) == ["one_run", "one_run_fdp"] * 2
    # more noise, smaller claim; each row's verdict is its bound against its claim
    claims = table.drop_duplicates("setting").set_index("setting")["claimed_epsilon"]
    assert claims["sigma2"] > claims["sigma4"]
    assert (table["violated"] == (table["epsilon"] > table["claimed_epsilon"])).all()
    assert (table["epsilon"] <= table["max_epsilon"] + 1e-12).all()
    text = format_dp_audit_table(table)
    assert text.count("holds") + text.count("**violated**") == 4


def test_second_call_keeps_finished_settings(audited, monkeypatch, capsys):
    home, out, folder = audited
    before = json.loads((folder / "sigma2" / DP_AUDIT_FILES["result"]).read_text())

    def no_training(*args, **kwargs):
        raise AssertionError("a finished setting was audited again")

    monkeypatch.setattr(_dp_audit, "_audit_one", no_training)
    assert main(["audit-dp", *FAST, "--data-home", str(home), "--out", str(out)]) == 0
    assert json.loads((folder / "sigma2" / DP_AUDIT_FILES["result"]).read_text()) == before
    assert "sigma4" in capsys.readouterr().out


def test_report_shows_the_dp_audit(audited, capsys):
    _, out, folder = audited
    assert main(["report", str(out)]) == 0
    text = capsys.readouterr().out
    assert f"DP audit {folder}" in text
    assert "| setting | noise_multiplier | claimed_epsilon | heuristic_epsilon |" in text
    assert text.count("| sigma2 |") == 2 and text.count("| sigma4 |") == 2


def test_other_settings_are_refused(audited, capsys):
    home, out, _ = audited
    other = [*FAST[:-2], "--batch-size", "40"]
    assert main(["audit-dp", *other, "--data-home", str(home), "--out", str(out)]) == 1
    assert "made with other settings (differing: batch_size)" in capsys.readouterr().err


@pytest.mark.parametrize("options, message", [
    (["--dataset", "location"], "give --noise-multipliers or --target-epsilons"),
    (["--dataset", "location", "--noise-multipliers", "1", "--confidence", "0.5"],
     r"--confidence must be in \(0.5, 1\)"),
    (["--dataset", "location", "--noise-multipliers", "1", "--delta", "1"],
     r"--delta must be in \(0, 1\)"),
    (["--dataset", "location", "--noise-multipliers", "0"], "expected positive numbers"),
])
def test_bad_options_are_usage_errors(options, message, capsys):
    with pytest.raises(SystemExit) as exit_info:
        main(["audit-dp", *options])
    assert exit_info.value.code == 2
    assert re.search(message, capsys.readouterr().err)
