"""Adversarial regularization: its schedule, its inference network, and its promise.

The promise is measured on the real Location30 data: split by
``membership_split(random_state=1000)`` (1,002 members, 1,002 non-members, 1,002
reference rows), an MLP 446-256-128-30 trained 20 epochs at lr 0.1 with seed 0, by
``VanillaClassifier`` and by ``AdvRegClassifier`` (alpha 1, the reference schedule).
Measured on 2026-11-29 (2-core CPU): vanilla train 1.000 / test 0.592, member loss 0.029,
member/non-member loss gap 1.30; AdvReg train 1.000 / test 0.581, member loss 0.316,
gap 0.95 (27 % smaller); the inference network's accuracy rises from 0.52 to 0.72.
"""

import pickle

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from sklearn.base import clone
from sklearn.datasets import make_classification
from skorch.callbacks import Callback

from skmia.datasets import fetch_location30
from skmia.defenses import VanillaClassifier
from skmia.defenses._advreg import AdvRegClassifier
from skmia.model_selection import membership_split

SMALL = {"module__hidden_sizes": (16,), "batch_size": 24, "lr": 0.1, "milestones": (),
         "random_state": 0}


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(600, n_features=40, n_informative=12, n_classes=4,
                               flip_y=0.15, class_sep=0.8, random_state=3)
    X = X.astype(np.float32)
    # members, reference non-members, other non-members
    return (X[:240], y[:240]), (X[300:420], y[300:420]), (X[420:], y[420:])


def mean_loss(clf, X, y):
    proba = clf.predict_proba(X)
    p_true = proba[np.arange(len(y)), np.searchsorted(clf.classes_, y)]
    return float(-np.log(np.clip(p_true, 1e-30, None)).mean())


def fit(clf, data):
    (X, y), (Xr, yr), _ = data
    return clf.fit(X, y, X_reference=Xr, y_reference=yr)


# ---------------------------------------------------------------------------- schedule


def test_reference_schedule_of_batches(data):
    # 240 members and 120 reference rows in batches of 24: 10 and 5 batches
    clf = fit(AdvRegClassifier(**SMALL, max_epochs=2, warmup_epochs=1, warmup_passes=5,
                               inference_batches=3, classifier_batches=2), data)
    # warm-up: a plain epoch, then 5 passes of min(10, 5) pairs of batches;
    # then 10 // 2 rounds of 3 inference batches and 2 classifier batches
    assert clf.history[:, "train_batch_count"] == [10, 10]
    assert clf.history[:, "inference_batch_count"] == [25, 15]


def test_cifar_schedule_of_whole_passes(data):
    clf = fit(AdvRegClassifier(**SMALL, max_epochs=2, warmup_epochs=1, warmup_passes=1,
                               inference_batches=None, classifier_batches=None), data)
    assert clf.history[:, "train_batch_count"] == [10, 10]
    assert clf.history[:, "inference_batch_count"] == [5, 5]


def test_warmup_is_plain_training(data):
    (X, y), _, _ = data
    clf = fit(AdvRegClassifier(**SMALL, max_epochs=1, warmup_epochs=1), data)
    vanilla = VanillaClassifier(**SMALL, max_epochs=1).fit(X, y)
    for p, q in zip(clf.module_.parameters(), vanilla.module_.parameters(), strict=True):
        assert torch.equal(p, q)


def test_inference_network_learns_during_warmup(data):
    (X, y), (Xr, yr), _ = data
    clf = fit(AdvRegClassifier(**{**SMALL, "module__hidden_sizes": (128,), "batch_size": 32},
                               max_epochs=12, warmup_epochs=12), data)
    acc = clf.history[:, "inference_acc"]
    assert acc[0] < 0.6 < acc[-1], acc  # near chance on the untrained model, then above
    # the final inference network, on every member and reference row
    with torch.no_grad():
        logits = clf.module_(torch.as_tensor(np.r_[X, Xr]))
        proba = clf.inference_module_(logits, torch.as_tensor(np.r_[y, yr]))
    membership = np.r_[np.ones(len(y)), np.zeros(len(yr))]
    assert np.mean((proba.numpy() > 0.5) == membership) > 0.6


