"""The label-only signal (skmia.attacks.label_only_signals) and LabelOnlyAttack."""

import numpy as np
import pandas as pd
import pytest
from sklearn.model_selection import cross_validate
from sklearn.neighbors import KNeighborsClassifier

from skmia.attacks import LabelOnlyAttack, label_only_signals
from skmia.metrics import attack_accuracy, attack_auc
from skmia.model_selection import attack_auc_scorer


class Recorder:
    """A model that only answers ``predict``, and remembers what it was asked."""

    def __init__(self, rule):
        self.rule = rule
        self.queries = []

    def predict(self, X):
        self.queries.append(np.array(X, copy=True))
        return self.rule(X)


# ------------------------------------------------------------------------- tabular
def test_binary_features_flip_at_rate_p_and_others_get_gaussian_noise():
    rng = np.random.default_rng(0)
    bits = rng.integers(0, 2, (2000, 50)).astype(np.float32)
    real = rng.normal(size=(2000, 3)).astype(np.float32) * 10
    X = np.hstack([bits, real])
    model = Recorder(lambda X: np.zeros(len(X), dtype=int))
    correct = label_only_signals(model, X, np.zeros(2000, dtype=int), n_queries=3, p=0.1,
                                 noise_scale=0.5, random_state=0)
    assert correct.shape == (2000, 3) and correct.dtype == np.uint8
    assert np.all(correct == 1)
    assert len(model.queries) == 3  # one predict call per round, on every record
    for copy in model.queries:
        assert copy.dtype == np.float32 and copy.shape == X.shape
        assert np.isin(copy[:, :50], (0, 1)).all()  # bits stay bits
        flipped = (copy[:, :50] != bits).mean()
        assert abs(flipped - 0.1) < 0.005  # 100,000 bits: SE 0.001
        noise = copy[:, 50:] - real
        assert abs(noise.std() - 0.5) < 0.02 and abs(noise.mean()) < 0.02
    assert not np.array_equal(model.queries[0], model.queries[1])  # fresh draws per round


def test_no_perturbation_gives_the_plain_prediction_in_every_column():
    rng = np.random.default_rng(1)
    X = np.hstack([rng.integers(0, 2, (100, 4)), rng.normal(size=(100, 2))])
    y = rng.integers(0, 2, 100)
    rule = lambda X: (X[:, 4] + X[:, 0] > 0.5).astype(int)  # noqa: E731
    correct = label_only_signals(rule, X, y, n_queries=5, p=0.0, noise_scale=0.0)
    np.testing.assert_array_equal(correct, np.repeat((rule(X) == y)[:, None], 5, axis=1))
    assert 0 < correct[:, 0].mean() < 1


def test_reproducible_with_a_seed():
    rng = np.random.default_rng(2)
    X = rng.normal(size=(200, 3))
    rule = lambda X: (X[:, 0] > 0).astype(int)  # noqa: E731
    y = rule(X)
    first = label_only_signals(rule, X, y, noise_scale=1.0, random_state=7)
    np.testing.assert_array_equal(first, label_only_signals(rule, X, y, noise_scale=1.0,
                                                            random_state=7))
    assert not np.array_equal(first, label_only_signals(rule, X, y, noise_scale=1.0,
                                                        random_state=8))


def test_string_labels_and_the_estimator_itself():
    X = np.array([[0.0, 5.0], [0.0, -5.0]])
    model = Recorder(lambda X: np.where(X[:, 1] > 0, "yes", "no"))
    correct = label_only_signals(model, X, np.array(["yes", "yes"]), n_queries=4)
    assert correct.tolist() == [[1] * 4, [0] * 4]
    correct = label_only_signals(model.predict, X, np.array(["yes", "no"]), n_queries=4)
    assert correct.tolist() == [[1] * 4, [1] * 4]


# -------------------------------------------------------------------------- images
def shifted(image, flip, dy, dx):
    """The image mirrored (if flip), then moved down dy and right dx, zeros coming in."""
    if flip:
        image = image[:, :, ::-1]
    out = np.zeros_like(image)
    _, height, width = image.shape
    for h in range(height):
        for w in range(width):
            if 0 <= h - dy < height and 0 <= w - dx < width:
                out[:, h, w] = image[:, h - dy, w - dx]
    return out


@pytest.mark.parametrize("max_shift", [0, 2])
def test_images_are_flipped_and_shifted(max_shift):
    rng = np.random.default_rng(3)
    X = rng.uniform(0.1, 1.0, (6, 2, 5, 7)).astype(np.float32)  # no zeros: shifts show
    model = Recorder(lambda X: np.zeros(len(X), dtype=int))
    label_only_signals(model, X, np.zeros(6, dtype=int), n_queries=12, max_shift=max_shift,
                       random_state=0)
    seen = set()
    shifts = range(-max_shift, max_shift + 1)
    for copy in model.queries:
        assert copy.shape == X.shape and copy.dtype == np.float32
        for i in range(len(X)):
            matches = [(f, dy, dx) for f in (False, True) for dy in shifts for dx in shifts
                       if np.array_equal(copy[i], shifted(X[i], f, dy, dx))]
            assert matches, f"copy of image {i} is no flip/shift of it"
            seen.update(matches)
    assert {f for f, _, _ in seen} == {False, True}
    if max_shift:
        assert {dy for _, dy, _ in seen} == set(shifts)
        assert {dx for _, _, dx in seen} == set(shifts)


