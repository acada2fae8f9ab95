"""The run directory: every file name of a run, safe reads and writes, the result schema.

A **run directory** (``<out>/<dataset>[/<model>]/<method>/seed<seed>/``, made by
``skmia run``) and an **audit directory** (made by ``skmia audit``) are folders that
skmia writes and later reads back. :class:`RunDirectory` is the one object that knows
their file names and touches their files; no other module spells a file name of a run.

Everything in such a folder is untrusted input: a folder can be copied from elsewhere,
edited, or hold links. :class:`RunDirectory` therefore

- never follows a symbolic link: a path of the folder that is a link, or passes through
  one, is refused with :class:`UnsafePathError` naming it, and nothing outside the
  folder is read, written or deleted;
- reads a file only when it is a regular file (opened with ``O_NOFOLLOW |
  O_NONBLOCK`` and checked with ``fstat``: a FIFO or a device never blocks a read);
- reads JSON through :func:`check_json`, so that a wrong type (``"seed": "1000"``,
  ``1e300``, a list where an object belongs), bytes that are not UTF-8 or a lone
  surrogate give one ``ValueError`` naming the file and the key;
- writes every file atomically (a temporary file in the same folder, then
  ``os.replace``), writes ``complete.json`` last, and replaces a finished result folder
  only once the new one is complete (:meth:`RunDirectory.replace_folder`);
- holds ``.lock`` while a process writes it (:meth:`RunDirectory.lock`).

The results of every attack of a run are rows of :data:`RESULT_COLUMNS` (name -> type),
written by :meth:`RunDirectory.write_results` and read back by
:meth:`RunDirectory.read_results`; the experiment, the report and the CLI all use it.

An audit directory uses the same class: ``RunDirectory(folder)`` with
``AUDIT``/``COMPLETE`` names, ``with folder.lock("audit")``, ``folder.write_json(...)``
for its files and ``folder.mark_complete(...)`` last; ``folder.is_complete()`` tells a
finished audit, ``folder.clear(...)`` removes the files of an unfinished one.

This module imports nothing from skmia, so anyone may import it.
"""

import contextlib
import json
import math
import os
import secrets
import shutil
import socket
import stat
import sys
import tempfile
import threading
import time
from datetime import datetime
from pathlib import Path

__all__ = [
    "RunDirectory", "UnsafePathError", "RunLockedError", "Column", "RESULT_COLUMNS",
    "CONTEXT_COLUMNS", "PARAMS_SCHEMA", "check_json", "escape_text", "atomic_write_bytes",
    "atomic_write_text", "atomic_write_json", "read_json", "find_folders", "Int", "Opt",
    "ListOf", "MapOf", "OneOf",
]

# ---------------------------------------------------------------------- file names
PARAMS = "params.json"
HISTORY = "history.json"
MODEL_JSON = "model.json"
MODEL_WEIGHTS = "model.safetensors"
COMPLETE = "complete.json"
LOCK = ".lock"
CHECKPOINT = "checkpoint"
ATTACK = "attack"
REFERENCE = "reference"
SHADOW = "shadow"
AUDIT = "audit"
RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
ROC_PNG = "roc.png"
LOSS_HIST_PNG = "loss_hist.png"
COMPARE_JSON = "compare.json"
#: the files of a training, and of an attack (``attack/``), completion marker last
RUN_FILES = (PARAMS, HISTORY, MODEL_JSON, MODEL_WEIGHTS, COMPLETE)
ATTACK_FILES = (RESULTS_CSV, RESULTS_JSON, ROC_PNG, LOSS_HIST_PNG, COMPARE_JSON, COMPLETE)


class UnsafePathError(ValueError):
    """A path of a run directory that is a link, not a regular file, or outside it."""


class RunLockedError(RuntimeError):
    """Another live process holds the run directory's lock."""


# ------------------------------------------------------------------ JSON type checks


class Int:
    """An integer (never a bool or a float) in ``[low, high]``."""

    def __init__(self, low=None, high=None):
        self.low, self.high = low, high

    def problem(self, value):
        if not isinstance(value, int) or isinstance(value, bool):
            return "should be an integer"
        if (self.low is not None and value < self.low) or (
                self.high is not None and value > self.high):
            return f"should be an integer in [{self.low}, {self.high}]"
        return None


class Opt:
    """``None`` or a value of ``spec``."""

    def __init__(self, spec):
        self.spec = spec


class ListOf:
    """A JSON array whose items are of ``spec``."""

    def __init__(self, spec):
        self.spec = spec


