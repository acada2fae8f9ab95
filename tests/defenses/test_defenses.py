"""The shared behaviour of every defense: the base class and its reference defaults."""

import pickle

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from torch import nn

from skmia.defenses import (
    ConfidencePenaltyClassifier,
    DistillationClassifier,
    DropoutClassifier,
    EarlyStoppingClassifier,
    LabelSmoothingClassifier,
    RelaxLossClassifier,
    ValidationData,
    VanillaClassifier,
)
from skmia.nn import MLP

ALL = [
    VanillaClassifier,
    RelaxLossClassifier,
    ConfidencePenaltyClassifier,
    LabelSmoothingClassifier,
    DropoutClassifier,
    EarlyStoppingClassifier,
    DistillationClassifier,
]
SMALL = {"max_epochs": 4, "module__hidden_sizes": (16,), "lr": 0.05, "random_state": 0}


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(
        240, n_features=12, n_informative=8, n_classes=3, random_state=0
    )
    return X.astype(np.float32), y


def weights(clf):
    return [p.detach().clone() for p in clf.module_.parameters()]


def same_weights(a, b):
    return all(torch.equal(p, q) for p, q in zip(weights(a), weights(b), strict=True))


def test_reference_defaults():
    clf = RelaxLossClassifier(alpha=1)
    params = clf.get_params()
    assert params["module"] is MLP
    assert params["optimizer"] is torch.optim.SGD
    assert params["criterion"] is torch.nn.CrossEntropyLoss
    assert (params["lr"], params["batch_size"], params["max_epochs"]) == (0.1, 128, 120)
    assert params["optimizer__momentum"] == 0.9
    assert params["optimizer__weight_decay"] == 1e-4
    assert params["milestones"] == (50, 100) and params["gamma"] == 0.1
    assert params["train_split"] is None
    assert params["iterator_train__shuffle"] is True


def test_module_is_sized_from_the_data(data):
    X, y = data
    clf = VanillaClassifier(**SMALL).fit(X, y)
    first, last = clf.module_.features[0], clf.module_.classifier
    assert first.in_features == 12 and last.out_features == 3
    assert clf.n_features_in_ == 12
    np.testing.assert_array_equal(clf.train_indices_, np.arange(len(X)))
    assert clf.optimizer_.param_groups[0]["momentum"] == 0.9


def test_module_taking_only_n_classes(data):
    X, y = data

    class Linear(nn.Module):
        def __init__(self, n_classes):
            super().__init__()
            self.fc = nn.LazyLinear(n_classes)

        def forward(self, x):
            return self.fc(x)

    clf = VanillaClassifier(module=Linear, max_epochs=2, random_state=0).fit(X, y)
    assert clf.module_.fc.out_features == 3
    assert clf.predict_proba(X).shape == (len(X), 3)


def test_learning_rate_steps_at_epoch_start(data):
    X, y = data
    clf = VanillaClassifier(**{**SMALL, "max_epochs": 5}, milestones=(2, 4), gamma=0.5)
    clf.fit(X, y)
    assert clf.history[:, "lr"] == pytest.approx([0.05, 0.05, 0.025, 0.025, 0.0125])


def test_same_seed_same_weights_and_global_rng_untouched(data):
    X, y = data
    state = torch.random.get_rng_state()
    a = DropoutClassifier(**SMALL).fit(X, y)
    b = DropoutClassifier(**SMALL).fit(X, y)
    assert torch.equal(state, torch.random.get_rng_state()), "global torch RNG changed"
    assert same_weights(a, b)
    c = DropoutClassifier(**{**SMALL, "random_state": 1}).fit(X, y)
    assert not same_weights(a, c)


def test_any_label_type(data):
    X, y = data
    for labels in (np.array(["cat", "dog", "eel"])[y], y * 10 + 7):
        clf = VanillaClassifier(**SMALL).fit(X, labels)
        np.testing.assert_array_equal(clf.classes_, np.unique(labels))
        assert set(clf.predict(X)) <= set(labels)
        assert clf.score(X, labels) > 0.5
        proba = clf.predict_proba(X)
        np.testing.assert_allclose(proba.sum(axis=1), 1.0, rtol=1e-5)
        np.testing.assert_array_equal(clf.predict(X), clf.classes_[proba.argmax(axis=1)])


def test_predict_proba_is_softmax_of_logits(data):
    X, y = data
    clf = VanillaClassifier(**SMALL).fit(X, y)
    logits = clf.module_(torch.as_tensor(X[:5]))
    np.testing.assert_allclose(
        clf.predict_proba(X[:5]), torch.softmax(logits, 1).detach().numpy(), rtol=1e-5
    )


def test_explicit_validation_data(data):
    X, y = data
    clf = VanillaClassifier(**SMALL, train_split=ValidationData(X[:40], y[:40]))
    clf.fit(X[40:], y[40:])
    assert np.isfinite(clf.history[-1, "valid_loss"])
    assert 0.0 <= clf.history[-1, "valid_acc"] <= 1.0
    np.testing.assert_array_equal(clf.train_indices_, np.arange(200))


