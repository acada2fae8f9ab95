"""Run directories and the reference code's four modes, on the library side of the CLI.

A run directory ``<out>/<dataset>[/<model>]/<method>/seed<seed>/`` holds the target
model and, below it, ``shadow/`` the shadow model; each holds ``params.json``,
``history.json``, ``model.safetensors`` + ``model.json`` and, once finished,
``complete.json``. Attacks write ``attack/results.{csv,json}``, ``attack/roc.png`` and
``attack/loss_hist.png``, then ``attack/complete.json``. Every file is written
atomically and the completion marker last, so an interrupted run never looks finished.
While a model trains, ``checkpoint/`` holds its state after the last finished epoch;
running the same command again continues from there (:mod:`._checkpoint`), and the
checkpoint is deleted once the run is complete. ``.lock`` keeps a second process out
of a run directory being written (:mod:`._lock`).

Trainings go through :func:`skmia._parallel.parallel_map` (DESIGN §7): the target and
the shadow of a run train at the same time with ``jobs > 1``, and every training, one
at a time or not, runs on ``threads`` torch threads (one by default), so the weights
never depend on ``jobs``.
"""

import signal
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np

from .. import __version__, _registry
from .._io import atomic_write_bytes, atomic_write_json, read_json
from .._parallel import check_threads, torch_threads
from ._checkpoint import (
    RunInterrupted,
    _Stop,
    checkpoint_callback,
    interrupted_message,
    load_checkpoint,
    remove_checkpoint,
    stopping_on_signals,
    training_finished,
)
from ._lock import RunLockedError, run_lock, run_locks
from ._persist import (
    MODEL_JSON,
    MODEL_WEIGHTS,
    file_sha256,
    load_estimator,
    save_estimator,
    saved_params_sha256,
)

__all__ = [
    "RunConfig",
    "MODES",
    "TABULAR_DATASETS",
    "IMAGE_DATASETS",
    "IMAGE_MODELS",
    "method_classes",
    "run_defaults",
    "run_directory",
    "train",
    "attack",
    "run",
    "load_run",
    "IncompleteRunError",
    "RunInterrupted",
    "RunLockedError",
]

# views of skmia._registry, where the datasets, methods and their settings are written
MODES = _registry.MODES
TABULAR_DATASETS = tuple(n for n, d in _registry.DATASETS.items() if d.kind == "tabular")
IMAGE_DATASETS = tuple(n for n, d in _registry.DATASETS.items() if d.kind == "image")
IMAGE_MODELS = _registry.IMAGE_MODELS
SYNTHETIC_DATA_SEED = _registry.SYNTHETIC_DATA_SEED
COMPLETE = "complete.json"
_RUN_FILES = ("params.json", "history.json", MODEL_JSON, MODEL_WEIGHTS, COMPLETE)
REFERENCE_DIR = "reference"
# what params.json must hold for a run to be read
_PARAMS_KEYS = ("dataset", "method", "model", "seed", "partition", "estimator_params")
_ATTACK_FILES = ("results.csv", "results.json", "roc.png", "loss_hist.png", COMPLETE)


class IncompleteRunError(RuntimeError):
    """A run directory whose training or attack did not finish."""


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
        Seed of the membership split and of training.
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
    quiet : bool
        No progress bars.
    jobs : int
        Models trained at the same time (the target and the shadow of a run, the
        reference models), through joblib; -1 for as many as there are cores. Each
        training runs on ``threads`` torch threads whatever ``jobs`` is, so the results
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
        (see :func:`reference_bank`).
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
    quiet: bool = False
    jobs: int = 1
    threads: int = 1
    attacks: tuple = ()
    reference_models: int | None = None


def run_directory(out, dataset, method, seed, model=None):
    """``<out>/<dataset>[/<model>]/<method>/seed<seed>``."""
    parts = [dataset, *([model] if model else []), method, f"seed{seed}"]
    return Path(out).joinpath(*parts)


_DATA_CACHE = {}


def load_split(dataset, seed, data_home=None):
    """The dataset's membership split for ``seed`` (the reference protocol per dataset)."""
    from ..datasets import load_dataset
    from ..model_selection import membership_split

    record = _registry.DATASETS.get(dataset.lower())  # load_dataset takes any case
    synthetic = record is not None and record.synthetic
    key = (dataset, None if synthetic else str(data_home))
    if key not in _DATA_CACHE:
        if synthetic:
            kwargs = {"random_state": SYNTHETIC_DATA_SEED}
        else:
            kwargs = {"data_home": data_home}
        _DATA_CACHE.clear()  # keep one dataset in memory at a time
        _DATA_CACHE[key] = load_dataset(dataset, return_X_y=True, **kwargs)
    X, y = _DATA_CACHE[key]
    return membership_split(X, y, protocol=record.protocol, random_state=seed)