class MapOf:
    """A JSON object of any keys whose values are of ``spec``."""

    def __init__(self, spec):
        self.spec = spec


class OneOf:
    """One of the given values."""

    def __init__(self, *values):
        self.values = values


_NAMES = {str: "a string", bool: "true or false", float: "a number", dict: "an object",
          list: "an array", object: "any value"}


def _problem(value, spec):
    """Why ``value`` is not of ``spec`` (a one-level check); None when it is."""
    if spec is object:
        return None
    if isinstance(spec, Int):
        return spec.problem(value)
    if isinstance(spec, Opt):
        return None if value is None else _problem(value, spec.spec)
    if isinstance(spec, OneOf):
        return None if value in spec.values and not isinstance(value, bool) else (
            f"should be one of {', '.join(map(repr, spec.values))}")
    if isinstance(spec, ListOf) or spec is list:
        return None if isinstance(value, (list, tuple)) else "should be an array"
    if isinstance(spec, (MapOf, dict)) or spec is dict:
        return None if isinstance(value, dict) else "should be an object"
    if spec is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "should be a number"
    if spec is str:
        return None if isinstance(value, str) else "should be a string"
    if spec is bool:
        return None if isinstance(value, bool) else "should be true or false"
    raise TypeError(f"unknown JSON spec {spec!r}")


def check_json(value, spec, where, key=""):
    """Check ``value`` (parsed JSON) against ``spec``; one ``ValueError`` naming
    ``where`` (the file) and the key of the first value that does not fit.

    ``spec`` is a type (``str``, ``float``: any number, ``bool``, ``dict``,
    ``list``, ``object``: anything), :class:`Int`, :class:`Opt`, :class:`OneOf`,
    :class:`ListOf`, :class:`MapOf`, or a dict of required keys -> spec (other keys are
    allowed). Returns ``value``.
    """
    problem = _problem(value, spec)
    if problem is not None:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ValueError(f"{str(where)!r}: key {key or '(top level)'!r} {problem}, got "
                         f"{escape_text(shown)} ({type(value).__name__})")
    inner = spec.spec if isinstance(spec, Opt) else spec
    if value is None:
        return value
    if isinstance(inner, dict):
        for name, sub in inner.items():
            if name not in value:
                raise ValueError(f"{str(where)!r} lacks the key {_join(key, name)!r}")
            check_json(value[name], sub, where, _join(key, name))
    elif isinstance(inner, MapOf):
        for name, item in value.items():
            check_json(item, inner.spec, where, _join(key, name))
    elif isinstance(inner, ListOf):
        for i, item in enumerate(value):
            check_json(item, inner.spec, where, _join(key, str(i)))
    return value


def _join(key, name):
    return f"{key}.{name}" if key else str(name)


def _no_surrogates(value, where, key=""):
    """Refuse strings (keys or values) holding a lone surrogate (``"\\ud800"`` in JSON)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{str(where)!r}: key {key or '(top level)'!r} holds a lone "
                             "surrogate, which is not text") from None
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_surrogates(item, where, _join(key, str(i)))
    elif isinstance(value, dict):
        for name, item in value.items():
            _no_surrogates(name, where, key)
            _no_surrogates(item, where, _join(key, name))


def parse_json(data, where, spec=object):
    """Parse the bytes ``data`` of file ``where`` as UTF-8 JSON of ``spec``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{str(where)!r} is not UTF-8 text (byte {exc.start})") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{str(where)!r} is not valid JSON ({exc})") from None
    _no_surrogates(document, where)
    return check_json(document, spec, where)


# ------------------------------------------------------------------ the result schema


class Column:
    """A column of the results: its JSON type (a :func:`check_json` spec) and meaning."""

    def __init__(self, spec, doc, context=False):
        self.spec, self.doc, self.context = spec, doc, context

    def __repr__(self):
        return f"Column({self.doc!r})"


