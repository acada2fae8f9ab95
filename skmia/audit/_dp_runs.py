"""audit_dp_runs: a DP audit over many trainings, calibrated on disjoint reference runs.

Every run trains on the same non-canary records plus the canaries its own fair coins
include (a coin per canary and run, all independent). The first ``n_reference`` runs
calibrate -- per canary, the mean score IN and OUT, a pooled spread -- and are never
audited; the other ``n_runs`` are audited with guesses that use the calibration and the
run's own output only, never a coin of an audited run.
"""

from numbers import Integral, Real

import numpy as np
from sklearn.base import clone
from sklearn.utils import check_random_state

from .._parallel import parallel_map
from .._sklearn_compat import Interval, StrOptions, validate_params
from .._validation import check_records
from ..defenses import DPSGDClassifier

# gradient canaries reach into DP-SGD's step: skmia.defenses keeps them private
from ..defenses._dp_canaries import GRADIENT_CANARY_SCORES, GradientCanaries, inserted_canaries
from ..metrics import epsilon_lower_bound, max_epsilon_lower_bound
from ..model_selection import fit_models
from ._canaries import make_canaries
from ._defense import _phi
from ._dp import _INPUT_KINDS, _check_audit, _claim
from ._dp_result import DPAudit

__all__ = ["MANY_RUN_METHODS", "audit_dp_runs"]

#: The bounds of a many-run audit: one-run bounds over every (canary, audited run) pair,
#: and two-group bounds over the audited runs of the canary the reference runs find
#: most exposed.
MANY_RUN_METHODS = ("one_run", "one_run_fdp", "clopper_pearson", "gdp")
_GAUSSIAN = ("one_run_fdp", "gdp")


