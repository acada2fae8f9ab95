"""Resumable training in a run directory: a checkpoint after every epoch.

While a run trains, ``<run>/checkpoint/`` holds the state after its last finished
epoch: ``epoch<k>/model.{json,safetensors}`` (:func:`save_estimator`: weights, optimizer
state, history, DP-SGD's accountant, AdvReg's inference network, early stopping's
snapshots), ``epoch<k>/state.safetensors`` (torch's random generator state, and what a
defense's ``_checkpoint_state`` adds, such as DP-SGD's noise seed) and ``latest.json``,
written last, which names the epoch folder, the run's ``params.json`` and the digest of
the state file. Each file is written atomically and ``latest.json`` only once its epoch
folder is whole, so a checkpoint is either the one of epoch k or the one of epoch k - 1.

Running the same command again loads the checkpoint when it was written for the same
``params.json`` and continues with ``partial_fit`` for the remaining epochs, the
random generator restored rather than seeded again: the final weights are those of
a training that was never interrupted, bit for bit (on the CPU). The checkpoint is
deleted once the model is saved, before the run is marked complete, so no file of a
finished run holds DP-SGD's noise seed or generator state.

skorch's ``fit`` ends quietly on a ``KeyboardInterrupt``; during a run's training
SIGINT and SIGTERM raise an exception skorch does not catch instead, and a training
that ended short of its epochs anyway is reported as :class:`RunInterrupted`, never
saved as finished.
"""

import contextlib
import hashlib
import re
import signal
import threading

from skorch.callbacks import Callback

from .._rundir import CHECKPOINT, Int, RunDirectory

__all__ = ["CHECKPOINT_DIR", "RunInterrupted", "stopping_on_signals", "checkpoint_callback",
           "load_checkpoint", "remove_checkpoint", "training_finished", "interrupted_message"]

CHECKPOINT_DIR = CHECKPOINT
_LATEST = "latest.json"
_STATE = "state.safetensors"
_GENERATION = re.compile(r"epoch[0-9]+")
_LATEST_SPEC = {"epoch": Int(0), "max_epochs": Int(0), "folder": str, "state_sha256": str,
                "n_cuda_states": Int(0, 64), "extra": dict}
_SIGNAL_NAMES = {signal.SIGINT: "SIGINT", signal.SIGTERM: "SIGTERM"}


class RunInterrupted(KeyboardInterrupt):
    """A run stopped by SIGINT (Ctrl-C) or SIGTERM before it finished.

    Nothing it left is marked complete; the message says what was kept (the checkpoint
    a rerun continues from). ``signum`` is the signal, for the exit status
    ``128 + signum``.
    """

    def __init__(self, message, signum=signal.SIGINT):
        super().__init__(message)
        self.signum = int(signum)

    def __reduce__(self):  # from a worker process, with its signal
        return type(self), (str(self), self.signum)


class _Stop(BaseException):
    """How a :class:`RunInterrupted` travels through a training: the signal handlers
    raise it, and the run turns it into :class:`RunInterrupted` with its message. It is
    no ``KeyboardInterrupt`` because skorch's ``fit`` swallows those (and a distilled
    student's teacher's would go on)."""

    def __init__(self, signum):
        super().__init__(signum)
        self.signum = int(signum)


def _raise_stop(signum, frame):
    raise _Stop(signum)


@contextlib.contextmanager
def stopping_on_signals():
    """SIGINT and SIGTERM raise :class:`_Stop` in the block; the handlers are restored
    after. Outside the main thread, and for a signal set to be ignored, nothing changes."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = {}
    for signum in (signal.SIGINT, signal.SIGTERM):
        handler = signal.getsignal(signum)
        if handler is not signal.SIG_IGN:
            previous[signum] = signal.SIG_DFL if handler is None else handler
            signal.signal(signum, _raise_stop)
    try:
        yield
    finally:
        for signum, handler in previous.items():
            signal.signal(signum, handler)


class EpochCheckpoint(Callback):
    """Writes the run's checkpoint after every epoch. The last callback of an epoch but
    skorch's print_log: every other one has ended the epoch (``epochs_ended`` counts
    them), and the random generator is saved as the next epoch finds it."""

    epochs_ended = None

    def __init__(self, folder, params):
        self.folder = folder
        self.params = params

    def on_epoch_end(self, net, **kwargs):
        self.epochs_ended = len(net.history)
        write_checkpoint(net, self.folder, self.params)


def checkpoint_callback(folder, params):
    """A skorch callback writing ``folder``'s checkpoint after every epoch."""
    return EpochCheckpoint(folder, params)