def _estimator(config, method):
    params = run_defaults(method, config.dataset, config.model)
    overrides = dict(config.overrides) if method == config.method else {}
    if config.epochs is not None:
        params["max_epochs"] = config.epochs
        if "snapshot_epochs" in params and "snapshot_epochs" not in overrides:
            kept = [e for e in params["snapshot_epochs"] if e <= config.epochs]
            params["snapshot_epochs"] = tuple(kept) or (config.epochs,)
    if method == "dpsgd":  # the noise must not be replayable from the run's seed
        params["secure_noise"] = True
    params.update(overrides)
    params.update(random_state=config.seed, device=config.device)
    if config.model is not None:
        from .. import nn

        params["module"] = getattr(nn, config.model)
    return method_classes()[method](**params)


def _settings(clf):
    """What defines a trained model, comparable between runs (device and callbacks aside)."""
    return {k: repr(v) for k, v in sorted(clf.get_params(deep=False).items())
            if not k.startswith("_") and k not in ("callbacks", "device")}


def _is_complete(folder):
    return (Path(folder) / COMPLETE).is_file()


def _clear(folder, names):
    for name in names:
        (Path(folder) / name).unlink(missing_ok=True)


def _progress_callbacks(clf, description, quiet, position=None):
    if quiet:
        return []
    from skorch.callbacks import Callback
    from tqdm.auto import tqdm

    class EpochProgress(Callback):
        """One bar per model, with the last epoch's loss and accuracy; it stays on screen
        when done (each bar keeps a line of its own when models train at once)."""

        def on_train_begin(self, net, **kwargs):
            self.bar = tqdm(total=net.max_epochs, initial=len(net.history),
                            desc=description, unit="epoch", leave=True, position=position)

        def on_epoch_end(self, net, **kwargs):
            last = net.history[-1]
            shown = {k: f"{last[k]:.3f}" for k in ("train_loss", "train_acc", "valid_acc")
                     if isinstance(last.get(k), float)}
            self.bar.set_postfix(shown, refresh=False)
            self.bar.update(1)

        def on_train_end(self, net, **kwargs):
            self.bar.close()

    return [("progress", EpochProgress())]


def train(config, partition="target", method=None):
    """Train (or reuse) the model of one run directory.

    Parameters
    ----------
    config : RunConfig
        The run.
    partition : {"target", "shadow"}, default="target"
        Train on ``target_train`` (the run directory) or ``shadow_train`` (its
        ``shadow/`` folder).
    method : str, default=None
        The method to train; ``config.method`` when None.

    Returns
    -------
    folder : pathlib.Path
        The finished run directory. A finished run is reused as it is; an unfinished
        one continues from its checkpoint when that was written with the same
        ``params.json``, and is trained again from scratch otherwise.

    Raises
    ------
    RunInterrupted
        SIGINT (Ctrl-C) or SIGTERM stopped the training: nothing is marked complete,
        the checkpoint of the last finished epoch is kept, the message says so.
    RunLockedError
        Another live process is writing the run directory.

    Notes
    -----
    The training runs on one torch thread (through :func:`skmia._parallel.parallel_map`,
    as in :func:`run` with ``jobs > 1``), so that it gives the same weights there. A
    continued training ends with the weights of an uninterrupted one, bit for bit on
    the CPU: the checkpoint holds the optimizer state, the history and torch's random
    generator state, which the continuation restores instead of seeding.
    """
    return _train_all(config, [(partition, method)])[0]


def _train_all(config, trainings):
    """Train ``(partition, method)`` pairs, ``config.jobs`` at a time; their folders."""
    from .._parallel import parallel_map

    _check_jobs(config.jobs)
    check_threads(config.threads)
    _check_device(config.device)
    # one training runs here: a worker process would only add its start-up
    n_jobs = config.jobs if len(trainings) > 1 else 1
    tasks = [(config, partition, method, None if n_jobs == 1 else i)
             for i, (partition, method) in enumerate(trainings)]
    folders = [_training_folder(config, partition, method) for partition, method in trainings]
    # this process holds the locks, whichever process trains: a worker joblib kills
    # leaves no lock behind
    with run_locks(folders), stopping_on_signals():
        try:
            return parallel_map(_train_one, tasks, n_jobs=n_jobs, threads=config.threads)
        except (_Stop, KeyboardInterrupt) as exc:
            # here, or in a worker (the terminal's Ctrl-C reaches them all): one report
            signum = getattr(exc, "signum", signal.SIGINT)
            raise RunInterrupted(interrupted_message(folders, signum), signum) from None


