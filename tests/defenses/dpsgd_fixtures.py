"""What the tests of DP-SGD share (test_dpsgd*.py): a small recipe and its data."""

import numpy as np
import pytest
from sklearn.datasets import make_classification

DELTA = 1e-5


# 240 rows, batch 24: sample rate 0.1, 10 steps per epoch
NET = {"module__hidden_sizes": (16,)}


SMALL = {
    "batch_size": 24,
    "lr": 0.1,
    "milestones": (),
    "noise_multiplier": 2.0,
    "accountant": "rdp",
    "random_state": 0,
}


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(240, n_features=12, n_informative=8, n_classes=3,
                               random_state=0)
    return X.astype(np.float32), y
