"""Ctrl-C while a bank of reference models trains raises KeyboardInterrupt, on every path
(the vectorised bank on two threads and on one, model by model), after keeping the models
that finished."""

import copy
import os
import select
import signal
import subprocess
import sys
import time
from pathlib import Path

import numpy as np
import pytest

from skmia.defenses import VanillaClassifier
from skmia.model_selection import ReferenceModels

ROOT = Path(__file__).resolve().parents[2]
_CHILD = """
import numpy as np
from skorch.callbacks import Callback

import skmia.model_selection._vectorized as vectorized
from skmia.defenses import VanillaClassifier
from skmia.model_selection import ReferenceModels

told = []


def tell():  # the first epoch ended: the parent may interrupt the training now
    if not told:
        told.append(1)
        print("training", flush=True)


class Tell(Callback):
    def on_epoch_end(self, net, **kwargs):
        tell()


record = vectorized._record_batches
vectorized._record_batches = lambda *args: (record(*args), tell())
rng = np.random.default_rng(0)
X, y = rng.normal(size=(48, 4)).astype(np.float32), np.arange(48) % 2
recipe = VanillaClassifier(max_epochs=10**6, module__hidden_sizes=(4,), batch_size=16)
for name, options in [("threads", {"n_jobs": 2, "vectorize": True, "n_estimators": 16}),
                      ("one-thread", {"n_jobs": 1, "vectorize": True, "n_estimators": 16}),
                      ("per-model", {"n_jobs": 1, "vectorize": False, "n_estimators": 2})]:
    if name == "per-model":
        recipe.set_params(callbacks=[("tell", Tell())])
    bank = ReferenceModels(recipe, random_state=0, **options)
    told.clear()
    print("start", name, flush=True)
    try:
        bank.fit(X, y)
        print("returned", name, flush=True)
    except KeyboardInterrupt as exc:
        print("raised", name, hasattr(bank, "estimators_"), exc, flush=True)
"""


def _line(process, seconds):
    """The child's next line, or None after ``seconds``."""
    ready, _, _ = select.select([process.stdout], [], [], seconds)
    return process.stdout.readline().strip() if ready else None


@pytest.mark.skipif(sys.platform == "win32", reason="SIGINT to a process: POSIX")
def test_ctrl_c_raises_on_every_path_of_the_bank():
    env = {**os.environ, "PYTHONPATH": str(ROOT), "OMP_NUM_THREADS": "1"}
    child = subprocess.Popen([sys.executable, "-c", _CHILD], stdout=subprocess.PIPE,
                             stderr=subprocess.PIPE, text=True, env=env)
    answers = []
    try:
        for name in ("threads", "one-thread", "per-model"):
            assert _line(child, 60) == f"start {name}", child.stderr.read()
            assert _line(child, 60) == "training", child.stderr.read()
            time.sleep(0.2)
            child.send_signal(signal.SIGINT)
            answer = _line(child, 20)
            answers.append(answer)
            # on main a per-model bank goes on with its next model: no answer comes
            assert answer is not None, f"{name}: fit neither returned nor raised in 20 s"
    finally:
        child.kill()
        child.wait()
    for name, answer in zip(("threads", "one-thread", "per-model"), answers, strict=True):
        assert answer.startswith(f"raised {name} False interrupted: "), answer
        assert "0 of the" in answer and "the bank is not fitted" in answer


def test_an_interrupted_bank_keeps_its_finished_blocks_and_resumes(monkeypatch):
    rng = np.random.default_rng(1)
    X, y = rng.normal(size=(40, 4)).astype(np.float32), np.arange(40) % 2
    recipe = VanillaClassifier(max_epochs=2, module__hidden_sizes=(4,), batch_size=16)
    whole = ReferenceModels(recipe, n_estimators=6, random_state=3).fit(X, y)
    fitted = list(whole.estimators_)
    for k in (3, 5):  # stopped short of their epochs, as a Ctrl-C leaves them
        fitted[k] = copy.deepcopy(fitted[k]).set_params(max_epochs=5)
    bank = ReferenceModels(recipe, n_estimators=6, random_state=3, warm_start=True)
    monkeypatch.setattr(ReferenceModels, "_fit_models", lambda self, *a: fitted)
    with pytest.raises(KeyboardInterrupt, match="2 of the 6 reference models finished and "
                                                "are kept"):
        bank.fit(X, y)
    assert len(bank.estimators_) == 2 and bank.in_mask_.shape == (40, 2)
    monkeypatch.undo()
    bank.fit(X, y)  # warm start: trains models 2 .. 5 only
    assert bank.estimators_[:2] == whole.estimators_[:2]
    np.testing.assert_array_equal(bank.in_mask_, whole.in_mask_)
    np.testing.assert_array_equal(bank.seeds_, whole.seeds_)
