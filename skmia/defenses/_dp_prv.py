"""The PRV accountant's ε (Gopi et al., 2021, arXiv:2106.02848) without its repeated RDP.

opacus' ``PRVAccountant.get_epsilon`` sizes its discretisation domain from two RDP
bounds of the same steps (Remark 5.6 of the paper), and computes the RDP of one step
at every call: on a 2-core machine four fifths of the call, the same for every epoch of
one training and at every step of a noise search. Here the per-step RDP comes from
:func:`skmia.defenses._dp_accounting._rdp_of_one_step`'s cache; every other operation is
opacus' own, in its order, so the ε is opacus' to the last bit (tested against
``PRVAccountant`` in tests/test_vectorized_dpsgd.py). A bank of DP-SGD models accounts
each model after every epoch, so this is most of what accounting costs there.
"""

import functools

import numpy as np
from opacus.accountants import RDPAccountant
from opacus.accountants.analysis import rdp as rdp_analysis
from opacus.accountants.analysis.prv import (
    Domain,
    PoissonSubsampledGaussianPRV,
    TruncatedPrivacyRandomVariable,
    compose_heterogeneous,
    discretize,
)

from ._dp_accounting import MEMO_SIZE

__all__ = ["prv_epsilon"]


def _rdp_epsilon(rdp, delta):
    epsilon, _ = rdp_analysis.get_privacy_spent(orders=RDPAccountant.DEFAULT_ALPHAS, rdp=rdp,
                                                delta=delta)
    return float(epsilon)


def _domain(history, one_step, eps_error, delta_error):
    """opacus' ``PRVAccountant._get_domain`` (``compute_safe_domain_size``), with the
    RDP of one step of each entry given: ``one_step[i]``."""
    total = sum(steps for _, _, steps in history)
    composed = sum([rdp * steps for rdp, (_, _, steps) in zip(one_step, history, strict=True)])
    size = _rdp_epsilon(composed, delta_error / 4)
    for rdp in one_step:
        size = max(size, _rdp_epsilon(rdp, delta_error / (8 * total)))
    size = max(size, eps_error) + 3
    mesh_size = eps_error / np.sqrt(total * np.log(12 / delta_error) / 2)
    return Domain.create_aligned(-size, size, mesh_size)


def prv_epsilon(history, delta, eps_error=0.01, delta_error=None):
    """``PRVAccountant.get_epsilon(delta)`` for a ``(noise_multiplier, sample_rate,
    steps)`` history, bit for bit, the per-step RDP cached (and the ε of a history
    seen already: the models of a bank with as many rows share it, and a noise search's
    last ε is the ε its training ends at)."""
    return _prv_epsilon(tuple(tuple(h) for h in history), delta, eps_error, delta_error)


@functools.lru_cache(maxsize=MEMO_SIZE)
def _prv_epsilon(history, delta, eps_error, delta_error):
    from ._dp_accounting import _rdp_of_one_step

    if delta_error is None:
        delta_error = delta / 1000
    history = [tuple(h) for h in history]
    one_step = [_rdp_of_one_step(sigma, q) for sigma, q, _ in history]
    domain = _domain(history, one_step, eps_error, delta_error)
    truncated = [TruncatedPrivacyRandomVariable(PoissonSubsampledGaussianPRV(q, sigma),
                                                domain.t_min, domain.t_max)
                 for sigma, q, _ in history]
    composed = compose_heterogeneous(dprvs=[discretize(t, domain) for t in truncated],
                                     num_self_compositions=[s for _, _, s in history])
    _, _, eps_upper = composed.compute_epsilon(delta, delta_error, eps_error)
    return float(eps_upper)


@functools.lru_cache(maxsize=MEMO_SIZE)  # the models of a bank with as many rows share it
def noise_for_epsilon(target_epsilon, delta, sample_rate, steps, accountant):
    """opacus' ``get_noise_multiplier`` (its search, its tolerance 0.01, its
    ``MAX_SIGMA``), each ε of the search computed as its accountant computes it
    (:func:`prv_epsilon`; RDP from the cached per-step RDP): the same noise multiplier,
    bit for bit. Raises ValueError when no noise reaches ``target_epsilon``."""
    from opacus.accountants.utils import MAX_SIGMA

    from ._dp_accounting import _rdp_of_one_step

    def epsilon(sigma):
        if accountant == "prv":
            return prv_epsilon([(sigma, sample_rate, steps)], delta)
        return _rdp_epsilon(_rdp_of_one_step(sigma, sample_rate) * steps, delta)

    eps_high, sigma_low, sigma_high = float("inf"), 0, 10
    while eps_high > target_epsilon:
        sigma_high = 2 * sigma_high
        eps_high = epsilon(sigma_high)
        if sigma_high > MAX_SIGMA:
            raise ValueError("The privacy budget is too low.")
    while target_epsilon - eps_high > 0.01:
        sigma = (sigma_low + sigma_high) / 2
        eps = epsilon(sigma)
        if eps < target_epsilon:
            sigma_high, eps_high = sigma, eps
        else:
            sigma_low = sigma
    return sigma_high
