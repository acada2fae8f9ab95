"""The run directory (skmia._rundir): a hostile or careless run folder never reaches
outside itself, gets one clear error, and loses nothing.

Every probe of issue 18 is a test here: the run folder is a copy of one finished run,
with a "victim" folder beside it that must be byte-for-byte untouched afterwards.
"""

import json
import os
import shutil
import signal
import socket

import numpy as np
import pandas as pd
import pytest

from skmia._rundir import (
    RESULT_COLUMNS,
    Int,
    ListOf,
    RunDirectory,
    UnsafePathError,
    check_json,
    escape_text,
    parse_json,
)
from skmia.cli import main
from skmia.experiment import RunConfig, load_estimator, load_run, run, save_estimator
from skmia.experiment._run_lock import run_lock
from skmia.report import collect_results

VICTIM_TEXT = "victim-secret-7f3a"


def skmia(*args):
    return main([str(a) for a in args])


def _config(out, data_home, **kwargs):
    return RunConfig(dataset="location", method="vanilla", epochs=1, white_box=False,
                     verbose=0, out=str(out), data_home=str(data_home), **kwargs)


@pytest.fixture(scope="module")
def finished(tmp_path_factory, location_data_home):
    """One finished run: target, shadow, attack/ with LiRA and a bank of 2 models."""
    out = tmp_path_factory.mktemp("runs")
    config = _config(out, location_data_home, attacks=("lira",), reference_models=2)
    results = run(config, "defense_attack")
    return config, results


def _snapshot(folder):
    """Every path below ``folder`` with its bytes (None for folders, the target for links)."""
    found = {}
    for root, dirs, files in os.walk(folder):
        for name in dirs + files:
            path = os.path.join(root, name)
            rel = os.path.relpath(path, folder)
            if os.path.islink(path):
                found[rel] = ("link", os.readlink(path))
            elif os.path.isdir(path):
                found[rel] = None
            else:
                with open(path, "rb") as f:
                    found[rel] = f.read()
    return found


@pytest.fixture
def copy(finished, tmp_path):
    """A copy of the finished run (target + shadow/) and a victim folder beside it."""
    config, _ = finished
    target = tmp_path / "run"
    shutil.copytree(config.folder, target)
    victim = tmp_path / "victim"
    (victim / "epoch3").mkdir(parents=True)
    (victim / "epoch3" / "model.json").write_text(VICTIM_TEXT)
    (victim / "results.csv").write_text(f"attack\n{VICTIM_TEXT}\n")
    (victim / "params.json").write_text(json.dumps({"note": VICTIM_TEXT}))
    (victim / "model.safetensors").write_bytes(VICTIM_TEXT.encode())
    before = _snapshot(victim)
    yield target, victim
    assert _snapshot(victim) == before, "the victim folder beside the run was touched"


def _link(path, to):
    if path.is_dir() and not path.is_symlink():
        shutil.rmtree(path)
    elif path.exists() or path.is_symlink():
        path.unlink()
    path.symlink_to(to, target_is_directory=to.is_dir())


def _error(capsys):
    err = capsys.readouterr().err
    assert "Traceback" not in err
    return err


# ------------------------------------------------------------------ links in a run


def test_a_checkpoint_link_is_refused_and_the_other_folder_kept(copy, finished, capsys,
                                                                 tmp_path):
    target, victim = copy
    config, _ = finished
    out = tmp_path / "out"
    folder = out / "location" / "vanilla" / "seed1000"
    folder.mkdir(parents=True)
    (folder / "checkpoint").symlink_to(victim, target_is_directory=True)
    status = skmia("run", "--dataset", "location", "--method", "vanilla", "--mode",
                   "defense", "--epochs", 1, "--out", out, "--data-home", config.data_home,
                   "-q")
    assert status == 1
    err = _error(capsys)
    assert str(folder / "checkpoint") in err and "symbolic link" in err
    assert not (folder / "complete.json").exists()


def test_an_attack_link_is_refused(copy, capsys):
    target, victim = copy
    _link(target / "attack", victim)
    status = skmia("attack", "--target", target, "--shadow", target / "shadow",
                   "--no-white-box", "-q")
    assert status == 1
    assert str(target / "attack") in _error(capsys)


def test_a_reference_link_is_refused(copy, capsys):
    target, victim = copy
    _link(target / "reference", victim)
    status = skmia("attack", "--target", target, "--shadow", target / "shadow",
                   "--no-white-box", "-q", "--attacks", "lira", "--reference-models", 2)
    assert status == 1
    assert str(target / "reference") in _error(capsys)
    assert not (victim / "complete.json").exists()


