"""What the tests of the bank of reference models share (test_reference_models.py,
test_bank_parallel.py, test_reference_scores.py): a pool, a bank, a target."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification

from skmia.defenses import VanillaClassifier
from skmia.model_selection import ReferenceModels

SMALL = {"max_epochs": 3, "module__hidden_sizes": (16,), "batch_size": 32}


@pytest.fixture(scope="module")
def pool():
    X, y = make_classification(160, n_features=8, n_informative=5, n_classes=3,
                               random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def bank(pool):
    X, y = pool
    return ReferenceModels(VanillaClassifier(**SMALL), n_estimators=4,
                           random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def target(pool):
    X, y = pool
    return VanillaClassifier(**SMALL, random_state=7).fit(X[:80], y[:80])


def _weights(model):
    return [p.detach().clone() for p in model.module_.parameters()]


def _same_models(a, b):
    return all(torch.equal(p, q) for p, q in zip(_weights(a), _weights(b), strict=True))


def _close_models(a, b, atol=1e-6):
    """Equal to float32 rounding: what a batched bank promises against a model trained
    alone."""
    return all(torch.allclose(p, q, rtol=0, atol=atol)
               for p, q in zip(_weights(a), _weights(b), strict=True))


@pytest.fixture(scope="module")
def per_model_bank(pool):
    X, y = pool
    return ReferenceModels(VanillaClassifier(**SMALL), n_estimators=4, random_state=0,
                           vectorize=False).fit(X, y)
