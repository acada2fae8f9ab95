import numpy as np
import pytest
from scipy.stats import binomtest
from sklearn.metrics import balanced_accuracy_score, roc_auc_score

from skmia.metrics import (
    TPRAtFPR,
    attack_accuracy,
    attack_auc,
    attack_roc_curve,
    tpr_at_fpr,
)


def test_attack_accuracy_hand_computed():
    # 3 members, 2 found; 2 non-members, 1 rejected: 0.5 * (2/3 + 1/2)
    y = [1, 1, 1, 0, 0]
    pred = [1, 0, 1, 0, 1]
    assert attack_accuracy(y, pred) == pytest.approx(0.5 * (2 / 3 + 1 / 2))


def test_attack_accuracy_is_balanced_accuracy():
    rng = np.random.default_rng(0)
    y = rng.integers(0, 2, 300)
    pred = rng.integers(0, 2, 300)
    assert attack_accuracy(y, pred) == pytest.approx(balanced_accuracy_score(y, pred))
    assert attack_accuracy(y.astype(bool), pred) == attack_accuracy(y, pred)


def test_attack_auc_hand_computed_with_ties():
    # pairs (member, non-member): (3 vs 1) win, (3 vs 3) tie, (5 vs 1) win, (5 vs 3) win
    assert attack_auc([1, 1, 0, 0], [3.0, 5.0, 1.0, 3.0]) == pytest.approx(3.5 / 4)
    rng = np.random.default_rng(1)
    y = rng.integers(0, 2, 500)
    score = rng.integers(0, 5, 500).astype(float)
    assert attack_auc(y, score) == pytest.approx(roc_auc_score(y, score))


def test_roc_curve_is_the_rule_score_at_least_threshold():
    y = np.array([0, 0, 1, 1, 0, 1])
    score = np.array([0.1, 0.5, 0.5, 0.9, 0.3, 0.2])
    fpr, tpr, thresholds = attack_roc_curve(y, score)
    for f, t, th in zip(fpr, tpr, thresholds, strict=True):
        flagged = score >= th
        assert f == pytest.approx(flagged[y == 0].mean())
        assert t == pytest.approx(flagged[y == 1].mean())


def _direct_tpr_at_fpr(y, score, max_fpr):
    """Try every threshold; keep the best TPR with FPR <= max_fpr."""
    best = 0.0
    for t in np.unique(score):
        flagged = score >= t
        if flagged[y == 0].mean() <= max_fpr + 1e-12:
            best = max(best, flagged[y == 1].mean())
    return best


def test_tpr_at_fpr_hand_computed():
    y = np.array([0] * 10 + [1] * 4)
    score = np.array(list(range(10)) + [20, 30, 5.5, 40], dtype=float)
    # one false positive allowed (FPR 0.1): threshold 9 catches 20, 30, 40
    result = tpr_at_fpr(y, score, max_fpr=0.1)
    assert isinstance(result, TPRAtFPR)
    assert (result.tpr, result.fpr, result.threshold) == (0.75, 0.1, 9.0)
    # two allowed: threshold 8 catches no more; with 5 allowed (t = 5) 5.5 joins
    assert tpr_at_fpr(y, score, max_fpr=0.2).tpr == 0.75
    assert tpr_at_fpr(y, score, max_fpr=0.5).tpr == 1.0
    tpr, low, high, fpr, threshold = result  # unpacks
    assert low < tpr < high


@pytest.mark.parametrize("max_fpr", [0.001, 0.01, 0.05, 0.3])
def test_tpr_at_fpr_matches_direct_search(max_fpr):
    rng = np.random.default_rng(2)
    y = np.r_[np.ones(1500, dtype=int), np.zeros(1500, dtype=int)]
    score = np.round(rng.normal(loc=0.7 * y), 1)  # many ties
    result = tpr_at_fpr(y, score, max_fpr=max_fpr)
    assert result.tpr == pytest.approx(_direct_tpr_at_fpr(y, score, max_fpr))
    assert result.fpr <= max_fpr


def test_tpr_at_fpr_exactly_one_over_n_is_allowed():
    y = np.r_[np.ones(50, dtype=int), np.zeros(1000, dtype=int)]
    score = np.r_[np.full(50, 2.0), np.linspace(0, 1, 1000)]
    result = tpr_at_fpr(y, score, max_fpr=0.001)
    assert result.tpr == 1.0
    assert result.fpr == 0.001  # exactly one false positive is allowed


