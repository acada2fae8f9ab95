"""RMIA: the target's likelihood ratio against population records (Zarifzadeh et al.).

numpy / scipy only: importing this module does not import torch.
"""

from numbers import Real

import numpy as np
from scipy.special import log_expit, logsumexp
from sklearn.utils._param_validation import Interval

from ._reference import _SHARED_DOCS, _ReferenceModelAttack

__all__ = ["RMIAAttack"]


@_SHARED_DOCS
class RMIAAttack(_ReferenceModelAttack):
    """The relative membership-inference attack (RMIA): a likelihood ratio against population.

    For a record ``x`` with label ``y``, ``Pr(x|θ) = p_θ(y|x)`` is the target's softmax
    probability of the true class (``sigmoid(score)``) and ``Pr(x)`` its average over
    reference models. The likelihood ratio of ``x`` against a population record ``z`` is
    ``LR(x, z) = (Pr(x|θ) / Pr(x)) / (Pr(z|θ) / Pr(z))``, and
    ``decision_function(x)`` is the fraction of the population records ``z`` with
    ``LR(x, z) >= gamma``.

    - online (``offline_a=None``): ``Pr(x)`` is the mean of ``p_k(y|x)`` over all ``K``
      reference models (for audited records, half of them IN).
    - offline (``offline_a=a``): from the OUT models only, with the paper's linear
      approximation of the IN ones, ``Pr(x) = ((1 + a) · mean_OUT p_k(y|x) + (1 - a)) / 2``.

    Population records get ``Pr(z)`` by the same rule from their own reference scores.

    Parameters
    ----------
    gamma : float, default=1.0
        The threshold on the pairwise likelihood ratio; ``> 0``.
    offline_a : float in [0, 1] or None, default=None
        None for the online attack; a number for the offline attack with that ``a``
        (the paper tunes it on a reference model; ``a = 1`` takes the OUT average as is).
    scoring : {"accuracy", "roc_auc"}, default="accuracy"
        What :meth:`score` returns: the attack accuracy ``0.5 * (TPR + TNR)`` of
        ``predict``, or the AUC of ``decision_function``.

    Attributes
    ----------
    population_log_ratio_ : ndarray of shape (n_population,)
        ``log(Pr(z|θ) / Pr(z))`` of the population records, sorted.
    threshold_ : float
        ``predict`` flags ``decision_function >= threshold_``: with labels at ``fit``, the
        threshold that maximises the attack accuracy on them; without, 0.5.
    supervised_ : bool
        Whether ``fit`` had membership labels.
    %(fitted_attributes)s

    See Also
    --------
    LiRAAttack, ReferenceAttack : the other attacks calibrated by reference models.

    Notes
    -----
    Threat model: a black-box adversary that sees the target's probabilities on
    labelled records, can train reference models like the target, and holds population
    records ``z`` of the same distribution that it does not audit (the split's
    ``reference`` part). Online, the audited records are in the reference pool (at least
    one IN and one OUT model each); offline, only OUT models are needed (at least one).

    ``fit(population_signals)`` (no labels) reads the population: the target's and the
    reference models' scores on records never audited, computed with the same bank as
    the audited signals (same ``K``; where both tables carry
    ``attrs["reference_fingerprint"]``, the same fingerprint). ``predict`` then flags
    records that dominate at least half the population (``threshold_ = 0.5``).
    ``fit(signals, membership)`` (as in ``cross_validate``) takes the non-members of the
    fit signals as the population and chooses the threshold by accuracy.

    Population records are ideally in the pool too (the paper's online attack uses them
    that way); where they are in no reference model, online ``Pr(z)`` is the mean over
    OUT models only, which is lower than an IN/OUT mean: the scores of every audited record
    shift down together, the ranking (AUC) hardly moves, but the default threshold
    becomes conservative. The offline approximation treats both alike.

    Probabilities come from the logit-scaled scores (``p = sigmoid(φ)``, exact) and
    everything is computed in log space; ``decision_function`` sorts the population
    once: ``O((n + m) log m)``.

    References
    ----------
    .. [1] S. Zarifzadeh, P. Liu, R. Shokri. "Low-Cost High-Power Membership Inference
       Attacks". ICML 2024. arXiv:2312.03262.

    Examples
    --------
    >>> import pandas as pd
    >>> from skmia.attacks import RMIAAttack
    >>> def table(score, ref, ref_in):
    ...     columns = {"score": score}
    ...     for k in range(2):
    ...         columns[f"ref_score_{k}"] = [r[k] for r in ref]
    ...         columns[f"ref_in_{k}"] = [r[k] for r in ref_in]
    ...     return pd.DataFrame(columns)
    >>> population = table([0.0, 1.0, -1.0, 2.0], [[0.0, 0.0]] * 4, [[False, False]] * 4)
    >>> audited = table([3.0, -2.0], [[0.0, 0.0]] * 2, [[True, False]] * 2)
    >>> attack = RMIAAttack().fit(population)
    >>> attack.decision_function(audited).tolist()   # fraction of z dominated
    [1.0, 0.0]
    >>> attack.predict(audited).tolist()
    [1, 0]
    """

    _parameter_constraints = {
        **_ReferenceModelAttack._parameter_constraints,
        "gamma": [Interval(Real, 0, None, closed="neither")],
        "offline_a": [Interval(Real, 0, 1, closed="both"), None],
    }

    def __init__(self, gamma=1.0, offline_a=None, *, scoring="accuracy"):
        self.gamma = gamma
        self.offline_a = offline_a
        self.scoring = scoring

    def _log_ratio(self, signals, *, audited):
        """``log(Pr(x|θ) / Pr(x))`` per record."""
        score, ref, inside = self._arrays(signals)
        log_p = log_expit(ref)
        if self.offline_a is None:
            if audited:
                self._check_counts(
                    inside, min_in=1, min_out=1,
                    why="online averages over IN and OUT models: the audited records must "
                    "be in the reference pool (or use offline_a)",
                )
            log_prior = logsumexp(log_p, axis=1) - np.log(ref.shape[1])
        else:
            self._check_counts(inside, min_in=0, min_out=1, why="offline averages OUT models")
            a = float(self.offline_a)
            n_out = (~inside).sum(axis=1)
            log_mean_out = logsumexp(np.where(inside, -np.inf, log_p), axis=1) - np.log(n_out)
            log_rest = np.log1p(-a) if a < 1 else -np.inf
            log_prior = np.log(0.5) + np.logaddexp(np.log1p(a) + log_mean_out, log_rest)
        return log_expit(score) - log_prior

    def _calibrate(self, signals, y):
        population = signals if y is None else signals.iloc[np.flatnonzero(y == 0)]
        self.population_log_ratio_ = np.sort(self._log_ratio(population, audited=False))

    def _decision(self, signals, *, fitting=False):
        # unsupervised, the fit rows are the population: in no reference model, online
        audited = self.supervised_ or not fitting
        log_ratio = self._log_ratio(signals, audited=audited)
        # LR(x, z) >= gamma  <=>  log r_z <= log r_x - log gamma
        dominated = np.searchsorted(
            self.population_log_ratio_, log_ratio - np.log(float(self.gamma)), side="right"
        )
        return dominated / len(self.population_log_ratio_)

    def _default_threshold(self):
        return 0.5
