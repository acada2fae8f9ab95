"""The PRV accountant's ε (Gopi et al., 2021, arXiv:2106.02848), opacus' to the last bit,
without the work that does not change it.

opacus' ``PRVAccountant.get_epsilon`` sizes its discretisation domain from two RDP
bounds of the same steps (Remark 5.6 of the paper), discretises the privacy loss
distribution of each step on it, composes by FFT and reads the ε off. Here:

- the RDP bounds come from :mod:`skmia.defenses._dp_rdp` (opacus' RDP at the one to three
  orders that decide them, each step's memoised), not from its 151 orders every call;
- the discretisation evaluates the distribution function once per distinct point: the
  right edge of a cell that is, bit for bit, the left edge of the next is not evaluated
  twice, and below ``log(1 - q)``, where it is 0, nothing is evaluated;
- the continuous mean integrates the same function by the same ``scipy.integrate.quad``
  calls, through a scalar version of it (the same numpy and scipy functions of the same
  numbers) rather than numpy's broadcasting machinery at each of ~3,000 points;
- everything else (domain, FFT composition, the ε) is opacus' own code, in its order.

Every value is opacus', bit for bit (tested against ``PRVAccountant`` in
tests/defenses/test_dp_accounting.py). A bank of DP-SGD models accounts each model after every
epoch and in its noise search, so this is most of what accounting costs there.
"""

import functools

import numpy as np
from opacus.accountants.analysis.prv import (
    DiscretePRV,
    Domain,
    compose_heterogeneous,
)
from scipy import integrate
from scipy.special import erfc

from ._dp_rdp import MEMO_SIZE, one_step_rdp, rdp_epsilon

__all__ = ["noise_for_epsilon", "prv_epsilon"]

_SQRT2 = np.sqrt(2)  # opacus' constant, the same float


def _domain(history, one_step, eps_error, delta_error):
    """opacus' ``PRVAccountant._get_domain`` (``compute_safe_domain_size``), with the
    RDP of one step of each entry given: ``one_step[i]``, an :class:`OneStepRDP`."""
    total = sum(steps for _, _, steps in history)
    size = rdp_epsilon([(rdp, steps) for rdp, (_, _, steps) in zip(one_step, history,
                                                                    strict=True)],
                       delta_error / 4)
    for rdp in one_step:
        size = max(size, rdp_epsilon([(rdp, 1)], delta_error / (8 * total)))
    size = max(size, eps_error) + 3
    mesh_size = eps_error / np.sqrt(total * np.log(12 / delta_error) / 2)
    return Domain.create_aligned(-size, size, mesh_size)


def prv_epsilon(history, delta, eps_error=0.01, delta_error=None):
    """``PRVAccountant.get_epsilon(delta)`` for a ``(noise_multiplier, sample_rate,
    steps)`` history, bit for bit (memoised: the models of a bank with as many rows
    share it, and a noise search's last ε is the ε its training ends at)."""
    return _prv_epsilon(tuple(tuple(h) for h in history), delta, eps_error, delta_error)


@functools.lru_cache(maxsize=MEMO_SIZE)
def _prv_epsilon(history, delta, eps_error, delta_error):
    if delta_error is None:
        delta_error = delta / 1000
    history = [tuple(h) for h in history]
    one_step = [one_step_rdp(sigma, q) for sigma, q, _ in history]
    domain = _domain(history, one_step, eps_error, delta_error)
    composed = compose_heterogeneous(
        dprvs=[_discretize(_Loss(q, sigma, domain.t_min, domain.t_max), domain)
               for sigma, q, _ in history],
        num_self_compositions=[s for _, _, s in history])
    _, _, eps_upper = composed.compute_epsilon(delta, delta_error, eps_error)
    return float(eps_upper)


