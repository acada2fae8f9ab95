"""Datasets: the real membership-inference benchmarks and seeded synthetic stand-ins.

Real data (downloaded to, or placed by hand in, the data home): :func:`fetch_texas100`,
:func:`fetch_purchase100`, :func:`fetch_location30`, and the images
:func:`fetch_cifar10`, :func:`fetch_cifar100` (normalised by :func:`normalize_cifar`).
Synthetic data of the same shapes, for quick experiments and tests:
:func:`make_purchase_like`, :func:`make_texas_like`.
:func:`load_dataset` maps the CLI's names onto them.
"""

from ._cifar import fetch_cifar10, fetch_cifar100, normalize_cifar
from ._fetch import CacheWarning, get_data_home
from ._load import DATASETS, load_dataset
from ._synthetic import make_purchase_like, make_texas_like
from ._tabular import fetch_location30, fetch_purchase100, fetch_texas100

__all__ = [
    "CacheWarning",
    "DATASETS",
    "fetch_cifar10",
    "fetch_cifar100",
    "fetch_location30",
    "fetch_purchase100",
    "fetch_texas100",
    "get_data_home",
    "load_dataset",
    "make_purchase_like",
    "make_texas_like",
    "normalize_cifar",
]
