import numpy as np
import pandas as pd
import pytest
from sklearn.calibration import CalibratedClassifierCV
from sklearn.model_selection import GridSearchCV, StratifiedKFold, cross_validate
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import FunctionTransformer

from skmia.attacks import ConfidenceAttack, LossAttack, NNAttack
from skmia.metrics import attack_accuracy, attack_auc, tpr_at_fpr
from skmia.model_selection import (
    attack_accuracy_scorer,
    attack_auc_scorer,
    make_tpr_at_fpr_scorer,
)

N_CLASSES = 4


@pytest.fixture(scope="module")
def signals():
    """An auditor's view: one model's signals on 2,000 members and 2,000 non-members."""
    rng = np.random.default_rng(0)
    n = 4000
    y = np.r_[np.ones(n // 2, dtype=np.int64), np.zeros(n // 2, dtype=np.int64)]
    label = rng.integers(0, N_CLASSES, n)
    logits = rng.normal(size=(n, N_CLASSES)).astype(np.float32)
    logits[np.arange(n), label] += np.where(y == 1, 2.5, 1.0).astype(np.float32)
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    table = {f"logit_{k}": logits[:, k] for k in range(N_CLASSES)}
    table.update({f"proba_{k}": proba[:, k] for k in range(N_CLASSES)})
    table["label"] = label
    table["loss"] = -np.log(proba[np.arange(n), label])
    return pd.DataFrame(table), y


CV = StratifiedKFold(n_splits=2, shuffle=True, random_state=0)


def test_scorers_equal_the_metrics(signals):
    X, y = signals
    attack = LossAttack().fit(X, y)
    decision = attack.decision_function(X)
    assert attack_accuracy_scorer(attack, X, y) == attack_accuracy(y, attack.predict(X))
    assert attack_auc_scorer(attack, X, y) == pytest.approx(attack_auc(y, decision))
    scorer = make_tpr_at_fpr_scorer(max_fpr=0.01)
    assert scorer(attack, X, y) == tpr_at_fpr(y, decision, max_fpr=0.01).tpr
    assert 0 < scorer(attack, X, y) < 1


def test_cross_validate_with_roc_auc_and_the_tpr_scorer(signals):
    X, y = signals
    scoring = {
        "roc_auc": "roc_auc",  # sklearn's own, on decision_function
        "auc": attack_auc_scorer,
        "accuracy": attack_accuracy_scorer,
        "tpr": make_tpr_at_fpr_scorer(max_fpr=0.01),
    }
    result = cross_validate(LossAttack(), X, y, cv=CV, scoring=scoring)
    np.testing.assert_allclose(result["test_roc_auc"], result["test_auc"])
    assert np.all(result["test_auc"] > 0.7)
    assert np.all(result["test_tpr"] > 0.01)  # better than chance at 1 % FPR
    # the estimator's own score with scoring="roc_auc" is the AUC, fold by fold
    own = cross_validate(LossAttack(scoring="roc_auc"), X, y, cv=CV)
    np.testing.assert_allclose(own["test_score"], result["test_auc"])
    default = cross_validate(LossAttack(), X, y, cv=CV)
    np.testing.assert_allclose(default["test_score"], result["test_accuracy"])


def test_pipeline_with_a_signal_transformer(signals):
    X, y = signals
    # an auditor who caps the loss before thresholding: a monotone transform changes
    # nothing about a threshold attack, so the scores must be those of the bare attack
    cap = FunctionTransformer(lambda s: s.assign(loss=np.minimum(s["loss"], 50.0)))
    pipe = make_pipeline(cap, LossAttack())
    piped = cross_validate(pipe, X, y, cv=CV, scoring="roc_auc")
    bare = cross_validate(LossAttack(), X, y, cv=CV, scoring="roc_auc")
    np.testing.assert_allclose(piped["test_score"], bare["test_score"])


def test_grid_search_over_attacks_and_their_parameters(signals):
    X, y = signals
    grid = GridSearchCV(
        make_pipeline(LossAttack()),
        [
            {
                "lossattack": [LossAttack(), ConfidenceAttack()],
                "lossattack__per_class": [True, False],
            },
            {"lossattack": [NNAttack(max_iter=5, random_state=0)]},
        ],
        scoring={"auc": "roc_auc", "tpr": make_tpr_at_fpr_scorer(max_fpr=0.01)},
        refit="tpr",
        cv=CV,
    ).fit(X, y)
    assert len(grid.cv_results_["params"]) == 5
    best = grid.cv_results_["mean_test_tpr"].max()
    assert grid.best_score_ == best
    assert grid.predict(X).shape == (len(X),)


def test_calibrated_probabilities_through_sklearn(signals):
    X, y = signals
    calibrated = CalibratedClassifierCV(LossAttack(), cv=2).fit(X, y)
    proba = calibrated.predict_proba(X)[:, 1]
    assert proba[y == 1].mean() > proba[y == 0].mean()
    np.testing.assert_allclose(proba.mean(), y.mean(), atol=0.05)


def test_bad_max_fpr():
    with pytest.raises(ValueError, match="max_fpr must be in"):
        make_tpr_at_fpr_scorer(max_fpr=2)