class _Loss:
    """opacus' ``TruncatedPrivacyRandomVariable(PoissonSubsampledGaussianPRV(q, σ),
    t_min, t_max)``: its distribution function by the same operations on the same
    numbers, evaluated only where it is not 0, and its mean by the same integration."""

    def __init__(self, q, sigma, t_min, t_max):
        self.q, self.sigma, self.t_min, self.t_max = q, sigma, t_min, t_max
        self._floor = np.log(1 - q)  # at or below it the loss' distribution function is 0
        self._at_min = self._untruncated(np.asarray(t_min))
        self._mass = self._untruncated(np.asarray(t_max)) - self._at_min

    def _untruncated(self, t):
        """``PoissonSubsampledGaussianPRV.cdf`` at the points of the array ``t``."""
        q, sigma = self.q, self.sigma
        out = np.zeros(t.shape)
        above = t > self._floor
        t = t[above]
        z = np.log((np.exp(t) + q - 1) / q)
        out[above] = (-q * erfc((2 * z * sigma**2 - 1) / (2 * _SQRT2 * sigma)) / 2
                      - (1 - q) * erfc((2 * z * sigma**2 + 1) / (2 * _SQRT2 * sigma)) / 2
                      + 1.0)
        return out

    def cdf(self, t):
        """The truncated distribution function at the points of the array ``t``."""
        inside = (t >= self.t_min) & (t < self.t_max)
        out = np.where(t < self.t_min, 0.0, 1.0)
        out[inside] = (self._untruncated(t[inside]) - self._at_min) / self._mass
        return out

    def _cdf_at(self, t):
        """The truncated distribution function at one point (``quad``'s integrand)."""
        if t < self.t_min:
            return 0.0
        if not t < self.t_max:
            return 1.0
        q, sigma = self.q, self.sigma
        value = 0.0
        if t > self._floor:
            z = np.log((np.exp(t) + q - 1) / q)
            value = (-q * erfc((2 * z * sigma**2 - 1) / (2 * _SQRT2 * sigma)) / 2
                     - (1 - q) * erfc((2 * z * sigma**2 + 1) / (2 * _SQRT2 * sigma)) / 2
                     + 1.0)
        return (value - self._at_min) / self._mass

    def mean(self):
        """``TruncatedPrivacyRandomVariable.mean``: the same integrals of the same
        function over the same pieces."""
        lower_exponent = int(np.log10(np.abs(self.t_min)))
        upper_exponent = int(np.log10(self.t_max))
        points = np.concatenate([
            [self.t_min], -np.logspace(start=lower_exponent, stop=-5, num=10), [0],
            np.logspace(start=-5, stop=upper_exponent, num=10), [self.t_max]])
        mean = 0.0
        for left, right in zip(points[:-1], points[1:], strict=True):
            integral, _ = integrate.quad(self._cdf_at, left, right, limit=500)
            mean += right * self._cdf_at(right) - left * self._cdf_at(left) - integral
        return mean


def _discretize(loss, domain):
    """opacus' ``discretize(loss, domain)``: the probability of each cell, its mean
    aligned with the continuous mean; each distinct cell edge evaluated once."""
    centres = domain.ts
    left, right = centres - domain.dt / 2, centres + domain.dt / 2
    at_right = loss.cdf(right)
    at_left = np.empty_like(at_right)
    shared = np.concatenate([[False], left[1:] == right[:-1]])  # bit for bit
    at_left[shared] = at_right[:-1][shared[1:]]
    at_left[~shared] = loss.cdf(left[~shared])
    pmf = at_right - at_left
    shift = loss.mean() - np.dot(domain.ts, pmf)
    if np.abs(shift) >= domain.dt / 2:
        raise RuntimeError("Discrete mean differs significantly from continuous mean.")
    return DiscretePRV(pmf=pmf, domain=domain.shift_right(shift))


#: eps_error of the coarse PRV ε that brackets the noise search's ε (opacus': 0.01)
_COARSE_ERROR = 0.1


@functools.lru_cache(maxsize=MEMO_SIZE)  # the models of a bank with as many rows share it
def noise_for_epsilon(target_epsilon, delta, sample_rate, steps, accountant):
    """opacus' ``get_noise_multiplier``: its search, its tolerance 0.01, its
    ``MAX_SIGMA``, each comparison of an ε decided as with the ε its accountant computes
    (:func:`prv_epsilon`, or the RDP ε): the same noise multiplier, bit for bit.

    With the PRV accountant, an ε that bounds prove above or below the value compared
    with is not computed (:class:`_Bracket`); the returned noise's ε is, and is checked
    to meet the search's ending condition (else, or if the bounds never let the search
    end, it is redone with every ε computed). Raises ValueError when no noise reaches
    ``target_epsilon``.
    """
    def exact(sigma):
        if accountant == "prv":
            return _Bracket.known(prv_epsilon([(sigma, sample_rate, steps)], delta))
        return _Bracket.known(rdp_epsilon([(one_step_rdp(sigma, sample_rate), steps)],
                                          delta))

    if accountant == "prv":
        try:
            sigma, eps = _search(target_epsilon, lambda sigma: _Bracket(
                sigma, sample_rate, steps, delta), max_halvings=200)
            if eps is not None and eps < target_epsilon and not target_epsilon - eps > 0.01:
                return sigma
        except ValueError:
            pass  # the bounds said no noise would do: let every ε say it
    return _search(target_epsilon, exact)[0]


