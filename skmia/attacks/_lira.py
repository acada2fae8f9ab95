"""LiRA: per-record Gaussians of the reference models' scores (Carlini et al.).

numpy / scipy only: importing this module does not import torch.
"""

import numpy as np
from scipy.stats import norm

from .._sklearn_compat import StrOptions
from ._reference_attack import _SHARED_DOCS, _masked_mean_var, _ReferenceModelAttack
from ._signals import REF_SCORE_AUG, SCORE_AUG, count_output_columns, output_columns

__all__ = ["LiRAAttack"]

# A standard deviation of 0 (all reference scores equal) is replaced by this, so that the
# Gaussian log-densities stay finite, as the LiRA reference implementation does.
_MIN_STD = 1e-30

_OFFLINE_SCORES = ("cdf", "logpdf")


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
    use_augmentations : bool, default=True
        When the fit signals hold augmented queries (``score_aug_*`` and
        ``ref_score_aug_*``: ``compute_signals(..., augment=...)``), test each view
        against its own Gaussians and average the per-view statistics, as the authors'
        code does; ``False`` reads view 0 (``score``, ``ref_score_*``) only.
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
    the records' means differ, and uses that same IN standard deviation for the OUT
    Gaussian too; skmia pools IN and OUT separately, ``σ_in`` from the IN scores and
    ``σ_out`` from the OUT scores.) Means are means, as in the paper (the authors' code
    uses medians).

    With augmented queries (``score_aug_*``, ``ref_score_aug_*``), every view ``a`` of a
    record gets its own Gaussians from the reference models' scores of that view, and
    ``decision_function`` is the mean over the views of the per-view statistic (the
    authors' code averages the per-view log-likelihood ratios the same way); with
    ``fix_variance=True`` the pooled variances pool over records and views. The
    offline ``"logpdf"`` default rule then averages ``|s - μ_out| / σ_out`` over the
    views.

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
        "use_augmentations": ["boolean"],
    }

    def __init__(self, online=True, fix_variance=False, *, offline_score="cdf",
                 use_augmentations=True, scoring="accuracy"):
        self.online = online
        self.fix_variance = fix_variance
        self.offline_score = offline_score
        self.use_augmentations = use_augmentations
        self.scoring = scoring

    def _columns(self, n_classes):
        columns = super()._columns(n_classes)
        views, k = range(self.n_augmentations_), range(self.n_reference_models_)
        return [*columns, *(f"{SCORE_AUG}_{a}" for a in views),
                *(f"{REF_SCORE_AUG}_{a}_{m}" for a in views for m in k)]

    def _validate_signals(self, X, *, reset):
        if reset:
            found = count_output_columns(X.columns, SCORE_AUG) if hasattr(X, "columns") else 0
            self.n_augmentations_ = found if self.use_augmentations else 0
        return super()._validate_signals(X, reset=reset)

    def _view_arrays(self, signals):
        """Target scores (n, A), reference scores (n, A, K), in-masks (n, 1, K); A >= 1."""
        score, ref, inside = self._arrays(signals)
        n_views, k = self.n_augmentations_, self.n_reference_models_
        if n_views:
            score = signals[output_columns(SCORE_AUG, n_views)].to_numpy(dtype=np.float64)
            names = [f"{REF_SCORE_AUG}_{a}_{m}" for a in range(n_views) for m in range(k)]
            ref = signals[names].to_numpy(dtype=np.float64).reshape(len(score), n_views, k)
        else:
            score, ref = score[:, None], ref[:, None, :]
        return score, ref, inside[:, None, :]

    def _gaussians(self, signals):
        """(s, μ_in, σ_in, μ_out, σ_out) per record and view; the IN ones None offline."""
        score, ref, inside = self._view_arrays(signals)
        least = 1 if self.fix_variance else 2
        why = (
            "estimates a per-record Gaussian from each"
            + ("" if self.fix_variance else " (or use fix_variance=True)")
        )
        if self.online:
            self._check_counts(
                inside[:, 0], min_in=least, min_out=least,
                why=why + "; online, the audited records must be in the reference pool",
            )
            mean_in, var_in, _, _ = _masked_mean_var(ref, inside)
        else:
            self._check_counts(inside[:, 0], min_in=0, min_out=least, why=why)
        mean_out, var_out, _, _ = _masked_mean_var(ref, ~inside)
        if self.fix_variance:
            std_out = np.full(score.shape, self.std_out_)
            std_in = np.full(score.shape, self.std_in_) if self.online else None
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
        _, ref, inside = self._view_arrays(signals)
        least = "IN and OUT" if self.online else "OUT"
        self._check_counts(
            inside[:, 0], min_in=int(self.online), min_out=1,
            why=f"needs {least} reference models for every record",
        )
        parts = [("std_out_", ~inside)] + ([("std_in_", inside)] if self.online else [])
        for name, mask in parts:
            _, _, squares, count = _masked_mean_var(ref, mask)
            setattr(self, name, float(np.sqrt(squares.sum() / count.sum())))

    def _decision(self, signals, *, fitting=False):
        score, mean_in, std_in, mean_out, std_out = self._gaussians(signals)
        if self.online:
            per_view = (norm.logpdf(score, mean_in, std_in)
                        - norm.logpdf(score, mean_out, std_out))
        elif self.offline_score == "cdf":
            per_view = -norm.logsf(score, mean_out, std_out)
        else:
            per_view = -norm.logpdf(score, mean_out, std_out)
        return per_view.mean(axis=1)

    def _default_threshold(self):
        if self.online:
            return 0.0
        return np.log(2.0) if self.offline_score == "cdf" else np.nan

    def _default_predict(self, signals, decision):
        if self.online or self.offline_score == "cdf":
            return decision >= self.threshold_
        score, _, _, mean_out, std_out = self._gaussians(signals)
        return (np.abs(score - mean_out) / std_out).mean(axis=1) >= norm.ppf(0.75)
