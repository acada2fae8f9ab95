"""The bank of reference models: clones of a classifier trained on balanced halves of a pool.

The attacks of Carlini et al. (LiRA) and Zarifzadeh et al. (RMIA) calibrate each audited
record against many models trained like the target, some with the record (IN) and some
without (OUT). :class:`ReferenceModels` trains that bank. It holds models, so it lives
here beside ``cross_validate``, never in ``skmia.attacks``; it imports no defense.
What every bank draws is in ``_draws.py``, its memory in ``_memory.py``; a block of models
is fitted by :func:`fit_models`, here, whoever trains it.
"""

import hashlib
import warnings
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, MetaEstimatorMixin, clone, is_classifier
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_is_fitted

from .._parallel import parallel_map, torch_threads
from .._sklearn_compat import HasMethods, Interval, StrOptions, _fit_context
from .._threads import with_thread_policy
from .._validation import check_records
from ._draws import bank_draws, base_seed, mask_block, pool_digest, unfinished_models
from ._memory import check_bank_memory

__all__ = ["ReferenceModels", "fit_model", "fit_models"]


def _same_setting(a, b):
    """Whether two values of an estimator parameter configure the same training (a
    clone's sub-objects are new objects: compared by their parameters or attributes)."""
    if a is b:
        return True
    if type(a) is not type(b):
        return False
    if isinstance(a, (list, tuple)):
        return len(a) == len(b) and all(map(_same_setting, a, b))
    if isinstance(a, dict):
        return a.keys() == b.keys() and all(_same_setting(a[k], b[k]) for k in a)
    if isinstance(a, np.ndarray):
        return np.array_equal(a, b)
    if hasattr(a, "get_params") and not isinstance(a, type):
        return _same_setting(a.get_params(deep=False), b.get_params(deep=False))
    if type(a).__eq__ is object.__eq__ and hasattr(a, "__dict__"):
        return _same_setting(vars(a), vars(b))
    try:
        return bool(a == b)
    except (TypeError, ValueError):
        return False


def fit_model(estimator, X, y, mask, seed, fit_params=None):
    """Fit a fresh clone of ``estimator`` on the rows ``mask`` of ``(X, y)``.

    Parameters
    ----------
    estimator : classifier
        The recipe; cloned, and given ``random_state=seed`` when it has one.
    X, y : ndarray
        The pool.
    mask : ndarray of bool of shape (n_samples,)
        The model's rows.
    seed : int
        Its ``random_state``.
    fit_params : dict, default=None
        Passed to ``fit``.

    Returns
    -------
    model : fitted classifier

    Raises
    ------
    KeyboardInterrupt
        skorch's ``fit`` ended quietly on a Ctrl-C (no next model starts).
    """
    model = clone(estimator)
    if "random_state" in model.get_params(deep=False):
        model.set_params(random_state=seed)
    model.fit(X[mask], y[mask], **(fit_params or {}))
    if unfinished_models([model]):  # skorch's fit ended quietly on a Ctrl-C: no next model
        raise KeyboardInterrupt("a reference model stopped short of its epochs")
    return model


