"""The CIFAR fetchers on archives that must be refused: checksums checked before reading,
code never unpickled, malformed, short, truncated or linked archives (tiny archives in
the publisher's format: ``tests/cifar_archives.py``).
"""

import hashlib
import struct
import tarfile

import numpy as np
import pytest
from cifar_archives import (
    CIFAR10_NAMES,
    PER_BATCH,
    batch,
    cifar10_archive,
    make_tgz,
    md5,
    patch_spec,
)

from skmia.datasets import (
    fetch_cifar10,
)
from skmia.datasets._fetch import RemoteFile, fetch_file

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
