"""audit_defense: how much a training algorithm leaks about the records at risk.

The protocol of Aerni, Zhang & Tramèr (arXiv:2404.17399): canaries in the pool, many
models of the defense trained on balanced halves of it, leave-one-out LiRA on every
(record, model) pair, TPR at low FPR on the canaries beside the other records', at the
test accuracy the models reach.

The models are trained in *rounds*: round ``r`` is a
:class:`~skmia.model_selection.ReferenceModels` bank of one mask block (the fewest models
in which every record is IN exactly ``keep`` of the time: 2 at ``keep=0.5``) with a seed
drawn from the audit's seed and ``r`` alone; batched rounds train the same models (the
bank's draws, :func:`~skmia.model_selection.fit_models`) in one pass. A round returns the
scores its models give the pool, not the models, so rounds run anywhere (joblib, Dask),
and ``audit_defense(..., out=folder)`` keeps finished rounds in its folder
(:mod:`._defense_folder`) and continues or grows them later to the same result.
"""

import os
from numbers import Integral, Real

import numpy as np
from sklearn.base import is_classifier

from .._parallel import effective_jobs, parallel_map
from .._rundir import AUDIT_FILES, COMPLETE, RunDirectory
from .._sklearn_compat import HasMethods, Interval, validate_params
from .._threads import with_thread_policy
from ..model_selection import ReferenceModels, batching_refusal, fit_models, unfinished_models
from ._canaries import Canaries
from ._defense_folder import checked_folder, load_round, recipe_document, save_round
from ._plan import (
    LABEL_ONLY_QUERIES,
    AuditPlan,
    _ExpandedFit,
    check_n_models,
    plan_audit,
)
from ._result import OPTIONAL_ARRAYS, DefenseAudit

__all__ = ["AuditPlan", "audit_defense", "check_audit_folder", "plan_audit", "train_rounds"]


def _is_net(model):
    try:
        from skorch import NeuralNet
    except ImportError:  # pragma: no cover - skorch is a dependency
        return False
    return isinstance(model, NeuralNet)


def _releases_outputs(model):
    """Whether ``model`` answers queries with other outputs than its network's (HAMP,
    MemGuard: the ``raw_module_`` of :class:`skmia.defenses._outputs.ReleasingClassifierMixin`)."""
    return _is_net(model) and hasattr(type(model), "raw_module_")


def _score_views(signals, augment):
    """(n_records, n_aug) φ of :func:`~skmia.attacks.compute_signals`' table."""
    if augment is None:
        return signals["score"].to_numpy(dtype=np.float64)[:, None]
    views = sorted((c for c in signals.columns if c.startswith("score_aug_")),
                   key=lambda c: int(c.rsplit("_", 1)[1]))
    return signals[views].to_numpy(dtype=np.float64)


def _phi(model, X, y, augment):
    """(n_records, n_aug) logit-scaled confidence of one fitted model on ``(X, y)``."""
    if _is_net(model):
        from ..attacks import compute_signals

        options = {} if augment is None else {"augment": augment}
        return _score_views(compute_signals(model, X, y, **options), augment)
    # a scikit-learn model's φ: the attacks' formula, which skmia.attacks keeps private
    from ..attacks._signals import logit_confidence

    proba = np.asarray(model.predict_proba(X), dtype=np.float64)
    labels = np.searchsorted(model.classes_, y)
    return logit_confidence(np.log(np.maximum(proba, np.finfo(np.float64).tiny)), labels)[:, None]


def _threat_signals(model, X, y, plan):
    """What a defense that releases modified outputs does not hide: φ of its raw network
    (white box) and, per record, the fraction of :data:`LABEL_ONLY_QUERIES` perturbed
    copies still classified correctly (labels only, which it keeps)."""
    from ..attacks import compute_signals, label_only_signals

    options = {} if plan.augment is None else {"augment": plan.augment}
    raw = compute_signals(model.raw_module_, X, y, classes=model.classes_, **options)
    correct = label_only_signals(model.predict, X, y, n_queries=LABEL_ONLY_QUERIES,
                                 random_state=plan.label_only_seed())
    return _score_views(raw, plan.augment), correct.mean(axis=1)


def _writable(plan, fit_params):
    """The pool, the test part and ``fit_params`` as arrays torch may write (joblib
    hands workers read-only memory maps)."""
    X_pool = plan.X_pool if plan.X_pool.flags.writeable else plan.X_pool.copy()
    X_test = plan.X_test if plan.X_test.flags.writeable else plan.X_test.copy()
    fit_params = {k: v.copy() if isinstance(v, np.ndarray) and not v.flags.writeable else v
                  for k, v in fit_params.items()}
    return X_pool, X_test, fit_params


