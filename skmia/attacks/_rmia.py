"""RMIA: the target's likelihood ratio against population records (Zarifzadeh et al.).

numpy / scipy only: importing this module does not import torch.
"""

from numbers import Integral, Real

import numpy as np
import pandas as pd
from scipy.special import log_expit, logsumexp

from .._sklearn_compat import Interval, StrOptions
from ._reference_attack import _SHARED_DOCS, _ReferenceModelAttack
from ._signals import LABEL, REF_LOGIT, REF_SCORE, SCORE, output_columns

#: How RMIA computes a model's probability of the true class from its logits.
_SIGNALS = ("softmax", "taylor_soft_margin")

__all__ = ["CLI_RMIA", "RMIAAttack"]

#: RMIA's defaults, and the CLI's ``rmia``: the softmax at the authors' temperature 2 and
#: gamma = 2, the strongest online variant on benchmarks/reference_attacks.py on average
#: (mean TPR at 1 % FPR over its 10 rows at K = 16: 0.465, against 0.407 for the plain
#: softmax and 0.441 for the Taylor signal); the plain softmax (``gamma=1,
#: temperature=1``) stays stronger against RelaxLoss and label smoothing (the CLI's
#: ``rmia_softmax``) and offline (``rmia_offline``).
CLI_RMIA = {"gamma": 2.0, "temperature": 2.0}


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

    With ``signal="taylor_soft_margin"``, ``p_θ(y|x)`` is the authors' tuned signal: the
    softmax with ``exp`` replaced by its Taylor series of ``taylor_terms`` terms,
    ``T(u) = sum_{i < n} u^i / i!``, on logits divided by ``temperature``, the true class's
    logit lowered by a soft margin ``m``:
    ``p = T(z_y / t - m) / (T(z_y / t - m) + sum_{j != y} T(z_j / t))``; ``Pr(x)`` is then a
    trimmed mean of the reference models' ``p`` (``trim`` of them cut at each end).

    Parameters
    ----------
    gamma : float, default=2.0
        The threshold on the pairwise likelihood ratio; ``> 0``. The defaults (``gamma=2``,
        ``temperature=2``) are the CLI's ``rmia`` (:data:`CLI_RMIA`), the strongest
        online variant skmia measured; ``gamma=1, temperature=1`` is the plain softmax
        rule, which reads scores only and is stronger offline and against defenses
        that soften outputs.
    offline_a : float in [0, 1] or None, default=None
        None for the online attack; a number for the offline attack with that ``a``
        (the paper tunes it on a reference model; ``a = 1`` takes the OUT average as is).
    signal : {"softmax", "taylor_soft_margin"}, default="softmax"
        How ``p_θ(y|x)`` is computed from a model's logits (see above). ``"softmax"`` at
        ``temperature=1`` reads only the scores; anything else also reads the logits of
        the target (``logit_*``) and of every reference model (``ref_logit_{k}_{c}``:
        ``compute_signals(..., reference=bank, reference_logits=True)``).
    temperature : float, default=2.0
        Logits are divided by it (the authors' CIFAR configurations use 2). Other than
        1, the attack reads logits: compute the signals with
        ``compute_signals(..., reference=bank, reference_logits=True)``.
    margin : float, default=0.6
        The soft margin ``m`` of ``"taylor_soft_margin"`` (ignored by ``"softmax"``).
    taylor_terms : int, default=4
        Terms of the Taylor series (powers ``0 .. taylor_terms - 1``), as the authors'
        code's ``taylor_n``; ignored by ``"softmax"``.
    trim : float in [0, 0.5), default=0.0
        Share of the reference probabilities cut at each end before averaging them into
        ``Pr(x)`` (``scipy.stats.trim_mean``'s ``proportiontocut``: ``floor(trim * n)``
        of the ``n`` averaged cut from each end).
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
    Threat model: a black-box adversary that sees the target's probabilities (logits for
    the tuned signal) on labelled records, can train reference models like the target,
    and holds population records ``z`` of the same distribution that it does not audit
    (the split's ``reference`` part). Online, the audited records are in the reference
    pool (at least one IN and one OUT model each); offline, only OUT models are needed
    (at least one).

    The population is what ``fit`` reads. ``fit(population_signals)`` (no labels, the
    audit's mode): the target's and the reference models' scores on records never
    audited, computed with the same bank as the audited signals (same ``K``; where both
    tables carry ``attrs["reference_fingerprint"]``, the same fingerprint); ``predict``
    then flags records that dominate at least half the population
    (``threshold_ = 0.5``). ``fit(signals, membership)`` (as in ``cross_validate``): the
    non-members of the fit signals are the population, and the threshold is chosen by
    accuracy. Online and offline read the same population; they differ in how ``Pr``
    averages the reference models.

    A record is never compared with itself: where an audited record is also a
    population record (the same row of scores, as when ``fit(signals, membership)`` is
    followed by ``decision_function(signals)``), that comparison is left out and the
    record's score is the fraction of the *other* ``m - 1`` population records it
    dominates. (Counting it would add ``1 / m`` to every non-member at ``gamma <= 1``,
    where ``LR(x, x) = 1`` passes.) Rows are matched by a 64-bit hash of their
    ``score`` and ``ref_score_*`` values.

    ``decision_function`` counts ``LR(x, z) >= gamma`` where the authors' code counts
    ``LR(x, z) > gamma``; the two differ only on exact ties.

    Population records are ideally in the pool too (the paper's online attack uses them
    that way); where they are in no reference model, online ``Pr(z)`` is the mean over
    OUT models only, which is lower than an IN/OUT mean: the scores of every audited record
    shift down together, the ranking (AUC) hardly moves, but the default threshold
    becomes conservative. The offline approximation treats both alike.

    With the softmax at ``temperature=1``, probabilities come from the logit-scaled
    scores (``p = sigmoid(φ)``, exact) and everything is computed in log space. The
    truncated Taylor series can be 0 or negative for very negative logits (with 4 terms,
    below ``-1.6 t``): such probabilities are floored at the smallest positive float.
    ``decision_function`` sorts the population once: ``O((n + m) log m)``.

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
    >>> attack = RMIAAttack(gamma=1.0, temperature=1.0)   # plain softmax: scores only
    >>> attack = attack.fit(population)
    >>> attack.decision_function(audited).tolist()   # fraction of z dominated
    [1.0, 0.0]
    >>> attack.predict(audited).tolist()
    [1, 0]
    """

    _parameter_constraints = {
        **_ReferenceModelAttack._parameter_constraints,
        "gamma": [Interval(Real, 0, None, closed="neither")],
        "offline_a": [Interval(Real, 0, 1, closed="both"), None],
        "signal": [StrOptions(set(_SIGNALS))],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "margin": [Interval(Real, None, None, closed="neither")],
        "taylor_terms": [Interval(Integral, 1, None, closed="left")],
        "trim": [Interval(Real, 0, 0.5, closed="left")],
    }

    def __init__(self, gamma=CLI_RMIA["gamma"], offline_a=None, *, signal="softmax",
                 temperature=CLI_RMIA["temperature"], margin=0.6, taylor_terms=4, trim=0.0,
                 scoring="accuracy"):
        self.gamma = gamma
        self.offline_a = offline_a
        self.signal = signal
        self.temperature = temperature
        self.margin = margin
        self.taylor_terms = taylor_terms
        self.trim = trim
        self.scoring = scoring

    def _reads_logits(self):
        return self.signal != "softmax" or float(self.temperature) != 1.0

    def _columns(self, n_classes):
        columns = super()._columns(n_classes)
        if not self._reads_logits():
            return columns
        c = n_classes or 1
        return [*columns, LABEL, *output_columns("logit", c),
                *(f"{REF_LOGIT}_{k}_{j}" for k in range(self.n_reference_models_)
                  for j in range(c))]

    def _validate_signals(self, X, *, reset):
        if self._reads_logits() and hasattr(X, "columns") and f"{REF_LOGIT}_0_0" not in X:
            raise ValueError(
                f"RMIAAttack(signal={self.signal!r}, temperature={self.temperature}) reads "
                f"the reference models' logits ('{REF_LOGIT}_{{k}}_{{c}}'), which X lacks: "
                "compute the signals with skmia.attacks.compute_signals(..., "
                "reference=bank, reference_logits=True)."
            )
        return super()._validate_signals(X, reset=reset)

    def _log_probabilities(self, signals):
        """``log p_θ(y|x)`` of the target (n,) and of each reference model (n, K)."""
        score, ref, _ = self._arrays(signals)
        if not self._reads_logits():
            return log_expit(score), log_expit(ref)
        c, k = self.n_model_classes_, self.n_reference_models_
        labels = signals[LABEL].to_numpy().astype(np.int64)
        logits = signals[output_columns("logit", c)].to_numpy(dtype=np.float64)
        ref_logits = signals[[f"{REF_LOGIT}_{m}_{j}" for m in range(k) for j in range(c)]]
        ref_logits = ref_logits.to_numpy(dtype=np.float64).reshape(len(labels), k, c)
        log_p = self._log_signal(logits, labels)
        log_ref = self._log_signal(ref_logits, np.repeat(labels[:, None], k, axis=1))
        return log_p, log_ref

    def _log_signal(self, logits, labels):
        """``log p(y)`` from logits ``(..., C)`` and labels ``(...)``, by ``self.signal``."""
        x = logits / float(self.temperature)
        true = np.take_along_axis(x, labels[..., None], axis=-1)[..., 0]
        if self.signal == "softmax":
            return true - logsumexp(x, axis=-1)
        proba = taylor_soft_margin(x, labels, margin=float(self.margin),
                                   n_terms=int(self.taylor_terms))
        return np.log(np.maximum(proba, np.finfo(np.float64).tiny))

    def _log_ratio(self, signals, *, audited):
        """``log(Pr(x|θ) / Pr(x))`` per record."""
        _, _, inside = self._arrays(signals)
        log_p, log_ref = self._log_probabilities(signals)
        trim = float(self.trim)
        if self.offline_a is None:
            if audited:
                self._check_counts(
                    inside, min_in=1, min_out=1,
                    why="online averages over IN and OUT models: the audited records must "
                    "be in the reference pool (or use offline_a)",
                )
            log_prior = _log_trimmed_mean(log_ref, np.ones_like(inside), trim)
        else:
            self._check_counts(inside, min_in=0, min_out=1, why="offline averages OUT models")
            a = float(self.offline_a)
            log_mean_out = _log_trimmed_mean(log_ref, ~inside, trim)
            log_rest = np.log1p(-a) if a < 1 else -np.inf
            log_prior = np.log(0.5) + np.logaddexp(np.log1p(a) + log_mean_out, log_rest)
        return log_p - log_prior

    def _row_keys(self, signals):
        """A 64-bit hash of each row's ``score`` and ``ref_score_*``: a record's identity."""
        columns = [SCORE, *output_columns(REF_SCORE, self.n_reference_models_)]
        return pd.util.hash_pandas_object(signals[columns], index=False).to_numpy()

    def _calibrate(self, signals, y):
        population = signals if y is None else signals.iloc[np.flatnonzero(y == 0)]
        log_ratio = self._log_ratio(population, audited=False)
        self.population_log_ratio_ = np.sort(log_ratio)
        keys = self._row_keys(population)
        order = np.argsort(keys, kind="stable")
        self._population_keys, self._population_key_ratio = keys[order], log_ratio[order]

    def _decision(self, signals, *, fitting=False):
        # unsupervised, the fit rows are the population: in no reference model, online
        audited = self.supervised_ or not fitting
        log_ratio = self._log_ratio(signals, audited=audited)
        bound = log_ratio - np.log(float(self.gamma))
        # LR(x, z) >= gamma  <=>  log r_z <= log r_x - log gamma
        dominated = np.searchsorted(self.population_log_ratio_, bound, side="right")
        # a record that is also in the population is not compared with itself
        keys, known = self._row_keys(signals), self._population_keys
        at = np.minimum(np.searchsorted(known, keys), len(known) - 1)
        itself = known[at] == keys
        dominated = dominated - (itself & (self._population_key_ratio[at] <= bound))
        others = len(self.population_log_ratio_) - itself
        return dominated / np.maximum(others, 1)

    def _default_threshold(self):
        return 0.5


def _taylor(u, n_terms):
    """``sum_{i < n_terms} u^i / i!``, elementwise."""
    total, term = np.ones_like(u), np.ones_like(u)
    for i in range(1, n_terms):
        term = term * u / i
        total = total + term
    return total


def taylor_soft_margin(x, labels, *, margin, n_terms):
    """RMIA's soft-margin Taylor softmax of the true class, from logits already scaled.

    ``T(x_y - margin) / (T(x_y - margin) + sum_{j != y} T(x_j))`` with ``T`` the Taylor
    series of ``exp`` of ``n_terms`` terms; ``x`` of shape ``(..., C)``, ``labels`` of
    shape ``(...)``.
    """
    expanded = _taylor(x, n_terms)
    true = np.take_along_axis(x, labels[..., None], axis=-1)[..., 0]
    is_true = np.arange(x.shape[-1]) == labels[..., None]
    soft_true = _taylor(true - margin, n_terms)
    return soft_true / (soft_true + np.where(is_true, 0.0, expanded).sum(axis=-1))


def _log_trimmed_mean(log_values, mask, trim):
    """Per row, log of the trimmed mean of ``exp(log_values)`` where ``mask``.

    ``floor(trim * n)`` of the row's ``n`` masked values are cut at each end (the order of
    the values is that of their logs), as ``scipy.stats.trim_mean`` does.
    """
    count = mask.sum(axis=1)
    ordered = np.sort(np.where(mask, log_values, np.inf), axis=1)  # left out: last
    cut = np.floor(trim * count).astype(np.int64)
    position = np.arange(log_values.shape[1])
    kept = (position >= cut[:, None]) & (position < (count - cut)[:, None])
    kept_logs = np.where(kept, ordered, -np.inf)
    return logsumexp(kept_logs, axis=1) - np.log(np.maximum(count - 2 * cut, 1))
