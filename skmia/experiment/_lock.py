"""A run directory's lock: one process at a time trains or attacks it.

``<run>/.lock`` is created with ``O_EXCL`` and holds the holder's pid, host, start time
and a token (JSON). A second process refuses with :class:`RunLockedError`, naming the
holder. A lock whose process is gone (no such pid on this host, or a pid now used by a
process started later) is stale and is taken over; a lock from another host cannot be
checked and is respected. Within one process the lock is re-entrant, so that
:func:`skmia.experiment.run` may hold it around :func:`skmia.experiment.attack`, which
takes it too.
"""

import contextlib
import json
import os
import secrets
import socket
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

__all__ = ["LOCK_FILE", "RunLockedError", "run_lock", "run_locks"]

LOCK_FILE = ".lock"
# a lock file that stays empty or unreadable this long was left by a crash between its
# creation and its first write
_UNREADABLE_STALE_SECONDS = 60.0

_HELD = {}  # resolved lock path -> [pid, token, depth]: the locks this process holds
_HELD_LOCK = threading.Lock()


class RunLockedError(RuntimeError):
    """Another live process holds the run directory's lock."""


@contextlib.contextmanager
def run_lock(folder, purpose="training"):
    """Hold ``folder``'s lock for the block (creating ``folder``).

    Parameters
    ----------
    folder : path-like
        The run directory.
    purpose : str, default="training"
        What the lock is for, recorded in it (``"training"``, ``"attack"``).

    Raises
    ------
    RunLockedError
        A live process holds the lock; the message names its pid, host and start time.
    """
    with run_locks([folder], purpose):
        yield


@contextlib.contextmanager
def run_locks(folders, purpose="training"):
    """Hold the locks of every folder of ``folders`` for the block, or of none."""
    taken = []
    try:
        for folder in dict.fromkeys(Path(f).resolve() for f in folders):
            _acquire(folder / LOCK_FILE, purpose)
            taken.append(folder / LOCK_FILE)
        yield
    finally:
        for path in reversed(taken):
            _release(path)


def _acquire(path, purpose):
    path.parent.mkdir(parents=True, exist_ok=True)
    with _HELD_LOCK:
        held = _HELD.get(path)
        if held is not None and held[0] == os.getpid():
            if _read(path).get("token") == held[1]:
                held[2] += 1
                return
            del _HELD[path]  # someone removed or replaced our lock file: take it anew
    token = secrets.token_hex(8)
    document = {
        "pid": os.getpid(),
        "hostname": socket.gethostname(),
        "started": datetime.now().astimezone().isoformat(timespec="seconds"),
        "process_start": _process_start(os.getpid()),
        "purpose": purpose,
        "command": " ".join([Path(sys.argv[0]).name, *sys.argv[1:]]) if sys.argv else "",
        "token": token,
    }
    for _ in range(20):
        try:
            fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o644)
        except FileExistsError:
            holder = _holder(path)
            if holder is None:
                continue  # it was released meanwhile
            if _alive(holder):
                raise RunLockedError(_locked_message(path, holder)) from None
            _take_over(path, holder)
            continue
        with os.fdopen(fd, "w", encoding="utf-8") as f:
            json.dump(document, f, indent=2, sort_keys=True)
            f.write("\n")
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
    if _read(path).get("token") == held[1]:  # never remove a lock another process took
        path.unlink(missing_ok=True)


def _read(path):
    """The lock file's JSON object; {} when it is missing, empty or not a JSON object."""
    try:
        document = json.loads(Path(path).read_text(encoding="utf-8"))
    except (OSError, ValueError):
        return {}
    return document if isinstance(document, dict) else {}


def _holder(path):
    """What the existing lock file says; None when it is gone.

    A file that is still empty or unreadable after a moment is reported with only its
    age, ``{"unreadable": seconds}``.
    """
    for _ in range(20):
        document = _read(path)
        if document.get("pid") is not None:
            return document
        if not path.exists():
            return None
        time.sleep(0.05)  # created, not yet written
    try:
        age = time.time() - path.stat().st_mtime
    except FileNotFoundError:
        return None
    return {"unreadable": age}


def _alive(holder):
    """Whether the process that wrote ``holder`` may still run."""
    if "unreadable" in holder:
        return holder["unreadable"] < _UNREADABLE_STALE_SECONDS
    if holder.get("hostname") != socket.gethostname():
        return True  # another machine: no way to tell
    pid = holder.get("pid")
    if not isinstance(pid, int) or isinstance(pid, bool) or pid <= 0:
        return False
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    except PermissionError:
        pass  # a process of another user
    except OSError:
        return False
    recorded, current = holder.get("process_start"), _process_start(pid)
    # the pid was reused by a process started after the holder: the holder is gone
    return recorded is None or current is None or recorded == current


def _process_start(pid):
    """When process ``pid`` started, in clock ticks since boot (Linux); None elsewhere."""
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
    except OSError:
        return None
    try:
        return int(stat.rpartition(")")[2].split()[19])
    except (IndexError, ValueError):
        return None


def _take_over(path, holder):
    """Remove the stale lock ``holder`` read at ``path`` (unless it changed meanwhile)."""
    aside = path.with_name(f"{path.name}.stale.{os.getpid()}.{secrets.token_hex(4)}")
    try:
        os.rename(path, aside)
    except FileNotFoundError:
        return  # another process took it over first
    moved = _read(aside)
    if moved.get("pid") is not None and moved != holder:
        # another process took the stale lock over between our read and our rename:
        # this is its live lock, put it back
        try:
            os.link(aside, path)
        except OSError:
            pass
        aside.unlink(missing_ok=True)
        raise RunLockedError(_locked_message(path, moved))
    aside.unlink(missing_ok=True)


def _locked_message(path, holder):
    folder = str(path.parent)
    if "unreadable" in holder:
        return (f"{folder!r} is locked by {str(path)!r}, which cannot be read (written "
                f"{holder['unreadable']:.0f} s ago): wait for the process writing this run "
                f"to finish, or delete that file if none runs")
    where = holder.get("hostname")
    host = "" if where == socket.gethostname() else f" on host {where}"
    what = holder.get("purpose", "training")
    command = f" ({holder['command']})" if holder.get("command") else ""
    return (f"{folder!r} is being written by process {holder.get('pid')}{host} since "
            f"{holder.get('started')} ({what}{command}); wait for it to finish or stop it. "
            f"If no such process runs any more, delete {str(path)!r}")
