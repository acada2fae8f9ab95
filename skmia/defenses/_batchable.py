"""Whether K clones of a defense can be trained as one batched network (DESIGN §10).

The batched bank (:mod:`skmia.model_selection._vectorized`) trains K clones of one
recipe with skorch's epoch events (``notify``), the recipe's own
:meth:`~skmia.defenses.MIADefenseClassifier.training_objective` and one stacked
:class:`skmia.nn.MLP` trained by SGD. A defense says whether it can be trained so with
:meth:`BatchableTraining._batch_refusal`, which a subclass extends with ``super()``.
"""

import numpy as np
import torch
from skorch.callbacks import Callback
from skorch.dataset import Dataset

from ..nn import MLP, ModelBatches

__all__ = ["BatchableTraining"]

#: skorch's training loop, as a defense runs it one model at a time. The batched bank
#: runs these steps its own way for K models at once (its own batches, forward,
#: objective call and SGD step) and fires only the epoch events, so a class that
#: changes one of them trains differently alone: it is trained model by model. The
#: objective is the exception a defense may change: ``training_objective``, written
#: for K models, is what both loops call.
TRAINING_LOOP = (
    "fit", "partial_fit", "fit_loop", "run_single_epoch", "train_step",
    "train_step_single", "infer", "get_loss", "training_loss", "get_iterator",
    "on_batch_begin", "notify", "initialize_module", "initialize_optimizer",
    "initialize_criterion",
)
_BATCH_EVENTS = ("on_batch_begin", "on_batch_end", "on_grad_computed")
_MODULE_OPTIONS = {"n_features", "n_classes", "hidden_sizes", "activation", "dropout"}
_SGD_OPTIONS = {"momentum", "weight_decay", "dampening", "nesterov"}


