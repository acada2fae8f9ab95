"""HAMP (arXiv:2307.01610): the soft labels' entropy, output modification, its promise."""

import hashlib
import math

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.metrics import roc_auc_score

from skmia.attacks import LossAttack, compute_signals
from skmia.defenses import HAMPClassifier, VanillaClassifier
from skmia.defenses._hamp import hamp_target_confidence
from skmia.io import load_estimator, save_estimator

SMALL = {"module__hidden_sizes": (64,), "max_epochs": 40, "milestones": (), "lr": 0.05,
         "batch_size": 32, "random_state": 0}


@pytest.fixture(scope="module")
def data():
    # binary and continuous features: the random records take both kinds
    X, y = make_classification(600, n_features=12, n_informative=8, n_classes=4,
                               flip_y=0.15, random_state=0)
    X[:, :4] = X[:, :4] > 0
    X = X.astype(np.float32)
    return (X[:200], y[:200]), (X[200:400], y[200:400]), (X[400:], y[400:])


@pytest.fixture(scope="module")
def models(data):
    (X, y), _, _ = data
    hamp = HAMPClassifier(entropy_percentile=0.9, entropy_penalty=0.1, **SMALL).fit(X, y)
    vanilla = VanillaClassifier(**SMALL).fit(X, y)
    return hamp, vanilla


def _entropy(p):
    p = np.asarray(p, dtype=np.float64)
    return -(p * np.log(np.clip(p, 1e-300, None))).sum(axis=-1)


@pytest.mark.parametrize("gamma", [0.05, 0.3, 0.5, 0.8, 0.95, 1.0])
@pytest.mark.parametrize("n_classes", [2, 10, 30, 100])
def test_soft_labels_have_the_stated_entropy_exactly(gamma, n_classes):
    p = hamp_target_confidence(gamma, n_classes)
    label = np.full(n_classes, (1 - p) / (n_classes - 1))
    label[0] = p
    assert label.sum() == pytest.approx(1.0, abs=1e-12)
    assert _entropy(label) == pytest.approx(gamma * math.log(n_classes), abs=1e-9)
    assert 1 / n_classes <= p <= 1  # the true class stays the most probable


def test_the_classifier_trains_on_those_soft_labels(models):
    hamp, _ = models
    soft = hamp.soft_labels(torch.tensor([0, 3, 1]), 4).numpy()
    np.testing.assert_allclose(_entropy(soft), 0.9 * math.log(4), rtol=1e-6)
    assert soft.argmax(axis=1).tolist() == [0, 3, 1]


def _transcribed_release(clf, X):
    """HAMP's inference rule, written out row by row from the paper (and its code)."""
    net = clf.raw_module_.eval()
    wrapper = clf.module_
    low, high = wrapper.feature_low.numpy(), wrapper.feature_high.numpy()
    binary = wrapper.feature_binary.numpy()
    key = int(wrapper.seed).to_bytes(8, "little", signed=True)
    out = []
    for row in X:
        seed = int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8, key=key).digest(),
                              "little")
        draws = np.random.default_rng(seed).random(len(row), dtype=np.float32)
        noise = np.array([(high[j] if draws[j] >= 0.5 else low[j]) if binary[j]
                          else low[j] + draws[j] * (high[j] - low[j]) for j in range(len(row))],
                         dtype=np.float32)
        with torch.no_grad():
            own = torch.softmax(net(torch.as_tensor(row[None])), 1)[0].numpy()
            other = torch.softmax(net(torch.as_tensor(noise[None])), 1)[0].numpy()
        released = np.empty_like(own)
        for rank, cls in enumerate(np.argsort(own)):  # k-th smallest gets the k-th smallest
            released[cls] = np.sort(other)[rank]
        out.append(released)
    return np.array(out)


def test_inference_equals_a_transcription_of_the_rule(models, data):
    hamp, _ = models
    _, _, (X, _) = data
    np.testing.assert_allclose(hamp.predict_proba(X[:40]), _transcribed_release(hamp, X[:40]),
                               rtol=1e-5, atol=1e-7)
    # the range of each feature is the training rows'; binary columns were recognised
    assert hamp.module_.feature_binary.numpy().tolist() == [True] * 4 + [False] * 8


