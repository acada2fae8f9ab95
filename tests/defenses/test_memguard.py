"""MemGuard (arXiv:1909.10594): it fools its own attack, keeps labels, and falls to label-only."""

import numpy as np
import pandas as pd
import pytest
import torch
import torch.nn.functional as F
from sklearn.datasets import make_classification
from sklearn.metrics import roc_auc_score

from skmia.attacks import LabelOnlyAttack, LossAttack, compute_signals, label_only_signals
from skmia.defenses import MemGuardClassifier
from skmia.defenses._memguard import memguard_noise
from skmia.io import load_estimator, save_estimator

SMALL = {"module__hidden_sizes": (64,), "max_epochs": 40, "milestones": (), "lr": 0.05,
         "batch_size": 32, "random_state": 0, "max_steps": 40, "defender_epochs": 300}


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(800, n_features=12, n_informative=8, n_classes=4,
                               flip_y=0.15, random_state=2)
    X = X.astype(np.float32)
    return [(X[i:i + 200], y[i:i + 200]) for i in range(0, 800, 200)]


@pytest.fixture(scope="module")
def model(data):
    (X, y), (X_ref, y_ref), _, _ = data
    return MemGuardClassifier(**SMALL).fit(X, y, X_reference=X_ref, y_reference=y_ref)


@pytest.fixture(scope="module")
def released(model, data):
    (X_in, _), _, (X_out, _), _ = data
    return model.predict_proba(X_in[:120]), model.predict_proba(X_out[:120])


def _raw_proba(model, X):
    with torch.no_grad():
        return torch.softmax(model.raw_module_.eval()(torch.as_tensor(X)), 1).numpy()


def _defender_score(model, proba):
    features = torch.sort(torch.log(torch.as_tensor(proba, dtype=torch.float32)), 1).values
    with torch.no_grad():
        return model.defender_(features)[:, 0].numpy()


def test_labels_are_kept_and_the_defender_is_fooled(model, data, released):
    (X_in, _), _, (X_out, _), _ = data
    X_in, X_out = X_in[:120], X_out[:120]
    membership = np.r_[np.ones(len(X_in)), np.zeros(len(X_out))]
    raw = np.r_[_raw_proba(model, X_in), _raw_proba(model, X_out)]
    out = np.r_[released]
    assert np.array_equal(out.argmax(1), raw.argmax(1))
    assert np.array_equal(model.predict(np.r_[X_in, X_out]), model.classes_[raw.argmax(1)])
    raw_auc = roc_auc_score(membership, _defender_score(model, raw))
    released_auc = roc_auc_score(membership, _defender_score(model, out))
    assert raw_auc > 0.6, raw_auc  # the defender's attack works on the raw outputs
    assert abs(released_auc - 0.5) < abs(raw_auc - 0.5) / 2, (raw_auc, released_auc)


def test_the_distortion_budget_bounds_the_expected_l1_distortion(model, data):
    _, _, (X, _), _ = data
    X = X[:80]
    raw = _raw_proba(model, X)
    unbounded = np.abs(model.predict_proba(X) - raw).sum(1).mean()
    small = load_free_copy(model, distortion_budget=unbounded / 4)
    distortion = np.abs(small.predict_proba(X) - raw).sum(1)
    assert distortion.mean() <= unbounded / 4 * 1.5, (distortion.mean(), unbounded)
    assert distortion.mean() < unbounded


def load_free_copy(model, **params):
    """The same trained model with other inference parameters."""
    copy = model._fitted_copy(model.module_.state_dict())
    copy.set_params(**params)
    copy.initialize()
    copy.module_.load_state_dict(model.module_.state_dict())
    return copy


def test_label_only_attack_breaks_it(model, data):
    # a "should break" control: labels are untouched, so the label-only attack sees the
    # undefended model exactly, and the member/non-member difference survives
    (X_in, y_in), _, (X_out, y_out), (X_shadow, _) = data
    X, y = np.r_[X_in, X_out], np.r_[y_in, y_out]
    membership = np.r_[np.ones(len(y_in)), np.zeros(len(y_out))]
    params = {"n_queries": 16, "noise_scale": 1.0, "random_state": 0}
    defended = label_only_signals(model, X, y, **params)
    raw = label_only_signals(lambda A: model.classes_[_raw_proba(model, A).argmax(1)], X, y,
                             **params)
    np.testing.assert_array_equal(defended, raw)
    auc = roc_auc_score(membership, defended.mean(axis=1))
    assert auc > 0.6, auc
    attack = LabelOnlyAttack(scoring="roc_auc")
    table = pd.DataFrame(defended, columns=[f"label_only_{q}" for q in range(16)])
    assert attack.fit(table).score(table, membership) == pytest.approx(auc)


def _transcribed_phase_one(z, defender, max_steps):
    """MemGuard's Phase I for one record, as the paper's code loops (c3 schedule)."""
    top = len(z) - 1

    def g(v):
        return defender(torch.log_softmax(v[None], 1))[0, 0]

    with torch.no_grad():
        p0, g0 = torch.softmax(z, 0), float(g(z))
    if abs(float(torch.sigmoid(torch.tensor(g0))) - 0.5) <= 1e-5:
        return z
    result, c3 = z.clone(), 0.1
    while c3 <= 1e5:
        v, ok = z.clone(), False
        for _ in range(max_steps):
            v = v.clone().requires_grad_(True)
            loss = (g(v).abs() + 10 * F.relu(v[:top].max() - v[top])
                    + c3 * (torch.softmax(v, 0) - p0).abs().sum())
            (grad,) = torch.autograd.grad(loss, v)
            v = (v - 0.1 * grad / grad.norm()).detach()
            with torch.no_grad():
                crossed = g0 * float(g(v)) <= 0
            if v.argmax() == top and crossed:
                ok = True
                break
        if not ok:
            break
        result, c3 = v, c3 * 10
    return result


def test_phase_one_equals_a_transcription_of_the_paper_loop():
    torch.manual_seed(0)
    defender = torch.nn.Sequential(torch.nn.Linear(5, 8), torch.nn.Tanh(),
                                   torch.nn.Linear(8, 1)).double()
    logits = torch.sort(torch.randn(12, 5, dtype=torch.float64) * 3, 1).values
    batched = memguard_noise(logits, defender, max_steps=50)
    for i in range(len(logits)):
        expected = _transcribed_phase_one(logits[i], defender, 50)
        torch.testing.assert_close(batched[i], expected, rtol=1e-9, atol=1e-9)
    assert (batched != logits).any(dim=1).sum() >= 6  # most rows were perturbed


def test_null_a_model_trained_without_the_audited_records(data):
    (X_a, y_a), (X_ref, y_ref), (X_b, y_b), (X_train, y_train) = data
    clf = MemGuardClassifier(**{**SMALL, "defender_epochs": 50, "max_steps": 20})
    clf.fit(X_train, y_train, X_reference=X_ref, y_reference=y_ref)
    signals = compute_signals(clf, np.r_[X_a, X_b], np.r_[y_a, y_b])
    fake = np.r_[np.ones(len(y_a)), np.zeros(len(y_b))]
    auc = roc_auc_score(fake, LossAttack().fit(signals, fake).decision_function(signals))
    assert abs(auc - 0.5) < 0.08, auc


def test_save_load_answers_identically(model, data, tmp_path):
    _, _, (X, _), _ = data
    save_estimator(model, tmp_path)
    loaded = load_estimator(tmp_path)
    np.testing.assert_array_equal(loaded.predict_proba(X[:40]), model.predict_proba(X[:40]))
