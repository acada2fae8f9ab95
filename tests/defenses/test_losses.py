"""The defenses' objectives on tiny inputs computed by hand."""

import math

import pytest
import torch
import torch.nn.functional as F

from skmia.defenses._losses import (
    confidence_penalty_loss,
    distillation_loss,
    flattened_targets,
    label_smoothing_loss,
    relaxloss,
    soft_cross_entropy,
)

# two records, three classes; softmax of [ln 2, 0, 0] is [0.5, 0.25, 0.25]
LOGITS = torch.tensor([[math.log(2.0), 0.0, 0.0], [0.0, 0.0, math.log(2.0)]])
TARGETS = torch.tensor([0, 1])
# CE of record 0: -ln 0.5; record 1: -ln 0.25; mean = 1.5 ln 2 ≈ 1.0397
MEAN_CE = 1.5 * math.log(2.0)


def grad_of(loss_fn, logits=LOGITS):
    z = logits.clone().requires_grad_(True)
    loss_fn(z).backward()
    return z.grad


def test_soft_cross_entropy_by_hand():
    soft = torch.tensor([[1.0, 0.0, 0.0], [0.0, 0.5, 0.5]])
    expected = torch.tensor([-math.log(0.5), -(0.5 * math.log(0.25) + 0.5 * math.log(0.5))])
    torch.testing.assert_close(soft_cross_entropy(LOGITS, soft), expected)


def test_flattened_targets_by_hand():
    t = flattened_targets(LOGITS, TARGETS, upper=0.3)
    # record 0: p_y = 0.5 capped to 0.3, others (1 - 0.3) / 2; record 1: p_y = 0.25 < 0.3
    expected = torch.tensor([[0.3, 0.35, 0.35], [0.375, 0.25, 0.375]])
    torch.testing.assert_close(t, expected)
    torch.testing.assert_close(t.sum(dim=1), torch.ones(2))


def test_flattened_targets_properties():
    g = torch.Generator().manual_seed(0)
    logits = torch.randn(64, 10, generator=g) * 4
    targets = torch.randint(0, 10, (64,), generator=g)
    for upper in (0.05, 0.3, 1.0):
        t = flattened_targets(logits, targets, upper)
        torch.testing.assert_close(t.sum(dim=1), torch.ones(64))
        assert (t.gather(1, targets[:, None]) <= upper + 1e-7).all()
        assert (t >= 0).all()


def test_flattened_targets_are_not_detached():
    z = LOGITS.clone().requires_grad_(True)
    assert flattened_targets(z, TARGETS, upper=1.0).requires_grad


@pytest.mark.parametrize("epoch", [0, 2, 4])
def test_relaxloss_even_epoch_descends_above_alpha(epoch):
    alpha = 0.5  # L ≈ 1.04 > alpha: |L - alpha| = L - alpha, the gradient of plain CE
    loss = relaxloss(LOGITS, TARGETS, epoch=epoch, alpha=alpha, upper=1.0)
    assert loss.item() == pytest.approx(MEAN_CE - alpha, rel=1e-6)
    g = grad_of(lambda z: relaxloss(z, TARGETS, epoch=epoch, alpha=alpha, upper=1.0))
    torch.testing.assert_close(g, grad_of(lambda z: F.cross_entropy(z, TARGETS)))


def test_relaxloss_even_epoch_ascends_below_alpha():
    alpha = 2.0  # L < alpha: |L - alpha| = alpha - L, gradient ascent on CE
    loss = relaxloss(LOGITS, TARGETS, epoch=0, alpha=alpha, upper=1.0)
    assert loss.item() == pytest.approx(alpha - MEAN_CE, rel=1e-6)
    g = grad_of(lambda z: relaxloss(z, TARGETS, epoch=0, alpha=alpha, upper=1.0))
    torch.testing.assert_close(g, -grad_of(lambda z: F.cross_entropy(z, TARGETS)))
    # ascent: a small step along -g raises the cross-entropy
    stepped = LOGITS - 0.1 * g
    assert F.cross_entropy(stepped, TARGETS) > F.cross_entropy(LOGITS, TARGETS)


