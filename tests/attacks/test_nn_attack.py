import numpy as np
import pandas as pd
import pytest

from skmia.attacks import NNAttack


def _outputs(n, n_classes, rng, spread):
    """Logit rows; members' rows are more spread out (more confident)."""
    y = np.r_[np.ones(n // 2, dtype=np.int64), np.zeros(n - n // 2, dtype=np.int64)]
    logits = rng.normal(size=(n, n_classes)) * np.where(y == 1, spread, 1.0)[:, None]
    return logits.astype(np.float32), y


def _as_signals(logits):
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    table = {f"logit_{k}": logits[:, k] for k in range(logits.shape[1])}
    table.update({f"proba_{k}": proba[:, k] for k in range(logits.shape[1])})
    table["label"] = np.zeros(len(logits), dtype=np.int64)
    table["loss"] = -np.log(proba[:, 0])
    return pd.DataFrame(table)


@pytest.fixture(scope="module")
def data():
    rng = np.random.default_rng(0)
    return _outputs(600, 5, rng, spread=3.0), _outputs(600, 5, rng, spread=3.0)


def test_learns_a_membership_signal(data):
    (X, y), (X_test, y_test) = data
    attack = NNAttack(max_iter=40, random_state=0).fit(X, y)
    assert attack.score(X_test, y_test) > 0.85
    assert attack.n_iter_ == 40  # every epoch runs: no early stopping, as the reference
    assert attack.n_model_classes_ == 5
    decision = attack.decision_function(X_test)
    np.testing.assert_array_equal(attack.predict(X_test), (decision > 0).astype(int))
    np.testing.assert_allclose(attack.predict_proba(X_test)[:, 1], 1 / (1 + np.exp(-decision)))
    np.testing.assert_allclose(
        attack.predict_proba(X_test)[:, 1],
        attack.estimator_.predict_proba(np.sort(X_test, axis=1))[:, 1],
        rtol=1e-5,
    )


def test_sees_only_the_sorted_outputs(data):
    (X, y), (X_test, _) = data
    attack = NNAttack(max_iter=10, random_state=0).fit(X, y)
    rng = np.random.default_rng(1)
    shuffled = np.array([row[rng.permutation(len(row))] for row in X_test])
    np.testing.assert_allclose(attack.decision_function(shuffled), attack.decision_function(X_test))


def test_reads_logits_or_probabilities_from_signals(data):
    (X, y), (X_test, _) = data
    signals, signals_test = _as_signals(X), _as_signals(X_test)
    on_logits = NNAttack(max_iter=10, random_state=0).fit(signals, y)
    assert list(on_logits.feature_names_in_) == [f"logit_{k}" for k in range(5)]
    # the same as on the bare array of logits
    on_array = NNAttack(max_iter=10, random_state=0).fit(X, y)
    np.testing.assert_allclose(
        on_logits.decision_function(signals_test), on_array.decision_function(X_test)
    )
    on_proba = NNAttack(output="proba", max_iter=10, random_state=0).fit(signals, y)
    assert list(on_proba.feature_names_in_) == [f"proba_{k}" for k in range(5)]
    assert on_proba.decision_function(signals_test).shape == (len(X_test),)


def test_random_state_makes_it_reproducible(data):
    (X, y), (X_test, _) = data
    a = NNAttack(max_iter=5, random_state=3).fit(X, y).decision_function(X_test)
    b = NNAttack(max_iter=5, random_state=3).fit(X, y).decision_function(X_test)
    c = NNAttack(max_iter=5, random_state=4).fit(X, y).decision_function(X_test)
    np.testing.assert_array_equal(a, b)
    assert not np.allclose(a, c)


def test_bad_input(data):
    (X, y), _ = data
    attack = NNAttack(max_iter=2, random_state=0).fit(_as_signals(X), y)
    six = _as_signals(np.c_[X, X[:, :1]])
    with pytest.raises(
        ValueError, match="model of 6 classes, but NNAttack was fitted on signals of 5 classes"
    ):
        attack.predict(six)
    with pytest.raises(ValueError, match="lacks the signal columns 'logit_0', 'logit_1'"):
        attack.predict(_as_signals(X).drop(columns=[f"logit_{k}" for k in range(5)]))
    with_nan = X.copy()
    with_nan[0, 0] = np.nan
    with pytest.raises(ValueError, match="NaN"):
        NNAttack(max_iter=2).fit(with_nan, y)
    with pytest.raises(ValueError, match="membership labels 0"):
        NNAttack(max_iter=2).fit(X, y + 1)
    with pytest.raises(ValueError, match="'output' parameter of NNAttack must be a str among"):
        NNAttack(output="softmax").fit(X, y)
    with pytest.raises(ValueError, match=r"'max_iter' parameter of NNAttack .* \[1, inf\)"):
        NNAttack(max_iter=0).fit(X, y)
