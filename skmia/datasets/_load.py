"""``load_dataset``: one entry point for every dataset name the CLI and benchmarks use."""

from .. import _registry
from ._cifar import fetch_cifar10, fetch_cifar100
from ._synthetic import make_purchase_like, make_texas_like
from ._tabular import fetch_location30, fetch_purchase100, fetch_texas100

__all__ = ["load_dataset", "DATASETS"]

_FUNCTIONS = {f.__name__: f for f in (fetch_texas100, fetch_purchase100, fetch_location30,
                                      make_purchase_like, make_texas_like,
                                      fetch_cifar10, fetch_cifar100)}
# each name of the registry, with the function its record names
_LOADERS = {name: _FUNCTIONS[d.loader] for name, d in _registry.DATASETS.items()}

#: Every name :func:`load_dataset` knows, in the order the CLI lists them.
DATASETS = tuple(_LOADERS)


def load_dataset(name, **kwargs):
    """Load a dataset by the name the reference code and the CLI use.

    Parameters
    ----------
    name : {"texas", "purchase", "location", "purchase-like", "texas-like", \
"cifar10", "cifar100"}
        ``"texas"``, ``"purchase"`` and ``"location"`` are the real datasets
        (:func:`fetch_texas100`, :func:`fetch_purchase100`, :func:`fetch_location30`);
        ``"purchase-like"`` and ``"texas-like"`` are the *synthetic* stand-ins
        :func:`make_purchase_like` and :func:`make_texas_like`; ``"cifar10"`` and
        ``"cifar100"`` are :func:`fetch_cifar10` and :func:`fetch_cifar100` (images of
        shape (3, 32, 32)).
    **kwargs
        Passed to the loader (``data_home``, ``download_if_missing``, ``return_X_y`` for
        the real datasets; ``n_samples``, ``random_state``, ``return_X_y`` for the
        synthetic ones).

    Returns
    -------
    data : sklearn.utils.Bunch or tuple
        Whatever the loader returns.

    Examples
    --------
    >>> from skmia.datasets import load_dataset
    >>> X, y = load_dataset("purchase-like", n_samples=500, random_state=0, return_X_y=True)
    >>> X.shape
    (500, 600)
    """
    if not isinstance(name, str):
        raise TypeError(f"dataset name must be a string, got {type(name).__name__}")
    key = name.lower()
    if key not in _LOADERS:
        raise ValueError(f"unknown dataset {name!r}; choose one of {', '.join(DATASETS)}.")
    return _LOADERS[key](**kwargs)