def test_relaxloss_odd_epoch_above_alpha_is_plain_ce():
    loss = relaxloss(LOGITS, TARGETS, epoch=1, alpha=0.5, upper=1.0)
    assert loss.item() == pytest.approx(MEAN_CE, rel=1e-6)


def test_relaxloss_odd_epoch_below_alpha_flattens_tabular():
    upper = 0.3
    loss = relaxloss(LOGITS, TARGETS, epoch=1, alpha=2.0, upper=upper)
    # by hand: soft CE against [[.3,.35,.35],[.375,.25,.375]] under p=[[.5,.25,.25],[.25,.25,.5]]
    r0 = -(0.3 * math.log(0.5) + 0.35 * math.log(0.25) + 0.35 * math.log(0.25))
    r1 = -(0.375 * math.log(0.25) + 0.25 * math.log(0.25) + 0.375 * math.log(0.5))
    assert loss.item() == pytest.approx((r0 + r1) / 2, rel=1e-6)
    # flattening pulls the confident record's true-class logit down relative to the others
    g = grad_of(lambda z: relaxloss(z, TARGETS, epoch=1, alpha=2.0, upper=upper))
    assert g[0, 0] > 0  # descent lowers logit 0 of record 0 (p_y = 0.5 > upper = 0.3)


def test_relaxloss_odd_epoch_below_alpha_image_variant():
    upper = 1.0
    loss = relaxloss(LOGITS, TARGETS, epoch=1, alpha=2.0, upper=upper, flatten_mode="image")
    # record 0 is classified correctly (class 0), record 1 is not (argmax 2, label 1)
    soft = soft_cross_entropy(LOGITS, flattened_targets(LOGITS, TARGETS, upper))
    ce = F.cross_entropy(LOGITS, TARGETS, reduction="none")
    expected = ((0.0 * soft[0] - ce[0]) + (1.0 * soft[1] - ce[1])) / 2
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)


def test_relaxloss_unknown_flatten_mode():
    with pytest.raises(ValueError, match="flatten_mode"):
        relaxloss(LOGITS, TARGETS, epoch=1, alpha=2.0, upper=1.0, flatten_mode="text")


def test_confidence_penalty_by_hand():
    h0 = -(0.5 * math.log(0.5) + 2 * 0.25 * math.log(0.25))  # entropy of both records
    expected = MEAN_CE - 0.1 * h0
    assert confidence_penalty_loss(LOGITS, TARGETS, penalty=0.1).item() == pytest.approx(
        expected, rel=1e-6
    )


def test_label_smoothing_matches_torch_and_hand():
    eps = 0.1
    ours = label_smoothing_loss(LOGITS, TARGETS, smoothing=eps)
    torch.testing.assert_close(ours, F.cross_entropy(LOGITS, TARGETS, label_smoothing=eps))
    uniform = -(math.log(0.5) + 2 * math.log(0.25)) / 3  # mean -log p over classes, both rows
    assert ours.item() == pytest.approx((1 - eps) * MEAN_CE + eps * uniform, rel=1e-6)


def test_distillation_by_hand():
    teacher = torch.tensor([[0.0, 0.0, 0.0], [0.0, math.log(3.0), 0.0]])
    T, alpha = 2.0, 0.25
    loss = distillation_loss(LOGITS, TARGETS, teacher, temperature=T, alpha=alpha)
    ps = F.softmax(LOGITS / T, dim=1)
    pt = F.softmax(teacher / T, dim=1)
    kl = (pt * (pt.log() - ps.log())).sum(dim=1).mean()  # per-record sum, mean over records
    expected = alpha * T * T * kl + (1 - alpha) * MEAN_CE
    assert loss.item() == pytest.approx(expected.item(), rel=1e-6)
    # a student equal to its teacher pays only the cross-entropy part
    same = distillation_loss(LOGITS, TARGETS, LOGITS, temperature=T, alpha=alpha)
    assert same.item() == pytest.approx((1 - alpha) * MEAN_CE, rel=1e-6)
