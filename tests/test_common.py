"""scikit-learn's estimator checks over every skmia estimator, plus the same contract on signals.

Attack estimators read a DataFrame of signals (``skmia.attacks.compute_signals``), so
every check that fits them on an arbitrary numeric array is an expected failure for the
threshold attacks, listed below with its reason; ``test_signals_contract`` then runs
the substance of those checks on real signal tables. The NN attack also reads plain
arrays (the rows of model outputs) and passes nearly every check.

The defenses are skorch classifiers, run with small settings (a 16-unit hidden layer,
10 epochs) so that the checks stay fast yet ``check_classifiers_train`` still has to
learn its toy problems. ``AdvRegClassifier`` needs a reference set of non-members at
``fit``, which the checks do not pass: it runs them as ``AdvRegWithReference``, a
test-only adapter that hands it the training rows as the reference set.

To add estimators, append them to ``ESTIMATORS`` and their expected failures to
``EXPECTED_FAILED_CHECKS``, keyed by class name: each an ``Expected(reason, match)``,
the reason it fails and a regex of the message it must fail with (searched in the
exception and the exceptions it was raised from). A check that fails with any other
message fails the test, and so does one that passes.
"""

import functools
import pickle
import re
from typing import NamedTuple

import numpy as np
import pandas as pd
import pytest
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
from skmia.defenses import (
    AdvRegClassifier,
    ConfidencePenaltyClassifier,
    DistillationClassifier,
    DPSGDClassifier,
    DropoutClassifier,
    EarlyStoppingClassifier,
    HAMPClassifier,
    LabelSmoothingClassifier,
    MemGuardClassifier,
    RelaxLossClassifier,
    SELENAClassifier,
    VanillaClassifier,
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



class Expected(NamedTuple):
    """An expected failure: why the check fails, and a regex of the message it fails with."""

    reason: str
    match: str


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

# ---------------------------------------------------------------------------- defenses
class AdvRegWithReference(AdvRegClassifier):
    """``AdvRegClassifier`` for scikit-learn's checks, which call ``fit(X, y)``.

    A test-only adapter: the training rows double as the reference set, so that the
    checks reach the classifier (the inference network then cannot tell the two apart,
    which the contract checks do not mind). Real use passes real non-members.
    """

    def fit(self, X, y, **fit_params):
        return super().fit(X, y, X_reference=X, y_reference=_reference_labels(y),
                           **fit_params)

    def partial_fit(self, X, y, classes=None, **fit_params):
        if getattr(self, "_reference_input", None) is not None:  # called by fit
            return super().partial_fit(X, y, classes=classes, **fit_params)
        return super().partial_fit(X, y, classes=classes, X_reference=X,
                                   y_reference=_reference_labels(y), **fit_params)


class MemGuardWithReference(MemGuardClassifier):
    """``MemGuardClassifier`` for scikit-learn's checks, which call ``fit(X, y)``: the
    training rows double as the defender's non-members (a test-only adapter, as for
    AdvReg; real use passes real non-members)."""

    def fit(self, X, y, **fit_params):
        return super().fit(X, y, X_reference=X, y_reference=_reference_labels(y),
                           **fit_params)

    def partial_fit(self, X, y, classes=None, **fit_params):
        if getattr(self, "_reference_input", None) is not None:  # called by fit
            return super().partial_fit(X, y, classes=classes, **fit_params)
        return super().partial_fit(X, y, classes=classes, X_reference=X,
                                   y_reference=_reference_labels(y), **fit_params)


def _reference_labels(y):
    # with y=None the classifier's own check of y is the one the check looks for
    return [] if y is None else y


_SMALL = {"max_epochs": 10, "module__hidden_sizes": (16,), "lr": 0.05, "random_state": 0}
DEFENSE_ESTIMATORS = [
    VanillaClassifier(**_SMALL),
    # alpha is the loss level RelaxLoss holds: the checks' toy problems need a low one
    RelaxLossClassifier(alpha=0.1, **_SMALL),
    ConfidencePenaltyClassifier(**_SMALL),
    LabelSmoothingClassifier(**_SMALL),
    DropoutClassifier(**_SMALL),
    EarlyStoppingClassifier(snapshot_epochs=(5,), **_SMALL),
    DistillationClassifier(**_SMALL),
    # sigma = 0.01, the paper's value, warns that it guarantees nothing (epsilon > 10);
    # the checks' datasets fit in one batch, so 20 full-batch steps need sigma = 5; the
    # RDP accountant is the cheaper one to query after every epoch
    DPSGDClassifier(noise_multiplier=5.0, accountant="rdp", **{**_SMALL, "max_epochs": 20}),
    # one warm-up pass of the inference network, rounds of 2 of its batches: fast
    AdvRegWithReference(warmup_passes=1, inference_batches=2, **_SMALL),
    HAMPClassifier(entropy_percentile=0.5, entropy_penalty=0.0, **_SMALL),
    # three sub-models, each record left out of one
    SELENAClassifier(n_models=3, n_excluded=1, **_SMALL),
    # a short Phase I and defender training: the checks query it many times
    MemGuardWithReference(max_steps=10, defender_epochs=10, **_SMALL),
]
_SKORCH_EXPECTED_FAILURES = {
    "check_no_attributes_set_in_init": Expected(
        "skorch's NeuralNet.__init__ creates history_ and initialized_ and stores routed "
        "parameters (module__*, optimizer__*, iterator_train__*) as attributes, by design",
        r"should not set any attribute apart from parameters during init\. Found "
        r"attributes \['history_', 'initialized_', 'iterator_train__shuffle', "
        r"'module__hidden_sizes', 'optimizer__momentum', 'optimizer__weight_decay', "
        r"'virtual_params_'\]",
    ),
    "check_set_params": Expected(
        "skorch's get_params lists its private set _params_to_validate, which the check "
        "sets to a number like every parameter; skorch's set_params then calls .add on "
        "it",
        r"^'float' object has no attribute 'add'$",
    ),
}
DEFENSE_EXPECTED_FAILED_CHECKS = {
    type(est).__name__: _SKORCH_EXPECTED_FAILURES for est in DEFENSE_ESTIMATORS
}

# ----------------------------------------------------------------- every estimator
ESTIMATORS = [*ATTACK_ESTIMATORS, *DEFENSE_ESTIMATORS]
EXPECTED_FAILED_CHECKS = {**ATTACK_EXPECTED_FAILED_CHECKS, **DEFENSE_EXPECTED_FAILED_CHECKS}


def _check_name(check):
    while isinstance(check, functools.partial):
        check = check.func
    return check.__name__


@parametrize_with_checks(ESTIMATORS)
def test_sklearn_compatible(estimator, check):
    # Expected failures are handled here rather than by parametrize_with_checks' xfail
    # marks: pytest formats a full traceback through sklearn's 5,000-line check module
    # for every marked failure, which costs a third of a second each.
    run_check(estimator, check, EXPECTED_FAILED_CHECKS.get(type(estimator).__name__, {}))


def run_check(estimator, check, expected_failures):
    """Run ``check``; if it is among ``expected_failures``, require its own failure.

    Strict both ways: an expected failure that passes fails the test, so the lists stay
    accurate, and so does one that fails with another message than its own, so that a
    check failing for a new reason is not hidden behind the old one.
    """
    name = _check_name(check)
    expected = expected_failures.get(name)
    if expected is None:
        check(estimator)
        return
    try:
        check(estimator)
    except Exception as exc:  # noqa: BLE001 - compared with the expected message below
        messages = _messages(exc)
        if not any(re.search(expected.match, m) for m in messages):
            raise AssertionError(
                f"{name} fails for {estimator!r}, but not with the expected message "
                f"{expected.match!r}; it fails with: {messages}"
            ) from exc
    else:
        pytest.fail(f"{name} passes for {estimator!r}: remove it from EXPECTED_FAILED_CHECKS.")
    pytest.xfail(expected.reason)  # outside the except block: no chained traceback


def _messages(exc):
    """The messages of ``exc`` and of the exceptions it was raised from or during."""
    messages, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        messages.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return messages


def _fails_with(message, cause=None):
    def check_something(estimator):
        raise ValueError(message) from (None if cause is None else TypeError(cause))

    return check_something


def test_an_expected_failure_must_fail_with_its_own_message():
    expected = {"check_something": Expected("why", r"^the known reason: \d+$")}
    with pytest.raises(pytest.xfail.Exception, match="why"):
        run_check(None, _fails_with("the known reason: 42"), expected)
    # searched in the exceptions it was raised from, too
    with pytest.raises(pytest.xfail.Exception, match="why"):
        run_check(None, _fails_with("sklearn's wrapper", cause="the known reason: 7"), expected)
    with pytest.raises(AssertionError, match="not with the expected message .*a new bug"):
        run_check(None, _fails_with("a new bug"), expected)
    def check_something(estimator):
        pass

    with pytest.raises(pytest.fail.Exception, match="check_something passes"):
        run_check(None, check_something, expected)


def test_every_expected_failure_carries_a_reason_and_a_message():
    for name, failures in EXPECTED_FAILED_CHECKS.items():
        for check, expected in failures.items():
            assert isinstance(expected, Expected), (name, check)
            assert expected.reason and expected.match, (name, check)
            re.compile(expected.match)


def test_advreg_runs_the_checks_the_other_defenses_run():
    # through its adapter, AdvReg fails only what every skorch classifier fails
    assert "AdvRegClassifier" not in EXPECTED_FAILED_CHECKS
    assert EXPECTED_FAILED_CHECKS["AdvRegWithReference"] == _SKORCH_EXPECTED_FAILURES
    assert EXPECTED_FAILED_CHECKS["VanillaClassifier"] == _SKORCH_EXPECTED_FAILURES
    adapter = next(e for e in ESTIMATORS if isinstance(e, AdvRegClassifier))
    assert type(adapter) is AdvRegWithReference
    X, y = np.random.default_rng(0).normal(size=(40, 3)).astype(np.float32), np.arange(40) % 2
    fitted = clone(adapter).set_params(max_epochs=2).fit(X, y)
    assert fitted.history[:, "inference_batch_count"][-1] > 0  # the adversary trained


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
