"""The settings of a run and of the audits: one base, one vocabulary, one check.

:class:`Settings` holds what every command shares (``dataset``, ``seed``, ``epochs``,
``out``, ``data_home``, ``device``, ``n_jobs``); :class:`RunConfig` (``skmia run``,
``compare``), :class:`AuditConfig` (``skmia audit``) and :class:`DPAuditConfig`
(``skmia audit-dp``) derive from it and add their own. The names are scikit-learn's:
``n_jobs`` (as joblib reads it, see :func:`skmia._parallel.effective_jobs`), ``verbose``
(0: quiet), ``threads`` (torch threads). ``jobs=`` and ``quiet=``, their former names,
were removed in skmia 0.3: passing them is a ``TypeError`` that names the new keyword.

``config.check()`` checks every setting once, before anything is read or written: a
``ValueError`` (a wrong value) or ``TypeError`` (a wrong type) whose message starts with
the setting's name (or "give" it), and whose ``field`` attribute is that name. The ``skmia`` command
checks its options with it, and turns such an error into a usage error (exit status 2)
naming the option (:func:`skmia.cli.main`); it repeats no check.

This module imports :mod:`skmia._registry` and :mod:`skmia._rundir` only, so the
command refuses a wrong option before it imports torch. Re-exported by
:mod:`skmia.experiment`.
"""

from dataclasses import KW_ONLY, dataclass, field
from os import PathLike

from . import _registry
from ._rundir import audit_folder, run_folder

__all__ = ["AuditConfig", "DPAuditConfig", "REMOVED_KEYWORDS", "RunConfig", "Settings",
           "check_calibrated", "check_device", "check_n_jobs", "refuse_removed",
           "settings_error"]

_SEED_MAX = 2**32 - 1  # numpy.random.seed's largest
#: the shadow model's training method in the attack modes
SHADOW_METHODS = ("vanilla", "same")
#: keywords removed in skmia 0.3 -> what replaces them
REMOVED_KEYWORDS = {"jobs": "n_jobs", "quiet": "verbose=0"}


def settings_error(name, message, kind=ValueError):
    """``kind(message)`` about the setting ``name`` (its ``field`` attribute)."""
    error = kind(message)
    error.field = name
    return error


def refuse_removed(where, keywords):
    """Refuse the keywords of ``keywords`` that skmia 0.3 removed (a ``TypeError`` naming
    the new one), and any other ``keywords`` as Python does."""
    for old, new in REMOVED_KEYWORDS.items():
        if old in keywords:
            raise settings_error(old, f"{where}() got {old}=, which skmia 0.3 removed: use "
                                      f"{new} instead", TypeError)
    if keywords:
        raise TypeError(f"{where}() got an unexpected keyword argument "
                        f"{next(iter(keywords))!r}")


def _is_int(value):
    return isinstance(value, int) and not isinstance(value, bool)


def _check_count(name, value, least):
    if not _is_int(value) or value < least:
        what = "a positive integer" if least == 1 else f"at least {least} (an integer)"
        raise settings_error(name, f"{name} must be {what}, got {value!r}")


def _check_fraction(name, value, low, high):
    if isinstance(value, bool) or not isinstance(value, (int, float)) \
            or not low < value < high:
        raise settings_error(name, f"{name} must be in ({low:g}, {high:g}), got {value!r}")


def _check_choice(name, value, choices):
    if value not in choices:
        raise settings_error(name, f"{name} must be one of {', '.join(map(str, choices))}, "
                                   f"got {value!r}")


def _check_path(name, value, optional=False):
    if not (isinstance(value, (str, PathLike)) or (optional and value is None)):
        raise settings_error(name, f"{name} must be a path{' or None' * optional}, got "
                                   f"{type(value).__name__}", TypeError)


def check_n_jobs(n_jobs):
    """``n_jobs``: models trained at once, a positive integer or -1 (all cores)."""
    if not _is_int(n_jobs) or not (n_jobs >= 1 or n_jobs == -1):
        raise settings_error("n_jobs", "n_jobs must be a positive integer or -1 (all "
                                       f"cores), got {n_jobs!r}")


def check_threads(threads):
    """``threads``: torch threads, a positive integer (a warning above the cores)."""
    from ._parallel import check_threads as check

    try:
        check(threads)
    except ValueError as error:
        error.field = "threads"
        raise


