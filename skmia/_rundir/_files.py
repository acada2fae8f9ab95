"""Reading and writing files of a run directory: atomically, never through a link, and
only regular files (a FIFO is never waited on)."""

import json
import os
import stat
import tempfile
from pathlib import Path

from ._json import parse_json


class UnsafePathError(ValueError):
    """A path of a run directory that is a link, not a regular file, or outside it."""


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
