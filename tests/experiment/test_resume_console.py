"""The console script, interrupted by a real SIGINT or SIGTERM, exits with the signal
and continues.
"""

import json
import signal
import subprocess

import pytest
import resume_helpers
from resume_helpers import _assert_same_model, _command, _wait_for_checkpoints

import skmia.experiment._train as runs
from skmia.cli import main

# fixtures shared with the other files split from test_resume.py, bound here by name
# (a nested conftest.py would break --doctest-modules)
slow_env = resume_helpers.slow_env
uninterrupted = resume_helpers.uninterrupted
_same_fresh_dp_seed = resume_helpers._same_fresh_dp_seed


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_console_script_interrupted_exits_with_the_signal_and_continues(
        signum, status, slow_env, uninterrupted, tmp_path):
    out = tmp_path / "out"
    folder = runs.run_directory(out, "location", "vanilla", 1000)
    proc = subprocess.Popen([*_command(out), "--mode", "defense"], env=slow_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_checkpoints(proc, [folder], epoch=2)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, stderr
    assert "Traceback" not in stderr
    name = "SIGINT" if signum == signal.SIGINT else "SIGTERM"
    assert f"skmia run: interrupted ({name}); no unfinished run was marked complete" in stderr
    assert "its checkpoint is kept in" in stderr and "trained" not in stdout
    assert not (folder / "complete.json").exists() and not (folder / ".lock").exists()

    # the same command again, here (a console script's start-up is slow)
    assert main([*_command(out)[3:], "--mode", "defense"]) == 0
    assert json.loads((folder / "complete.json").read_text())["resumed_at_epoch"] >= 2
    _assert_same_model(folder, uninterrupted("vanilla"))
