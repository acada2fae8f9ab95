"""The CIFAR fetchers, on tiny archives written here in the publisher's real format.

The real batches are Python 2 ``cPickle`` files (protocol 2): dicts whose keys and byte
strings are Python 2 ``str`` (opcodes ``U``/``T``), label lists of small ints, and a numpy
array rebuilt through ``numpy.core.multiarray._reconstruct``. :func:`py2_pickle` writes
exactly those opcodes, so the loader reads the tiny archives through its real code path.
"""

import dataclasses
import hashlib
import io
import struct
import subprocess
import sys
import tarfile

import numpy as np
import pytest

from skmia.datasets import (
    CacheWarning,
    _cifar,
    fetch_cifar10,
    fetch_cifar100,
    load_dataset,
    normalize_cifar,
)
from skmia.datasets._fetch import RemoteFile, atomic_savez, fetch_file

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


@pytest.fixture
def cifar10_home(tmp_path, monkeypatch):
    archive, images, labels = cifar10_archive()
    patch_spec(monkeypatch, "CIFAR10", archive, 6 * PER_BATCH)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(archive)
    return tmp_path, images, labels


# --------------------------------------------------------------------------- CIFAR-10


def reference_transform(images):
    """What the reference code feeds its model: HWC uint8 -> PIL -> ToTensor -> Normalize."""
    from PIL import Image
    from torchvision import transforms

    transform = transforms.Compose([
        transforms.ToTensor(),
        transforms.Normalize((0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)),
    ])
    hwc = images.transpose(0, 2, 3, 1)
    return np.stack([transform(Image.fromarray(img)).numpy() for img in hwc])


def test_cifar10_in_reference_order_and_normalised(cifar10_home):
    home, images, labels = cifar10_home
    bunch = fetch_cifar10(data_home=home, download_if_missing=False)
    assert bunch.data.shape == (18, 3, 32, 32) and bunch.data.dtype == np.float32
    assert bunch.target.dtype == np.int64
    np.testing.assert_array_equal(bunch.target, labels)
    # bit for bit what the reference's torchvision pipeline gives
    np.testing.assert_array_equal(bunch.data, reference_transform(images))
    assert bunch.target_names.tolist() == CIFAR10_NAMES
    assert "feature_names" not in bunch and "CIFAR-10" in bunch.DESCR
    assert (home / "cifar10.npz").is_file()


def test_normalisation_by_hand():
    images = np.zeros((2, 3, 2, 2), dtype=np.uint8)
    images[1] = 255
    images[0, 1, 0, 1] = 51  # 0.2 after scaling
    X = normalize_cifar(images)
    assert X.dtype == np.float32
    # (0 - mean) / std and (1 - mean) / std, channel by channel
    np.testing.assert_allclose(X[0, :, 0, 0], [-0.4914 / 0.2023, -0.4822 / 0.1994,
                                               -0.4465 / 0.2010], rtol=1e-6)
    np.testing.assert_allclose(X[1, :, 1, 1], [0.5086 / 0.2023, 0.5178 / 0.1994,
                                               0.5535 / 0.2010], rtol=1e-6)
    np.testing.assert_allclose(X[0, 1, 0, 1], (0.2 - 0.4822) / 0.1994, rtol=1e-6)
    with pytest.raises(ValueError, match="uint8"):
        normalize_cifar(images.astype(np.float32))


def test_networks_pad_with_the_same_normalisation():
    from skmia.nn._resnet import CIFAR_NORMALISED_BLACK

    black = normalize_cifar(np.zeros((1, 3, 1, 1), dtype=np.uint8))[0, :, 0, 0]
    np.testing.assert_allclose(black, CIFAR_NORMALISED_BLACK, rtol=1e-6)
    assert (_cifar.CIFAR_MEAN, _cifar.CIFAR_STD) == (
        (0.4914, 0.4822, 0.4465), (0.2023, 0.1994, 0.2010)
    )


def test_cache_is_used_without_the_archive(cifar10_home):
    home, images, labels = cifar10_home
    X, y = fetch_cifar10(data_home=home, return_X_y=True)
    (home / "cifar-10-python.tar.gz").unlink()
    X2, y2 = fetch_cifar10(data_home=home, download_if_missing=False, return_X_y=True)
    np.testing.assert_array_equal(X2, X)
    np.testing.assert_array_equal(y2, labels)
    with np.load(home / "cifar10.npz", allow_pickle=False) as npz:
        assert npz["images"].dtype == np.uint8  # normalised on load, not cached as float
        np.testing.assert_array_equal(npz["images"], images)