def _check_device(device):
    """Refuse a CUDA device on a machine without one, before any run folder is made."""
    import torch

    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device {device!r} was asked for, but torch sees no CUDA GPU on this machine "
            f"(torch {torch.__version__}); use --device cpu"
        )


def _check_jobs(jobs):
    if isinstance(jobs, bool) or not isinstance(jobs, int) or not (jobs >= 1 or jobs == -1):
        raise ValueError(f"jobs must be a positive integer or -1 (all cores), got {jobs!r}")


def _training_folder(config, partition, method):
    method = method or config.method
    folder = run_directory(config.out, config.dataset, method, config.seed, config.model)
    return folder / "shadow" if partition == "shadow" else folder


def _train_one(config, partition, method, position):
    """One training, in whichever process joblib gives it; see :func:`train`."""
    folder = _training_folder(config, partition, method)
    method = method or config.method
    clf = _estimator(config, method)
    settings = _settings(clf)
    if _is_complete(folder):
        saved = read_json(folder / "params.json").get("estimator_params")
        if saved != settings:
            changed = sorted(k for k in set(saved or {}) | set(settings)
                             if (saved or {}).get(k) != settings.get(k))
            raise ValueError(
                f"{str(folder)!r} holds a finished run trained with other settings "
                f"({', '.join(changed)} differ); choose another --out or delete that folder"
            )
        remove_checkpoint(folder)  # left if the run was stopped as it completed
        if not config.quiet:
            print(f"{method} {partition}: reused the finished run in {str(folder)!r}",
                  file=sys.stderr)
        return folder
    folder.mkdir(parents=True, exist_ok=True)
    _clear(folder, (COMPLETE, *_RUN_FILES))
    _clear(folder / "attack", _ATTACK_FILES)
    split = load_split(config.dataset, config.seed, config.data_home)
    X, y = split.target_train if partition == "target" else split.shadow_train
    params = {
        "skmia_version": __version__,
        "dataset": config.dataset,
        "method": method,
        "model": config.model,
        "seed": config.seed,
        "partition": partition,
        "data_home": None if config.data_home is None else str(config.data_home),
        "estimator": type(clf).__name__,
        "estimator_params": settings,
    }
    atomic_write_json(folder / "params.json", params)
    fit_kwargs = {}
    if method == "advreg":
        fit_kwargs = {"X_reference": split.reference.X, "y_reference": split.reference.y}
    progress = _progress_callbacks(clf, f"{method} {partition}", config.quiet, position)
    start = time.perf_counter()
    with stopping_on_signals():
        try:
            clf, resumed_at = _fit_or_resume(clf, folder, params, X, y, fit_kwargs,
                                             progress, config)
            seconds = time.perf_counter() - start
            clf.set_params(callbacks=None)
            atomic_write_json(folder / "history.json", _history(clf))
            save_estimator(clf, folder)
            # before the completion marker: no file of a finished run holds the
            # checkpoint's generator state (DP-SGD's noise)
            remove_checkpoint(folder)
            done = {"seconds": round(seconds, 3), "rows": len(y)}
            if resumed_at:
                done["resumed_at_epoch"] = resumed_at
            atomic_write_json(folder / COMPLETE, done)
        except _Stop as stop:
            raise RunInterrupted(interrupted_message([folder], stop.signum),
                                 stop.signum) from None
    return folder


def _fit_or_resume(clf, folder, params, X, y, fit_kwargs, progress, config):
    """Train ``clf``, or continue ``folder``'s checkpoint of the same settings: the
    trained model and the epoch it continued from (0: from scratch)."""
    checkpoint = checkpoint_callback(folder, params)
    callbacks = [*progress, ("checkpoint", checkpoint)]
    resumed, reason = load_checkpoint(folder, params, device=config.device)
    if resumed is not None and _settings(resumed) != _settings(clf):
        resumed, reason = None, "its model has other settings"
    note = None
    if resumed is None:
        if reason is not None:
            note = f"{str(folder)!r}: not continuing its checkpoint, {reason}; training again"
        remove_checkpoint(folder)
        clf.set_params(callbacks=callbacks)
        if note and not config.quiet:
            _note(note)
        clf.fit(X, y, **fit_kwargs)
        resumed_at = 0
    else:
        clf, resumed_at = resumed, len(resumed.history)
        clf.set_params(callbacks=callbacks)
        clf.initialize_callbacks()  # skorch's set_params sets up the callbacks it had
        if not config.quiet:
            _note(f"{str(folder)!r}: continuing from its checkpoint after epoch "
                  f"{resumed_at} of {clf.max_epochs}")
        if resumed_at < clf.max_epochs:
            clf.partial_fit(X, y, epochs=clf.max_epochs - resumed_at, **fit_kwargs)
    ended = checkpoint.epochs_ended
    if not training_finished(clf, resumed_at if ended is None else ended):
        # skorch's fit ends quietly on a KeyboardInterrupt (a Ctrl-C with no handler of
        # ours, in a thread): the model is short of its epochs and not saved
        raise RunInterrupted(interrupted_message([folder]))
    return clf, resumed_at


