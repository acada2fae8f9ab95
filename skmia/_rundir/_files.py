"""Reading and writing files of a run directory: atomically, never through a link, and
only regular files (a FIFO is never waited on).

A folder is walked by descriptor: each name below the folder a caller trusts is opened
with ``O_NOFOLLOW | O_DIRECTORY`` relative to its parent's descriptor (``dir_fd``), and
files are created, renamed and removed relative to their folder's descriptor, so no name
is resolved twice and a folder swapped for a link meanwhile is refused, never followed.
Where the platform lacks ``dir_fd`` (:data:`DIR_FD` is False), each name is checked and
then used by path: links already there are refused, but a concurrent swap between the
check and the use is not excluded.
"""

import contextlib
import errno
import json
import os
import secrets
import shutil
import stat
from pathlib import Path

from ._json import parse_json

_CLOEXEC = getattr(os, "O_CLOEXEC", 0)
_NOFOLLOW = getattr(os, "O_NOFOLLOW", 0)
#: whether folders are walked by descriptor here (Linux, macOS, the BSDs)
DIR_FD = (all(f in os.supports_dir_fd for f in (os.open, os.mkdir, os.rename, os.unlink,
                                                 os.stat, os.rmdir))
          and hasattr(os, "O_DIRECTORY") and bool(_NOFOLLOW)
          and shutil.rmtree.avoids_symlink_attacks)


class UnsafePathError(ValueError):
    """A path of a run directory that is a link, not a regular file, or outside it."""


# ------------------------------------------------------------------ folders by descriptor
# A folder "handle" is a descriptor (DIR_FD) or, elsewhere, a checked path.


def _at(handle, name):
    """``(name, keywords)`` that address ``name`` in the folder ``handle``."""
    if isinstance(handle, int):
        return name, {"dir_fd": handle}
    return os.path.join(handle, name), {}


def lstat_at(handle, name):
    """``lstat`` of ``name`` in the folder (None when it does not exist)."""
    where, kw = _at(handle, name)
    try:
        return os.stat(where, follow_symlinks=False, **kw)
    except FileNotFoundError:
        return None


def _refuse_link(st, shown):
    if st is not None and stat.S_ISLNK(st.st_mode):
        raise UnsafePathError(
            f"{str(shown)!r} is a symbolic link; skmia never follows links inside a run "
            "directory (it could reach outside it): remove it")


def _open_child(handle, name, shown, create):
    """The handle of the folder ``name`` in ``handle`` (created if ``create``)."""
    for _ in range(2):
        if not isinstance(handle, int):  # no dir_fd: check, then use the path
            path = os.path.join(handle, name)
            st = lstat_at(handle, name)
            _refuse_link(st, shown)
            if st is None and create:
                with contextlib.suppress(FileExistsError):
                    os.mkdir(path)
                continue
            if st is None:
                raise FileNotFoundError(f"{str(shown)!r} does not exist")
            if not stat.S_ISDIR(st.st_mode):
                raise UnsafePathError(f"{str(shown)!r} is not a folder")
            return path
        try:
            return os.open(name, os.O_RDONLY | os.O_DIRECTORY | _NOFOLLOW | _CLOEXEC,
                           dir_fd=handle)
        except FileNotFoundError:
            if not create:
                raise FileNotFoundError(f"{str(shown)!r} does not exist") from None
            with contextlib.suppress(FileExistsError):
                os.mkdir(name, 0o777, dir_fd=handle)
        except OSError as exc:
            if exc.errno not in (errno.ELOOP, errno.ENOTDIR, errno.EMLINK):
                raise
            _refuse_link(lstat_at(handle, name), shown)
            raise UnsafePathError(f"{str(shown)!r} is not a folder") from None
    raise UnsafePathError(f"{str(shown)!r} changed while it was opened; try again")


@contextlib.contextmanager
def open_folder(top, names, *, create=False):
    """The handle of ``top/names`` for a ``with`` block: ``top`` is opened by its path
    (whoever chose it is trusted, links included), each name of ``names`` below it
    without following a link. ``create``: make missing folders (``top`` too)."""
    top = Path(top)
    if create:
        top.mkdir(parents=True, exist_ok=True)
    if DIR_FD:
        try:
            handle = os.open(top, os.O_RDONLY | os.O_DIRECTORY | _CLOEXEC)
        except FileNotFoundError:
            raise FileNotFoundError(f"{str(top)!r} does not exist") from None
        except NotADirectoryError:
            raise UnsafePathError(f"{str(top)!r} is not a folder") from None
    else:
        if not top.is_dir():
            raise FileNotFoundError(f"{str(top)!r} does not exist or is not a folder")
        handle = str(top)
    shown = top
    try:
        for name in names:
            shown = shown / name
            child = _open_child(handle, name, shown, create)
            close_folder(handle)
            handle = child
        yield handle
    finally:
        close_folder(handle)


