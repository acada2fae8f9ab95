"""scikit-learn's estimator checks over every skmia attack, plus the same contract on signals.

Attack estimators read a DataFrame of signals (``skmia.attacks.compute_signals``), so
every check that fits them on an arbitrary numeric array is an expected failure for the
threshold attacks, listed below with its reason; ``test_signals_contract`` then runs
the substance of those checks on real signal tables. The NN attack also reads plain
arrays (the rows of model outputs) and passes nearly every check.

To add an attack, append it to ``ATTACK_ESTIMATORS`` and its expected failures to
``ATTACK_EXPECTED_FAILED_CHECKS``, keyed by class name (tests/estimator_checks.py says
how they are checked; the defenses' checks: tests/defenses/test_common_defenses.py).
"""

import pickle

import numpy as np
import pandas as pd
import pytest
from estimator_checks import Expected, check_expected_failures, run_check
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.estimator_checks import parametrize_with_checks

from skmia.attacks import (
    ConfidenceAttack,
    EntropyAttack,
    GradientNormAttack,
    LabelOnlyAttack,
    LiRAAttack,
    LossAttack,
    ModifiedEntropyAttack,
    NNAttack,
    PopulationAttack,
    QuantileAttack,
    ReferenceAttack,
    RMIAAttack,
)

# ----------------------------------------------------------------------------- attacks
# one instance per class for scikit-learn's checks (they share one validation path) ...
ATTACK_ESTIMATORS = [
    NNAttack(max_iter=30, random_state=0),
    ConfidenceAttack(),
    EntropyAttack(),
    ModifiedEntropyAttack(),
    LossAttack(),
    GradientNormAttack(),
    LiRAAttack(),
    RMIAAttack(gamma=1.0, temperature=1.0),
    ReferenceAttack(),
    PopulationAttack(),
    QuantileAttack(random_state=0),
    LabelOnlyAttack(),
]
# ... and the variants of the thresholds too for the contract on signal tables
SIGNAL_ESTIMATORS = [
    *ATTACK_ESTIMATORS,
    NNAttack(output="proba", max_iter=30, random_state=0),
    LossAttack(per_class=False),
    GradientNormAttack("grad_x_l1", per_class=True),
    LiRAAttack(online=False),
    LiRAAttack(online=False, offline_score="logpdf"),
    LiRAAttack(fix_variance=True),
    LiRAAttack(online=False, fix_variance=True),
    RMIAAttack(offline_a=0.5, gamma=1.0, temperature=1.0),
    RMIAAttack(gamma=2.0, temperature=1.0),
]