def _note(message):
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr)


def _history(clf):
    rows = []
    for epoch in clf.history:
        rows.append({k: v for k, v in epoch.items() if k != "batches"})
    return rows


def load_run(folder, *, device=None):
    """The fitted model and ``params.json`` of a finished run directory, cross-checked.

    Raises
    ------
    FileNotFoundError
        ``folder`` is not a run directory.
    IncompleteRunError
        Its training did not finish.
    ValueError
        Its files are from another skmia version, edited, corrupt, or do not belong
        together (``model.json`` saved beside another ``params.json``, or with other
        settings); the message names the files.
    """
    folder = Path(folder)
    params_path = folder / "params.json"
    if not params_path.is_file():
        mode = "shadow" if folder.name == "shadow" else "defense"
        raise FileNotFoundError(
            f"{str(folder)!r} is not a run directory (no params.json): train it with "
            f"`skmia run ... --mode {mode}` first"
        )
    if not _is_complete(folder):
        raise IncompleteRunError(
            f"the run in {str(folder)!r} did not finish (no {COMPLETE}); run it again"
        )
    params = read_json(params_path)
    if not isinstance(params, dict):
        raise ValueError(f"{str(params_path)!r} should hold a JSON object")
    missing = [key for key in _PARAMS_KEYS if key not in params]
    if missing:
        raise ValueError(f"{str(params_path)!r} lacks the key {missing[0]!r}; it was not "
                         "written by skmia run, or was edited: run again")
    model_path = folder / MODEL_JSON
    recorded = saved_params_sha256(folder) if model_path.is_file() else None
    if recorded is not None and recorded != file_sha256(params_path):
        raise ValueError(
            f"{str(model_path)!r} was saved beside another params.json than "
            f"{str(params_path)!r} (their SHA-256 differ): the model and its settings do "
            "not belong together (copied from another run, or one of them edited); run "
            "again to retrain"
        )
    clf = load_estimator(folder, device=device)
    changed = _changed_settings(params["estimator_params"], _settings(clf))
    if changed:
        raise ValueError(
            f"{str(model_path)!r} and {str(params_path)!r} disagree on "
            f"{', '.join(changed)}: the model was not trained with these settings; run "
            "again to retrain"
        )
    return clf, params


def _changed_settings(saved, current):
    """Settings keys whose values differ (only keys both record: a parameter that
    cannot be saved comes back as its default)."""
    if not isinstance(saved, dict):
        return ["estimator_params"]
    return sorted(k for k in set(saved) & set(current) if saved[k] != current[k])


def attack(target_dir, shadow_dir, *, white_box=True, data_home=None, device=None,
           quiet=False, shadow_method=None, attacks=(), reference_models=None, jobs=1,
           threads=None):
    """Attack a finished target run with a finished shadow run; write ``attack/``.

    Parameters
    ----------
    target_dir, shadow_dir : path-like
        Finished run directories of the target and of the shadow model.
    white_box : bool, default=True
        Also run the gradient-norm attacks.
    data_home : path-like, default=None
        Where the dataset is (default: the run's).
    device : str, default=None
        Torch device to load the models on (default: the one they trained on).
    quiet : bool, default=False
        No progress bars.
    shadow_method : str, default=None
        How the results name the shadow's method (default: the shadow run's).
    attacks : sequence of str, default=()
        Attacks calibrated without the shadow, by the names of
        :data:`skmia.attacks.CALIBRATED_ATTACKS` (``lira``, ``rmia``, ...), run after the
        reference code's ones, on the target's members and non-members.
    reference_models : int, default=None
        Size of the bank of reference models that ``lira``, ``rmia`` and ``attack_r``
        calibrate against: trained like the target, on the target's members and
        non-members, saved in ``TARGET/reference/``, and reused (or grown) by later
        calls. Required by those attacks.
    jobs : int, default=1
        Reference models trained at the same time (one torch thread each).
    threads : int, default=None
        Torch threads of the signals and attacks in this process; None leaves torch's
        setting as it is.

    Returns
    -------
    results : pandas.DataFrame
        One row per attack (and per snapshot for early stopping).
    """
    attacks = tuple(attacks)
    needs_bank = _check_calibrated(attacks, reference_models)
    if threads is not None:
        check_threads(threads)  # before the lock: a bad value leaves no folder behind
    # the target's folder is locked while attack/ (and reference/) are written
    with run_lock(target_dir, "attack"), stopping_on_signals(), torch_threads(threads):
        try:
            return _attack(target_dir, shadow_dir, white_box, data_home, device, quiet,
                           shadow_method, attacks, needs_bank and reference_models, jobs)
        except RunInterrupted:
            raise
        except (_Stop, KeyboardInterrupt) as stop:
            raise RunInterrupted(
                f"interrupted while attacking {str(target_dir)!r}: its attack/ folder is not "
                "marked complete; reference/ keeps the reference models of the rounds that "
                "finished (its complete.json says how many). Run the same command again to "
                "attack it (the trained models are kept, the bank grows from there)",
                getattr(stop, "signum", signal.SIGINT)) from None


