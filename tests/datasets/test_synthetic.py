"""The synthetic purchase-like and texas-like generators."""

import numpy as np
import pytest
import torch
from sklearn.utils import Bunch
from torch.nn import functional as F

from skmia.datasets._synthetic import make_purchase_like, make_texas_like
from skmia.nn import MLP

GENERATORS = pytest.mark.parametrize(
    "make, n_features, density_range",
    [(make_purchase_like, 600, (0.05, 0.30)), (make_texas_like, 6169, (0.002, 0.05))],
    ids=["purchase-like", "texas-like"],
)


@GENERATORS
def test_shapes_dtypes_and_binary_values(make, n_features, density_range):
    X, y = make(n_samples=300, random_state=0, return_X_y=True)
    assert X.shape == (300, n_features)
    assert y.shape == (300,)
    assert X.dtype == np.float32
    assert y.dtype == np.int64
    assert X.flags.c_contiguous
    assert set(np.unique(X).tolist()) == {0.0, 1.0}
    assert y.min() >= 0 and y.max() <= 99
    low, high = density_range
    assert low < X.mean() < high


@GENERATORS
def test_every_class_present(make, n_features, density_range):
    _, y = make(n_samples=100, random_state=1, return_X_y=True)
    # as many records as classes: each class exactly once
    np.testing.assert_array_equal(np.sort(y), np.arange(100))
    _, y = make(n_samples=250, random_state=2, return_X_y=True)
    assert set(y.tolist()) == set(range(100))


@GENERATORS
def test_same_seed_same_data_other_seed_other_data(make, n_features, density_range):
    X0, y0 = make(n_samples=200, random_state=7, return_X_y=True)
    X1, y1 = make(n_samples=200, random_state=7, return_X_y=True)
    np.testing.assert_array_equal(X0, X1)
    np.testing.assert_array_equal(y0, y1)
    X2, y2 = make(n_samples=200, random_state=np.random.RandomState(7), return_X_y=True)
    np.testing.assert_array_equal(X0, X2)
    np.testing.assert_array_equal(y0, y2)
    X3, y3 = make(n_samples=200, random_state=8, return_X_y=True)
    assert not np.array_equal(X0, X3)
    assert not np.array_equal(y0, y3)


def test_random_state_instance_is_advanced_and_global_state_untouched():
    # the legacy global RandomState is what random_state=None would use: it stays as is
    before = np.random.get_state()  # noqa: NPY002
    rng = np.random.RandomState(0)
    X0, _ = make_purchase_like(n_samples=150, random_state=rng, return_X_y=True)
    X1, _ = make_purchase_like(n_samples=150, random_state=rng, return_X_y=True)
    assert not np.array_equal(X0, X1)
    after = np.random.get_state()  # noqa: NPY002
    np.testing.assert_array_equal(before[1], after[1])
    assert before[2:] == after[2:]


@GENERATORS
def test_bunch_matches_return_X_y(make, n_features, density_range):
    data = make(n_samples=150, random_state=3)
    X, y = make(n_samples=150, random_state=3, return_X_y=True)
    assert isinstance(data, Bunch)
    np.testing.assert_array_equal(data.data, X)
    np.testing.assert_array_equal(data.target, y)
    assert len(data.feature_names) == n_features
    assert len(set(data.feature_names)) == n_features
    assert data.DESCR.startswith("SYNTHETIC")
    assert "NOT the real" in data.DESCR


@pytest.mark.parametrize("make", [make_purchase_like, make_texas_like])
def test_docstrings_say_synthetic(make):
    summary = make.__doc__.splitlines()[0]
    assert "SYNTHETIC" in summary
    assert "This is not" in make.__doc__


def test_custom_sizes():
    X, y = make_texas_like(
        n_samples=np.int64(40), n_features=50, n_classes=3, random_state=0, return_X_y=True
    )
    assert X.shape == (40, 50)
    assert set(y.tolist()) == {0, 1, 2}
    data = make_purchase_like(n_samples=20, n_features=7, n_classes=20, random_state=0)
    assert data.data.shape == (20, 7)
    assert list(data.feature_names) == [f"x{i}" for i in range(7)]
    assert "20 classes" in data.DESCR


@pytest.mark.parametrize("make", [make_purchase_like, make_texas_like])
@pytest.mark.parametrize(
    "kwargs, match",
    [
        ({"n_samples": 0}, r"n_samples must be >= 100 \(n_classes=100, one record per class"),
        ({"n_samples": -5}, r"n_samples must be >= 100"),
        ({"n_samples": 99}, r"n_samples must be >= 100 .*, got 99\.$"),
        ({"n_samples": 2.5}, r"n_samples must be an integer, got 2.5"),
        ({"n_samples": "1000"}, r"n_samples must be an integer, got '1000'"),
        ({"n_samples": True}, r"n_samples must be an integer, got True"),
        ({"n_samples": 10, "n_classes": 20}, r"n_samples must be >= 20"),
        ({"n_features": 0}, r"n_features must be >= 1, got 0"),
        ({"n_features": 3.0}, r"n_features must be an integer"),
        ({"n_classes": 1}, r"n_classes must be >= 2, got 1"),
        ({"n_classes": None}, r"n_classes must be an integer, got None"),
        ({"random_state": "seed"}, r"cannot be used to seed"),
    ],
)
def test_bad_input(make, kwargs, match):
    with pytest.raises(ValueError, match=match):
        make(**kwargs)


@pytest.fixture
def one_torch_thread():
    # a small network trains several times faster on one thread than on two busy cores
    threads = torch.get_num_threads()
    torch.set_num_threads(1)
    yield
    torch.set_num_threads(threads)


@pytest.mark.usefixtures("one_torch_thread")
def test_small_mlp_overfits_purchase_like():
    """The point of the data: a network fits its members far better than non-members."""
    X, y = make_purchase_like(n_samples=2000, random_state=0, return_X_y=True)
    X, y = torch.from_numpy(X), torch.from_numpy(y)
    members, non_members = torch.randperm(2000, generator=torch.Generator().manual_seed(0)).split(
        1000
    )
    torch.manual_seed(0)
    net = MLP(600, 100, hidden_sizes=(256, 128))
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    order = torch.Generator().manual_seed(1)
    for _ in range(15):
        for batch in members[torch.randperm(1000, generator=order)].split(128):
            optimizer.zero_grad()
            F.cross_entropy(net(X[batch]), y[batch]).backward()
            optimizer.step()

    net.eval()
    with torch.no_grad():
        logits_in, logits_out = net(X[members]), net(X[non_members])
    train_acc = (logits_in.argmax(1) == y[members]).float().mean().item()
    test_acc = (logits_out.argmax(1) == y[non_members]).float().mean().item()
    loss_in = F.cross_entropy(logits_in, y[members]).item()
    loss_out = F.cross_entropy(logits_out, y[non_members]).item()
    assert train_acc > 0.95
    assert 0.2 < test_acc < train_acc - 0.15  # learnable (chance is 1 %), far from fully
    assert loss_out > 5 * loss_in
