"""What defines a run: the registry's views, the defaults of a method, the estimator.

:class:`RunConfig` and :class:`AuditConfig` (their settings, checked once by their
``check()``) are :mod:`skmia._settings`' classes, re-exported here. The registry
views (datasets, methods, modes), the default settings of a method for a dataset and
the estimator a run trains are derived from a :class:`RunConfig` in this module only.
"""

from .. import _registry
from .._rundir import run_folder
from .._settings import (
    SHADOW_METHODS,
    AuditConfig,
    RunConfig,
    check_calibrated,
    check_device,
    check_n_jobs,
    settings_error,
)

__all__ = ["RunConfig", "AuditConfig", "MODES", "TABULAR_DATASETS", "IMAGE_DATASETS",
           "IMAGE_MODELS", "method_classes", "run_defaults", "run_directory", "check_config",
           "check_method_options", "SHADOW_METHODS", "check_calibrated", "check_device",
           "check_n_jobs"]

# views of skmia._registry, where the datasets, methods and their settings are written
MODES = _registry.MODES
TABULAR_DATASETS = tuple(n for n, d in _registry.DATASETS.items() if d.kind == "tabular")
IMAGE_DATASETS = tuple(n for n, d in _registry.DATASETS.items() if d.kind == "image")
IMAGE_MODELS = _registry.IMAGE_MODELS
SYNTHETIC_DATA_SEED = _registry.SYNTHETIC_DATA_SEED


def method_classes():
    """``method name -> defense class`` for every method this skmia provides."""
    from .. import defenses

    names = {m: record.classifier for m, record in _registry.METHODS.items()}
    return {m: getattr(defenses, c) for m, c in names.items() if hasattr(defenses, c)}


def run_defaults(method, dataset, model=None):
    """Constructor arguments of ``method`` for ``dataset``: the paper's where it has them.

    Texas100, Purchase100 and CIFAR use :func:`skmia.defenses.paper_defaults`; the
    synthetic sets borrow the settings of the dataset they imitate; Location30 (not in
    the paper) borrows Purchase100's, with RelaxLoss at ``alpha=1, upper=0.6``
    (their records in ``skmia._registry``).
    """
    from ..defenses import paper_defaults

    record = _registry.DATASETS.get(dataset)
    params = paper_defaults(method, record.paper_dataset if record else dataset, model)
    if record is not None:
        params.update(record.method_values.get(method, {}))
    return params


def run_directory(out, dataset, method, seed, model=None):
    """``<out>/<dataset>[/<model>]/<method>/seed<seed>`` (:func:`skmia._rundir.run_folder`)."""
    return run_folder(out, dataset, method, seed, model)


def check_config(config, mode=None):
    """Check every setting of ``config`` (:meth:`RunConfig.check`) and ``mode`` once; a
    ``ValueError`` naming the first wrong one. Nothing is written before this passed."""
    if not isinstance(config, RunConfig):
        raise TypeError(f"config must be a RunConfig, got {type(config).__name__}")
    if mode is not None and mode not in MODES:
        raise settings_error("mode", f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    config.check()


def check_method_options(method_options, methods, dataset, model=None):
    """Check per-method constructor arguments (``{"dpsgd": {"target_epsilon": 8.0}}``):
    each method is one of ``methods`` and each name one its estimator takes; a copy, or
    a ``ValueError`` naming the unknown method or parameter and the valid ones."""
    if method_options is None:
        return {}
    if not isinstance(method_options, dict):
        raise TypeError("method_options must be a dict: method -> {parameter: value}, got "
                        f"{type(method_options).__name__}")
    checked = {}
    for method, params in method_options.items():
        if method not in methods:
            raise ValueError(f"options given for {method!r}, which is not compared (methods: "
                             f"{', '.join(methods)})")
        if not isinstance(params, dict):
            raise TypeError(f"the options of {method!r} must be a dict, got "
                            f"{type(params).__name__}")
        cls = method_classes()[method]
        valid = sorted(cls(**run_defaults(method, dataset, model)).get_params(deep=False))
        for name in params:
            prefix = name.split("__", 1)[0] if "__" in name else None
            if name not in valid and prefix not in _ROUTES:
                raise ValueError(
                    f"{method} ({cls.__name__}) has no parameter {name!r}; choose from "
                    f"{', '.join(v for v in valid if not v.startswith('_'))}, or a route "
                    f"such as module__hidden_sizes ({', '.join(p + '__' for p in _ROUTES)})")
        checked[method] = dict(params)
    return checked


#: skorch's routed parameters (``module__hidden_sizes``, ``optimizer__momentum``, ...)
_ROUTES = ("module", "optimizer", "criterion", "iterator_train", "iterator_valid",
           "dataset", "callbacks")


def estimator(config, method):
    """The unfitted estimator ``config`` trains for ``method`` (its defaults, the
    config's epochs and overrides, seed and device)."""
    params = run_defaults(method, config.dataset, config.model)
    overrides = dict(config.overrides) if method == config.method else {}
    if config.epochs is not None:
        params["max_epochs"] = config.epochs
        if "snapshot_epochs" in params and "snapshot_epochs" not in overrides:
            kept = [e for e in params["snapshot_epochs"] if e <= config.epochs]
            params["snapshot_epochs"] = tuple(kept) or (config.epochs,)
    if _registry.METHODS[method].classifier == "DPSGDClassifier":  # dpsgd, dpsgd_hu: the
        # noise must not be replayable from the run's seed
        params["secure_noise"] = True
    params.update(overrides)
    params.update(random_state=config.seed, device=config.device)
    if config.model is not None:
        from .. import nn

        params["module"] = getattr(nn, config.model)
    return method_classes()[method](**params)


def settings(clf):
    """What defines a trained model, comparable between runs
    (:func:`skmia.io.estimator_settings`)."""
    from ..io import estimator_settings

    return estimator_settings(clf)


def changed_settings(saved, current):
    """Settings keys whose values differ (only keys both record: a parameter that
    cannot be saved comes back as its default)."""
    if not isinstance(saved, dict):
        return ["estimator_params"]
    return sorted(k for k in set(saved) & set(current) if saved[k] != current[k])

