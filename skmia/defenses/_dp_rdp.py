"""RDP ε of DP-SGD steps: opacus' value, with its costly orders computed only where needed.

opacus' RDP accountant (Mironov, 2017; the sampled Gaussian of Mironov, Talwar & Zhang,
2019, arXiv:1908.10530) computes the RDP of one step at each of its 151 orders in Python,
a slowly converging series at each of the 99 fractional orders: 0.03-0.3 s per noise
multiplier on a 2-core machine, most of a step of the noise search. An ε uses one order,
the one that minimises the conversion to (ε, δ)-DP. Here:

- numpy estimates ``log A_α`` at every order at once: at the integer orders the finite
  binomial sum, at the fractional ones the Gaussian integral that the series sums, by
  the trapezoid rule (both within ~1e-12 of opacus' values);
- opacus' own scalar computation gives the RDP at the orders whose estimated ε comes
  within :data:`_MARGIN` (relative) of the smallest: one to three orders, as a rule;
- the ε is opacus' ``get_privacy_spent`` of the vector with opacus' values at those
  orders and ``inf`` at the others, which lie farther than any estimation error from
  the minimum: opacus' ε, bit for bit.

Should a value computed by opacus differ from numpy's estimate by more than
:data:`_AGREEMENT`, the step is computed by opacus at every order, as its accountant does
(so is a step whose grid would be too fine: σ below ~0.01).
"""

import functools
import math

import numpy as np
from opacus.accountants import RDPAccountant
from opacus.accountants.analysis import rdp as rdp_analysis
from scipy import special

__all__ = ["OneStepRDP", "one_step_rdp", "rdp_epsilon"]

ORDERS = RDPAccountant.DEFAULT_ALPHAS
_ORDERS = np.asarray(ORDERS, dtype=float)
_INTEGER = np.array([float(a).is_integer() for a in ORDERS])
#: orders whose estimated ε comes within this (relative, at least absolute) of the least
_MARGIN = 1e-6
#: numpy's and opacus' RDP at an order agree to this (relative), else all are opacus'
_AGREEMENT = 1e-9
MEMO_SIZE = 1 << 14


class OneStepRDP:
    """The RDP of one step at opacus' orders: numpy's ``estimate`` at every order, and
    opacus' value at the orders asked for (:meth:`exact`, memoised)."""

    def __init__(self, noise_multiplier, sample_rate):
        self.noise_multiplier, self.sample_rate = noise_multiplier, sample_rate
        self._exact = {}
        self.estimate = None
        if 0 < sample_rate < 1 and noise_multiplier > 0:
            with np.errstate(all="ignore"):
                self.estimate = _estimate(sample_rate, noise_multiplier)
        if self.estimate is None or not np.isfinite(self.estimate).all():
            self._all_exact()  # edge cases: opacus at every order

    def _all_exact(self):
        self.estimate = None  # nothing to check opacus' values against
        self.exact(range(len(ORDERS)))
        self.estimate = np.array([self._exact[i] for i in range(len(ORDERS))])

    def exact(self, indices):
        """opacus' RDP of one step at the orders of ``indices`` (its ``compute_rdp``);
        should one disagree with numpy's estimate, opacus' at every order."""
        missing = [i for i in indices if i not in self._exact]
        if missing:
            values = rdp_analysis.compute_rdp(
                q=self.sample_rate, noise_multiplier=self.noise_multiplier, steps=1,
                orders=[ORDERS[i] for i in missing])
            self._exact.update(zip(missing, np.atleast_1d(values).tolist(), strict=True))
            if self.estimate is not None and not all(
                    _agree(self.estimate[i], self._exact[i]) for i in missing):
                self._all_exact()
        return [self._exact[i] for i in indices]


def _agree(estimate, value):
    return estimate == value or abs(estimate - value) <= _AGREEMENT * max(1.0, abs(value))


