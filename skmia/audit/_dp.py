"""audit_dp: does one training give the ε it claims? A one-run audit with canaries.

Steinke, Nasr & Jagielski (NeurIPS 2023, arXiv:2305.08846): put ``m`` canaries into one
training, each included by an independent fair coin; score each canary from what the
training releases; guess IN for the highest scores and OUT for the lowest. If the
training is (ε, δ)-DP with respect to each canary, those guesses cannot be right much
more often than ``e^ε / (1 + e^ε)`` -- a binomial tail with a δ term, which the bound
inverts. Mahloujifar et al. (ICML 2025, arXiv:2410.22235) get a tighter bound from the
same guesses through f-DP. Both come from :func:`skmia.metrics.epsilon_lower_bound`.
"""

import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.utils import check_random_state

from .._sklearn_compat import Interval, StrOptions, validate_params
from .._validation import check_records
from ..defenses import DPSGDClassifier

# white-box canaries live inside DP-SGD's step; the audit reads what they recorded
from ..defenses._dp_canaries import GRADIENT_CANARY_SCORES, GradientCanaries, inserted_canaries
from ..metrics import epsilon_lower_bound, max_epsilon_lower_bound
from ._canaries import CANARY_KINDS, make_canaries
from ._defense import _phi
from ._dp_result import DPAudit

__all__ = ["ONE_RUN_METHODS", "UnreachableClaimWarning", "audit_dp"]

#: The bounds of a one-run audit (:func:`skmia.metrics.epsilon_lower_bound` methods whose
#: theorem covers the canaries of a single training).
ONE_RUN_METHODS = ("one_run", "one_run_fdp")
#: Input-canary kinds that a one-run audit accepts: one record per canary (copies made
#: IN or OUT together would be a group, which the claim does not cover).
_INPUT_KINDS = tuple(k for k in CANARY_KINDS if k != "duplicate_mislabel")