def test_labels_are_the_raw_models_and_queries_repeat(models, data):
    hamp, _ = models
    _, _, (X, _) = data
    with torch.no_grad():
        raw = hamp.raw_module_.eval()(torch.as_tensor(X)).argmax(1).numpy()
    assert np.array_equal(hamp.predict(X), hamp.classes_[raw])
    assert np.array_equal(hamp.predict_proba(X).argmax(1), raw)
    # the same query, alone or in another batch, gets the same answer
    # (to float32 rounding: a matrix product of one row adds in another order)
    np.testing.assert_allclose(hamp.predict_proba(X[5:6]), hamp.predict_proba(X)[5:6],
                               rtol=1e-5)
    # the released vector is not the raw one
    raw_proba = torch.softmax(hamp.raw_module_(torch.as_tensor(X)), 1).detach().numpy()
    assert np.abs(hamp.predict_proba(X) - raw_proba).max() > 1e-3


def test_members_and_nonmembers_get_indistinguishable_entropy(models, data):
    hamp, vanilla = models
    (X_in, _), (X_out, _), _ = data
    membership = np.r_[np.ones(len(X_in)), np.zeros(len(X_out))]

    def entropy_auc(clf):  # low entropy = member
        return roc_auc_score(membership, -_entropy(clf.predict_proba(np.r_[X_in, X_out])))

    vanilla_auc, hamp_auc = entropy_auc(vanilla), entropy_auc(hamp)
    assert vanilla_auc > 0.65, vanilla_auc  # the undefended model leaks through entropy
    assert abs(hamp_auc - 0.5) < 0.08, hamp_auc
    gap = abs(_entropy(hamp.predict_proba(X_in)).mean() - _entropy(hamp.predict_proba(X_out))
              .mean())
    vanilla_gap = abs(_entropy(vanilla.predict_proba(X_in)).mean()
                      - _entropy(vanilla.predict_proba(X_out)).mean())
    assert gap < vanilla_gap / 5, (gap, vanilla_gap)


def test_signals_read_the_released_outputs_and_raw_stays_reachable(models, data):
    hamp, _ = models
    (X, y), _, _ = data
    released = compute_signals(hamp, X[:20], y[:20])
    np.testing.assert_allclose(released[[f"proba_{k}" for k in range(4)]].to_numpy(),
                               hamp.predict_proba(X[:20]), rtol=1e-5, atol=1e-6)
    raw = compute_signals(hamp.raw_module_, X[:20], y[:20], classes=hamp.classes_,
                          white_box=True)
    assert (raw["grad_w_l2"] > 0).all()
    assert not np.allclose(raw["loss"], released["loss"])
    # a white-box query of the classifier: its outputs as released, its gradients the
    # raw network's (the adversary holds the weights; released outputs have no gradient)
    white = compute_signals(hamp, X[:20], y[:20], white_box=True)
    grads = ["grad_x_l1", "grad_x_l2", "grad_w_l1", "grad_w_l2"]
    np.testing.assert_allclose(white[grads].to_numpy(), raw[grads].to_numpy(), rtol=1e-5)
    outputs = [c for c in released.columns if c not in grads]
    np.testing.assert_allclose(white[outputs].to_numpy(), released[outputs].to_numpy(),
                               rtol=1e-5, atol=1e-6)


def test_null_a_model_trained_without_the_audited_records(data):
    # both audited sets are non-members: no attack can tell them apart
    (X_a, y_a), (X_b, y_b), (X_train, y_train) = data
    hamp = HAMPClassifier(entropy_percentile=0.9, entropy_penalty=0.1, **SMALL)
    hamp.fit(X_train, y_train)
    signals = compute_signals(hamp, np.r_[X_a, X_b], np.r_[y_a, y_b])
    fake = np.r_[np.ones(len(y_a)), np.zeros(len(y_b))]
    auc = roc_auc_score(fake, LossAttack().fit(signals, fake).decision_function(signals))
    assert abs(auc - 0.5) < 0.08, auc


def test_save_load_answers_identically(models, data, tmp_path):
    hamp, _ = models
    _, _, (X, _) = data
    save_estimator(hamp, tmp_path)
    loaded = load_estimator(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X), hamp.predict_proba(X))
    assert loaded.target_confidence_ == hamp.target_confidence_


def test_bad_input(models):
    hamp, _ = models
    with pytest.raises(ValueError, match=r"X has 3 features, but HAMPClassifier is expecting "
                                         r"12 features"):
        hamp.predict_proba(np.zeros((2, 3), np.float32))
    with pytest.raises(ValueError, match=r"entropy_percentile must be in \(0, 1\]"):
        hamp_target_confidence(0.0, 10)
    with pytest.raises(ValueError, match="HAMP needs at least 2 classes"):
        hamp_target_confidence(0.5, 1)