@pytest.mark.parametrize("change, problem", [
    (lambda a: {"target": a["target"] + 10}, "labels from 10 to 19, expected 0..9"),
    (lambda a: {"target": a["target"][:5]}, "target is int64 of shape"),
    (lambda a: {"images": a["images"].astype(np.float32)}, "images are float32"),
    (lambda a: {"target_names": a["target_names"][:3]}, "target_names holds"),
])
def test_invalid_cache_is_rebuilt_from_the_archive(cifar10_home, change, problem):
    home, images, labels = cifar10_home
    fetch_cifar10(data_home=home)
    with np.load(home / "cifar10.npz", allow_pickle=False) as npz:
        arrays = {key: npz[key] for key in npz.files}
    atomic_savez(home / "cifar10.npz", **{**arrays, **change(arrays)})
    with pytest.warns(CacheWarning, match=problem):
        bunch = fetch_cifar10(data_home=home)
    np.testing.assert_array_equal(bunch.target, labels)
    assert bunch.target_names.tolist() == CIFAR10_NAMES
    fetch_cifar10(data_home=home)  # the rebuilt cache is used without a warning


def test_load_dataset_reaches_the_fetchers(cifar10_home, tmp_path):
    home, _, labels = cifar10_home
    X, y = load_dataset("CIFAR10", data_home=home, return_X_y=True)
    assert X.shape == (18, 3, 32, 32)
    np.testing.assert_array_equal(y, labels)
    with pytest.raises(FileNotFoundError, match="cifar-100-python.tar.gz"):
        load_dataset("cifar100", data_home=tmp_path / "empty", download_if_missing=False)


def test_missing_archive_without_download(tmp_path):
    home = tmp_path / "home"
    with pytest.raises(FileNotFoundError) as info:
        fetch_cifar10(data_home=home, download_if_missing=False)
    message = str(info.value)
    assert "cifar-10-python.tar.gz" in message and str(home) in message
    assert "https://www.cs.toronto.edu/~kriz/cifar-10-python.tar.gz" in message
    assert not home.exists()


# --------------------------------------------------------------------------- checksums


def test_md5_mismatch_is_refused_before_reading(tmp_path, monkeypatch):
    archive, _, _ = cifar10_archive()
    patch_spec(monkeypatch, "CIFAR10", archive, 6 * PER_BATCH)
    # a different archive whose pickles, if ever unpickled, would create a folder
    evil = b"\x80\x02cos\nmkdir\nX" + struct.pack("<I", len(str(tmp_path / "pwned")))
    evil += str(tmp_path / "pwned").encode() + b"\x85R."
    tampered = make_tgz({f"cifar-10-batches-py/data_batch_{i}": evil for i in range(1, 6)})
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(tampered)
    with pytest.raises(ValueError, match="MD5") as info:
        fetch_cifar10(data_home=tmp_path)
    assert md5(tampered) in str(info.value) and md5(archive) in str(info.value)
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "cifar10.npz").exists()


def test_unpickler_refuses_code_even_with_a_matching_checksum(tmp_path, monkeypatch):
    target = str(tmp_path / "pwned")
    evil = b"\x80\x02cos\nmkdir\nX" + struct.pack("<I", len(target)) + target.encode()
    evil += b"\x85R."
    archive, _, _ = cifar10_archive()
    members = {f"cifar-10-batches-py/data_batch_{i}": evil for i in range(1, 6)}
    archive = make_tgz(members)
    patch_spec(monkeypatch, "CIFAR10", archive, 6 * PER_BATCH)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(archive)
    with pytest.raises(ValueError, match="'os.mkdir' is not allowed"):
        fetch_cifar10(data_home=tmp_path)
    assert not (tmp_path / "pwned").exists()
    assert not (tmp_path / "cifar10.npz").exists()


def test_md5_verified_download(http_root, tmp_path):
    root, url = http_root
    payload = b"tiny archive" * 100
    (root / "a.tar.gz").write_bytes(payload)
    remote = RemoteFile("a.tar.gz", (url + "a.tar.gz",), md5=md5(payload))
    assert fetch_file(remote, tmp_path / "home").read_bytes() == payload
    # wrong bytes on the server: nothing is left behind
    bad = RemoteFile("b.tar.gz", (url + "a.tar.gz",), md5=md5(payload + b"!"))
    with pytest.raises(OSError, match="checksum mismatch: MD5"):
        fetch_file(bad, tmp_path / "home2")
    assert not (tmp_path / "home2").exists() or not list((tmp_path / "home2").iterdir())
    # both checksums given: both must hold
    both = RemoteFile("a.tar.gz", (url + "a.tar.gz",),
                      sha256=hashlib.sha256(payload).hexdigest(), md5=md5(b"other"))
    with pytest.raises(ValueError, match="its MD5 is"):
        fetch_file(both, tmp_path / "home")


def test_cifar10_downloaded_over_http(http_root, tmp_path, monkeypatch):
    root, url = http_root
    archive, images, labels = cifar10_archive()
    (root / "cifar-10-python.tar.gz").write_bytes(archive)
    patch_spec(monkeypatch, "CIFAR10", archive, 6 * PER_BATCH,
               urls=(url + "cifar-10-python.tar.gz",))
    X, y = fetch_cifar10(data_home=tmp_path / "home", return_X_y=True)
    np.testing.assert_array_equal(y, labels)
    assert sorted(p.name for p in (tmp_path / "home").iterdir()) == [
        "cifar-10-python.tar.gz", "cifar10.npz"
    ]


