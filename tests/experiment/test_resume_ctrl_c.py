"""A terminal's Ctrl-C reaches the console script's joblib workers; both parts continue.
"""

import json
import os
import signal
import subprocess

import resume_helpers
from resume_helpers import _command, _config, _wait_for_checkpoints

import skmia.experiment._train as runs
from skmia.experiment import train

# fixtures shared with the other files split from test_resume.py, bound here by name
# (a nested conftest.py would break --doctest-modules)
slow_env = resume_helpers.slow_env
_same_fresh_dp_seed = resume_helpers._same_fresh_dp_seed


def test_ctrl_c_reaches_the_workers_and_the_parent_reports_it(slow_env, tmp_path,
                                                              location_data_home):
    # a terminal's Ctrl-C signals the whole process group: the skmia process and its
    # joblib workers, which train the target and the shadow
    out = tmp_path / "out"
    target = runs.run_directory(out, "location", "vanilla", 1000)
    proc = subprocess.Popen([*_command(out), "--mode", "defense_attack", "--jobs", "2"],
                            env=slow_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        _wait_for_checkpoints(proc, [target, target / "shadow"])
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert "skmia run: interrupted (SIGINT)" in stderr
    assert f"{str(target)!r} stopped after" in stderr
    assert f"{str(target / 'shadow')!r} stopped after" in stderr
    assert not list(out.rglob("complete.json")), "nothing is marked complete"
    assert not list(out.rglob(".lock"))

    # both continue from their checkpoints (trained here, without the attacks' minutes)
    config = _config(out, location_data_home)
    config.data_home = None  # the console script read SKMIA_DATA_HOME
    for partition, folder in (("target", target), ("shadow", target / "shadow")):
        assert train(config, partition) == folder
        assert json.loads((folder / "complete.json").read_text())["resumed_at_epoch"] >= 1
