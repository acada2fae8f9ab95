"""Lower bounds on the ε of differential privacy, each resting on a theorem.

:func:`epsilon_lower_bound` turns membership labels and attack scores into a bound that
holds with a stated confidence under a stated assumption, and :class:`EpsilonBound` says
which. Four methods: two for many independent records (``clopper_pearson``, ``gdp``) and
two for one run with canaries included by fair coins (``one_run``, ``one_run_fdp``, in
:mod:`._one_run`).
"""

import functools
import numbers
from dataclasses import dataclass, field

import numpy as np
from scipy import special, stats
from scipy.optimize import brentq
from sklearn.utils import check_random_state

from . import _one_run
from ._membership import _check_membership, _check_scores

__all__ = ["EpsilonBound", "epsilon_lower_bound", "max_epsilon_lower_bound"]

METHODS = ("clopper_pearson", "gdp", "one_run", "one_run_fdp")
THRESHOLD_RULES = ("bonferroni", "split")
_GRID_RATIO = 2.0  # ratio of successive error counts the Bonferroni rule tries
_NEAR_MAX = 0.9  # a bound at 90 % or more of max_epsilon is limited by the counts

ASSUMPTIONS = {
    "clopper_pearson": (
        "Each member's and each non-member's score is drawn independently of the others "
        "(e.g. one training run per record), and the rule was fixed without seeing these "
        "records' membership; the bound holds for any (ε, δ)-DP mechanism."
    ),
    "gdp": (
        "As for clopper_pearson (independent scores, a rule that did not see these "
        "records' membership), and the mechanism's trade-off curve is Gaussian: the bound "
        "on μ holds for any μ-GDP mechanism, its ε at δ only for Gaussian ones such as "
        "DP-SGD."
    ),
    "one_run": (
        "Each canary was included by its own independent fair coin in one run, and the "
        "guesses were made from the released output without seeing the coins of the "
        "canaries guessed; the bound holds for any mechanism (ε, δ)-DP in each canary."
    ),
    "one_run_fdp": (
        "As for one_run (independent fair coins, one run, guesses blind to the guessed "
        "canaries' coins), and the mechanism's trade-off curve is Gaussian: the bound on "
        "μ holds for any μ-GDP mechanism, its ε at δ only for Gaussian ones such as DP-SGD."
    ),
}


@dataclass(frozen=True)
class EpsilonBound:
    """A lower bound on ε, with what it rests on; what :func:`epsilon_lower_bound` returns.

    ``float(bound)`` is ``bound.epsilon``.

    Attributes
    ----------
    epsilon : float
        The lower bound on the ε of (ε, δ)-DP, ``>= 0`` (0: no evidence of leakage).
    method : str
        ``"clopper_pearson"``, ``"gdp"``, ``"one_run"`` or ``"one_run_fdp"``.
    threshold : str or float
        The threshold rule: ``"bonferroni"``, ``"split"``, or the float fixed beforehand.
    confidence : float
        Probability, over the randomness named in ``assumption``, that the bound holds.
    delta : float
        The δ at which ε is bounded.
    counts : dict
        The counts behind the bound. Two-group methods: ``n_members``,
        ``n_nonmembers`` (those the bound was computed on), ``tp``, ``fp``, ``fn``,
        ``tn`` of the rule used, ``n_hypotheses`` (rules corrected for). One-run
        methods: ``n_canaries``, ``n_members``, ``n_nonmembers``, ``k_plus``,
        ``k_minus``, ``n_guesses``, ``n_correct``, ``n_hypotheses``. With
        ``threshold="split"``, ``n_selection``: the records used to choose the rule only.
    max_epsilon : float
        The largest bound these counts could ever give: that of a perfect attack on the
        same numbers of records, with the same rule, δ and confidence.
    limited_by_counts : bool
        True when ``epsilon`` is at least 90 % of ``max_epsilon``: the bound is limited by
        the number of observations, not by the scores; more records could show more.
    assumption : str
        What must be random and independent, and what the guesser may not see.
    mu : float or None
        For ``gdp`` and ``one_run_fdp``: the lower bound on μ of μ-GDP that ``epsilon``
        converts at ``delta``; None for the other methods.
    """

    epsilon: float
    method: str
    threshold: object
    confidence: float
    delta: float
    counts: dict = field(repr=False)
    max_epsilon: float
    limited_by_counts: bool
    assumption: str = field(repr=False)
    mu: object = None

    def __float__(self):
        return float(self.epsilon)


