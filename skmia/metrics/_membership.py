"""Metrics of a membership-inference attack: balanced accuracy, AUC, TPR at low FPR, ε."""

import numbers
from typing import NamedTuple

import numpy as np

# scikit-learn and scipy are imported where they are needed: tpr_at_fpr and
# attack_roc_curve, which `skmia report` calls, run on numpy and scipy.special alone

__all__ = [
    "TPRAtFPR",
    "attack_accuracy",
    "attack_auc",
    "attack_roc_curve",
    "empirical_epsilon",
    "tpr_at_fpr",
]


def _column_or_1d(values):
    """``values`` as a 1-D array; anything else goes through scikit-learn's
    ``column_or_1d`` (its errors, and its warning on a column vector)."""
    values = np.asarray(values)
    if values.ndim == 1:
        return values
    from sklearn.utils.validation import column_or_1d

    return column_or_1d(values)


def _check_membership(y, *, name="y"):
    """Validate membership labels: 1-D, only 0 (non-member) and 1 (member), both present.

    Parameters
    ----------
    y : array-like of shape (n_samples,)
        Membership labels; ``bool`` and ``0.0`` / ``1.0`` are accepted.
    name : str, default="y"
        How error messages call the labels.

    Returns
    -------
    y : ndarray of int64 of shape (n_samples,)
        The labels as ``0`` / ``1`` integers.

    Raises
    ------
    ValueError
        When the labels are not 1-D, hold NaN, hold more than two values, hold values
        other than 0 and 1, or hold only one of the two.
    """
    y = np.asarray(y)
    if y.ndim == 2 and y.shape[1] == 1:
        y = y[:, 0]
    y = _column_or_1d(y)
    if len(y) == 0:
        raise ValueError(f"{name} is empty: an attack needs members (1) and non-members (0).")
    if y.dtype.kind in "biuf" and np.all((y == 0) | (y == 1)):  # the common case, fast
        n_members = int(np.count_nonzero(y))
        if 0 < n_members < len(y):
            return y.astype(np.int64)
    if y.dtype.kind in "fc" and not np.isfinite(y).all():
        raise ValueError(f"{name} (membership labels) contains NaN or infinity.")
    from sklearn.utils.multiclass import check_classification_targets, type_of_target

    check_classification_targets(y)
    if y.dtype.kind not in "biuf":
        raise ValueError(
            f"{name} must hold membership labels 0 (non-member) and 1 (member); "
            f"got values of dtype {y.dtype}: {np.unique(y)[:5].tolist()}."
        )
    values = np.unique(y)
    kind = type_of_target(y, input_name=name)
    if kind not in ("binary",):
        hint = "Only binary classification is supported. " if kind.startswith("multiclass") else ""
        raise ValueError(
            f"{hint}{name} must hold membership labels 0 (non-member) and 1 (member); "
            f"got {len(values)} distinct values ({kind} target): {values[:5].tolist()}."
        )
    if not np.isin(values, (0, 1)).all():
        raise ValueError(
            f"{name} must hold membership labels 0 (non-member) and 1 (member); "
            f"got {values.tolist()}."
        )
    if len(values) < 2:
        which = "members (1)" if values[0] == 1 else "non-members (0)"
        raise ValueError(
            f"{name} holds one class only, {which}: an attack needs both members (1) and "
            "non-members (0)."
        )
    return y.astype(np.int64)


def _check_scores(score, n, name="score"):
    score = _column_or_1d(score)
    if score.dtype.kind not in "biuf":
        raise TypeError(f"{name} must be numeric, got dtype {score.dtype}.")
    if len(score) != n:
        raise ValueError(f"{name} has {len(score)} entries but y has {n}.")
    if not np.isfinite(score).all():
        raise ValueError(f"{name} contains NaN or infinite values.")
    return score


