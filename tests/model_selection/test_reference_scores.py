"""The ``score`` / ``ref_*`` signals computed from a bank of reference models."""

import numpy as np
import pandas as pd
import pytest
import ref_bank_fixtures
import torch
from ref_bank_fixtures import SMALL
from scipy.special import logsumexp
from sklearn.linear_model import LogisticRegression

from skmia.attacks import compute_signals
from skmia.defenses import RelaxLossClassifier
from skmia.model_selection import ReferenceModels

# fixtures shared with the other files split from test_reference_models.py, bound here by name
# (a nested conftest.py would break --doctest-modules)
bank = ref_bank_fixtures.bank
pool = ref_bank_fixtures.pool
target = ref_bank_fixtures.target


# ------------------------------------------------------------------------- signals
def _phi(logits, labels):
    """z_y - logsumexp_{j != y} z_j, written out record by record."""
    out = []
    for z, label in zip(np.asarray(logits, dtype=np.float64), labels, strict=True):
        out.append(z[label] - logsumexp(np.delete(z, label)))
    return np.array(out)


def test_ref_scores_and_membership_columns(bank, target, pool):
    X, y = pool
    index = np.arange(40, 100)
    signals = compute_signals(target, X[index], y[index], reference=bank, pool_index=index)
    K = 4
    assert list(signals.columns[-(2 * K + 1):]) == [
        "score", *(f"ref_score_{k}" for k in range(K)), *(f"ref_in_{k}" for k in range(K))
    ]
    target_logits = target.forward(X[index]).numpy()
    np.testing.assert_allclose(signals["score"], _phi(target_logits, y[index]), rtol=1e-6)
    for k, model in enumerate(bank.estimators_):
        expected = _phi(model.forward(X[index]).numpy(), y[index])
        np.testing.assert_allclose(signals[f"ref_score_{k}"], expected, rtol=1e-6)
        np.testing.assert_array_equal(signals[f"ref_in_{k}"], bank.in_mask_[index, k])
        assert signals[f"ref_in_{k}"].dtype == bool
    assert signals.attrs["reference_fingerprint"] == bank.fingerprint()


def test_records_outside_the_pool_are_out_of_every_model(bank, target, pool):
    X, y = pool
    signals = compute_signals(target, X[:10], y[:10], reference=bank)
    assert not signals[[f"ref_in_{k}" for k in range(4)]].to_numpy().any()


def test_score_survives_extreme_logits():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [3.0, 1.0, -2.0]], dtype=np.float32)
    labels = np.array([0, 1, 2])

    class Fixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = torch.nn.Parameter(torch.zeros(3))

        def forward(self, x):
            return torch.as_tensor(z)[: len(x)] + 0 * self.bias

    signals = compute_signals(Fixed(), np.zeros((3, 2), np.float32), labels)
    expected = _phi(z, labels)
    assert np.isfinite(signals["score"]).all()
    np.testing.assert_allclose(signals["score"], expected, rtol=1e-12)
    # by hand: z_y = 1e4 against 1e4 + log(1 + e^-1e4); p_y = 1/2; -2 - (3 + log(1 + e^-2))
    np.testing.assert_allclose(signals["score"], [1e4, 0.0, -5.0 - np.log1p(np.exp(-2.0))],
                               rtol=1e-9, atol=1e-12)


def test_a_bank_of_sklearn_classifiers_gives_scores_from_probabilities(pool, target):
    X, y = pool
    bank = ReferenceModels(LogisticRegression(max_iter=300), n_estimators=2,
                           random_state=0).fit(X, y)
    signals = compute_signals(target, X[:20], y[:20], reference=bank)
    proba = bank.estimators_[1].predict_proba(X[:20]).astype(np.float64)
    rows = np.arange(20)
    p_y = proba[rows, y[:20]]
    p_rest = np.where(np.eye(3, dtype=bool)[y[:20]], 0.0, proba).sum(axis=1)  # 1 - p_y
    np.testing.assert_allclose(signals["ref_score_1"], np.log(p_y) - np.log(p_rest), rtol=1e-6)