# ---------------------------------------------------------------- Gaussian DP helpers
def _log_gdp_delta(eps, mu):
    """log δ(ε) of μ-GDP: log(Φ(-ε/μ + μ/2) - e^ε Φ(-ε/μ - μ/2)) (Dong et al., Cor. 2.13)."""
    first = special.log_ndtr(-eps / mu + mu / 2)
    second = eps + special.log_ndtr(-eps / mu - mu / 2)
    with np.errstate(divide="ignore"):
        return first + np.log1p(-np.exp(np.minimum(second - first, 0.0)))


def gdp_epsilon(mu, delta):
    """The ε at δ of μ-GDP: the smallest ε with δ(ε) <= δ; 0 for μ <= 0.

    Examples
    --------
    >>> round(gdp_epsilon(1.0, 1e-5), 2)
    4.38
    """
    mu = float(mu)
    if not mu > 0 or _log_gdp_delta(0.0, mu) <= np.log(delta):
        return 0.0
    high = 1.0
    while _log_gdp_delta(high, mu) > np.log(delta):
        high *= 2.0
    return float(brentq(lambda e: _log_gdp_delta(e, mu) - np.log(delta), 0.0, high,
                        xtol=1e-12))


# ------------------------------------------------------------ two groups of records
def _cp_upper(k, n, a):
    """One-sided upper Clopper-Pearson bound at level ``1 - a`` of ``k`` successes in ``n``."""
    k = np.asarray(k, dtype=np.float64)
    full = k >= n
    return np.where(full, 1.0, special.betaincinv(k + 1, np.where(full, 1.0, n - k), 1 - a))


def _rule_value(method, fp, n_neg, fn, n_pos, delta, a):
    """Per rule: the ε bound (clopper_pearson) or the μ bound (gdp), each rate at level ``a``.

    clopper_pearson (Jagielski et al. 2020): an (ε, δ)-DP mechanism makes every test obey
    ``FPR + e^ε FNR >= 1 - δ`` and ``FNR + e^ε FPR >= 1 - δ``. gdp (Nasr et al. 2023): a
    μ-GDP one obeys ``FNR >= Φ(Φ⁻¹(1 - FPR) - μ)``, i.e. ``μ >= Φ⁻¹(1-FPR) + Φ⁻¹(1-FNR)``.
    Both are evaluated at the upper confidence bounds of the two rates.
    """
    fpr = _cp_upper(fp, n_neg, a)
    fnr = _cp_upper(fn, n_pos, a)
    if method == "gdp":
        return np.maximum(special.ndtri(1 - fpr) + special.ndtri(1 - fnr), 0.0)
    with np.errstate(divide="ignore"):
        by_fnr = np.log(np.maximum(1 - delta - fpr, 0.0)) - np.log(fnr)
        by_fpr = np.log(np.maximum(1 - delta - fnr, 0.0)) - np.log(fpr)
    return np.maximum(np.maximum(by_fnr, by_fpr), 0.0)


def _to_epsilon(method, value, delta):
    return gdp_epsilon(value, delta) if method in ("gdp", "one_run_fdp") else float(value)


def _errors_at(score, member, thresholds):
    """False positives and false negatives of ``score >= t`` for each ``t`` in thresholds."""
    neg, pos = np.sort(score[~member]), np.sort(score[member])
    fp = len(neg) - np.searchsorted(neg, thresholds, side="left")  # non-members >= t
    fn = np.searchsorted(pos, thresholds, side="left")  # members < t
    return fp, fn


