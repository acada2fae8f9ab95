"""One-run ε lower bounds: Steinke, Nasr & Jagielski (binomial) and Mahloujifar et al. (f-DP).

Both audit one training run in which each of ``m`` canaries was included by its own fair
coin. The auditor guesses "member" for the ``k_plus`` highest scores, "non-member" for the
``k_minus`` lowest and abstains on the rest; the number of correct guesses among the
``r = k_plus + k_minus`` made is the statistic. The functions here take those counts (as
arrays, one entry per hypothesis) and return the bound at a given significance ``a``.
"""

import numpy as np
from scipy import special
from scipy.optimize import brentq

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
    with ``q = e^ε / (1 + e^ε)`` (arXiv:2305.08846, Theorem 5.2 and its Algorithm).
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
    for _ in range(64):
        mid = 0.5 * (lo + hi)
        rejected = (v > 0) & (special.bdtrc(v - 1, r, special.expit(mid)) <= a)
        lo, hi = np.where(rejected, mid, lo), np.where(rejected, hi, mid)
    rejected_at_zero = (v > 0) & (special.bdtrc(v - 1, r, 0.5) <= a)
    return np.where(rejected_at_zero, lo, 0.0)


def one_run_bound(r, v, m, a, delta):
    """The best one-run ε bound over hypotheses (``r`` guesses, ``v`` correct) at level ``a``.

    The δ term only raises the p-value, so each hypothesis's bound is at most its δ = 0
    bound: hypotheses are tried in decreasing order of that, and the search stops as
    soon as none left can beat the best bound found.

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

    Mahloujifar et al.'s recursion (arXiv:2410.22235, Algorithm "audit with
    reconstruction"/its capped form), for the Gaussian trade-off curve, whose inverse
    blow-up is ``x -> Φ(Φ⁻¹(x) - μ)``: start from ``r = a v / m`` and ``h = a (k - v) / m``;
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
    """Largest μ (on a grid, rounded down) that the counts falsify, for each hypothesis."""
    k, v = np.asarray(k, float)[:, None], np.asarray(v, float)[:, None]
    lo = np.zeros((k.shape[0], 1))
    step = np.full((k.shape[0], 1), _MU_MAX / (_GRID - 1))
    found = _fdp_falsified(k, v, m, a, np.zeros((1, 1)))[:, 0]
    for _ in range(2):  # each pass narrows the bracket by (_GRID - 1)
        mus = lo + step * np.arange(_GRID)[None, :]
        falsified = _fdp_falsified(k, v, m, a, mus)
        last = np.where(falsified.any(axis=1), _GRID - 1 - np.argmax(falsified[:, ::-1], axis=1), 0)
        lo = np.take_along_axis(mus, last[:, None], axis=1)
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
        if best_mu == 0.0:
            beats &= _fdp_falsified(k[:, None], v[:, None], m, a, np.zeros((1, 1)))[:, 0]
        beats[best] = False
        if not beats.any():
            return best_mu, best
        candidates = np.flatnonzero(beats)
        mus = _fdp_mu(k[candidates], v[candidates], m, a)
        if mus.max() <= best_mu:
            return best_mu, best
        best, best_mu = int(candidates[np.argmax(mus)]), float(mus.max())
