"""skmia.metrics.empirical_epsilon, and the ROC figure's Clopper-Pearson band."""

import numpy as np
import pytest
from scipy.stats import beta

from skmia.metrics import empirical_epsilon


def cp_upper(k, n, confidence):
    """Upper end of the two-sided Clopper-Pearson interval, from the beta quantile."""
    return 1.0 if k == n else beta.ppf(1 - (1 - confidence) / 2, k + 1, n - k)


def bound(fp, n_neg, fn, n_pos, delta, confidence):
    """Jagielski et al.: ε >= max(log((1-δ-FPR)/FNR), log((1-δ-FNR)/FPR)), at the bounds."""
    fpr, fnr = cp_upper(fp, n_neg, confidence), cp_upper(fn, n_pos, confidence)
    candidates = [0.0]
    if 1 - delta - fpr > 0:
        candidates.append(np.log((1 - delta - fpr) / fnr))
    if 1 - delta - fnr > 0:
        candidates.append(np.log((1 - delta - fnr) / fpr))
    return max(candidates)


def test_hand_computed_at_a_given_threshold():
    # 20 members, 20 non-members; member iff score >= 0.5: 3 members below, 1 non-member above
    y = np.r_[np.ones(20), np.zeros(20)]
    score = np.r_[np.full(17, 0.9), np.full(3, 0.1), np.full(19, 0.2), [0.7]]
    fpr_hi = beta.ppf(0.975, 2, 19)  # 1 of 20
    fnr_hi = beta.ppf(0.975, 4, 17)  # 3 of 20
    expected = max(np.log((1 - 1e-5 - fpr_hi) / fnr_hi), np.log((1 - 1e-5 - fnr_hi) / fpr_hi))
    assert expected > 0
    assert empirical_epsilon(y, score, threshold=0.5) == pytest.approx(expected, rel=1e-12)
    assert empirical_epsilon(y, score, threshold=0.5, delta=0.1, confidence=0.9) == (
        pytest.approx(bound(1, 20, 3, 20, 0.1, 0.9), rel=1e-12)
    )