def _count_grid(n):
    """0, 1, 2, 4, 8, 16, ... (powers of 2) up to ``n // 2``."""
    top = n // 2
    steps = np.arange(0, np.log(max(top, 1)) / np.log(_GRID_RATIO) + 1)
    grid = np.unique(np.floor(_GRID_RATIO ** steps).astype(np.int64))
    return np.r_[0, grid[grid <= top]]


def _n_rules(n_pos, n_neg):
    return len(_count_grid(n_neg)) + len(_count_grid(n_pos))


def _two_group_counts(method, member, score, delta, alpha, threshold, rng):
    """``(value, counts)`` of a two-group method: value is ε (clopper_pearson) or μ (gdp)."""
    if threshold == "split":
        return _two_group_split(method, member, score, delta, alpha, rng)
    n_pos = int(member.sum())
    n_neg = len(member) - n_pos
    if threshold == "bonferroni":
        fp, fn = _bonferroni_rules(member, score, rng)
        n_rules = len(fp)
        values = _rule_value(method, fp, n_neg, fn, n_pos, delta, alpha / (2 * n_rules))
        best = int(np.argmax(values))
        fp, fn, value = int(fp[best]), int(fn[best]), float(values[best])
    else:
        fp, fn = _errors_at(score, member, np.array([float(threshold)]))
        fp, fn, n_rules = int(fp[0]), int(fn[0]), 1
        value = float(_rule_value(method, fp, n_neg, fn, n_pos, delta, alpha / 2))
    counts = {"n_members": n_pos, "n_nonmembers": n_neg, "tp": n_pos - fn, "fp": fp,
              "fn": fn, "tn": n_neg - fp, "n_hypotheses": n_rules}
    return value, counts


def _bonferroni_rules(member, score, rng):
    """FP and FN counts of the rules the Bonferroni correction covers.

    Ties are broken by independent uniform draws (a randomised test, still bound by DP),
    so the scores are in a strict order. Two families of rules "flag every record above
    a position": above the (j+1)-th highest non-member, for j in :func:`_count_grid`
    (exactly j false positives; its true FPR is Beta(j+1, n-j) distributed, the
    Clopper-Pearson bound's own law), and from the (i+1)-th lowest member up (exactly i
    false negatives). Given the position, the other group's errors are binomial.
    """
    order = np.lexsort((rng.random(len(score)), score))  # increasing score, ties at random
    in_order = member[order]
    neg_at = np.flatnonzero(~in_order)
    pos_at = np.flatnonzero(in_order)
    j = _count_grid(len(neg_at))
    i = _count_grid(len(pos_at))
    cut = np.r_[neg_at[len(neg_at) - 1 - j] + 1, pos_at[i]]  # flag positions >= cut
    fp = len(neg_at) - np.searchsorted(neg_at, cut, side="left")
    fn = np.searchsorted(pos_at, cut, side="left")
    return fp, fn


