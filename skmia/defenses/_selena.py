"""SELENA (Tang et al., USENIX Security 2022): Split-AI, then self-distillation."""

from numbers import Integral

import numpy as np
import torch
from sklearn.base import clone
from sklearn.utils.validation import check_is_fitted

from .._registry import SOFT_LABEL_SCHEDULE
from .._sklearn_compat import HasMethods, Interval, StrOptions
from ..nn import MLP
from ._base import CROSS_ENTROPY, MIADefenseClassifier, VanillaClassifier, in_memory_arrays
from ._hamp import SOFT_LABEL_OPTIMIZER, PaperLoopMixin, soft_label_kl
from ._outputs import query_seeds

__all__ = ["SELENAClassifier"]

# key of the hash that recognises training rows (not a secret: it only names rows)
_ROW_KEY = 0x5E1E7A


def _row_ids(X):
    return np.asarray(query_seeds(X, _ROW_KEY), dtype=np.uint64)


class SELENAClassifier(PaperLoopMixin, MIADefenseClassifier):
    """SELENA: a network distilled from Split-AI, an ensemble that answers each training
    record only with the sub-models that never saw it.

    *Split-AI.* ``n_models`` sub-models are trained, each training record left out of
    ``n_excluded`` of them (a random choice per record; the masks are
    :class:`~skmia.model_selection.ReferenceModels`' balanced ones, so every record is in
    exactly ``n_models - n_excluded``, and each sub-model gets about
    ``(n_models - n_excluded) / n_models`` of the rows, a random number around it). The
    sub-models train through :class:`~skmia.model_selection.ReferenceModels`, hence
    through joblib (``n_jobs``, Dask) like a bank of reference models. Split-AI answers
    a query that is a training record with the mean output of the ``n_excluded``
    sub-models that excluded it; any other query with the mean over ``n_excluded``
    sub-models chosen by a hash of the query (the paper's adaptive inference:
    deterministic, so repeating a query reveals nothing new). The mean is that of the
    sub-models' logits (softmaxed; ``average="logits"``, the paper's code) or of their
    probabilities. See :meth:`split_ai_proba`.

    *Self-distillation.* The released model is one network (``module_``) trained on the
    training records with Split-AI's outputs as soft targets::

        loss = KL(split_ai(x) ‖ softmax(z)) / C     (mean over records, as the paper's
                                                     code's ``F.kl_div``)

    ``predict_proba`` is that network's softmax.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=skmia.nn.MLP
        The released network; see :class:`MIADefenseClassifier`.
    n_models : int, default=25
        K, the number of sub-models (the paper's 25), at least 2.
    n_excluded : int, default=10
        L, the sub-models each training record is left out of (the paper's 10), in
        ``[1, n_models)``.
    estimator : classifier or None, default=None
        The sub-model, cloned ``n_models`` times. None: a :class:`VanillaClassifier` with
        this classifier's network, epochs, batch size and schedule, and vanilla's
        optimiser (SGD lr 0.1, momentum 0.9, weight decay 1e-4: the distillation's
        high learning rates diverge on hard labels).
    n_jobs : int or None, default=None
        Sub-models trained at once (joblib; each on one torch thread).
    lr : float, default=0.5
        The distillation's initial learning rate (the paper's code: 0.5, Location30
        1.0), with SGD momentum 0.99 and weight decay 1e-5 (the defaults of
        ``optimizer__momentum`` and ``optimizer__weight_decay`` here).
    max_epochs : int, default=100
        Epochs of the distillation and of the default sub-models.
    batch_size : int, default=64
        Mini-batch size of the distillation and of the default sub-models.
    milestones : sequence of int, default=(60, 90)
        Epochs at whose start the learning rates are multiplied by ``gamma`` (0.1).
    average : {"logits", "proba"}, default="logits"
        How Split-AI averages its sub-models: the mean of their logits, softmaxed (the
        paper's code), or the mean of their probabilities (a flatter soft target).
    paper_loop : bool, default=False
        The distillation in the paper's code's loop (one row order, momentum restarted
        every epoch); see :class:`~skmia.defenses.HAMPClassifier`.
    **kwargs
        Every other parameter of :class:`MIADefenseClassifier`: the distillation's.

    Attributes
    ----------
    submodels_ : list of fitted classifiers
        The Split-AI sub-models.
    in_mask_ : ndarray of bool of shape (n_train, n_models)
        ``in_mask_[i, k]``: training record ``i`` was in sub-model ``k``'s data.
    train_row_ids_ : ndarray of uint64 of shape (n_train,)
        A hash of each training record, by which Split-AI recognises one.

    Notes
    -----
    Threat model: a black-box adversary who queries the released network. SELENA
    promises that the released network's outputs on members look like outputs on
    non-members, because its soft targets on each member came from models that never
    saw it. A white-box adversary sees the same distilled weights; the sub-models are
    never released.

    The masks are drawn in blocks of ``n_models / gcd(n_models, n_excluded)`` models
    (:func:`~skmia.model_selection.balanced_masks`), so that every record is
    left out of exactly ``n_excluded`` sub-models; the number of rows of a sub-model is
    random (787–841 of Location30's 1,350 training rows at K = 25, L = 10), as in the
    paper's code, which draws each record's ``n_excluded`` sub-models uniformly from all
    ``n_models``.

    *Defaults and accuracy.* The distillation's defaults are the paper's code's (SGD lr
    0.5, momentum 0.99, weight decay 1e-5, batch 64, 100 epochs, ×0.1 at 60 and 90): its
    KL divided by ``C`` barely trains at vanilla's lr 0.1 (test accuracy 0.21 against
    vanilla's 0.63 on Location30 with 30 epochs of a 256-unit MLP). The released model
    learns Split-AI's answers, each from sub-models that did not see the record and
    trained on ``(n_models - n_excluded) / n_models`` of the rows: it can be no more
    accurate than such a model on unseen data. Where accuracy grows steeply with the
    training-set size, SELENA loses more than that share of rows suggests (purchase-like,
    1,000 rows: 0.71 against vanilla's 0.89 with the 30-epoch recipe;
    ``benchmarks/defense_defaults.py``, table in benchmarks/docs/defense_defaults.md), and on very
    few rows: with the full defaults on 200 Location30 members (sub-models of 120 rows)
    it ends 13 points below vanilla (0.225 against 0.355;
    ``tests/defenses/test_defaults_full.py``). Split-AI's accuracy on the training rows
    (:meth:`split_ai_proba`) estimates that bound before the distillation.

    *Against the paper's code* (Location30, 1,350 members; issue 30 measured 0.516
    against its 0.577): the paper's code trains its sub-models 50 epochs with plain SGD
    at lr 0.5 and keeps each one's best-validation epoch (300 held-out rows). A
    sub-model trained so is 3.5–5 points more accurate on the test rows than one of
    skmia's default recipe (0.546 and 0.550 against 0.511 and 0.498; 2–4 points at
    the last epoch), most of the gap; averaging logits or probabilities and the loop
    move it by less than a point (``benchmarks/paper_fidelity.py --part submodels``,
    benchmarks/docs/paper_fidelity.md). To train them as the paper does, pass ``estimator=``
    ``VanillaClassifier(lr=0.5, optimizer__momentum=0, optimizer__weight_decay=0,
    max_epochs=50, batch_size=64, milestones=())`` (last epoch; skmia takes no
    validation rows from the members).

    References
    ----------
    .. [1] X. Tang, S. Mahloujifar, L. Song, V. Shejwalkar, M. Nasr, A. Houmansadr,
       P. Mittal. "Mitigating Membership Inference Attacks by Self-Distillation Through
       a Novel Ensemble Architecture". USENIX Security 2022. arXiv:2110.08324.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skmia.defenses import SELENAClassifier
    >>> X, y = make_classification(200, n_features=10, random_state=0)
    >>> clf = SELENAClassifier(n_models=5, n_excluded=2, max_epochs=3,
    ...                        module__hidden_sizes=(16,), random_state=0).fit(X, y)
    >>> len(clf.submodels_), clf.in_mask_.sum(axis=1).tolist()[:3]
    (5, [3, 3, 3])
    """

    _parameter_constraints = {
        **MIADefenseClassifier._parameter_constraints,
        "criterion": [CROSS_ENTROPY],
        "n_models": [Interval(Integral, 2, None, closed="left")],
        "n_excluded": [Interval(Integral, 1, None, closed="left")],
        "estimator": [HasMethods(["fit", "predict_proba"]), None],
        "n_jobs": [Integral, None],
        "paper_loop": ["boolean"],
        "average": [StrOptions({"logits", "proba"})],
    }

    def __init__(self, module=MLP, *, n_models=25, n_excluded=10, estimator=None,
                 n_jobs=None, lr=SOFT_LABEL_SCHEDULE["lr"],
                 max_epochs=SOFT_LABEL_SCHEDULE["max_epochs"],
                 batch_size=SOFT_LABEL_SCHEDULE["batch_size"],
                 milestones=SOFT_LABEL_SCHEDULE["milestones"], average="logits",
                 paper_loop=False, **kwargs):
        super().__init__(module, lr=lr, max_epochs=max_epochs, batch_size=batch_size,
                         milestones=milestones, **{**SOFT_LABEL_OPTIMIZER, **kwargs})
        self.n_models = n_models
        self.n_excluded = n_excluded
        self.estimator = estimator
        self.n_jobs = n_jobs
        self.average = average
        self.paper_loop = paper_loop

    # ------------------------------------------------------------------ Split-AI

    def _check_params(self):
        super()._check_params()
        if self.n_excluded >= self.n_models:
            raise ValueError(
                f"n_excluded={self.n_excluded} must be below n_models={self.n_models}: "
                f"each training record must be in at least one sub-model."
            )

    def _setup(self, X, y, classes=None):
        from ..model_selection import ReferenceModels

        X, y = super()._setup(X, y, classes=classes)
        bank = ReferenceModels(
            self._submodel(), n_estimators=self.n_models,
            keep=(self.n_models - self.n_excluded) / self.n_models,
            n_jobs=self.n_jobs, random_state=self.init_seed_,
        ).fit(X, y)
        self.submodels_ = list(bank.estimators_)
        self.in_mask_ = np.asarray(bank.in_mask_, dtype=bool)
        self.train_row_ids_ = _row_ids(X)
        self._soft_targets = None
        return X, y

    def _submodel(self):
        """The sub-models' recipe, told every class of the training data: a rare class
        can be missing from a sub-model's part (each leaves ``n_excluded`` of
        ``n_models`` out per record), and its outputs must still cover every class."""
        if self.estimator is not None:
            model = clone(self.estimator)
            if "classes" in model.get_params(deep=False):
                model.set_params(classes=self.classes_)
            return model
        # the network, schedule and seed settings are shared; the optimiser is vanilla's
        # (the distillation's lr 0.5-1.0 with momentum 0.99 diverges on hard labels)
        own = {"n_models", "n_excluded", "estimator", "n_jobs", "callbacks", "lr", "optimizer",
               "average", "paper_loop"}
        params = {k: v for k, v in self.get_params(deep=False).items()
                  if k not in own and not k.startswith("optimizer__")}
        params["classes"] = self.classes_
        return VanillaClassifier(**params)

    def _submodel_proba(self, X):
        """``(n_models, n, C)``: each sub-model's probabilities, in ``classes_`` order."""
        out = []
        for model in self.submodels_:
            proba = np.asarray(model.predict_proba(X), dtype=np.float64)
            position = {c: i for i, c in enumerate(np.asarray(model.classes_).tolist())}
            out.append(proba[:, [position[c] for c in self.classes_.tolist()]])
        return np.stack(out)

    def split_ai_subsets(self, X):
        """The sub-models Split-AI averages for each query: ``(n, n_excluded)`` indices.

        A training record (recognised by a hash of its bytes) gets the sub-models whose
        data excluded it; any other query ``n_excluded`` sub-models drawn without
        replacement by a generator seeded with a hash of the query.
        """
        check_is_fitted(self, "submodels_")
        X = self._check_X(X, reset=False)
        ids = _row_ids(X)
        position = {int(v): i for i, v in enumerate(self.train_row_ids_.tolist())}
        subsets = np.empty((len(X), self.n_excluded), dtype=np.int64)
        for i, row_id in enumerate(ids.tolist()):
            row = position.get(int(row_id))
            if row is not None:
                subsets[i] = np.flatnonzero(~self.in_mask_[row])
            else:
                rng = np.random.default_rng(int(row_id))
                subsets[i] = np.sort(rng.choice(self.n_models, self.n_excluded, replace=False))
        return subsets

    def split_ai_proba(self, X):
        """Split-AI's answer to each query: its sub-models' outputs averaged.

        ``average="logits"``: the softmax of the mean of their logits (the paper's code;
        the normalised geometric mean of their probabilities); ``"proba"``: the mean of
        their probabilities.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Queries.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
        """
        subsets = self.split_ai_subsets(X)
        proba = self._submodel_proba(self._check_X(X, reset=False))
        rows = np.arange(len(subsets))[:, None]
        chosen = proba[subsets, rows]  # (n, n_excluded, C)
        if self.average == "proba":
            return chosen.mean(axis=1)
        # the mean of the logits, softmaxed: log-probabilities differ from the logits by a
        # constant per row, so their mean gives the same softmax
        mean_log = np.log(np.clip(chosen, np.finfo(np.float64).tiny, None)).mean(axis=1)
        mean_log -= mean_log.max(axis=1, keepdims=True)
        unnormalised = np.exp(mean_log)
        return unnormalised / unnormalised.sum(axis=1, keepdims=True)

    # ------------------------------------------------------------------ distillation

    def get_iterator(self, dataset, training=False):
        """Training batches of ``(X, row index)``; the index finds the soft target."""
        if not training:
            return super().get_iterator(dataset, training=False)
        X, _ = in_memory_arrays(dataset, "SELENAClassifier")
        X = np.asarray(X)
        soft = getattr(self, "_soft_targets", None)
        if soft is None or len(soft) != len(X):
            if not np.array_equal(_row_ids(X), self.train_row_ids_):
                raise ValueError(
                    "SELENAClassifier distils on the rows its sub-models were trained on, "
                    "in the same order; partial_fit got other rows. fit trains anew."
                )
            self._soft_targets = torch.as_tensor(self.split_ai_proba(X), dtype=torch.float32)
        batch_size = self.get_params_for("iterator_train").get("batch_size", self.batch_size)
        return self._training_batches(X, np.arange(len(X)), batch_size)

    def _batch_refusal(self, X, fit_params):
        """Not batched in a bank of reference models (its own sub-models are: they are
        a bank of :attr:`estimator`)."""
        return (f"{type(self).__name__} trains with a step of its own (distillation "
                "from Split-AI's outputs, row by row)")

    def training_loss(self, logits, targets, X):
        """KL from Split-AI's output on each row (``targets`` are row indices)."""
        soft = self._soft_targets[targets.cpu()].to(logits)
        return soft_label_kl(logits, soft)

    # ------------------------------------------------------------------ bookkeeping

    def _submodels_short(self):
        """Whether a sub-model stopped short of its epochs (skorch's fit swallows a
        KeyboardInterrupt, and the distillation would go on from it)."""
        return any(hasattr(m, "_training_finished") and not m._training_finished()
                   for m in getattr(self, "submodels_", ()))

    def _training_finished(self, epochs_ended=None):
        return super()._training_finished(epochs_ended) and not self._submodels_short()

    def _checkpoint_state(self):
        return None if self._submodels_short() else super()._checkpoint_state()

    # ------------------------------------------------------------------ saving (skmia.io)

    # the sub-models are saved whole (safetensors + JSON, as parts of this model), the
    # masks and row hashes as tensors
    _state_attributes = ("submodels_", "in_mask_", "train_row_ids_")

    def _saved_state(self):
        parts = {f"submodel_{k}": m for k, m in enumerate(getattr(self, "submodels_", ()))}
        tensors = {}
        if hasattr(self, "in_mask_"):
            tensors = {"in_mask": torch.as_tensor(self.in_mask_),
                       "train_row_ids": torch.as_tensor(self.train_row_ids_.view(np.int64))}
        return {"n_submodels": len(parts)}, tensors, parts

    def _restore_saved_state(self, values, tensors, estimators):
        n = values.get("n_submodels") if isinstance(values, dict) else None
        if not isinstance(n, int) or isinstance(n, bool) or set(values) != {"n_submodels"}:
            raise ValueError(f"a SELENAClassifier saves {{'n_submodels': int}}, got {values!r}")
        expected = {f"submodel_{k}" for k in range(n)}
        if set(estimators) != expected:
            raise ValueError(f"the saved sub-models are {sorted(estimators)}; expected "
                             f"submodel_0 .. submodel_{n - 1}")
        if set(tensors) != {"in_mask", "train_row_ids"}:
            raise ValueError(f"a SELENAClassifier saves the tensors in_mask and "
                             f"train_row_ids, got {sorted(tensors)}")
        mask, ids = tensors["in_mask"].numpy(), tensors["train_row_ids"].numpy()
        if (mask.dtype != bool or mask.ndim != 2 or mask.shape[1] != n
                or ids.dtype != np.int64 or ids.shape != (len(mask),)):
            raise ValueError(f"in_mask (shape {mask.shape}) and train_row_ids (shape "
                             f"{ids.shape}) do not describe {n} sub-models")
        self.submodels_ = [estimators[f"submodel_{k}"] for k in range(n)]
        self.in_mask_ = mask.copy()
        self.train_row_ids_ = ids.view(np.uint64).copy()

    def __getstate__(self):
        state = super().__getstate__()
        state["_soft_targets"] = None
        return state
