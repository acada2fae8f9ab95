"""One weak-privacy warning per kind in a ``skmia`` command, none with ``-q`` (issue 30).

A DP-SGD audit trains its models bank after bank (rounds), each bank warning that its
ε is vacuous; the command shows that once. The audits run in a subprocess, where the
warnings reach stderr as a user sees them (the tests' ``-W error`` does not apply).
RelaxLoss warns when its ``alpha`` asks for no lower loss than chance, and only then.
"""

import os
import subprocess
import sys
import warnings
from pathlib import Path

import numpy as np
import pytest

from skmia._parallel import _call_in_worker, _raise_again
from skmia.defenses import RelaxLossClassifier, WeakPrivacyWarning

ROOT = Path(__file__).resolve().parents[1]


def _audit(data_home, tmp_path, *extra):
    env = {**os.environ, "PYTHONPATH": str(ROOT), "SKMIA_DATA_HOME": str(data_home)}
    command = [sys.executable, "-c", "import sys; from skmia.cli import main; "
               "sys.exit(main())", "audit", "--dataset", "location", "--methods", "dpsgd",
               "--models", "4", "--canaries", "10", "--epochs", "1", "--hidden", "8",
               "--noise-multiplier", "0.01", "--out", str(tmp_path), *extra]
    done = subprocess.run(command, env=env, capture_output=True, text=True, timeout=300)
    assert done.returncode == 0, done.stderr
    return done.stderr


def test_dpsgd_audit_warns_once(location_data_home, tmp_path):
    stderr = _audit(location_data_home, tmp_path)  # two rounds, a bank each, warning each
    assert stderr.count("WeakPrivacyWarning") == 1, stderr
    assert "epsilon = " in stderr


def test_quiet_dpsgd_audit_warns_never(location_data_home, tmp_path):
    stderr = _audit(location_data_home, tmp_path, "-q")
    assert "WeakPrivacyWarning" not in stderr, stderr


def _weak(epsilon):
    warnings.warn(f"DP-SGD reached epsilon = {epsilon}", WeakPrivacyWarning, stacklevel=1)
    return epsilon


def test_worker_warnings_are_raised_again_in_the_caller():
    # in a worker process (another pid) the warning is kept, not shown there
    with warnings.catch_warnings(record=True) as shown:
        warnings.simplefilter("always")
        result, caught = _call_in_worker(_weak, (3.0,), 1, caller_pid=-1)
    assert result == 3.0 and shown == []
    assert [(str(m), c) for m, c, *_ in caught] == [
        ("DP-SGD reached epsilon = 3.0", WeakPrivacyWarning)]
    with pytest.warns(WeakPrivacyWarning, match="epsilon = 3.0"):  # the caller's filters
        _raise_again(caught)
    # in the caller's own process the call warns as any other call does
    with pytest.warns(WeakPrivacyWarning, match="epsilon = 4.0"):
        assert _call_in_worker(_weak, (4.0,), 1, caller_pid=os.getpid()) == (4.0, ())


def _blobs(n_classes):
    rng = np.random.default_rng(0)
    y = np.arange(60) % n_classes
    return (rng.normal(size=(60, 4)) + y[:, None]).astype(np.float32), y


def test_relaxloss_warns_when_alpha_is_no_better_than_chance():
    X, y = _blobs(2)  # ln 2 = 0.693 <= alpha = 1: the target loss is chance's
    clf = RelaxLossClassifier(alpha=1.0, max_epochs=1, module__hidden_sizes=(4,),
                              random_state=0)
    with pytest.warns(UserWarning, match=r"alpha=1 is not below ln\(2\) = 0.693"):
        clf.fit(X, y)


def test_relaxloss_is_silent_below_chance_loss():
    X, y = _blobs(3)  # ln 3 = 1.10 > alpha = 1
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        RelaxLossClassifier(alpha=1.0, max_epochs=1, module__hidden_sizes=(4,),
                            random_state=0).fit(X, y)