def _train_round(estimator, plan, r, fit_params):
    """Train round ``r`` and return what the audit reads of its models (arrays only)."""
    expand = plan.n_copies > 1 or len(plan.y_poison) > 0
    n = len(plan.y_pool)
    X_pool, X_test, fit_params = _writable(plan, fit_params)
    if expand:
        copies = np.where(plan.is_canary, plan.n_copies, 1)
        recipe = _ExpandedFit(estimator, plan.X_pool, plan.y_pool, copies, plan.X_poison,
                              plan.y_poison)
        X_fit = np.arange(n, dtype=np.float64)[:, None]
    else:
        recipe, X_fit = estimator, plan.X_pool
    bank = ReferenceModels(recipe, n_estimators=plan.block, keep=plan.keep, n_jobs=1,
                           random_state=plan.round_seed(r)).fit(X_fit, plan.y_pool,
                                                                **fit_params)
    models = [m.estimator_ if expand else m for m in bank.estimators_]
    return _round_result(models, bank.in_mask_.copy(), plan, X_pool, X_test)


def _train_batched(estimator, plan, rounds, verbose=0):
    """Train the models of ``rounds`` as one batched network: the same models, masks and
    seeds as :func:`_train_round` gives round by round (the bank's draws,
    :meth:`AuditPlan.round_draws`), to float32 rounding, in one pass over the pool
    instead of one per round."""
    X_pool, X_test, _ = _writable(plan, {})
    draws = [plan.round_draws(r) for r in rounds]
    masks = [mask for mask, _ in draws]
    seeds = np.concatenate([seeds for _, seeds in draws])
    models = fit_models(estimator, X_pool, plan.y_pool, np.concatenate(masks, axis=1), seeds,
                        batched=True, n_jobs=1, verbose=verbose)
    return [_round_result(models[i * plan.block:(i + 1) * plan.block], mask, plan, X_pool,
                          X_test) for i, mask in enumerate(masks)]


def _round_result(models, in_mask, plan, X_pool, X_test):
    """What the audit keeps of one round's models: φ on the pool, accuracies, ε; for a
    defense that releases modified outputs, also its raw φ and label-only signal. A
    model whose fit a Ctrl-C ended (skorch's ``fit`` swallows it) ends the audit."""
    short = unfinished_models(models)
    if short:
        raise KeyboardInterrupt(
            f"model(s) {short[:5]} of an audit round stopped short of their epochs (a "
            "Ctrl-C reached their training): the round is not kept")
    phi, test_acc, train_acc, epsilon = [], [], [], []
    threats = {name: [] for name in OPTIONAL_ARRAYS}
    for k, model in enumerate(models):
        phi.append(_phi(model, X_pool, plan.y_pool, plan.augment))
        if _releases_outputs(model):
            for name, value in zip(OPTIONAL_ARRAYS,
                                   _threat_signals(model, X_pool, plan.y_pool, plan),
                                   strict=True):
                threats[name].append(value)
        test_acc.append(float(np.mean(model.predict(X_test) == plan.y_test)))
        inside = in_mask[:, k]
        train_acc.append(float(np.mean(model.predict(X_pool[inside])
                                       == plan.y_pool[inside])))
        epsilon.append(float(getattr(model, "epsilon_", np.nan)))
    result = {"phi": np.stack(phi, axis=1), "in_mask": in_mask,
              "test_accuracy": np.asarray(test_acc), "train_accuracy": np.asarray(train_acc),
              "epsilon": np.asarray(epsilon)}
    if threats["phi_raw"]:
        result.update({name: np.stack(values, axis=1) for name, values in threats.items()})
    return result


def _check_estimator(estimator, plan):
    if not is_classifier(estimator):
        raise TypeError(
            "audit_defense audits a classifier recipe (a skmia defense, any scikit-learn "
            f"classifier); got {type(estimator).__name__}."
        )
    if plan.augment is not None and not _is_net(estimator):
        raise ValueError("augment queries a network under augmentations: the estimator must "
                         "be a skorch net (a skmia defense).")
    classes = np.unique(plan.y_pool)
    missing = np.setdiff1d(np.unique(plan.y_test), classes)
    if len(missing):
        raise ValueError(f"the test part has classes {missing[:5].tolist()} that the pool "
                         "lacks.")


