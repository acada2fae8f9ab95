"""Tiny CIFAR archives in the publisher's real format, for the CIFAR fetchers' tests.

The real batches are Python 2 ``cPickle`` files (protocol 2): dicts whose keys and byte
strings are Python 2 ``str`` (opcodes ``U``/``T``), label lists of small ints, and a numpy
array rebuilt through ``numpy.core.multiarray._reconstruct``. :func:`py2_pickle` writes
exactly those opcodes, so the loader reads the tiny archives through its real code path.
"""

import dataclasses
import hashlib
import io
import struct
import tarfile

import numpy as np

from skmia.datasets import (
    _cifar,
)
from skmia.datasets._fetch import RemoteFile

DEAD = ("http://127.0.0.1:9/dead",)
RNG = np.random.default_rng(0)
PER_BATCH = 3  # images per batch in the tiny archives


# --------------------------------------------------------------------------- writing


def py2_pickle(obj):
    """``obj`` as Python 2's ``cPickle.dump(obj, f, 2)`` writes it (without memo opcodes).

    ``str`` and ``bytes`` become Python 2 strings, ``int`` small-int opcodes, lists and
    dicts are filled with APPENDS / SETITEMS, a uint8 ndarray is reduced as numpy did.
    """
    out = bytearray(b"\x80\x02")

    def string(data):
        data = data.encode("latin1") if isinstance(data, str) else data
        if len(data) < 256:
            out.extend(b"U" + bytes([len(data)]) + data)
        else:
            out.extend(b"T" + struct.pack("<I", len(data)) + data)

    def put(o):
        if isinstance(o, dict):
            out.extend(b"}(")
            for k, v in o.items():
                put(k)
                put(v)
            out.extend(b"u")
        elif isinstance(o, list):
            out.extend(b"](")
            for v in o:
                put(v)
            out.extend(b"e")
        elif isinstance(o, tuple):
            out.extend(b"(")
            for v in o:
                put(v)
            out.extend(b"t")
        elif o is None:
            out.extend(b"N")
        elif o is False:
            out.extend(b"\x89")
        elif isinstance(o, int):
            if 0 <= o < 256:
                out.extend(b"K" + bytes([o]))
            elif 0 <= o < 65536:
                out.extend(b"M" + struct.pack("<H", o))
            else:
                out.extend(b"J" + struct.pack("<i", o))
        elif isinstance(o, str | bytes):
            string(o)
        elif isinstance(o, np.ndarray):
            assert o.dtype == np.uint8
            out.extend(b"cnumpy.core.multiarray\n_reconstruct\ncnumpy\nndarray\n")
            out.extend(b"K\x00\x85U\x01b\x87R")  # _reconstruct(ndarray, (0,), "b")
            out.extend(b"(K\x01")
            put(o.shape)
            out.extend(b"cnumpy\ndtype\nU\x02u1K\x00K\x01\x87R")
            out.extend(b"(K\x03U\x01|NNNJ\xff\xff\xff\xffJ\xff\xff\xff\xffK\x00tb")
            out.extend(b"\x89")  # not Fortran-ordered
            string(o.tobytes())
            out.extend(b"tb")
        else:
            raise TypeError(type(o))

    put(obj)
    out.extend(b".")
    return bytes(out)


def make_tgz(members):
    """A gzip tarball: name -> bytes, or a TarInfo for a special entry."""
    buffer = io.BytesIO()
    with tarfile.open(fileobj=buffer, mode="w:gz") as tar:
        for name, data in members.items():
            if isinstance(data, tarfile.TarInfo):
                tar.addfile(data)
                continue
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return buffer.getvalue()


def directory(name):
    info = tarfile.TarInfo(name)
    info.type = tarfile.DIRTYPE
    return info


def batch(n, n_classes, label_key="labels", label="training batch 1 of 5", extra=None):
    images = RNG.integers(0, 256, size=(n, 3072), dtype=np.uint8)
    labels = RNG.integers(0, n_classes, size=n).tolist()
    entry = {  # Python 2's dict order in the real files
        "data": images,
        label_key: labels,
        "batch_label": label,
        "filenames": [f"image_{i}.png" for i in range(n)],
    }
    entry.update(extra or {})
    return entry, images.reshape(n, 3, 32, 32), np.asarray(labels)


def md5(data):
    return hashlib.md5(data, usedforsecurity=False).hexdigest()


def patch_spec(monkeypatch, attr, archive_bytes, n_samples, urls=DEAD):
    spec = getattr(_cifar, attr)
    new = dataclasses.replace(
        spec,
        archive=RemoteFile(spec.archive.filename, urls, md5=md5(archive_bytes)),
        n_samples=n_samples,
    )
    monkeypatch.setattr(_cifar, attr, new)
    return new


CIFAR10_NAMES = ["airplane", "automobile", "bird", "cat", "deer",
                 "dog", "frog", "horse", "ship", "truck"]


def cifar10_archive(batches=None, meta=None, drop=()):
    """Bytes of a tiny cifar-10-python.tar.gz, plus the images and labels in load order."""
    if batches is None:
        batches = {f"data_batch_{i}": batch(PER_BATCH, 10, label=f"training batch {i} of 5")
                   for i in range(1, 6)}
        batches["test_batch"] = batch(PER_BATCH, 10, label="testing batch 1 of 1")
    if meta is None:
        meta = {"num_cases_per_batch": 10000, "label_names": CIFAR10_NAMES, "num_vis": 3072}
    members = {"cifar-10-batches-py": directory("cifar-10-batches-py")}
    # the real archive's members are not in the load order either
    for name in ("data_batch_4", "readme.html", "test_batch", "data_batch_3",
                 "batches.meta", "data_batch_2", "data_batch_5", "data_batch_1"):
        if name in drop:
            continue
        if name == "readme.html":
            data = b"<html></html>"
        elif name == "batches.meta":
            data = py2_pickle(meta)
        else:
            data = py2_pickle(batches[name][0])
        members[f"cifar-10-batches-py/{name}"] = data
    order = [*(f"data_batch_{i}" for i in range(1, 6)), "test_batch"]
    images = np.concatenate([batches[b][1] for b in order])
    labels = np.concatenate([batches[b][2] for b in order])
    return make_tgz(members), images, labels