def attack_accuracy(y_true, y_pred):
    """Attack accuracy: the mean of the true-positive and true-negative rates.

    ``0.5 * (TPR + TNR)``, the reference code's ``mem_inf_acc``: members found among
    members plus non-members found among non-members, each as a fraction. It equals the
    plain accuracy on a balanced set and is not fooled by an unbalanced one.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Membership, 1 = member, 0 = non-member.
    y_pred : array-like of shape (n_samples,)
        Predicted membership, 0 or 1.

    Returns
    -------
    accuracy : float
        In ``[0, 1]``; 0.5 is chance.

    References
    ----------
    .. [1] D. Chen, N. Yu, M. Fritz. "RelaxLoss: Defending Membership Inference Attacks
       without Losing Utility". ICLR 2022. arXiv:2207.05801.

    Examples
    --------
    >>> from skmia.metrics import attack_accuracy
    >>> attack_accuracy([1, 1, 1, 0], [1, 1, 0, 0])  # 0.5 * (2/3 + 1/1)
    0.833...
    """
    from sklearn.utils.validation import check_consistent_length

    y_true = _check_membership(y_true, name="y_true")
    y_pred = np.asarray(y_pred)
    check_consistent_length(y_true, y_pred)
    y_pred = _column_or_1d(y_pred)
    if not np.isin(y_pred, (0, 1)).all():
        raise ValueError(
            f"y_pred must hold predicted membership 0 or 1, got {np.unique(y_pred)[:5].tolist()}."
        )
    members = y_true == 1
    tpr = np.sum(y_pred[members] == 1) / (members.sum() + 0.0)
    tnr = np.sum(y_pred[~members] == 0) / ((~members).sum() + 0.0)
    return float(0.5 * (tpr + tnr))


def attack_auc(y_true, score):
    """Area under the ROC curve of a membership score, threshold-free.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Membership, 1 = member, 0 = non-member.
    score : array-like of shape (n_samples,)
        Membership score, higher for members (an attack's ``decision_function``).

    Returns
    -------
    auc : float
        In ``[0, 1]``; 0.5 is chance. Ties count one half, as in
        :func:`sklearn.metrics.roc_auc_score`, which the reference code calls.

    Examples
    --------
    >>> from skmia.metrics import attack_auc
    >>> attack_auc([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    0.75
    """
    from sklearn.metrics import roc_auc_score

    y_true = _check_membership(y_true, name="y_true")
    score = _check_scores(score, len(y_true))
    return float(roc_auc_score(y_true, score))


def attack_roc_curve(y_true, score):
    """ROC curve of a membership score: FPR and TPR of the rule ``score >= threshold``.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Membership, 1 = member, 0 = non-member.
    score : array-like of shape (n_samples,)
        Membership score, higher for members.

    Returns
    -------
    fpr : ndarray of shape (n_thresholds,)
        False-positive rates, increasing, from 0 to 1.
    tpr : ndarray of shape (n_thresholds,)
        True-positive rates, increasing.
    thresholds : ndarray of shape (n_thresholds,)
        Decreasing; the first is ``inf`` (nobody flagged).

    Examples
    --------
    >>> from skmia.metrics import attack_roc_curve
    >>> fpr, tpr, thresholds = attack_roc_curve([0, 0, 1, 1], [0.1, 0.4, 0.35, 0.8])
    >>> fpr.tolist(), tpr.tolist()
    ([0.0, 0.0, 0.5, 0.5, 1.0], [0.0, 0.5, 0.5, 1.0, 1.0])
    """
    y_true = _check_membership(y_true, name="y_true")
    score = _check_scores(score, len(y_true))
    fp, tp, thresholds = _roc_counts(y_true, score)
    return fp / fp[-1], tp / tp[-1], thresholds


def _roc_counts(member, score):
    """False and true positives of each rule ``score >= t``, and the ``t``s.

    The points of :func:`sklearn.metrics.roc_curve` with ``drop_intermediate=False``,
    as counts: one per distinct score, highest first, after ``(0, 0)`` at ``t = inf``
    (a test checks that ``fp / fp[-1]`` and ``tp / tp[-1]`` equal its rates).

    Parameters
    ----------
    member : ndarray of int of shape (n,)
        0 / 1 membership, both present.
    score : ndarray of shape (n,)
        Finite scores.

    Returns
    -------
    fp, tp : ndarray of int64 of shape (n_thresholds,)
    thresholds : ndarray of float64 of shape (n_thresholds,)
    """
    order = np.argsort(score, kind="stable")[::-1]
    ranked = score[order]
    # the last position of each run of equal scores
    ends = np.r_[np.flatnonzero(np.diff(ranked)), len(ranked) - 1]
    tp = np.cumsum(member[order], dtype=np.int64)[ends]
    fp = ends + 1 - tp
    return (np.r_[0, fp].astype(np.int64), np.r_[0, tp].astype(np.int64),
            np.r_[np.inf, ranked[ends].astype(np.float64)])