def _attack(target_dir, shadow_dir, white_box, data_home, device, quiet, shadow_method,
            attacks, reference_models, jobs):
    """The steps of :func:`attack`: load and check, signals, attacks, rows, files."""
    import pandas as pd

    from ..report import figure_png

    target, params, shadow, shadow_params = _load_pair(target_dir, shadow_dir, device)
    split = load_split(params["dataset"], params["seed"],
                       data_home if data_home is not None else params.get("data_home"))
    _check_model_fits_split(target, params, split, target_dir)
    _check_model_fits_split(shadow, shadow_params, split, shadow_dir)
    out = Path(target_dir) / "attack"
    _clear(out, _ATTACK_FILES)
    bank = None
    if reference_models:
        bank = reference_bank(target_dir, target, split, reference_models, jobs=jobs,
                              quiet=quiet)
    context = {
        "dataset": params["dataset"], "model": params["model"], "method": params["method"],
        "seed": params["seed"], "shadow_method": shadow_method or shadow_params["method"],
    }
    rows, figures = _attack_rows(target, shadow, split, white_box, params, context, attacks,
                                 bank, quiet)
    results = pd.DataFrame(rows)
    atomic_write_bytes(out / "results.csv", results.to_csv(index=False).encode())
    atomic_write_json(out / "results.json", {"rows": _json_rows(results)})
    for name, fig in figures.items():
        atomic_write_bytes(out / name, figure_png(fig))
    atomic_write_json(out / COMPLETE, {"target": str(target_dir), "shadow": str(shadow_dir)})
    results.attrs["folder"] = str(out)
    return results


def _check_calibrated(attacks, reference_models):
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
        isinstance(reference_models, bool) or not isinstance(reference_models, int)
        or reference_models < 2 or reference_models % 2
    ):
        raise ValueError(
            "the number of reference models must be an even integer >= 2 (each audited "
            f"record is in half of them), got {reference_models!r}"
        )
    return bool(needs_bank)


def _load_pair(target_dir, shadow_dir, device):
    """The target and shadow models and their ``params.json``, checked to belong together."""
    target_dir, shadow_dir = Path(target_dir), Path(shadow_dir)
    if target_dir.resolve() == shadow_dir.resolve():
        raise ValueError(
            f"the target and the shadow are the same folder, {str(target_dir)!r}: the shadow "
            f"run of a target is its shadow/ folder ({str(target_dir / 'shadow')!r})"
        )
    target, params = load_run(target_dir, device=device)
    shadow, shadow_params = load_run(shadow_dir, device=device)
    files = (f"{str(target_dir / 'params.json')!r} and "
             f"{str(shadow_dir / 'params.json')!r}")
    if params["partition"] != "target":
        raise ValueError(
            f"{str(target_dir)!r} holds a shadow run ({str(target_dir / 'params.json')!r} "
            "says partition 'shadow'): give the target's folder as --target (a run trained "
            "with --mode defense)"
        )
    if shadow_params["partition"] != "shadow":
        raise ValueError(
            f"{str(shadow_dir)!r} holds a target run ({str(shadow_dir / 'params.json')!r} "
            "says partition 'target'): give a shadow run as --shadow, the shadow/ folder of "
            "a run trained with --mode shadow"
        )
    for key in ("dataset", "seed", "model"):
        if params[key] != shadow_params[key]:
            raise ValueError(
                f"target and shadow runs differ in {key}: {params[key]!r} vs "
                f"{shadow_params[key]!r} ({files})"
            )
    if not np.array_equal(np.sort(target.classes_), np.sort(shadow.classes_)):
        raise ValueError(f"target and shadow models were trained on different classes "
                         f"({files})")
    return target, params, shadow, shadow_params


