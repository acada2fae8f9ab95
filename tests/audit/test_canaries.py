"""make_canaries: the right number, labels really changed, kinds, poisons, errors."""

import numpy as np
import pytest

from skmia.audit import CANARY_KINDS, make_canaries


@pytest.fixture(scope="module")
def table():
    rng = np.random.default_rng(0)
    X = rng.integers(0, 2, (300, 12)).astype(np.float32)
    y = np.array(["a", "b", "c", "d"])[np.arange(300) % 4]
    return X, y


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(1)
    return rng.uniform(-1, 2, (60, 3, 4, 4)).astype(np.float32), np.arange(60) % 5


def test_mislabel_changes_exactly_the_canary_labels(table):
    X, y = table
    c = make_canaries(X, y, 40, random_state=0)
    assert len(c.canary_index) == 40 == len(np.unique(c.canary_index))
    assert np.all(np.diff(c.canary_index) > 0)
    assert np.all(c.y[c.canary_index] != y[c.canary_index])  # every label really changed
    assert np.all(np.isin(c.y, np.unique(y)))
    np.testing.assert_array_equal(c.original_y, y[c.canary_index])
    plain = ~c.is_canary
    np.testing.assert_array_equal(c.y[plain], y[plain])
    np.testing.assert_array_equal(c.X, X)  # features untouched
    assert c.n_copies == 1 and len(c.y_poison) == 0
    # the new labels spread over the other classes, not one shifted class
    assert len(np.unique(c.y[c.canary_index])) == 4


def test_same_seed_same_canaries(table):
    X, y = table
    a = make_canaries(X, y, 20, kind="random", n_poisons=5, random_state=3)
    b = make_canaries(X, y, 20, kind="random", n_poisons=5, random_state=3)
    np.testing.assert_array_equal(a.X, b.X)
    np.testing.assert_array_equal(a.X_poison, b.X_poison)
    assert not np.array_equal(a.canary_index, make_canaries(X, y, 20, random_state=4)
                              .canary_index)


def test_random_tabular_canaries_keep_binary_features_binary(table):
    X, y = table
    c = make_canaries(X, y, 30, kind="random", n_poisons=7, random_state=0)
    canaries = c.X[c.canary_index]
    assert set(np.unique(canaries).tolist()) <= {0.0, 1.0}
    assert set(np.unique(c.X_poison).tolist()) <= {0.0, 1.0}
    assert c.X_poison.shape == (7, 12) and c.y_poison.shape == (7,)
    assert np.all(np.isin(c.y_poison, np.unique(y)))
    # out of distribution: not copies of the records they replace
    assert np.mean(np.all(canaries == X[c.canary_index], axis=1)) < 0.1


def test_duplicate_mislabel_records_its_copies(table):
    X, y = table
    c = make_canaries(X, y, 10, kind="duplicate_mislabel", n_copies=3, random_state=0)
    assert c.n_copies == 3 and c.kind == "duplicate_mislabel"
    assert np.all(c.y[c.canary_index] != y[c.canary_index])


def test_image_kinds(images):
    X, y = images
    blank = make_canaries(X, y, 6, kind="blank", random_state=0)
    pictures = blank.X[blank.canary_index]
    # constant within each channel, inside X's range
    assert np.allclose(pictures, pictures[:, :, :1, :1])
    assert pictures.min() >= X.min() and pictures.max() <= X.max()
    noise = make_canaries(X, y, 6, kind="random", n_poisons=2, random_state=0)
    assert noise.X_poison.shape == (2, 3, 4, 4)
    assert noise.X[noise.canary_index].std() > 0.5


def test_kinds_are_documented():
    assert set(CANARY_KINDS) == {"mislabel", "duplicate_mislabel", "random", "blank"}


@pytest.mark.parametrize(("kwargs", "error", "match"), [
    ({"n_canaries": 300}, ValueError, "below the number of records"),
    ({"n_canaries": 0}, ValueError, "n_canaries"),
    ({"n_canaries": 5, "kind": "blank"}, ValueError, "constant images"),
    ({"n_canaries": 5, "kind": "ood"}, ValueError, "kind"),
    ({"n_canaries": 5, "n_poisons": -1}, ValueError, "n_poisons"),
    ({"n_canaries": 5, "kind": "duplicate_mislabel", "n_copies": 1}, ValueError, "n_copies"),
])
def test_bad_input(table, kwargs, error, match):
    X, y = table
    with pytest.raises(error, match=match):
        make_canaries(X, y, **kwargs)


def test_one_class_is_refused(table):
    X, _ = table
    with pytest.raises(ValueError, match="one class only"):
        make_canaries(X, np.zeros(len(X)), 5)
