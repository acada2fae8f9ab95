"""compute_signals reads any fitted classifier: probabilities, decisions, pipelines."""

import numpy as np
import pytest
import torch
from scipy.special import expit
from sklearn.exceptions import NotFittedError
from sklearn.linear_model import LogisticRegression
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from skmia.attacks import compute_signals, label_only_signals, membership_signals
from skmia.defenses import VanillaClassifier
from skmia.model_selection import ReferenceModels


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(120, 6)).astype(np.float32)
    y = (X[:, 0] + X[:, 1] > 0).astype(np.int64) + (X[:, 2] > 1)  # classes 0, 1, 2
    return X, y


def test_probabilities_give_log_probabilities_loss_and_log_odds(data):
    X, y = data
    X = X.astype(np.float64)  # float64 probabilities, which sum to 1 to rounding
    labels = np.array(["a", "b", "c"])[y]  # any labels, through classes_
    model = LogisticRegression(max_iter=500).fit(X, labels)
    signals = compute_signals(model, X, labels)
    proba = model.predict_proba(X)
    rows = np.arange(len(y))
    np.testing.assert_allclose(signals[["proba_0", "proba_1", "proba_2"]], proba, rtol=1e-12)
    np.testing.assert_allclose(signals[["logit_0", "logit_1", "logit_2"]], np.log(proba))
    assert signals["label"].tolist() == y.tolist()
    p_y = proba[rows, y]
    np.testing.assert_allclose(signals["loss"], -np.log(p_y), rtol=1e-9, atol=1e-14)
    np.testing.assert_allclose(signals["score"], np.log(p_y) - np.log1p(-p_y), rtol=1e-9)
    assert signals.attrs["outputs"] == "predict_proba"
    with pytest.raises(ValueError, match="labels the model does not know: \\['z'\\]"):
        compute_signals(model, X[:2], ["a", "z"])


def test_decisions_stand_for_logits_and_the_warning_says_what_is_lost(data):
    X, y = data
    binary = LinearSVC().fit(X, y == 1)
    with pytest.warns(UserWarning, match="LinearSVC has no predict_proba: its signals come "
                                         "from decision_function"):
        signals = compute_signals(binary, X, y == 1)
    d = binary.decision_function(X)
    np.testing.assert_allclose(signals["proba_1"], expit(d), rtol=1e-10)  # the sigmoid
    np.testing.assert_allclose(signals["logit_1"] - signals["logit_0"], d)
    sign = np.where(y == 1, 1.0, -1.0)
    np.testing.assert_allclose(signals["score"], sign * d, rtol=1e-10)  # log-odds
    assert signals.attrs["outputs"] == "decision_function"
    multi = LinearSVC().fit(X, y)
    with pytest.warns(UserWarning, match="not the model's probabilities nor its training"):
        signals = compute_signals(multi, X, y)
    np.testing.assert_allclose(signals[["logit_0", "logit_1", "logit_2"]],
                               multi.decision_function(X))


def test_a_pipeline_ending_in_a_defense_is_its_last_step_on_transformed_records(data):
    X, y = data
    pipe = make_pipeline(StandardScaler(), VanillaClassifier(
        max_epochs=3, module__hidden_sizes=(8,), random_state=0)).fit(X, y)
    signals = compute_signals(pipe, X, y, white_box=True, features=True,
                              label_only=True, label_only_params={"random_state": 0})
    direct = compute_signals(pipe[-1], pipe[:-1].transform(X), y, white_box=True)
    # the gradient is w.r.t. the transformed input; the features are the records given
    np.testing.assert_allclose(signals[direct.columns], direct, rtol=1e-6)
    np.testing.assert_allclose(signals[[f"feature_{j}" for j in range(6)]], X)
    assert signals.attrs["outputs"] == "logits"
    # label-only queries perturb the records as given, then go through the pipeline
    expected = label_only_signals(pipe.predict, X, y, random_state=0)
    np.testing.assert_array_equal(signals.filter(like="label_only_").to_numpy(), expected)


def test_a_pipeline_ending_in_a_plain_torch_module(data):
    from sklearn.pipeline import Pipeline

    from skmia.nn import MLP

    X, y = data
    torch.manual_seed(0)
    scaler, module = StandardScaler().fit(X), MLP(6, 3, hidden_sizes=(8,))
    pipe = Pipeline([("scale", scaler), ("net", module)])  # fitted elsewhere, step by step
    signals = compute_signals(pipe, X, y, white_box=True)
    direct = compute_signals(module, scaler.transform(X).astype(np.float32), y,
                             white_box=True)
    np.testing.assert_allclose(signals, direct, rtol=1e-6)


def test_a_bank_of_pipelines_scores_the_records_as_given(data):
    X, y = data
    recipe = make_pipeline(StandardScaler(), LogisticRegression())
    bank = ReferenceModels(recipe, n_estimators=2, random_state=0).fit(X, y)
    target = make_pipeline(StandardScaler(), LogisticRegression(C=0.5)).fit(X, y)
    signals = compute_signals(target, X, y, reference=bank, pool_index=np.arange(len(y)))
    p_y = bank.estimators_[1].predict_proba(X)[np.arange(len(y)), y]  # the raw records
    np.testing.assert_allclose(signals["ref_score_1"], np.log(p_y) - np.log1p(-p_y),
                               rtol=1e-5)
    assert signals["ref_in_0"].to_numpy().tolist() == bank.in_mask_[:, 0].tolist()


def test_white_box_needs_a_torch_model_and_bad_models_are_refused(data):
    X, y = data
    model = LogisticRegression().fit(X, y)
    with pytest.raises(ValueError, match="white_box=True needs the gradients of a torch "
                                         "model, but LogisticRegression is not one"):
        compute_signals(model, X, y, white_box=True)
    with pytest.raises(NotFittedError, match="This LogisticRegression is not fitted yet"):
        compute_signals(LogisticRegression(), X, y)
    with pytest.raises(TypeError, match="model must be a fitted skorch net .* or a fitted "
                                        "classifier with predict_proba or decision_function"):
        compute_signals(StandardScaler().fit(X), X, y)
    with pytest.raises(ValueError, match="X and y must have the same number of rows, got "
                                         "120 and 119"):
        compute_signals(model, X, y[:-1])
    with pytest.raises(ValueError, match="X has 5 features"):  # the model's own check
        compute_signals(model, X[:, :5], y)


def test_membership_signals_of_a_scikit_learn_model(data):
    X, y = data
    model = LogisticRegression().fit(X[:60], y[:60])
    signals, membership = membership_signals(model, (X[:60], y[:60]), (X[60:], y[60:]))
    assert membership.tolist() == [1] * 60 + [0] * 60
    torch_free = compute_signals(model, torch.as_tensor(X), y)  # a tensor works too
    np.testing.assert_allclose(signals["loss"], torch_free["loss"])