def _check_model_fits_split(model, params, split, folder):
    """Refuse a model of another number of features or classes than its dataset's."""
    X, y = split.target_train.X, split.target_train.y
    where = f"{str(Path(folder) / MODEL_JSON)!r} and {str(Path(folder) / 'params.json')!r}"
    shape = tuple(X.shape[1:])
    if tuple(getattr(model, "input_shape_", shape)) != shape:
        raise ValueError(
            f"{where} disagree: the model takes records of shape {model.input_shape_}, but "
            f"{params['dataset']!r} has records of shape {shape}"
        )
    classes = np.unique(np.concatenate([y, split.target_test.y]))
    if len(model.classes_) != len(classes) or not np.array_equal(np.sort(model.classes_),
                                                                 classes):
        raise ValueError(
            f"{where} disagree: the model has {len(model.classes_)} classes, but "
            f"{params['dataset']!r} has {len(classes)}"
        )


def _attack_rows(target, shadow, split, white_box, params, context, attacks, bank, quiet):
    """Result rows of every attack on the target (and each snapshot), and the figures.

    The reference code's attacks are fitted once, on the shadow's signals, and then
    evaluated on the target and on each of its snapshots.
    """
    from tqdm.auto import tqdm

    from ..attacks import evaluate_fitted_attacks, membership_signals

    models = {None: target}
    if getattr(target, "snapshots_", None):
        models.update({epoch: target.snapshot(epoch) for epoch in target.snapshots_})
    progress = tqdm(desc="attack", disable=quiet, leave=False)
    fitted = _fit_on_shadow(shadow, split, white_box, params["seed"], progress)
    progress.reset(total=len(models) * (2 if attacks else 1))
    rows, figures = [], {}
    for epoch, model in models.items():
        progress.set_postfix_str("target signals" if epoch is None else f"epoch {epoch}")
        target_signals = membership_signals(
            model, split.target_train, split.target_test, white_box=white_box
        )
        parts = [evaluate_fitted_attacks(fitted, *target_signals)]
        progress.update(1)
        if attacks:
            progress.set_postfix_str(", ".join(attacks))
            parts.append(_calibrated_results(model, split, attacks, bank, params["seed"]))
            progress.update(1)
        membership = target_signals[1]
        for part, scores in parts:
            for name, row in part.iterrows():
                rows.append(_result_row(context, epoch, model, name, row, membership,
                                        scores[name]))
        if epoch is None:
            figures = _attack_figures({k: v for _, s in parts for k, v in s.items()},
                                      target_signals, params)
    progress.close()
    return rows, figures


def _fit_on_shadow(shadow, split, white_box, seed, progress):
    """The reference code's attacks, each fitted on the shadow's signals."""
    from ..attacks import default_attacks, membership_signals

    estimators = default_attacks(white_box=white_box, random_state=seed)
    progress.reset(total=1 + len(estimators))
    progress.set_postfix_str("shadow signals")
    signals, membership = membership_signals(
        shadow, split.shadow_train, split.shadow_test, white_box=white_box
    )
    progress.update(1)
    fitted = {}
    for name, estimator in estimators.items():
        progress.set_postfix_str(f"fit {name}")
        fitted[name] = estimator.fit(signals, membership)
        progress.update(1)
    return fitted


def _attack_figures(scores, target_signals, params):
    from ..report import loss_histogram_figure, roc_figure

    signals, membership = target_signals
    title = f"{params['dataset']} {params['method']} seed {params['seed']}"
    return {
        "roc.png": roc_figure(scores, membership, title=title, confidence_level=0.95),
        "loss_hist.png": loss_histogram_figure(signals["loss"].to_numpy(), membership,
                                               title=title),
    }


def _calibrated_results(model, split, attacks, bank, seed):
    """Results and scores of the attacks calibrated without a shadow model.

    The audited records are the target's members then non-members, in the order of the
    bank's pool (see :func:`reference_bank`); the population is the split's
    ``reference`` part.
    """
    from ..attacks import (
        calibrated_attacks,
        compute_signals,
        evaluate_calibrated_attacks,
        signal_options,
    )

    X_pool, y_pool, membership = _audited_records(split)
    wanted = signal_options(attacks)  # the columns the attacks read
    shared = {"features": wanted["features"]}
    if bank is not None:
        shared.update(reference=bank, reference_logits=wanted["reference_logits"])
    label_only = wanted["label_only"]
    audited = compute_signals(
        model, X_pool, y_pool, label_only=label_only,
        label_only_params={"random_state": seed} if label_only else None,
        **({"pool_index": np.arange(len(y_pool))} if bank is not None else {}), **shared)
    population = compute_signals(model, split.reference.X, split.reference.y, **shared)
    return evaluate_calibrated_attacks(calibrated_attacks(attacks), audited, membership,
                                       population)


