"""Where datasets live on disk, and how files get there: atomic, verified downloads.

Every remote file skmia knows is described by a :class:`RemoteFile`: its name in the
data home, the URLs to try in order, and its SHA-256 and/or MD5 when one is known. A file already in
the data home (downloaded earlier or placed there by hand) is used as is, after its
checksum is verified. A download goes to a temporary file in the same folder and is
renamed into place only once complete and verified, so an interrupted or corrupt
download never leaves a file that a later call would take as complete.
"""

import functools
import hashlib
import http.client
import os
import tempfile
import urllib.request
import zipfile
from dataclasses import dataclass
from pathlib import Path

import numpy as np

__all__ = ["RemoteFile", "get_data_home", "fetch_file", "atomic_savez", "load_npz_cache"]

_CHUNK = 1 << 20
_PROGRESS_MIN_BYTES = 4 << 20
_TIMEOUT_S = 60


@dataclass(frozen=True)
class RemoteFile:
    """A file that a fetcher needs in the data home.

    Parameters
    ----------
    filename : str
        Name of the file inside the data home.
    urls : tuple of str
        ``http(s)`` URLs to try, in order.
    sha256 : str or None, default=None
        Expected SHA-256 of the file's bytes, or None when no checksum is published.
    md5 : str or None, default=None
        Expected MD5 of the file's bytes, for files whose publisher gives only an MD5
        (the CIFAR archives). When both are given, both are checked.
    """

    filename: str
    urls: tuple
    sha256: str | None = None
    md5: str | None = None


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


def load_npz_cache(path, keys):
    """Load the arrays ``keys`` from the cache ``path``, or None if absent or unreadable.

    A cache that cannot be read (truncated, wrong keys, or holding pickled objects, which
    are never loaded) is deleted so that the next call rebuilds it from the raw file.
    """
    path = Path(path)
    if not path.is_file():
        return None
    try:
        with open(path, "rb") as f, np.load(f, allow_pickle=False) as npz:
            return {key: npz[key] for key in keys}
    except (OSError, ValueError, KeyError, EOFError, TypeError, AttributeError, zipfile.BadZipFile):
        try:
            path.unlink()
        except OSError:
            pass
        return None