def test_report_embeds_no_file_from_outside(copy, capsys, tmp_path):
    target, victim = copy
    _link(target / "attack" / "results.csv", victim / "results.csv")
    _link(target / "attack" / "results.json", victim / "params.json")
    page = tmp_path / "report.html"
    assert skmia("report", "--html", page, target) == 1
    err = _error(capsys)
    assert str(target / "attack" / "results.json") in err and "symbolic link" in err
    assert not page.exists()
    assert skmia("report", target) == 1
    captured = capsys.readouterr()
    assert VICTIM_TEXT not in captured.out + captured.err
    # a linked params.json: the folder is no run the report reads
    _link(target / "params.json", victim / "params.json")
    (target / "attack" / "results.json").unlink()
    assert skmia("report", "--html", page, target) == 1
    assert "no run directories" in _error(capsys)
    assert not page.exists()


def test_a_fifo_params_json_does_not_hang_the_report(copy, capsys, tmp_path):
    target, _ = copy
    (target / "params.json").unlink()
    os.mkfifo(target / "params.json")
    previous = signal.signal(signal.SIGALRM, lambda *a: pytest.fail("the report hung"))
    signal.alarm(20)
    try:
        assert skmia("report", "--html", tmp_path / "r.html", target) == 1
        with pytest.raises(UnsafePathError, match="not a regular file"):
            RunDirectory(target).read_params()
    finally:
        signal.alarm(0)
        signal.signal(signal.SIGALRM, previous)
    assert "no run directories" in _error(capsys)


def test_paths_outside_the_folder_are_refused(tmp_path):
    folder = RunDirectory(tmp_path / "run")
    for bad in ("..", "/etc/passwd", "a/../../b"):
        with pytest.raises(UnsafePathError, match="is not a name inside"):
            folder.path(bad)
    with pytest.raises(UnsafePathError, match="is not a name inside"):
        folder.write_json("..", "x.json", document={})
    assert not (tmp_path / "x.json").exists()


# ------------------------------------------------------------------ the bank


def _bank_error(target, finished, capsys):
    from skmia.experiment._run_bank import reference_bank
    from skmia.model_selection._split import load_split

    config, _ = finished
    model, _ = load_run(target)
    split = load_split("location", 1000, config.data_home)
    with pytest.raises(ValueError) as info:
        reference_bank(target, model, split, 2)
    return str(info.value)


def test_another_runs_bank_is_refused_even_with_its_complete_json_edited(
        finished, tmp_path, capsys):
    config, _ = finished
    other = _config(tmp_path / "other", config.data_home, seed=1001)
    run(other, "defense")
    shutil.copytree(config.folder / "reference", other.folder / "reference")
    done = json.loads((other.folder / "reference" / "complete.json").read_text())
    done["estimator_params"] = json.loads(
        (other.folder / "params.json").read_text())["estimator_params"]
    (other.folder / "reference" / "complete.json").write_text(json.dumps(done))
    from skmia.experiment._run_bank import reference_bank
    from skmia.model_selection._split import load_split

    model, _ = load_run(other.folder)
    with pytest.raises(ValueError, match="another pool") as info:
        reference_bank(other.folder, model, load_split("location", 1001, config.data_home),
                       2)
    assert "delete" in str(info.value) and str(other.folder / "reference") in str(info.value)


def test_a_bank_of_other_epochs_or_mixed_models_is_refused(copy, finished, capsys):
    target, _ = copy
    bank = load_estimator(target / "reference")
    bank.estimator.set_params(max_epochs=3)  # model.json says 3 epochs, the target 1
    save_estimator(bank, target / "reference")
    message = _bank_error(target, finished, capsys)
    assert "the bank's estimator" in message and "max_epochs" in message
    bank.estimator.set_params(max_epochs=1)
    bank.estimators_[1].set_params(max_epochs=2)  # a mixed bank (1, 2 epochs)
    save_estimator(bank, target / "reference")
    message = _bank_error(target, finished, capsys)
    assert "reference model 1" in message and "max_epochs" in message


def test_a_bank_whose_masks_its_seed_does_not_give_is_refused(copy, finished, capsys):
    target, _ = copy
    bank = load_estimator(target / "reference")
    bank.in_mask_ = bank.in_mask_[:, ::-1].copy()  # still balanced, not its seed's
    save_estimator(bank, target / "reference")
    assert "masks or seeds" in _bank_error(target, finished, capsys)


