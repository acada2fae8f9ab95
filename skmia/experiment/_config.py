"""What defines a run (:class:`RunConfig`), checked once, here, before anything is written.

The registry views (datasets, methods, modes), the default settings of a method for a
dataset, the run directory's place and the estimator a run trains are derived from a
:class:`RunConfig` in this module only.
"""

import warnings
from dataclasses import dataclass, field
from pathlib import Path

from .. import _registry

__all__ = ["RunConfig", "MODES", "TABULAR_DATASETS", "IMAGE_DATASETS", "IMAGE_MODELS",
           "method_classes", "run_defaults", "run_directory", "check_config",
           "check_method_options"]

# views of skmia._registry, where the datasets, methods and their settings are written
MODES = _registry.MODES
TABULAR_DATASETS = tuple(n for n, d in _registry.DATASETS.items() if d.kind == "tabular")
IMAGE_DATASETS = tuple(n for n, d in _registry.DATASETS.items() if d.kind == "image")
IMAGE_MODELS = _registry.IMAGE_MODELS
SYNTHETIC_DATA_SEED = _registry.SYNTHETIC_DATA_SEED
#: the shadow model's training method in the attack modes
SHADOW_METHODS = ("vanilla", "same")
_SEED_MAX = 2**32 - 1  # numpy.random.seed's largest


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


@dataclass
class RunConfig:
    """Everything that defines a run of ``skmia run``.

    Parameters
    ----------
    dataset, method : str
        As in the CLI.
    seed : int
        Seed of the membership split and of training (0 to 2**32 - 1).
    model : str or None
        ``resnet20`` or ``vgg11_bn`` for CIFAR; None for tabular data.
    epochs : int or None
        Overrides the default number of epochs.
    overrides : dict
        Constructor arguments that override the defaults (``alpha``, ``upper``, ...).
    out : path-like
        Root of the run directories.
    data_home : path-like or None
        Where the datasets are.
    device : str
        ``"cpu"`` or ``"cuda"``.
    white_box : bool
        Run the gradient-norm attacks too.
    shadow_method : {"vanilla", "same"}
        The shadow model's training method in ``attack`` mode.
    verbose : int
        0: no progress bars; 1 (the default): progress bars and notes on stderr.
    n_jobs : int
        Models trained at the same time (the target and the shadow of a run, the
        reference models), through joblib; -1 for as many as there are cores. Each
        training runs on ``threads`` torch threads whatever ``n_jobs`` is, so the results
        do not depend on it.
    threads : int
        Torch threads of the target's and the shadow's trainings and of the attacks
        (reference models train on one thread each). One (the default) gives the
        same weights on any machine and keeps a busy machine from slowing the run by
        more than its share of the cores (benchmarks/thread_policy.py); more may change
        the last digits of the weights (matrix products add in another order).
    attacks : tuple of str
        Attacks calibrated without the shadow model, run after the reference code's
        (names of :data:`skmia.attacks.CALIBRATED_ATTACKS`: ``lira``, ``rmia``, ...).
    reference_models : int or None
        Size of the bank of reference models of ``lira``, ``rmia`` and ``attack_r``
        (see :func:`skmia.experiment._bank.reference_bank`).
    quiet, jobs : deprecated
        The former names of ``verbose=0`` and ``n_jobs`` (scikit-learn's names); they
        still work, with a ``FutureWarning``, and will be removed in skmia 0.3.
    """

    dataset: str
    method: str
    seed: int = 1000
    model: str | None = None
    epochs: int | None = None
    overrides: dict = field(default_factory=dict)
    out: str = "results"
    data_home: str | None = None
    device: str = "cpu"
    white_box: bool = True
    shadow_method: str = "vanilla"
    verbose: int = 1
    n_jobs: int = 1
    threads: int = 1
    attacks: tuple = ()
    reference_models: int | None = None
    quiet: bool | None = None
    jobs: int | None = None

    def __post_init__(self):
        if self.quiet is not None:
            _deprecated("quiet", "verbose=0")
            self.verbose, self.quiet = (0 if self.quiet else max(self.verbose, 1)), None
        if self.jobs is not None:
            _deprecated("jobs", "n_jobs")
            self.n_jobs, self.jobs = self.jobs, None

    @property
    def folder(self):
        """The target's run directory."""
        return run_directory(self.out, self.dataset, self.method, self.seed, self.model)

    @property
    def shadow_training_method(self):
        """The method the shadow of the attack modes trains with."""
        return self.method if self.shadow_method == "same" else "vanilla"