def fit_models(estimator, X, y, masks, seeds, *, fit_params=None, batched="auto",
               n_jobs=None, verbose=0, desc="reference models"):
    """Fit one clone of ``estimator`` per column of ``masks``: a block of a bank.

    What :meth:`ReferenceModels.fit` trains, the rounds of
    :func:`skmia.audit.audit_defense` and the runs of :func:`skmia.audit.audit_dp_runs`
    all go through here: as one batched network (:func:`batching_refusal` accepts the
    recipe; the models on one torch thread each, in groups on ``n_jobs`` threads), or
    model by model (:func:`fit_model`, ``n_jobs`` at once through joblib).

    Parameters
    ----------
    estimator : classifier
        The recipe.
    X, y : ndarray
        The pool.
    masks : ndarray of bool of shape (n_samples, K)
        Each model's rows.
    seeds : sequence of int
        Each model's ``random_state`` (:func:`bank_draws`).
    fit_params : dict, default=None
        Passed to every model's ``fit`` (model by model only).
    batched : {"auto", True, False}, default="auto"
        ``"auto"``: batched when :func:`batching_refusal` accepts the recipe.
    n_jobs : int, default=None
        Cores (None: 1, -1: all).
    verbose : int, default=0
        A progress bar when > 0.
    desc : str, default="reference models"
        The bar's label (model by model).

    Returns
    -------
    models : list of K fitted classifiers
        Batched models equal the same models fitted alone to float32 rounding. A model
        a Ctrl-C ended early is returned as it is (:func:`unfinished_models` finds it)
        when batched; model by model, the Ctrl-C propagates.
    """
    fit_params, seeds = dict(fit_params or {}), [int(seed) for seed in seeds]
    if batched == "auto":
        from ._batching import batching_refusal

        batched = batching_refusal(estimator, X, fit_params) is None
    if batched:
        from ._batching import batched_threads, group_threads
        from ._vectorized import fit_batched

        threads = batched_threads(estimator, n_jobs)
        with torch_threads(threads):  # one on a CPU: there groups take the threads
            return fit_batched(estimator, X, y, masks, seeds,
                               n_threads=group_threads(n_jobs, threads), verbose=verbose)
    tasks = [(estimator, X, y, mask, seed, fit_params)
             for mask, seed in zip(masks.T, seeds, strict=True)]
    return parallel_map(fit_model, tasks, n_jobs=n_jobs, verbose=verbose, desc=desc,
                        only_if_it_pays=True)


