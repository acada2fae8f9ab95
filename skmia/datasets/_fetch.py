"""Where datasets live on disk, and how files get there: atomic, verified downloads.

Every remote file skmia knows is described by a :class:`RemoteFile` (all of them are
written down in :mod:`skmia._registry`): its name in the data home, the URLs to try in
order, and its SHA-256 and/or MD5 when one is known. A file already in the data home
(downloaded earlier or placed there by hand) is used as is, after its checksum is
verified. A download goes to a temporary file in the same folder and is
renamed into place only once complete and verified, so an interrupted or corrupt
download never leaves a file that a later call would take as complete.

A parsed dataset is cached as an ``.npz`` beside its archive, with a record of the
archive it was parsed from (size, modification time, SHA-256) and of the parser's
version. A cache that does not match its archive, was written by another parser, or
holds arrays of the wrong shape, type or range is not used: it is deleted with a
:class:`CacheWarning` and rebuilt from the archive.
"""

import functools
import hashlib
import http.client
import os
import tempfile
import urllib.request
import warnings
import zipfile
from pathlib import Path

import numpy as np

from .._registry import RemoteFile

__all__ = [
    "CacheWarning", "RemoteFile", "get_data_home", "fetch_file", "atomic_savez",
    "cache_record", "load_npz_cache",
]

_CHUNK = 1 << 20
_PROGRESS_MIN_BYTES = 4 << 20
_TIMEOUT_S = 60


def get_data_home(data_home=None):
    """Return the folder where skmia keeps datasets.

    Parameters
    ----------
    data_home : str or path-like, default=None
        The folder to use. When None, ``$SKMIA_DATA_HOME`` if set, else ``~/skmia_data``.

    Returns
    -------
    data_home : pathlib.Path
        The folder, with ``~`` expanded. It is not created here: a read-only folder that
        already holds the files is a valid data home.

    Examples
    --------
    >>> from skmia.datasets import get_data_home
    >>> str(get_data_home("/tmp/my_data"))
    '/tmp/my_data'
    """
    if data_home is None:
        data_home = os.environ.get("SKMIA_DATA_HOME") or os.path.join("~", "skmia_data")
    return Path(data_home).expanduser()


def sha256sum(path):
    """Return the hex SHA-256 of the file at ``path``."""
    digest = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            digest.update(chunk)
    return digest.hexdigest()


# The CIFAR archives' publisher gives only MD5s. A digest given in advance still pins the
# file (finding other bytes with a given MD5 is out of reach), so FIPS builds may use it.
_md5 = functools.partial(hashlib.md5, usedforsecurity=False)


def _checks(remote):
    """``(name, hash constructor, expected hex digest)`` for each checksum of ``remote``."""
    checks = []
    if remote.sha256 is not None:
        checks.append(("SHA-256", hashlib.sha256, remote.sha256))
    if remote.md5 is not None:
        checks.append(("MD5", _md5, remote.md5))
    return checks


def _manual_instructions(remote, folder):
    urls = "\n".join(f"  {url}" for url in remote.urls)
    return (
        f"Download {remote.filename!r} by hand from one of\n{urls}\n"
        f"and put it in the folder {str(folder)!r} (the data home: set it with "
        f"`data_home=` or the SKMIA_DATA_HOME environment variable)."
    )