def _search(target_epsilon, epsilon_of, max_halvings=None):
    """opacus' ``get_noise_multiplier`` loop over the :class:`_Bracket` of each noise:
    the noise found and its ε (None after ``max_halvings`` halvings)."""
    from opacus.accountants.utils import MAX_SIGMA

    eps_high, sigma_low, sigma_high = _Bracket.known(float("inf")), 0, 10
    while eps_high.holds(lambda eps: eps > target_epsilon):
        sigma_high = 2 * sigma_high
        eps_high = epsilon_of(sigma_high)
        if sigma_high > MAX_SIGMA:
            raise ValueError("The privacy budget is too low.")
    halvings = 0
    while eps_high.holds(lambda eps: target_epsilon - eps > 0.01):
        halvings += 1
        if max_halvings is not None and halvings > max_halvings:
            return sigma_high, None
        sigma = (sigma_low + sigma_high) / 2
        eps = epsilon_of(sigma)
        if eps.holds(lambda eps: eps < target_epsilon):
            sigma_high, eps_high = sigma, eps
        else:
            sigma_low = sigma
    return sigma_high, eps_high.value()


class _Bracket:
    """What the noise search knows of the PRV ε of ``sigma`` (``prv_epsilon`` of
    ``steps`` steps at ``sample_rate``): an interval ``[low, high]`` holding it, from
    cheap bounds, narrowed to the value itself (:meth:`value`) only when a comparison
    needs it (:meth:`holds`).

    The bounds rest on the PRV accountant's guarantee (Gopi et al., 2021): its estimate
    is within ``eps_error`` of the ε at ``δ - δ_error``, and ``eps_error`` is added, so
    the value lies in ``[true ε, true ε + 2 eps_error]``. The RDP ε at ``δ - δ_error``
    (a valid bound, ≥ the true ε) plus ``2 eps_error`` is above it; the same
    accountant at a coarser ``eps_error`` (:data:`_COARSE_ERROR`), ``s``, puts it in
    ``[s - 2 e_s, s + 2 eps_error]``, each side widened by half here (measured: within
    ``[s - 0.91 e_s, s]``).
    """

    def __init__(self, sigma, sample_rate, steps, delta, eps_error=0.01):
        self._history, self._delta = [(sigma, sample_rate, steps)], delta
        delta_error = delta / 1000
        rdp = rdp_epsilon([(one_step_rdp(sigma, sample_rate), steps)], delta - delta_error)
        self.low, self.high = 0.0, rdp + 2 * eps_error
        self._coarse = (sigma, sample_rate, steps, delta, eps_error)
        self._computed = False

    @classmethod
    def known(cls, value):
        bracket = cls.__new__(cls)
        bracket.low = bracket.high = value
        bracket._coarse, bracket._computed = None, True
        return bracket

    def holds(self, predicate):
        """Whether ``predicate`` (monotone in the ε) holds at the ε, computed only if
        the interval's ends disagree."""
        if predicate(self.low) == predicate(self.high):
            return predicate(self.low)
        if self._coarse is not None:
            self._narrow()
            if predicate(self.low) == predicate(self.high):
                return predicate(self.low)
        return predicate(self.value())

    def _narrow(self):
        sigma, sample_rate, steps, delta, eps_error = self._coarse
        self._coarse = None
        try:
            coarse = prv_epsilon([(sigma, sample_rate, steps)], delta,
                                 eps_error=_COARSE_ERROR)
        except (RuntimeError, ValueError):  # the coarse grid failed: keep the bounds
            return
        self.low = max(self.low, coarse - 3 * _COARSE_ERROR)
        self.high = min(self.high, coarse + 3 * eps_error)

    def value(self):
        """The ε itself: opacus' PRV ε."""
        if not self._computed:
            self.low = self.high = prv_epsilon(self._history, self._delta)
            self._computed, self._coarse = True, None
        return self.low