class BatchableTraining:
    """Mixin of :class:`~skmia.defenses.MIADefenseClassifier`: its training objective,
    written once for K models, and whether clones of the recipe can be trained as one
    batched network."""

    #: The class whose training loop (:data:`TRAINING_LOOP`) the batched bank
    #: reproduces: :class:`~skmia.defenses.MIADefenseClassifier`'s, or
    #: :class:`~skmia.defenses.DPSGDClassifier`'s private step. Set on those classes.
    _batched_loop = None

    def training_loss(self, logits, targets, X):
        """The objective minimised on one training mini-batch in skorch's loop:
        :meth:`training_objective` of this one model (K = 1).

        A subclass whose objective has no batched form may override this instead of
        :meth:`training_objective`; it is then trained model by model in a bank
        (:meth:`_batch_refusal` says so).
        """
        batches = ModelBatches.of_one(self, X)
        return self.training_objective(logits[None], targets[None], batches)[0]

    def training_objective(self, logits, targets, batches):
        """The training objective of K models' mini-batches at once: ``criterion`` here.

        The one place a defense writes its objective. skorch's loop calls it with K = 1
        (:meth:`training_loss`); a bank of reference models trained as one network
        (:class:`~skmia.model_selection.ReferenceModels`) with K clones of this recipe,
        so that both train on the same objective by construction.

        Parameters
        ----------
        logits : torch.Tensor of shape (K, B, n_classes)
            Each model's outputs on its batch (padded to ``B`` rows when stacked).
        targets : torch.Tensor of shape (K, B)
            The encoded labels.
        batches : skmia.nn._batched_objective.ModelBatches
            The step's batches: ``epoch`` (from 0), ``models``, ``inputs``, and the
            reductions that tell a model's rows from padding (``mean``, ``masked``,
            ``criterion_mean``).

        Returns
        -------
        objective : torch.Tensor of shape (K,)
            Each model's objective on its own rows (a subclass may return per-record
            values instead, shape ``(K, B)``, as DP-SGD does).
        """
        return batches.criterion_mean(self.criterion_, logits, targets)

    def _batch_refusal(self, X, fit_params):
        """Why K clones of this recipe cannot be trained as one batched network on
        ``X`` with ``fit_params``, or None when they can.

        Here: a training loop of its own (:data:`TRAINING_LOOP` changed from
        ``_batched_loop``'s, or a callback acting on each batch), or a recipe the
        stacked network cannot run: a module other than the class
        :class:`skmia.nn.MLP`, an optimizer other than plain SGD, a criterion other
        than plain cross-entropy, callbacks, a validation split, its own dataset or
        iterator, a compiled module, fit parameters, records that are not rows of a
        2-D table. A subclass adds its own reasons: ``super()._batch_refusal(X,
        fit_params) or ...``, or returns its reason first when its training has no
        batched form at all.
        """
        return self._loop_refusal() or self._refusal(_recipe_reasons(self, X, fit_params))

    def _refusal(self, reasons):
        """The refusal of the first of ``reasons`` (None when there is none)."""
        reasons = [r for r in reasons if r]
        return f"{type(self).__name__}: {reasons[0]}" if reasons else None

    def _loop_refusal(self):
        # The one place where methods are compared by identity: a user's subclass that
        # overrides skorch's loop (fit_loop, train_step, ...) gives no other sign that
        # its training is not the one the batched bank reproduces, and training it
        # batched would silently drop what it changed.
        cls, loop = type(self), self._batched_loop
        name = cls.__name__
        if cls.training_loss is not loop.training_loss:
            return (f"{name}.training_loss has no batched form (training_objective): "
                    "its objective is written for skorch's loop only")
        changed = [m for m in TRAINING_LOOP if getattr(cls, m) is not getattr(loop, m)]
        if changed:
            return f"{name} changes skorch's training loop ({', '.join(changed)})"
        own = {n for n, _ in loop._default_callbacks.fget(self)}
        per_batch = [n for n, cb in self._default_callbacks if n not in own and any(
            getattr(type(cb), e) is not getattr(Callback, e) for e in _BATCH_EVENTS)]
        if per_batch:
            return (f"{name} acts on each batch (callback {per_batch[0]!r}), which the "
                    "batched network does not run one model at a time")
        return None


    def _epoch_end_reads_network(self):
        """Whether a callback may read this model's network or optimizer state at an
        epoch's end: the batched bank then writes them back from the stacked network
        before ``on_epoch_end`` (else once, when the training ends). skorch's and
        skmia's default callbacks do not; a callback a subclass adds does (such as
        early stopping's snapshots) unless its class says ``reads_network = False``."""
        base = {n for n, _ in self._batched_loop._default_callbacks.fget(self)}
        return any(getattr(cb, "reads_network", name not in base)
                   for name, cb in getattr(self, "callbacks_", ()))


def _recipe_reasons(estimator, X, fit_params):
    """What the stacked network cannot run in ``estimator``'s recipe, as reasons."""
    params = estimator.get_params(deep=False)
    checks = [
        (params.get("module") is MLP, "its module is not the class skmia.nn.MLP"),
        (set(estimator.get_params_for("module")) <= _MODULE_OPTIONS,
         "it sets module options other than " + ", ".join(sorted(_MODULE_OPTIONS))),
        (params.get("optimizer") is torch.optim.SGD, "its optimizer is not torch.optim.SGD"),
        (set(estimator.get_params_for("optimizer")) <= _SGD_OPTIONS,
         "it sets optimizer options other than " + ", ".join(sorted(_SGD_OPTIONS))),
        (params.get("criterion") is torch.nn.CrossEntropyLoss
         and not estimator.get_params_for("criterion"),
         "its criterion is not plain torch.nn.CrossEntropyLoss"),
        (not params.get("callbacks"), "it has callbacks"),
        (params.get("train_split") is None, "it has a validation split (train_split)"),
        (params.get("iterator_train") is torch.utils.data.DataLoader
         and params.get("dataset") is Dataset
         and set(estimator.get_params_for("iterator_train")) <= {"shuffle", "batch_size"},
         "it has its own dataset or iterator"),
        (not params.get("compile", False), "it compiles its module"),
        (not fit_params, f"fit parameters are passed ({', '.join(sorted(fit_params))})"),
        (np.ndim(X) == 2, "the records are not rows of a 2-D table"),
    ]
    return [reason for ok, reason in checks if not ok]