@validate_params(
    {
        "estimator": "no_validation", "X": ["array-like"], "y": ["array-like"],
        "canaries": [Interval(Integral, 1, None, closed="left")],
        "canary_kind": [StrOptions(set(_INPUT_KINDS))],
        "n_runs": [Interval(Integral, 2, None, closed="left")],
        "n_reference": [Interval(Integral, 2, None, closed="left")],
        "white_box": ["boolean"],
        "claimed_epsilon": [Interval(Real, 0, None, closed="neither"), None],
        "delta": [Interval(Real, 0, 1, closed="neither")],
        "confidence": [Interval(Real, 0.5, 1, closed="neither")],
        "threshold": [StrOptions({"bonferroni", "split"})],
        "white_box_score": [StrOptions(set(GRADIENT_CANARY_SCORES))],
        "n_jobs": [Integral, None], "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def audit_dp_runs(estimator, X, y, *, canaries=250, canary_kind="mislabel", n_runs=16,
                  n_reference=16, white_box=False, claimed_epsilon=None, delta=1e-5,
                  confidence=0.95, threshold="bonferroni", white_box_score="step",
                  n_jobs=None, random_state=None):
    """Audit a DP claim over many trainings, with a bound whose theorem applies.

    Trains ``n_reference + n_runs`` models. Each includes each canary by its own fair coin
    (independent across canaries and runs) besides every other record of ``(X, y)``.
    The reference runs calibrate a per-canary score (LiRA-style, Carlini et al.
    arXiv:2112.03570: the canary's mean score IN and OUT over the reference runs, one
    pooled spread; the log-likelihood ratio of two Gaussians); the audited runs are
    scored with it and bounded:

    - ``"one_run"``, ``"one_run_fdp"`` over all ``canaries × n_runs`` (canary, run) pairs:
      Steinke et al.'s theorem (arXiv:2305.08846) for the mechanism that releases the
      ``n_runs`` models. Changing one pair's coin changes one run's data by one record,
      so that mechanism is (ε, δ)-DP in each pair if the training is; the coins are
      independent and fair; a pair's guess uses the reference runs and its own run's
      output, never an audited coin.
    - ``"clopper_pearson"``, ``"gdp"`` over the ``n_runs`` audited runs of one canary:
      the one the reference runs find most exposed (largest calibrated separation),
      its threshold chosen by ``threshold`` (``"bonferroni"`` or ``"split"`` over the
      runs). Across runs the (membership, score) pairs of a fixed canary are independent
      and identically distributed (independent coins and seeds), which is what the
      two-group tests assume (Jagielski et al. arXiv:2006.07709; Nasr et al.
      arXiv:2302.07956). Methods whose largest possible bound is 0 with these counts
      are left out (few runs: the two-group tests need some 30 runs or more).

    Parameters
    ----------
    estimator : classifier
        The training to audit (cloned). Batched in one network when the bank's engine
        accepts it (:func:`skmia.model_selection.ReferenceModels`'s ``fit_batched``),
        model by model otherwise (``n_jobs``).
    X, y : array-like
        The records (the pool the input canaries are drawn from).
    canaries : int, default=250
        Canaries per run (input canaries: :func:`make_canaries` rows, as in
        :func:`audit_defense`; gradient canaries with ``white_box=True``).
    canary_kind : {"mislabel", "random", "blank"}, default="mislabel"
        Input canaries' kind.
    n_runs : int, default=16
        Audited trainings.
    n_reference : int, default=16
        Calibration trainings, never audited.
    white_box : bool, default=False
        Gradient canaries (DP-SGD only), scored by ``white_box_score``.
    claimed_epsilon, delta, confidence : see :func:`audit_dp`
        The claim; each of the ``k`` bounds computed is at
        ``1 - (1 - confidence) / k`` so that the verdict holds at ``confidence``.
    threshold : {"bonferroni", "split"}, default="bonferroni"
        The rule choosing the guesses or the threshold on the audited runs.
    white_box_score : {"step", "update", "weights"}, default="step"
        See :func:`audit_dp`.
    n_jobs : int or None, default=None
        Workers for trainings that are not batched.
    random_state : int, RandomState instance or None, default=None
        Draws the canaries, the coins and every model's seed.

    Returns
    -------
    audit : DPAudit
        As :func:`audit_dp`'s; ``scores_`` has one row per (canary, audited run) pair
        with ``canary`` and ``run``; ``settings_["exposed_canary"]`` names the canary of
        the two-group bounds.

    Raises
    ------
    ValueError, TypeError
        As :func:`audit_dp`, before any training.
    """
    X, y = check_records(X, y)
    _check_audit(estimator, X, y, canaries, white_box, claimed_epsilon)
    methods = [m for m in MANY_RUN_METHODS
               if isinstance(estimator, DPSGDClassifier) or m not in _GAUSSIAN]
    methods = _possible(methods, canaries, n_runs, delta, confidence, threshold)
    per_method = 1 - (1 - confidence) / len(methods)
    rng = np.random.default_rng(check_random_state(random_state).randint(2**31 - 1))
    total = n_reference + n_runs
    coins = rng.random((canaries, total)) < 0.5
    seeds = [int(s) for s in rng.integers(2**31 - 1, size=total)]
    if white_box:
        models, scores = _white_box_runs(estimator, X, y, coins, seeds, rng, white_box_score,
                                         n_jobs)
    else:
        models, scores = _black_box_runs(estimator, X, y, coins, seeds, rng, canary_kind,
                                         n_jobs)
    ref, audited = slice(0, n_reference), slice(n_reference, total)
    llr, separation = _calibrated(scores[:, ref], coins[:, ref], scores[:, audited])
    member = coins[:, audited]
    exposed = int(np.argmax(separation))
    seed = int(rng.integers(2**31 - 1))
    bounds = {}
    for method in methods:
        pairs = method.startswith("one_run")
        labels = member.ravel() if pairs else member[exposed]
        n_in = int(labels.sum())
        if min(n_in, len(labels) - n_in) == 0 or not max_epsilon_lower_bound(
                n_in, len(labels) - n_in, method=method, delta=delta, confidence=per_method,
                threshold=threshold) > 0:
            continue  # the coins left too few members or non-members for this method
        bounds[method] = epsilon_lower_bound(
            labels, llr.ravel() if pairs else llr[exposed], method=method, delta=delta,
            confidence=per_method, threshold=threshold, random_state=seed)
    if claimed_epsilon is None:  # the weakest claim of the audited runs
        claimed, source = max(float(m.epsilon_) for m in models[n_reference:]), "accountant"
    else:
        claimed, source = _claim(None, claimed_epsilon)
    settings = {"canaries": int(canaries), "n_runs": int(n_runs),
                "n_reference": int(n_reference), "white_box": bool(white_box),
                "canary_kind": "gradient" if white_box else canary_kind,
                "delta": float(delta), "confidence": float(confidence),
                "threshold": threshold, "exposed_canary": exposed,
                "estimator": type(estimator).__name__, "claim_source": source}
    canary, run = np.indices(member.shape)
    return DPAudit.from_bounds(
        bounds, claimed_epsilon=claimed, membership=member.ravel(), score=llr.ravel(),
        scores={"canary": canary.ravel(), "run": run.ravel(),
                "raw": scores[:, audited].ravel()}, settings=settings, estimator=models[-1])


def _possible(methods, canaries, n_runs, delta, confidence, threshold):
    """The methods some bound above 0 is possible for; an error if none."""
    kept = []
    for method in methods:
        n = canaries * n_runs if method.startswith("one_run") else n_runs
        n_in = n // 2
        if n_in and max_epsilon_lower_bound(n_in, n - n_in, method=method, delta=delta,
                                            confidence=1 - (1 - confidence) / len(methods),
                                            threshold=threshold) > 0:
            kept.append(method)
    if not kept:
        raise ValueError(f"canaries={canaries} and n_runs={n_runs} are too few for any "
                         "bound: even perfect guesses give ε = 0. Use more canaries or runs.")
    return kept


def _calibrated(ref_scores, ref_coins, scores):
    """Each audited score as a log-likelihood ratio of the canary's reference IN and
    OUT Gaussians (one pooled spread); also each canary's separation in spreads.

    With few reference runs a canary's own means are noisy: each is shrunk toward the
    mean over all canaries by the share of the spread between canaries that its noise
    leaves (an empirical-Bayes estimate; canaries that all behave alike, as gradient
    canaries do, get the common means).
    """
    groups = [ref_coins, ~ref_coins]
    counts = [g.sum(axis=1) for g in groups]
    raw = [np.where(g, ref_scores, 0.0).sum(axis=1) / np.maximum(n, 1)
           for g, n in zip(groups, counts, strict=True)]
    centred = ref_scores - np.where(ref_coins, raw[0][:, None], raw[1][:, None])
    dof = max(ref_scores.size - sum(int((n > 0).sum()) for n in counts), 1)
    variance = max(float(np.sum(centred**2)) / dof, 1e-24)
    mu_in, mu_out = (_shrunk(m, n, g, ref_scores, variance)
                     for m, n, g in zip(raw, counts, groups, strict=True))
    spread = np.sqrt(variance)
    gap = (mu_in - mu_out)[:, None]
    llr = gap * (scores - (mu_in + mu_out)[:, None] / 2) / variance
    return llr, np.abs(gap[:, 0]) / spread


def _shrunk(means, counts, where, ref_scores, variance):
    """Per-canary means shrunk toward the common mean (weight ``between / (between +
    variance / count)``; 0 for a canary never seen in this group)."""
    common = float(np.where(where, ref_scores, 0.0).sum() / max(counts.sum(), 1))
    seen = counts > 0
    if seen.sum() < 2:
        return np.full(len(means), common)
    between = max(float(np.var(means[seen], ddof=1) - np.mean(variance / counts[seen])),
                  0.0)
    weight = np.where(seen, between / (between + variance / np.maximum(counts, 1)), 0.0)
    return common + weight * (means - common)


def _fit_runs(estimator, X, y, masks, seeds, n_jobs):
    """One model per run: batched when the bank's engine accepts the recipe."""
    return fit_models(estimator, X, y, masks, seeds, n_jobs=n_jobs, desc="DP audit runs")


def _black_box_runs(estimator, X, y, coins, seeds, rng, kind, n_jobs):
    pool = make_canaries(X, y, len(coins), kind=kind, random_state=int(rng.integers(2**31 - 1)))
    masks = np.repeat(~pool.is_canary[:, None], coins.shape[1], axis=1)
    masks[pool.canary_index] = coins
    models = _fit_runs(estimator, pool.X, pool.y, masks, seeds, n_jobs)
    X_c, y_c = pool.X[pool.canary_index], pool.y[pool.canary_index]
    return models, np.stack([_phi(m, X_c, y_c, None)[:, 0] for m in models], axis=1)


def _white_box_run(estimator, X, y, member, seed, canary_seed, score):
    model = clone(estimator).set_params(random_state=seed)
    canaries = GradientCanaries(member, np.random.default_rng(canary_seed))
    with inserted_canaries(model, canaries):
        model.fit(X, y)
    return model, canaries.scores()[score]


def _white_box_runs(estimator, X, y, coins, seeds, rng, score, n_jobs):
    canary_seeds = [int(s) for s in rng.integers(2**63 - 1, size=len(seeds))]
    tasks = [(estimator, X, y, coins[:, k], seeds[k], canary_seeds[k], score)
             for k in range(len(seeds))]
    done = parallel_map(_white_box_run, tasks, n_jobs=n_jobs, desc="DP audit runs")
    return [m for m, _ in done], np.stack([s for _, s in done], axis=1)
