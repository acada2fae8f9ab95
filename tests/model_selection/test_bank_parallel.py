"""The bank of reference models trained with n_jobs or Dask, and skmia._parallel's thread
counts."""

import joblib
import numpy as np
import pytest
import ref_bank_fixtures
import torch
from ref_bank_fixtures import SMALL, _same_models
from sklearn.linear_model import LogisticRegression

from skmia.defenses import VanillaClassifier
from skmia.model_selection import ReferenceModels

# fixtures shared with the other files split from test_reference_models.py, bound here by name
# (a nested conftest.py would break --doctest-modules)
bank = ref_bank_fixtures.bank
per_model_bank = ref_bank_fixtures.per_model_bank
pool = ref_bank_fixtures.pool


# ------------------------------------------------------------------------- parallel
def _assert_same_bank(a, b):
    np.testing.assert_array_equal(a.in_mask_, b.in_mask_)
    assert all(_same_models(m, n) for m, n in zip(a.estimators_, b.estimators_, strict=True))


@pytest.mark.parametrize("vectorize", ["auto", False])
def test_n_jobs_2_gives_the_same_bank(pool, bank, per_model_bank, vectorize):
    X, y = pool
    parallel = ReferenceModels(VanillaClassifier(**SMALL), n_estimators=4, n_jobs=2,
                               random_state=0, vectorize=vectorize).fit(X, y)
    _assert_same_bank(parallel, bank if vectorize else per_model_bank)
    assert torch.get_num_threads() >= 1


def test_sequential_fit_leaves_the_thread_count_alone(pool):
    X, y = pool
    before = torch.get_num_threads()
    ReferenceModels(VanillaClassifier(**SMALL), n_estimators=2, random_state=0).fit(X, y)
    assert torch.get_num_threads() == before


def test_dask_local_cluster_gives_the_same_bank(pool, per_model_bank):
    distributed = pytest.importorskip("dask.distributed")
    X, y = pool
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster), joblib.parallel_config(backend="dask"):
            on_dask = ReferenceModels(VanillaClassifier(**SMALL), n_estimators=4,
                                      random_state=0, vectorize=False).fit(X, y)
    _assert_same_bank(on_dask, per_model_bank)


def test_the_threading_backend_is_warned_about(pool):
    X, y = pool
    bank = ReferenceModels(LogisticRegression(), n_estimators=2, n_jobs=2, random_state=0)
    with joblib.parallel_config(backend="threading"):
        with pytest.warns(UserWarning, match="share torch's random generator"):
            bank.fit(X, y)
    with joblib.parallel_config(backend="threading", n_jobs=1):  # one at a time: fine
        ReferenceModels(LogisticRegression(), n_estimators=2, random_state=0).fit(X, y)


def _threads_inside():
    return torch.get_num_threads()


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_parallel_map_runs_each_call_on_the_threads_asked(n_jobs, monkeypatch):
    from skmia import _parallel
    from skmia._parallel import parallel_map

    monkeypatch.setattr(_parallel, "n_cores", lambda: 4)
    before = torch.get_num_threads()
    assert parallel_map(_threads_inside, [()] * 2, n_jobs=n_jobs) == [1, 1]
    assert parallel_map(_threads_inside, [()] * 2, n_jobs=n_jobs, threads=2) == [2, 2]
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_parallel_map_refuses_a_bad_thread_count(threads):
    from skmia._parallel import parallel_map

    with pytest.raises(ValueError, match="threads must be a positive integer"):
        parallel_map(_threads_inside, [()], threads=threads)


def test_torch_threads_none_leaves_the_count_alone():
    from skmia._parallel import torch_threads

    before = torch.get_num_threads()
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
