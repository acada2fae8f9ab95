"""One reader of ``n_jobs`` (skmia._parallel.effective_jobs), on the cores this process
may run on (CPU affinity), as joblib reads it."""

import os
import re
from pathlib import Path

import joblib
import pytest

from skmia._parallel import bank_threads, effective_jobs, n_cores

SKMIA = Path(__file__).resolve().parents[1] / "skmia"


@pytest.fixture
def three_of_64_cores(monkeypatch):
    """A process pinned to 3 cores of a 64-core machine (``taskset -c 0-2``)."""
    monkeypatch.setattr(os, "sched_getaffinity", lambda pid: {0, 1, 2}, raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 64)


@pytest.mark.parametrize(("n_jobs", "workers"), [
    (None, 1), (1, 1), (4, 4), (-1, 3), (-2, 2), (-3, 1), (-10, 1),
])
def test_n_jobs_counts_the_cores_this_process_may_use(three_of_64_cores, n_jobs, workers):
    assert n_cores() == 3
    assert effective_jobs(n_jobs) == workers


def test_without_affinity_it_counts_the_machine(monkeypatch):
    monkeypatch.delattr(os, "sched_getaffinity", raising=False)
    monkeypatch.setattr(os, "cpu_count", lambda: 5)
    assert (effective_jobs(-1), effective_jobs(-2)) == (5, 4)
    monkeypatch.setattr(os, "cpu_count", lambda: None)  # unknown: one core
    assert effective_jobs(-1) == 1


def test_none_is_the_active_joblib_config(three_of_64_cores):
    with joblib.parallel_config(n_jobs=2):
        assert effective_jobs(None) == 2 and effective_jobs(3) == 3
    with joblib.parallel_config(n_jobs=-1):
        assert effective_jobs(None) == 3
    with joblib.parallel_config(backend="sequential"):
        assert effective_jobs(-1) == 1  # that backend reads it: one at a time


@pytest.mark.parametrize("n_jobs", [0, 1.5, True, "2"])
def test_a_wrong_n_jobs_is_named(n_jobs):
    with pytest.raises(ValueError, match="n_jobs must be a nonzero integer or None"):
        effective_jobs(n_jobs)


def test_the_callers_read_it_so(three_of_64_cores):
    from skmia.experiment._run_bank import _bank_round
    from skmia.model_selection._batching import group_threads

    assert bank_threads(-1) == 3 and bank_threads(None) == 1
    assert group_threads(-1, 1) == 3 and group_threads(-2, 1) == 2
    assert _bank_round(64, -1, 0.5) == 8  # max(3 at once, 64 / 8 rounds), in pairs
    assert _bank_round(4, -1, 0.5) == 4  # 3 at once, rounded up to whole pairs


def test_no_other_reader_of_n_jobs():
    """Nothing but skmia._parallel reads the core count or asks joblib what n_jobs
    means."""
    pattern = re.compile(r"cpu_count\(|effective_n_jobs\(|sched_getaffinity\(")
    allowed = {"_parallel.py"}
    found = [str(p.relative_to(SKMIA)) for p in SKMIA.rglob("*.py")
             if pattern.search(p.read_text(encoding="utf-8"))
             and str(p.relative_to(SKMIA)) not in allowed]
    assert found == []