def test_classifier_loss_adds_the_inference_gain(data):
    clf = fit(AdvRegClassifier(**SMALL, alpha=2.5, max_epochs=2, warmup_epochs=1), data)
    assert not clf._in_warmup()
    torch.manual_seed(0)
    logits, targets = torch.randn(6, 4), torch.tensor([0, 1, 2, 3, 0, 1])
    net = clf.inference_module_
    # by hand: ascending sorted outputs; the label one-hot with -1 elsewhere
    onehot = -torch.ones(6, 4)
    onehot[torch.arange(6), targets] = 1.0
    hidden = torch.cat((net.features(torch.sort(logits, dim=1).values), net.labels(onehot)), 1)
    gain = torch.sigmoid(net.combine(hidden)).mean()
    expected = F.cross_entropy(logits, targets) + 2.5 * (gain - 0.5)
    torch.testing.assert_close(clf.training_loss(logits, targets, None), expected)


class _InitialInference(Callback):
    def on_train_begin(self, net, **kwargs):
        self.params = {k: v.detach().clone()
                       for k, v in net.inference_module_.named_parameters()}


def test_every_inference_layer_trains(data):
    # the reference's CIFAR network keeps its hidden layers in a Python list: never trained
    initial = _InitialInference()
    clf = fit(AdvRegClassifier(**SMALL, max_epochs=2, callbacks=[("initial", initial)]), data)
    after = dict(clf.inference_module_.named_parameters())
    assert len(after) == 10  # 5 linear layers, all registered
    assert all(not torch.equal(initial.params[name], after[name]) for name in after)
    optimized = {id(p) for g in clf.inference_optimizer_.param_groups for p in g["params"]}
    assert optimized == {id(p) for p in clf.inference_module_.parameters()}
    classifier = {id(p) for g in clf.optimizer_.param_groups for p in g["params"]}
    assert classifier == {id(p) for p in clf.module_.parameters()}


# ---------------------------------------------------------------------------- promise


@pytest.fixture(scope="module")
def location(location_data_home):
    X, y = fetch_location30(data_home=location_data_home, download_if_missing=False,
                            return_X_y=True)
    split = membership_split(X, y, random_state=1000)
    return split.target_train, split.target_test, split.reference


def test_location30_loss_gap_is_smaller_than_vanilla(location):
    (Xm, ym), (Xn, yn), (Xr, yr) = location
    settings = {"module__hidden_sizes": (256, 128), "max_epochs": 20, "milestones": (),
                "random_state": 0}
    vanilla = VanillaClassifier(**settings).fit(Xm, ym)
    advreg = AdvRegClassifier(**settings).fit(Xm, ym, X_reference=Xr, y_reference=yr)
    gaps = {
        name: mean_loss(clf, Xn, yn) - mean_loss(clf, Xm, ym)
        for name, clf in (("vanilla", vanilla), ("advreg", advreg))
    }
    assert gaps["vanilla"] > 1.0, gaps
    assert gaps["advreg"] < 0.85 * gaps["vanilla"], gaps
    assert advreg.score(Xn, yn) > vanilla.score(Xn, yn) - 0.05
    assert advreg.history[-1, "inference_acc"] > 0.6


# ---------------------------------------------------------------------------- estimator


def test_clone_and_pickle_keep_no_reference_data(data):
    (X, y), (Xr, yr), _ = data
    clf = fit(AdvRegClassifier(**SMALL, max_epochs=2), data)
    state = clf.__getstate__()
    assert not {"_reference_input", "_adversary"} & set(state)
    restored = pickle.loads(pickle.dumps(clf))  # noqa: S301 - our own object
    np.testing.assert_allclose(restored.predict_proba(X), clf.predict_proba(X), rtol=1e-6)
    logits = torch.randn(3, 4)
    labels = torch.tensor([0, 1, 2])
    torch.testing.assert_close(restored.inference_module_(logits, labels),
                               clf.inference_module_(logits, labels))
    restored.partial_fit(X, y, X_reference=Xr, y_reference=yr)
    assert len(restored.history) == 4
    fresh = clone(clf)
    assert fresh.get_params()["alpha"] == 1.0 and not hasattr(fresh, "inference_module_")