@functools.lru_cache(maxsize=MEMO_SIZE)
def one_step_rdp(noise_multiplier, sample_rate):
    """The (memoised) :class:`OneStepRDP` of a noise multiplier and sample rate."""
    return OneStepRDP(noise_multiplier, sample_rate)


def _conversion(rdp, delta):
    """opacus' ``get_privacy_spent`` ε at each order (its expression)."""
    return (rdp - (np.log(delta) + np.log(_ORDERS)) / (_ORDERS - 1)
            + np.log((_ORDERS - 1) / _ORDERS))


def rdp_epsilon(parts, delta):
    """opacus' RDP ε of ``parts``, ``[(OneStepRDP, steps), ...]`` composed, at ``delta``
    (``get_privacy_spent`` of the summed ``rdp * steps``), bit for bit."""
    estimates = None
    while estimates is None or any(rdp.estimate is not e for (rdp, _), e in zip(
            parts, estimates, strict=True)):  # again if an estimate was replaced
        estimates = [rdp.estimate for rdp, _ in parts]
        with np.errstate(all="ignore"):
            estimate = _conversion(sum(e * steps for e, (_, steps) in zip(
                estimates, parts, strict=True)), delta)
        chosen = np.arange(len(ORDERS))
        if np.isfinite(estimate).all():
            best = estimate.min()
            chosen = np.flatnonzero(estimate <= best + _MARGIN * max(1.0, abs(best)))
        for rdp, _ in parts:
            rdp.exact(chosen.tolist())
    composed = np.full(len(ORDERS), np.inf)  # opacus' values there, none can be least
    for i in chosen.tolist():
        composed[i] = sum(rdp.exact([i])[0] * steps for rdp, steps in parts)
    epsilon, _ = rdp_analysis.get_privacy_spent(orders=ORDERS, rdp=composed, delta=delta)
    return float(epsilon)


def _estimate(q, sigma):
    """numpy's RDP of one step at every order, or None where its grid would be huge."""
    log_a = np.empty(len(ORDERS))
    log_a[_INTEGER] = _log_a_integer(q, sigma, _ORDERS[_INTEGER])
    fractional = _log_a_fractional(q, sigma, _ORDERS[~_INTEGER])
    if fractional is None:
        return None
    log_a[~_INTEGER] = fractional
    return log_a / (_ORDERS - 1)


def _log_a_fractional(q, sigma, alphas, per_width=16, widths=12, max_points=20_000):
    """log A_α = log E_{z ~ N(0, σ²)} [(1 - q + q e^{(2z - 1) / 2σ²})^α] by the trapezoid
    rule on a grid of σ / ``per_width`` over the integrand's mass (it is a Gaussian of
    width σ about 0 and about α): exponentially accurate for this smooth integrand."""
    low, high = -widths * sigma, alphas.max() + widths * sigma
    n = int(math.ceil((high - low) / sigma * per_width)) + 1
    if n > max_points:
        return None
    z, dz = np.linspace(low, high, n, retstep=True)
    log_ratio = np.logaddexp(math.log(1 - q), math.log(q) + (2 * z - 1) / (2 * sigma ** 2))
    log_density = -z ** 2 / (2 * sigma ** 2) - math.log(sigma * math.sqrt(2 * math.pi))
    terms = log_density[None, :] + alphas[:, None] * log_ratio[None, :]
    weights = np.full(n, dz)
    weights[[0, -1]] = dz / 2
    return special.logsumexp(terms, axis=1, b=weights[None, :])


def _log_a_integer(q, sigma, alphas):
    """log A_α at integer orders: the binomial sum (§3.3 of arXiv:1908.10530) as a
    log-sum-exp."""
    i = np.arange(int(alphas.max()) + 1)[None, :]
    a = alphas[:, None]
    terms = (special.gammaln(a + 1) - special.gammaln(i + 1) - special.gammaln(a - i + 1)
             + i * math.log(q) + (a - i) * math.log(1 - q) + (i * i - i) / (2 * sigma ** 2))
    return special.logsumexp(np.where(i <= a, terms, -np.inf), axis=1)
