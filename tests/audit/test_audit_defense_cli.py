"""The ``skmia audit`` command and its directory: one row per method, continuing, growing,
links, a dask scheduler, the HTML report, bad input."""

import json

import numpy as np
import pandas as pd
import pytest

from skmia.audit import DefenseAudit

# ------------------------------------------------------------ skmia audit
AUDIT_ARGS = ["audit", "--dataset", "location", "--methods", "vanilla,relaxloss",
              "--records", "1500", "--canaries", "40", "--models", "4", "--epochs", "2",
              "--hidden", "16", "-q"]


def _audit_table(out):
    from skmia._rundir import AUDIT_FILES

    folders = list(out.rglob(AUDIT_FILES["complete"]))
    root = [f.parent for f in folders if (f.parent / AUDIT_FILES["plan"]).is_file()]
    assert len(root) == 1
    return pd.read_csv(root[0] / AUDIT_FILES["table_csv"]), root[0]


@pytest.fixture(scope="module")
def cli_audit(tmp_path_factory, location_data_home):
    from skmia.cli import main

    out = tmp_path_factory.mktemp("audit")
    assert main([*AUDIT_ARGS, "--out", str(out)]) == 0
    return _audit_table(out)


def test_cli_audit_writes_one_row_per_method(cli_audit, capsys):
    table, folder = cli_audit
    assert table["method"].tolist() == ["vanilla", "relaxloss"]
    assert (table["n_models"] == 4).all()
    for method in ("vanilla", "relaxloss"):
        audit = DefenseAudit.load(folder / method / "result")
        assert audit.is_canary.sum() == 40
    # the same masks and canaries for every method
    a, b = (DefenseAudit.load(folder / m / "result") for m in ("vanilla", "relaxloss"))
    np.testing.assert_array_equal(a.in_mask, b.in_mask)
    np.testing.assert_array_equal(a.is_canary, b.is_canary)


def test_interrupted_cli_audit_continues_to_the_same_result(cli_audit, tmp_path,
                                                            monkeypatch):
    from skmia.audit import _defense
    from skmia.cli import main

    calls = []
    real = _defense.train_rounds

    def stop_after_one(*args, **kwargs):
        if calls:
            raise KeyboardInterrupt
        calls.append(1)
        return real(*args, **kwargs)

    monkeypatch.setattr(_defense, "train_rounds", stop_after_one)
    assert main([*AUDIT_ARGS, "--out", str(tmp_path)]) == 130
    rounds = list(tmp_path.rglob("round_*.safetensors"))
    assert len(rounds) == 1  # the finished round is kept
    assert not list(tmp_path.rglob("complete.json"))
    monkeypatch.setattr(_defense, "train_rounds", real)
    assert main([*AUDIT_ARGS, "--out", str(tmp_path)]) == 0
    table, _ = _audit_table(tmp_path)
    pd.testing.assert_frame_equal(table, cli_audit[0])


def test_cli_audit_never_follows_a_link_out_of_its_folder(tmp_path, capsys):
    from skmia.cli import main

    out, victim = tmp_path / "out", tmp_path / "victim"
    victim.mkdir()
    (victim / "keep.txt").write_text("mine")
    method = out / "location" / "audit" / "seed1000" / "vanilla"
    method.mkdir(parents=True)
    (method / "rounds").symlink_to(victim, target_is_directory=True)
    assert main([*AUDIT_ARGS, "--out", str(out)]) == 1
    assert "symbolic link" in capsys.readouterr().err
    assert [p.name for p in victim.iterdir()] == ["keep.txt"]
    assert (victim / "keep.txt").read_text() == "mine"


def test_recipe_document_is_the_same_in_another_process():
    # a later call (another process, another hash seed) must recognise the recipe
    import os
    import subprocess
    import sys

    from skmia.audit._defense_folder import recipe_document
    from skmia.experiment._audit_dir import AuditConfig, _recipe

    code = ("import json; from skmia.audit._defense_folder import recipe_document; "
            "from skmia.experiment._audit_dir import AuditConfig, _recipe; "
            "print(json.dumps(recipe_document(_recipe(AuditConfig("
            "'location', ('relaxloss',), epochs=3, hidden=(8,)), 'relaxloss'))))")
    env = {**os.environ, "PYTHONHASHSEED": "12345"}
    out = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                         env=env, check=True).stdout
    here = recipe_document(_recipe(AuditConfig("location", ("relaxloss",), epochs=3,
                                               hidden=(8,)), "relaxloss"))
    assert json.loads(out) == json.loads(json.dumps(here))


def test_cli_audit_on_a_dask_scheduler_gives_the_same_table(cli_audit, tmp_path):
    # --scheduler runs audit_defense's rounds under joblib.parallel_config(backend="dask")
    distributed = pytest.importorskip("dask.distributed")
    from skmia.cli import main

    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        status = main([*AUDIT_ARGS, "--out", str(tmp_path), "--scheduler",
                       cluster.scheduler_address])
    assert status == 0
    pd.testing.assert_frame_equal(_audit_table(tmp_path)[0], cli_audit[0])


def test_cli_audit_grows_and_refuses_other_canaries(cli_audit, tmp_path, capsys):
    from skmia.cli import main

    args = [*AUDIT_ARGS, "--out", str(tmp_path)]
    assert main(args) == 0
    assert main([*args, "--models", "6"]) == 0  # grown: 2 more models
    table, folder = _audit_table(tmp_path)
    assert (table["n_models"] == 6).all()
    assert len(list((folder / "vanilla" / "rounds").iterdir())) == 3
    capsys.readouterr()
    assert main([*args, "--canaries", "30"]) == 1
    assert "other data or canaries" in capsys.readouterr().err


def test_cli_audit_html_report(cli_audit, tmp_path):
    from skmia.report import html_report

    page = html_report([cli_audit[1]])
    assert "Defense audit" in page and "canary TPR@0.1%" in page
    assert page.count("<img") == 3  # privacy-utility + one ROC per method


@pytest.mark.parametrize(("extra", "match"), [
    (["--methods", "vanilla,nosuch"], "unknown method"),
    (["--models", "2"], "--models must be at least 4"),
    (["--models", "5"], "--models must be even"),
    (["--test-size", "1.5"], "--test-size"),
    (["--canaries", "1000"], "pool is too small"),
    (["--alpha", "1", "--methods", "vanilla"], "applies to relaxloss"),
])
def test_cli_audit_bad_input(tmp_path, capsys, extra, match):
    from skmia.cli import main

    try:
        status = main([*AUDIT_ARGS, "--out", str(tmp_path), *extra])
    except SystemExit as exc:  # usage errors exit through argparse
        status = exc.code
    assert status in (1, 2)
    assert match in capsys.readouterr().err
    assert not list(tmp_path.rglob("round_*"))  # nothing trained
