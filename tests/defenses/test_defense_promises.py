"""What each defense promises, measured against vanilla training on the same data and seed.

Data: a small noisy synthetic task on which the vanilla MLP memorises its members.
"""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from torch import nn

from skmia.defenses import (
    ConfidencePenaltyClassifier,
    DistillationClassifier,
    DropoutClassifier,
    EarlyStoppingClassifier,
    LabelSmoothingClassifier,
    VanillaClassifier,
)

COMMON = {
    "max_epochs": 30,
    "milestones": (),
    "module__hidden_sizes": (128, 64),
    "lr": 0.05,
    "batch_size": 32,
    "random_state": 0,
}


@pytest.fixture(scope="module")
def split():
    X, y = make_classification(
        600, n_features=40, n_informative=12, n_classes=4, flip_y=0.15, class_sep=0.8,
        random_state=3,
    )
    X = X.astype(np.float32)
    return (X[:300], y[:300]), (X[300:], y[300:])


@pytest.fixture(scope="module")
def vanilla(split):
    (X, y), _ = split
    return VanillaClassifier(**COMMON).fit(X, y)


def member_stats(clf, X, y):
    proba = clf.predict_proba(X)
    p_true = proba[np.arange(len(y)), np.searchsorted(clf.classes_, y)]
    entropy = -(proba * np.log(np.clip(proba, 1e-30, None))).sum(axis=1)
    return {
        "loss": -np.log(np.clip(p_true, 1e-30, None)).mean(),
        "max_proba": proba.max(axis=1).mean(),
        "entropy": entropy.mean(),
    }


def loss_gap(clf, split):
    (Xm, ym), (Xn, yn) = split
    return member_stats(clf, Xn, yn)["loss"] - member_stats(clf, Xm, ym)["loss"]


def test_vanilla_memorises(vanilla, split):
    (X, y), (Xn, yn) = split
    assert vanilla.score(X, y) > 0.95
    assert vanilla.score(Xn, yn) < vanilla.score(X, y) - 0.2
    assert loss_gap(vanilla, split) > 1.0


def test_confidence_penalty_raises_member_entropy(vanilla, split):
    (X, y), _ = split
    clf = ConfidencePenaltyClassifier(penalty=0.5, **COMMON).fit(X, y)
    ours, base = member_stats(clf, X, y), member_stats(vanilla, X, y)
    assert ours["entropy"] > 2 * base["entropy"]
    assert loss_gap(clf, split) < loss_gap(vanilla, split)


def test_label_smoothing_caps_member_confidence(vanilla, split):
    (X, y), _ = split
    smoothing = 0.3
    clf = LabelSmoothingClassifier(smoothing=smoothing, **COMMON).fit(X, y)
    # the smoothed target puts 1 - smoothing + smoothing / C on the label: 0.775 here
    assert member_stats(clf, X, y)["max_proba"] < 0.9
    assert member_stats(vanilla, X, y)["max_proba"] > 0.95
    assert loss_gap(clf, split) < loss_gap(vanilla, split)


def test_dropout_sits_before_the_output_layer(vanilla, split):
    (X, y), _ = split
    clf = DropoutClassifier(dropout=0.5, **COMMON).fit(X, y)
    dropouts = [(n, m.p) for n, m in clf.module_.named_modules() if isinstance(m, nn.Dropout)]
    assert dropouts == [("classifier.0", 0.5)]
    # active while training (the weights differ from vanilla's), off when predicting
    assert not np.allclose(clf.predict_proba(X), vanilla.predict_proba(X), atol=1e-3)
    np.testing.assert_array_equal(clf.predict_proba(X), clf.predict_proba(X))
    # without dropout it is vanilla training exactly
    plain = DropoutClassifier(dropout=0.0, **COMMON).fit(X, y)
    np.testing.assert_allclose(plain.predict_proba(X), vanilla.predict_proba(X), rtol=1e-5)