def train_rounds(estimator, plan, rounds, *, fit_params=None, n_jobs=None, verbose=0):
    """Train the rounds ``rounds`` of an audit (joblib; Dask through its backend).

    A recipe that :class:`~skmia.model_selection.ReferenceModels` can vectorise trains
    its rounds as batched networks, split into ``n_jobs`` groups of whole rounds (one
    group per worker); any other recipe trains round by round. Either way a round's
    models depend on the audit's seed and the round alone.

    Returns
    -------
    results : list of dict
        Per round: ``phi`` (n_records, block, n_aug), ``in_mask``, ``test_accuracy``,
        ``train_accuracy``, ``epsilon`` (per model); for a defense that releases modified
        outputs also ``phi_raw`` (n_records, block, n_aug) and ``label_only``
        (n_records, block).
    """
    rounds, fit_params = list(rounds), dict(fit_params or {})
    expand = plan.n_copies > 1 or len(plan.y_poison) > 0
    if rounds and not expand and batching_refusal(estimator, plan.X_pool, fit_params) is None:
        n_groups = min(effective_jobs(n_jobs), len(rounds))
        groups = [list(g) for g in np.array_split(rounds, n_groups)]
        # one group trains here: its bar counts epochs; several: one bar over the groups
        inner = verbose if len(groups) == 1 else 0
        tasks = [(estimator, plan, [int(r) for r in group], inner) for group in groups]
        grouped = parallel_map(_train_batched, tasks, n_jobs=n_jobs, verbose=verbose - inner,
                               desc=f"batched rounds of {plan.block} models")
        return [result for group in grouped for result in group]
    tasks = [(estimator, plan, r, fit_params) for r in rounds]
    return parallel_map(_train_round, tasks, n_jobs=n_jobs, verbose=verbose,
                        desc=f"rounds of {plan.block} models")


def assemble(plan, rounds, settings):
    """The :class:`DefenseAudit` of the rounds' results, in round order."""
    threats = {}
    if any(name in r for r in rounds for name in OPTIONAL_ARRAYS):
        if not all(name in r for r in rounds for name in OPTIONAL_ARRAYS):
            raise ValueError("some rounds have the raw outputs and label-only signal of a "
                             "defense that releases modified outputs and others do not: "
                             "they were trained by different code; train them again.")
        threats = {name: np.concatenate([r[name] for r in rounds], axis=1)
                   for name in OPTIONAL_ARRAYS}
        settings = {**settings, "label_only_queries": LABEL_ONLY_QUERIES}
    return DefenseAudit(
        phi=np.concatenate([r["phi"] for r in rounds], axis=1),
        in_mask=np.concatenate([r["in_mask"] for r in rounds], axis=1),
        is_canary=plan.is_canary, record_index=plan.pool_index,
        test_accuracy=np.concatenate([r["test_accuracy"] for r in rounds]),
        train_accuracy=np.concatenate([r["train_accuracy"] for r in rounds]),
        epsilon=np.concatenate([r["epsilon"] for r in rounds]),
        settings={**plan.settings, **settings, "n_models": sum(len(r["epsilon"])
                                                             for r in rounds)},
        **threats,
    )


