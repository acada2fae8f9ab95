"""What the tests of the vectorised bank share (test_vectorized_*.py): a tiny pool, the
recipe, the rounding of a batched step, and a model of the bank trained alone."""

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification

TINY = {"max_epochs": 3, "module__hidden_sizes": (12,), "batch_size": 16}


#: float32 rounding of a few short trainings: a batched step sums each model's gradient
#: over its rows padded to the step's longest batch, a model alone over its own rows, so
#: the sums round differently (largest difference measured over 8 seeds of these
#: vanilla and RelaxLoss banks, weights and momentum of magnitude up to ~2: 1.1e-6)
ROUNDING = {"rtol": 0, "atol": 2e-6}


@pytest.fixture(scope="module")
def pool():
    X, y = make_classification(121, n_features=6, n_informative=4, n_classes=3,
                               random_state=1)
    return X.astype(np.float32), y


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.module_.parameters()])


def _alone(bank, k, X, y):
    """Model ``k`` of ``bank`` trained alone: its rows, its seed, the usual fit."""
    rows = bank.in_mask_[:, k]
    model = clone(bank.estimator).set_params(random_state=int(bank.seeds_[k]))
    return model.fit(X[rows], y[rows])


def _counting(function, calls):
    def counted(*args, **kwargs):
        calls.append(1)
        return function(*args, **kwargs)
    return staticmethod(counted)
