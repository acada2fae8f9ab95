"""DP-SGD as an estimator: the modules it accepts (batch norm, tied weights), its warnings,
clone, pickle, grid search and bad values."""

import pickle

import dpsgd_fixtures
import numpy as np
import pytest
import torch
from dpsgd_fixtures import NET, SMALL
from sklearn.base import clone
from sklearn.model_selection import GridSearchCV
from torch import nn

from skmia.defenses._dpsgd import DPSGDClassifier, WeakPrivacyWarning

# fixtures shared with the other files split from test_dpsgd.py, bound here by name
# (a nested conftest.py would break --doctest-modules)
data = dpsgd_fixtures.data


class _WithBatchNorm(nn.Module):
    def __init__(self, n_features, n_classes):
        super().__init__()
        self.body = nn.Sequential(nn.Linear(n_features, 16), nn.BatchNorm1d(16), nn.ReLU())
        self.head = nn.Linear(16, n_classes)

    def forward(self, x):
        return self.head(self.body(x))


def test_batchnorm_is_replaced_and_the_model_trains(data):
    X, y = data
    clf = DPSGDClassifier(**{**SMALL, "noise_multiplier": 1.0}, module=_WithBatchNorm,
                          max_epochs=5).fit(X, y)
    norms = [m for m in clf.module_.modules() if isinstance(m, (nn.BatchNorm1d, nn.GroupNorm))]
    assert [(type(m), m.num_groups) for m in norms] == [(nn.GroupNorm, 1)]
    assert clf.score(X, y) > 0.6  # 3 classes: chance is 1/3


class _ConvWithBatchNorm(nn.Module):
    def __init__(self, n_classes):
        super().__init__()
        self.conv = nn.Conv2d(3, 64, 3, padding=1)
        self.bn = nn.BatchNorm2d(64)
        self.fc = nn.Linear(64, n_classes)

    def forward(self, x):
        return self.fc(torch.relu(self.bn(self.conv(x))).mean(dim=(2, 3)))


def test_image_batchnorm_becomes_opacus_groupnorm():
    rng = np.random.default_rng(0)
    images = rng.normal(size=(40, 3, 6, 6)).astype(np.float32)
    clf = DPSGDClassifier(**{**SMALL, "batch_size": 20}, module=_ConvWithBatchNorm,
                          max_epochs=1).fit(images, rng.integers(0, 2, 40))
    assert isinstance(clf.module_.bn, nn.GroupNorm) and clf.module_.bn.num_groups == 32
    assert clf.predict_proba(images).shape == (40, 2)


class _Tied(nn.Module):
    """One linear layer applied twice: ghost clipping cannot split its norm."""

    def __init__(self, n_features, n_classes):
        super().__init__()
        self.fc = nn.Linear(n_features, n_features)
        self.out = nn.Linear(n_features, n_classes)

    def forward(self, x):
        return self.out(torch.tanh(self.fc(torch.tanh(self.fc(x)))))


def test_auto_mode_falls_back_from_ghost_clipping(data):
    X, y = data
    auto = DPSGDClassifier(**SMALL, module=_Tied, max_epochs=1).fit(X, y)
    hooks = DPSGDClassifier(**SMALL, module=_Tied, max_epochs=1,
                            grad_sample_mode="hooks").fit(X, y)
    assert auto.grad_sample_mode_ == "hooks" and auto.n_steps_ == 10
    for p, q in zip(auto.module_.parameters(), hooks.module_.parameters(), strict=True):
        torch.testing.assert_close(p, q)
    with pytest.raises(NotImplementedError, match="Ghost Clipping"):
        DPSGDClassifier(**SMALL, module=_Tied, max_epochs=1,
                        grad_sample_mode="ghost").fit(X, y)


def test_ghost_clipping_is_the_default(data):
    X, y = data
    clf = DPSGDClassifier(**NET, **SMALL, max_epochs=1).fit(X, y)
    assert clf.grad_sample_mode == "auto" and clf.grad_sample_mode_ == "ghost"


def test_reference_noise_gives_a_loud_warning(data):
    X, y = data
    clf = DPSGDClassifier(**NET, **{**SMALL, "noise_multiplier": 0.01}, max_epochs=2)
    with pytest.warns(WeakPrivacyWarning, match=r"epsilon = [0-9.e+]+ at delta = 1e-05"):
        clf.fit(X, y)
    assert clf.epsilon_ > 1e3


def test_delta_not_below_one_over_n_warns(data):
    X, y = data
    with pytest.warns(WeakPrivacyWarning, match="not below 1/n"):
        DPSGDClassifier(**NET, **SMALL, delta=0.01, max_epochs=1).fit(X, y)


def _has_opacus_state(module):
    for sub in module.modules():
        if sub._forward_hooks or sub._backward_hooks or hasattr(sub, "activations"):
            return True
        if hasattr(sub, "autograd_grad_sample_hooks"):
            return True
    return any(hasattr(p, "grad_sample") or hasattr(p, "summed_grad")
               for p in module.parameters())


def test_clone_pickle_and_no_training_machinery_left(data):
    X, y = data
    clf = DPSGDClassifier(**NET, **SMALL, max_epochs=2).fit(X, y)
    assert not _has_opacus_state(clf.module_)
    assert getattr(clf, "_private", None) is None
    restored = pickle.loads(pickle.dumps(clf))  # noqa: S301 - our own object
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X), rtol=1e-6)
    assert restored.epsilon_ == clf.epsilon_
    restored.partial_fit(X, y)  # training machinery is re-created
    assert restored.n_steps_ == 40
    fresh = clone(clf)
    assert fresh.get_params()["noise_multiplier"] == 2.0 and not hasattr(fresh, "epsilon_")


def test_grid_search(data):
    X, y = data
    search = GridSearchCV(DPSGDClassifier(**NET, **SMALL, max_epochs=2),
                          {"noise_multiplier": [1.5, 3.0]}, cv=2)
    search.fit(X, y)
    assert search.best_params_["noise_multiplier"] in (1.5, 3.0)
    assert search.best_estimator_.epsilon_ < 10


@pytest.mark.parametrize(
    "params, match",
    [
        ({"noise_multiplier": -1.0}, "noise_multiplier"),
        ({"noise_multiplier": float("inf")}, r"'noise_multiplier' .* \[0.0, inf\)\. Got inf"),
        ({"max_grad_norm": 0.0}, "max_grad_norm"),
        ({"delta": 1.0}, "delta"),
        ({"delta": 0.0}, "delta"),
        ({"target_epsilon": 0.0}, "target_epsilon"),
        ({"target_epsilon": -2.0}, "target_epsilon"),
        ({"accountant": "gdp"}, "accountant"),
        ({"grad_sample_mode": "fast"}, "grad_sample_mode"),
    ],
)
def test_bad_values(data, params, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        DPSGDClassifier(**NET, **{**SMALL, **params}, max_epochs=1).fit(X, y)


def test_unreachable_target_epsilon(data):
    X, y = data
    with pytest.raises(ValueError, match="no noise multiplier reaches target_epsilon"):
        DPSGDClassifier(**NET, **SMALL, target_epsilon=1e-7, max_epochs=1).fit(X, y)