def test_a_perfect_attack_has_the_closed_form_bound():
    for n in (100, 1000):
        y = np.r_[np.ones(n), np.zeros(n)]
        score = np.r_[np.ones(n), np.zeros(n)]
        u = 1 - 0.025 ** (1 / n)  # the Clopper-Pearson upper bound of 0 errors in n
        assert empirical_epsilon(y, score, threshold=0.5) == pytest.approx(
            np.log((1 - 1e-5 - u) / u), rel=1e-9
        )
        # split: the bound is computed on n // 2 of each
        half = 1 - 0.025 ** (1 / (n - n // 2))
        assert empirical_epsilon(y, score) == pytest.approx(np.log((1 - 1e-5 - half) / half),
                                                            rel=1e-9)


def test_the_split_is_as_documented():
    rng = np.random.default_rng(0)
    y = (rng.random(301) < 0.4).astype(int)
    score = rng.normal(size=301) + 1.2 * y
    # the documented procedure, written out
    generator = np.random.RandomState(5)
    selection = np.zeros(301, dtype=bool)
    for value in (1, 0):
        rows = np.flatnonzero(y == value)
        selection[generator.permutation(rows)[: len(rows) // 2]] = True
    s_score, s_y = score[selection], y[selection]
    best, best_t = -1.0, None
    for t in sorted(set(s_score), reverse=True):
        fp = int(np.sum((s_score >= t) & (s_y == 0)))
        fn = int(np.sum((s_score < t) & (s_y == 1)))
        value = bound(fp, int(np.sum(s_y == 0)), fn, int(np.sum(s_y == 1)), 1e-5, 0.95)
        if value > best:  # the largest threshold on ties
            best, best_t = value, t
    e_score, e_y = score[~selection], y[~selection]
    fp = int(np.sum((e_score >= best_t) & (e_y == 0)))
    fn = int(np.sum((e_score < best_t) & (e_y == 1)))
    expected = bound(fp, int(np.sum(e_y == 0)), fn, int(np.sum(e_y == 1)), 1e-5, 0.95)
    assert expected > 0
    assert empirical_epsilon(y, score, random_state=5) == pytest.approx(expected, rel=1e-12)
    assert empirical_epsilon(y, score, random_state=5) == empirical_epsilon(
        y, score, random_state=np.random.RandomState(5)
    )


def test_randomized_response_is_bounded_by_its_epsilon():
    # a membership "attack" that is ε-DP by construction: report the truth with
    # probability e^ε / (1 + e^ε); any valid lower bound stays below ε
    epsilon = 1.0
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(20000, dtype=int), np.zeros(20000, dtype=int)]
    truthful = rng.random(40000) < np.exp(epsilon) / (1 + np.exp(epsilon))
    score = np.where(truthful, y, 1 - y).astype(float)
    lower = empirical_epsilon(y, score, delta=0.0)
    assert 0.85 * epsilon < lower <= epsilon


def test_no_evidence_gives_zero_at_the_promised_rate():
    # with membership independent of the score, a bound above 0 is a false alarm: the
    # split keeps them below 1 - confidence = 20 % (0 of 60 here: Clopper-Pearson and the
    # union bound are conservative); choosing the threshold on the records the bound is
    # computed on would raise 21 of these 60
    rng = np.random.default_rng(2)
    y = np.r_[np.ones(300, dtype=int), np.zeros(300, dtype=int)]
    alarms = sum(empirical_epsilon(y, rng.normal(size=600), confidence=0.8) > 0
                 for _ in range(60))
    assert alarms <= 0.2 * 60
    assert empirical_epsilon(y, np.zeros(600), threshold=0.0) == 0.0  # flags everyone


def test_monotone_in_delta_and_confidence():
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(500, dtype=int), np.zeros(500, dtype=int)]
    score = rng.normal(size=1000) + 2.0 * y
    base = empirical_epsilon(y, score, threshold=1.0)
    assert base > 0.5
    assert empirical_epsilon(y, score, threshold=1.0, delta=0.05) < base
    assert empirical_epsilon(y, score, threshold=1.0, confidence=0.99) < base
    assert empirical_epsilon(y, score, threshold=1.0, confidence=0.5) > base


def test_bad_input():
    y, score = [1, 1, 0, 0], [0.9, 0.8, 0.1, 0.2]
    with pytest.raises(ValueError, match="there are 1 members: at least 2 are needed"):
        empirical_epsilon([1, 0, 0], [0.9, 0.1, 0.2])
    assert empirical_epsilon([1, 0, 0], [0.9, 0.1, 0.2], threshold=0.5) == 0.0
    with pytest.raises(ValueError, match=r"delta must be in \[0, 1\)"):
        empirical_epsilon(y, score, delta=1.0)
    with pytest.raises(ValueError, match=r"confidence must be in \(0, 1\)"):
        empirical_epsilon(y, score, confidence=1.0)
    with pytest.raises(ValueError, match="threshold must be a number"):
        empirical_epsilon(y, score, threshold=float("nan"))
    with pytest.raises(ValueError, match="score has 3 entries but y has 4"):
        empirical_epsilon(y, score[:3])
    with pytest.raises(ValueError, match="holds one class only"):
        empirical_epsilon([1, 1], [0.1, 0.2])


# ----------------------------------------------------------- the ROC figure's band
def test_roc_figure_draws_the_clopper_pearson_band():
    from skmia.report import roc_figure
    from skmia.report._plots import _tpr_band

    k = np.array([0, 3, 20])
    low, high = _tpr_band(k, 20, 0.05)
    np.testing.assert_allclose(low, [0.0, beta.ppf(0.025, 3, 18), beta.ppf(0.025, 20, 1)])
    np.testing.assert_allclose(high, [beta.ppf(0.975, 1, 20), beta.ppf(0.975, 4, 17), 1.0])
    assert np.all(low <= k / 20) and np.all(k / 20 <= high)

    rng = np.random.default_rng(4)
    y = np.r_[np.ones(300), np.zeros(300)]
    fig = roc_figure({"a": rng.normal(y), "b": rng.normal(2 * y)}, y, confidence_level=0.95)
    assert len(fig.axes[0].collections) == 2  # one band per curve
    assert len(roc_figure({"a": rng.normal(y)}, y).axes[0].collections) == 0
    with pytest.raises(ValueError, match=r"confidence_level must be in \(0, 1\)"):
        roc_figure({"a": rng.normal(y)}, y, confidence_level=95)