class _Rates(NamedTuple):
    tpr: float
    ci_low: float
    ci_high: float
    fpr: float
    threshold: float


class TPRAtFPR(_Rates):
    """What :func:`tpr_at_fpr` returns; unpacks as ``tpr, ci_low, ci_high, fpr, threshold``.

    Attributes
    ----------
    tpr : float
        True-positive rate of the best rule ``score >= threshold`` with FPR <= max_fpr.
    ci_low, ci_high : float
        Ends of the Clopper-Pearson interval of ``tpr``.
    fpr : float
        The false-positive rate that rule achieves (at most ``max_fpr``).
    threshold : float
        The rule's threshold; ``inf`` when no threshold keeps the FPR low enough.
    resolved : bool
        Whether the scores resolve ``max_fpr``: some threshold flags at least one
        non-member and at most ``max_fpr`` of them. When False (ties among the
        highest-scoring non-members), the only rules within ``max_fpr`` flag no
        non-member and ``tpr`` says nothing about the rate asked for: report it as
        unresolved, not as a number.
    min_fpr : float
        The lowest non-zero false-positive rate any threshold reaches on these scores:
        the share of non-members tied at the highest non-member score.
    """

    def __new__(cls, tpr, ci_low, ci_high, fpr, threshold, *, resolved=True, min_fpr=0.0):
        self = super().__new__(cls, tpr, ci_low, ci_high, fpr, threshold)
        self.resolved = bool(resolved)
        self.min_fpr = float(min_fpr)
        return self

    def __repr__(self):
        return (f"{super().__repr__()[:-1]}, resolved={self.resolved}, "
                f"min_fpr={self.min_fpr!r})")


