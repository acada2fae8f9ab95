"""A stop flag, a Ctrl-C or an error ends a vectorised bank trained in threads."""

import bank_fixtures
import numpy as np
import pytest
import torch
from bank_fixtures import TINY, _weights

from skmia.defenses import VanillaClassifier
from skmia.model_selection import ReferenceModels, _vectorized

# fixtures shared with the other files split from test_vectorized_bank.py, bound here by name
# (a nested conftest.py would break --doctest-modules)
pool = bank_fixtures.pool


def test_a_stop_flag_ends_a_group_at_the_start_of_an_epoch(pool):
    import threading

    X, y = pool
    masks = np.ones((len(y), 2), dtype=bool)
    prepared = [_vectorized._prepared(VanillaClassifier(**TINY), X, y, np.arange(len(y)), k)
                for k in range(2)]
    before = [_weights(m).clone() for m in prepared]
    stop = threading.Event()
    stop.set()
    X_pool = torch.as_tensor(X)
    y_pool = torch.as_tensor(prepared[0].label_encoder_.transform(y).astype(np.int64))
    assert _vectorized._train(prepared, [np.flatnonzero(m) for m in masks.T], X_pool,
                              y_pool, stop) is True  # ended short of its epochs
    for model, weights in zip(prepared, before, strict=True):
        assert len(model.history) == 0 and torch.equal(_weights(model), weights)


def _interrupt_at_epoch(monkeypatch, n):
    """A Ctrl-C at the ``n``-th epoch the batched bank runs; returns the epochs begun."""
    run_epoch, calls = _vectorized._run_epoch, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return run_epoch(*args)

    monkeypatch.setattr(_vectorized, "_run_epoch", interrupted)
    return calls


def test_a_keyboard_interrupt_ends_the_models_quietly_as_skorch_does(pool, monkeypatch):
    """fit_batched ends quietly, as skorch's fit does; ReferenceModels.fit then raises."""
    X, y = pool
    _interrupt_at_epoch(monkeypatch, 2)
    masks = np.ones((len(y), 2), dtype=bool)
    for model in _vectorized.fit_batched(VanillaClassifier(**TINY), X, y, masks, [0, 1]):
        assert len(model.history) == 2 and "train_loss" not in model.history[-1]
        assert not model._training_finished()
    _interrupt_at_epoch(monkeypatch, 2)
    bank = ReferenceModels(VanillaClassifier(**TINY), n_estimators=2, random_state=0)
    with pytest.raises(KeyboardInterrupt, match="0 of the 2 reference models finished"):
        bank.fit(X, y)
    assert not hasattr(bank, "estimators_")


def test_a_keyboard_interrupt_in_one_thread_starts_no_other_group(pool, monkeypatch):
    X, y = pool
    monkeypatch.setattr(_vectorized, "CPU_GROUP", 2)  # 4 models: two groups
    calls = _interrupt_at_epoch(monkeypatch, 2)
    masks = np.ones((len(y), 4), dtype=bool)
    models = _vectorized.fit_batched(VanillaClassifier(**TINY), X, y, masks, [0, 1, 2, 3])
    assert [len(m.history) for m in models] == [2, 2, 0, 0]
    assert len(calls) == 2


def test_an_error_in_one_thread_ends_the_other_groups_early(pool, monkeypatch):
    X, y = pool
    monkeypatch.setattr(_vectorized, "CPU_GROUP", 2)
    run_epoch = _vectorized._run_epoch
    epochs = []

    def failing(context, *args):
        epochs.append(id(context))
        if context.models[0].random_state == 0 and len(epochs) > 1:
            raise ValueError("a part failed")
        return run_epoch(context, *args)

    monkeypatch.setattr(_vectorized, "_run_epoch", failing)
    masks = np.ones((len(y), 4), dtype=bool)
    long = VanillaClassifier(**{**TINY, "max_epochs": 2000})
    with pytest.raises(ValueError, match="a part failed"):
        _vectorized.fit_batched(long, X, y, masks, [0, 1, 2, 3], n_threads=2)
    assert len(epochs) < 200  # the other group stopped at its epoch's end, not its last


_SIGINT_CHILD = """
import json, os, signal, sys, threading, time
import numpy as np
from sklearn.datasets import make_classification
from skmia.defenses import VanillaClassifier
from skmia.model_selection import ReferenceModels, _batching, _memory, _vectorized

X, y = make_classification(400, n_features=20, n_informative=8, n_classes=3,
                           random_state=0)
run_epoch, sent = _vectorized._run_epoch, threading.Event()

def signalling(*args):  # a real Ctrl-C once the first epoch of a group has run
    losses = run_epoch(*args)
    if not sent.is_set():
        sent.set()
        os.kill(os.getpid(), signal.SIGINT)
    return losses

_vectorized._run_epoch = signalling
_vectorized.CPU_GROUP = 2
recipe = VanillaClassifier(max_epochs=3000, module__hidden_sizes=(16,), batch_size=32)
began = time.perf_counter()
models = _vectorized.fit_batched(recipe, X.astype(np.float32), y, np.ones((400, 4), bool),
                                 [0, 1, 2, 3], n_threads=2)
print(json.dumps({"epochs": [len(m.history) for m in models],
                  "seconds": time.perf_counter() - began}))
"""


def test_a_real_ctrl_c_ends_a_bank_trained_in_threads():
    """SIGINT reaches the main thread only; the groups in the other threads end at
    their epoch's end and ``fit_batched`` returns, as skorch's fit does (ReferenceModels
    then raises: tests/model_selection/test_reliability_interrupt.py)."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _SIGINT_CHILD], capture_output=True,
                         text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["epochs"]) == 4
    assert all(epochs < 3000 for epochs in result["epochs"])
    assert max(result["epochs"]) >= 1