def _deprecated(old, new, stacklevel=4):
    warnings.warn(f"{old} is deprecated and will be removed in skmia 0.3; use {new} "
                  "(scikit-learn's name) instead", FutureWarning, stacklevel=stacklevel)


def run_directory(out, dataset, method, seed, model=None):
    """``<out>/<dataset>[/<model>]/<method>/seed<seed>``."""
    parts = [dataset, *([model] if model else []), method, f"seed{seed}"]
    return Path(out).joinpath(*parts)


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def check_config(config, mode=None):
    """Check every setting of ``config`` (and ``mode``) once; a ``ValueError`` naming the
    first wrong one. Nothing is written before this passed."""
    if not isinstance(config, RunConfig):
        raise TypeError(f"config must be a RunConfig, got {type(config).__name__}")
    if mode is not None and mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    if config.dataset not in _registry.DATASETS:
        raise ValueError(f"unknown dataset {config.dataset!r}; choose from "
                         f"{', '.join(_registry.DATASETS)}")
    methods = method_classes()
    if config.method not in methods:
        raise ValueError(f"unknown method {config.method!r}; choose from "
                         f"{', '.join(methods)}")
    if not _is_int(config.seed) or not 0 <= config.seed <= _SEED_MAX:
        raise ValueError(f"seed must be an integer in [0, {_SEED_MAX}], got {config.seed!r}")
    if config.epochs is not None and (not _is_int(config.epochs) or config.epochs < 1):
        raise ValueError(f"epochs must be a positive integer, got {config.epochs!r}")
    if config.model is not None and config.model not in IMAGE_MODELS:
        raise ValueError(f"model must be one of {', '.join(IMAGE_MODELS)} or None, got "
                         f"{config.model!r}")
    if config.shadow_method not in SHADOW_METHODS:
        raise ValueError(f"shadow_method must be one of {', '.join(SHADOW_METHODS)}, got "
                         f"{config.shadow_method!r}")
    check_jobs(config.n_jobs)
    if isinstance(config.verbose, bool) or not isinstance(config.verbose, int):
        raise ValueError(f"verbose must be an integer, got {config.verbose!r}")
    from .._parallel import check_threads

    check_threads(config.threads)
    check_device(config.device)
    check_calibrated(tuple(config.attacks), config.reference_models)


def check_device(device):
    """Refuse a CUDA device on a machine without one, before any run folder is made."""
    from ..defenses._base import check_device as check

    check(device)


def check_jobs(n_jobs):
    if not _is_int(n_jobs) or not (n_jobs >= 1 or n_jobs == -1):
        raise ValueError(f"n_jobs must be a positive integer or -1 (all cores), got "
                         f"{n_jobs!r}")


def check_calibrated(attacks, reference_models):
    """Check the names of the calibrated attacks and the bank size; True if a bank is needed."""
    from ..attacks import CALIBRATED_ATTACKS

    unknown = [name for name in attacks if name not in CALIBRATED_ATTACKS]
    if unknown:
        raise ValueError(f"unknown attack(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(CALIBRATED_ATTACKS)}")
    needs_bank = [name for name in attacks if CALIBRATED_ATTACKS[name][1]]
    if needs_bank and reference_models is None:
        raise ValueError(f"{', '.join(needs_bank)} calibrate(s) against reference models: "
                         "give their number (--reference-models K)")
    if reference_models is not None and (
        not _is_int(reference_models) or reference_models < 2 or reference_models % 2
    ):
        raise ValueError(
            "the number of reference models must be an even integer >= 2 (each audited "
            f"record is in half of them), got {reference_models!r}"
        )
    return bool(needs_bank)


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
    """What defines a trained model, comparable between runs (device and callbacks aside)."""
    return {k: repr(v) for k, v in sorted(clf.get_params(deep=False).items())
            if not k.startswith("_") and k not in ("callbacks", "device")}


def changed_settings(saved, current):
    """Settings keys whose values differ (only keys both record: a parameter that
    cannot be saved comes back as its default)."""
    if not isinstance(saved, dict):
        return ["estimator_params"]
    return sorted(k for k in set(saved) & set(current) if saved[k] != current[k])

