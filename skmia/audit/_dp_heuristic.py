"""The heuristic last-iterate ε of DP-SGD (Steinke et al., ICLR 2025, arXiv:2410.06186).

DP-SGD's accountant bounds what *every* noisy step reveals. An adversary who sees only the
last model, and a loss whose gradients are linear (so that a record's influence on the last
weights is the number of steps that drew it, times a fixed vector), sees

    P = Binomial(T, q) + N(0, T σ²)   (the record IN)   against   Q = N(0, T σ²)   (OUT)

in units of the clipping bound. The ε of this pair at δ is the paper's heuristic: not a
guarantee (a non-linear loss can leak more), but what the strongest audits of the last
model reach in practice, and exactly what a one-run audit with gradient canaries scored
by their summed noisy steps (``white_box_score="step"``) can hope to approach.
"""

import numpy as np
from scipy import optimize, special, stats

__all__ = ["last_iterate_epsilon"]

_SPAN = 12.0  # the grid reaches this many noise deviations beyond the support


def _log_densities(noise_multiplier, sample_rate, steps, n_grid):
    s = noise_multiplier * np.sqrt(steps)
    k = np.arange(steps + 1)
    log_weight = stats.binom.logpmf(k, steps, sample_rate)
    keep = log_weight > np.max(log_weight) - 60  # draws with any weight left
    k, log_weight = k[keep], log_weight[keep]
    x = np.linspace(-_SPAN * s, k.max() + _SPAN * s, n_grid)
    log_q = stats.norm.logpdf(x, 0.0, s)
    log_p = special.logsumexp(log_weight[:, None] + stats.norm.logpdf(x[None, :], k[:, None], s),
                              axis=0)
    return x, log_p, log_q


def _delta(epsilon, x, log_a, log_b):
    """∫ (a − e^ε b)_+ for densities a, b on the grid ``x`` (trapezoid)."""
    gap = -np.expm1(np.minimum(epsilon + log_b - log_a, 0.0))  # 1 − e^ε b/a, or 0
    return float(np.trapezoid(np.exp(log_a) * gap, x))


def last_iterate_epsilon(noise_multiplier, sample_rate, steps, delta=1e-5, *, n_grid=20_001):
    """The heuristic ε of DP-SGD's last iterate (Steinke et al., arXiv:2410.06186).

    The ε at ``delta`` of the pair ``Binomial(steps, q) + N(0, steps σ²)`` vs
    ``N(0, steps σ²)`` (both directions): what an adversary who sees the final model
    learns about one record when the loss is linear. Below the accountant's ε, which
    covers every step.

    Parameters
    ----------
    noise_multiplier : float
        σ, the noise relative to the clipping bound (> 0).
    sample_rate : float
        q, the Poisson sampling rate, in (0, 1].
    steps : int
        T, the number of noisy steps (>= 1).
    delta : float, default=1e-5
        The δ in (0, 1).
    n_grid : int, default=20001
        Points of the numerical integration.

    Returns
    -------
    epsilon : float
        The heuristic ε (0 when even ε = 0 meets ``delta``).

    References
    ----------
    .. [1] T. Steinke, M. Nasr, A. Ganesh, B. Balle, C. A. Choquette-Choo, M. Jagielski,
       J. Hayes, A. G. Thakurta, A. Smith, A. Terzis. "The Last Iterate Advantage:
       Empirical Auditing and Principled Heuristic Analysis of Differentially Private
       SGD". ICLR 2025. arXiv:2410.06186.

    Examples
    --------
    >>> from skmia.audit import last_iterate_epsilon
    >>> round(last_iterate_epsilon(1.0, 1.0, 1), 2)  # the Gaussian mechanism, μ = 1
    4.38
    """
    if not noise_multiplier > 0:
        raise ValueError(f"noise_multiplier must be > 0, got {noise_multiplier!r}.")
    if not 0 < sample_rate <= 1:
        raise ValueError(f"sample_rate must be in (0, 1], got {sample_rate!r}.")
    if not (int(steps) == steps and steps >= 1):
        raise ValueError(f"steps must be an integer >= 1, got {steps!r}.")
    if not 0 < delta < 1:
        raise ValueError(f"delta must be in (0, 1), got {delta!r}.")
    x, log_p, log_q = _log_densities(float(noise_multiplier), float(sample_rate), int(steps),
                                     n_grid)
    epsilons = []
    for log_a, log_b in ((log_p, log_q), (log_q, log_p)):
        if _delta(0.0, x, log_a, log_b) <= delta:
            epsilons.append(0.0)
            continue
        high = 1.0
        while _delta(high, x, log_a, log_b) > delta:
            high *= 2
        epsilons.append(optimize.brentq(
            lambda e, a=log_a, b=log_b: _delta(e, x, a, b) - delta, 0.0, high, xtol=1e-6))
    return float(max(epsilons))
