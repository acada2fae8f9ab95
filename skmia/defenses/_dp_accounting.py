"""Privacy accounting of DP-SGD: the ε that a history of noisy steps spends.

opacus' PRV accountant (Gopi et al., 2021) by default, its RDP accountant (Mironov, 2017)
beyond the range the PRV discretisation handles; the warning for settings whose
guarantee means nothing.

Every result is memoised on exactly its inputs (the history of ``(noise multiplier,
sample rate, steps)``, δ and the accountant; for the noise search, its target ε too),
so a bank of models with one recipe accounts each distinct setting once and hands the
same float to every model with it: bit for bit what each computes alone. The models of
a bank of balanced halves mostly differ in their training-set size, hence in their
sample rate, and each distinct sample rate is accounted once.
"""

import functools
import math
import warnings

import numpy as np

from ._dp_rdp import one_step_rdp, rdp_epsilon

__all__ = ["MEANINGFUL_EPSILON", "WeakPrivacyWarning", "privacy_epsilon"]

#: Above this ε the guarantee ``P[M(D) ∈ S] <= e^ε P[M(D') ∈ S] + δ`` says nothing useful.
MEANINGFUL_EPSILON = 10.0
# Beyond this ε the PRV accountant's discretisation grows without bound (the reference's
# σ = 0.01 asks for terabytes); the RDP bound, itself a valid upper bound, is reported.
_PRV_MAX_EPSILON = 100.0
_ACCOUNTANTS = ("prv", "rdp")
#: Entries kept by each memo of the accounting: a bank's model needs ~15 of the noise
#: search and one per epoch, so that a bank of hundreds of models keeps its own (the
#: per-step RDP, 151 floats, is the largest entry: ~20 MB at most).
MEMO_SIZE = 1 << 14


class WeakPrivacyWarning(UserWarning):
    """DP-SGD settings whose (ε, δ) guarantee is too weak to mean anything.

    Raised after training when the ε reached exceeds 10 (or is infinite, as with no
    noise) or when δ is not below ``1 / n`` for the ``n`` training rows. The model is
    trained as asked; only the privacy claim is void.
    """


def privacy_epsilon(history, delta, accountant="prv"):
    """ε spent by the steps in ``history`` (opacus' ``(noise, sample_rate, steps)`` list).

    The PRV accountant (Gopi et al., 2021) by default, RDP (Mironov, 2017) as an option.
    Where the RDP bound exceeds 100 the PRV accountant cannot discretise the privacy
    loss and the RDP bound, also a valid upper bound, is returned. Memoised: the models
    of a bank with one setting share one computation.
    """
    return _privacy_epsilon(tuple(tuple(h) for h in history), delta, accountant)


@functools.lru_cache(maxsize=MEMO_SIZE)
def _privacy_epsilon(history, delta, accountant):
    if not history:
        return 0.0
    if any(sigma == 0 for sigma, _, _ in history):
        return math.inf
    with warnings.catch_warnings(), np.errstate(all="ignore"):
        # opacus notes the edge of its alpha grid and numpy overflows for huge ε; the
        # caller's WeakPrivacyWarning names the ε reached instead
        warnings.simplefilter("ignore")
        # RDPAccountant.get_epsilon, opacus' RDP computed only at the orders that
        # decide the ε (_dp_rdp), each step's memoised
        epsilon = rdp_epsilon([(one_step_rdp(sigma, q), steps) for sigma, q, steps in history],
                              delta)
        if accountant == "prv" and epsilon <= _PRV_MAX_EPSILON:
            from ._dp_prv import prv_epsilon  # PRVAccountant's, its RDP from _dp_rdp

            epsilon = prv_epsilon(history, delta)
    return epsilon
