"""Privacy scorers with any classifier and any Pipeline, given the searched rows."""

import numpy as np
import pytest
from sklearn.datasets import make_classification
from sklearn.model_selection import GridSearchCV, KFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler

from skmia.audit import make_privacy_scorer
from skmia.audit._scorers import _rows_outside
from skmia.defenses import LabelSmoothingClassifier


@pytest.fixture(scope="module")
def data():
    # noisy labels and few rows: an unregularised network memorises its training rows
    X, y = make_classification(240, n_features=20, n_informative=6, n_classes=3,
                               flip_y=0.3, random_state=0)
    return X.astype(np.float32), y


def test_the_members_of_a_fold_are_the_rows_outside_its_test_part(data):
    X, y = data
    for train, test in KFold(3).split(X):
        members = _rows_outside((X, y), X[test], y[test])
        np.testing.assert_array_equal(members[0], X[train])
        np.testing.assert_array_equal(members[1], y[train])


@pytest.fixture(scope="module")
def mlp_search(data):
    X, y = data
    search = GridSearchCV(
        MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, random_state=0),
        {"alpha": [1e-5, 30.0]}, cv=KFold(3), n_jobs=2, refit=False,
        scoring={"attack_auc": make_privacy_scorer("loss", data=(X, y)),
                 "accuracy": "accuracy"})
    return search.fit(X, y)


def test_an_mlp_classifier_is_scored_under_grid_search(mlp_search):
    auc = mlp_search.cv_results_["mean_test_attack_auc"]
    assert np.isfinite(auc).all()
    # the memorising network leaks, the heavily regularised one far less
    assert auc[0] > 0.75, auc
    assert auc[1] < auc[0] - 0.15, auc


def test_scores_do_not_depend_on_n_jobs(data, mlp_search):
    X, y = data
    serial = GridSearchCV(
        MLPClassifier(hidden_layer_sizes=(64,), max_iter=400, random_state=0),
        {"alpha": [1e-5]}, cv=KFold(3), n_jobs=1, refit=False,
        scoring=make_privacy_scorer("loss", data=(X, y))).fit(X, y)
    assert serial.cv_results_["mean_test_score"][0] == pytest.approx(
        mlp_search.cv_results_["mean_test_attack_auc"][0], abs=1e-12)


def test_a_pipeline_with_a_transformer_is_scored(data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), LabelSmoothingClassifier(
        max_epochs=30, milestones=(), module__hidden_sizes=(64,), random_state=0))
    search = GridSearchCV(pipe, {"labelsmoothingclassifier__smoothing": [0.0]},
                          cv=KFold(3), n_jobs=2, refit=False,
                          scoring=make_privacy_scorer("loss", data=(X, y))).fit(X, y)
    auc = search.cv_results_["split0_test_score"]
    assert np.isfinite(auc).all() and auc[0] > 0.6, auc


def test_without_data_an_sklearn_model_is_refused_with_the_way_out(data):
    X, y = data
    model = MLPClassifier(max_iter=20, random_state=0).fit(X[:160], y[:160])
    with pytest.raises(TypeError, match=r"data=\(X, y\)"):
        make_privacy_scorer("loss")(model, X[160:], y[160:])


def test_rows_not_in_data_and_training_rows_are_refused(data):
    X, y = data
    model = MLPClassifier(max_iter=20, random_state=0).fit(X[:160], y[:160])
    scorer = make_privacy_scorer("loss", data=(X[:200], y[:200]))
    with pytest.raises(ValueError, match=r"40 of the rows scored are not rows of the data"):
        scorer(model, X[200:], y[200:])
    with pytest.raises(ValueError, match=r"look like the training rows"):
        scorer(model, X[:160], y[:160])
    with pytest.raises(ValueError, match=r"the pair \(X, y\)"):
        make_privacy_scorer("loss", data=(X,))