_LABELS_0_1 = Expected(
    "membership labels must be 0 (non-member) and 1 (member), by design; the check "
    "fits on other labels ({1, 2} or strings)",
    r"y must hold membership labels 0 \(non-member\) and 1 \(member\); got ",
)
# the TypeError of an attack that reads a DataFrame of signals and gets an array (some
# checks re-raise it as their own AssertionError, from it)
_ARRAY_INPUT = (
    r"^\w+Attack reads a pandas DataFrame of signals \(the output of "
    r"skmia\.attacks\.compute_signals\), got (ndarray|memmap)\.$"
)
_SIGNALS_ONLY = Expected(
    "threshold attacks read named signal columns of a DataFrame (e.g. 'loss', "
    "'proba_*', 'label'); the check fits on an arbitrary numeric array and gets the "
    "TypeError that says so. test_signals_contract checks the same on signal tables",
    _ARRAY_INPUT,
)
# the checks that fit on labels other than 0/1 (they fail on the labels first)
_LABEL_CHECKS = [
    "check_classifier_data_not_an_array",
    "check_classifiers_classes",
    "check_estimators_dtypes",
    "check_fit2d_1feature",
]
_NN_EXPECTED_FAILURES = dict.fromkeys(_LABEL_CHECKS, _LABELS_0_1)
# the checks that fit on an arbitrary numeric array: every attack that reads named
# signal columns fails them with the TypeError that says so
_ARRAY_INPUT_CHECKS = [
    "check_classifiers_train",
    "check_decision_proba_consistency",
    "check_dict_unchanged",
    "check_dont_overwrite_parameters",
    "check_dtype_object",
    "check_estimators_empty_data_messages",
    "check_estimators_fit_returns_self",
    "check_estimators_nan_inf",
    "check_estimators_overwrite_params",
    "check_estimators_pickle",
    "check_f_contiguous_array_estimator",
    "check_fit1d",
    "check_fit2d_predict1d",
    "check_fit_check_is_fitted",
    "check_fit_idempotent",
    "check_fit_score_takes_y",
    "check_methods_sample_order_invariance",
    "check_methods_subset_invariance",
    "check_n_features_in",
    "check_n_features_in_after_fitting",
    "check_pipeline_consistency",
    "check_positive_only_tag_during_fit",
    "check_readonly_memmap_input",
    "check_supervised_y_2d",
]
_THRESHOLD_EXPECTED_FAILURES = {
    **_NN_EXPECTED_FAILURES,
    **dict.fromkeys(_ARRAY_INPUT_CHECKS, _SIGNALS_ONLY),
}
_REFERENCE_SIGNALS_ONLY = Expected(
    "attacks calibrated by reference models, population records or label-only queries "
    "read named signal columns of a DataFrame ('score', 'ref_score_*', 'ref_in_*', "
    "'loss', 'feature_*', 'label_only_*'); the check fits on an arbitrary numeric array and gets "
    "the TypeError that says so. test_signals_contract checks the same on signal tables",
    _ARRAY_INPUT,
)
_CALIBRATED_EXPECTED_FAILURES = {
    **_NN_EXPECTED_FAILURES,
    **dict.fromkeys(_ARRAY_INPUT_CHECKS, _REFERENCE_SIGNALS_ONLY),
}
ATTACK_EXPECTED_FAILED_CHECKS = {
    "NNAttack": _NN_EXPECTED_FAILURES,
    "ConfidenceAttack": _THRESHOLD_EXPECTED_FAILURES,
    "EntropyAttack": _THRESHOLD_EXPECTED_FAILURES,
    "ModifiedEntropyAttack": _THRESHOLD_EXPECTED_FAILURES,
    "LossAttack": _THRESHOLD_EXPECTED_FAILURES,
    "GradientNormAttack": _THRESHOLD_EXPECTED_FAILURES,
    "LiRAAttack": _CALIBRATED_EXPECTED_FAILURES,
    "RMIAAttack": _CALIBRATED_EXPECTED_FAILURES,
    "ReferenceAttack": _CALIBRATED_EXPECTED_FAILURES,
    "PopulationAttack": _CALIBRATED_EXPECTED_FAILURES,
    "QuantileAttack": _CALIBRATED_EXPECTED_FAILURES,
    "LabelOnlyAttack": _CALIBRATED_EXPECTED_FAILURES,
}


@parametrize_with_checks(ATTACK_ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    # Expected failures are handled by run_check rather than by parametrize_with_checks'
    # xfail marks: pytest formats a full traceback through sklearn's 5,000-line check
    # module for every marked failure, which costs a third of a second each.
    run_check(estimator, check, ATTACK_EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {}))


def test_every_expected_failure_carries_a_reason_and_a_message():
    check_expected_failures(ATTACK_EXPECTED_FAILED_CHECKS)


