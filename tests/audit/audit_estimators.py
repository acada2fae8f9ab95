"""What the tests of audit_defense share (test_audit_defense*.py): estimators that leak
nothing, memorise everything or must not be trained, and a small blob data set."""

import numpy as np
import pytest
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils import check_random_state

TINY = {"module__hidden_sizes": (16,), "max_epochs": 3, "batch_size": 32}


# ------------------------------------------------------------ test estimators
class NoiseClassifier(ClassifierMixin, BaseEstimator):
    """Random linear logits drawn from random_state: ignores its training data."""

    def __init__(self, random_state=None):
        self.random_state = random_state

    def fit(self, X, y):
        self.classes_ = np.unique(y)
        rng = check_random_state(self.random_state)
        self.coef_ = rng.normal(size=(np.asarray(X).shape[1], len(self.classes_)))
        return self

    def predict_proba(self, X):
        z = np.asarray(X) @ self.coef_
        z = np.exp(z - z.max(axis=1, keepdims=True))
        return z / z.sum(axis=1, keepdims=True)

    def predict(self, X):
        return self.classes_[np.argmax(self.predict_proba(X), axis=1)]


class Memorizer(ClassifierMixin, BaseEstimator):
    """Certain of the label of every record it trained on, unsure elsewhere (predicts
    classes_[0]). ``epsilon_`` says whether its training set was as the protocol wants:
    every poison, every watched row exactly ``copies`` times."""

    def __init__(self, poisons=None, watched=None, copies=1, random_state=None):
        self.poisons = poisons
        self.watched = watched
        self.copies = copies
        self.random_state = random_state

    def fit(self, X, y):
        X = np.asarray(X)
        self.classes_ = np.unique(y)
        self.memory_ = {row.tobytes(): label for row, label in zip(X, y, strict=True)}
        rows = [r.tobytes() for r in X]
        ok = all(p.tobytes() in self.memory_ for p in (self.poisons if self.poisons
                                                        is not None else []))
        for w in self.watched if self.watched is not None else []:
            ok &= rows.count(w.tobytes()) in (0, self.copies)
        self.epsilon_ = float(ok)
        return self

    def predict_proba(self, X):
        proba = np.full((len(X), len(self.classes_)), 1.0 / len(self.classes_))
        for i, row in enumerate(np.asarray(X)):
            if row.tobytes() in self.memory_:
                proba[i] = 0.01 / len(self.classes_)
                proba[i, np.searchsorted(self.classes_, self.memory_[row.tobytes()])] = 0.99
        return proba

    def predict(self, X):
        proba = self.predict_proba(X)
        sure = proba.max(axis=1) > 0.5
        return np.where(sure, self.classes_[np.argmax(proba, axis=1)], self.classes_[0])


class Untrainable(NoiseClassifier):
    def fit(self, X, y):
        raise AssertionError("trained although the input was bad")


@pytest.fixture(scope="module")
def blobs():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(400, 6)).astype(np.float32)
    y = (X[:, 0] + 0.5 * rng.normal(size=400) > 0).astype(np.int64)
    return X, y
