"""RelaxLoss's promise, measured on the real Location30 data.

Location30 from the data home, split by ``membership_split(random_state=1000)``; vanilla
and RelaxLoss trained with the same seed, epochs and network (the paper's MLP). Measured
on 2026-11-29 (2-core CPU): vanilla train 1.000 / test 0.479, member loss 0.004,
non-member loss 2.59 (gap 2.59); RelaxLoss (alpha 1, upper 0.3) train 0.971 / test
0.521, member loss 1.08, non-member loss 2.12 (gap 1.04): the gap shrinks 2.5x and test
accuracy does not drop.
"""

import numpy as np
import pytest

from skmia.datasets import fetch_location30
from skmia.defenses import RelaxLossClassifier, VanillaClassifier
from skmia.model_selection import membership_split

SETTINGS = {"max_epochs": 60, "milestones": (), "random_state": 0}


def mean_loss(clf, X, y):
    proba = clf.predict_proba(X)
    p_true = proba[np.arange(len(y)), np.searchsorted(clf.classes_, y)]
    return float(-np.log(np.clip(p_true, 1e-30, None)).mean())


@pytest.fixture(scope="module")
def location(location_data_home):
    X, y = fetch_location30(data_home=location_data_home, download_if_missing=False,
                            return_X_y=True)
    split = membership_split(X, y, random_state=1000)
    return split.target_train, split.target_test


@pytest.fixture(scope="module")
def fitted(location):
    (X, y), _ = location
    vanilla = VanillaClassifier(**SETTINGS).fit(X, y)
    relax = RelaxLossClassifier(alpha=1.0, upper=0.3, **SETTINGS).fit(X, y)
    return vanilla, relax


def test_relaxloss_narrows_the_loss_gap(location, fitted):
    (Xm, ym), (Xn, yn) = location
    gaps = {}
    for name, clf in zip(("vanilla", "relaxloss"), fitted, strict=True):
        gaps[name] = mean_loss(clf, Xn, yn) - mean_loss(clf, Xm, ym)
    assert gaps["vanilla"] > 2.0
    assert gaps["relaxloss"] < 0.6 * gaps["vanilla"], gaps


def test_relaxloss_keeps_utility(location, fitted):
    (Xm, ym), (Xn, yn) = location
    vanilla, relax = fitted
    assert relax.score(Xn, yn) > vanilla.score(Xn, yn) - 0.05


def test_training_loss_settles_near_alpha(location, fitted):
    (Xm, ym), _ = location
    _, relax = fitted
    assert 0.5 < mean_loss(relax, Xm, ym) < 1.5  # alpha = 1
    assert relax.flatten_mode_ == "tabular"