class ReferenceModels(MetaEstimatorMixin, BaseEstimator):
    """A bank of reference models: clones of a classifier, each trained on part of a pool.

    ``fit(X, y)`` trains ``n_estimators`` clones of ``estimator``, each on its own subset
    of the pool, chosen so that every record is in exactly ``keep * n_estimators`` of them
    (balanced masks, as in Carlini et al.'s code, not independent coin flips). The bank
    is what LiRA, RMIA and Attack-R calibrate against: pass it to
    :func:`skmia.attacks.compute_signals` as ``reference=bank``.

    Parameters
    ----------
    estimator : classifier
        The model to train, configured as the target was (a skmia defense, or any
        scikit-learn classifier). Cloned, never modified; each clone gets its own
        ``random_state`` when it has one.
    n_estimators : int, default=16
        Number of reference models; ``keep * n_estimators`` must be a whole number.
    keep : float, default=0.5
        Fraction of the models each record is in, in ``(0, 1)``.
    warm_start : bool, default=False
        When True and the bank is fitted, ``fit`` with a larger ``n_estimators`` trains
        only the new models and keeps the others and their masks; the pool must be the
        same. The result equals a bank fitted at the final size.
    n_jobs : int, default=None
        Cores to use (None: 1, -1: all). A vectorised bank trains in this process on
        ``n_jobs`` torch threads (capped at the machine's cores); otherwise models train
        at once through joblib, at most one worker per model, each model on one torch
        thread (inside ``joblib.parallel_config(backend="dask")`` on a Dask cluster), so
        results never depend on ``n_jobs`` or on the backend. Worker processes are
        started only when the training is long enough to pay for them.
    random_state : int, RandomState instance or None, default=None
        Draws the masks and one seed per model.
    verbose : int, default=0
        A progress bar over models when > 0.
    vectorize : {"auto", True, False}, default="auto"
        Train the models as one batched network (weights stacked on a model axis, one
        forward and backward per step for all of them), each on its own rows, seed,
        momentum and schedule: what a skmia defense whose step is a function of the
        batch (vanilla, RelaxLoss, confidence penalty, label smoothing, dropout, early
        stopping) or DP-SGD (each model its own Poisson batches, per-record clipping,
        noise and accountant) allows with :class:`skmia.nn.MLP` and SGD. ``"auto"``
        does where it can (on a CPU and on CUDA, every size of MLP: batched was the
        faster path for the paper's 1.1 M-weight MLP too) and trains model by model
        otherwise (AdvReg, distillation with a teacher, DP-SGD with
        ``grad_sample_mode="hooks"``, other networks, scikit-learn classifiers);
        True refuses what it cannot batch, saying why; False always trains model by
        model. Each model equals the same model
        trained alone to float32 rounding, not bit for bit.

    Attributes
    ----------
    estimators_ : list of fitted classifiers
        The reference models, in order.
    in_mask_ : ndarray of bool of shape (n_samples, n_estimators)
        ``in_mask_[i, k]``: record ``i`` of the pool is in model ``k``'s training subset.
    seeds_ : ndarray of int64 of shape (n_estimators,)
        The ``random_state`` given to each model.
    base_seed_ : int
        The seed every mask and model seed is derived from.
    classes_ : ndarray of shape (n_classes,)
        The pool's labels, sorted; every model saw every one of them.
    n_features_in_ : int
        Number of features (values per record) of the pool.
    input_shape_ : tuple of int
        Shape of one record.
    pool_digest_ : str
        SHA-256 of the pool, to refuse a warm start on other data.

    Notes
    -----
    Threat model: the adversary can train models like the target on data from the same
    distribution. Online attacks need the audited records in the pool (each is IN half
    of the models); offline attacks use OUT models only, so the pool may be disjoint
    from the audited records.

    References
    ----------
    .. [1] N. Carlini, S. Chien, M. Nasr, S. Song, A. Terzis, F. Tramèr. "Membership
       Inference Attacks From First Principles". IEEE S&P 2022. arXiv:2112.03570.
    .. [2] S. Zarifzadeh, P. Liu, R. Shokri. "Low-Cost High-Power Membership Inference
       Attacks". ICML 2024. arXiv:2312.03262.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmia.model_selection import ReferenceModels
    >>> X, y = make_classification(40, n_features=5, random_state=0)
    >>> bank = ReferenceModels(LogisticRegression(), n_estimators=4, random_state=0)
    >>> bank = bank.fit(X, y)
    >>> bank.in_mask_.shape, bank.in_mask_.sum(axis=1).tolist()[:5]
    ((40, 4), [2, 2, 2, 2, 2])
    """

    _parameter_constraints = {
        "estimator": [HasMethods(["fit", "predict"])],
        "n_estimators": [Interval(Integral, 1, None, closed="left")],
        "keep": [Interval(Real, 0, 1, closed="neither")],
        "warm_start": ["boolean"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "verbose": ["verbose"],
        "vectorize": [StrOptions({"auto"}), "boolean"],
    }

    def __init__(self, estimator, n_estimators=16, *, keep=0.5, warm_start=False,
                 n_jobs=None, random_state=None, verbose=0, vectorize="auto"):
        self.estimator = estimator
        self.n_estimators = n_estimators
        self.keep = keep
        self.warm_start = warm_start
        self.n_jobs = n_jobs
        self.random_state = random_state
        self.verbose = verbose
        self.vectorize = vectorize

    @_fit_context(prefer_skip_nested_validation=False)
    @with_thread_policy
    def fit(self, X, y, **fit_params):
        """Train the models that are missing (all of them, unless warm-starting).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            The pool: a table or a batch of images.
        y : array-like of shape (n_samples,)
            Its labels.
        **fit_params
            Passed to every model's ``fit`` as they are (for example AdvReg's
            ``X_reference`` and ``y_reference``, so that the models train as the target
            did).

        Returns
        -------
        self : object
            The fitted bank.

        Raises
        ------
        KeyboardInterrupt
            A Ctrl-C stopped the training (vectorised, on threads or one, or model by
            model, where skorch's ``fit`` would end quietly). The bank keeps the models
            that finished, in whole mask blocks (``fit`` with ``warm_start=True`` trains
            the rest); with none finished it is not fitted.
        ValueError
            The masks and models would not fit in memory (the message gives the
            estimate), before anything of the bank changes or trains.
        """
        self._check_estimator_and_size()
        X, y = self._check_pool(X, y)
        digest = pool_digest(X, y)
        warm = self.warm_start and hasattr(self, "estimators_")
        start = self._check_warm_start(X, digest) if warm else 0
        if start == self.n_estimators:
            return self
        refusal = self._batching_refusal(X, fit_params)
        # before anything of the bank changes
        check_bank_memory(len(y), self.n_estimators, start=start,
                          subject=f"n_estimators={self.n_estimators:,}")
        if not warm:
            self.estimators_, self.in_mask_ = [], np.zeros((len(y), 0), dtype=bool)
            self.seeds_ = np.zeros(0, dtype=np.int64)
            self.base_seed_ = base_seed(self.random_state)
            self.classes_ = np.unique(y)
            self.input_shape_ = tuple(int(d) for d in X.shape[1:])
            self.n_features_in_ = int(np.prod(self.input_shape_))
            self.pool_digest_ = digest
        masks, seeds = bank_draws(len(y), self.n_estimators, self.keep, self.base_seed_,
                                  start=start)
        self._check_every_class(y, masks, start)
        try:
            fitted = self._fit_models(X, y, masks, seeds, refusal, fit_params)
        except KeyboardInterrupt:  # one by one: the models of this call are lost
            self._keep_finished([], masks, seeds, start)
            raise
        self._keep_finished(fitted, masks, seeds, start)
        return self

    def _fit_models(self, X, y, masks, seeds, refusal, fit_params):
        """The models of the columns of ``masks``: one batched network, or one by one."""
        return fit_models(self.estimator, X, y, masks, seeds, fit_params=fit_params,
                          batched=refusal is None, n_jobs=self.n_jobs, verbose=self.verbose)

    def _keep_finished(self, fitted, masks, seeds, start):
        """Add the models of ``fitted`` to the bank; when a Ctrl-C ended some short of
        their epochs (skorch's ``fit`` and the batched bank end quietly), keep the
        finished whole blocks before the first such model and raise KeyboardInterrupt:
        ``fit`` with ``warm_start=True`` trains the rest."""
        short = unfinished_models(fitted)
        if len(fitted) == masks.shape[1] and not short:
            kept = len(fitted)
        else:
            first = short[0] if short else len(fitted)
            kept = first - first % mask_block(self.keep)
        self.estimators_ = [*self.estimators_, *fitted[:kept]]
        self.in_mask_ = np.concatenate([self.in_mask_, masks[:, :kept]], axis=1)
        self.seeds_ = np.concatenate([self.seeds_, seeds[:kept]])
        if kept == masks.shape[1]:
            return
        n_have = start + kept
        if not n_have:  # nothing finished: the bank is not fitted
            for name in ("estimators_", "in_mask_", "seeds_", "base_seed_", "classes_",
                         "input_shape_", "n_features_in_", "pool_digest_"):
                vars(self).pop(name, None)
        raise KeyboardInterrupt(
            "interrupted: reference models stopped short of their epochs (a Ctrl-C); "
            f"{n_have} of the {self.n_estimators} reference models finished"
            + (" and are kept in the bank; fit again with warm_start=True to train the rest"
               if n_have else "; the bank is not fitted"))

    # ------------------------------------------------------------------ checks
    def _check_estimator_and_size(self):
        if not is_classifier(self.estimator):
            raise TypeError(
                "ReferenceModels trains classifiers: estimator must be a scikit-learn "
                f"classifier (such as a skmia defense), got {type(self.estimator).__name__}."
            )
        n_in = self.keep * self.n_estimators
        if abs(n_in - round(n_in)) > 1e-9 or round(n_in) < 1:
            raise ValueError(
                f"keep * n_estimators must be a whole number >= 1, so that every record is "
                f"in the same number of models; got keep={self.keep} * n_estimators="
                f"{self.n_estimators} = {n_in:g}."
            )

    def _batching_refusal(self, X, fit_params):
        """None when the models train as one batched network, else why they do not
        (a ValueError with it when ``vectorize=True``)."""
        if self.vectorize is False:
            return "vectorize=False"
        from ._batching import batching_refusal

        refusal = batching_refusal(self.estimator, X, fit_params)
        if refusal is not None and self.vectorize is True:
            raise ValueError(
                f"vectorize=True, but this recipe cannot be trained as one batched network: "
                f"{refusal}. Use vectorize='auto' to train such models one by one.")
        return refusal

    def _check_pool(self, X, y):
        X, y = check_records(X, y, estimator=self)
        check_classification_targets(y)
        return X, y

    def _check_warm_start(self, X, digest):
        check_is_fitted(self)
        start = len(self.estimators_)
        if self.n_estimators < start:
            raise ValueError(
                f"n_estimators={self.n_estimators} must be larger or equal to "
                f"len(estimators_)={start} when warm_start==True."
            )
        recipe = self.estimators_[0].get_params(deep=False) if start else {}
        current = self.estimator.get_params(deep=False)
        ignored = ("random_state", "verbose")  # each model's own seed; no effect on training
        for key in sorted(k for k in recipe if k[0] != "_" and k not in ignored):
            if not _same_setting(recipe[key], current.get(key)):
                raise ValueError(
                    f"warm_start=True grows the bank with the recipe it was fitted with, but "
                    f"the estimator's {key} changed since: {recipe[key]!r} -> "
                    f"{current.get(key)!r}. Set it back, or fit a new bank.")
        if digest != self.pool_digest_:
            raise ValueError(
                "warm_start=True grows the bank on the pool it was fitted on, but X or y "
                f"differ from that pool ({len(self.in_mask_)} records); fit a new bank, or "
                "pass the same pool."
            )
        q = mask_block(self.keep)
        if start % q:
            raise ValueError(
                f"the fitted bank has {start} models, not a multiple of {q}: it cannot be "
                f"grown with keep={self.keep} and stay balanced."
            )
        if start == self.n_estimators:
            warnings.warn(
                "Warm-start fitting without increasing n_estimators does not fit new models.",
                UserWarning,
                stacklevel=3,
            )
        return start

    def _check_every_class(self, y, masks, start):
        """Refuse a pool in which some model's subset would miss a class (unless the
        estimator is told every class through its ``classes`` parameter, as skmia's
        defenses are: then each model outputs every class, seen or not)."""
        declared = (self.estimator.get_params(deep=False).get("classes")
                    if hasattr(self.estimator, "get_params") else None)
        if declared is not None and not len(np.setdiff1d(self.classes_, declared)):
            return
        for k, mask in enumerate(masks.T, start=start):
            missing = np.setdiff1d(self.classes_, y[mask])
            if len(missing):
                counts = {c: int(np.sum(y == c)) for c in missing[:3].tolist()}
                raise ValueError(
                    f"reference model {k}'s subset of the pool lacks class(es) "
                    f"{missing[:5].tolist()} (records in the pool: {counts}); every "
                    f"reference model must see every class: give a pool with more records "
                    f"of these classes, or a larger keep."
                )

    # ------------------------------------------------------------------ helpers
    def head(self, k):
        """A fitted bank of the first ``k`` models of this one.

        The masks of a bank's first models do not depend on how many follow, so the
        result is the bank that ``n_estimators=k`` with the same ``random_state`` gives:
        its models (shared with this bank, not copied), masks, seeds and pool digest.

        Parameters
        ----------
        k : int
            Number of models, from 1 to ``len(estimators_)``, with ``keep * k`` whole.

        Returns
        -------
        bank : ReferenceModels
            A new fitted bank with ``n_estimators=k``.
        """
        check_is_fitted(self)
        n_in = self.keep * k if isinstance(k, Integral) and not isinstance(k, bool) else None
        if (n_in is None or not 1 <= k <= len(self.estimators_)
                or abs(n_in - round(n_in)) > 1e-9 or round(n_in) < 1):
            raise ValueError(
                f"head(k) takes a whole number of models from 1 to {len(self.estimators_)} "
                f"with keep * k whole (keep={self.keep}), got {k!r}.")
        bank = clone(self).set_params(n_estimators=int(k))
        for name in ("classes_", "n_features_in_", "input_shape_", "pool_digest_",
                     "base_seed_"):
            setattr(bank, name, getattr(self, name))
        bank.estimators_ = list(self.estimators_[:k])
        bank.in_mask_ = self.in_mask_[:, :k].copy()
        bank.seeds_ = self.seeds_[:k].copy()
        return bank

    def fingerprint(self):
        """A short string that identifies this fitted bank (its masks and model seeds).

        Signals computed against the bank carry it, so that attacks can refuse to mix
        signals of different banks.
        """
        check_is_fitted(self)
        digest = hashlib.sha256(np.packbits(self.in_mask_).tobytes())
        digest.update(np.asarray(self.seeds_, dtype=np.int64).tobytes())
        return digest.hexdigest()[:16]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags
