"""Attacks calibrated by reference models: LiRA, RMIA and Attack-R.

Each reads, beside the target model's ``score`` (the logit-scaled confidence
φ = log p_y - log(1 - p_y)), the record's score under each of ``K`` reference models
(``ref_score_0 .. ref_score_{K-1}``) and whether the record was in that model's training
subset (``ref_in_0 .. ref_in_{K-1}``): the columns ``compute_signals(..., reference=bank)``
adds. numpy / scipy only: importing this module does not import torch.
"""

from abc import abstractmethod
from numbers import Real

import numpy as np
import pandas as pd
from scipy.special import log_expit, logsumexp
from scipy.stats import norm
from sklearn.utils.validation import check_is_fitted

from .._docstrings import Substitution
from .._sklearn_compat import Interval, StrOptions
from ._base import MembershipInferenceAttack
from ._signals import FINGERPRINT, REF_IN, REF_SCORE, SCORE, count_output_columns, output_columns
from ._threshold import _reference_thresholds

__all__ = ["LiRAAttack", "RMIAAttack", "ReferenceAttack"]

# A standard deviation of 0 (all reference scores equal) is replaced by this, so that the
# Gaussian log-densities stay finite, as the LiRA reference implementation does.
_MIN_STD = 1e-30


class _CalibratedAttack(MembershipInferenceAttack):
    """An attack that ``fit`` can calibrate with or without membership labels.

    With labels, ``fit`` chooses the threshold on ``decision_function`` that maximises
    the attack accuracy on the fit signals (the threshold attacks' rule, one global
    threshold). Without (``fit(signals)``), it keeps the default of the subclass
    (``_default_threshold``) and ``predict`` applies ``_default_predict``.

    Subclasses implement ``_calibrate(signals, y)`` (learn what the score needs; ``y``
    may be None), ``_decision(signals, *, fitting=False)`` and ``_default_threshold()``.
    """

    def fit(self, X, y=None):
        """Calibrate the attack, with membership labels or without.

        Parameters
        ----------
        X : pandas.DataFrame of shape (n_samples, n_signals)
            Signals, as :func:`~skmia.attacks.compute_signals` returns them: what the
            attack calibrates on (see the class's description).
        y : array-like of shape (n_samples,), default=None
            Membership: 1 = member, 0 = non-member, both present. When given,
            ``threshold_`` maximises the attack accuracy on them; when None,
            ``threshold_`` is the documented default of the attack.

        Returns
        -------
        self : object
            The fitted attack.
        """
        self._check_params()
        if y is not None:
            y = self._validate_membership(y)
        signals, array, n_classes = self._validate_signals(X, reset=True)
        if y is not None and array.shape[0] != len(y):
            raise ValueError(f"X has {array.shape[0]} rows but y has {len(y)} membership labels.")
        self.n_model_classes_ = n_classes
        self.classes_ = np.array([0, 1])
        self._fit(signals, array, y)
        return self

    def _fit(self, signals, array, y):
        self.supervised_ = y is not None
        self._calibrate(signals, y)
        decision = self._decision(signals, fitting=True)
        spread = float(np.std(decision))
        self.scale_ = spread if np.isfinite(spread) and spread > 0 else 1.0
        if y is None:
            self.threshold_ = float(self._default_threshold())
        else:
            self.threshold_ = float(_reference_thresholds(decision, y == 1)[0])
        # predict_proba is centred on the threshold, or on the median fit decision where
        # the default rule is per record (no single threshold)
        self._centre = self.threshold_ if np.isfinite(self.threshold_) else float(
            np.median(decision)
        )

    @abstractmethod
    def _calibrate(self, signals, y):
        """Learn what the score needs from the fit signals (``y`` may be None)."""

    @abstractmethod
    def _decision(self, signals, *, fitting=False):
        """The score of each record (float64), higher for members."""

    @abstractmethod
    def _default_threshold(self):
        """The threshold on the decision that ``predict`` uses after ``fit`` without labels."""

    def _default_predict(self, signals, decision):
        return decision >= self.threshold_

    def decision_function(self, X):
        """The attack score of each record, higher for members.

        Parameters
        ----------
        X : pandas.DataFrame of shape (n_samples, n_signals)
            Signals holding the columns this attack reads.

        Returns
        -------
        score : ndarray of float64 of shape (n_samples,)
        """
        check_is_fitted(self)
        signals, _, _ = self._validate_signals(X, reset=False)
        return self._decision(signals)

    def predict(self, X):
        """Membership: ``decision_function(X) >= threshold_`` (see the class for the default).

        Parameters
        ----------
        X : pandas.DataFrame of shape (n_samples, n_signals)
            Signals holding the columns this attack reads.

        Returns
        -------
        y_pred : ndarray of int64 of shape (n_samples,)
            1 = member, 0 = non-member.
        """
        check_is_fitted(self)
        signals, _, _ = self._validate_signals(X, reset=False)
        decision = self._decision(signals)
        if self.supervised_:
            return (decision >= self.threshold_).astype(np.int64)
        return np.asarray(self._default_predict(signals, decision)).astype(np.int64)

    def _proba_from_decision(self, decision):
        # a logistic squashing around the threshold; not a calibrated probability
        return super()._proba_from_decision((decision - self._centre) / self.scale_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags


def _count_reference_models(columns, owner):
    """K, from the ``ref_score_*`` and ``ref_in_*`` columns, checked to agree."""
    n_scores = count_output_columns(columns, REF_SCORE)
    n_flags = count_output_columns(columns, REF_IN)
    if n_scores == 0 and n_flags == 0:
        raise ValueError(
            f"X has no '{REF_SCORE}_*' or '{REF_IN}_*' columns, which {owner} reads (the "
            "record's score under each reference model and whether it was in that model's "
            "training subset); compute the signals with "
            "skmia.attacks.compute_signals(..., reference=bank)."
        )
    if n_scores != n_flags:
        prefix = REF_SCORE if n_scores < n_flags else REF_IN
        raise ValueError(
            f"X has {n_scores} '{REF_SCORE}_*' columns but {n_flags} '{REF_IN}_*' columns: "
            f"'{prefix}_{min(n_scores, n_flags)}' is missing."
        )
    return n_scores


def _flag_problem(col):
    """Why a ``ref_in_*`` column is not a column of flags; None when it is."""
    if pd.api.types.is_bool_dtype(col):
        return None if not col.isna().any() else "it holds missing values"
    if pd.api.types.is_numeric_dtype(col):
        values = col.to_numpy(dtype=np.float64, na_value=np.nan)
        if np.all((values == 0) | (values == 1)):
            return None
        return f"it holds {col.dtype} values other than 0 and 1"
    return f"its dtype is {col.dtype}"


class _ReferenceModelAttack(_CalibratedAttack):
    """Shared machinery of the attacks that read ``score``, ``ref_score_*`` and ``ref_in_*``."""

    def _columns(self, n_classes):
        k = self.n_reference_models_
        return [SCORE, *output_columns(REF_SCORE, k), *output_columns(REF_IN, k)]

    def _validate_signals(self, X, *, reset):
        if isinstance(X, pd.DataFrame):
            owner = type(self).__name__
            n_ref = _count_reference_models(X.columns, owner)
            fingerprint = X.attrs.get(FINGERPRINT)
            if reset:
                self.n_reference_models_ = n_ref
                self.reference_fingerprint_ = fingerprint
            else:
                if n_ref != self.n_reference_models_:
                    raise ValueError(
                        f"X holds the scores of {n_ref} reference models, but {owner} was "
                        f"fitted on signals of {self.n_reference_models_}: both must come from "
                        "the same bank of reference models."
                    )
                known = self.reference_fingerprint_
                if fingerprint is not None and known is not None and fingerprint != known:
                    raise ValueError(
                        f"X comes from the bank of reference models {fingerprint!r}, but "
                        f"{owner} was fitted on signals of the bank {known!r}: both must come "
                        "from the same bank."
                    )
            flags = output_columns(REF_IN, n_ref)
            for name in flags:
                problem = _flag_problem(X[name])
                if problem is not None:
                    raise TypeError(
                        f"The signal column {name!r} must hold booleans (whether the record "
                        f"was in the training subset of reference model {name.split('_')[-1]}"
                        f"), but {problem}."
                    )
            # the base class reads numbers: flags become 0 / 1
            X = X.astype(dict.fromkeys(flags, np.int8))
        return super()._validate_signals(X, reset=reset)

    def _arrays(self, signals):
        """(target scores (n,), reference scores (n, K), in-masks (n, K) of bool)."""
        k = self.n_reference_models_
        score = signals[SCORE].to_numpy(dtype=np.float64)
        ref = signals[output_columns(REF_SCORE, k)].to_numpy(dtype=np.float64)
        inside = signals[output_columns(REF_IN, k)].to_numpy(dtype=np.float64) == 1
        return score, ref, inside

    def _check_counts(self, inside, *, min_in, min_out, why):
        """Refuse records with fewer than ``min_in`` IN or ``min_out`` OUT reference models."""
        n_in = inside.sum(axis=1)
        n_out = inside.shape[1] - n_in
        for count, least, kind in ((n_in, min_in, "IN"), (n_out, min_out, "OUT")):
            short = count < least
            if least > 0 and short.any():
                raise ValueError(
                    f"{int(short.sum())} of {len(count)} records have fewer than {least} "
                    f"{kind} reference models (the fewest: {int(count.min())} of "
                    f"{inside.shape[1]}); {type(self).__name__} {why}."
                )


def _masked_mean_var(values, mask):
    """Per-row mean and (population, ddof=0) variance of ``values`` where ``mask``."""
    count = mask.sum(axis=1)
    mean = np.where(mask, values, 0.0).sum(axis=1) / np.maximum(count, 1)
    squares = np.where(mask, np.square(values - mean[:, None]), 0.0).sum(axis=1)
    return mean, squares / np.maximum(count, 1), squares, count


_OFFLINE_SCORES = ("cdf", "logpdf")


# the fitted attributes every reference-model attack documents alike, written once
_SHARED_DOCS = Substitution(fitted_attributes="""scale_ : float
        Standard deviation of the fit decisions, the scale of ``predict_proba``.
    n_reference_models_ : int
        Number ``K`` of reference models in the signals.
    reference_fingerprint_ : str or None
        ``X.attrs["reference_fingerprint"]`` of the fit signals (the bank), if any.
    n_model_classes_ : int or None
        Number of classes of the target model (from ``proba_*`` / ``logit_*``), if any.
    classes_ : ndarray of shape (2,)
        ``[0, 1]``: non-member, member.
    n_features_in_ : int
        Number of signal columns read: ``score``, ``ref_score_*``, ``ref_in_*``.
    feature_names_in_ : ndarray of str
        Their names.""")


@_SHARED_DOCS
class LiRAAttack(_ReferenceModelAttack):
    """The likelihood-ratio attack (LiRA): per-record Gaussians of reference-model scores.

    For each record, the scores ``φ_k`` of the reference models that trained on it
    (IN, ``ref_in_k`` True) and of those that did not (OUT) are fitted with Gaussians
    ``N(μ_in, σ_in²)`` and ``N(μ_out, σ_out²)`` (mean and variance, ``ddof=0``), and the
    target model's score ``s`` (column ``score``) is tested against them.

    - online: ``decision_function = log N(s; μ_in, σ_in) - log N(s; μ_out, σ_out)``,
      the log of the paper's likelihood ratio Λ.
    - offline, ``offline_score="cdf"`` (the paper's one-sided test):
      ``Λ = 1 - Pr[Z > s]`` with ``Z ~ N(μ_out, σ_out²)``; ``decision_function`` is
      ``-log Pr[Z > s] = -log(1 - Λ)``, a monotone function of Λ (same ROC) that does not
      saturate at 1 for the clearest members.
    - offline, ``offline_score="logpdf"`` (the form of the authors' code):
      ``decision_function = -log N(s; μ_out, σ_out)``, a two-sided test.

    Parameters
    ----------
    online : bool, default=True
        Use IN and OUT models (the audited records must be in the reference pool, in at
        least 2 IN and 2 OUT models each, 1 with ``fix_variance=True``); ``False`` for OUT
        models only (at least 2 per record, 1 with ``fix_variance=True``).
    fix_variance : bool, default=False
        Replace the per-record variances by one global variance for IN and one for OUT,
        learned at ``fit`` (see Notes): better with few reference models.
    offline_score : {"cdf", "logpdf"}, default="cdf"
        The offline statistic (ignored when ``online=True``).
    scoring : {"accuracy", "roc_auc"}, default="accuracy"
        What :meth:`score` returns: the attack accuracy ``0.5 * (TPR + TNR)`` of
        ``predict``, or the AUC of ``decision_function``.

    Attributes
    ----------
    threshold_ : float
        ``predict`` flags ``decision_function >= threshold_``: with labels at ``fit``, the
        threshold that maximises the attack accuracy on them; without, the default of
        Notes.
    supervised_ : bool
        Whether ``fit`` had membership labels.
    std_in_, std_out_ : float or None
        The global standard deviations (``fix_variance=True``; ``std_in_`` online only),
        else None.
    %(fitted_attributes)s

    See Also
    --------
    RMIAAttack, ReferenceAttack : the other attacks calibrated by reference models.
    skmia.model_selection.ReferenceModels : the bank whose scores it reads.

    Notes
    -----
    Threat model: a black-box adversary that sees the target's logits (or probabilities)
    on labelled records and can train reference models like the target on data of the
    same distribution. Online, it trains them on random halves of a pool that holds the
    audited records (half of the models IN for each); offline, the audited records need
    only be outside the OUT models — e.g. population data.

    ``fit`` learns nothing about the records: each record is scored against its own
    reference scores at ``decision_function`` time. It learns the threshold and, with
    ``fix_variance=True``, the global variances: the pooled within-record variance
    ``σ² = Σ_i Σ_{k∈IN_i} (φ_ik - μ_in,i)² / Σ_i |IN_i|`` over the fit records (likewise
    OUT) — the maximum-likelihood estimate of one variance shared by every record's
    Gaussian, which is what the paper fixes. (The authors' code takes the standard
    deviation of all IN scores about their global mean instead, which also counts how
    the records' means differ.) Means are means, as in the paper (the authors' code
    uses medians).

    Without labels at ``fit``, ``predict`` flags a record when online the likelihood ratio
    is at least 1 (``threshold_ = 0``); offline ``"cdf"`` when ``Λ >= 1/2``, i.e.
    ``s >= μ_out`` (``threshold_ = log 2``); offline ``"logpdf"`` when the two-sided
    p-value of ``s`` under the OUT Gaussian is at most 1/2, i.e.
    ``|s - μ_out| >= 0.6745 σ_out`` (a per-record rule: ``threshold_`` is NaN and
    ``predict_proba`` is centred on the median fit decision). For a
    chosen false-positive rate, fit with labels or threshold ``decision_function``.

    References
    ----------
    .. [1] N. Carlini, S. Chien, M. Nasr, S. Song, A. Terzis, F. Tramer. "Membership
       Inference Attacks From First Principles". IEEE S&P 2022. arXiv:2112.03570.

    Examples
    --------
    >>> import pandas as pd
    >>> from skmia.attacks import LiRAAttack
    >>> signals = pd.DataFrame({
    ...     "score": [3.0, 0.5],
    ...     "ref_score_0": [3.2, 1.2], "ref_score_1": [2.8, 0.8],   # IN models
    ...     "ref_score_2": [0.4, 0.6], "ref_score_3": [0.6, 0.4],   # OUT models
    ...     "ref_in_0": [True, True], "ref_in_1": [True, True],
    ...     "ref_in_2": [False, False], "ref_in_3": [False, False]})
    >>> attack = LiRAAttack().fit(signals)           # no labels: LR >= 1 is a member
    >>> attack.predict(signals).tolist()
    [1, 0]
    >>> bool(attack.decision_function(signals)[0] > 0)
    True
    """

    _parameter_constraints = {
        **_ReferenceModelAttack._parameter_constraints,
        "online": ["boolean"],
        "fix_variance": ["boolean"],
        "offline_score": [StrOptions(set(_OFFLINE_SCORES))],
    }

    def __init__(self, online=True, fix_variance=False, *, offline_score="cdf",
                 scoring="accuracy"):
        self.online = online
        self.fix_variance = fix_variance
        self.offline_score = offline_score
        self.scoring = scoring

    def _gaussians(self, signals):
        """(s, μ_in, σ_in, μ_out, σ_out) per record; the IN ones None offline."""
        score, ref, inside = self._arrays(signals)
        least = 1 if self.fix_variance else 2
        why = (
            "estimates a per-record Gaussian from each"
            + ("" if self.fix_variance else " (or use fix_variance=True)")
        )
        if self.online:
            self._check_counts(
                inside, min_in=least, min_out=least,
                why=why + "; online, the audited records must be in the reference pool",
            )
            mean_in, var_in, _, _ = _masked_mean_var(ref, inside)
        else:
            self._check_counts(inside, min_in=0, min_out=least, why=why)
        mean_out, var_out, _, _ = _masked_mean_var(ref, ~inside)
        if self.fix_variance:
            std_out = np.full(len(score), self.std_out_)
            std_in = np.full(len(score), self.std_in_) if self.online else None
        else:
            std_out = np.sqrt(var_out)
            std_in = np.sqrt(var_in) if self.online else None
        std_out = np.maximum(std_out, _MIN_STD)
        if self.online:
            return score, mean_in, np.maximum(std_in, _MIN_STD), mean_out, std_out
        return score, None, None, mean_out, std_out

    def _calibrate(self, signals, y):
        self.std_in_ = self.std_out_ = None
        if not self.fix_variance:
            return
        _, ref, inside = self._arrays(signals)
        least = "IN and OUT" if self.online else "OUT"
        self._check_counts(
            inside, min_in=int(self.online), min_out=1,
            why=f"needs {least} reference models for every record",
        )
        parts = [("std_out_", ~inside)] + ([("std_in_", inside)] if self.online else [])
        for name, mask in parts:
            _, _, squares, count = _masked_mean_var(ref, mask)
            setattr(self, name, float(np.sqrt(squares.sum() / count.sum())))

    def _decision(self, signals, *, fitting=False):
        score, mean_in, std_in, mean_out, std_out = self._gaussians(signals)
        if self.online:
            return norm.logpdf(score, mean_in, std_in) - norm.logpdf(score, mean_out, std_out)
        if self.offline_score == "cdf":
            return -norm.logsf(score, mean_out, std_out)
        return -norm.logpdf(score, mean_out, std_out)

    def _default_threshold(self):
        if self.online:
            return 0.0
        return np.log(2.0) if self.offline_score == "cdf" else np.nan

    def _default_predict(self, signals, decision):
        if self.online or self.offline_score == "cdf":
            return decision >= self.threshold_
        score, _, _, mean_out, std_out = self._gaussians(signals)
        return np.abs(score - mean_out) >= norm.ppf(0.75) * std_out


#: The false-positive rate an attack calibrated without labels aims at, in (0, 1).
FPR_CONSTRAINT = [Interval(Real, 0, 1, closed="neither")]


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


@_SHARED_DOCS
class ReferenceAttack(_ReferenceModelAttack):
    """Attack-R: the record's target loss against the losses of its OUT reference models.

    The loss of a record under a model is its cross-entropy ``-log p_y``; from the
    logit-scaled score, ``-log sigmoid(φ)``. ``decision_function(x)`` is the fraction of
    the record's OUT reference models (``ref_in_k`` False) whose loss is at least the
    target's — 1 when the target fits the record better than every reference model did
    without it. Ye et al. flag a record when its target loss is below the ``α``-quantile
    of its reference losses; with ``α = fpr`` that is ``decision_function >= 1 - fpr``.

    Parameters
    ----------
    fpr : float in (0, 1), default=0.05
        The false-positive rate ``α`` that ``predict`` aims at after ``fit`` without
        labels: ``threshold_ = 1 - fpr``.
    scoring : {"accuracy", "roc_auc"}, default="accuracy"
        What :meth:`score` returns: the attack accuracy ``0.5 * (TPR + TNR)`` of
        ``predict``, or the AUC of ``decision_function``.

    Attributes
    ----------
    threshold_ : float
        ``predict`` flags ``decision_function >= threshold_``: with labels at ``fit``, the
        threshold that maximises the attack accuracy on them; without, ``1 - fpr``.
    supervised_ : bool
        Whether ``fit`` had membership labels.
    %(fitted_attributes)s

    See Also
    --------
    LiRAAttack : the parametric version of the same calibration.
    PopulationAttack : Attack-P, one threshold for every record.

    Notes
    -----
    Threat model: a black-box adversary that sees the target's loss on labelled records
    and trains reference models on population data without the audited records (OUT);
    IN models, if any, are ignored. Every record needs at least one OUT model.

    Losses are compared through the scores (``-log sigmoid`` is decreasing, so a reference
    loss is at least the target's exactly when the reference score is at most the
    target's), which is exact even where float losses round to 0. With ``n`` OUT models
    the score takes ``n + 1`` values, so the smallest false-positive rate the default rule
    can reach is about ``1 / (n + 1)`` (a record whose target loss is exchangeable with its
    reference losses has all ``n`` of them above it with that probability); ``fpr`` below
    it flags exactly the records that beat all their reference models.

    References
    ----------
    .. [1] J. Ye, A. Maddi, S. K. Murakonda, V. Bindschaedler, R. Shokri. "Enhanced
       Membership Inference Attacks against Machine Learning Models". ACM CCS 2022.
       arXiv:2111.09679.

    Examples
    --------
    >>> import pandas as pd
    >>> from skmia.attacks import ReferenceAttack
    >>> signals = pd.DataFrame({
    ...     "score": [4.0, 0.0],
    ...     "ref_score_0": [1.0, 1.0], "ref_score_1": [2.0, -1.0],
    ...     "ref_score_2": [3.0, 2.0], "ref_score_3": [9.0, 0.5],
    ...     "ref_in_0": [False, False], "ref_in_1": [False, False],
    ...     "ref_in_2": [False, False], "ref_in_3": [True, False]})  # model 3 IN: skipped
    >>> attack = ReferenceAttack(fpr=0.05).fit(signals)
    >>> attack.decision_function(signals).tolist()
    [1.0, 0.25]
    >>> attack.predict(signals).tolist()
    [1, 0]
    """

    _parameter_constraints = {
        **_ReferenceModelAttack._parameter_constraints,
        "fpr": FPR_CONSTRAINT,
    }

    def __init__(self, fpr=0.05, *, scoring="accuracy"):
        self.fpr = fpr
        self.scoring = scoring

    def _calibrate(self, signals, y):
        pass

    def _decision(self, signals, *, fitting=False):
        score, ref, inside = self._arrays(signals)
        self._check_counts(inside, min_in=0, min_out=1, why="compares with OUT models")
        outside = ~inside
        beaten = (outside & (ref <= score[:, None])).sum(axis=1)
        return beaten / outside.sum(axis=1)

    def _default_threshold(self):
        return 1.0 - float(self.fpr)