# ----------------------------------------------------------------- signal and attack
@pytest.fixture(scope="module")
def one_nn():
    """A 1-nearest-neighbour model of noisy labels: members keep their label, others not."""
    rng = np.random.default_rng(4)
    X = rng.normal(size=(1200, 5))
    y = ((X[:, 0] + rng.normal(scale=1.0, size=1200)) > 0).astype(int)
    members, non_members, other = np.arange(400), np.arange(400, 800), np.arange(800, 1200)
    target = KNeighborsClassifier(1).fit(X[members], y[members])
    null = KNeighborsClassifier(1).fit(X[other], y[other])
    audited = np.r_[members, non_members]
    membership = np.r_[np.ones(400, dtype=int), np.zeros(400, dtype=int)]
    return X[audited], y[audited], membership, target, null


def _frame(correct):
    return pd.DataFrame({f"label_only_{q}": correct[:, q] for q in range(correct.shape[1])})


def test_leak_and_null_on_a_model_that_only_predicts(one_nn):
    X, y, membership, target, null = one_nn
    leak = _frame(label_only_signals(target, X, y, n_queries=16, noise_scale=0.2,
                                     random_state=0))
    attack = LabelOnlyAttack().fit(leak)
    assert attack_auc(membership, attack.decision_function(leak)) > 0.7
    assert attack_accuracy(membership, attack.predict(leak)) > 0.6  # 0.65: the 0.5 default
    blind = _frame(label_only_signals(null, X, y, n_queries=16, noise_scale=0.2,
                                      random_state=0))
    assert abs(attack_auc(membership, LabelOnlyAttack().fit(blind).decision_function(blind))
               - 0.5) < 0.05


def test_attack_scores_defaults_and_labels(one_nn):
    X, y, membership, target, _ = one_nn
    signals = _frame(label_only_signals(target, X, y, n_queries=8, noise_scale=0.2,
                                        random_state=1))
    unsupervised = LabelOnlyAttack().fit(signals)
    fraction = signals.to_numpy().mean(axis=1)
    np.testing.assert_array_equal(unsupervised.decision_function(signals), fraction)
    assert unsupervised.threshold_ == 0.5 and not unsupervised.supervised_
    np.testing.assert_array_equal(unsupervised.predict(signals), fraction >= 0.5)
    assert unsupervised.n_queries_ == 8

    supervised = LabelOnlyAttack().fit(signals, membership)
    best = max(attack_accuracy(membership, (fraction >= t).astype(int))
               for t in np.unique(fraction))
    assert attack_accuracy(membership, supervised.predict(signals)) == pytest.approx(best)
    result = cross_validate(LabelOnlyAttack(), signals, membership, cv=3,
                            scoring=attack_auc_scorer)
    assert np.all(result["test_score"] > 0.65)


# ------------------------------------------------------------------------ bad input
@pytest.mark.parametrize(
    "kwargs, error, message",
    [
        ({"n_queries": 0}, ValueError, "n_queries must be >= 1, got 0"),
        ({"n_queries": 2.5}, TypeError, "n_queries must be an int"),
        ({"p": 1.5}, ValueError, r"p must be a probability in \[0, 1\]"),
        ({"noise_scale": -1.0}, ValueError, "noise_scale must be a finite number >= 0"),
        ({"max_shift": -1}, ValueError, "max_shift must be an int >= 0"),
    ],
)
def test_bad_parameters(kwargs, error, message):
    X = np.zeros((3, 2))
    with pytest.raises(error, match=message):
        label_only_signals(lambda X: np.zeros(len(X)), X, np.zeros(3), **kwargs)


def test_bad_input():
    X = np.zeros((3, 2))
    with pytest.raises(TypeError, match="predict must be a callable"):
        label_only_signals("model", X, np.zeros(3))
    with pytest.raises(ValueError, match=r"X must be 2-D .* or 4-D images .* got 3-D"):
        label_only_signals(lambda X: np.zeros(len(X)), np.zeros((3, 4, 4)), np.zeros(3))
    with pytest.raises(ValueError, match="predict returned labels of shape"):
        label_only_signals(lambda X: np.zeros((len(X), 2)), X, np.zeros(3))
    with pytest.raises(ValueError, match=r"y must be 1-D with one label per record \(3\)"):
        label_only_signals(lambda X: np.zeros(len(X)), X, np.zeros(4))
    with pytest.raises(ValueError, match="X contains NaN"):
        label_only_signals(lambda X: np.zeros(len(X)), np.full((3, 2), np.nan), np.zeros(3))
    with pytest.raises(TypeError, match="X must be numeric"):
        label_only_signals(lambda X: np.zeros(len(X)), np.array([["a"], ["b"]]), np.zeros(2))


def test_attack_bad_signals():
    signals = pd.DataFrame({"label_only_0": [1, 0], "label_only_1": [1, 1]})
    with pytest.raises(ValueError, match=r"no 'label_only_\*' columns.*label_only=True"):
        LabelOnlyAttack().fit(pd.DataFrame({"loss": [0.1, 0.2]}))
    with pytest.raises(ValueError, match="'label_only_1' is missing"):
        LabelOnlyAttack().fit(signals.rename(columns={"label_only_1": "label_only_2"}))
    with pytest.raises(ValueError, match=r"must hold 0 or 1 .* got \[0.5\]"):
        LabelOnlyAttack().fit(signals.assign(label_only_1=[0.5, 1.0]))
    attack = LabelOnlyAttack().fit(signals)
    with pytest.raises(ValueError, match="holds 1 label-only queries per record, but "
                                         "LabelOnlyAttack was fitted on 2"):
        attack.predict(signals[["label_only_0"]])
    with pytest.raises(ValueError, match="'scoring' parameter of LabelOnlyAttack must be"):
        LabelOnlyAttack(scoring="f1").fit(signals)