@validate_params(
    {
        "estimator": [HasMethods(["fit", "predict"])],
        "X": ["array-like"],
        "y": ["array-like"],
        "canaries": [Canaries, Interval(Integral, 1, None, closed="left"), None],
        "n_models": [Interval(Integral, 1, None, closed="left")],
        "keep": [Interval(Real, 0, 1, closed="neither")],
        "test_size": [Interval(Real, 0, 1, closed="neither"),
                      Interval(Integral, 1, None, closed="left"), "array-like"],
        "augment": "no_validation",
        "fit_params": [dict, None],
        "test_as_reference": ["boolean"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "out": [str, os.PathLike, None],
        "settings": [dict, None],
    },
    prefer_skip_nested_validation=False,
)
@with_thread_policy
def audit_defense(estimator, X, y, *, canaries=None, n_models=64, keep=0.5, test_size=0.2,
                  augment=None, fit_params=None, test_as_reference=False, n_jobs=None,
                  random_state=None, verbose=1, out=None, settings=None):
    """Audit a training algorithm: its leakage on canaries and on the other records.

    Holds out a test part (never trained on), trains ``n_models`` clones of
    ``estimator`` on balanced random subsets of the rest (the pool, with the canaries),
    computes every model's logit-scaled confidence φ on every pool record, and attacks
    every (record, model) pair with leave-one-out online LiRA — each model the target
    once, the others its reference models — with per-record and with fixed variances,
    as the authors' code does [1]_.

    Parameters
    ----------
    estimator : classifier
        The recipe to audit (a skmia defense; any scikit-learn classifier). Cloned for
        each model; each clone gets its own ``random_state``.
    X : array-like of shape (n_samples, ...)
        The records (a table or a batch of images).
    y : array-like of shape (n_samples,)
        Their labels.
    canaries : Canaries, int or None, default=None
        What :func:`make_canaries` returned for this ``X, y``; an int for that many
        mislabeled canaries drawn from ``random_state``; None for none (the summary then
        has the other records only).
    n_models : int, default=64
        Models to train: at least 4 and a whole multiple of the mask block (2 at
        ``keep=0.5``). Every record is IN exactly ``keep * n_models`` of them.
    keep : float, default=0.5
        Fraction of the models each pool record is in, in ``(0, 1)``.
    test_size : float, int or array-like of int, default=0.2
        The test part: a fraction of the records, a count (drawn among the
        non-canaries), or the rows themselves (which must not be canaries).
    augment : object, default=None
        Passed to :func:`~skmia.attacks.compute_signals` as ``augment=``, to score each
        record under augmented queries (images); its per-view scores are averaged in
        log-likelihood, as LiRA does. None queries the record as it is.
    fit_params : dict, default=None
        Passed to every model's ``fit`` (for example AdvReg's ``X_reference`` and
        ``y_reference``: non-members its inference network learns from).
    test_as_reference : bool, default=False
        Pass the test part to every model's ``fit`` as ``X_reference, y_reference``
        (AdvReg's inference network and MemGuard's defender learn non-members from it;
        no model trains on it as members), as ``skmia audit`` does.
    n_jobs : int, default=None
        Rounds of models trained at once through joblib (None: 1; -1: all cores);
        inside ``joblib.parallel_config(backend="dask")`` on a Dask cluster. Each model
        trains on one torch thread, so results never depend on ``n_jobs`` or backend.
    random_state : int, RandomState instance or None, default=None
        Draws the test part, the canaries (when an int), the masks and every model's
        seed.
    verbose : int, default=1
        Progress on stderr, with an estimate of the time left: over the models' epochs
        where they train as one batched network in this process, over rounds of models
        otherwise. 0 prints nothing.
    out : path-like, default=None
        A folder the audit owns: it is locked while the audit works, each finished group
        of rounds is written there at once (a Ctrl-C keeps them; the same call
        continues them to the same result, a call with more models grows them), then
        the result (``DefenseAudit.load(out / "result")``) and ``complete.json``, last.
        A folder holding another audit's recipe or rounds is refused before anything is
        written (:func:`check_audit_folder`).
    settings : dict, default=None
        Recorded in the result's ``settings`` besides the audit's own (for example the
        names of the method and the dataset).

    Returns
    -------
    audit : DefenseAudit
        ``summary_`` (per threat model and subset: AUC, TPR at 0.1 % and 1 % FPR
        with intervals over models and records, the per-record-calibrated TPR, pairs,
        accuracies), ``per_record_`` (records sorted by risk),
        ``settings``, ``save(folder)`` / ``DefenseAudit.load(folder)``.

    Raises
    ------
    ValueError
        Before any training: ``n_models`` below 4 or not a multiple of the mask block,
        ``keep`` outside (0, 1), a test part that overlaps the canaries or leaves too
        small a pool, canaries made from other data.

    See Also
    --------
    make_canaries : the records at risk.
    skmia.model_selection.ReferenceModels : the bank each round trains.

    Notes
    -----
    Threat model: the strongest black-box adversary of a training algorithm — it knows
    the algorithm and the data distribution, can train models like the target on the
    pool, and queries the target's logits on the records it tests. Averages hide the
    records at risk; the TPR at a low FPR on the canaries measures the leakage of the
    records that need privacy most [1]_. Each (record, model) pair is one trial: a
    canary in ``n_canaries * n_models`` pairs, half of them members.

    A defense that answers queries with other outputs than its network's (HAMP,
    MemGuard) claims to stop the black-box adversary above; it is also audited under the
    threat models that output modification does not touch, each a ``threat_model`` of
    the summary: ``"label-only"`` (the adversary sees predicted labels only, which such
    a defense keeps: the fraction of 32 perturbed copies of a record still classified
    correctly [3]_, on a logit scale, calibrated by the same leave-one-out LiRA) and
    ``"white-box (raw outputs)"`` (φ of the network behind the modification, which an
    adversary holding the weights reads). The rows of the released outputs are
    ``"black-box (defended outputs)"``; every other defense has one threat model,
    ``"black-box"``.

    Unlike the authors' code, which keeps every non-canary in every model, every pool
    record here is IN half of the models, so that the same models also measure the
    population. Fixed variance uses, per subset, the standard deviation of all IN (OUT)
    scores of that subset's records, as their code does on the canaries it is given.
    Cost: ``n_models`` trainings of the recipe on ``keep`` of the pool.

    References
    ----------
    .. [1] M. Aerni, J. Zhang, F. Tramèr. "Evaluations of Machine Learning Privacy
       Defenses are Misleading". ACM CCS 2024. arXiv:2404.17399.
    .. [2] N. Carlini et al. "Membership Inference Attacks From First Principles".
       IEEE S&P 2022. arXiv:2112.03570.
    .. [3] C. A. Choquette-Choo, F. Tramer, N. Carlini, N. Papernot. "Label-Only
       Membership Inference Attacks". ICML 2021. arXiv:2007.14321.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmia.audit import audit_defense, make_canaries
    >>> rng = np.random.default_rng(0)
    >>> X = rng.normal(size=(300, 5)); y = (X[:, 0] > 0).astype(int)
    >>> canaries = make_canaries(X, y, 20, random_state=0)
    >>> audit = audit_defense(LogisticRegression(), X, y, canaries=canaries, n_models=4,
    ...                       test_size=50, random_state=0)
    >>> audit.summary_["subset"].unique().tolist()
    ['canaries', 'others', 'all']
    """
    plan = _checked_plan(estimator, X, y, canaries, n_models, keep, test_size, augment,
                         random_state)
    fit_params = dict(fit_params or {})
    if test_as_reference:
        fit_params.update(X_reference=plan.X_test, y_reference=plan.y_test)
    labels = {"estimator": type(estimator).__name__, **(settings or {})}
    if out is not None:
        return _audit_folder(estimator, plan, n_models, out, fit_params, n_jobs, verbose,
                             labels)
    rounds = train_rounds(estimator, plan, range(plan.n_rounds(n_models)),
                          fit_params=fit_params, n_jobs=n_jobs, verbose=verbose)
    return assemble(plan, rounds, labels)


def _checked_plan(estimator, X, y, canaries, n_models, keep, test_size, augment,
                  random_state):
    """The plan of an audit, every argument checked (no training)."""
    plan = plan_audit(X, y, canaries=canaries, keep=keep, test_size=test_size,
                      augment=augment, random_state=random_state)
    check_n_models(n_models, plan.block)
    _check_estimator(estimator, plan)
    plan.check_rounds(plan.n_rounds(n_models))
    return plan


def check_audit_folder(out, estimator, X, y, *, canaries=None, n_models=64, keep=0.5,
                       test_size=0.2, augment=None, random_state=None):
    """Refuse, writing nothing, what ``audit_defense(..., out=out)`` would refuse.

    Takes the arguments :func:`audit_defense` would be called with. ``out`` is refused
    when its ``recipe.json`` is another recipe's, or when a round file in it is not a
    round of this audit (another plan, recipe or round; arrays modified; masks not
    those the audit's seed gives), each error naming the file; a folder that does not
    exist yet passes. Checks the folders of several recipes before auditing any.

    Raises
    ------
    ValueError, TypeError
        As :func:`audit_defense` before its training.
    """
    plan = _checked_plan(estimator, X, y, canaries, n_models, keep, test_size, augment,
                         random_state)
    checked_folder(out, estimator, plan, plan.n_rounds(n_models))


def _audit_folder(estimator, plan, n_models, out, fit_params, n_jobs, verbose, labels):
    """Audit into the folder ``out``: train its missing rounds (saving each group of
    ``n_jobs`` rounds as it finishes), then write its result and ``complete.json``."""

    n_rounds = plan.n_rounds(n_models)
    with RunDirectory(out).lock("audit"):
        folder, stamp, found = checked_folder(out, estimator, plan, n_rounds)
        folder.makedirs(AUDIT_FILES["rounds"])
        if not folder.is_file(AUDIT_FILES["recipe"]):
            folder.write_json(AUDIT_FILES["recipe"], document=recipe_document(estimator))
        missing = [r for r in range(n_rounds) if r not in found]
        if missing:
            folder.clear(COMPLETE)
        chunk = effective_jobs(n_jobs)  # rounds between two saves: one a worker
        for first in range(0, len(missing), chunk):
            todo = missing[first:first + chunk]
            results = train_rounds(estimator, plan, todo, fit_params=fit_params,
                                   n_jobs=n_jobs, verbose=verbose)
            for r, result in zip(todo, results, strict=True):
                save_round(folder, r, result, stamp)
        audit = assemble(plan, [load_round(folder, r, stamp) for r in range(n_rounds)],
                         labels)
        audit.save(folder.child(AUDIT_FILES["result"]))
        folder.mark_complete(document={"n_models": audit.n_models})
    return audit