def _split_halves(member, rng, who):
    selection = np.zeros(len(member), dtype=bool)
    for is_member in (True, False):
        rows = np.flatnonzero(member == is_member)
        if len(rows) < 2:
            kind = "members" if is_member else "non-members"
            raise ValueError(
                f"{who} splits the records to choose the threshold on one half and bound on "
                f"the other, but there are {len(rows)} {kind}: at least 2 are needed (or "
                "pass threshold=)."
            )
        selection[rng.permutation(rows)[: len(rows) // 2]] = True
    return selection


def _two_group_split(method, member, score, delta, alpha, rng,
                     who="epsilon_lower_bound"):
    """Choose ``t`` on a seeded half of each group, bound on the other half.

    Members, then non-members, are shuffled with ``rng.permutation``; the first
    ``n // 2`` of each choose ``t`` among the distinct selection scores (the highest
    value, the largest ``t`` on ties), the rest give the bound at that fixed ``t``.
    """
    selection = _split_halves(member, rng, who)
    candidates = np.unique(score[selection])[::-1]  # decreasing: argmax keeps the largest t
    sel_member = member[selection]
    fp, fn = _errors_at(score[selection], sel_member, candidates)
    n_pos = int(sel_member.sum())
    values = _rule_value(method, fp, len(sel_member) - n_pos, fn, n_pos, delta, alpha / 2)
    chosen = candidates[np.argmax(values)]
    eval_member = member[~selection]
    fp, fn = _errors_at(score[~selection], eval_member, np.array([chosen]))
    n_pos = int(eval_member.sum())
    n_neg = len(eval_member) - n_pos
    value = float(_rule_value(method, fp[0], n_neg, fn[0], n_pos, delta, alpha / 2))
    counts = {"n_members": n_pos, "n_nonmembers": n_neg, "tp": n_pos - int(fn[0]),
              "fp": int(fp[0]), "fn": int(fn[0]), "tn": n_neg - int(fp[0]),
              "n_hypotheses": 1, "n_selection": int(selection.sum())}
    return value, counts


def _two_group_max(method, n_pos, n_neg, delta, alpha, threshold):
    """The value (ε or μ) of a perfect attack on these counts under the threshold rule."""
    a = alpha / 2
    if threshold == "bonferroni":
        a = alpha / (2 * _n_rules(n_pos, n_neg))
    elif threshold == "split":
        n_pos, n_neg = n_pos - n_pos // 2, n_neg - n_neg // 2
    return float(_rule_value(method, 0, n_neg, 0, n_pos, delta, a))


# ------------------------------------------------------------------------ one run
def _one_run_value(method, k_plus, k_minus, v, m, delta, a):
    """``(value, best)``: the ε (one_run) or μ (one_run_fdp) bound over these hypotheses."""
    r = k_plus + k_minus
    if len(r) == 0:
        return 0.0, 0
    if method == "one_run":
        return _one_run.one_run_bound(r, v, m, a, delta)
    return _one_run.one_run_fdp_mu(r, v, m, a)


def _one_run_counts(method, member, score, delta, alpha, threshold, rng):
    """``(value, counts)`` of a one-run method under a threshold rule."""
    m = len(member)
    n_selection = None
    if threshold == "split":
        selection = np.zeros(m, dtype=bool)
        selection[rng.permutation(m)[: m // 2]] = True  # by canary, blind to the coins
        k_plus, k_minus = _one_run.guess_grid(int(selection.sum()))
        v = _one_run.correct_guesses(_by_score(member, score, selection, rng), k_plus, k_minus)
        _, best = _one_run_value(method, k_plus, k_minus, v, int(selection.sum()), delta, alpha)
        scale = (m - selection.sum()) / selection.sum()  # the chosen counts, as fractions
        k_plus = np.array([int(np.floor(k_plus[best] * scale))])
        k_minus = np.array([int(np.floor(k_minus[best] * scale))])
        n_selection, rows, a = int(selection.sum()), ~selection, alpha
    elif threshold == "bonferroni":
        k_plus, k_minus = _one_run.guess_grid(m)
        rows, a = np.ones(m, dtype=bool), alpha / len(k_plus)
    else:  # a fixed threshold: every canary is guessed, member iff score >= threshold
        k_plus = np.array([int(np.sum(score >= threshold))])
        k_minus = np.array([m - int(k_plus[0])])
        rows, a = np.ones(m, dtype=bool), alpha
    v = _one_run.correct_guesses(_by_score(member, score, rows, rng), k_plus, k_minus)
    value, best = _one_run_value(method, k_plus, k_minus, v, int(rows.sum()), delta, a)
    counts = {"n_canaries": int(rows.sum()), "n_members": int(member[rows].sum()),
              "n_nonmembers": int((~member[rows]).sum()), "k_plus": int(k_plus[best]),
              "k_minus": int(k_minus[best]), "n_guesses": int(k_plus[best] + k_minus[best]),
              "n_correct": int(v[best]), "n_hypotheses": len(k_plus)}
    if n_selection is not None:
        counts["n_selection"] = n_selection
    return value, counts


def _by_score(member, score, rows, rng):
    """Membership of ``rows`` ordered by decreasing score, ties broken at random."""
    score, member = score[rows], member[rows]
    order = np.lexsort((rng.random(len(score)), score))[::-1]
    return member[order].astype(np.int64)


def _one_run_max(method, n_pos, n_neg, delta, alpha, threshold):
    """The value (ε or μ) of a perfect guesser on these counts under the threshold rule."""
    m = n_pos + n_neg
    if threshold == "split":
        m_sel = m // 2
        m, a = m - m_sel, alpha
        k_plus, k_minus = _one_run.guess_grid(m_sel)
        scale = m / m_sel if m_sel else 0.0
        k_plus = np.floor(k_plus * scale).astype(int)
        k_minus = np.floor(k_minus * scale).astype(int)
        n_pos = int(np.ceil(n_pos * m / (m + m_sel)))
        n_neg = int(np.ceil(n_neg * m / (m + m_sel)))
    elif threshold == "bonferroni":
        k_plus, k_minus = _one_run.guess_grid(m)
        a = alpha / len(k_plus)
    else:
        k_plus, k_minus, a = np.array([n_pos]), np.array([n_neg]), alpha
    v = np.minimum(k_plus, n_pos) + np.minimum(k_minus, n_neg)
    return _one_run_value(method, k_plus, k_minus, v, m, delta, a)[0]


# ------------------------------------------------------------------- validation
def _check_options(method, delta, confidence, threshold):
    if method not in METHODS:
        raise ValueError(f"method must be one of {', '.join(map(repr, METHODS))}; "
                         f"got {method!r}.")
    if isinstance(threshold, str):
        if threshold not in THRESHOLD_RULES:
            raise ValueError(f"threshold must be a number or one of 'bonferroni', 'split'; "
                             f"got {threshold!r}.")
    elif not (isinstance(threshold, numbers.Real) and not isinstance(threshold, bool)
              and np.isfinite(threshold)):
        raise ValueError(f"threshold must be a finite number or one of 'bonferroni', "
                         f"'split'; got {threshold!r}.")
    if not (isinstance(delta, numbers.Real) and 0.0 < delta < 1.0):
        raise ValueError(f"delta must be in (0, 1), got {delta!r}.")
    if not (isinstance(confidence, numbers.Real) and 0.5 < confidence < 1.0):
        raise ValueError(f"confidence must be in (0.5, 1), got {confidence!r}.")
    return float(threshold) if not isinstance(threshold, str) else threshold


def _check_fair_coins(member):
    """Refuse membership no fair coins would give (one-run methods assume them)."""
    m, n_pos = len(member), int(member.sum())
    p = 2 * stats.binom.cdf(min(n_pos, m - n_pos), m, 0.5)
    if p < 1e-6:
        raise ValueError(
            f"one-run bounds assume each canary was included by an independent fair coin, "
            f"but {n_pos} of {m} canaries are members (two-sided p = {p:.1e} under fair "
            "coins). Use method='clopper_pearson' or 'gdp' for separately drawn members "
            "and non-members."
        )


_THEOREMS = """
    **clopper_pearson** (Jagielski, Ullman & Oprea 2020, arXiv:2006.07709; Nasr et al.
    2021, arXiv:2101.04535). Theorem: if the mechanism is (ε, δ)-DP, every membership test
    obeys ``FPR + e^ε FNR >= 1 - δ`` and ``FNR + e^ε FPR >= 1 - δ``. With Clopper-Pearson
    upper bounds ``FPR_hi`` and ``FNR_hi``, ``ε >= max(log((1-δ-FPR_hi)/FNR_hi),
    log((1-δ-FNR_hi)/FPR_hi))``. Assumes: members' and non-members' scores are
    independent draws (for instance one training run per record, or records whose
    inclusion does not affect each other's scores), and the rule is fixed without these
    records' membership.

    **gdp** (Nasr et al. 2023, arXiv:2302.07956; Dong, Roth & Su, arXiv:1905.02383).
    Theorem: a μ-GDP mechanism makes every test obey ``FNR >= Φ(Φ⁻¹(1 - FPR) - μ)``, so
    ``μ >= Φ⁻¹(1 - FPR_hi) + Φ⁻¹(1 - FNR_hi)``; ε is then the ε at δ of μ-GDP. Assumes
    what clopper_pearson assumes, and a Gaussian trade-off curve: the μ bound (``mu``)
    holds for any mechanism, its conversion to ε only where privacy is described by a
    Gaussian curve (DP-SGD, the Gaussian mechanism). Randomized response at ε is not: its
    "gdp" bound can exceed ε.

    **one_run** (Steinke, Nasr & Jagielski 2023, arXiv:2305.08846). Theorem: if each of
    ``m`` canaries is included by an independent fair coin and the mechanism is
    (ε, δ)-DP in each canary, a guesser making ``r`` guesses gets ``v`` or more right with
    probability at most ``P[Binomial(r, e^ε/(1+e^ε)) >= v] + 2 m δ max_i P[v-i <=
    Binomial < v] / i``; ε is the largest value this test rejects. The guesser says
    "member" for the ``k_plus`` highest scores, "non-member" for the ``k_minus`` lowest,
    and abstains on the rest. Assumes: the coins are independent and fair, all canaries
    are in one run, and the guesses do not see the coins of the canaries guessed.

    **one_run_fdp** (Mahloujifar, Melis & Chaudhuri 2024, arXiv:2410.22235). Theorem: for
    an f-DP mechanism, the same guessing game obeys a recursion in the trade-off curve f
    that bounds the probability of ``v`` correct out of ``r``; with the Gaussian curve of
    μ-GDP this gives the largest μ the counts reject, then ε at δ as for gdp. Assumes what
    one_run assumes, and a Gaussian trade-off curve for the conversion to ε.
"""


def epsilon_lower_bound(membership, score, *, method, delta=1e-5, confidence=0.95,
                        threshold="bonferroni", random_state=0):
    """Lower bound on the ε of (ε, δ)-DP that membership guesses imply, with a theorem.

    Given membership labels and an attack's scores (higher for members), returns a bound
    that holds with probability at least ``confidence`` under the assumption its result
    names: if the mechanism that produced the scores were (ε', δ)-DP with ``ε' <
    epsilon``, data like these would arise with probability at most ``1 - confidence``.

    Parameters
    ----------
    membership : array-like of shape (n_samples,)
        1 = member (canary included), 0 = non-member.
    score : array-like of shape (n_samples,)
        Membership score, higher for members (an attack's ``decision_function``).
    method : {"clopper_pearson", "gdp", "one_run", "one_run_fdp"}
        The test and its theorem (see Notes). ``clopper_pearson`` and ``gdp`` need
        independent records (many runs, or one run per record); ``one_run`` and
        ``one_run_fdp`` need canaries included by independent fair coins in one run.
    delta : float in (0, 1), default=1e-5
        The δ at which ε is bounded.
    confidence : float in (0.5, 1), default=0.95
        Probability that the bound holds.
    threshold : float, "bonferroni" or "split", default="bonferroni"
        How the rule is chosen. A float: the rule "member iff ``score >= threshold``",
        fixed beforehand, tested on every record (for one-run methods every canary is
        then guessed). ``"bonferroni"``: the best of a fixed set of rules, each tested at
        ``(1 - confidence) / n_hypotheses``. For two-group methods, the rules with 0, 1,
        2, 4, 8, 16, … false positives, and those with as many false negatives, up to
        half of each group; for one-run methods, ``k_plus`` in 1, 2, 4, 8, 16, … up to
        half the canaries,
        with ``k_minus`` 0 or equal to ``k_plus``. ``"split"``: the rule is chosen on a
        seeded half (of each group; of the canaries, blind to their coins, for one-run
        methods) and tested on the other half only.
    random_state : int, RandomState instance or None, default=0
        Seeds the split and the breaking of ties (tied scores are ordered at random, a
        randomised test that DP bounds as well). An int by default, so that the same
        input gives the same bound.

    Returns
    -------
    bound : EpsilonBound
        ``bound.epsilon`` (also ``float(bound)``), with the counts behind it,
        ``max_epsilon`` (what a perfect attack on the same counts would give),
        ``limited_by_counts`` and the ``assumption`` it rests on.

    Raises
    ------
    ValueError
        For an unknown method or threshold rule, δ outside (0, 1), a confidence outside
        (0.5, 1), labels that are not 0/1 or hold one class only, scores of another length
        or with NaN, one-run membership that fair coins would not give, and counts too
        small for any bound (``max_epsilon`` 0).

    See Also
    --------
    max_epsilon_lower_bound : the largest bound a number of records can give.
    empirical_epsilon : the clopper_pearson bound as a float (split, or a fixed threshold).

    Notes
    -----
    {theorems}
    Two-group Bonferroni rules sit at the order statistics of one group (above the
    (j+1)-th highest non-member, or from the (i+1)-th lowest member up), where the
    true error rate has exactly the law the Clopper-Pearson bound assumes; each rate is
    bounded at ``(1 - confidence) / (2 n_hypotheses)`` and the union bound covers all
    rules at once. The grid, not every distinct score, keeps the correction small.

    What a bound cannot show: it is a lower bound, so 0 means "no evidence", not
    "private"; a bound near ``max_epsilon`` says more records could show more. Counts
    limit it: with ``n`` members and ``n`` non-members and no error, clopper_pearson at a
    fixed threshold reaches about ``log(n / 3.7)`` at 95 %.

    References
    ----------
    .. [1] M. Jagielski, J. Ullman, A. Oprea. "Auditing Differentially Private Machine
       Learning: How Private is Private SGD?". NeurIPS 2020. arXiv:2006.07709.
    .. [2] M. Nasr, J. Hayes, T. Steinke, B. Balle, F. Tramèr, M. Jagielski, N. Carlini,
       A. Terzis. "Tight Auditing of Differentially Private Machine Learning". USENIX
       Security 2023. arXiv:2302.07956.
    .. [3] T. Steinke, M. Nasr, M. Jagielski. "Privacy Auditing with One (1) Training
       Run". NeurIPS 2023. arXiv:2305.08846.
    .. [4] S. Mahloujifar, L. Melis, K. Chaudhuri. "Auditing f-Differential Privacy in
       One Run". ICML 2025. arXiv:2410.22235.

    Examples
    --------
    >>> import numpy as np
    >>> from skmia.metrics import epsilon_lower_bound
    >>> rng = np.random.default_rng(0)
    >>> member = rng.random(2000) < 0.5                     # canaries in by fair coins
    >>> score = rng.normal(2.0 * member)                     # a 2-GDP mechanism
    >>> bound = epsilon_lower_bound(member, score, method="one_run")
    >>> round(bound.epsilon, 2), bound.counts["n_guesses"], bound.limited_by_counts
    (3.52, 512, False)
    >>> float(bound) == bound.epsilon
    True
    """
    threshold = _check_options(method, delta, confidence, threshold)
    y = _check_membership(membership, name="membership")
    score = _check_scores(score, len(y)).astype(np.float64)
    member = y == 1
    n_pos = int(member.sum())
    n_neg = len(member) - n_pos
    if method.startswith("one_run"):
        _check_fair_coins(member)
    alpha = 1.0 - float(confidence)
    max_value = _max_value(method, n_pos, n_neg, delta, alpha, threshold)
    if not max_value > 0:
        raise ValueError(
            f"too few records for any bound: with {n_pos} members and {n_neg} non-members, "
            f"even a perfect attack gives no {method} bound above 0 at confidence "
            f"{confidence} (threshold={threshold!r}); see max_epsilon_lower_bound."
        )
    rng = check_random_state(random_state)
    counting = _one_run_counts if method.startswith("one_run") else _two_group_counts
    value, counts = counting(method, member, score, delta, alpha, threshold, rng)
    return _result(method, value, max_value, counts, threshold, confidence, delta)


epsilon_lower_bound.__doc__ = epsilon_lower_bound.__doc__.replace("{theorems}", _THEOREMS.strip())


@functools.lru_cache(maxsize=256)
def _max_value(method, n_pos, n_neg, delta, alpha, threshold):
    """The value (ε, or μ for the Gaussian methods) of a perfect attack; cached."""
    if method.startswith("one_run"):
        return _one_run_max(method, n_pos, n_neg, delta, alpha, threshold)
    return _two_group_max(method, n_pos, n_neg, delta, alpha, threshold)


def _result(method, value, max_value, counts, threshold, confidence, delta):
    epsilon = _to_epsilon(method, value, delta)
    max_epsilon = _to_epsilon(method, max_value, delta)
    gaussian = method in ("gdp", "one_run_fdp")
    return EpsilonBound(
        epsilon=float(epsilon), method=method, threshold=threshold,
        confidence=float(confidence), delta=float(delta), counts=counts,
        max_epsilon=float(max_epsilon),
        limited_by_counts=bool(max_epsilon > 0 and epsilon >= _NEAR_MAX * max_epsilon),
        assumption=ASSUMPTIONS[method], mu=float(value) if gaussian else None,
    )


def max_epsilon_lower_bound(n_members, n_nonmembers, *, method, delta=1e-5,
                            confidence=0.95, threshold="bonferroni"):
    """The largest ε lower bound that so many members and non-members can ever give.

    What :func:`epsilon_lower_bound` returns for a perfect attack (every rule, or every
    guess, right) on ``n_members`` members and ``n_nonmembers`` non-members (canaries in
    and out, for one-run methods), with the same method, threshold rule, δ and
    confidence. Check it before training: if it is below the ε a claim states, no attack
    on so few records can show the claim violated.

    Parameters
    ----------
    n_members, n_nonmembers : int
        Numbers of members and non-members (for one-run methods, the expected halves of
        the canaries, e.g. 500 and 500 for 1,000 canaries).
    method, delta, confidence, threshold
        As for :func:`epsilon_lower_bound`; a float ``threshold`` stands for any rule
        fixed beforehand.

    Returns
    -------
    max_epsilon : float
        ``>= 0``; 0 when no bound above 0 is possible.

    Examples
    --------
    >>> from skmia.metrics import max_epsilon_lower_bound
    >>> round(max_epsilon_lower_bound(1000, 1000, method="clopper_pearson",
    ...                               threshold=0.0), 2)
    5.6
    >>> max_epsilon_lower_bound(3, 3, method="clopper_pearson")
    0.0
    """
    threshold = _check_options(method, delta, confidence, threshold)
    for name, value in (("n_members", n_members), ("n_nonmembers", n_nonmembers)):
        if not (isinstance(value, numbers.Integral) and value >= 1):
            raise ValueError(f"{name} must be an integer >= 1, got {value!r}.")
    value = _max_value(method, int(n_members), int(n_nonmembers), delta, 1.0 - confidence,
                       threshold)
    return float(_to_epsilon(method, value, delta))