def close_folder(handle):
    if isinstance(handle, int):
        os.close(handle)


def read_at(handle, name, shown):
    """The bytes of the regular file ``name`` of the folder, never through a link and
    never waiting on a FIFO."""
    where, kw = _at(handle, name)
    flags = os.O_RDONLY | _NOFOLLOW | getattr(os, "O_NONBLOCK", 0) | _CLOEXEC
    try:
        fd = os.open(where, flags, **kw)
    except FileNotFoundError:
        raise FileNotFoundError(f"{str(shown)!r} does not exist") from None
    except OSError as exc:
        _refuse_link(lstat_at(handle, name), shown)
        raise OSError(f"{str(shown)!r} cannot be read ({exc.strerror})") from None
    with os.fdopen(fd, "rb") as f:
        if not stat.S_ISREG(os.fstat(fd).st_mode):
            raise UnsafePathError(f"{str(shown)!r} is not a regular file; refusing to "
                                  "read it")
        return f.read()


def write_at(handle, name, data, shown):
    """Write ``data`` as ``name`` of the folder atomically: a new temporary file there
    (``O_EXCL | O_NOFOLLOW``), flushed to disk, renamed over ``name``."""
    st = lstat_at(handle, name)
    _refuse_link(st, shown)
    if st is not None and stat.S_ISDIR(st.st_mode):
        raise UnsafePathError(f"{str(shown)!r} is a folder; expected a file")
    tmp = f".{name}.{secrets.token_hex(4)}.part"
    where, kw = _at(handle, tmp)
    fd = os.open(where, os.O_WRONLY | os.O_CREAT | os.O_EXCL | _NOFOLLOW | _CLOEXEC,
                 0o666, **kw)
    try:
        with os.fdopen(fd, "wb") as f:
            f.write(data)
            f.flush()
            os.fsync(f.fileno())
        rename_at(handle, tmp, name)
    except BaseException:
        with contextlib.suppress(OSError):
            unlink_at(handle, tmp)
        raise


def rename_at(handle, source, target):
    """Rename ``source`` to ``target``, both in the folder (neither link is followed)."""
    if isinstance(handle, int):
        os.replace(source, target, src_dir_fd=handle, dst_dir_fd=handle)
    else:
        os.replace(os.path.join(handle, source), os.path.join(handle, target))


def unlink_at(handle, name):
    where, kw = _at(handle, name)
    os.unlink(where, **kw)


def rmtree_at(handle, name):
    """Delete the folder ``name`` of the folder and everything in it; links inside are
    removed, never followed."""
    if isinstance(handle, int):
        shutil.rmtree(name, dir_fd=handle)
    else:
        shutil.rmtree(os.path.join(handle, name))


def listdir_at(handle):
    """The names in the folder."""
    if isinstance(handle, int):
        fd = os.dup(handle)
        try:
            return sorted(os.listdir(fd))
        finally:
            os.close(fd)
    return sorted(os.listdir(handle))


# ------------------------------------------------------------------------- by path


def atomic_write_bytes(path, data):
    """Write ``data`` to ``path`` through a temporary file in the same folder (the
    folder is the caller's choice: reached by its path; the file is never a link)."""
    path = Path(path)
    with open_folder(path.parent, (), create=True) as handle:
        write_at(handle, path.name, data, path)


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
    path = Path(path)
    try:
        with open_folder(path.parent, ()) as handle:
            return read_at(handle, path.name, shown)
    except FileNotFoundError:
        raise FileNotFoundError(f"{str(shown)!r} does not exist") from None


def find_folders(root, marker):
    """Folders below ``root`` (``root`` included) holding a regular file ``marker``,
    sorted, walking no symbolic link."""
    found = []
    for folder, dirs, files in os.walk(root, followlinks=False):
        dirs.sort()
        if marker in files and stat.S_ISREG(os.lstat(os.path.join(folder, marker)).st_mode):
            found.append(Path(folder))
    return sorted(found)
