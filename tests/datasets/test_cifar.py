"""The CIFAR fetchers, on tiny archives in the publisher's real format
(``tests/cifar_archives.py``): CIFAR-10 and CIFAR-100 read, normalised and cached, and
torchvision left unimported. Checksums and bad archives: ``test_cifar_archives.py``.
"""

import subprocess
import sys

import numpy as np
import pytest
from cifar_archives import (
    CIFAR10_NAMES,
    PER_BATCH,
    batch,
    cifar10_archive,
    directory,
    make_tgz,
    patch_spec,
    py2_pickle,
)

from skmia.datasets import (
    CacheWarning,
    _cifar,
    fetch_cifar10,
    fetch_cifar100,
    load_dataset,
    normalize_cifar,
)
from skmia.datasets._fetch import atomic_savez


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
