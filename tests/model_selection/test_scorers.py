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


# ------------------------------------------------------------ scorers of defenses
import copy  # noqa: E402
import pickle  # noqa: E402

from sklearn.datasets import make_classification  # noqa: E402
from sklearn.model_selection import KFold  # noqa: E402
from sklearn.preprocessing import StandardScaler  # noqa: E402

import skmia.attacks  # noqa: E402
from skmia.audit import make_privacy_scorer  # noqa: E402
from skmia.defenses import VanillaClassifier  # noqa: E402
from skmia.model_selection import make_budget_refit  # noqa: E402


@pytest.fixture(scope="module")
def noisy_data():
    """600 rows, 4 classes, 30 % of the labels flipped: what an MLP can only memorise."""
    X, y = make_classification(600, n_features=20, n_informative=10, n_classes=4,
                               flip_y=0.3, random_state=0)
    return X.astype(np.float32), y


def small_net(**params):
    return VanillaClassifier(module__hidden_sizes=(128,), milestones=(), random_state=0,
                             **{"max_epochs": 1, **params})


@pytest.mark.parametrize("cv", [KFold(3, shuffle=True, random_state=1),
                                StratifiedKFold(3, shuffle=True, random_state=2)],
                         ids=["KFold", "StratifiedKFold"])
def test_members_are_exactly_each_splits_training_rows(noisy_data, cv, monkeypatch):
    X, y = noisy_data
    seen = []
    original = skmia.attacks.membership_signals

    def spy(model, members, nonmembers, **kwargs):
        seen.append((members, nonmembers))
        return original(model, members, nonmembers, **kwargs)

    monkeypatch.setattr(skmia.attacks, "membership_signals", spy)
    row_of = {row.tobytes(): i for i, row in enumerate(X)}
    result = cross_validate(small_net(), X, y, cv=cv, error_score="raise",
                            scoring={"attack_auc": make_privacy_scorer()})
    splits = list(cv.split(X, y))
    assert len(seen) == len(splits) == len(result["test_attack_auc"])
    for ((X_in, y_in), (X_out, y_out)), (train, test) in zip(seen, splits, strict=True):
        members = [row_of[np.asarray(row, dtype=np.float32).tobytes()] for row in X_in]
        nonmembers = [row_of[np.asarray(row, dtype=np.float32).tobytes()] for row in X_out]
        np.testing.assert_array_equal(members, train)  # exactly, in order
        np.testing.assert_array_equal(nonmembers, test)
        np.testing.assert_array_equal(y_in, y[train])
        np.testing.assert_array_equal(y_out, y[test])


@pytest.fixture(scope="module")
def leak_and_null(noisy_data):
    X, y = noisy_data
    scoring = {"accuracy": "accuracy", "auc": make_privacy_scorer(),
               "acc": make_privacy_scorer(metric="accuracy")}
    cv = KFold(3, shuffle=True, random_state=0)
    overfit = cross_validate(small_net(max_epochs=60, lr=0.1), X, y, cv=cv,
                             scoring=scoring, error_score="raise")
    untrained = cross_validate(small_net(lr=1e-9), X, y, cv=cv, scoring=scoring,
                               error_score="raise")
    return overfit, untrained


def test_an_overfit_defense_leaks_and_an_untrained_one_does_not(leak_and_null):
    overfit, untrained = leak_and_null
    assert overfit["test_auc"].mean() > 0.75
    assert overfit["test_acc"].mean() > 0.65
    assert abs(untrained["test_auc"].mean() - 0.5) < 0.06
    assert abs(untrained["test_acc"].mean() - 0.5) < 0.06


def test_the_scorer_follows_its_documented_rule(noisy_data):
    """Half of the members and half of the non-members (seeded) fit the loss attack; the
    others score it -- recomputed here by hand."""
    X, y = noisy_data
    X_train, y_train, X_test, y_test = X[:400], y[:400], X[400:], y[400:]
    model = small_net(max_epochs=20).fit(X_train, y_train)
    auc = make_privacy_scorer("loss", random_state=3)(model, X_test, y_test)
    accuracy = make_privacy_scorer("loss", metric="accuracy", random_state=3)(
        model, X_test, y_test)
    tpr = make_privacy_scorer("loss", metric="tpr_at_fpr", max_fpr=0.05, random_state=3)(
        model, X_test, y_test)
    signals, membership = skmia.attacks.membership_signals(
        model, (X_train, y_train), (X_test, y_test))
    rng = np.random.RandomState(3)
    fit = np.zeros(len(membership), dtype=bool)
    fit[rng.permutation(np.arange(400))[:200]] = True
    fit[rng.permutation(np.arange(400, 600))[:100]] = True
    attack = LossAttack().fit(signals[fit], membership[fit])
    assert auc == pytest.approx(attack_auc(membership[~fit], -signals["loss"][~fit]))
    assert accuracy == attack_accuracy(membership[~fit], attack.predict(signals[~fit]))
    assert tpr == tpr_at_fpr(membership[~fit], -signals["loss"][~fit], max_fpr=0.05).tpr