def _result_row(context, epoch, model, name, row, membership, score):
    from ..metrics import empirical_epsilon, tpr_at_fpr

    n_out = int(np.sum(membership == 0))
    return {
        **{k: context[k] for k in ("dataset", "model", "method", "seed")},
        "snapshot_epoch": epoch,
        "epsilon": getattr(model, "epsilon_", None),
        "attack": name,
        "train_accuracy": row["target_train_accuracy"],
        "test_accuracy": row["target_test_accuracy"],
        "accuracy": row["accuracy"],
        "auc": row["auc"],
        "tpr_at_0.01%fpr": (tpr_at_fpr(membership, score, max_fpr=1e-4).tpr
                            if n_out >= 10_000 else float("nan")),
        "tpr_at_0.1%fpr": row["tpr_at_0.1%fpr"],
        "tpr_at_1%fpr": row["tpr_at_1%fpr"],
        "empirical_epsilon": empirical_epsilon(membership, score),
        "shadow_method": context["shadow_method"],
    }


def _audited_records(split):
    """The target's members then non-members: the records audited, and the bank's pool."""
    X = np.concatenate([split.target_train.X, split.target_test.X])
    y = np.concatenate([split.target_train.y, split.target_test.y])
    membership = np.r_[np.ones(len(split.target_train.y), dtype=np.int64),
                       np.zeros(len(split.target_test.y), dtype=np.int64)]
    return X, y, membership


def reference_bank(target_dir, target, split, n_models, *, jobs=1, quiet=False):
    """The bank of reference models of a target run: trained, reused or grown.

    The bank clones the target (its method and settings, a fresh seed per model from
    the run's seed) and trains on the target's members and non-members
    (``target_train + target_test``), so that every audited record is IN half of the
    models. It is saved in ``TARGET/reference/`` (``model.json``, ``model.safetensors``,
    ``complete.json``) with the run. A finished bank of at least ``n_models`` models is
    reused (its first ``n_models`` when larger); a smaller one is grown with
    ``warm_start``, keeping its models. The models train a few at a time (``jobs`` at
    once, at most eight rounds), and the bank is saved after each round: an interrupted
    bank keeps the models of its finished rounds, and the next call grows it from there
    (a bank grown in rounds is the bank trained at once, bit for bit).

    Returns
    -------
    bank : ReferenceModels
    """
    folder = Path(target_dir) / REFERENCE_DIR
    params = read_json(Path(target_dir) / "params.json")
    bank = _saved_bank(folder, target, params["estimator_params"], target_dir)
    if bank is not None and len(bank.estimators_) >= n_models:
        return _first_models(bank, n_models)
    if bank is None:
        bank = _new_bank(target, n_models, jobs, params["seed"])
    X_pool, y_pool, _ = _audited_records(split)
    fit_params = {}
    if params["method"] == "advreg":
        fit_params = {"X_reference": split.reference.X, "y_reference": split.reference.y}
    have = len(getattr(bank, "estimators_", ()))
    seconds = read_json(folder / COMPLETE).get("seconds", 0.0) if have else 0.0
    step = _bank_round(n_models, jobs, bank.keep)
    with _models_bar(n_models, have, quiet) as bar:
        while have < n_models:
            size = min(n_models, have + step)
            bank.set_params(n_estimators=size, warm_start=have > 0, n_jobs=jobs, verbose=0)
            start = time.perf_counter()
            bank.fit(X_pool, y_pool, **fit_params)
            _check_bank_finished(bank, folder, have, n_models)
            seconds += time.perf_counter() - start
            _save_bank(bank, folder, params["estimator_params"], seconds)
            bar.update(size - have)
            have = size
    return bank


def _saved_bank(folder, target, settings, target_dir):
    """The finished bank in ``folder`` (None when there is none), checked against the
    target's settings."""
    if not _is_complete(folder):
        return None
    if read_json(folder / COMPLETE).get("estimator_params") != settings:
        raise ValueError(
            f"{str(folder)!r} holds a bank trained with other settings than the target "
            f"in {str(target_dir)!r}; delete that folder to train a new one"
        )
    return load_estimator(folder, device=target.device)