def test_a_truncated_bank_says_what_to_delete_and_then_trains_again(copy, capsys):
    target, _ = copy
    weights = target / "reference" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:100])
    args = ("attack", "--target", target, "--shadow", target / "shadow", "--no-white-box",
            "-q", "--attacks", "lira", "--reference-models", 2)
    assert skmia(*args) == 1
    err = _error(capsys)
    assert f"delete {str(target / 'reference')!r}" in err.lower()
    shutil.rmtree(target / "reference")  # as the message says
    assert skmia(*args) == 0


def test_too_many_reference_models_are_refused_and_results_kept(copy, capsys):
    target, _ = copy
    before = _snapshot(target / "attack")
    status = skmia("attack", "--target", target, "--shadow", target / "shadow",
                   "--no-white-box", "-q", "--attacks", "lira", "--reference-models",
                   1_000_000)
    assert status == 2  # a usage error naming the option (tests/cli/test_reliability_cli.py)
    err = _error(capsys)
    assert "argument --reference-models: 1000000 reference models would take about" in err
    assert "GiB" in err
    assert _snapshot(target / "attack") == before


def test_an_interrupted_attack_keeps_the_previous_results(copy, monkeypatch):
    import skmia.experiment._attack as attack_module
    from skmia.experiment import RunInterrupted, attack

    target, _ = copy
    before = _snapshot(target / "attack")

    def interrupted(*args, **kwargs):
        raise KeyboardInterrupt

    monkeypatch.setattr(attack_module, "_attack_rows", interrupted)
    with pytest.raises(RunInterrupted, match="previous attack/ results are kept"):
        attack(target, target / "shadow", white_box=False, verbose=0)
    assert _snapshot(target / "attack") == before
    assert sorted(p.name for p in target.iterdir() if p.name.startswith(".")) == []


# ------------------------------------------------------------------ hostile JSON

HOSTILE = {
    "seed a string": ("params.json", lambda p: {**p, "seed": "1000"}, "'seed'"),
    "seed 1e300": ("params.json", lambda p: {**p, "seed": 1e300}, "'seed'"),
    "dataset a list": ("params.json", lambda p: {**p, "dataset": ["location"]},
                       "'dataset'"),
    "params a list": ("params.json", lambda p: [p], "(top level)"),
    "lone surrogate": ("params.json", lambda p: {**p, "method": "\ud800"}, "'method'"),
    "results a list": ("attack/results.json", lambda r: r["rows"], "(top level)"),
    "a result of the wrong type": (
        "attack/results.json",
        lambda r: {"rows": [{**r["rows"][0], "auc": "high"}]}, "'rows.0.auc'"),
    "history a dict": ("history.json", lambda h: {"epochs": h}, "(top level)"),
}


@pytest.mark.parametrize("case", HOSTILE, ids=list(HOSTILE))
def test_hostile_json_gets_one_error_naming_file_and_key(copy, capsys, tmp_path, case):
    target, _ = copy
    name, edit, key = HOSTILE[case]
    path = target / name
    text = json.dumps(edit(json.loads(path.read_text())))
    path.write_text(text, encoding="utf-8")
    assert skmia("report", "--html", tmp_path / "r.html", target) == 1
    err = _error(capsys)
    assert str(path) in err and key in err
    if name == "params.json":
        assert skmia("attack", "--target", target, "--shadow", target / "shadow",
                     "--no-white-box", "-q") == 1
        err = _error(capsys)
        assert str(path) in err and key in err


def test_bytes_that_are_not_utf8_are_named(copy, capsys):
    target, _ = copy
    (target / "attack" / "results.json").write_bytes(b'{"rows": ["\xff\xfe"]}')
    assert skmia("report", target) == 1
    err = _error(capsys)
    assert str(target / "attack" / "results.json") in err and "not UTF-8" in err


def test_check_json_names_the_key():
    with pytest.raises(ValueError, match=r"'f.json': key 'a.1' should be an integer"):
        check_json({"a": [1, 2.5]}, {"a": ListOf(Int())}, "f.json")
    with pytest.raises(ValueError, match="lacks the key .a."):
        check_json({}, {"a": str}, "f.json")
    with pytest.raises(ValueError, match="lone surrogate"):
        parse_json(b'{"k": "\\udc00"}', "f.json")
    assert check_json(True, bool, "f.json") is True
    with pytest.raises(ValueError, match="should be an integer"):
        check_json(True, Int(), "f.json")  # a bool is no integer


# ------------------------------------------------------------------ printed tables


