"""Experiments: run directories and the reference code's four modes (the CLI's library)."""

from ._compare import COMPARE_COLUMNS, compare
from ._persist import load_estimator, save_estimator
from ._runs import (
    IMAGE_DATASETS,
    IMAGE_MODELS,
    MODES,
    TABULAR_DATASETS,
    IncompleteRunError,
    RunConfig,
    RunInterrupted,
    RunLockedError,
    attack,
    load_run,
    method_classes,
    run,
    run_defaults,
    run_directory,
    train,
)

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