def test_a_bank_of_other_features_is_refused(pool, target):
    X, y = pool
    narrow = ReferenceModels(LogisticRegression(), n_estimators=2, random_state=0)
    narrow.fit(X[:, :6], y)
    with pytest.raises(ValueError, match=r"bank was fitted on records of shape \(6,\)"):
        compute_signals(target, X[:10], y[:10], reference=narrow)


def test_a_bank_of_other_classes_is_refused(pool, target):
    X, y = pool
    other = ReferenceModels(LogisticRegression(), n_estimators=2, random_state=0)
    other.fit(X, np.array(["a", "b", "c"])[y])
    with pytest.raises(ValueError, match=r"bank was fitted on classes \['a', 'b', 'c'\]"):
        compute_signals(target, X[:10], y[:10], reference=other)


def test_an_unfitted_or_foreign_bank_is_refused(pool, target):
    X, y = pool
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        compute_signals(target, X[:5], y[:5], reference=ReferenceModels(LogisticRegression()))
    with pytest.raises(TypeError, match="reference must be a fitted"):
        compute_signals(target, X[:5], y[:5], reference=[target])


@pytest.mark.parametrize(("index", "message"), [
    (np.arange(9), r"one position in the bank's pool per record: 10 entries, got shape \(9,\)"),
    (np.arange(155, 165), r"outside the bank's pool of 160 records .*\[160, 161"),
    (-np.arange(1, 11), r"outside the bank's pool of 160 records"),
    (np.linspace(0, 9, 10), "must hold integer positions"),
])
def test_bad_pool_index_is_refused(bank, target, pool, index, message):
    X, y = pool
    with pytest.raises((ValueError, TypeError), match=message):
        compute_signals(target, X[:10], y[:10], reference=bank, pool_index=index)


def test_pool_index_without_a_bank_is_refused(target, pool):
    X, y = pool
    with pytest.raises(ValueError, match="pool_index is given without reference="):
        compute_signals(target, X[:5], y[:5], pool_index=np.arange(5))


def test_a_relaxloss_bank_works_like_any_defense(pool):
    X, y = pool
    bank = ReferenceModels(RelaxLossClassifier(alpha=0.5, **SMALL), n_estimators=2,
                           random_state=0).fit(X, y)
    assert all(isinstance(m, RelaxLossClassifier) for m in bank.estimators_)
    signals = compute_signals(bank.estimators_[0], X, y, reference=bank,
                              pool_index=np.arange(len(y)))
    frame = signals[["ref_in_0", "ref_in_1"]]
    assert isinstance(frame, pd.DataFrame)
    np.testing.assert_array_equal(frame.sum(axis=1), 1)


def test_label_only_columns_come_after_the_reference_ones(bank, target, pool):
    X, y = pool
    signals = compute_signals(target, X[:30], y[:30], reference=bank, label_only=True,
                              label_only_params={"n_queries": 5, "random_state": 0})
    assert list(signals.columns[-5:]) == [f"label_only_{q}" for q in range(5)]
    assert signals.columns[-6] == "ref_in_3"
    assert signals.attrs["reference_fingerprint"] == bank.fingerprint()
    # a copy with no perturbation at all is classified as the record is: 1 iff correct
    exact = compute_signals(target, X[:30], y[:30], label_only=True,
                            label_only_params={"n_queries": 2, "p": 0.0, "noise_scale": 0.0})
    correct = (target.predict(X[:30]) == y[:30]).astype(np.uint8)
    np.testing.assert_array_equal(exact["label_only_0"], correct)
    np.testing.assert_array_equal(exact["label_only_1"], correct)
    with pytest.raises(ValueError, match="label_only_params is given but label_only is False"):
        compute_signals(target, X[:5], y[:5], label_only_params={"n_queries": 2})
