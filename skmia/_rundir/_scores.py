"""``attack/scores.npz``: the scores behind a results table's figures.

A writer that draws no figures (the model audit of :func:`skmia.audit.audit_model`) keeps
the scores instead, and the report draws ``roc.png`` and ``loss_hist.png`` from them, so
that data flows one way (audit -> report).

The file is untrusted input, read within bounds: its zip directory and each array's
header are checked (sizes, shapes, no Python objects) before any array is read, so a zip
bomb, a header declaring 10^13 values or a pickled object array is refused with a
``ValueError`` at the cost of reading the file itself.
"""

import io
import zipfile

import numpy as np

__all__ = ["read_scores", "scores_npz"]

_ARRAYS = ("names", "scores", "membership", "loss")
_HEADER_BYTES = 10_000  # numpy reads no longer .npy header (a real one: ~128 bytes)
_NAME_CHARS = 1024  # the longest attack name a scores file may hold


def scores_npz(scores, membership, loss):
    """The bytes of ``scores.npz`` for ``scores`` (attack name -> one score per record),
    ``membership`` (1 for members) and the target's per-record ``loss``."""
    membership = np.asarray(membership).astype(np.int8)
    names = list(scores)
    matrix = np.stack([np.asarray(scores[name], dtype=np.float64) for name in names]) \
        if names else np.empty((0, len(membership)))
    buffer = io.BytesIO()
    np.savez(buffer, names=np.asarray(names, dtype=str), scores=matrix,
             membership=membership, loss=np.asarray(loss, dtype=np.float64))
    return buffer.getvalue()


def _refuse(why):
    return ValueError(f"scores.npz is not a scores file: {why}")


def _header(raw, name):
    """``(shape, dtype)`` an ``.npy`` member declares, and where its data starts."""
    stream = io.BytesIO(raw)
    try:
        version = np.lib.format.read_magic(stream)
        read = {(1, 0): np.lib.format.read_array_header_1_0,
                (2, 0): np.lib.format.read_array_header_2_0}.get(version)
        if read is None:
            raise ValueError(f"format version {version}")
        shape, _, dtype = read(stream)
    except (ValueError, OSError, EOFError, SyntaxError) as exc:
        raise _refuse(f"{name}.npy has no valid array header ({exc})") from None
    if dtype.hasobject:
        raise _refuse(f"{name}.npy holds Python objects, which are never loaded (pickle)")
    return shape, dtype, stream.tell()


def _expected(n_records, n_attacks):
    """Shapes the folder says each array has (None where it says nothing)."""
    return {"names": (n_attacks,), "scores": (n_attacks, n_records),
            "membership": (n_records,), "loss": (n_records,)}


def _read_arrays(data, n_records, n_attacks):
    """The four arrays, each checked before it is read: its declared size within the
    file's (``np.savez`` stores, never compresses), its header's shape the folder's, its
    bytes as many as the header says."""
    try:
        archive = zipfile.ZipFile(io.BytesIO(data))
        infos = {info.filename: info for info in archive.infolist()}
    except (zipfile.BadZipFile, ValueError, OSError, EOFError) as exc:
        raise _refuse(f"not a zip archive ({exc})") from None
    expected = _expected(n_records, n_attacks)
    arrays = {}
    with archive:
        for name in _ARRAYS:
            info = infos.get(f"{name}.npy")
            if info is None:
                raise _refuse(f"it lacks the array {name!r}")
            if info.file_size > len(data) + _HEADER_BYTES:
                raise _refuse(f"{name}.npy declares {info.file_size:,} bytes in a file of "
                              f"{len(data):,} (a zip bomb?); never decompressed")
            try:
                with archive.open(info) as member:
                    raw = member.read(info.file_size + 1)
            # zipfile raises NotImplementedError for a compression method it lacks: a
            # file skmia did not write, refused like any other unreadable member
            except (zipfile.BadZipFile, ValueError, OSError, EOFError,
                    NotImplementedError) as exc:
                raise _refuse(f"{name}.npy cannot be read ({exc})") from None
            shape, dtype, start = _header(raw, name)
            want = expected[name]
            if len(shape) != len(want) or any(w is not None and w != s
                                               for w, s in zip(want, shape, strict=False)):
                shown = "(" + ", ".join("?" if w is None else str(w) for w in want) + (
                    ",)" if len(want) == 1 else ")")
                raise _refuse(f"{name}.npy declares shape {shape}, the folder says {shown}")
            count = int(np.prod(shape, dtype=object))
            if count * dtype.itemsize != len(raw) - start:
                raise _refuse(f"{name}.npy declares {count:,} values of {dtype.itemsize} "
                              f"bytes but holds {len(raw) - start:,} bytes")
            arrays[name] = np.lib.format.read_array(io.BytesIO(raw), allow_pickle=False)
    return arrays


def read_scores(data, *, n_records=None, names=None):
    """``(scores, membership, loss)`` read back from the bytes of ``scores.npz``.

    Parameters
    ----------
    data : bytes
        The file's bytes.
    n_records : int, default=None
        How many records the folder says were audited (its ``params.json``); the
        arrays must declare that many before they are read.
    names : list of str, default=None
        The attacks the folder's results name, in order; the file must hold these.

    Raises
    ------
    ValueError
        When the bytes are not such a file (not a zip, missing arrays, Python objects,
        declared sizes beyond the file's or shapes other than the folder's, mismatched
        shapes): nothing beyond the file's own size is ever allocated.
    """
    arrays = _read_arrays(data, n_records, None if names is None else len(names))
    found, matrix = arrays["names"], arrays["scores"]
    membership, loss = arrays["membership"], arrays["loss"]
    n = len(membership)
    if (found.ndim != 1 or found.dtype.kind != "U" or found.dtype.itemsize > 4 * _NAME_CHARS
            or matrix.shape != (len(found), n) or loss.shape != (n,)
            or membership.ndim != 1 or not np.isin(membership, (0, 1)).all()):
        raise _refuse("its arrays do not match (names "
                      f"{found.shape}, scores {matrix.shape}, membership {membership.shape}, "
                      f"loss {loss.shape})")
    if names is not None and found.tolist() != list(names):
        raise _refuse("its attacks are not those of the folder's results")
    return dict(zip(found.tolist(), matrix, strict=True)), membership.astype(int), loss