def test_tpr_at_fpr_interval_is_clopper_pearson():
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(200, dtype=int), np.zeros(1000, dtype=int)]
    score = rng.normal(loc=1.5 * y)
    result = tpr_at_fpr(y, score, max_fpr=0.01, confidence_level=0.9)
    k = round(result.tpr * 200)
    ci = binomtest(k, 200).proportion_ci(confidence_level=0.9, method="exact")
    assert result.ci_low == pytest.approx(ci.low)
    assert result.ci_high == pytest.approx(ci.high)


def test_tpr_at_fpr_interval_ends():
    y = np.r_[np.ones(20, dtype=int), np.zeros(100, dtype=int)]
    perfect = tpr_at_fpr(y, y.astype(float), max_fpr=0.01)
    assert (perfect.tpr, perfect.ci_high) == (1.0, 1.0)
    assert perfect.ci_low == pytest.approx(0.025 ** (1 / 20))  # (alpha/2)^(1/n)
    inverted = tpr_at_fpr(y, -y.astype(float), max_fpr=0.01)
    assert (inverted.tpr, inverted.ci_low) == (0.0, 0.0)


def test_tpr_at_fpr_says_when_ties_leave_the_rate_unresolved():
    # 200 non-members: 5 tied at the top score 9 (2.5 %), the rest below every member
    y = np.r_[np.ones(50, dtype=int), np.zeros(200, dtype=int)]
    score = np.r_[np.full(20, 9.0), np.full(30, 8.0), np.full(5, 9.0), np.arange(195) / 100]
    at_1 = tpr_at_fpr(y, score, max_fpr=0.01)  # 2 false positives allowed, 5 tied
    assert not at_1.resolved and at_1.min_fpr == 5 / 200
    assert (at_1.tpr, at_1.fpr) == (0.0, 0.0)  # the only rule within 1 % flags no one
    at_5 = tpr_at_fpr(y, score, max_fpr=0.05)  # 10 allowed: the tie fits
    assert at_5.resolved and at_5.tpr == 1.0 and 0.025 <= at_5.fpr <= 0.05
    assert at_5.min_fpr == 5 / 200
    tpr, low, high, fpr, threshold = at_5  # still unpacks as five numbers
    assert "resolved=True" in repr(at_5)
    # continuous scores resolve every rate down to 1 / n
    assert tpr_at_fpr(y, np.arange(250.0), max_fpr=0.005).resolved


def test_tpr_at_fpr_refuses_fpr_below_one_over_n():
    y = np.r_[np.ones(10, dtype=int), np.zeros(500, dtype=int)]
    score = np.arange(510, dtype=float)
    with pytest.raises(ValueError, match=r"below 1/n_nonmembers = 1/500"):
        tpr_at_fpr(y, score, max_fpr=0.001)
    with pytest.raises(ValueError, match="max_fpr must be in"):
        tpr_at_fpr(y, score, max_fpr=0.0)
    with pytest.raises(ValueError, match="confidence_level"):
        tpr_at_fpr(y, score, max_fpr=0.1, confidence_level=1.5)


@pytest.mark.parametrize(
    ("y", "match"),
    [
        ([0, 1, 2, 1], "Only binary classification is supported"),
        ([1, 2, 1, 2], r"membership labels 0 \(non-member\) and 1 \(member\); got \[1, 2\]"),
        (["in", "out", "in", "out"], "membership labels 0"),
        ([1, 1, 1, 1], r"one class only, members \(1\)"),
        ([0, 0, 0, 0], r"one class only, non-members \(0\)"),
        ([0, 1, np.nan, 1], "NaN"),
        ([], "empty"),
    ],
)
def test_bad_membership_labels(y, match):
    score = np.arange(len(y), dtype=float)
    with pytest.raises(ValueError, match=match):
        attack_auc(y, score)


def test_bad_scores_and_predictions():
    with pytest.raises(ValueError, match="NaN or infinite"):
        attack_auc([0, 1], [0.1, np.nan])
    with pytest.raises(ValueError, match="2 entries but y has 3"):
        attack_auc([0, 1, 1], [0.1, 0.2])
    with pytest.raises(ValueError, match="y_pred must hold predicted membership 0 or 1"):
        attack_accuracy([0, 1], [0.3, 0.7])

