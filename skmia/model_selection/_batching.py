"""Whether and how a bank is batched (DESIGN §10): what the vectorised bank refuses, what
``vectorize="auto"`` trains model by model, its threads and its memory.

The defenses are reached only through what they declare (their ``_batched_loss``,
``_batched_refusal``, ``_batched_teacher``, and for a private step ``_batched_private``:
:mod:`skmia.model_selection._vectorized_dp`), so this module imports none.
"""

import numpy as np

# the memory of a bank has one owner (_memory); the batched engine reads it from here
from ._memory import available_memory, chunk_size, memory_refusal, training_bytes

__all__ = ["batching_refusal", "batched_threads", "group_threads",
           "available_memory", "memory_refusal", "training_bytes", "chunk_size"]


#: the skorch / skmia methods a defense must leave as the base class has them for its
#: training to be the batched one (the objective is ``training_loss`` / ``_batched_loss``)
_TRAINING_HOOKS = (
    "fit", "partial_fit", "fit_loop", "run_single_epoch", "train_step", "train_step_single",
    "get_loss", "infer", "get_iterator", "get_split_datasets", "initialize_module",
    "initialize_optimizer", "initialize_criterion", "on_batch_begin", "on_epoch_begin",
)
_MODULE_OPTIONS = {"n_features", "n_classes", "hidden_sizes", "activation", "dropout"}
_SGD_OPTIONS = {"momentum", "weight_decay", "dampening", "nesterov"}


def _owner(cls, name):
    return next(c for c in cls.__mro__ if name in vars(c))


def batching_refusal(estimator, X, fit_params):
    """Why ``estimator`` cannot be trained in a batched bank on ``X``, or None if it can.

    Batched: a skmia defense whose training step is a function of the batch (it
    declares ``_batched_loss`` beside its ``training_loss`` and keeps skorch's training
    loop, or declares its private step: ``_batched_private``), an :class:`skmia.nn.MLP`
    given as a class, plain SGD, the default cross-entropy criterion and iterator, no
    callbacks, no validation split, a 2-D table.
    """
    import torch
    from skorch.dataset import Dataset

    from ..nn import MLP

    cls, name = type(estimator), type(estimator).__name__
    if not callable(getattr(estimator, "_batched_loss", None)):
        if "_batched_loss" not in dir(cls):
            return f"{name} is not a skmia defense (a skorch network trained as one batch)"
        return f"{name} trains with a step of its own ({_declared_reason(cls)})"
    root = next(c for c in reversed(cls.__mro__) if "_batched_loss" in vars(c))
    loss_owner = _owner(cls, "_batched_loss")
    if callable(getattr(estimator, "_batched_private", None)):
        # a private step (DP-SGD) has a training loop of its own, which the class that
        # writes its batched objective declares batched: a subclass may not change it
        root = loss_owner
    if cls.__mro__.index(_owner(cls, "training_loss")) < cls.__mro__.index(loss_owner):
        return (f"{_owner(cls, 'training_loss').__name__}.training_loss has no batched "
                "form (_batched_loss)")
    changed = [h for h in _TRAINING_HOOKS if getattr(cls, h, None) is not getattr(root, h, None)]
    if changed:
        return f"{name} changes skorch's training loop ({', '.join(changed)})"
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
    reasons = [reason for ok, reason in checks if not ok]
    declared = getattr(estimator, "_batched_refusal", None)
    reasons += [r for r in ([declared()] if declared else []) if r]
    teacher = getattr(estimator, "_batched_teacher", None)
    teacher = teacher() if teacher else None
    if not reasons and teacher is not None:
        reasons += [f"its teacher: {r}" for r in [batching_refusal(teacher, X, {})] if r]
    return f"{name}: {reasons[0]}" if reasons else None


def batched_threads(estimator, n_jobs):
    """Torch threads of a batched bank asked ``n_jobs``: one on a CPU, whatever
    ``n_jobs`` (the other cores train groups of models at once: :func:`group_threads`;
    so the models do not depend on ``n_jobs``), else
    :func:`skmia._parallel.bank_threads`."""
    from .._parallel import bank_threads

    threads = bank_threads(n_jobs)  # warns above the cores, as asked
    device = str(estimator.get_params(deep=False).get("device") or "cpu")
    return 1 if device.startswith("cpu") else threads


def group_threads(n_jobs, torch_threads):
    """Threads that train groups of a batched bank at once (see :func:`fit_batched`):
    the cores ``n_jobs`` asks for, capped at the machine's, where each group runs on one
    torch thread (a CPU); else 1 (torch's own threads share the work)."""
    from .._parallel import effective_jobs, n_cores

    if torch_threads != 1:
        return 1
    return max(1, min(effective_jobs(n_jobs), n_cores()))


def _declared_reason(cls):
    for klass in cls.__mro__:
        if vars(klass).get("_batched_loss", 0) is None:
            changed = [h for h in ("train_step", "training_loss") if h in vars(klass)]
            return f"{klass.__name__} overrides {', '.join(changed) or '_batched_loss'}"
    return "no _batched_loss"