def tpr_at_fpr(y_true, score, *, max_fpr, confidence_level=0.95):
    """True-positive rate of a membership score at a false-positive rate of at most ``max_fpr``.

    Among the rules "member iff ``score >= t``", take the one with the highest TPR whose
    FPR on these non-members is at most ``max_fpr``. Attacks that are only right on
    average (a high AUC) but cannot single out any member with confidence show a TPR
    near ``max_fpr`` here [2]_.

    Parameters
    ----------
    y_true : array-like of shape (n_samples,)
        Membership, 1 = member, 0 = non-member.
    score : array-like of shape (n_samples,)
        Membership score, higher for members.
    max_fpr : float
        Largest false-positive rate allowed, as a fraction (``0.001`` for 0.1 %).
    confidence_level : float, default=0.95
        Coverage of the Clopper-Pearson interval of the TPR.

    Returns
    -------
    result : TPRAtFPR
        A named tuple ``(tpr, ci_low, ci_high, fpr, threshold)``, all fractions, with
        two more attributes: ``resolved`` (False when ties among the highest-scoring
        non-members leave no threshold with ``0 < FPR <= max_fpr``: the rate is then
        unresolved, whatever ``tpr`` says) and ``min_fpr`` (the lowest non-zero FPR the
        scores reach).

    Raises
    ------
    ValueError
        When ``max_fpr`` is below ``1 / n_nonmembers``: with ``n`` non-members the
        smallest non-zero FPR that can be measured is ``1 / n``, and "TPR at FPR 0"
        says nothing about a lower FPR.

    Notes
    -----
    A rate is *unresolved* when the scores cannot realise any FPR in ``(0, max_fpr]``:
    with ``n`` non-members tied at the top score (an attack whose score takes few
    values), every threshold flags either none or at least ``n`` of them. Such a rate
    is reported as unresolved (``resolved=False``, with ``min_fpr``), never as 0.

    The interval is exact for the binomial noise of the members given the threshold
    (Clopper-Pearson, conservative). It does not account for the threshold having been
    chosen on the same non-members; with few non-members the FPR itself is noisy.

    References
    ----------
    .. [1] C. J. Clopper, E. S. Pearson. "The use of confidence or fiducial limits
       illustrated in the case of the binomial". Biometrika 26(4), 1934.
    .. [2] N. Carlini, S. Chien, M. Nasr, S. Song, A. Terzis, F. Tramer. "Membership
       Inference Attacks From First Principles". IEEE S&P 2022. arXiv:2112.03570.

    Examples
    --------
    >>> from skmia.metrics import tpr_at_fpr
    >>> y = [0] * 10 + [1] * 4
    >>> score = list(range(10)) + [20, 30, 5.5, 40]
    >>> result = tpr_at_fpr(y, score, max_fpr=0.1)  # one false positive allowed
    >>> result.tpr, result.fpr, result.threshold
    (0.75, 0.1, 9.0)
    >>> round(result.ci_low, 3), round(result.ci_high, 3)
    (0.194, 0.994)
    >>> tied = tpr_at_fpr(y, [0] * 8 + [9, 9] + [9, 9, 9, 1], max_fpr=0.1)
    >>> tied.resolved, tied.min_fpr   # two non-members tie at the top: 0.2 or nothing
    (False, 0.2)
    """
    from scipy.special import betaincinv  # scipy.stats's beta.ppf, without its import

    y_true = _check_membership(y_true, name="y_true")
    score = _check_scores(score, len(y_true))
    if not 0.0 < float(max_fpr) <= 1.0:
        raise ValueError(f"max_fpr must be in (0, 1], got {max_fpr!r}.")
    if not 0.0 < float(confidence_level) < 1.0:
        raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level!r}.")
    n_neg = int(np.sum(y_true == 0))
    n_pos = len(y_true) - n_neg
    # a tolerance so that max_fpr=0.001 with 1,000 non-members allows exactly 1 false positive
    allowed_fp = int(np.floor(max_fpr * n_neg * (1 + 1e-9)))
    if allowed_fp < 1:
        raise ValueError(
            f"max_fpr={max_fpr} is below 1/n_nonmembers = 1/{n_neg} = {1 / n_neg:.3g}: with "
            f"{n_neg} non-members the smallest measurable non-zero FPR is {1 / n_neg:.3g}. "
            f"Evaluate on at least {int(np.ceil(1 / max_fpr))} non-members."
        )
    fp, tp, thresholds = _roc_counts(y_true, score)
    best = np.flatnonzero(fp <= allowed_fp)[-1]  # tp is non-decreasing along the curve
    k = int(tp[best])
    min_fp = int(fp[fp > 0][0])  # the first threshold after inf is the top score
    alpha = 1.0 - confidence_level
    # Clopper-Pearson: quantiles of Beta(k, n - k + 1) and Beta(k + 1, n - k)
    low = 0.0 if k == 0 else float(betaincinv(k, n_pos - k + 1, alpha / 2))
    high = 1.0 if k == n_pos else float(betaincinv(k + 1, n_pos - k, 1 - alpha / 2))
    return TPRAtFPR(
        tpr=float(k / n_pos),
        ci_low=low,
        ci_high=high,
        fpr=float(fp[best] / n_neg),
        threshold=float(thresholds[best]),
        resolved=min_fp <= allowed_fp,
        min_fpr=min_fp / n_neg,
    )