def _new_bank(target, n_models, jobs, seed):
    from sklearn.base import clone

    from ..model_selection import ReferenceModels

    estimator = clone(target).set_params(callbacks=None)
    return ReferenceModels(estimator, n_estimators=n_models, n_jobs=jobs, random_state=seed)


def _bank_round(n_models, jobs, keep):
    """Models trained between two saves: ``jobs`` at once, at most eight rounds, whole
    blocks of the bank's masks (pairs for ``keep=0.5``)."""
    from joblib import effective_n_jobs

    from ..model_selection._reference import _block_size

    q = _block_size(keep)
    per_round = max(effective_n_jobs(jobs), -(-n_models // 8))
    return q * -(-per_round // q)


def _models_bar(n_models, have, quiet):
    from tqdm.auto import tqdm

    return tqdm(total=n_models, initial=have, desc="reference models", unit="model",
                disable=quiet, leave=True)


def _check_bank_finished(bank, folder, saved, n_models):
    short = [k for k, model in enumerate(bank.estimators_) if not model._training_finished()]
    if short:  # skorch swallows a Ctrl-C that reaches a worker: nothing saved then
        raise RunInterrupted(
            f"reference model(s) {short[:5]} of {str(folder)!r} stopped short of their "
            f"epochs: {saved} of the {n_models} models are saved there; run the same "
            "command again to train the rest")


def _save_bank(bank, folder, settings, seconds):
    """Save the bank; ``complete.json`` is removed first and written last, so that an
    interruption in between leaves no finished-looking folder."""
    _clear(folder, (COMPLETE,))
    save_estimator(bank, folder)
    atomic_write_json(folder / COMPLETE, {
        "n_models": len(bank.estimators_), "seconds": round(seconds, 3),
        "estimator_params": settings,
    })


def _first_models(bank, k):
    """The first ``k`` models of a fitted bank, as a bank of its own."""
    if k == len(bank.estimators_):
        return bank
    from sklearn.base import clone

    smaller = clone(bank).set_params(n_estimators=k)
    for name in ("classes_", "n_features_in_", "input_shape_", "pool_digest_",
                 "base_seed_"):
        setattr(smaller, name, getattr(bank, name))
    smaller.estimators_ = bank.estimators_[:k]
    smaller.in_mask_ = bank.in_mask_[:, :k]
    smaller.seeds_ = bank.seeds_[:k]
    return smaller


def _json_rows(frame):
    rows = []
    for record in frame.to_dict(orient="records"):
        clean = {}
        for key, value in record.items():
            if isinstance(value, (np.floating, float)):
                value = None if np.isnan(value) else float(value)
            elif isinstance(value, np.integer):
                value = int(value)
            clean[key] = value
        rows.append(clean)
    return rows


def run(config, mode):
    """Run one of the reference code's modes.

    ``defense`` trains the target on ``target_train``; ``shadow`` trains the same
    method on ``shadow_train``; ``attack`` attacks a finished target with a shadow —
    vanilla by default (trained if missing), the target's own method with
    ``shadow_method="same"``; ``defense_attack`` does both. With ``config.jobs > 1``
    the target and the shadow of ``defense_attack`` train at the same time, each on
    ``config.threads`` torch threads, with the weights and results of ``jobs=1``.

    Returns
    -------
    result : pathlib.Path or pandas.DataFrame
        The run directory for the training modes, the results table otherwise.
    """
    if mode not in MODES:
        raise ValueError(f"mode must be one of {', '.join(MODES)}, got {mode!r}")
    _check_jobs(config.jobs)
    _check_calibrated(tuple(config.attacks), config.reference_models)
    check_threads(config.threads)
    _check_device(config.device)
    if mode == "defense":
        return train(config, "target")
    if mode == "shadow":
        return train(config, "shadow")
    target_dir = run_directory(config.out, config.dataset, config.method, config.seed,
                               config.model)
    if mode == "attack" and not _is_complete(target_dir):
        load_run(target_dir)  # raises the clear error
    shadow_method = config.method if config.shadow_method == "same" else "vanilla"
    trainings = [("shadow", shadow_method)]
    if mode == "defense_attack":
        trainings.insert(0, ("target", None))
    shadow_dir = _train_all(config, trainings)[-1]
    return attack(target_dir, shadow_dir, white_box=config.white_box,
                  data_home=config.data_home, device=config.device, quiet=config.quiet,
                  shadow_method=config.shadow_method, attacks=config.attacks,
                  reference_models=config.reference_models, jobs=config.jobs,
                  threads=config.threads)
