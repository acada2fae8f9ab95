"""``paper_defaults``: the reference code's settings per method and dataset.

The settings themselves are written in :mod:`skmia._registry`.
"""

import copy

from .. import _registry

__all__ = ["paper_defaults", "METHODS"]

#: Methods with a classifier in this version of skmia, by their reference-code names.
METHODS = tuple(_registry.METHODS)
# the datasets of the paper: those whose settings are their own
_PAPER_DATASETS = tuple(name for name, d in _registry.DATASETS.items()
                        if d.paper_dataset == name)


def paper_defaults(method, dataset, model=None):
    """Constructor arguments that reproduce the reference code for a method and dataset.

    Parameters
    ----------
    method : str
        Reference-code method name: one of :data:`METHODS`.
    dataset : {"texas", "purchase", "cifar10", "cifar100"}
        The dataset the paper trained on.
    model : {"resnet20", "vgg11_bn"} or None, default=None
        The network, for CIFAR only (the tabular datasets use :class:`skmia.nn.MLP`).

    Returns
    -------
    params : dict
        Keyword arguments for the method's classifier: the optimisation schedule
        (``max_epochs``, ``milestones``, ``lr``, ``gamma``, ``batch_size``, momentum and
        weight decay) and the method's own values (RelaxLoss ``alpha`` / ``upper``,
        ``penalty``, ``smoothing``, ``dropout``, ``snapshot_epochs``, ``temperature``
        and ``alpha`` of distillation, AdvReg's ``alpha`` and schedule, DP-SGD's
        ``noise_multiplier`` and ``max_grad_norm``). A fresh dict on each call.

    Examples
    --------
    >>> from skmia.defenses import RelaxLossClassifier, paper_defaults
    >>> params = paper_defaults("relaxloss", "purchase")
    >>> params["alpha"], params["upper"], params["max_epochs"], params["milestones"]
    (0.8, 0.3, 120, (50, 100))
    >>> clf = RelaxLossClassifier(**params)
    """
    if method not in METHODS:
        raise ValueError(f"unknown method {method!r}; choose one of {', '.join(METHODS)}.")
    kind = _paper_kind(dataset, model)
    values = _registry.METHODS[method].paper_values
    params = {**_registry.PAPER_SCHEDULES[kind], **_registry.PAPER_OPTIMIZER}
    params.update(values.get(kind, {}))
    params.update(values.get((dataset, model), {}))
    return copy.deepcopy(params)


def _paper_kind(dataset, model):
    """``"tabular"`` or ``"image"``: the data of a paper dataset, its ``model`` checked."""
    record = _registry.DATASETS.get(dataset) if isinstance(dataset, str) else None
    if record is None or dataset not in _PAPER_DATASETS:
        raise ValueError(
            f"no paper settings for dataset {dataset!r}; the paper trained on "
            f"{', '.join(_PAPER_DATASETS)}."
        )
    if not record.models and model is not None:
        raise ValueError(f"{dataset} uses the paper's MLP; model must be None, got {model!r}.")
    if record.models and model not in record.models:
        raise ValueError(
            f"{dataset} needs model= one of {', '.join(record.models)}, got {model!r}."
        )
    return record.kind
