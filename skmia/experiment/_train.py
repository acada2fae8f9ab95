"""Training the model of a run directory: trained, reused, or continued from a checkpoint.

A run directory holds ``params.json``, ``history.json``, ``model.safetensors`` +
``model.json`` and, once finished, ``complete.json`` (names and safe access:
:class:`skmia._rundir.RunDirectory`). Trainings go through
:func:`skmia._parallel.parallel_map` (DESIGN §7): the target and the shadow of a run
train at the same time with ``n_jobs > 1``, each on ``threads`` torch threads, so the
weights never depend on ``n_jobs``.
"""

import signal
import sys
import time

from skorch.callbacks import Callback

from .. import __version__, _registry
from .._rundir import (
    ATTACK,
    ATTACK_FILES,
    COMPLETE,
    HISTORY,
    MODEL_JSON,
    PARAMS,
    RUN_FILES,
    SHADOW,
    RunDirectory,
)
from ..io import load_estimator, save_estimator

# the digests a saved model's file carries, so a run checks them as io wrote them
from ..io._codec import file_sha256, saved_params_sha256
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
from ._config import changed_settings, check_config, estimator, run_directory, settings
from ._run_lock import run_locks

__all__ = ["train", "train_all", "load_run", "IncompleteRunError", "EpochProgress"]


class IncompleteRunError(RuntimeError):
    """A run directory whose training or attack did not finish."""


class EpochProgress(Callback):
    """One progress bar per model, with the last epoch's loss and accuracy; it stays on
    screen when done (each bar keeps a line of its own when models train at once)."""

    def __init__(self, description, position=None):
        self.description = description
        self.position = position

    def on_train_begin(self, net, **kwargs):
        from tqdm.auto import tqdm

        self.bar = tqdm(total=net.max_epochs, initial=len(net.history),
                        desc=self.description, unit="epoch", leave=True,
                        position=self.position)

    def on_epoch_end(self, net, **kwargs):
        last = net.history[-1]
        shown = {k: f"{last[k]:.3f}" for k in ("train_loss", "train_acc", "valid_acc")
                 if isinstance(last.get(k), float)}
        self.bar.set_postfix(shown, refresh=False)
        self.bar.update(1)

    def on_train_end(self, net, **kwargs):
        self.bar.close()