def test_early_snapshot_leaks_less_than_the_final_model(vanilla, split):
    (X, y), _ = split
    clf = EarlyStoppingClassifier(snapshot_epochs=(3, 30), **COMMON).fit(X, y)
    assert sorted(clf.snapshots_) == [3, 30]
    early, final = clf.snapshot(3), clf.snapshot(30)
    assert early.snapshot_epoch_ == 3
    assert loss_gap(early, split) < 0.5 * loss_gap(final, split)
    # the epoch-30 snapshot is the model itself, which is vanilla training
    np.testing.assert_allclose(final.predict_proba(X), clf.predict_proba(X), rtol=1e-6)
    np.testing.assert_allclose(clf.predict_proba(X), vanilla.predict_proba(X), rtol=1e-5)


def test_early_snapshot_equals_a_shorter_run(split):
    (X, y), _ = split
    clf = EarlyStoppingClassifier(snapshot_epochs=(2,), **{**COMMON, "max_epochs": 4}).fit(X, y)
    short = VanillaClassifier(**{**COMMON, "max_epochs": 2}).fit(X, y)
    np.testing.assert_allclose(clf.snapshot(2).predict_proba(X), short.predict_proba(X),
                               rtol=1e-5)
    with pytest.raises(KeyError, match="no snapshot at epoch 3; available: \\[2\\]"):
        clf.snapshot(3)


def test_early_stopping_on_explicit_validation(split):
    (X, y), (Xv, yv) = split
    from skmia.defenses import ValidationData

    clf = EarlyStoppingClassifier(
        patience=3, train_split=ValidationData(Xv, yv), **{**COMMON, "max_epochs": 60}
    ).fit(X, y)
    assert len(clf.history) < 60, "the validation loss stops improving long before"


def test_distillation_softens_members(vanilla, split):
    (X, y), _ = split
    clf = DistillationClassifier(temperature=10.0, alpha=0.9, **COMMON).fit(X, y)
    assert isinstance(clf.teacher_, VanillaClassifier)
    np.testing.assert_allclose(clf.teacher_.predict_proba(X), vanilla.predict_proba(X),
                               rtol=1e-5)
    assert member_stats(clf, X, y)["max_proba"] < member_stats(vanilla, X, y)["max_proba"]


def test_distillation_with_alpha_zero_is_vanilla(vanilla, split):
    (X, y), _ = split
    clf = DistillationClassifier(teacher=vanilla, alpha=0.0, **COMMON).fit(X, y)
    np.testing.assert_allclose(clf.predict_proba(X), vanilla.predict_proba(X), rtol=1e-5)


def test_fitted_teacher_is_used_not_modified(vanilla, split):
    (X, y), _ = split
    before = [p.detach().clone() for p in vanilla.module_.parameters()]
    clf = DistillationClassifier(teacher=vanilla, **{**COMMON, "max_epochs": 2}).fit(X, y)
    assert clf.teacher_ is vanilla
    after = list(vanilla.module_.parameters())
    assert all(torch.equal(a, b) for a, b in zip(before, after, strict=True))


def test_unfitted_teacher_is_cloned_and_fitted(split):
    (X, y), _ = split
    teacher = VanillaClassifier(**{**COMMON, "max_epochs": 2})
    clf = DistillationClassifier(teacher=teacher, **{**COMMON, "max_epochs": 2}).fit(X, y)
    assert clf.teacher_ is not teacher and hasattr(clf.teacher_, "module_")
    assert not hasattr(teacher, "module_"), "the given estimator is never mutated"


def test_teacher_with_other_classes(split):
    (X, y), _ = split
    teacher = VanillaClassifier(**{**COMMON, "max_epochs": 1}).fit(X, y + 1)
    with pytest.raises(ValueError, match="teacher was fitted on classes"):
        DistillationClassifier(teacher=teacher, **COMMON).fit(X, y)


def test_dropout_needs_a_module_taking_dropout(split):
    (X, y), _ = split

    class NoDropout(nn.Module):
        def __init__(self, n_features, n_classes):
            super().__init__()
            self.fc = nn.Linear(n_features, n_classes)

        def forward(self, x):
            return self.fc(x)

    with pytest.raises(ValueError, match="takes a `dropout` argument"):
        DropoutClassifier(module=NoDropout, max_epochs=1).fit(X, y)
