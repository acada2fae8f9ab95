"""Attacks calibrated by reference models: their shared machinery, and Attack-R.

LiRA (``_lira``), RMIA (``_rmia``) and Attack-R (here) each read, beside the target
model's ``score`` (the logit-scaled confidence φ = log p_y - log(1 - p_y)), the record's
score under each of ``K`` reference models (``ref_score_0 .. ref_score_{K-1}``) and
whether the record was in that model's training subset (``ref_in_0 .. ref_in_{K-1}``):
the columns ``compute_signals(..., reference=bank)`` adds. numpy / scipy only: importing
this module does not import torch.
"""


import numpy as np
import pandas as pd
from scipy.special import log_expit

from .._docstrings import Substitution
from ._base import FPR_CONSTRAINT, _CalibratedAttack
from ._signals import FINGERPRINT, REF_IN, REF_SCORE, SCORE, count_output_columns, output_columns

__all__ = ["ReferenceAttack"]


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
    """Mean and (population, ddof=0) variance of ``values`` along the last axis where ``mask``.

    Returns the mean, the variance, the sum of squares and the count, each of the shape
    of ``values`` without its last axis (``mask`` broadcasts against ``values``).
    """
    mask = np.broadcast_to(mask, values.shape)
    count = mask.sum(axis=-1)
    mean = np.where(mask, values, 0.0).sum(axis=-1) / np.maximum(count, 1)
    squares = np.where(mask, np.square(values - mean[..., None]), 0.0).sum(axis=-1)
    return mean, squares / np.maximum(count, 1), squares, count


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


#: The end points the authors' code appends to each record's OUT losses before it
#: interpolates (the smallest loss, and a bound above any loss of a trained model).
_LOSS_END_POINTS = (0.0, 1000.0)


def _interpolated_level(loss, ref_loss, outside):
    """Per record, the smallest ``α`` whose linear-interpolation quantile reaches ``loss``.

    Each row's OUT losses, with the end points of :data:`_LOSS_END_POINTS`, sorted, are
    ``v_0 <= ... <= v_{N-1}``; numpy's linear quantile is
    ``Q(α) = v_j + (h - j) (v_{j+1} - v_j)`` at ``h = α (N - 1)``, ``j = floor(h)``. The
    record is flagged at level ``α`` iff ``loss <= Q(α)``: the smallest such ``α`` is
    ``(j + (loss - v_j) / (v_{j+1} - v_j)) / (N - 1)`` where ``v_j < loss <= v_{j+1}``.
    """
    n = len(loss)
    low, high = _LOSS_END_POINTS
    values = np.concatenate(
        [np.where(outside, ref_loss, np.inf), np.full((n, 1), low), np.full((n, 1), high)],
        axis=1,
    )
    values.sort(axis=1)
    size = outside.sum(axis=1) + 2
    below = (values < loss[:, None]).sum(axis=1)  # inf (IN models) is never below
    rows = np.arange(n)
    j = np.clip(below - 1, 0, values.shape[1] - 2)
    lo, hi = values[rows, j], values[rows, j + 1]
    with np.errstate(invalid="ignore", divide="ignore"):
        level = (j + (loss - lo) / (hi - lo)) / (size - 1)
    level = np.where(below == 0, 0.0, level)
    return np.where(below >= size, 1.0, level)


@_SHARED_DOCS
class ReferenceAttack(_ReferenceModelAttack):
    """Attack-R: the record's target loss against the losses of its OUT reference models.

    The loss of a record under a model is its cross-entropy ``-log p_y``; from the
    logit-scaled score, ``-log sigmoid(φ)``. Ye et al. flag a record at level ``α`` when
    its target loss is at most the ``α``-quantile of its OUT reference losses
    (``ref_in_k`` False), the quantile taken, as in the authors' code, by linear
    interpolation between the sorted OUT losses with the end points 0 and 1000
    appended (``numpy.quantile(..., method="linear")``). ``decision_function(x)`` is
    ``1 - α*``, with ``α*`` the smallest level at which the record is flagged: a
    continuous score (the interpolated percentile of the target loss among the OUT
    losses), 1 for a loss of 0, near 1 when the target fits the record better than
    every reference model did without it. The paper's rule at ``α = fpr`` is
    ``decision_function >= 1 - fpr``.

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

    The interpolation is what gives the score its resolution: with ``n`` OUT models a
    score that only counted the OUT losses above the target's would take ``n + 1``
    values, its top value shared by many non-members, and no threshold would reach a
    false-positive rate below that share (0 TPR at 1 %% FPR with 8 models, where the
    interpolated score finds most members). The rule flags ``loss <= Q(fpr)`` (the
    authors' code flags ``loss < Q(fpr)``, which differs only on exact ties).

    References
    ----------
    .. [1] J. Ye, A. Maddi, S. K. Murakonda, V. Bindschaedler, R. Shokri. "Enhanced
       Membership Inference Attacks against Machine Learning Models". ACM CCS 2022.
       arXiv:2111.09679.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skmia.attacks import ReferenceAttack
    >>> phi = lambda p: np.log(p) - np.log1p(-p)   # the score: log-odds of p_y
    >>> signals = pd.DataFrame({
    ...     "score": phi(np.array([0.99, 0.5])),
    ...     "ref_score_0": phi(np.array([0.6, 0.6])), "ref_score_1": phi(np.array([0.4, 0.4])),
    ...     "ref_score_2": phi(np.array([0.3, 0.3])), "ref_score_3": phi(np.array([0.9, 0.9])),
    ...     "ref_in_0": [False] * 2, "ref_in_1": [False] * 2,
    ...     "ref_in_2": [False] * 2, "ref_in_3": [True, False]})   # model 3 IN: skipped
    >>> attack = ReferenceAttack(fpr=0.05).fit(signals)
    >>> attack.decision_function(signals).round(3).tolist()
    [0.995, 0.51]
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
        return 1.0 - _interpolated_level(-log_expit(score), -log_expit(ref), ~inside)

    def _default_threshold(self):
        return 1.0 - float(self.fpr)
