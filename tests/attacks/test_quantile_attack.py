"""QMIA (skmia.attacks.QuantileAttack): the false-positive rate it promises on held-out
population records, by hand on a tiny case, and bad input. The null and leak tests on
Location30 are in test_reference_leak.py (with the other population attacks)."""

import numpy as np
import pandas as pd
import pytest
from scipy.stats import norm
from sklearn.ensemble import GradientBoostingRegressor, RandomForestRegressor
from sklearn.linear_model import QuantileRegressor

from skmia.attacks import QuantileAttack


def population(n, rng, n_features=6):
    """Non-member scores whose spread and level depend on the record's features."""
    X = (rng.random((n, n_features)) < 0.4).astype(np.float64)
    label = rng.integers(0, 3, n)
    level = X[:, :3].sum(axis=1) + 0.5 * label
    score = level + (0.5 + X[:, 3]) * rng.standard_normal(n)
    table = pd.DataFrame({f"feature_{j}": X[:, j] for j in range(n_features)})
    table["label"] = label
    table["score"] = score
    return table


@pytest.mark.parametrize("fpr", [0.05, 0.2])
def test_fpr_on_held_out_population_is_fpr(fpr):
    rng = np.random.default_rng(0)
    pop, held_out = population(4000, rng), population(4000, rng)
    attack = QuantileAttack(fpr=fpr, random_state=0).fit(pop)
    flagged = attack.predict(held_out).mean()
    # conformal calibration on m = 1000 held-out-from-the-regressor records makes the
    # expected FPR fpr (up to 1 / (m + 1)); its noise and the n = 4000 test records' are
    # both binomial: a 99.9 % interval of the two together
    m, n = 1000, len(held_out)
    half_width = norm.ppf(0.9995) * np.sqrt(fpr * (1 - fpr) * (1 / m + 1 / n))
    assert abs(flagged - fpr) <= half_width + 1 / (m + 1), flagged
    # the regressor's quantiles depend on the record: not one threshold for all
    assert np.std(attack.regressor_.predict(attack._inputs(held_out))) > 0.3


def test_decision_is_score_minus_the_predicted_quantile_by_hand():
    # a regressor that cannot split (one leaf): its quantile is the population's
    pop = pd.DataFrame({"feature_0": np.zeros(9), "label": 0,
                        "score": np.arange(1.0, 10.0)})
    attack = QuantileAttack(fpr=0.2, calibration_size=0,
                            regressor=GradientBoostingRegressor(
                                loss="quantile", n_estimators=200, max_depth=1,
                                learning_rate=0.5)).fit(pop)
    assert attack.offset_ == 0.0
    assert attack.regressor_.alpha == 0.8  # set from fpr
    q = attack.regressor_.predict(np.zeros((1, 2)))[0]
    assert 7.0 <= q <= 9.0  # the 0.8 quantile of 1..9
    audited = pd.DataFrame({"feature_0": [0.0, 0.0], "label": [0, 0], "score": [20.0, 1.0]})
    np.testing.assert_allclose(attack.decision_function(audited), [20.0 - q, 1.0 - q])
    assert attack.predict(audited).tolist() == [1, 0]


def test_with_labels_the_regressor_sees_only_non_members():
    rng = np.random.default_rng(1)
    signals = population(600, rng)
    y = np.arange(600) % 2
    signals.loc[y == 1, "score"] += 2.0
    attack = QuantileAttack(random_state=0).fit(signals, y)
    assert attack.supervised_
    assert attack.score(signals, y) > 0.7
    alone = QuantileAttack(random_state=0).fit(signals[y == 0].reset_index(drop=True))
    np.testing.assert_allclose(alone.regressor_.predict(alone._inputs(signals)),
                               attack.regressor_.predict(attack._inputs(signals)))


def test_other_quantile_regressors_get_their_quantile_set():
    pop = population(300, np.random.default_rng(2))
    linear = QuantileAttack(fpr=0.1, regressor=QuantileRegressor(alpha=0.0),
                            random_state=0).fit(pop)
    assert linear.regressor_.quantile == 0.9


@pytest.mark.parametrize(
    ("attack", "signals", "error", "match"),
    [
        (QuantileAttack(), pd.DataFrame({"score": [1.0, 2.0], "label": [0, 1]}), ValueError,
         r"no 'feature_\*' columns.*compute_signals\(\.\.\., features=True\)"),
        (QuantileAttack(regressor=RandomForestRegressor()), None, ValueError,
         r"regressor must be a quantile regressor .* RandomForestRegressor"),
        (QuantileAttack(fpr=0.01, calibration_size=0.1), None, ValueError,
         r"holds out 30 of 300 population records, too few to place the 0.99 quantile"),
        (QuantileAttack(fpr=1.5), None, ValueError, r"'fpr' parameter"),
        (QuantileAttack(regressor="gbr"), None, ValueError, r"'regressor' parameter"),
    ],
)
def test_bad_input(attack, signals, error, match):
    signals = population(300, np.random.default_rng(3)) if signals is None else signals
    with pytest.raises(error, match=match):
        attack.fit(signals)