# --------------------------------------------------------------------------- bad archives


@pytest.mark.parametrize(
    ("change", "message"),
    [
        ({"drop": ("data_batch_3",)}, "no member named 'cifar-10-batches-py/data_batch_3'"),
        ({"drop": ("batches.meta",)}, "no member named 'cifar-10-batches-py/batches.meta'"),
        ({"meta": {"label_names": CIFAR10_NAMES[:9]}}, "no list of 10 class names"),
        ({"bad_labels": [0, 1, 10]}, r"'labels' from 0 to 10, expected 0..9"),
        ({"bad_labels": [0, 1]}, "has 3 images but 2 'labels'"),
    ],
)
def test_malformed_archives(tmp_path, monkeypatch, change, message):
    batches = None
    if "bad_labels" in change:
        batches = {f"data_batch_{i}": batch(PER_BATCH, 10) for i in range(1, 6)}
        batches["test_batch"] = batch(PER_BATCH, 10)
        entry = dict(batches["data_batch_2"][0], labels=change["bad_labels"])
        batches["data_batch_2"] = (entry, *batches["data_batch_2"][1:])
    archive, _, _ = cifar10_archive(batches=batches, meta=change.get("meta"),
                                    drop=change.get("drop", ()))
    patch_spec(monkeypatch, "CIFAR10", archive, 6 * PER_BATCH)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(archive)
    with pytest.raises(ValueError, match=message):
        fetch_cifar10(data_home=tmp_path)
    assert not (tmp_path / "cifar10.npz").exists()


def test_wrong_number_of_images(tmp_path, monkeypatch):
    archive, _, _ = cifar10_archive()
    patch_spec(monkeypatch, "CIFAR10", archive, 60_000)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(archive)
    with pytest.raises(ValueError, match="holds 18 images, expected 60000"):
        fetch_cifar10(data_home=tmp_path)


def test_truncated_archive(tmp_path, monkeypatch):
    archive, _, _ = cifar10_archive()
    archive = archive[: len(archive) // 2]
    patch_spec(monkeypatch, "CIFAR10", archive, 6 * PER_BATCH)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(archive)
    with pytest.raises(ValueError, match="not a readable CIFAR-10 archive"):
        fetch_cifar10(data_home=tmp_path)


def test_links_are_not_followed(tmp_path, monkeypatch):
    link = tarfile.TarInfo("cifar-10-batches-py/data_batch_1")
    link.type = tarfile.SYMTYPE
    link.linkname = "/etc/passwd"
    archive = make_tgz({"cifar-10-batches-py/data_batch_1": link})
    patch_spec(monkeypatch, "CIFAR10", archive, 6 * PER_BATCH)
    (tmp_path / "cifar-10-python.tar.gz").write_bytes(archive)
    with pytest.raises(ValueError, match="not a regular file"):
        fetch_cifar10(data_home=tmp_path)


# --------------------------------------------------------------------------- CIFAR-100


def test_cifar100_uses_fine_labels(tmp_path, monkeypatch):
    fine_names = [f"fine_{i}" for i in range(100)]
    train, train_images, train_fine = batch(
        4, 100, label_key="fine_labels", label="training batch 1 of 1",
        extra={"coarse_labels": [19, 19, 19, 19]},
    )
    test, test_images, test_fine = batch(
        2, 100, label_key="fine_labels", label="testing batch 1 of 1",
        extra={"coarse_labels": [19, 19]},
    )
    meta = {"fine_label_names": fine_names,
            "coarse_label_names": [f"coarse_{i}" for i in range(20)]}
    archive = make_tgz({
        "cifar-100-python": directory("cifar-100-python"),
        "cifar-100-python/file.txt~": b"",
        "cifar-100-python/test": py2_pickle(test),
        "cifar-100-python/meta": py2_pickle(meta),
        "cifar-100-python/train": py2_pickle(train),
    })
    patch_spec(monkeypatch, "CIFAR100", archive, 6)
    (tmp_path / "cifar-100-python.tar.gz").write_bytes(archive)
    bunch = fetch_cifar100(data_home=tmp_path)
    np.testing.assert_array_equal(bunch.target, np.concatenate([train_fine, test_fine]))
    np.testing.assert_array_equal(
        bunch.data, normalize_cifar(np.concatenate([train_images, test_images]))
    )
    assert bunch.target_names.tolist() == fine_names
    assert "CIFAR-100" in bunch.DESCR
    assert (tmp_path / "cifar100.npz").is_file()


# --------------------------------------------------------------------------- imports


def test_torchvision_is_not_imported():
    code = (
        "import sys, skmia.datasets; from skmia.datasets import fetch_cifar10; "
        "assert 'torchvision' not in sys.modules and 'torch' not in sys.modules"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