def fetch_file(remote, data_home=None, *, download_if_missing=True):
    """Return the local path of ``remote``, downloading it first when needed.

    Parameters
    ----------
    remote : RemoteFile
        The file to fetch.
    data_home : str or path-like, default=None
        See :func:`get_data_home`.
    download_if_missing : bool, default=True
        When False, a missing file raises ``FileNotFoundError`` instead of downloading.

    Returns
    -------
    path : pathlib.Path
        Path of the verified file.

    Raises
    ------
    FileNotFoundError
        The file is missing and ``download_if_missing`` is False.
    ValueError
        A file present in the data home does not match the expected checksum.
    OSError
        Every URL failed (offline, dead link, or wrong bytes); the message names each
        URL, the file name and the folder to put it in by hand.
    """
    folder = get_data_home(data_home)
    path = folder / remote.filename
    if path.is_file():
        _verify(path, remote)
        return path
    if not download_if_missing:
        raise FileNotFoundError(
            f"{remote.filename!r} is not in the data home {str(folder)!r} and "
            f"download_if_missing=False.\n" + _manual_instructions(remote, folder)
        )
    try:
        folder.mkdir(parents=True, exist_ok=True)
    except OSError as exc:
        raise OSError(
            f"cannot create the data home {str(folder)!r} ({exc}).\n"
            + _manual_instructions(remote, folder)
        ) from exc
    failures = []
    for url in remote.urls:
        try:
            _download(url, path, _checks(remote))
            return path
        # URLError and HTTPError are OSErrors; IncompleteRead is an HTTPException
        except (OSError, ValueError, http.client.HTTPException) as exc:
            failures.append(f"  {url}: {exc}")
    raise OSError(
        f"could not download {remote.filename!r}:\n" + "\n".join(failures) + "\n"
        + _manual_instructions(remote, folder)
    )


def _verify(path, remote):
    checks = _checks(remote)
    if not checks:
        return
    digests = [make() for _, make, _ in checks]
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(_CHUNK), b""):
            for digest in digests:
                digest.update(chunk)
    for (name, _, expected), digest in zip(checks, digests, strict=True):
        actual = digest.hexdigest()
        if actual != expected:
            raise ValueError(
                f"{str(path)!r} is corrupt or not the expected file: its {name} is {actual}, "
                f"expected {expected}. Delete it to download it again, or replace it with "
                f"the file from {remote.urls[0]}."
            )


def _download(url, path, checks):
    if not url.startswith(("https://", "http://")):
        raise ValueError(f"only http(s) URLs are downloaded, got {url!r}")
    fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    try:
        digests = [make() for _, make, _ in checks]
        # the scheme is checked above: no file:// or custom openers reach urlopen
        with os.fdopen(fd, "wb") as out, urllib.request.urlopen(url, timeout=_TIMEOUT_S) as resp:  # noqa: S310
            total = int(resp.headers.get("Content-Length") or 0) or None
            with _progress(total, path.name) as bar:
                for chunk in iter(lambda: resp.read(_CHUNK), b""):
                    out.write(chunk)
                    for digest in digests:
                        digest.update(chunk)
                    bar.update(len(chunk))
            if total is not None and bar.n != total:
                raise OSError(f"connection closed after {bar.n} of {total} bytes")
            out.flush()
            os.fsync(out.fileno())
        for (name, _, expected), digest in zip(checks, digests, strict=True):
            if digest.hexdigest() != expected:
                raise ValueError(
                    f"checksum mismatch: {name} {digest.hexdigest()}, expected {expected}"
                )
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise


class _NoProgress:
    n = 0

    def update(self, k):
        self.n += k

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        return False


def _progress(total, name):
    if total is None or total < _PROGRESS_MIN_BYTES:
        return _NoProgress()
    from tqdm.auto import tqdm

    return tqdm(total=total, unit="B", unit_scale=True, desc=f"downloading {name}", leave=False)


def atomic_savez(path, **arrays):
    """Write ``arrays`` to ``path`` as an uncompressed ``.npz``, atomically.

    Returns True on success and False when the folder is not writable (a read-only data
    home is valid; the parsed cache is then simply not kept).
    """
    path = Path(path)
    try:
        fd, tmp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".part", dir=path.parent)
    except OSError:
        return False
    try:
        with os.fdopen(fd, "wb") as out:
            np.savez(out, **arrays)
            out.flush()
            os.fsync(out.fileno())
        os.replace(tmp_name, path)
    except BaseException:
        Path(tmp_name).unlink(missing_ok=True)
        raise
    return True