def test_control_characters_are_escaped_in_every_printed_table(copy, capsys, tmp_path):
    target, _ = copy
    path = target / "attack" / "results.json"
    rows = json.loads(path.read_text())["rows"]
    hostile = "van\x1b]0;owned\x07\x1b[2Jilla\u202e"
    for row in rows:
        row["method"] = row["attack"] = hostile
    path.write_text(json.dumps({"rows": rows}))
    for fmt in ("markdown", "csv"):
        assert skmia("report", "--format", fmt, target) == 0
        out = capsys.readouterr().out
        assert "\x1b" not in out and "\x07" not in out and "\u202e" not in out
        assert "van\\x1b]0;owned\\x07\\x1b[2Jilla\\u202e" in out
    assert skmia("report", "--html", tmp_path / "r.html", target) == 0
    page = (tmp_path / "r.html").read_text()
    assert "\x1b" not in page and "\\x1b" in page
    assert escape_text("ok text") == "ok text"


# ------------------------------------------------------------------ the lock


@pytest.mark.parametrize("odd", ["pid 2**40", "a folder", "a link"])
def test_odd_locks_are_stale_with_a_message_and_leave_nothing(tmp_path, capsys, odd):
    folder = tmp_path / "run"
    folder.mkdir()
    lock = folder / ".lock"
    if odd == "pid 2**40":
        lock.write_text(json.dumps({"pid": 2**40, "hostname": socket.gethostname(),
                                    "started": "2026-01-01T00:00:00", "token": "x"}))
    elif odd == "a folder":
        (lock / "inside").mkdir(parents=True)
    else:
        (tmp_path / "elsewhere").write_text(VICTIM_TEXT)
        lock.symlink_to(tmp_path / "elsewhere")
    with run_lock(folder):
        assert json.loads(lock.read_text())["pid"] == os.getpid()
    assert sorted(os.listdir(folder)) == []
    err = capsys.readouterr().err
    assert "stale" in err and str(lock) in err
    if odd == "a link":
        assert (tmp_path / "elsewhere").read_text() == VICTIM_TEXT


# ------------------------------------------------------------------ devices


def test_cuda_without_a_gpu_is_refused_by_the_estimator_and_attack(copy, capsys,
                                                                    monkeypatch):
    import torch

    from skmia.defenses import VanillaClassifier

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)
    X, y = np.zeros((4, 3), np.float32), np.array([0, 1, 0, 1])
    with pytest.raises(ValueError, match="torch sees no CUDA GPU on this machine"):
        VanillaClassifier(device="cuda", max_epochs=1).fit(X, y)
    target, _ = copy
    assert skmia("attack", "--target", target, "--shadow", target / "shadow",
                 "--device", "cuda", "-q") == 1
    assert "torch sees no CUDA GPU on this machine" in _error(capsys)


# ------------------------------------------------------------------ one result schema


def test_report_reads_back_the_schema_run_attack_and_compare_write(finished, tmp_path):
    from skmia.experiment import attack
    from skmia.experiment._compare import _results

    config, ran = finished
    read = collect_results([config.folder])
    assert list(read.columns) == list(RESULT_COLUMNS)
    for written in (ran, attack(config.folder, config.folder / "shadow", white_box=False,
                                verbose=0, attacks=("lira",), reference_models=2),
                    _results(config)[0]):
        assert list(written.columns) == list(RESULT_COLUMNS)
        pd.testing.assert_frame_equal(read.reset_index(drop=True),
                                      written.reset_index(drop=True)[read.columns],
                                      check_dtype=False)
    assert "tpr_at_0.01%fpr" in read and "empirical_epsilon" not in read
    csv = pd.read_csv(config.folder / "attack" / "results.csv")
    assert list(csv.columns) == list(RESULT_COLUMNS)


def test_results_of_another_schema_are_refused(tmp_path):
    folder = RunDirectory(tmp_path / "run")
    row = dict.fromkeys(RESULT_COLUMNS)
    row.update(dataset="location", method="vanilla", seed=1, attack="loss",
               shadow_method="vanilla")
    with pytest.raises(ValueError, match="not in RESULT_COLUMNS"):
        folder.write_results([{**row, "made_up": 1.0}])
    with pytest.raises(ValueError, match="'rows.0.seed' should be an integer"):
        folder.write_results([{**row, "seed": "1"}])
    assert not (tmp_path / "run" / "attack" / "results.json").exists()
    folder.write_results([row])
    assert folder.read_results()["attack"].tolist() == ["loss"]