# ------------------------------------------------- the same contract, on signal tables
def _signal_table(n, rng, *, n_classes=4, leak=1.5):
    """Signals of every kind with a membership effect: members get larger logits."""
    y = np.r_[np.ones(n // 2, dtype=np.int64), np.zeros(n - n // 2, dtype=np.int64)]
    label = rng.integers(0, n_classes, n)
    logits = rng.normal(size=(n, n_classes)).astype(np.float32)
    logits[np.arange(n), label] += (1.0 + leak * y).astype(np.float32)
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    table = {f"logit_{k}": logits[:, k] for k in range(n_classes)}
    table.update({f"proba_{k}": proba[:, k] for k in range(n_classes)})
    table["label"] = label
    table["loss"] = -np.log(proba[np.arange(n), label])
    for name in ("grad_x_l1", "grad_x_l2", "grad_w_l1", "grad_w_l2"):
        table[name] = table["loss"] * rng.uniform(0.5, 2.0, n)
    # the logit-scaled confidence, and 8 reference models, each record IN half of them:
    # OUT scores scatter around the record's non-member level, IN ones are higher
    others = np.where(np.arange(n_classes) == label[:, None], -np.inf, logits.astype(np.float64))
    table["score"] = logits[np.arange(n), label] - logsumexp(others, axis=1)
    n_ref = 8
    inside = rng.permuted(np.tile(np.arange(n_ref) < n_ref // 2, (n, 1)), axis=1)
    level = table["score"] - leak * y
    ref = level[:, None] + rng.normal(scale=0.5, size=(n, n_ref)) + leak * inside
    table.update({f"ref_score_{k}": ref[:, k] for k in range(n_ref)})
    table.update({f"ref_in_{k}": inside[:, k] for k in range(n_ref)})
    # label-only queries: members' perturbed copies stay right more often
    correct = rng.random((n, 16)) < (0.4 + 0.4 * y)[:, None]
    table.update({f"label_only_{q}": correct[:, q].astype(np.uint8) for q in range(16)})
    # the records' own features (QMIA's regressor reads them)
    table.update({f"feature_{j}": rng.normal(size=n) for j in range(3)})
    return pd.DataFrame(table), y


@pytest.fixture(scope="module")
def signals():
    return _signal_table(400, np.random.default_rng(0))


def _ids(estimators):
    return [repr(e) for e in estimators]


@pytest.mark.parametrize("attack", SIGNAL_ESTIMATORS, ids=_ids(SIGNAL_ESTIMATORS))
def test_signals_contract(attack, signals):
    X, y = signals
    X_before = X.copy()
    params = attack.get_params()
    with pytest.raises(NotFittedError):
        clone(attack).predict(X)

    fitted = clone(attack)
    assert fitted.fit(X, y) is fitted
    assert fitted.get_params() == params  # fit does not touch the parameters
    pd.testing.assert_frame_equal(X, X_before)  # nor the signals
    assert fitted.classes_.tolist() == [0, 1]
    assert fitted.n_features_in_ == len(fitted.feature_names_in_)
    assert set(fitted.feature_names_in_) <= set(X.columns)

    decision = fitted.decision_function(X)
    proba = fitted.predict_proba(X)
    pred = fitted.predict(X)
    assert decision.shape == pred.shape == (len(X),)
    assert proba.shape == (len(X), 2)
    np.testing.assert_allclose(proba.sum(axis=1), 1.0)
    assert set(np.unique(pred)) <= {0, 1}
    # predict_proba[:, 1] is a monotone function of decision_function
    order = np.argsort(decision, kind="stable")
    assert np.all(np.diff(proba[order, 1]) >= 0)
    # higher for members, on data where members are easy to find
    assert decision[y == 1].mean() > decision[y == 0].mean()
    assert fitted.score(X, y) > 0.6

    # refitting gives the same model; so does a pickle round trip
    again = clone(attack).fit(X, y)
    np.testing.assert_array_equal(again.decision_function(X), decision)
    restored = pickle.loads(pickle.dumps(fitted))  # noqa: S301 - our own bytes
    np.testing.assert_array_equal(restored.predict(X), pred)

    # each record's outputs do not depend on the others: order and subsets
    perm = np.random.default_rng(1).permutation(len(X))
    # (up to float rounding: the NN attack's matrix products are blocked by batch size)
    np.testing.assert_allclose(fitted.decision_function(X.iloc[perm]), decision[perm], rtol=1e-6)
    np.testing.assert_array_equal(fitted.predict(X.iloc[perm]), pred[perm])
    np.testing.assert_allclose(fitted.decision_function(X.iloc[:7]), decision[:7], rtol=1e-6)

    # column order and extra columns do not matter
    shuffled = X[X.columns[::-1]].assign(unused=1.0)
    np.testing.assert_allclose(fitted.decision_function(shuffled), decision)
