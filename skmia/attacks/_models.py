"""The models compute_signals queries: torch modules, skorch nets, pipelines, any classifier.

:func:`resolve_target` says how a fitted model is queried: through a torch module (a
skmia defense, any skorch net, a :class:`torch.nn.Module`, or the last step of a
:class:`~sklearn.pipeline.Pipeline` whose earlier steps transform the records first), or
through a fitted classifier's ``predict_proba`` (its log-probabilities stand for logits)
or, where that is all it has, its ``decision_function``. torch is imported inside the
functions that need it.
"""

import numpy as np
from sklearn.exceptions import NotFittedError

from ._query import _resolve_model

__all__ = ["Target", "estimator_logits", "output_method", "resolve_target"]

#: How :func:`compute_signals` reads a model's outputs (``signals.attrs["outputs"]``).
OUTPUTS = ("logits", "predict_proba", "decision_function")


def _is_torch(model):
    """Whether ``model`` is a skorch net or a torch module (queried through its module)."""
    import torch

    try:
        from skorch import NeuralNet
    except ImportError:  # pragma: no cover - skorch is a dependency
        NeuralNet = ()
    return isinstance(model, torch.nn.Module) or bool(NeuralNet and isinstance(model, NeuralNet))


def output_method(model):
    """``"predict_proba"`` when the model has it, else ``"decision_function"``, else None."""
    for method in ("predict_proba", "decision_function"):
        if hasattr(model, method):  # available_if hides what the fitted model lacks
            return method
    return None


def estimator_logits(model, method, X):
    """``(n, C)`` float64 outputs of a fitted classifier that a softmax turns into its scores.

    ``predict_proba``: the log-probabilities (floored at the smallest positive float, so
    that a probability of 0 gives a large finite loss). ``decision_function``: the
    decisions themselves, ``(0, d)`` for a binary decision ``d`` (whose softmax is the
    sigmoid of ``d``, positive for ``classes_[1]``, as scikit-learn's binary decisions
    are).
    """
    out = np.asarray(getattr(model, method)(X), dtype=np.float64)
    if method == "decision_function" and out.ndim == 1:
        out = np.column_stack([np.zeros_like(out), out])
    if out.ndim != 2 or out.shape[0] != len(X):
        raise ValueError(
            f"{type(model).__name__}.{method} must return one row of class scores per "
            f"record, got shape {out.shape} for {len(X)} records."
        )
    if method == "predict_proba":
        return np.log(np.maximum(out, np.finfo(np.float64).tiny))
    return out


class Target:
    """How to query one fitted model (what :func:`resolve_target` returns).

    Attributes
    ----------
    net : skorch net or torch.nn.Module or None
        The torch model queried (the pipeline's last step for a pipeline), None for a
        classifier read through ``method``.
    module : torch.nn.Module or None
        Its module, whose outputs are the logits.
    transform : callable or None
        The earlier steps of a pipeline that ends in ``net``: records pass through it
        before the module sees them.
    estimator : fitted classifier or None
        The classifier read through ``method`` when there is no torch model.
    method : {"predict_proba", "decision_function"} or None
    classes : ndarray or None
        Labels in the order of the outputs, when the model records them.
    outputs : str
        One of :data:`OUTPUTS`: what the logit columns hold.
    """

    def __init__(self, *, net=None, module=None, transform=None, estimator=None,
                 method=None, classes=None):
        self.net, self.module, self.transform = net, module, transform
        self.estimator, self.method, self.classes = estimator, method, classes
        self.outputs = "logits" if module is not None else method

    @property
    def name(self):
        return type(self.net if self.net is not None else self.estimator).__name__


def _final_step(model):
    """The last step of a fitted Pipeline, or None when ``model`` is not one."""
    from sklearn.pipeline import Pipeline

    if isinstance(model, Pipeline) and model.steps:
        return model.steps[-1][1]
    return None


def resolve_target(model):
    """How to query ``model``: a :class:`Target`.

    Raises
    ------
    TypeError
        ``model`` is neither a torch model nor a classifier with ``predict_proba`` or
        ``decision_function``.
    NotFittedError
        It is not fitted.
    """
    if _is_torch(model):
        module, classes = _resolve_model(model)
        return Target(net=model, module=module, classes=classes)
    final = _final_step(model)
    if final is not None and _is_torch(final):
        module, classes = _resolve_model(final)
        return Target(net=final, module=module, classes=classes,
                      transform=model[:-1].transform)
    method = output_method(model)
    if method is None:
        raise TypeError(
            "model must be a fitted skorch net (a skmia defense, a NeuralNetClassifier), a "
            "torch.nn.Module returning logits, a Pipeline ending in one, or a fitted "
            "classifier with predict_proba or decision_function; got "
            f"{type(model).__name__}."
        )
    if hasattr(model, "fit"):
        from sklearn.utils.validation import check_is_fitted

        try:
            check_is_fitted(model)
        except NotFittedError:
            raise NotFittedError(
                f"This {type(model).__name__} is not fitted yet; fit it before computing "
                "its signals."
            ) from None
    return Target(estimator=model, method=method, classes=getattr(model, "classes_", None))


#: What compute_signals warns (and records) about a model read through decision_function.
DECISION_NOTE = (
    "{name} has no predict_proba: its signals come from decision_function, the decisions "
    "as logits (two classes: the sigmoid of the decision). proba_*, loss and score are "
    "therefore not the model's probabilities nor its training loss: attacks that rank "
    "records by them (AUC, TPR at low FPR) still measure the leak, but no calibrated "
    "probability or cross-entropy of this model can be computed, and thresholds learnt on "
    "another model's probabilities do not transfer"
)
