"""The attacks end to end on the real Location30 data: a leak, no leak, and run_attacks."""

import numpy as np
import pandas as pd
import pytest
import skorch
import torch

from skmia.attacks import (
    LossAttack,
    NNAttack,
    compute_signals,
    default_attacks,
    run_attacks,
)
from skmia.datasets import fetch_location30
from skmia.model_selection import membership_split
from skmia.nn import MLP

#: Loss-attack AUC that an overfit MLP on Location30 must exceed (measured: 0.89).
LEAK_AUC_FLOOR = 0.80


def _train(X, y, seed):
    """A plain skorch MLP trained to memorise its 1,002 rows (train accuracy 1.0)."""
    torch.manual_seed(seed)
    return skorch.NeuralNetClassifier(
        MLP,
        module__n_features=X.shape[1],
        module__n_classes=30,
        module__hidden_sizes=(64,),
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        lr=0.1,
        optimizer__momentum=0.9,
        max_epochs=20,
        batch_size=128,
        iterator_train__shuffle=True,
        train_split=None,
        verbose=0,
    ).fit(X, y)


@pytest.fixture(scope="module")
def location(location_data_home):
    X, y = fetch_location30(data_home=location_data_home, return_X_y=True)
    split = membership_split(X, y)
    target = _train(*split.target_train, seed=0)
    shadow = _train(*split.shadow_train, seed=1)
    unrelated = _train(*split.reference, seed=2)  # has seen none of the other parts
    return split, target, shadow, unrelated


def _fast_attacks():
    attacks = default_attacks(white_box=True)
    attacks["NN"] = NNAttack(max_iter=30, random_state=0)
    return attacks


@pytest.fixture(scope="module")
def leaky_results(location):
    split, target, shadow, _ = location
    return run_attacks(target, shadow, split, attacks=_fast_attacks())


def test_leak_overfit_model_is_attacked(leaky_results):
    results = leaky_results
    assert list(results.index) == [
        "NN",
        "confidence",
        "entropy",
        "modified entropy",
        "loss",
        "grad_wrt_x_l1",
        "grad_wrt_x_l2",
        "grad_wrt_w_l1",
        "grad_wrt_w_l2",
    ]
    assert results.loc["loss", "auc"] > LEAK_AUC_FLOOR
    assert (results["auc"] > 0.7).all()
    assert (results["accuracy"] > 0.7).all()
    assert (results["tpr_at_1%fpr"] >= 0).all()
    assert (results["target_train_accuracy"] > results["target_test_accuracy"] + 0.2).all()


def test_null_model_that_saw_neither_half_leaks_nothing(location):
    # target and shadow replaced by a model trained on other rows: members and
    # non-members are both unseen, so no attack can tell them apart
    split, _, _, unrelated = location
    results = run_attacks(unrelated, unrelated, split, attacks=_fast_attacks())
    assert np.all(np.abs(results["auc"] - 0.5) < 0.05), results["auc"]
    assert np.all(np.abs(results["accuracy"] - 0.5) < 0.05), results["accuracy"]


def test_run_attacks_is_compute_signals_then_fit_then_evaluate(location, leaky_results):
    split, target, shadow, _ = location

    def signals(model, members, nonmembers):
        parts = [compute_signals(model, *members), compute_signals(model, *nonmembers)]
        y = np.r_[np.ones(len(parts[0])), np.zeros(len(parts[1]))].astype(int)
        return pd.concat(parts, ignore_index=True), y

    X_shadow, y_shadow = signals(shadow, split.shadow_train, split.shadow_test)
    X_target, y_target = signals(target, split.target_train, split.target_test)
    expected = LossAttack().fit(X_shadow, y_shadow).evaluate(X_target, y_target)
    for key, value in expected.items():
        assert leaky_results.loc["loss", key] == pytest.approx(value)
    X_train, y_train = split.target_train
    train_accuracy = np.mean(target.predict(X_train) == y_train)
    assert leaky_results.loc["loss", "target_train_accuracy"] == pytest.approx(train_accuracy)


def test_run_attacks_black_box_only(location):
    split, target, shadow, _ = location
    attacks = {"NN": NNAttack(max_iter=2, random_state=0), "loss": LossAttack()}
    results = run_attacks(target, shadow, split, white_box=False, attacks=attacks)
    assert list(results.index) == ["NN", "loss"]
    assert list(default_attacks(white_box=False)) == [
        "NN",
        "confidence",
        "entropy",
        "modified entropy",
        "loss",
    ]
    with pytest.raises(TypeError, match="attacks must be a non-empty dict"):
        run_attacks(target, shadow, split, attacks=[LossAttack()])


def test_attacks_fitted_once_serve_several_targets(location):
    from sklearn.base import clone

    from skmia.attacks import evaluate_attacks, evaluate_fitted_attacks, membership_signals

    split, target, shadow, unrelated = location
    attacks = {"NN": NNAttack(max_iter=5, random_state=0), "loss": LossAttack()}
    shadow_signals = membership_signals(shadow, split.shadow_train, split.shadow_test)
    fitted = {name: clone(a).fit(*shadow_signals) for name, a in attacks.items()}
    for model in (target, unrelated):
        target_signals = membership_signals(model, split.target_train, split.target_test)
        expected, expected_scores = evaluate_attacks(attacks, *shadow_signals,
                                                     *target_signals)
        table, scores = evaluate_fitted_attacks(fitted, *target_signals)
        pd.testing.assert_frame_equal(table, expected)
        for name in attacks:
            np.testing.assert_array_equal(scores[name], expected_scores[name])
    with pytest.raises(TypeError, match="fitted must be a non-empty dict"):
        evaluate_fitted_attacks({}, *target_signals)