def test_same_seed_same_model(data):
    a = fit(AdvRegClassifier(**SMALL, max_epochs=2), data)
    b = fit(AdvRegClassifier(**SMALL, max_epochs=2), data)
    for p, q in zip(a.module_.parameters(), b.module_.parameters(), strict=True):
        assert torch.equal(p, q)


def test_a_saved_model_keeps_its_inference_network_and_optimizers(tmp_path, data):
    from skmia.experiment import load_estimator, save_estimator

    (X, y), (Xr, yr), (Xo, _) = data
    clf = fit(AdvRegClassifier(**SMALL, max_epochs=2), data)
    save_estimator(clf, tmp_path)
    loaded = load_estimator(tmp_path)
    # the trained inference network, not a fresh one
    logits = torch.as_tensor(np.asarray(clf.forward(Xo)))
    labels = torch.as_tensor(np.searchsorted(clf.classes_, y[: len(Xo)]))
    with torch.no_grad():
        torch.testing.assert_close(loaded.inference_module_(logits, labels),
                                   clf.inference_module_(logits, labels), rtol=0, atol=0)
    for name in ("optimizer_", "inference_optimizer_"):
        saved, restored = getattr(clf, name).state_dict(), getattr(loaded, name).state_dict()
        assert restored["param_groups"] == saved["param_groups"]
        for index, state in saved["state"].items():
            for key, value in state.items():
                torch.testing.assert_close(restored["state"][index][key], value)
    # past its warm-up: a partial_fit goes on with adversarial rounds, as unsaved
    clf.partial_fit(X, y, X_reference=Xr, y_reference=yr)
    loaded.partial_fit(X, y, X_reference=Xr, y_reference=yr)
    assert loaded.history[:, "inference_batch_count"] == clf.history[:, "inference_batch_count"]
    np.testing.assert_array_equal(loaded.predict_proba(Xo), clf.predict_proba(Xo))


def test_missing_reference_is_an_error(data):
    (X, y), (Xr, yr), _ = data
    with pytest.raises(ValueError, match="pass a reference set"):
        AdvRegClassifier(**SMALL, max_epochs=1).fit(X, y)
    with pytest.raises(ValueError, match="pass a reference set"):
        AdvRegClassifier(**SMALL, max_epochs=1).fit(X, y, X_reference=Xr)
    clf = fit(AdvRegClassifier(**SMALL, max_epochs=1), data)
    with pytest.raises(ValueError, match="pass a reference set"):
        clf.partial_fit(X, y)


def test_reference_with_other_features(data):
    (X, y), (Xr, yr), _ = data
    with pytest.raises(ValueError, match="X_reference .* 20 features, but AdvRegClassifier "
                                         "is expecting 40"):
        AdvRegClassifier(**SMALL, max_epochs=1).fit(X, y, X_reference=Xr[:, :20],
                                                     y_reference=yr)


def test_reference_with_unknown_classes(data):
    (X, y), (Xr, yr), _ = data
    with pytest.raises(ValueError, match=r"y_reference has labels not seen in fit: \[7\]"):
        AdvRegClassifier(**SMALL, max_epochs=1).fit(X, y, X_reference=Xr,
                                                     y_reference=np.where(yr == 0, 7, yr))


def test_reference_of_other_length(data):
    (X, y), (Xr, yr), _ = data
    with pytest.raises(ValueError, match="inconsistent numbers of samples"):
        AdvRegClassifier(**SMALL, max_epochs=1).fit(X, y, X_reference=Xr, y_reference=yr[:5])


@pytest.mark.parametrize(
    "params, match",
    [
        ({"alpha": -1.0}, "alpha"),
        ({"inference_lr": 0.0}, "inference_lr"),
        ({"warmup_epochs": -1}, "warmup_epochs"),
        ({"warmup_passes": 1.5}, "warmup_passes"),
        ({"inference_batches": 0}, "inference_batches"),
        ({"classifier_batches": 0}, "classifier_batches"),
    ],
)
def test_bad_hyperparameters(data, params, match):
    with pytest.raises((ValueError, TypeError), match=match):
        fit(AdvRegClassifier(**{**SMALL, **params}, max_epochs=1), data)
