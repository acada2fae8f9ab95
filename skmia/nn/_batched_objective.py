"""What a defense's training objective sees of one step: the mini-batches of K models.

A defense writes its objective once, as
:meth:`~skmia.defenses.MIADefenseClassifier.training_objective` of K models' logits at
a time. skorch's loop calls it with K = 1 (one model, its batch
as skorch gives it); the batched bank (:mod:`skmia.model_selection._vectorized`) with
the K models it trains as one network, their batches padded to one width. The two
layouts differ only in how a model's rows are told from padding, which
:class:`ModelBatches` hides: an objective reduces per-record values with
:meth:`ModelBatches.mean` (or zeroes the padding with :meth:`ModelBatches.masked`) and
never looks at the padding itself.
"""

from functools import partial

import torch
import torch.nn.functional as F

__all__ = ["ModelBatches", "per_record", "batched_mean"]


def per_record(loss, logits, targets):
    """``loss(logits, targets)`` of a function of ``(n, C)`` logits and ``(n,)`` targets
    that returns one value per record, applied to ``(K, B, C)`` logits and ``(K, B)``
    targets: the ``(K, B)`` values of K models' batches."""
    n_models, n_rows, n_classes = logits.shape
    values = loss(logits.reshape(-1, n_classes), targets.reshape(-1))
    return values.reshape(n_models, n_rows)


def batched_mean(values, mask, counts):
    """Each model's mean of a ``(K, B)`` table of per-record values over its own rows:
    ``mask`` is 1 on the ``counts[k]`` rows of model ``k``'s batch and 0 on padding."""
    return (values * mask).sum(dim=1) / counts


class ModelBatches:
    """The mini-batches of K models at one training step.

    Parameters
    ----------
    models : sequence of MIADefenseClassifier
        The K models (clones of one recipe) whose batches these are.
    inputs : torch.Tensor or object
        The batches' records: ``(K, B, ...)`` for stacked batches; for one model in
        skorch's loop, its batch ``X`` as skorch gives it.
    epoch : int
        The epoch being trained, counted from 0 (the same for the K models).
    mask : torch.Tensor of shape (K, B) or None
        1 on each model's real rows, 0 on padding; None when there is no padding (one
        model in skorch's loop).
    counts : torch.Tensor of shape (K,) or None
        Real rows per model (at least 1; None where the objective takes no mean, as
        DP-SGD's per-record losses).
    cache : dict, default=None
        Kept while the K models train together (e.g. distillation's stacked teachers).
    """

    def __init__(self, models, inputs, epoch, mask=None, counts=None, cache=None):
        self.models = list(models)
        self.inputs = inputs
        self.epoch = int(epoch)
        self.mask = mask
        self.counts = counts
        self.cache = {} if cache is None else cache

    @classmethod
    def of_one(cls, model, X):
        """The batch ``X`` of ``model`` in skorch's loop (K = 1, no padding)."""
        return cls([model], X, model.current_epoch)

    @property
    def stacked(self):
        """Whether the batches are stacked and padded (the batched bank)."""
        return self.mask is not None

    def per_record(self, loss, logits, targets):
        """``loss`` of ``(n, C)`` logits and ``(n,)`` targets, one value per record,
        applied to ``(K, B, C)`` logits and ``(K, B)`` targets: ``(K, B)`` values."""
        return per_record(loss, logits, targets)

    def mean(self, values):
        """Each model's mean of ``(K, B)`` per-record values over its own rows: ``(K,)``.

        Without padding this is ``values.mean()`` of the one model's row, the very
        reduction skorch's loop computed before the objective had a batched form (so
        that its results are unchanged bit for bit); with padding, the masked sum over
        the real rows divided by their count."""
        if self.mask is None:
            return values.reshape(-1).mean().reshape(1)
        return batched_mean(values, self.mask, self.counts)

    def masked(self, values):
        """``(K, B)`` per-record values, zero on padding rows."""
        return values if self.mask is None else values * self.mask

    def criterion_mean(self, criterion, logits, targets):
        """The mean of ``criterion`` (a torch loss module) over each model's rows:
        ``(K,)``. Without padding, the criterion itself on the one model's batch (any
        loss, its own reduction); stacked, cross-entropy per record and
        :meth:`mean` (the batched bank trains only with plain
        ``torch.nn.CrossEntropyLoss``)."""
        if self.mask is None:
            return criterion(logits[0], targets[0]).reshape(1)
        if type(criterion) is not torch.nn.CrossEntropyLoss:
            raise TypeError("stacked batches train with plain torch.nn.CrossEntropyLoss, "
                            f"not {type(criterion).__name__}")
        ce = self.per_record(partial(F.cross_entropy, reduction="none"), logits, targets)
        return self.mean(ce)
