"""Experiments: run directories and the reference code's four modes (the CLI's library).

One module per step: :mod:`._config` (:class:`RunConfig`, checked once),
:mod:`._train` (a run's training, reuse and checkpoints through :mod:`._checkpoint`),
:mod:`._run_bank` (the reference models), :mod:`._attack` (``attack/``), :mod:`._modes`
(:func:`run`), :mod:`._compare` and :mod:`._run_lock`. The files of a run are named and
read by :class:`skmia._rundir.RunDirectory` only.
"""

from ..io import load_estimator, save_estimator
from ._attack import attack
from ._checkpoint import RunInterrupted
from ._compare import COMPARE_COLUMNS, compare
from ._config import (
    IMAGE_DATASETS,
    IMAGE_MODELS,
    MODES,
    TABULAR_DATASETS,
    RunConfig,
    method_classes,
    run_defaults,
    run_directory,
)
from ._modes import run
from ._run_lock import RunLockedError
from ._train import IncompleteRunError, load_run, train

__all__ = [
    "COMPARE_COLUMNS",
    "IMAGE_DATASETS",
    "IMAGE_MODELS",
    "MODES",
    "TABULAR_DATASETS",
    "IncompleteRunError",
    "RunConfig",
    "RunInterrupted",
    "RunLockedError",
    "attack",
    "compare",
    "load_estimator",
    "load_run",
    "method_classes",
    "run",
    "run_defaults",
    "run_directory",
    "save_estimator",
    "train",
]
