"""skmia: membership-inference defenses and attacks as scikit-learn estimators.

The subpackages are imported on demand, so ``import skmia`` stays light; the public
names of each live in that subpackage (``skmia.datasets.fetch_location30``,
``skmia.model_selection.membership_split``, ``skmia.nn.MLP``).
"""

import importlib

__version__ = "0.1.0.dev0"

_SUBPACKAGES = (
    "attacks",
    "audit",
    "datasets",
    "defenses",
    "experiment",
    "metrics",
    "model_selection",
    "nn",
    "report",
)

# the thread policy of fits and audits (skmia._threads), imported on first use
_THREAD_POLICY = ("get_threads", "set_threads", "thread_limit")

__all__ = ["__version__", *_SUBPACKAGES, *_THREAD_POLICY]


def __getattr__(name):
    if name in _SUBPACKAGES:
        return importlib.import_module(f"skmia.{name}")
    if name in _THREAD_POLICY:
        return getattr(importlib.import_module("skmia._threads"), name)
    raise AttributeError(f"module 'skmia' has no attribute {name!r}")


def __dir__():
    return sorted(__all__)