def check_device(device):
    """``device``: a string; a CUDA device only where torch sees one (torch is imported
    for a device other than ``"cpu"`` only). A machine without the GPU asked for is no
    wrong setting (no ``field``: the command fails with status 1, not a usage error)."""
    if not isinstance(device, str):
        raise settings_error("device", f"device must be a string such as 'cpu' or 'cuda', "
                                       f"got {type(device).__name__}", TypeError)
    if device != "cpu":
        from .defenses._data import check_device as check

        check(device)


def check_calibrated(attacks, reference_models):
    """Check the calibrated attacks' names and the bank size; True if a bank is needed."""
    known = _registry.CALIBRATED_ATTACKS
    unknown = [name for name in attacks if name not in known]
    if unknown:
        raise settings_error("attacks", f"attacks: unknown attack(s) {', '.join(unknown)}; "
                                        f"choose from {', '.join(known)}")
    needs_bank = [name for name in attacks if known[name][1]]
    if needs_bank and reference_models is None:
        raise settings_error("attacks", f"attacks {','.join(needs_bank)} needs "
                                        "reference_models K: the number of reference "
                                        "models to calibrate against (e.g. 16)")
    if reference_models is not None and (
        not _is_int(reference_models) or reference_models < 2 or reference_models % 2
    ):
        raise settings_error("reference_models", "reference_models must be an even number "
                             f">= 2, got {reference_models!r} (each audited record is in "
                             "half of them)")
    return bool(needs_bank)


def _check_verbose(verbose):
    if not _is_int(verbose):
        raise settings_error("verbose", f"verbose must be an integer, got {verbose!r}")


def _check_model(dataset, model):
    """A network only for an image dataset, one of :data:`skmia._registry.IMAGE_MODELS`."""
    if model is None:
        return
    _check_choice("model", model, _registry.IMAGE_MODELS)
    image = [n for n, d in _registry.DATASETS.items() if d.kind == "image"]
    if dataset not in image:
        raise settings_error("model", f"model {model} applies to CIFAR only; {dataset} uses "
                                      "the paper's MLP (valid datasets for a network: "
                                      f"{', '.join(image)})")


def _check_hidden(dataset, hidden):
    if hidden is None:
        return
    if _registry.DATASETS[dataset].kind == "image":
        raise settings_error("hidden", "hidden sizes the tabular MLP; CIFAR uses model")
    if not isinstance(hidden, (tuple, list)) or not hidden \
            or not all(_is_int(h) and h >= 1 for h in hidden):
        raise settings_error("hidden", "hidden must be a sequence of positive integers, got "
                                       f"{hidden!r}")


@dataclass
class Settings:
    """What every command's settings share; see the module.

    Parameters
    ----------
    dataset : str
        A dataset of :data:`skmia._registry.DATASETS`.
    seed : int, default=1000
        Seed of the split, the canaries and the training (0 to 2**32 - 1).
    epochs : int or None, default=None
        Overrides the paper's number of epochs.
    out : path-like, default="results"
        Root of the run and audit directories.
    data_home : path-like or None, default=None
        Where the datasets are (default: ``$SKMIA_DATA_HOME``, else ``~/skmia_data``).
    device : str, default="cpu"
        ``"cpu"`` or ``"cuda"``.
    n_jobs : int, default=1
        Models trained at the same time, through joblib; -1 for every core this process
        may use. The results do not depend on it.
    """

    dataset: str
    _: KW_ONLY
    seed: int = 1000
    epochs: int | None = None
    out: str = "results"
    data_home: str | None = None
    device: str = "cpu"
    n_jobs: int = 1

    def __new__(cls, *args, **kwargs):
        refuse_removed(cls.__name__, {k: v for k, v in kwargs.items()
                                      if k in REMOVED_KEYWORDS})
        return super().__new__(cls)

    def check(self):
        """Check every setting (the shared ones, then the class's own); ``self``, or a
        ``ValueError`` / ``TypeError`` whose ``field`` names the first wrong one."""
        if self.dataset not in _registry.DATASETS:
            raise settings_error("dataset", f"dataset: unknown dataset {self.dataset!r}; "
                                            f"choose from {', '.join(_registry.DATASETS)}")
        if not _is_int(self.seed) or not 0 <= self.seed <= _SEED_MAX:
            raise settings_error("seed", f"seed must be an integer in [0, {_SEED_MAX}], got "
                                         f"{self.seed!r}")
        if self.epochs is not None:
            _check_count("epochs", self.epochs, 1)
        _check_path("out", self.out)
        _check_path("data_home", self.data_home, optional=True)
        check_n_jobs(self.n_jobs)
        self._check_own()
        check_device(self.device)  # last: it may import torch
        return self

    def _check_own(self):
        """The checks of a subclass's own settings."""

    def _check_methods(self, methods):
        if not isinstance(methods, tuple | list) or not methods:
            raise settings_error("methods", f"methods must be a non-empty sequence of "
                                            f"method names, got {methods!r}")
        for name in methods:
            if name not in _registry.METHODS:
                raise settings_error("methods", f"methods: unknown method {name!r}; choose "
                                                f"from {', '.join(_registry.METHODS)}")
        if len(set(methods)) < len(methods):
            raise settings_error("methods", f"methods: a method is given twice in "
                                            f"{list(methods)!r}")