def empirical_epsilon(membership, score, *, delta=1e-5, confidence=0.95, threshold=None,
                      random_state=0):
    """Lower bound on the ε of (ε, δ)-differential privacy that an attack's errors imply.

    A mechanism that is (ε, δ)-DP makes every membership test on a record obey
    ``FPR + e^ε FNR >= 1 - δ`` and ``FNR + e^ε FPR >= 1 - δ`` [1]_ [2]_. Given the
    rule "member iff ``score >= t``", upper confidence bounds ``FPR_hi`` and ``FNR_hi`` on
    its error rates give, with probability at least ``confidence``,

    ``ε >= max(log((1 - δ - FPR_hi) / FNR_hi), log((1 - δ - FNR_hi) / FPR_hi))``,

    floored at 0 (no evidence). Each rate's bound is the upper end of its two-sided
    Clopper-Pearson interval at ``confidence`` (so each holds with probability
    ``1 - (1 - confidence) / 2``, and both together with probability ``confidence``, by
    the union bound).

    Parameters
    ----------
    membership : array-like of shape (n_samples,)
        1 = member, 0 = non-member.
    score : array-like of shape (n_samples,)
        Membership score, higher for members (an attack's ``decision_function``).
    delta : float in [0, 1), default=1e-5
        The δ of the guarantee being audited.
    confidence : float in (0, 1), default=0.95
        Probability that the bound holds.
    threshold : float, default=None
        The threshold ``t`` of the rule, chosen beforehand (e.g. an attack's
        ``threshold_``, fitted on other records): the bound then uses every record. When
        None, the records are split in two: ``t`` is chosen on one half and the bound is
        computed on the other (see Notes).
    random_state : int, RandomState instance or None, default=0
        Seeds the split (used only when ``threshold`` is None). An int by default, so that
        a metric gives the same value on the same input.

    Returns
    -------
    epsilon : float
        The lower bound on ε, ``>= 0``; 0 when the errors are consistent with ε = 0.

    Raises
    ------
    ValueError
        When ``threshold`` is None and there are fewer than 2 members or 2 non-members to
        split.

    See Also
    --------
    epsilon_lower_bound : this bound is its ``method="clopper_pearson"`` with
        ``threshold="split"`` (or the given float), as a float; it offers three more
        methods, the Bonferroni rule, and says what the bound assumes.
    tpr_at_fpr : the true-positive rate at a low false-positive rate.

    Notes
    -----
    Choosing the threshold on the records the bound is computed on would make the bound
    optimistic (the best of many rules looks better than it is). With ``threshold=None``
    the members and the non-members are each shuffled with
    ``check_random_state(random_state).permutation`` (members first, then non-members,
    from the same generator); the first ``n // 2`` of each form the selection half, the
    rest the evaluation half. On the selection half, every distinct selection score is a
    candidate ``t``, and the one whose lower bound (the formula above, on the selection
    half's counts) is highest is kept, the largest such ``t`` on ties. The returned bound
    is that rule's on the evaluation half alone.

    The bound needs many records to be large: with ``n`` non-members and ``n`` members
    and no error at all, it is about ``log(n / 3.7)`` at 95 % confidence.

    References
    ----------
    .. [1] M. Jagielski, J. Ullman, A. Oprea. "Auditing Differentially Private Machine
       Learning: How Private is Private SGD?". NeurIPS 2020. arXiv:2006.07709.
    .. [2] M. Nasr, S. Song, A. Thakurta, N. Papernot, N. Carlini. "Adversary
       Instantiation: Lower Bounds for Differentially Private Machine Learning".
       IEEE S&P 2021. arXiv:2101.04535.

    Examples
    --------
    >>> import numpy as np
    >>> from skmia.metrics import empirical_epsilon
    >>> y = np.r_[np.ones(1000), np.zeros(1000)]
    >>> score = np.r_[np.full(1000, 2.0), np.full(1000, 1.0)]   # a perfect attack
    >>> round(empirical_epsilon(y, score, threshold=1.5), 2)    # 0 errors among 1000 each
    5.6
    >>> round(empirical_epsilon(y, score), 2)                   # 500 each to bound on
    4.91
    >>> empirical_epsilon(y, np.zeros(2000), threshold=0.0)     # flags everyone: no evidence
    0.0
    """
    from sklearn.utils import check_random_state

    from ._epsilon import _two_group_counts, _two_group_split

    y = _check_membership(membership, name="membership")
    score = _check_scores(score, len(y)).astype(np.float64)
    if not (isinstance(delta, numbers.Real) and 0.0 <= delta < 1.0):
        raise ValueError(f"delta must be in [0, 1), got {delta!r}.")
    if not (isinstance(confidence, numbers.Real) and 0.0 < confidence < 1.0):
        raise ValueError(f"confidence must be in (0, 1), got {confidence!r}.")
    alpha = 1.0 - float(confidence)
    member = y == 1
    if threshold is not None:
        if not (isinstance(threshold, numbers.Real) and not np.isnan(threshold)):
            raise ValueError(f"threshold must be a number, got {threshold!r}.")
        value, _ = _two_group_counts("clopper_pearson", member, score, delta, alpha,
                                     float(threshold), None)
        return float(value)
    value, _ = _two_group_split("clopper_pearson", member, score, delta, alpha,
                                check_random_state(random_state), who="empirical_epsilon")
    return float(value)
