import numpy as np
import pandas as pd
import pytest

from skmia.model_selection import membership_split

PARTS = ("target_train", "target_test", "shadow_train", "shadow_test", "reference")


def reference_relaxloss_rows(n, seed):
    """The reference code's Purchase100 split, written out with numpy's global RNG."""
    train_end = int(0.4 * n)
    test_start = int((0.4 + 0.2) * n)
    np.random.seed(seed)  # exactly what the reference code does
    r = np.arange(train_end)
    np.random.shuffle(r)
    shadow_train, target_train = r[: train_end // 2], r[train_end // 2 :]
    r = np.arange(train_end)
    np.random.shuffle(r)
    shadow_test, target_test = r[: train_end // 2], r[train_end // 2 :]
    return {
        "target_train": target_train,
        "target_test": np.arange(test_start, n)[target_test],
        "shadow_train": shadow_train,
        "shadow_test": np.arange(test_start, n)[shadow_test],
        "reference": np.arange(train_end, test_start),
    }


@pytest.mark.parametrize(
    "n, sizes",
    [
        (197_324, (39_465, 39_465, 39_464, 39_464, 39_465)),  # Purchase100
        (67_330, (13_466, 13_466, 13_466, 13_466, 13_466)),  # Texas100
        (5_010, (1_002, 1_002, 1_002, 1_002, 1_002)),  # Location30
    ],
)
def test_relaxloss_rows_match_the_reference(n, sizes):
    X = np.arange(n).reshape(-1, 1)
    y = np.arange(n) % 100
    state = np.random.get_state()
    split = membership_split(X, y, random_state=1000)
    after = np.random.get_state()
    assert state[0] == after[0] and np.array_equal(state[1], after[1]) and state[2:] == after[2:]
    assert tuple(split.sizes().values()) == sizes
    expected = reference_relaxloss_rows(n, 1000)
    for name in PARTS:
        part = getattr(split, name)
        np.testing.assert_array_equal(part.indices, expected[name], err_msg=name)
        np.testing.assert_array_equal(part.X[:, 0], expected[name])
        np.testing.assert_array_equal(part.y, y[expected[name]])


def test_cifar_protocol_rows():
    n = 60_000
    split = membership_split(np.arange(n), np.arange(n) % 10, protocol="cifar", random_state=7)
    np.random.seed(7)  # the reference code's seeding
    order = np.arange(n)
    np.random.shuffle(order)
    for i, name in enumerate(PARTS):
        np.testing.assert_array_equal(
            getattr(split, name).indices, order[i * 12_000 : (i + 1) * 12_000]
        )


@pytest.mark.parametrize("protocol", ["relaxloss", "cifar"])
@pytest.mark.parametrize("n", [5, 11, 1_003])
def test_parts_are_disjoint_and_balanced(protocol, n):
    split = membership_split(np.zeros((n, 2)), np.zeros(n), protocol=protocol, random_state=3)
    all_indices = np.concatenate([getattr(split, name).indices for name in PARTS])
    assert len(np.unique(all_indices)) == len(all_indices), "parts overlap"
    assert all_indices.min() >= 0 and all_indices.max() < n
    for model in ("target", "shadow"):
        members = len(getattr(split, f"{model}_train"))
        non_members = len(getattr(split, f"{model}_test"))
        assert members == non_members
    assert abs(len(split.target_train) - len(split.shadow_train)) <= 1


def test_determinism_and_seed_dependence():
    X, y = np.arange(1000), np.arange(1000) % 4
    a = membership_split(X, y, random_state=5)
    b = membership_split(X, y, random_state=5)
    c = membership_split(X, y, random_state=6)
    np.testing.assert_array_equal(a.target_train.indices, b.target_train.indices)
    assert not np.array_equal(a.target_train.indices, c.target_train.indices)
    # the reference pool does not depend on the seed
    np.testing.assert_array_equal(a.reference.indices, c.reference.indices)


def test_parts_unpack_and_keep_container_types():
    frame = pd.DataFrame({"a": range(50), "b": range(50, 100)})
    labels = pd.Series(np.arange(50) % 2, name="label")
    split = membership_split(frame, labels)
    X_part, y_part = split.shadow_test
    assert isinstance(X_part, pd.DataFrame) and isinstance(y_part, pd.Series)
    np.testing.assert_array_equal(X_part["a"].to_numpy(), split.shadow_test.indices)
    images = np.random.default_rng(0).random((25, 3, 4, 4), dtype=np.float32)
    split = membership_split(images, np.arange(25) % 5, protocol="cifar")
    assert split.target_train.X.shape == (5, 3, 4, 4)
    assert "target_train=5" in repr(split)


def test_bad_input():
    with pytest.raises(ValueError, match="same number of rows, got 10 and 9"):
        membership_split(np.zeros((10, 2)), np.zeros(9))
    with pytest.raises(ValueError, match="4 rows are too few"):
        membership_split(np.zeros((4, 2)), np.zeros(4))
    with pytest.raises(ValueError, match="protocol must be one of"):
        membership_split(np.zeros((10, 2)), np.zeros(10), protocol="random")
    with pytest.raises(ValueError, match="y must be 1-D"):
        membership_split(np.zeros((10, 2)), np.zeros((10, 2)))
    with pytest.raises(TypeError, match="random_state must be"):
        membership_split(np.zeros((10, 2)), np.zeros(10), random_state=1.5)
