"""One-run ε lower bounds: Steinke, Nasr & Jagielski (binomial) and Mahloujifar et al. (f-DP).

Both audit one training run in which each of ``m`` canaries was included by its own fair
coin. The auditor guesses "member" for the ``k_plus`` highest scores, "non-member" for the
``k_minus`` lowest and abstains on the rest; the number of correct guesses among the
``r = k_plus + k_minus`` made is the statistic. The first functions take those counts (as
arrays, one entry per hypothesis) and return the bound at a given significance ``a``;
:func:`counts` and :func:`max_value` play the game under a threshold rule for
:func:`skmia.metrics.epsilon_lower_bound`.
"""

import numpy as np
from scipy import special
from scipy.optimize import brentq
from scipy.stats import binom

_EPS_MAX = 60.0  # expit(60) rounds to 1: no count of guesses can show more
_MU_MAX = 30.0  # a Gaussian trade-off with mu = 30 is indistinguishable from no privacy
_GRID = 65  # mu values per refinement pass of the f-DP bound


def guess_grid(m):
    """The guess counts ``(k_plus, k_minus)`` the Bonferroni rule tries, for ``m`` canaries.

    ``k`` runs over the powers of 2 up to ``m // 2``, each as ``k`` top guesses alone and
    as ``k`` top plus ``k`` bottom guesses (a coarse grid: fewer hypotheses, a smaller
    correction, and tighter bounds on Gaussian scores than ratios 1.2 or 1.4).
    """
    ks = 2 ** np.arange(0, int(np.log2(max(m // 2, 1))) + 1)
    k_plus = np.r_[ks, ks]
    k_minus = np.r_[np.zeros_like(ks), ks]
    keep = k_plus + k_minus <= m
    return k_plus[keep], k_minus[keep]


def correct_guesses(member_desc, k_plus, k_minus):
    """Correct guesses of each ``(k_plus, k_minus)``; membership sorted by score, high first."""
    members_top = np.r_[0, np.cumsum(member_desc)]  # members among the k highest
    nonmembers_bottom = np.r_[0, np.cumsum(1 - member_desc[::-1])]  # non-members, k lowest
    return members_top[k_plus] + nonmembers_bottom[k_minus]


def p_value(eps, r, v, m, delta):
    """Steinke et al.'s p-value of ``v`` or more correct guesses out of ``r`` under (ε, δ)-DP.

    ``P[Binomial(r, q) >= v] + 2 m δ max_{1 <= i <= v} P[v - i <= Binomial(r, q) < v] / i``
    with ``q = e^ε / (1 + e^ε)``: the (ε, δ) form of their main theorem (arXiv:2305.08846).
    """
    if v <= 0:
        return 1.0
    q = special.expit(eps)
    tail = float(special.bdtrc(v - 1, r, q))  # P[Binomial(r, q) >= v]
    j = np.arange(v - 1, -1, -1)  # v-1, v-2, ..., 0
    log_pmf = (special.gammaln(r + 1) - special.gammaln(j + 1) - special.gammaln(r - j + 1)
               + special.xlogy(j, q) + special.xlog1py(r - j, -q))
    pmf = np.exp(log_pmf)
    slack = np.max(np.cumsum(pmf) / np.arange(1, v + 1))
    return min(tail + 2.0 * m * delta * slack, 1.0)


def _pure_bound(r, v, a):
    """Largest ε with ``P[Binomial(r, e^ε/(1+e^ε)) >= v] <= a`` (the δ = 0 bound), vectorised."""
    r, v = np.asarray(r, np.int64), np.asarray(v, np.int64)
    lo, hi = np.zeros(r.shape), np.full(r.shape, _EPS_MAX)
    for _ in range(48):  # 60 / 2**48: far below any reported digit
        mid = 0.5 * (lo + hi)
        rejected = (v > 0) & (special.bdtrc(v - 1, r, special.expit(mid)) <= a)
        lo, hi = np.where(rejected, mid, lo), np.where(rejected, hi, mid)
    rejected_at_zero = (v > 0) & (special.bdtrc(v - 1, r, 0.5) <= a)
    return np.where(rejected_at_zero, lo, 0.0)


def one_run_bound(r, v, m, a, delta):
    """The best one-run ε bound over hypotheses (``r`` guesses, ``v`` correct) at level ``a``.

    The bound is the ε where the p-value reaches ``a``; the p-value increases with ε
    (``tests/metrics/test_epsilon_lower_bound.py`` checks it on random counts), so every smaller
    ε is rejected too. The δ term only raises the p-value, so each hypothesis's bound is
    at most its δ = 0 bound: hypotheses are tried in decreasing order of that, and the
    search stops as soon as none left can beat the best bound found.

    Returns
    -------
    epsilon : float
    best : int
        Index of the hypothesis that gives it (the first one when none gives more than 0).
    """
    r, v = np.asarray(r, int), np.asarray(v, int)
    pure = _pure_bound(r, v, a)
    best_eps, best = 0.0, int(np.argmax(pure))
    for index in np.argsort(-pure, kind="stable"):
        if pure[index] <= best_eps:
            break
        args = (int(r[index]), int(v[index]), m, delta)
        if p_value(0.0, *args) > a:
            continue
        eps = brentq(lambda e, args=args: p_value(e, *args) - a, 0.0, pure[index] + 1e-9,
                     xtol=1e-10)
        if eps > best_eps:
            best_eps, best = float(eps), int(index)
    return best_eps, best


def _fdp_falsified(k, v, m, a, mu):
    """Whether ``v`` correct of ``k`` guesses falsify μ-GDP at level ``a`` (arrays broadcast).

    Mahloujifar et al.'s recursion (arXiv:2410.22235, ``audit_rh_with_cap``) for the
    Gaussian trade-off curve, whose inverse blow-up is ``x -> Φ(Φ⁻¹(x) - μ)``: start
    from ``r = a v / m`` and ``h = a (k - v) / m``;
    for ``i = v - 1, ..., 0`` set ``h' = max(h, Φ(Φ⁻¹(r) - μ))`` and
    ``r = min(r + i / (k - i) (h' - h), 1)``. The claim is falsified when ``r + h > k / m``.
    """
    k, v, mu = np.broadcast_arrays(np.asarray(k, float), np.asarray(v, float), mu)
    r = a * v / m
    h = a * (k - v) / m
    done = v <= 0
    for t in range(int(v.max()) if v.size else 0):  # entry by entry, i = v - 1 - t
        i = v - 1 - t
        grown = np.maximum(h, special.ndtr(special.ndtri(r) - mu))
        moved = ~done & (grown > h)  # an h that stops moving never moves again, nor r
        step = np.minimum(r + i / np.maximum(k - i, 1.0) * (grown - h), 1.0)
        r = np.where(moved, step, r)
        h = np.where(moved, grown, h)
        done = ~moved | (t + 1 >= v)
        if done.all():
            break
    return r + h > k / m


def _fdp_mu(k, v, m, a):
    """Largest μ (on a grid, rounded down) that the counts falsify, for each hypothesis.

    Relies on falsification being monotone in μ (a claim of more privacy is easier to
    refute), which ``tests/metrics/test_epsilon_lower_bound.py`` checks on random counts.
    """
    k, v = np.asarray(k, float)[:, None], np.asarray(v, float)[:, None]
    lo = np.zeros((k.shape[0], 1))
    step = np.full((k.shape[0], 1), _MU_MAX / (_GRID - 1))
    found = None
    for _ in range(2):  # each pass narrows the bracket by (_GRID - 1)
        mus = lo + step * np.arange(_GRID)[None, :]  # the first is known falsified, or 0
        falsified = _fdp_falsified(k, v, m, a, mus)
        found = falsified[:, 0] if found is None else found
        first_kept = np.where(falsified.all(axis=1), _GRID, np.argmin(falsified, axis=1))
        lo = np.take_along_axis(mus, np.maximum(first_kept - 1, 0)[:, None], axis=1)
        step = step / (_GRID - 1)
    return np.where(found, lo[:, 0], 0.0)


def one_run_fdp_mu(k, v, m, a):
    """The best μ lower bound over hypotheses (``k`` guesses, ``v`` correct) at level ``a``.

    Tries the hypothesis with the highest one-run (δ = 0) bound first, then only those
    that still falsify μ-GDP at the best μ found (the others cannot beat it).

    Returns
    -------
    mu : float
    best : int
    """
    k, v = np.asarray(k, int), np.asarray(v, int)
    order = np.argsort(-_pure_bound(k, v, a), kind="stable")
    best = int(order[0])
    best_mu = float(_fdp_mu(k[[best]], v[[best]], m, a)[0])
    while True:
        beats = _fdp_falsified(k[:, None], v[:, None], m, a, np.full((1, 1), best_mu + 1e-9))[:, 0]
        beats[best] = False
        if not beats.any():
            return best_mu, best
        candidates = np.flatnonzero(beats)
        mus = _fdp_mu(k[candidates], v[candidates], m, a)
        if mus.max() <= best_mu:
            return best_mu, best
        best, best_mu = int(candidates[np.argmax(mus)]), float(mus.max())


# ------------------------------------------------- the guessing game, rule by rule
def _value(method, k_plus, k_minus, v, m, delta, a):
    """``(value, best)``: the ε (one_run) or μ (one_run_fdp) bound over these hypotheses."""
    r = k_plus + k_minus
    if len(r) == 0:
        return 0.0, 0
    if method == "one_run":
        return one_run_bound(r, v, m, a, delta)
    return one_run_fdp_mu(r, v, m, a)


def counts(method, member, score, delta, alpha, threshold, rng):
    """``(value, counts)`` of a one-run method under a threshold rule."""
    m = len(member)
    n_selection = None
    if threshold == "split":
        selection = np.zeros(m, dtype=bool)
        selection[rng.permutation(m)[: m // 2]] = True  # by canary, blind to the coins
        k_plus, k_minus = guess_grid(int(selection.sum()))
        v = correct_guesses(_by_score(member, score, selection, rng), k_plus, k_minus)
        _, best = _value(method, k_plus, k_minus, v, int(selection.sum()), delta, alpha)
        scale = (m - selection.sum()) / selection.sum()  # the chosen counts, as fractions
        k_plus = np.array([int(np.floor(k_plus[best] * scale))])
        k_minus = np.array([int(np.floor(k_minus[best] * scale))])
        n_selection, rows, a = int(selection.sum()), ~selection, alpha
    elif threshold == "bonferroni":
        k_plus, k_minus = guess_grid(m)
        rows, a = np.ones(m, dtype=bool), alpha / len(k_plus)
    else:  # a fixed threshold: every canary is guessed, member iff score >= threshold
        k_plus = np.array([int(np.sum(score >= threshold))])
        k_minus = np.array([m - int(k_plus[0])])
        rows, a = np.ones(m, dtype=bool), alpha
    v = correct_guesses(_by_score(member, score, rows, rng), k_plus, k_minus)
    value, best = _value(method, k_plus, k_minus, v, int(rows.sum()), delta, a)
    tally = {"n_canaries": int(rows.sum()), "n_members": int(member[rows].sum()),
             "n_nonmembers": int((~member[rows]).sum()), "k_plus": int(k_plus[best]),
             "k_minus": int(k_minus[best]), "n_guesses": int(k_plus[best] + k_minus[best]),
             "n_correct": int(v[best]), "n_hypotheses": len(k_plus)}
    if n_selection is not None:
        tally["n_selection"] = n_selection
    return value, tally


def _by_score(member, score, rows, rng):
    """Membership of ``rows`` ordered by decreasing score, ties broken at random."""
    score, member = score[rows], member[rows]
    order = np.lexsort((rng.random(len(score)), score))[::-1]
    return member[order].astype(np.int64)


def max_value(method, n_pos, n_neg, delta, alpha, threshold):
    """The value (ε or μ) of a perfect guesser on these counts under the threshold rule."""
    m = n_pos + n_neg
    if threshold == "split":
        m_sel = m // 2
        m, a = m - m_sel, alpha
        k_plus, k_minus = guess_grid(m_sel)
        scale = m / m_sel if m_sel else 0.0
        k_plus = np.floor(k_plus * scale).astype(int)
        k_minus = np.floor(k_minus * scale).astype(int)
        n_pos = int(np.ceil(n_pos * m / (m + m_sel)))
        n_neg = int(np.ceil(n_neg * m / (m + m_sel)))
    elif threshold == "bonferroni":
        k_plus, k_minus = guess_grid(m)
        a = alpha / len(k_plus)
    else:
        k_plus, k_minus, a = np.array([n_pos]), np.array([n_neg]), alpha
    v = np.minimum(k_plus, n_pos) + np.minimum(k_minus, n_neg)
    return _value(method, k_plus, k_minus, v, m, delta, a)[0]


def check_fair_coins(member):
    """Refuse membership no fair coins would give (one-run methods assume them)."""
    m, n_pos = len(member), int(member.sum())
    p = 2 * binom.cdf(min(n_pos, m - n_pos), m, 0.5)
    if p < 1e-6:
        raise ValueError(
            f"one-run bounds assume each canary was included by an independent fair coin, "
            f"but {n_pos} of {m} canaries are members (two-sided p = {p:.1e} under fair "
            "coins). Use method='clopper_pearson' or 'gdp' for separately drawn members "
            "and non-members."
        )
