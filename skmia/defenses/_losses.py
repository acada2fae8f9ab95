"""The training objectives of the defenses, as plain functions of logits and targets.

Each function takes ``logits`` of shape ``(n, C)`` and integer ``targets`` of shape
``(n,)`` and returns a scalar tensor to minimise, so each can be checked by hand.
"""

from functools import partial

import torch
import torch.nn.functional as F

__all__ = [
    "soft_cross_entropy",
    "flattened_targets",
    "relaxloss",
    "flattening_loss",
    "confidence_penalty_loss",
    "confidence_penalty_per_record",
    "label_smoothing_loss",
    "label_smoothing_per_record",
    "distillation_loss",
    "distillation_per_record",
]

FLATTEN_MODES = ("tabular", "image")


def soft_cross_entropy(logits, soft_targets):
    """Per-record cross-entropy against soft targets: ``-sum_c t_c log softmax(z)_c``."""
    return -(soft_targets * F.log_softmax(logits, dim=1)).sum(dim=1)


def flattened_targets(logits, targets, upper):
    """RelaxLoss's flattened posterior: ``t_y = min(p_y, upper)``, the rest shared evenly.

    The soft target keeps the predicted probability of the true class, capped at
    ``upper``, and spreads the remaining mass uniformly over the other ``C - 1`` classes.
    As in the reference code, ``t`` is built from the softmax *without* detaching it.
    """
    n_classes = logits.shape[1]
    p_true = F.softmax(logits, dim=1).gather(1, targets[:, None]).squeeze(1)
    t_true = torch.clamp(p_true, min=0.0, max=upper)
    t_other = (1.0 - t_true) / (n_classes - 1)
    onehot = F.one_hot(targets, n_classes).to(logits.dtype)
    return onehot * t_true[:, None] + (1.0 - onehot) * t_other[:, None]


def relaxloss(logits, targets, *, epoch, alpha, upper, flatten_mode="tabular", mean=None):
    """The RelaxLoss objective for one mini-batch (Chen et al., 2022, Algorithm 1).

    With ``L`` the batch-mean cross-entropy and epochs counted from 0: on even epochs
    ``|L - alpha|`` (gradient descent above ``alpha``, ascent below); on odd epochs ``L``
    while ``L > alpha``, else posterior flattening. Flattening (``"tabular"``, the
    reference's Texas/Purchase code): the batch mean of the soft-label cross-entropy
    against :func:`flattened_targets`. ``"image"`` (its CIFAR code): the batch mean of
    ``(1 - correct_i) * softCE_i - CE_i``, where ``correct_i`` says whether record ``i``
    is classified correctly.

    ``logits`` ``(n, C)`` and ``targets`` ``(n,)`` give a scalar. K models' batches,
    ``(K, B, C)`` and ``(K, B)``, give K objectives, each model taking the branch of its
    own ``L``: ``mean`` then reduces ``(K, B)`` per-record values to each model's mean
    over its own rows (default: over the last axis).
    """
    mean = mean if mean is not None else partial(torch.mean, dim=-1)
    n_classes = logits.shape[-1]
    rows_logits, rows_targets = logits.reshape(-1, n_classes), targets.reshape(-1)
    ce = F.cross_entropy(rows_logits, rows_targets, reduction="none")
    mean_ce = mean(ce.reshape(targets.shape))
    if epoch % 2 == 0:
        return (mean_ce - alpha).abs()
    flattening = flattening_loss(rows_logits, rows_targets, upper=upper,
                                 flatten_mode=flatten_mode, ce=ce)
    return torch.where(mean_ce > alpha, mean_ce, mean(flattening.reshape(targets.shape)))


def flattening_loss(logits, targets, *, upper, flatten_mode="tabular", ce=None):
    """RelaxLoss's posterior-flattening objective per record (its batch mean is the loss):
    the soft-label cross-entropy against :func:`flattened_targets` (``"tabular"``), or
    ``(1 - correct_i) * softCE_i - CE_i`` (``"image"``); ``ce``: the records' CE if known."""
    soft = soft_cross_entropy(logits, flattened_targets(logits, targets, upper))
    if flatten_mode == "tabular":
        return soft
    if flatten_mode == "image":
        if ce is None:
            ce = F.cross_entropy(logits, targets, reduction="none")
        correct = (logits.argmax(dim=1) == targets).to(logits.dtype)
        return (1.0 - correct) * soft - ce
    raise ValueError(f"flatten_mode must be one of {FLATTEN_MODES}, got {flatten_mode!r}")


def confidence_penalty_loss(logits, targets, *, penalty):
    """Cross-entropy minus ``penalty`` times the mean prediction entropy (Pereyra et al.)."""
    return confidence_penalty_per_record(logits, targets, penalty=penalty).mean()


def confidence_penalty_per_record(logits, targets, *, penalty):
    """Per record: cross-entropy minus ``penalty`` times the prediction's entropy."""
    log_p = F.log_softmax(logits, dim=1)
    neg_entropy = (log_p.exp() * log_p).sum(dim=1)
    return F.cross_entropy(logits, targets, reduction="none") + penalty * neg_entropy


def label_smoothing_loss(logits, targets, *, smoothing):
    """Cross-entropy against ``(1 - smoothing) * onehot + smoothing / C`` (all classes)."""
    return label_smoothing_per_record(logits, targets, smoothing=smoothing).mean()


def label_smoothing_per_record(logits, targets, *, smoothing):
    """Per record: cross-entropy against the smoothed label."""
    log_p = F.log_softmax(logits, dim=1)
    uniform = -log_p.mean(dim=1)
    nll = -log_p.gather(1, targets[:, None]).squeeze(1)
    return (1.0 - smoothing) * nll + smoothing * uniform


def distillation_loss(logits, targets, teacher_logits, *, temperature, alpha):
    """``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE`` (Hinton et al.).

    The KL divergence between the temperature-softened distributions is summed over
    classes and averaged over records (``reduction="batchmean"``), the mathematically
    proper mean. The reference code averages over records *and* classes, which scales the
    KL term down by the number of classes.
    """
    return distillation_per_record(logits, targets, teacher_logits, temperature=temperature,
                                   alpha=alpha).mean()


def distillation_per_record(logits, targets, teacher_logits, *, temperature, alpha):
    """Per record: ``alpha * T^2 * KL(teacher_T || student_T) + (1 - alpha) * CE``."""
    T = temperature
    kl = F.kl_div(
        F.log_softmax(logits / T, dim=1),
        F.log_softmax(teacher_logits / T, dim=1),
        reduction="none",
        log_target=True,
    ).sum(dim=1)
    return alpha * T * T * kl + (1.0 - alpha) * F.cross_entropy(logits, targets, reduction="none")
