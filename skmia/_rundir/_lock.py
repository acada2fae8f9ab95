"""A run directory's ``.lock``: one process at a time writes it."""

import contextlib
import json
import os
import secrets
import shutil
import socket
import stat
import sys
import threading
import time
from datetime import datetime
from pathlib import Path

from ._files import _read_regular
from ._json import escape_text, parse_json

LOCK = ".lock"


class RunLockedError(RuntimeError):
    """Another live process holds the run directory's lock."""


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