_RATE = Opt(float)
#: Every column of a run's results, in order: ``name -> Column`` (its type and meaning).
#: ``attack/results.{csv,json}`` hold these; the report and the CLI read these.
RESULT_COLUMNS = {
    "dataset": Column(str, "dataset name", context=True),
    "model": Column(Opt(str), "network (CIFAR), empty for the MLP", context=True),
    "method": Column(str, "training method of the target"),
    "seed": Column(Int(0, 2**32 - 1), "seed of the split and training", context=True),
    "snapshot_epoch": Column(Opt(Int(0)), "epoch of an early-stopping snapshot; empty: "
                                          "the final model"),
    "epsilon": Column(_RATE, "the epsilon DP-SGD accounted"),
    "attack": Column(str, "attack name"),
    "train_accuracy": Column(_RATE, "target's accuracy on its members"),
    "test_accuracy": Column(_RATE, "target's accuracy on its non-members"),
    "accuracy": Column(_RATE, "attack accuracy, (TPR + TNR) / 2"),
    "auc": Column(_RATE, "attack ROC AUC"),
    "tpr_at_0.01%fpr": Column(_RATE, "TPR at 0.01 % FPR (empty below 10,000 non-members)"),
    "tpr_at_0.1%fpr": Column(_RATE, "TPR at 0.1 % FPR"),
    "tpr_at_1%fpr": Column(_RATE, "TPR at 1 % FPR"),
    "empirical_epsilon": Column(_RATE, "lower bound on epsilon at 95 % confidence"),
    "shadow_method": Column(str, "the shadow's training method", context=True),
}
#: columns that repeat the run's settings (shown once per run, not per row)
CONTEXT_COLUMNS = tuple(name for name, c in RESULT_COLUMNS.items() if c.context)
_RESULTS_SPEC = {"rows": ListOf({name: c.spec for name, c in RESULT_COLUMNS.items()})}

#: What ``params.json`` of a run must hold (other keys are allowed).
PARAMS_SCHEMA = {
    "dataset": str, "method": str, "model": Opt(str), "seed": Int(0, 2**32 - 1),
    "partition": OneOf("target", "shadow"), "estimator_params": MapOf(str),
}
HISTORY_SCHEMA = ListOf(MapOf(object))


def escape_text(text):
    """``text`` with control and other unprintable characters as ``\\x..`` escapes, so that
    no printed value can move the cursor, retitle or clear a terminal."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else
                   (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
                   for c in text)


# ------------------------------------------------------------------- atomic writes


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` through a temporary file in the same folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, tmp = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        mask = os.umask(0)
        os.umask(mask)
        os.fchmod(fd, 0o666 & ~mask)  # mkstemp's file is private: the mode open() gives
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        os.replace(tmp, path)
    except BaseException:
        Path(tmp).unlink(missing_ok=True)
        raise


def atomic_write_text(path, text):
    """Write ``text`` (UTF-8) to ``path`` atomically."""
    atomic_write_bytes(path, text.encode("utf-8"))


def _json_bytes(obj):
    return (json.dumps(obj, indent=2, sort_keys=True, allow_nan=True) + "\n").encode()


def atomic_write_json(path, obj):
    """Write ``obj`` as indented JSON to ``path`` atomically."""
    atomic_write_bytes(path, _json_bytes(obj))


def read_json(path, spec=object):
    """Read the JSON file ``path`` (a regular file, not through a link) of ``spec``."""
    path = Path(path)
    return parse_json(_read_regular(path, path), path, spec)


def _read_regular(path, shown):
    """The bytes of ``path``, opened without following a link or blocking on a FIFO."""
    flags = os.O_RDONLY | os.O_NOFOLLOW | os.O_NONBLOCK | getattr(os, "O_CLOEXEC", 0)
    try:
        fd = os.open(path, flags)
    except FileNotFoundError:
        raise FileNotFoundError(f"{str(shown)!r} does not exist") from None
    except OSError as exc:
        if Path(path).is_symlink():
            raise UnsafePathError(f"{str(shown)!r} is a symbolic link; skmia does not "
                                  "follow links in a run directory") from None
        raise OSError(f"{str(shown)!r} cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePathError(f"{str(shown)!r} is not a regular file; refusing to "
                                  "read it")
        return f.read()


def find_folders(root, marker):
    """Folders below ``root`` (``root`` included) holding a regular file ``marker``,
    sorted, walking no symbolic link."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        if marker in files and stat.S_ISREG(os.lstat(os.path.join(folder, marker)).st_mode):
            found.append(Path(folder))
    return sorted(found)


# ---------------------------------------------------------------- the run directory