@dataclass
class RunConfig(Settings):
    """Everything that defines a run of ``skmia run`` (and each run of ``compare``).

    Parameters
    ----------
    dataset, seed, epochs, out, data_home, device, n_jobs
        As in :class:`Settings`. ``n_jobs``: the target and the shadow of a run, the
        reference models. Each training runs on ``threads`` torch threads whatever
        ``n_jobs`` is, so the results do not depend on it.
    method : str
        The training method (a name of :func:`skmia.experiment.method_classes`).
    model : str or None
        ``resnet20`` or ``vgg11_bn`` for CIFAR; None for tabular data.
    overrides : dict
        Constructor arguments that override the defaults (``alpha``, ``upper``, ...).
    white_box : bool
        Run the gradient-norm attacks too.
    shadow_method : {"vanilla", "same"}
        The shadow model's training method in ``attack`` mode.
    verbose : int
        0: no progress bars; 1 (the default): progress bars and notes on stderr.
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
        (see :func:`skmia.experiment._run_bank.reference_bank`).
    """

    method: str
    _: KW_ONLY
    model: str | None = None
    overrides: dict = field(default_factory=dict)
    white_box: bool = True
    shadow_method: str = "vanilla"
    verbose: int = 1
    threads: int = 1
    attacks: tuple = ()
    reference_models: int | None = None

    @property
    def folder(self):
        """The target's run directory (:func:`skmia._rundir.run_folder`)."""
        return run_folder(self.out, self.dataset, self.method, self.seed, self.model)

    @property
    def shadow_training_method(self):
        """The method the shadow of the attack modes trains with."""
        return self.method if self.shadow_method == "same" else "vanilla"

    def _check_own(self):
        if self.method not in _registry.METHODS:
            raise settings_error("method", f"method: unknown method {self.method!r}; choose "
                                           f"from {', '.join(_registry.METHODS)}")
        _check_model(self.dataset, self.model)
        if not isinstance(self.overrides, dict):
            raise settings_error("overrides", "overrides must be a dict, got "
                                              f"{type(self.overrides).__name__}", TypeError)
        _check_choice("shadow_method", self.shadow_method, SHADOW_METHODS)
        _check_verbose(self.verbose)
        check_threads(self.threads)
        check_calibrated(tuple(self.attacks), self.reference_models)