def test_partial_fit_continues(data):
    X, y = data
    clf = VanillaClassifier(**SMALL)
    clf.partial_fit(X, y)
    clf.partial_fit(X, y)
    assert len(clf.history) == 2 * SMALL["max_epochs"]
    with pytest.raises(ValueError, match="labels not seen in fit"):
        clf.partial_fit(X, y + 5)


@pytest.mark.parametrize("cls", ALL, ids=lambda c: c.__name__)
def test_clone_and_pickle_round_trip(data, cls):
    X, y = data
    clf = cls(**SMALL).fit(X, y)
    assert clone(clf).get_params()["lr"] == SMALL["lr"]
    restored = pickle.loads(pickle.dumps(clf))  # noqa: S301 - our own object
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X), rtol=1e-6)


def test_pipeline_and_grid_search(data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), RelaxLossClassifier(alpha=0.1, **SMALL))
    assert pipe.fit(X, y).score(X, y) > 0.5
    search = GridSearchCV(
        RelaxLossClassifier(**SMALL), {"alpha": [0.1, 0.5]}, cv=2, scoring="accuracy"
    )
    search.fit(X, y)
    assert search.best_params_["alpha"] in (0.1, 0.5)  # both below ln 3: no warning
    assert len(search.cv_results_["mean_test_score"]) == 2


@pytest.mark.parametrize(
    "X_bad, y_bad, error, match",
    [
        ("nan", None, ValueError, "NaN"),
        ("inf", None, ValueError, "infinity"),
        ("text", None, ValueError, "numeric"),
        ("3d", None, ValueError, "2-D table"),
        (None, "short", ValueError, "inconsistent numbers of samples"),
        (None, "one", ValueError, "only one class"),
        (None, "float", ValueError, "Unknown label type"),
        (None, "none", ValueError, "requires y to be passed"),
    ],
)
def test_bad_training_input(data, X_bad, y_bad, error, match):
    X, y = data
    X = X.copy()
    if X_bad == "nan":
        X[3, 2] = np.nan
    elif X_bad == "inf":
        X[0, 0] = np.inf
    elif X_bad == "text":
        X = np.array([["a"] * 12] * len(y))
    elif X_bad == "3d":
        X = X.reshape(len(y), 3, 4)
    y = {"short": y[:-1], "one": np.zeros_like(y), "float": y + 0.5, "none": None}.get(
        y_bad, y
    )
    with pytest.raises(error, match=match):
        VanillaClassifier(**SMALL).fit(X, y)


def test_bad_prediction_input(data):
    X, y = data
    clf = VanillaClassifier(**SMALL).fit(X, y)
    with pytest.raises(ValueError, match="X has 5 features, but VanillaClassifier is expecting 12"):
        clf.predict_proba(X[:, :5])
    with pytest.raises(ValueError, match="NaN"):
        clf.predict(np.full((2, 12), np.nan))


@pytest.mark.parametrize(
    "clf, match",
    [
        (RelaxLossClassifier(alpha=-1.0, **SMALL), "alpha"),
        (RelaxLossClassifier(upper=1.5, **SMALL), "upper"),
        (RelaxLossClassifier(flatten_mode="text", **SMALL), "flatten_mode"),
        (ConfidencePenaltyClassifier(penalty=-0.1, **SMALL), "penalty"),
        (LabelSmoothingClassifier(smoothing=1.5, **SMALL), "smoothing"),
        (DropoutClassifier(dropout=1.0, **SMALL), "dropout"),
        (DistillationClassifier(temperature=0.0, **SMALL), "temperature"),
        (EarlyStoppingClassifier(snapshot_epochs=(0, 2), **SMALL), "snapshot_epochs"),
        (EarlyStoppingClassifier(patience=2, **SMALL), "explicit validation set"),
    ],
)
def test_bad_hyperparameters(data, clf, match):
    X, y = data
    with pytest.raises(ValueError, match=match):
        clf.fit(X, y)


def test_images_are_accepted(data):
    class TinyConv(nn.Module):
        def __init__(self, n_classes):
            super().__init__()
            self.conv = nn.Conv2d(3, 4, 3, padding=1)
            self.fc = nn.Linear(4, n_classes)

        def forward(self, x):
            return self.fc(self.conv(x).mean(dim=(2, 3)))

    rng = np.random.default_rng(0)
    images = rng.normal(size=(64, 3, 8, 8)).astype(np.float32)
    labels = rng.integers(0, 4, 64)
    clf = RelaxLossClassifier(module=TinyConv, max_epochs=2, random_state=0).fit(images, labels)
    assert clf.flatten_mode_ == "image"
    assert clf.predict_proba(images).shape == (64, 4)
    assert clf.n_features_in_ == 3 * 8 * 8


def test_batches_copy_read_only_arrays_and_share_writable_ones(data):
    # joblib hands workers large arrays as read-only memory maps; torch warns on those
    from skmia.defenses._base import _ArrayBatches

    X, y = data
    X = np.ascontiguousarray(X, dtype=np.float32)
    shared = _ArrayBatches(X, y, 16, shuffle=False)
    assert np.shares_memory(shared.X.numpy(), X)
    X.setflags(write=False)
    copied = _ArrayBatches(X, y, 16, shuffle=False)
    assert not np.shares_memory(copied.X.numpy(), X)
    np.testing.assert_array_equal(copied.X.numpy(), X)