class RunDirectory:
    """A run (or audit) directory: its file names, and every read and write of them.

    Parameters
    ----------
    root : path-like
        The folder. It may itself be reached through a link (it is resolved once);
        nothing below it may be one.
    """

    def __init__(self, root):
        self.root = Path(root)

    def __repr__(self):
        return f"RunDirectory({str(self.root)!r})"

    def __fspath__(self):
        return str(self.root)

    # paths ---------------------------------------------------------------------
    def path(self, *parts):
        """``root/parts``, refused (:class:`UnsafePathError`) when a part is a link,
        is ``..`` or absolute, or the path resolves outside the folder."""
        path = self.root
        for part in Path(*parts).parts if parts else ():
            if part in ("..", ".", "") or os.path.isabs(part):
                raise UnsafePathError(f"{part!r} is not a name inside {str(self.root)!r}")
            path = path / part
            if path.is_symlink():
                raise UnsafePathError(
                    f"{str(path)!r} is a symbolic link; skmia never follows links inside a "
                    f"run directory (it could reach outside {str(self.root)!r}): remove it")
        if path.exists():
            real, base = path.resolve(), self.root.resolve()
            if real != base and base not in real.parents:
                raise UnsafePathError(f"{str(path)!r} resolves to {str(real)!r}, outside "
                                      f"{str(self.root)!r}")
        return path

    def child(self, *parts):
        """The folder ``parts`` below this one, as a :class:`RunDirectory` of its own."""
        return RunDirectory(self.path(*parts))

    def exists(self, *parts):
        return os.path.lexists(self.path(*parts))

    def is_file(self, *parts):
        """Whether ``parts`` is a regular file (a link or a FIFO is not)."""
        try:
            return stat.S_ISREG(os.lstat(self.path(*parts)).st_mode)
        except FileNotFoundError:
            return False

    def is_complete(self, *parts):
        """Whether the folder (or its subfolder ``parts``) holds ``complete.json``."""
        return self.is_file(*parts, COMPLETE)

    # reading -------------------------------------------------------------------
    def read_bytes(self, *parts):
        """The bytes of the regular file ``parts`` (never through a link, never a FIFO)."""
        path = self.path(*parts)
        return _read_regular(path, path)

    def read_json(self, *parts, spec=object):
        """The JSON document ``parts``, checked against ``spec`` (see :func:`check_json`)."""
        path = self.path(*parts)
        return parse_json(_read_regular(path, path), path, spec)

    def read_params(self):
        """``params.json``, checked against :data:`PARAMS_SCHEMA`."""
        return self.read_json(PARAMS, spec=PARAMS_SCHEMA)

    def read_results(self):
        """The attack results (``attack/results.json``) as a DataFrame of
        :data:`RESULT_COLUMNS`, each value checked against its column's type."""
        return _results_frame(self.read_json(ATTACK, RESULTS_JSON, spec=_RESULTS_SPEC)["rows"])

    # writing -------------------------------------------------------------------
    def _target(self, parts):
        path = self.path(*parts)
        self.makedirs(*Path(*parts).parts[:-1])
        if os.path.isdir(path) and not os.path.islink(path):
            raise UnsafePathError(f"{str(path)!r} is a folder; expected a file")
        return path

    def makedirs(self, *parts):
        """Create the folder ``parts`` (and the root), checking each part for links."""
        self.root.mkdir(parents=True, exist_ok=True)
        for i in range(1, len(parts) + 1):
            path = self.path(*parts[:i])
            path.mkdir(exist_ok=True)
            if not path.is_dir():
                raise UnsafePathError(f"{str(path)!r} is not a folder")
        return self.path(*parts)

    def write_bytes(self, *parts, data):
        """Write ``data`` to ``parts`` atomically (a link there is refused, not followed)."""
        atomic_write_bytes(self._target(parts), data)

    def write_json(self, *parts, document):
        """Write ``document`` as JSON to ``parts`` atomically."""
        self.write_bytes(*parts, data=_json_bytes(document))

    def mark_complete(self, *parts, document=None):
        """Write ``complete.json`` (last) in the folder or its subfolder ``parts``."""
        self.write_json(*parts, COMPLETE, document=document or {})

    def write_results(self, rows, *, folder=ATTACK):
        """Write rows of :data:`RESULT_COLUMNS` as ``results.csv`` and ``results.json``
        in ``folder``; a row with another column, or a value of another type, is refused.
        Returns the table, as :meth:`read_results` gives it back."""
        clean = [{name: _json_value(row.get(name)) for name in RESULT_COLUMNS}
                 for row in rows]
        for row in rows:
            extra = sorted(set(row) - set(RESULT_COLUMNS))
            if extra:
                raise ValueError(f"result column(s) {extra} are not in RESULT_COLUMNS")
        check_json({"rows": clean}, _RESULTS_SPEC, self.path(folder, RESULTS_JSON))
        table = _results_frame(clean)
        self.write_bytes(folder, RESULTS_CSV, data=table.to_csv(index=False).encode())
        self.write_json(folder, RESULTS_JSON, document={"rows": clean})
        return table

    # removing ------------------------------------------------------------------
    def clear(self, *names, folder=()):
        """Remove the files ``names`` of the folder (or of its subfolder ``folder``);
        ``complete.json`` first, so a half-cleared folder never looks finished."""
        folder = (folder,) if isinstance(folder, str) else tuple(folder)
        if not os.path.lexists(self.path(*folder)):
            return
        for name in sorted(names, key=lambda n: n != COMPLETE):
            path = self.path(*folder, name)
            if os.path.isdir(path):
                raise UnsafePathError(f"{str(path)!r} is a folder; expected a file")
            path.unlink(missing_ok=True)

    def remove_tree(self, *parts):
        """Delete the folder ``parts`` and everything in it (links inside are removed,
        never followed); a link in its place is refused."""
        path = self.path(*parts)
        if os.path.lexists(path):
            if not path.is_dir():
                raise UnsafePathError(f"{str(path)!r} is not a folder")
            shutil.rmtree(path)

    def replace_folder(self, new, old):
        """Put the complete folder ``new`` in place of ``old``: ``old`` keeps its files
        until ``new`` is whole, then ``old`` is moved aside and deleted."""
        source, target = self.path(new), self.path(old)
        aside = self.path(f".{old}.old.{secrets.token_hex(4)}")
        if os.path.lexists(target):
            os.rename(target, aside)
        os.rename(source, target)
        self.remove_tree(aside.name)

    # the lock ------------------------------------------------------------------
    def lock(self, purpose="training"):
        """Hold ``.lock`` for a ``with`` block; see :func:`hold_locks`."""
        return hold_locks([self], purpose)