def test_a_pipeline_ending_in_a_defense(noisy_data):
    X, y = noisy_data
    # a step that returns its input: the defense's training rows are the split's rows
    same = make_pipeline(FunctionTransformer(None), small_net())
    scores = cross_validate(same, X, y, cv=KFold(2), error_score="raise",
                            scoring={"auc": make_privacy_scorer()})
    bare = cross_validate(small_net(), X, y, cv=KFold(2), error_score="raise",
                          scoring={"auc": make_privacy_scorer()})
    np.testing.assert_allclose(scores["test_auc"], bare["test_auc"])
    # a scaler's output is freed after fit: the error says why
    scaled = make_pipeline(StandardScaler(), small_net())
    with pytest.raises(ValueError, match="In a Pipeline, the defense was fitted on"):
        cross_validate(scaled, X, y, cv=KFold(2), error_score="raise",
                       scoring={"auc": make_privacy_scorer()})


def test_what_the_privacy_scorer_refuses(noisy_data):
    X, y = noisy_data
    X_train, y_train = X[:300], y[:300]
    scorer = make_privacy_scorer()
    with pytest.raises(TypeError, match="scores a fitted skmia defense"):
        scorer(LossAttack(), X, y)
    model = small_net().fit(X_train, y_train)
    with pytest.raises(ValueError, match="return_train_score"):
        scorer(model, X_train, y_train)
    with pytest.raises(ValueError, match="copied or unpickled"):
        scorer(copy.deepcopy(model), X[300:], y[300:])
    with pytest.raises(ValueError, match="return_train_score"):
        cross_validate(small_net(), X, y, cv=KFold(2), scoring={"auc": scorer},
                       return_train_score=True, error_score="raise")
    gone = small_net().fit(X_train.copy(), y_train.copy())  # the arrays are freed
    with pytest.raises(ValueError, match="no longer in memory"):
        scorer(gone, X[300:], y[300:])
    with pytest.raises(ValueError, match="at least 2 non-members"):
        scorer(model, X[300:301], y[300:301])


@pytest.mark.parametrize("kwargs, match", [
    ({"attack": "lira"}, "'attack' parameter"),
    ({"metric": "precision"}, "'metric' parameter"),
    ({"fit_fraction": 1.0}, "'fit_fraction' parameter"),
    ({"max_fpr": 0.0}, "'max_fpr' parameter"),
    ({"white_box": "yes"}, "'white_box' parameter"),
])
def test_privacy_scorer_parameters_are_checked(kwargs, match):
    with pytest.raises(ValueError, match=match):
        make_privacy_scorer(**kwargs)


# ----------------------------------------------------------------- the refit rule
CV_RESULTS = {
    "params": [{"alpha": a} for a in (0.5, 1.0, 1.5, 2.0, 3.0)],
    "mean_test_attack_auc": np.array([0.80, 0.66, 0.62, np.nan, 0.55]),
    "mean_test_accuracy": np.array([0.70, 0.61, 0.61, 0.90, 0.40]),
}


def test_refit_picks_the_most_accurate_within_the_budget():
    # 0.80 is over the budget; NaN is never within; 0.66 and 0.62 tie on accuracy:
    # the lower AUC wins
    assert make_budget_refit(0.7)(CV_RESULTS) == 2
    assert make_budget_refit(0.9)(CV_RESULTS) == 0
    assert make_budget_refit(0.6)(CV_RESULTS) == 4
    tie = {**CV_RESULTS, "mean_test_attack_auc": np.array([0.8, 0.6, 0.6, 0.6, 0.6]),
           "mean_test_accuracy": np.array([0.7, 0.61, 0.61, 0.61, 0.4])}
    assert make_budget_refit(0.7)(tie) == 1  # full tie: the first
    named = {"mean_test_tpr": [0.2, 0.01], "mean_test_acc": [0.9, 0.5]}
    assert make_budget_refit(0.05, privacy="tpr", accuracy="acc")(named) == 1


def test_refit_with_no_candidate_within_the_budget():
    with pytest.raises(ValueError, match=r"within the budget 0.5 \(\{'alpha': 0.5\}: "
                                         r"attack_auc 0.8, accuracy 0.7;"):
        make_budget_refit(0.5)(CV_RESULTS)
    assert make_budget_refit(0.5, if_none="most_private")(CV_RESULTS) == 4
    with pytest.raises(ValueError, match="cv_results has no 'mean_test_privacy'"):
        make_budget_refit(0.5, privacy="privacy")(CV_RESULTS)
    with pytest.raises(ValueError, match="'if_none' parameter"):
        make_budget_refit(0.5, if_none="closest")
    with pytest.raises(ValueError, match="'budget' parameter"):
        make_budget_refit("0.5")
    assert make_budget_refit(0.5) is not make_budget_refit(0.5)
    assert pickle.dumps(make_budget_refit(0.5))  # a search holding it can be saved
    assert repr(make_budget_refit(0.5)) == ("make_budget_refit(0.5, privacy='attack_auc', "
                                            "accuracy='accuracy', if_none='raise')")


def test_grid_search_refits_the_chosen_candidate_on_every_row(noisy_data):
    X, y = noisy_data
    search = GridSearchCV(
        small_net(), {"max_epochs": [1, 40]},
        scoring={"accuracy": "accuracy", "attack_auc": make_privacy_scorer()},
        refit=make_budget_refit(0.6), cv=KFold(3, shuffle=True, random_state=0),
        error_score="raise",
    ).fit(X, y)
    auc = search.cv_results_["mean_test_attack_auc"]
    assert auc[1] > 0.6 >= auc[0]  # 40 epochs leak beyond the budget
    assert search.best_index_ == 0
    members, _ = search.best_estimator_.training_rows()
    np.testing.assert_array_equal(members, X)