def write_checkpoint(clf, folder, params):
    """Write the checkpoint of ``clf`` after its last finished epoch, atomically."""
    import torch
    from safetensors.torch import save

    from ..io import save_estimator

    extra = clf._checkpoint_state()
    if extra is None:  # this training cannot be continued from a checkpoint
        return
    cpu = torch.random.get_rng_state()
    cuda = torch.cuda.get_rng_state_all() if torch.cuda.is_initialized() else []
    values, tensors = extra
    run = _run(folder)
    epoch = len(clf.history)
    generation = f"epoch{epoch}"
    run.remove_tree(CHECKPOINT, generation)  # left by an earlier, interrupted write
    run.makedirs(CHECKPOINT, generation)
    save_estimator(clf, run.child(CHECKPOINT, generation))
    state = {"rng.cpu": cpu, **{f"rng.cuda.{i}": s for i, s in enumerate(cuda)},
             **{f"extra.{k}": v.detach().to("cpu").contiguous() for k, v in tensors.items()}}
    data = save(state)
    run.write_bytes(CHECKPOINT, generation, _STATE, data=data)
    run.write_json(CHECKPOINT, _LATEST, document={
        "epoch": epoch,
        "max_epochs": int(clf.max_epochs),
        "folder": generation,
        "params": params,
        "state_sha256": hashlib.sha256(data).hexdigest(),
        "n_cuda_states": len(cuda),
        "extra": values,
    })
    for other in run.listdir(CHECKPOINT):
        if _GENERATION.fullmatch(other) and other != generation:
            run.remove_tree(CHECKPOINT, other)


def _run(folder):
    return folder if isinstance(folder, RunDirectory) else RunDirectory(folder)


def checkpoint_epoch(folder):
    """``(epoch, max_epochs)`` of ``folder``'s checkpoint, or None when it has none."""
    try:
        latest = _run(folder).read_json(CHECKPOINT, _LATEST, spec=_LATEST_SPEC)
        return latest["epoch"], latest["max_epochs"]
    except (OSError, ValueError, KeyError, TypeError):
        return None


def load_checkpoint(folder, params, *, device=None):
    """The model of ``folder``'s checkpoint, ready to continue, or why it cannot be used.

    Returns
    -------
    clf : MIADefenseClassifier or None
        The model after its last checkpointed epoch, resumed from the checkpoint
        (:meth:`~skmia.defenses.MIADefenseClassifier.resume_from`: its random generator
        state is restored when its training continues); None when there is no usable
        checkpoint.
    reason : str or None
        Why an existing checkpoint is not used (None when there is none, or it is).
    """
    import torch
    from safetensors import SafetensorError
    from safetensors.torch import load

    from ..io import load_estimator

    run = _run(folder)
    if not run.exists(CHECKPOINT, _LATEST):
        return None, None
    try:
        latest = run.read_json(CHECKPOINT, _LATEST, spec=_LATEST_SPEC)
        if latest.get("params") != params:
            return None, "it was written for other settings (params.json differs)"
        name = latest["folder"]
        if not _GENERATION.fullmatch(name):
            return None, "its latest.json names no epoch folder"
        data = run.read_bytes(CHECKPOINT, name, _STATE)
        if hashlib.sha256(data).hexdigest() != latest["state_sha256"]:
            return None, f"{_STATE} does not match its digest"
        clf = load_estimator(run.child(CHECKPOINT, name), device=device)
        if clf.resume_refusal_:
            return None, f"its model cannot be trained further ({clf.resume_refusal_})"
        if len(clf.history) != latest["epoch"]:
            return None, "its history does not hold the epochs latest.json says"
        state = load(data)
        cpu = state["rng.cpu"]
        if cpu.dtype != torch.uint8 or cpu.ndim != 1:
            return None, "its random generator state is malformed"
        cuda = [state[f"rng.cuda.{i}"] for i in range(latest["n_cuda_states"])]
        extra = {k[len("extra."):]: v for k, v in state.items() if k.startswith("extra.")}
        clf.resume_from((cpu, cuda), values=latest["extra"], tensors=extra)
    except (OSError, ValueError, KeyError, TypeError, SafetensorError) as exc:
        return None, f"it cannot be read ({exc})"
    return clf, None


def remove_checkpoint(folder):
    """Delete ``folder``'s checkpoint (``latest.json`` first, so a half-deleted one is
    never used)."""
    run = _run(folder)
    run.clear(_LATEST, folder=CHECKPOINT)
    run.remove_tree(CHECKPOINT)


def training_finished(clf, epochs_ended):
    """Whether ``clf``'s training, which ended ``epochs_ended`` epochs, ran in full.

    skorch's ``fit`` returns quietly when a ``KeyboardInterrupt`` stops it, with the
    interrupted epoch in the history; the defense's ``_training_finished`` tells a full
    training (or one early stopping ended) from such a one.
    """
    return bool(clf._training_finished(epochs_ended))


def interrupted_message(folders, signum=signal.SIGINT):
    """What an interruption left in each run folder, in one line."""
    parts = []
    for folder in folders:
        run = _run(folder)
        folder = run.root
        if run.is_complete():
            parts.append(f"{str(folder)!r} had finished")
            continue
        epochs = checkpoint_epoch(folder)
        if epochs is None:
            parts.append(f"{str(folder)!r} stopped before its first checkpoint: nothing "
                         "kept, it starts again")
        else:
            parts.append(f"{str(folder)!r} stopped after {epochs[0]} of {epochs[1]} epochs: "
                         f"its checkpoint is kept in {str(folder / CHECKPOINT)!r}")
    name = _SIGNAL_NAMES.get(signum, f"signal {signum}")
    return (f"interrupted ({name}); no unfinished run was marked complete. "
            + "; ".join(parts)
            + ". Run the same command again to continue from the checkpoints.")