def _progress_callbacks(clf, description, quiet, position=None):
    return [] if quiet else [("progress", EpochProgress(description, position))]


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
    The training runs on ``config.threads`` torch threads (through
    :func:`skmia._parallel.parallel_map`, as in :func:`run` with ``n_jobs > 1``), so that
    it gives the same weights there. A continued training ends with the weights of an
    uninterrupted one, bit for bit on the CPU: the checkpoint holds the optimizer state,
    the history and torch's random generator state, which the continuation restores
    instead of seeding.
    """
    check_config(config)
    return train_all(config, [(partition, method)])[0]


def train_all(config, trainings):
    """Train ``(partition, method)`` pairs, ``config.n_jobs`` at a time; their folders.
    ``config`` was checked by the caller (:func:`~._config.check_config`)."""
    from .._parallel import parallel_map

    # one training runs here: a worker process would only add its start-up
    n_jobs = config.n_jobs if len(trainings) > 1 else 1
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


def _training_folder(config, partition, method):
    folder = run_directory(config.out, config.dataset, method or config.method,
                           config.seed, config.model)
    return folder / SHADOW if partition == "shadow" else folder


def _train_one(config, partition, method, position):
    """One training, in whichever process joblib gives it; see :func:`train`."""
    path = _training_folder(config, partition, method)
    folder = RunDirectory(path)
    method = method or config.method
    clf = estimator(config, method)
    current = settings(clf)
    if folder.is_complete():
        saved = folder.read_params()["estimator_params"]
        if saved != current:
            changed = sorted(k for k in set(saved) | set(current)
                             if saved.get(k) != current.get(k))
            raise ValueError(
                f"{str(path)!r} holds a finished run trained with other settings "
                f"({', '.join(changed)} differ); choose another --out or delete that folder"
            )
        remove_checkpoint(folder)  # left if the run was stopped as it completed
        if config.verbose:
            print(f"{method} {partition}: reused the finished run in {str(path)!r}",
                  file=sys.stderr)
        return path
    folder.makedirs()
    folder.clear(*RUN_FILES)
    folder.clear(*ATTACK_FILES, folder=ATTACK)  # results of another model
    # a run's saved split, read as the split module wrote it (not public API)
    from ..model_selection._split import load_split

    split = load_split(config.dataset, config.seed, config.data_home)
    X, y = split.target_train if partition == "target" else split.shadow_train
    params = {
        "skmia_version": __version__, "dataset": config.dataset, "method": method,
        "model": config.model, "seed": config.seed, "partition": partition,
        "data_home": _data_home(config),
        "estimator": type(clf).__name__, "estimator_params": current,
    }
    folder.write_json(PARAMS, document=params)
    fit_kwargs = {}
    if _registry.METHODS[method].needs_reference:  # AdvReg, MemGuard
        fit_kwargs = {"X_reference": split.reference.X, "y_reference": split.reference.y}
    progress = _progress_callbacks(clf, f"{method} {partition}", not config.verbose, position)
    start = time.perf_counter()
    with stopping_on_signals():
        try:
            clf, resumed_at = _fit_or_resume(clf, folder, params, X, y, fit_kwargs,
                                             progress, config)
            seconds = time.perf_counter() - start
            clf.set_params(callbacks=None)
            folder.write_json(HISTORY, document=_history(clf))
            save_estimator(clf, folder)
            # before the completion marker: no file of a finished run holds the
            # checkpoint's generator state (DP-SGD's noise)
            remove_checkpoint(folder)
            done = {"seconds": round(seconds, 3), "rows": len(y)}
            if resumed_at:
                done["resumed_at_epoch"] = resumed_at
            folder.mark_complete(document=done)
        except _Stop as stop:
            raise RunInterrupted(interrupted_message([path], stop.signum),
                                 stop.signum) from None
    return path


def _data_home(config):
    """The folder the run's data was read from, absolute (``skmia attack`` reads the data
    there when ``$SKMIA_DATA_HOME`` is no longer set); None for synthetic data."""
    if _registry.DATASETS[config.dataset].synthetic:
        return None
    from ..datasets import get_data_home

    return str(get_data_home(config.data_home).resolve())


def _fit_or_resume(clf, folder, params, X, y, fit_kwargs, progress, config):
    """Train ``clf``, or continue ``folder``'s checkpoint of the same settings: the
    trained model and the epoch it continued from (0: from scratch)."""
    checkpoint = checkpoint_callback(folder, params)
    callbacks = [*progress, ("checkpoint", checkpoint)]
    resumed, reason = load_checkpoint(folder, params, device=config.device)
    if resumed is not None and settings(resumed) != settings(clf):
        resumed, reason = None, "its model has other settings"
    if resumed is None:
        if reason is not None and config.verbose:
            _note(f"{str(folder.root)!r}: not continuing its checkpoint, {reason}; "
                  "training again")
        remove_checkpoint(folder)
        clf.set_params(callbacks=callbacks)
        clf.fit(X, y, **fit_kwargs)
        resumed_at = 0
    else:
        clf, resumed_at = resumed, len(resumed.history)
        clf.set_params(callbacks=callbacks)
        clf.initialize_callbacks()  # skorch's set_params sets up the callbacks it had
        if config.verbose:
            _note(f"{str(folder.root)!r}: continuing from its checkpoint after epoch "
                  f"{resumed_at} of {clf.max_epochs}")
        if resumed_at < clf.max_epochs:
            clf.partial_fit(X, y, epochs=clf.max_epochs - resumed_at, **fit_kwargs)
    ended = checkpoint.epochs_ended
    if not training_finished(clf, resumed_at if ended is None else ended):
        # skorch's fit ends quietly on a KeyboardInterrupt (a Ctrl-C with no handler of
        # ours, in a thread): the model is short of its epochs and not saved
        raise RunInterrupted(interrupted_message([folder.root]))
    return clf, resumed_at


def _note(message):
    from tqdm.auto import tqdm

    tqdm.write(message, file=sys.stderr)


def _history(clf):
    return [{k: v for k, v in epoch.items() if k != "batches"} for epoch in clf.history]


def load_run(folder, *, device=None):
    """The fitted model and ``params.json`` of a finished run directory, cross-checked.

    Raises
    ------
    FileNotFoundError
        ``folder`` is not a run directory.
    IncompleteRunError
        Its training did not finish.
    ValueError
        Its files are from another skmia version, edited, corrupt, links, or do not
        belong together (``model.json`` saved beside another ``params.json``, or with
        other settings); the message names the files.
    """
    run = RunDirectory(folder)
    params_path, model_path = run.path(PARAMS), run.path(MODEL_JSON)
    if not run.exists(PARAMS):
        mode = "shadow" if run.root.name == SHADOW else "defense"
        raise FileNotFoundError(
            f"{str(run.root)!r} is not a run directory (no params.json): train it with "
            f"`skmia run ... --mode {mode}` first"
        )
    if not run.is_complete():
        raise IncompleteRunError(
            f"the run in {str(run.root)!r} did not finish (no {COMPLETE}); run it again"
        )
    params = run.read_params()
    recorded = saved_params_sha256(run) if run.is_file(MODEL_JSON) else None
    if recorded is not None and recorded != file_sha256(run, PARAMS):
        raise ValueError(
            f"{str(model_path)!r} was saved beside another params.json than "
            f"{str(params_path)!r} (their SHA-256 differ): the model and its settings do "
            "not belong together (copied from another run, or one of them edited); run "
            "again to retrain"
        )
    clf = load_estimator(run, device=device)
    changed = changed_settings(params["estimator_params"], settings(clf))
    if changed:
        raise ValueError(
            f"{str(model_path)!r} and {str(params_path)!r} disagree on "
            f"{', '.join(changed)}: the model was not trained with these settings; run "
            "again to retrain"
        )
    return clf, params