def _results_frame(rows):
    """Rows of :data:`RESULT_COLUMNS` as a DataFrame: rates as floats (NaN where none)."""
    import pandas as pd

    table = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    for name, column in RESULT_COLUMNS.items():
        if column.spec is _RATE:
            table[name] = table[name].astype(float)
    return table


def _json_value(value):
    """A value of a result row as JSON data: NaN and numpy scalars become None / Python."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value


# ------------------------------------------------------------------------- the lock
#
# ``.lock`` is created with O_EXCL and holds the holder's pid, host, start time and a
# token (JSON). A lock whose process is gone (no such pid on this host, a pid now used by
# a process started later, a pid no process can have) is stale and is taken over, with a
# line on stderr; so is a ``.lock`` that is not a regular file. A lock from another host
# cannot be checked and is respected. Within one process the lock is re-entrant.

_UNREADABLE_STALE_SECONDS = 60.0  # an empty lock this old was left by a crash
_PID_MAX = 2**22  # Linux's largest pid_max
_HELD = {}  # resolved lock path -> [pid, token, depth]
_HELD_LOCK = threading.Lock()


@contextlib.contextmanager
def hold_locks(folders, purpose="training"):
    """Hold the locks of every folder of ``folders`` (RunDirectory or path) for the block,
    or of none; :class:`RunLockedError` names a live holder."""
    taken = []
    try:
        for folder in dict.fromkeys(Path(f).resolve() for f in folders):
            folder.mkdir(parents=True, exist_ok=True)
            _acquire(folder / LOCK, purpose)
            taken.append(folder / LOCK)
        yield
    finally:
        for path in reversed(taken):
            _release(path)


def _acquire(path, purpose):
    with _HELD_LOCK:
        held = _HELD.get(path)
        if held is not None and held[0] == os.getpid():
            if _read_lock(path).get("token") == held[1]:
                held[2] += 1
                return
            del _HELD[path]  # someone removed or replaced our lock file: take it anew
    token = secrets.token_hex(8)
    document = {
        "pid": os.getpid(), "hostname": socket.gethostname(), "purpose": purpose,
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
        "process_start": _process_start(os.getpid()), "token": token,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
    }
    for _ in range(20):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL | os.O_NOFOLLOW, 0o644)
        except FileExistsError:
            if not _is_regular(path):
                _remove_odd_lock(path)
                continue
            holder = _holder(path)
            if holder is None:
                continue  # released meanwhile
            if _alive(holder):
                raise RunLockedError(_locked_message(path, holder)) from None
            _take_over(path, holder)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            f.write(json.dumps(document, indent=2, sort_keys=True) + "\n")
            f.flush()
            os.fsync(f.fileno())
        with _HELD_LOCK:
            _HELD[path] = [os.getpid(), token, 1]
        return
    raise RunLockedError(f"could not take the lock {str(path)!r}: other processes keep "
                         "taking it; try again")


def _release(path):
    with _HELD_LOCK:
        held = _HELD.get(path)
        if held is None or held[0] != os.getpid():
            return
        held[2] -= 1
        if held[2] > 0:
            return
        del _HELD[path]
    if _read_lock(path).get("token") == held[1]:  # never remove a lock another took
        path.unlink(missing_ok=True)


def _is_regular(path):
    try:
        return stat.S_ISREG(os.lstat(path).st_mode)
    except FileNotFoundError:
        return True  # gone: the next O_EXCL open tells


def _remove_odd_lock(path):
    """A ``.lock`` that is a folder, a link or a FIFO is no lock skmia wrote: remove it
    (a link is removed, never followed) and say so."""
    mode = os.lstat(path).st_mode
    kind = ("a folder" if stat.S_ISDIR(mode) else "a symbolic link" if stat.S_ISLNK(mode)
            else "not a regular file")
    if stat.S_ISDIR(mode):
        shutil.rmtree(path)
    else:
        path.unlink(missing_ok=True)
    print(f"skmia: {str(path)!r} was {kind}, not a lock skmia writes; treated it as stale "
          "and removed it", file=sys.stderr)


def _read_lock(path):
    """The lock file's JSON object; {} when it is missing, unreadable or not an object."""
    try:
        document = parse_json(_read_regular(path, path), path)
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _holder(path):
    """What the lock file says; None when it is gone; ``{"unreadable": age}`` when it stays
    empty or unreadable for a moment."""
    for _ in range(20):
        document = _read_lock(path)
        if document.get("pid") is not None:
            return document
        if not os.path.lexists(path):
            return None
        time.sleep(0.05)  # created, not yet written
    try:
        return {"unreadable": time.time() - os.lstat(path).st_mtime}
    except FileNotFoundError:
        return None


