"""The vectorised bank in chunks and threads, and the no-cold-start rules of
skmia._parallel."""

import warnings

import bank_fixtures
import numpy as np
import pytest
import torch
from bank_fixtures import ROUNDING, TINY, _weights

from skmia import _parallel
from skmia.defenses import VanillaClassifier
from skmia.model_selection import ReferenceModels, _batching, _memory, _vectorized

# fixtures shared with the other files split from test_vectorized_bank.py, bound here by name
# (a nested conftest.py would break --doctest-modules)
pool = bank_fixtures.pool


def test_chunks_give_the_models_of_one_chunk(pool, monkeypatch):
    X, y = pool
    whole = ReferenceModels(VanillaClassifier(**TINY), n_estimators=6, random_state=0)
    whole.fit(X, y)
    seen = []

    def two_at_a_time(n_models, per_model_bytes, device):
        seen.append(per_model_bytes)
        return 2

    monkeypatch.setattr(_vectorized, "chunk_size", two_at_a_time)
    chunked = ReferenceModels(VanillaClassifier(**TINY), n_estimators=6, random_state=0)
    chunked.fit(X, y)
    # 12 hidden units: 6*12+12 + 12*3+3 = 123 parameters, batch 16 of 6 + 12 + 3 values
    assert seen == [4 * (4 * 123 + 4 * 16 * (6 + 12 + 3))]
    for a, b in zip(whole.estimators_, chunked.estimators_, strict=True):
        torch.testing.assert_close(_weights(a), _weights(b), **ROUNDING)


def test_groups_in_threads_give_the_models_of_one_thread(pool, monkeypatch):
    X, y = pool
    monkeypatch.setattr(_vectorized, "CPU_GROUP", 3)  # 7 models: groups of 3, 3 and 1
    trained = []
    train = _vectorized._train

    def recording(models, rows, X_pool, y_pool, stop=None, progress=None):
        trained.append(len(models))
        return train(models, rows, X_pool, y_pool, stop, progress)

    monkeypatch.setattr(_vectorized, "_train", recording)
    X_pool, y_pool = X, y
    masks = np.random.default_rng(0).random((len(y), 7)) < 0.5
    seeds = list(range(7))
    one = _vectorized.fit_batched(VanillaClassifier(**TINY), X_pool, y_pool, masks, seeds)
    two = _vectorized.fit_batched(VanillaClassifier(**TINY), X_pool, y_pool, masks, seeds,
                                  n_threads=2)
    assert trained == [3, 3, 1, 3, 3, 1]  # the CPU groups, serially then in threads
    for a, b in zip(one, two, strict=True):  # bit for bit: the threads change no model
        assert torch.equal(_weights(a), _weights(b))
        assert a.history[-1, "train_loss"] == b.history[-1, "train_loss"]
    assert _batching.group_threads(2, torch_threads=1) == min(2, _parallel.n_cores())
    assert _batching.group_threads(2, torch_threads=2) == 1  # torch shares the work
    assert _batching.group_threads(None, torch_threads=1) == 1


def test_the_chunk_rule(monkeypatch):
    monkeypatch.setattr(_memory, "available_memory", lambda device: 4000)
    assert _memory.chunk_size(64, 100, "cpu") == 10  # a quarter of 4,000 B / 100 B
    assert _memory.chunk_size(8, 100, "cpu") == 8
    assert _memory.chunk_size(64, 10**6, "cpu") == 1


# ------------------------------------------------------------------ no cold start
def _square(x):
    return x * x


@pytest.fixture
def workers_asked(monkeypatch):
    """The workers each joblib.Parallel of skmia._parallel is asked for, on a 2-core
    machine; the calls themselves run here."""
    monkeypatch.setattr(_parallel, "n_cores", lambda: 2)
    started = []
    real = _parallel.Parallel

    def recording(*args, n_jobs=None, **kwargs):
        started.append(n_jobs)
        return real(*args, n_jobs=1, **kwargs)

    monkeypatch.setattr(_parallel, "Parallel", recording)
    return started


def test_workers_are_capped_at_the_tasks_and_warned_above_the_cores(workers_asked,
                                                                     monkeypatch):
    monkeypatch.setattr(_parallel, "_cold", lambda workers: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _parallel.parallel_map(_square, [(2,), (3,)], n_jobs=24) == [4, 9]
    assert workers_asked == [2]  # two tasks: two workers, however many asked; no warning
    with pytest.warns(UserWarning, match=r"4 workers x 1 torch thread\(s\) = 4 threads on a "
                                         r"machine with 2 cores"):
        _parallel.parallel_map(_square, [(1,)] * 6, n_jobs=4)
    with pytest.warns(UserWarning, match="threads=64 torch threads on a machine with 2 cores"):
        _parallel.check_threads(64)
    with pytest.warns(UserWarning, match="n_jobs=24 asks for 24 cores on a machine with 2"):
        assert _parallel.bank_threads(24) == 2
    assert _parallel.bank_threads(None) == 1


def test_short_work_stays_in_this_process(workers_asked, monkeypatch):
    """With no worker started yet, the first two calls run here, the second timed;
    calls that would not pay for starting workers run here too, with the same results."""
    monkeypatch.setattr(_parallel, "_cold", lambda workers: True)
    tasks = [(k,) for k in range(4)]
    assert _parallel.parallel_map(_square, tasks, n_jobs=2, only_if_it_pays=True) == [
        0, 1, 4, 9]
    assert workers_asked == [1]
    # calls that must run at once (a run's target and shadow) get the workers asked
    assert _parallel.parallel_map(_square, tasks[:2], n_jobs=2) == [0, 1]
    assert workers_asked == [1, 2]
    monkeypatch.setattr(_parallel, "n_cores", lambda: 2)
    start = _parallel.WORKER_START_SECONDS
    # 3 calls left on 2 workers take 2 calls' time: 1 saved, against one start per core
    assert _parallel._pays(start + 0.5, 3, 2) and not _parallel._pays(start - 0.5, 3, 2)
    assert not _parallel._pays(100 * start, 1, 2)  # one call: workers save nothing
    # 4 workers on 2 cores start two at a time: twice the cost
    call = 1.9 * start / 3
    assert _parallel._pays(call, 4, 4) is False  # saves 3 calls (1.9 starts), pays 2
    assert _parallel._pays(call, 4, 2) is True  # saves 2 calls (1.27 starts), pays 1
