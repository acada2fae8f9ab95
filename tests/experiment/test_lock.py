"""The run directory's lock: one process at a time writes a run."""

import json
import os
import socket
import subprocess
import sys
import time

import pytest

from skmia._rundir import _process_start
from skmia.cli import main
from skmia.experiment import RunConfig, run, run_directory, train
from skmia.experiment._run_lock import LOCK_FILE, RunLockedError, run_lock


def _config(out, data_home, epochs=2):
    return RunConfig(dataset="location", method="vanilla", epochs=epochs, out=str(out),
                     data_home=str(data_home), verbose=0, white_box=False)


def _fake_lock(folder, **fields):
    folder.mkdir(parents=True, exist_ok=True)
    document = {"pid": os.getpid(), "hostname": socket.gethostname(),
                "started": "2024-05-01T09:30:00+00:00", "purpose": "training",
                "token": "someone-else", **fields}
    (folder / LOCK_FILE).write_text(json.dumps(document))
    return document


def _dead_pid():
    proc = subprocess.Popen([sys.executable, "-c", "pass"])
    proc.wait()
    return proc.pid


def test_lock_file_names_its_holder_and_is_removed(tmp_path):
    folder = tmp_path / "run"
    with run_lock(folder):
        lock = json.loads((folder / LOCK_FILE).read_text())
        assert lock["pid"] == os.getpid() and lock["hostname"] == socket.gethostname()
        assert lock["started"] and lock["token"] and lock["purpose"] == "training"
        with run_lock(folder, "attack"):  # re-entrant within a process
            pass
        assert (folder / LOCK_FILE).is_file()
    assert not (folder / LOCK_FILE).exists()


def test_live_holder_is_refused_naming_it(tmp_path, location_data_home):
    config = _config(tmp_path, location_data_home)
    folder = run_directory(tmp_path, "location", "vanilla", 1000)
    holder = _fake_lock(folder)  # this very process, but not through run_lock
    with pytest.raises(RunLockedError) as info:
        train(config)
    message = str(info.value)
    assert f"is being written by process {os.getpid()} since 2024-05-01T09:30:00" in message
    assert "wait for it to finish" in message and str(folder / LOCK_FILE) in message
    assert sorted(p.name for p in folder.iterdir()) == [LOCK_FILE], "nothing written"
    assert json.loads((folder / LOCK_FILE).read_text()) == holder, "the lock is left alone"


def test_console_script_refuses_a_locked_run(tmp_path, location_data_home, capsys):
    folder = run_directory(tmp_path, "location", "vanilla", 1000)
    _fake_lock(folder)
    status = main(["run", "--dataset", "location", "--method", "vanilla", "--mode",
                   "defense", "--epochs", "2", "--out", str(tmp_path), "-q",
                   "--data-home", str(location_data_home)])
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith("skmia run: error: ") and f"by process {os.getpid()}" in err
    assert "Traceback" not in err


@pytest.mark.parametrize("stale", ["dead pid", "reused pid", "unreadable"])
def test_stale_lock_is_taken_over(stale, tmp_path, location_data_home):
    folder = run_directory(tmp_path, "location", "vanilla", 1000)
    if stale == "dead pid":
        _fake_lock(folder, pid=_dead_pid())
    elif stale == "reused pid":  # our pid, but recorded for a process started earlier
        start = _process_start(os.getpid())
        if start is None:
            pytest.skip("no /proc: process start times are not known here")
        _fake_lock(folder, process_start=start - 1)
    else:  # a crash between the lock's creation and its first write, long ago
        folder.mkdir(parents=True)
        (folder / LOCK_FILE).write_text("")
        os.utime(folder / LOCK_FILE, (time.time() - 3600,) * 2)
    assert train(_config(tmp_path, location_data_home)) == folder
    assert (folder / "complete.json").is_file()
    assert not (folder / LOCK_FILE).exists()
    assert not [p for p in folder.iterdir() if p.name.startswith(LOCK_FILE)]


@pytest.mark.parametrize("holder", ["other host", "fresh unreadable"])
def test_locks_that_cannot_be_checked_are_respected(holder, tmp_path):
    folder = tmp_path / "run"
    if holder == "other host":
        _fake_lock(folder, pid=_dead_pid(), hostname="elsewhere.example")
        match = "on host elsewhere.example"
    else:
        folder.mkdir()
        (folder / LOCK_FILE).write_text("")
        match = "cannot be read"
    with pytest.raises(RunLockedError, match=match):
        with run_lock(folder):
            pass


def test_attack_holds_the_target_lock(tmp_path, location_data_home):
    config = _config(tmp_path, location_data_home, epochs=1)
    target = train(config)
    _fake_lock(target, purpose="attack")
    with pytest.raises(RunLockedError, match="being written by process"):
        run(config, "attack")
    assert not (target / "attack" / "complete.json").exists()


_SLOW_EPOCHS = '''
import os, time
from skorch.callbacks import Callback
import skmia.experiment._train as runs

class _Slow(Callback):
    def on_epoch_end(self, net, **kwargs):
        time.sleep(0.5)

_real = runs._progress_callbacks
runs._progress_callbacks = lambda *a, **k: [*_real(*a, **k), ("slow", _Slow())]
'''


def test_second_process_cannot_rewrite_a_run_being_trained(tmp_path, location_data_home,
                                                            capsys):
    # the first trains 4 epochs; the second, started meanwhile with --epochs 2, would
    # rewrite params.json while the first writes its model
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SLOW_EPOCHS)
    env = {**os.environ, "PYTHONPATH": str(site), "OMP_NUM_THREADS": "1"}
    out = tmp_path / "out"
    args = ["run", "--dataset", "location", "--method", "vanilla", "--mode", "defense",
            "--out", str(out), "-q", "--data-home", str(location_data_home)]
    folder = run_directory(out, "location", "vanilla", 1000)
    first = subprocess.Popen([sys.executable, "-m", "skmia.cli", *args, "--epochs", "4"],
                             env=env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                             text=True)
    try:
        deadline = time.monotonic() + 120
        while not (folder / "checkpoint").is_dir() and time.monotonic() < deadline:
            assert first.poll() is None, first.communicate()
            time.sleep(0.05)
        assert main([*args, "--epochs", "2"]) == 1
        err = capsys.readouterr().err
        assert f"is being written by process {first.pid} since " in err
        stdout, stderr = first.communicate(timeout=120)
    finally:
        first.kill()
    assert first.returncode == 0, stderr
    params = json.loads((folder / "params.json").read_text())
    model = json.loads((folder / "model.json").read_text())
    assert params["estimator_params"]["max_epochs"] == "4"
    assert model["params"]["max_epochs"] == {"value": 4} and len(model["history"]) == 4
    assert not (folder / LOCK_FILE).exists()