@validate_params(
    {
        "estimator": "no_validation",
        "X": ["array-like"],
        "y": ["array-like"],
        "canaries": [Interval(Integral, 1, None, closed="left")],
        "canary_kind": [StrOptions(set(_INPUT_KINDS))],
        "white_box": ["boolean"],
        "claimed_epsilon": [Interval(Real, 0, None, closed="neither"), None],
        "delta": [Interval(Real, 0, 1, closed="neither")],
        "confidence": [Interval(Real, 0.5, 1, closed="neither")],
        "threshold": [StrOptions({"bonferroni", "split"}), Interval(Real, None, None,
                                                                    closed="neither")],
        "white_box_score": [StrOptions(set(GRADIENT_CANARY_SCORES))],
        "methods": ["array-like", None],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def audit_dp(estimator, X, y, *, canaries=1000, canary_kind="mislabel", white_box=False,
             claimed_epsilon=None, delta=1e-5, confidence=0.95, threshold="bonferroni",
             white_box_score="step", methods=None, random_state=None):
    """Audit a DP claim in one training: a lower bound on ε from canaries, against the claim.

    Trains ``estimator`` once. Each of ``canaries`` canaries is included by an
    independent fair coin; after training each canary gets a score (higher for IN) and
    the one-run bounds of :func:`skmia.metrics.epsilon_lower_bound` (``"one_run"``,
    Steinke et al.; ``"one_run_fdp"``, Mahloujifar et al.) turn the scores and coins
    into lower bounds on ε. A bound above the claim means the claim is **violated**: a
    training that met it would give such a bound with probability at most
    ``1 - confidence``.

    - Black box (``white_box=False``): ``canaries`` rows of ``(X, y)`` become input
      canaries (:func:`make_canaries`, ``canary_kind``); the model trains on the other
      rows and the IN canaries; each canary's score is the released model's
      logit-scaled confidence on it (φ, :func:`skmia.attacks.compute_signals`).
    - White box (``white_box=True``, :class:`~skmia.defenses.DPSGDClassifier` only):
      gradient ("Dirac") canaries, one parameter coordinate each, of norm
      ``max_grad_norm``, added to the clipped-gradient sum in exactly the steps where
      their own Poisson draws (at the training's sample rate) pick them, before the
      noise; the model trains on all of ``(X, y)``. Scored by ``white_box_score`` (see
      :mod:`skmia.defenses._dp_canaries`): ``"step"``, the released noisy gradient
      minus the other records' clipped gradients along the canary, summed over steps
      (each canary's score is then its number of draws plus Gaussian noise, the
      idealised audit of DP-SGD); ``"update"``, the released noisy gradient alone;
      ``"weights"``, initial minus final weight.

    Parameters
    ----------
    estimator : classifier
        The training to audit; cloned, never mutated. Any classifier for a black-box
        audit (then give ``claimed_epsilon`` unless it is a DP-SGD classifier).
    X : array-like of shape (n_samples, ...)
        The training data (the pool the input canaries are drawn from).
    y : array-like of shape (n_samples,)
        Its labels.
    canaries : int, default=1000
        Number of canaries. More canaries allow larger bounds: see
        :func:`skmia.metrics.max_epsilon_lower_bound`.
    canary_kind : {"mislabel", "random", "blank"}, default="mislabel"
        Input canaries of a black-box audit (:data:`CANARY_KINDS`).
    white_box : bool, default=False
        Gradient canaries instead of input canaries (DP-SGD only).
    claimed_epsilon : float or None, default=None
        The ε claimed at ``delta``; None takes the estimator's accountant (``epsilon_``
        after training, at ``delta``: the estimator's ``delta`` is set to it).
    delta : float, default=1e-5
        The δ of the claim; in (0, 1).
    confidence : float, default=0.95
        The confidence of the verdict; in (0.5, 1). Each of the ``k`` bounds is computed
        at ``1 - (1 - confidence) / k`` so that "some bound exceeds the claim" errs
        with probability at most ``1 - confidence`` (Bonferroni over the methods).
    threshold : {"bonferroni", "split"} or float, default="bonferroni"
        How the number of guesses is chosen (see
        :func:`~skmia.metrics.epsilon_lower_bound`).
    white_box_score : {"step", "update", "weights"}, default="step"
        The score of a gradient canary.
    methods : sequence of {"one_run", "one_run_fdp"} or None, default=None
        The bounds computed. None: both for DP-SGD; ``"one_run"`` alone for any other
        estimator, since ``"one_run_fdp"`` turns μ into ε through a Gaussian trade-off
        curve, which DP-SGD's subsampled Gaussian steps approach and other mechanisms
        need not have.
    random_state : int, RandomState instance or None, default=None
        Draws the canaries, their coins and Poisson draws, and the model's seed.

    Returns
    -------
    audit : DPAudit
        ``claimed_epsilon_``, ``bounds_`` (one row per method: ε lower bound, its
        confidence, the counts behind it and the largest bound those counts allow),
        ``violated_``, ``scores_`` (one row per canary) and ``estimator_``.

    Raises
    ------
    ValueError
        Before any training: ``canaries`` too few for any positive bound or not below
        the number of records (black box) or above the network's trainable parameters
        (white box), ``delta`` outside (0, 1), ``confidence`` outside (0.5, 1).
        ``TypeError``: a white-box audit of a model that is not
        DP-SGD, or no claim for a model without an accountant.

    Notes
    -----
    Assumptions (the theorem's): the canaries' coins are independent fair coins drawn
    by the auditor; everything else the training sees (the other records, the model's
    seed) is fixed before the coins; the guesses use the released outputs only. DP is
    then a claim about each canary, and the bound holds whatever the model's accuracy.
    A one-run bound is well below ε even for a tight mechanism: at 1,000 canaries it
    cannot exceed a few units, whatever the training leaks (``max_epsilon`` in
    ``bounds_``); white-box gradient canaries come closest.

    References
    ----------
    .. [1] T. Steinke, M. Nasr, M. Jagielski. "Privacy Auditing with One (1) Training
       Run". NeurIPS 2023. arXiv:2305.08846.
    .. [2] S. Mahloujifar, L. Melis, K. Chaudhuri. "Auditing f-Differential Privacy in
       One Run". ICML 2025. arXiv:2410.22235.
    .. [3] M. Nasr, J. Hayes, T. Steinke, B. Balle, F. Tramèr, M. Jagielski, N. Carlini,
       A. Terzis. "Tight Auditing of Differentially Private Machine Learning". USENIX
       Security 2023. arXiv:2302.07956.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skmia.audit import audit_dp
    >>> from skmia.defenses import DPSGDClassifier
    >>> X, y = make_classification(200, n_features=10, random_state=0)
    >>> dp = DPSGDClassifier(noise_multiplier=2.0, max_epochs=2, batch_size=50,
    ...                      accountant="rdp", module__hidden_sizes=(32,), random_state=0)
    >>> audit = audit_dp(dp, X, y, canaries=300, white_box=True, random_state=0)
    >>> audit.violated_, list(audit.bounds_.index)
    (False, ['one_run', 'one_run_fdp'])
    """
    X, y = check_records(X, y)
    _check_audit(estimator, X, y, canaries, white_box, claimed_epsilon)
    if white_box:  # before any training: a network too small for the canaries
        GradientCanaries(np.zeros(canaries, dtype=bool), None).check_parameters(
            _n_trainable_parameters(estimator, X, y))
    methods = _check_methods(methods, estimator)
    per_method = 1 - (1 - confidence) / len(methods)
    largest = _check_enough_canaries(canaries, delta, per_method, threshold, methods)
    if claimed_epsilon is not None:
        _warn_if_unreachable(claimed_epsilon, largest)
    rng = np.random.default_rng(check_random_state(random_state).randint(2**31 - 1))
    member = rng.random(canaries) < 0.5
    model = clone(estimator)
    if "random_state" in model.get_params(deep=False):
        model.set_params(random_state=int(rng.integers(2**31 - 1)))
    if isinstance(model, DPSGDClassifier):
        model.set_params(delta=delta)
    if white_box:
        scores = _white_box_scores(model, X, y, member, rng)
        score = scores[white_box_score]
    else:
        score, scores = _black_box_scores(model, X, y, member, canaries, canary_kind, rng)
    claimed, source = _claim(model, claimed_epsilon)
    if claimed_epsilon is None:
        _warn_if_unreachable(claimed, largest)
    seed = int(rng.integers(2**31 - 1))
    bounds = {method: epsilon_lower_bound(member, score, method=method, delta=delta,
                                          confidence=per_method, threshold=threshold,
                                          random_state=seed)
              for method in methods}
    settings = {"canaries": int(canaries), "canary_kind": "gradient" if white_box
                else canary_kind, "white_box": bool(white_box), "delta": float(delta),
                "confidence": float(confidence), "threshold": threshold,
                "white_box_score": white_box_score if white_box else None,
                "estimator": type(estimator).__name__, "claim_source": source}
    return DPAudit.from_bounds(bounds, claimed_epsilon=claimed, membership=member,
                               score=score, scores=scores, settings=settings,
                               estimator=model)


def _check_audit(estimator, X, y, canaries, white_box, claimed_epsilon):
    if not is_classifier(estimator):
        raise TypeError(f"audit_dp audits a classifier's training; got "
                        f"{type(estimator).__name__}.")
    if white_box and not isinstance(estimator, DPSGDClassifier):
        raise TypeError(
            f"white_box=True inserts gradient canaries into DP-SGD's noisy steps: the "
            f"estimator must be a DPSGDClassifier, got {type(estimator).__name__}. Audit "
            "other trainings with input canaries (white_box=False)."
        )
    if claimed_epsilon is None and not isinstance(estimator, DPSGDClassifier):
        raise TypeError(
            f"{type(estimator).__name__} has no privacy accountant: give the ε it claims "
            "as claimed_epsilon."
        )
    if not white_box and canaries >= len(y):
        raise ValueError(
            f"canaries={canaries} input canaries need a larger pool: X has {len(y)} "
            "records and the training needs some that are not canaries."
        )


def _check_methods(methods, estimator):
    if methods is None:
        return ONE_RUN_METHODS if isinstance(estimator, DPSGDClassifier) else ("one_run",)
    methods = tuple(methods)
    unknown = [m for m in methods if m not in ONE_RUN_METHODS]
    if unknown or not methods or len(set(methods)) != len(methods):
        raise ValueError(f"methods must be distinct names among {ONE_RUN_METHODS}; got "
                         f"{list(methods)}.")
    return methods


def _check_enough_canaries(canaries, delta, confidence, threshold, methods):
    """Refuse a number of canaries that no bound can use; return each method's largest
    bound."""
    n_in = canaries // 2
    if n_in < 1:
        raise ValueError(f"canaries={canaries} is too few for any one-run bound: the coins "
                         "need members and non-members.")
    largest = {m: float(max_epsilon_lower_bound(n_in, canaries - n_in, method=m, delta=delta,
                                                confidence=confidence, threshold=threshold))
               for m in methods}
    if max(largest.values()) <= 0:
        raise ValueError(
            f"canaries={canaries} is too few for any one-run bound at confidence "
            f"{confidence:g} and delta={delta:g}: even perfect guesses give ε = 0. Use more "
            "canaries (see skmia.metrics.max_epsilon_lower_bound)."
        )
    return largest


class UnreachableClaimWarning(UserWarning):
    """A DP audit whose canaries are too few to show the claim violated: even perfect
    guesses give a lower bound below the claimed ε."""


def _warn_if_unreachable(claimed, largest):
    best = max(largest.values())
    if best < claimed:
        warnings.warn(
            f"no bound on these canaries can exceed {best:.3g} (a perfect attack's), below "
            f"the claimed epsilon {claimed:.3g}: this audit cannot find the claim violated. "
            "More canaries raise the ceiling (skmia.metrics.max_epsilon_lower_bound).",
            UnreachableClaimWarning, stacklevel=4)  # the caller of audit_dp's wrapper


def _n_trainable_parameters(estimator, X, y):
    """Trainable parameters of the network ``estimator`` builds for ``(X, y)``: a clone
    learns the shapes and classes and builds its module, without training."""
    probe = clone(estimator)
    probe._setup(X, y)
    with probe._current_init_context("module"):  # skorch's guard on setting module_
        probe.initialize_module()
    return sum(p.numel() for p in probe.module_.parameters() if p.requires_grad)


def _white_box_scores(model, X, y, member, rng):
    canaries = GradientCanaries(member, np.random.default_rng(rng.integers(2**63 - 1)))
    with inserted_canaries(model, canaries):
        model.fit(X, y)
    scores = canaries.scores()
    scores["draws"] = canaries.draws_.astype(np.float64)
    return scores


def _black_box_scores(model, X, y, member, n_canaries, kind, rng):
    pool = make_canaries(X, y, n_canaries, kind=kind, random_state=int(rng.integers(2**31 - 1)))
    keep = ~pool.is_canary
    keep[pool.canary_index[member]] = True
    model.fit(pool.X[keep], pool.y[keep])
    X_c, y_c = pool.X[pool.canary_index], pool.y[pool.canary_index]
    score = _phi(model, X_c, y_c, None)[:, 0]
    return score, {"phi": score}


def _claim(model, claimed_epsilon):
    if claimed_epsilon is not None:
        return float(claimed_epsilon), "given"
    return float(model.epsilon_), "accountant"