@dataclass
class AuditConfig(Settings):
    """Everything that defines ``skmia audit``: the data, the canaries, the recipes.

    Parameters
    ----------
    dataset, seed, epochs, out, data_home, device, n_jobs
        As in :class:`Settings`. ``seed``: the canaries, the test part, the masks and
        the models; ``n_jobs``: rounds of models trained at once.
    methods : tuple of str
        The audited methods.
    models : int, default=64
        Models per method, an even number >= 4 (every record is IN half of them).
    canaries, canary_kind, poisons : int, str, int
        Canaries in the pool, what they are, random records in every model's training
        set that are never audited (:func:`skmia.audit.make_canaries`).
    records : int or None
        A seeded random subset of this many records (default: all).
    test_size : float, default=0.2
        Fraction held out as the test part no model trains on.
    hidden : tuple of int or None
        Hidden layer sizes of the tabular MLP (default: the paper's).
    overrides : dict
        Constructor arguments of every method (``alpha``, ...).
    model : str or None
        The network of CIFAR.
    scheduler : str or None
        Address of a Dask scheduler that trains the rounds.
    verbose : int, default=1
        0: no progress bars.
    """

    methods: tuple
    _: KW_ONLY
    models: int = 64
    canaries: int = 500
    canary_kind: str = "mislabel"
    poisons: int = 0
    records: int | None = None
    test_size: float = 0.2
    hidden: tuple | None = None
    overrides: dict = field(default_factory=dict)
    model: str | None = None
    scheduler: str | None = None
    verbose: int = 1

    @property
    def folder(self):
        """The audit directory (:func:`skmia._rundir.audit_folder`)."""
        return audit_folder(self.out, self.dataset, self.seed, self.model)

    def _check_own(self):
        self._check_methods(self.methods)
        _check_count("models", self.models, 4)
        if self.models % 2:
            raise settings_error("models", "models must be even (every record IN half the "
                                           f"models), got {self.models}")
        _check_count("canaries", self.canaries, 1)
        _check_choice("canary_kind", self.canary_kind, tuple(_registry.CANARY_KINDS))
        _check_count("poisons", self.poisons, 0)
        if self.records is not None:
            _check_count("records", self.records, 1)
        _check_fraction("test_size", self.test_size, 0, 1)
        _check_hidden(self.dataset, self.hidden)
        _check_model(self.dataset, self.model)
        for name in self.overrides:  # the CLI's method options apply to every method
            option = _registry.METHOD_OPTIONS.get(name)
            wrong = [m for m in self.methods if option and m not in option.methods]
            if wrong:
                raise settings_error(name, f"{name} applies to {', '.join(option.methods)}, "
                                           f"not to {', '.join(wrong)}")
        if self.scheduler is not None and not isinstance(self.scheduler, str):
            raise settings_error("scheduler", "scheduler must be an address or None, got "
                                              f"{type(self.scheduler).__name__}", TypeError)
        _check_verbose(self.verbose)


@dataclass
class DPAuditConfig(Settings):
    """Everything that defines ``skmia audit-dp``: DP-SGD's claim against lower bounds.

    Parameters
    ----------
    dataset, seed, epochs, out, data_home, device, n_jobs
        As in :class:`Settings`. ``n_jobs``: trainings at once of a many-run audit.
    noise_multipliers, target_epsilons : tuple of float
        The audited settings of DP-SGD (at least one).
    canaries, canary_kind, white_box : int, str, bool
        Canaries per training (>= 2), what they are, or gradient canaries.
    runs, reference : int
        Audited trainings (more than 1: a many-run audit) and calibration trainings.
    records, hidden, batch_size, delta, confidence
        A subset of records, the MLP's hidden sizes, DP-SGD's expected batch size and
        delta, the verdict's confidence (in (0.5, 1)).
    """

    _: KW_ONLY
    noise_multipliers: tuple = ()
    target_epsilons: tuple = ()
    canaries: int = 1000
    canary_kind: str = "mislabel"
    white_box: bool = False
    runs: int = 1
    reference: int = 16
    records: int | None = None
    hidden: tuple | None = None
    batch_size: int = 128
    delta: float = 1e-5
    confidence: float = 0.95

    def settings(self):
        """(folder name, estimator overrides) of each audited setting."""
        return ([(f"sigma{s:g}", {"noise_multiplier": float(s)})
                 for s in self.noise_multipliers]
                + [(f"eps{e:g}", {"target_epsilon": float(e)}) for e in self.target_epsilons])

    def _check_own(self):
        if _registry.DATASETS[self.dataset].kind == "image":
            raise settings_error("dataset", "dataset: skmia audit-dp audits DP-SGD on "
                                 f"tabular data (an MLP); {self.dataset} is an image dataset")
        if not (self.noise_multipliers or self.target_epsilons):
            raise settings_error("noise_multipliers", "give noise_multipliers or "
                                 "target_epsilons: the settings of DP-SGD to audit")
        for name in ("noise_multipliers", "target_epsilons"):
            values = getattr(self, name)
            if not all(isinstance(v, int | float) and not isinstance(v, bool) and v > 0
                       for v in values):
                raise settings_error(name, f"{name} must be positive numbers, got "
                                           f"{values!r}")
        _check_count("canaries", self.canaries, 2)
        _check_count("runs", self.runs, 1)
        _check_count("reference", self.reference, 2)
        _check_count("batch_size", self.batch_size, 1)
        if self.records is not None:
            _check_count("records", self.records, 1)
        _check_hidden(self.dataset, self.hidden)
        _check_fraction("delta", self.delta, 0, 1)
        _check_fraction("confidence", self.confidence, 0.5, 1)
