"""DP-SGD's updates against plain SGD and a hand-written DP-SGD: clipping, ghost clipping,
noise, empty Poisson batches."""

import dpsgd_fixtures
import numpy as np
import pytest
import torch
import torch.nn.functional as F
from dpsgd_fixtures import NET, SMALL
from skorch.callbacks import Callback

from skmia.defenses import _dpsgd
from skmia.defenses._dpsgd import DPSGDClassifier, WeakPrivacyWarning
from skmia.nn import MLP

# fixtures shared with the other files split from test_dpsgd.py, bound here by name
# (a nested conftest.py would break --doctest-modules)
data = dpsgd_fixtures.data


class _RecordBatches(Callback):
    """Keep the initial weights and every training batch of a fit."""

    def on_train_begin(self, net, **kwargs):
        self.initial = {k: v.detach().clone() for k, v in net.module_.state_dict().items()}
        self.batches = []

    def on_batch_begin(self, net, batch, training, **kwargs):
        if training:
            self.batches.append((batch[0].clone(), batch[1].clone()))


def _hand_dp_sgd(recorder, max_grad_norm, expected_batch_size, lr):
    """Per-record gradients one record at a time, clipped, summed, / expected batch."""
    net = MLP(12, 3, hidden_sizes=(16,))
    net.load_state_dict(recorder.initial)
    opt = torch.optim.SGD(net.parameters(), lr=lr, momentum=0.9, weight_decay=1e-4)
    for xb, yb in recorder.batches:
        total = [torch.zeros_like(p) for p in net.parameters()]
        for i in range(len(yb)):
            grads = torch.autograd.grad(
                F.cross_entropy(net(xb[i : i + 1]), yb[i : i + 1]), list(net.parameters())
            )
            norm_i = torch.sqrt(sum((g**2).sum() for g in grads))
            coef = min(1.0, max_grad_norm / (float(norm_i) + 1e-6))
            total = [t + coef * g for t, g in zip(total, grads, strict=True)]
        for p, t in zip(net.parameters(), total, strict=True):
            p.grad = t / expected_batch_size
        opt.step()
    return net


@pytest.mark.parametrize("mode", ["ghost", "hooks"])
def test_without_noise_or_clipping_the_updates_are_plain_sgd(data, mode):
    X, y = data
    recorder = _RecordBatches()
    clf = DPSGDClassifier(**NET, **{**SMALL, "noise_multiplier": 0.0}, max_grad_norm=1e6,
                          grad_sample_mode=mode, max_epochs=2,
                          callbacks=[("record", recorder)])
    with pytest.warns(WeakPrivacyWarning, match="epsilon = inf"):
        clf.fit(X, y)
    assert clf.grad_sample_mode_ == mode and np.isinf(clf.epsilon_)
    # plain SGD on the same batches: the batch-summed cross-entropy over the batch size
    net = MLP(12, 3, hidden_sizes=(16,))
    net.load_state_dict(recorder.initial)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    for xb, yb in recorder.batches:
        opt.zero_grad()
        (F.cross_entropy(net(xb), yb, reduction="sum") / 24).backward()
        opt.step()
    sizes = [len(b[1]) for b in recorder.batches]
    assert len(sizes) == 20 and len(set(sizes)) > 1, "Poisson batches vary in size"
    for ours, plain in zip(clf.module_.parameters(), net.parameters(), strict=True):
        torch.testing.assert_close(ours, plain, rtol=1e-5, atol=1e-6)


@pytest.mark.parametrize("mode", ["ghost", "hooks"])
def test_each_record_gradient_is_clipped(data, mode):
    X, y = data
    recorder = _RecordBatches()
    clf = DPSGDClassifier(**NET, **{**SMALL, "noise_multiplier": 0.0}, max_grad_norm=0.05,
                          grad_sample_mode=mode, max_epochs=1,
                          callbacks=[("record", recorder)])
    with pytest.warns(WeakPrivacyWarning):
        clf.fit(X, y)
    net = _hand_dp_sgd(recorder, max_grad_norm=0.05, expected_batch_size=24, lr=0.1)
    for ours, hand in zip(clf.module_.parameters(), net.parameters(), strict=True):
        torch.testing.assert_close(ours, hand, rtol=1e-4, atol=1e-6)


def test_ghost_clipping_and_per_record_gradients_agree(data):
    X, y = data
    ghost = DPSGDClassifier(**NET, **SMALL, max_grad_norm=0.1, max_epochs=2).fit(X, y)
    hooks = DPSGDClassifier(**NET, **SMALL, max_grad_norm=0.1, max_epochs=2,
                            grad_sample_mode="hooks").fit(X, y)
    assert (ghost.grad_sample_mode_, hooks.grad_sample_mode_) == ("ghost", "hooks")
    for p, q in zip(ghost.module_.parameters(), hooks.module_.parameters(), strict=True):
        torch.testing.assert_close(p, q, rtol=1e-4, atol=1e-5)


def test_first_ghost_pass_missing_a_layer_falls_back_to_the_full_pass(data, monkeypatch):
    X, y = data
    expected = DPSGDClassifier(**NET, **SMALL, max_epochs=1).fit(X, y)
    keep_output = _dpsgd._PrivateTraining._keep_output
    restarts = []
    start = DPSGDClassifier._start_private_training

    def skip_first_layer(self, layer, args, output):
        if getattr(layer, "in_features", None) != 12:
            keep_output(self, layer, args, output)

    def spy(self, n_rows, fast_norms=True):
        restarts.append(fast_norms)
        start(self, n_rows, fast_norms=fast_norms)

    monkeypatch.setattr(_dpsgd._PrivateTraining, "_keep_output", skip_first_layer)
    monkeypatch.setattr(DPSGDClassifier, "_start_private_training", spy)
    clf = DPSGDClassifier(**NET, **SMALL, max_epochs=1).fit(X, y)
    assert restarts == [True, False] and clf.n_steps_ == 10
    for p, q in zip(clf.module_.parameters(), expected.module_.parameters(), strict=True):
        torch.testing.assert_close(p, q)


def test_noise_changes_the_updates_reproducibly(data):
    X, y = data
    a = DPSGDClassifier(**NET, **SMALL, max_epochs=1).fit(X, y)
    b = DPSGDClassifier(**NET, **SMALL, max_epochs=1).fit(X, y)
    c = DPSGDClassifier(**NET, **{**SMALL, "random_state": 1}, max_epochs=1).fit(X, y)
    for p, q in zip(a.module_.parameters(), b.module_.parameters(), strict=True):
        assert torch.equal(p, q)
    assert not all(
        torch.equal(p, q)
        for p, q in zip(a.module_.parameters(), c.module_.parameters(), strict=True)
    )


def test_empty_poisson_batches_are_noisy_steps(data):
    X, y = data
    # batch 1 of 240 rows: P(empty batch) = (1 - 1/240)^240 ~ 0.37
    clf = DPSGDClassifier(**NET, **{**SMALL, "batch_size": 1}, max_epochs=1).fit(X, y)
    sizes = [batch["train_batch_size"] for batch in clf.history[-1, "batches"]]
    assert sizes.count(0) > 50 and clf.n_steps_ == 240 == len(sizes)
    assert all(torch.isfinite(p).all() for p in clf.module_.parameters())
    assert np.isfinite(clf.history[-1, "train_loss"])