def _alive(holder):
    """Whether the process that wrote ``holder`` may still run."""
    if "unreadable" in holder:
        return holder["unreadable"] < _UNREADABLE_STALE_SECONDS
    if holder.get("hostname") != socket.gethostname():
        return True  # another machine: no way to tell
    pid = holder.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or not 0 < pid <= _PID_MAX:
        return False  # no process has this pid
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # a process of another user
    except (OSError, OverflowError):
        return False
    recorded, current = holder.get("process_start"), _process_start(pid)
    return recorded is None or current is None or recorded == current


def _process_start(pid):
    """When process ``pid`` started, in clock ticks since boot (Linux); None elsewhere."""
    try:
        text = Path(f"/proc/{pid}/stat").read_text()
        return int(text.rpartition(")")[2].split()[19])
    except (OSError, IndexError, ValueError):
        return None


def _take_over(path, holder):
    """Remove the stale lock ``holder`` read at ``path`` (unless it changed meanwhile)."""
    aside = path.with_name(f"{path.name}.stale.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # another process took it over first
    moved = _read_lock(aside)
    try:
        if moved.get("pid") is not None and moved != holder:
            # another process took the stale lock over between our read and our rename:
            # this is its live lock, put it back
            with contextlib.suppress(OSError):
                os.link(aside, path)
            raise RunLockedError(_locked_message(path, moved))
    finally:
        if os.path.isdir(aside) and not os.path.islink(aside):
            shutil.rmtree(aside)
        else:
            aside.unlink(missing_ok=True)
    print(f"skmia: {str(path)!r} was left by process {escape_text(holder.get('pid'))}, "
          "which no longer runs; treated it as stale and took it over", file=sys.stderr)


def _locked_message(path, holder):
    folder = str(path.parent)
    if "unreadable" in holder:
        return (f"{folder!r} is locked by {str(path)!r}, which cannot be read (written "
                f"{holder['unreadable']:.0f} s ago): wait for the process writing this run "
                f"to finish, or delete that file if none runs")
    where = holder.get("hostname")
    host = "" if where == socket.gethostname() else f" on host {escape_text(where)}"
    what = escape_text(holder.get("purpose", "training"))
    command = f" ({escape_text(holder['command'])})" if holder.get("command") else ""
    return (f"{folder!r} is being written by process {escape_text(holder.get('pid'))}{host} "
            f"since {escape_text(holder.get('started'))} ({what}{command}); wait for it to "
            f"finish or stop it. If no such process runs any more, delete {str(path)!r}")
