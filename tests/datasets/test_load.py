import subprocess
import sys

import numpy as np
import pytest

import skmia
from skmia.datasets import DATASETS, load_dataset


def test_names():
    assert DATASETS == (
        "texas", "purchase", "location", "purchase-like", "texas-like", "cifar10", "cifar100",
    )


def test_synthetic_through_load_dataset():
    X, y = load_dataset("Purchase-like", n_samples=300, random_state=1, return_X_y=True)
    X2, y2 = load_dataset("purchase-like", n_samples=300, random_state=1, return_X_y=True)
    assert X.shape == (300, 600) and X.dtype == np.float32 and y.dtype == np.int64
    np.testing.assert_array_equal(X, X2)
    np.testing.assert_array_equal(y, y2)


def test_real_names_reach_the_fetchers(tmp_path):
    with pytest.raises(FileNotFoundError, match="dataset_location.tgz"):
        load_dataset("location", data_home=tmp_path, download_if_missing=False)
    with pytest.raises(FileNotFoundError, match="dataset_purchase.tgz"):
        load_dataset("purchase", data_home=tmp_path, download_if_missing=False)


@pytest.mark.parametrize(
    "name, archive",
    [("cifar10", "cifar-10-python.tar.gz"), ("cifar100", "cifar-100-python.tar.gz")],
)
def test_cifar_names_reach_the_fetchers(name, archive, tmp_path):
    with pytest.raises(FileNotFoundError, match=archive):
        load_dataset(name, data_home=tmp_path, download_if_missing=False)


def test_unknown_names():
    with pytest.raises(ValueError, match="unknown dataset 'mnist'; choose one of texas"):
        load_dataset("mnist")
    with pytest.raises(TypeError, match="must be a string"):
        load_dataset(3)


def test_package_is_light_and_lazy():
    code = (
        "import sys, skmia; assert 'torch' not in sys.modules; "
        "import skmia.datasets, skmia.model_selection; "
        "assert 'torchvision' not in sys.modules, 'torchvision must be imported lazily'; "
        "print(skmia.__version__)"
    )
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                            check=False)
    assert result.returncode == 0, result.stderr
    assert result.stdout.strip() == skmia.__version__
    assert skmia.nn.MLP is not None
    with pytest.raises(AttributeError, match="no attribute 'nothing'"):
        skmia.nothing  # noqa: B018