class CacheWarning(UserWarning):
    """A parsed dataset cache (``.npz``) was not used, and is rebuilt from the archive.

    It did not match the archive beside it, was written by another version of skmia's
    parser, held arrays of the wrong shape, type or range, or could not be read. The
    data returned are parsed from the archive; the warning says which file was wrong.
    """


# the arrays of a cache that record what it was parsed from
_RECORD = ("cache_version", "source_size", "source_mtime_ns", "source_sha256")


def cache_record(source, version):
    """The arrays that tie a cache to the raw file ``source`` and to parser ``version``.

    Saved in the cache beside the data (``atomic_savez(cache, X=X, **cache_record(...))``)
    for :func:`load_npz_cache` to compare with the file found later.
    """
    stat = Path(source).stat()
    return {
        "cache_version": np.int64(version),
        "source_size": np.int64(stat.st_size),
        "source_mtime_ns": np.int64(stat.st_mtime_ns),
        "source_sha256": np.str_(sha256sum(source)),
    }


def _stale(record, source, version):
    """Why the cache's ``record`` does not match parser ``version`` and the file
    ``source`` (when present); None when it does."""
    if set(record) != set(_RECORD):
        return "its record of the archive it was parsed from is incomplete"
    try:
        cached_version = int(record["cache_version"])
        size, mtime = int(record["source_size"]), int(record["source_mtime_ns"])
        sha = str(record["source_sha256"])
    except (TypeError, ValueError):
        return "its record of the archive is malformed"
    if cached_version != version:
        return f"it was written by version {cached_version} of the parser, not {version}"
    if source is None or not Path(source).is_file():
        return None  # a cache kept without its archive is used as it is
    stat = Path(source).stat()
    if (size, mtime) != (stat.st_size, stat.st_mtime_ns) and sha != sha256sum(source):
        return f"it was parsed from another {Path(source).name!r} than the one beside it"
    return None


def load_npz_cache(path, keys, *, source=None, version=None, check=None):
    """Load the arrays ``keys`` from the cache ``path``, or None when there is none to use.

    Parameters
    ----------
    path : path-like
        The ``.npz`` cache.
    keys : sequence of str
        The arrays to return.
    source : path-like, default=None
        The raw file the cache is parsed from. When it is present, the cache is used
        only if it was parsed from that very file (same size and modification time, or
        else the same SHA-256).
    version : int, default=None
        The parser's version; a cache written by another one is not used. None skips
        the record (see :func:`cache_record`). A valid cache written before skmia kept
        a record is rebuilt quietly when ``source`` is present, used as it is otherwise.
    check : callable, default=None
        ``check(arrays) -> list of str``: what is wrong with the loaded arrays (shapes,
        dtypes, label range); a cache with any problem is not used.

    Returns
    -------
    arrays : dict of str to ndarray, or None
        None when the cache is absent or not used. A cache that is not used (unreadable,
        holding pickled objects, which are never loaded, stale or invalid) is deleted
        with a :class:`CacheWarning`, so that the caller rebuilds it.
    """
    path = Path(path)
    if not path.is_file():
        return None
    problem = None
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            arrays = {key: npz[key] for key in keys}
            record = {key: npz[key] for key in _RECORD if key in npz.files}
    except (OSError, ValueError, KeyError, EOFError, TypeError, AttributeError, zipfile.BadZipFile):
        problem = "it cannot be read, or lacks some of its arrays"
    else:
        if check is not None:
            problem = "; ".join(check(arrays)) or None
        if problem is None and version is not None:
            if not record and source is not None and Path(source).is_file():
                # written before skmia kept a record: rebuilt from the archive, quietly
                path.unlink(missing_ok=True)
                return None
            if record:
                problem = _stale(record, source, version)
    if problem is None:
        return arrays
    warnings.warn(
        f"the dataset cache {str(path)!r} is not used: {problem}. It is deleted and "
        f"rebuilt from the archive.",
        CacheWarning,
        stacklevel=2,
    )
    try:
        path.unlink()
    except OSError:
        pass
    return None
