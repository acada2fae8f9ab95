"""One thread policy for torch and the native pools inside skmia's fits and audits."""

import os

import numpy as np
import pytest
import torch
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.datasets import make_classification
from skorch.callbacks import Callback
from threadpoolctl import threadpool_info

import skmia
from skmia.defenses import VanillaClassifier
from skmia.model_selection import ReferenceModels


class _SeenThreads(Callback):
    def on_epoch_begin(self, net, **kwargs):
        net.seen_threads_ = torch.get_num_threads()


def _fit(**kwargs):
    X, y = make_classification(60, n_features=5, random_state=0)
    clf = VanillaClassifier(max_epochs=1, module__hidden_sizes=(4,), random_state=0,
                            callbacks=[("seen", _SeenThreads())], **kwargs)
    return clf.fit(X.astype(np.float32), y)


@pytest.fixture
def caller_threads():
    before = torch.get_num_threads()
    torch.set_num_threads(3)
    yield 3
    torch.set_num_threads(before)


def test_a_fit_runs_on_the_policys_threads_and_restores_the_callers(caller_threads):
    assert skmia.get_threads() == 1  # the default, as the CLI's
    assert _fit().seen_threads_ == 1
    assert torch.get_num_threads() == caller_threads


def test_the_policy_is_overridable_for_a_block_and_for_the_process(caller_threads):
    with skmia.thread_limit(2):
        assert _fit().seen_threads_ == 2
    with skmia.thread_limit(None):  # leave the caller's setting alone
        assert _fit().seen_threads_ == caller_threads
    previous = skmia.set_threads(-1)  # every core this process may use
    try:
        assert skmia.get_threads() == len(os.sched_getaffinity(0))
    finally:
        skmia.set_threads(previous)
    assert skmia.get_threads() == 1


class _NativePools(ClassifierMixin, BaseEstimator):
    """Records the native pools' thread limits seen inside fit."""

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        self.limits_ = sorted({pool["num_threads"] for pool in threadpool_info()})
        return self

    def predict(self, X):
        return np.full(len(X), self.classes_[0])

    def predict_proba(self, X):
        return np.full((len(X), len(self.classes_)), 1 / len(self.classes_))


def test_native_pools_are_limited_inside_a_bank_and_restored_after():
    X, y = make_classification(40, n_features=4, random_state=0)
    before = sorted({pool["num_threads"] for pool in threadpool_info()})
    bank = ReferenceModels(_NativePools(), n_estimators=2, random_state=0).fit(X, y)
    assert all(model.limits_ == [1] for model in bank.estimators_)
    assert sorted({pool["num_threads"] for pool in threadpool_info()}) == before
    with skmia.thread_limit(2):
        bank = ReferenceModels(_NativePools(), n_estimators=2, random_state=0).fit(X, y)
    assert all(max(model.limits_) <= 2 for model in bank.estimators_)


@pytest.mark.parametrize("bad", [0, -2, 1.5, True, "2"])
def test_bad_thread_counts_are_refused(bad):
    with pytest.raises(ValueError, match="threads must be a positive integer, -1"):
        skmia.set_threads(bad)
    assert skmia.get_threads() == 1
