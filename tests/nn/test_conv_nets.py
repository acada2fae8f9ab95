"""ResNet20 and VGG11-BN: sizes, initialisation, augmentation, every defense, white-box signals."""

import math

import numpy as np
import pytest
import torch
import torch.nn.functional as F
from torch import nn

from skmia.attacks import compute_signals
from skmia.datasets import normalize_cifar
from skmia.defenses import (
    ConfidencePenaltyClassifier,
    DistillationClassifier,
    DropoutClassifier,
    EarlyStoppingClassifier,
    LabelSmoothingClassifier,
    RelaxLossClassifier,
    VanillaClassifier,
)
from skmia.nn import RandomCropFlip, resnet20, vgg11_bn

N_PARAMS = {  # the reference code's networks
    (resnet20, 10): 272_474,
    (resnet20, 100): 278_324,
    (vgg11_bn, 10): 9_231_114,
    (vgg11_bn, 100): 9_277_284,
}


def n_params(module):
    return sum(p.numel() for p in module.parameters())


# --------------------------------------------------------------------------- the networks


@pytest.mark.parametrize(("factory", "n_classes"), list(N_PARAMS))
def test_parameter_counts_and_shapes(factory, n_classes):
    net = factory(n_classes)
    assert n_params(net) == N_PARAMS[factory, n_classes]
    # dropout and augmentation add no parameter
    assert n_params(factory(n_classes, dropout=0.5, augment=True)) == n_params(net)
    out = net.eval()(torch.randn(3, 3, 32, 32))
    assert out.shape == (3, n_classes)


@pytest.mark.parametrize("factory", [resnet20, vgg11_bn])
def test_bad_arguments(factory):
    with pytest.raises(ValueError, match="n_classes must be a positive int"):
        factory(0)
    with pytest.raises(ValueError, match=r"dropout must be in \[0, 1\)"):
        factory(10, dropout=1.0)


def test_reference_module_names():
    """The reference code's state_dict keys, so that its checkpoints load."""
    keys = set(resnet20().state_dict())
    assert {"conv1.weight", "bn1.running_mean", "layer1.0.conv1.weight", "layer3.2.bn2.bias",
            "layer2.0.downsample.0.weight", "layer3.0.downsample.1.running_var",
            "fc.weight", "fc.bias"} <= keys
    assert "layer1.0.downsample.0.weight" not in keys  # same shape: identity shortcut
    assert sum(k.endswith("downsample.0.weight") for k in keys) == 2
    assert {"fc.1.weight", "fc.1.bias"} <= set(resnet20(dropout=0.5).state_dict())
    vgg_keys = set(vgg11_bn().state_dict())
    assert {"features.0.weight", "features.0.bias", "features.1.running_mean",
            "features.25.weight", "classifier.weight"} <= vgg_keys
    assert sum(k.endswith("num_batches_tracked") for k in vgg_keys) == 8
    assert "classifier.1.weight" in vgg11_bn(dropout=0.5).state_dict()
    assert set(resnet20(augment=True).state_dict()) == keys


def test_reference_initialisation():
    torch.manual_seed(0)
    vgg = vgg11_bn()
    conv = vgg.features[25]  # a 512 -> 512 convolution: 2.4 M weights
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * 512)), rel=0.01)
    assert torch.all(conv.bias == 0)
    bn = vgg.features[26]
    assert torch.all(bn.weight == 1) and torch.all(bn.bias == 0)
    assert vgg.classifier.weight.std().item() == pytest.approx(0.01, rel=0.05)
    assert torch.all(vgg.classifier.bias == 0)

    net = resnet20()
    conv = net.layer3[1].conv2  # 64 -> 64, fan-out 9 * 64
    assert conv.weight.std().item() == pytest.approx(math.sqrt(2 / (9 * 64)), rel=0.02)
    assert conv.bias is None
    shortcut = net.layer2[0].downsample[0]  # 1x1, fan-out 32
    assert shortcut.weight.std().item() == pytest.approx(math.sqrt(2 / 32), rel=0.1)
    # the linear layer keeps torch's default, uniform in +-1/sqrt(64)
    assert net.fc.weight.abs().max().item() <= 1 / 8
    assert net.fc.weight.std().item() == pytest.approx(1 / 8 / math.sqrt(3), rel=0.1)


# --------------------------------------------------------------------------- augmentation


def test_random_crop_flip_equals_reference_on_raw_images():
    """Each output is the reference's crop of the zero-padded raw image, normalised."""
    rng = np.random.default_rng(0)
    raw = rng.integers(0, 256, size=(64, 3, 8, 8), dtype=np.uint8)
    augment = RandomCropFlip(padding=2)
    torch.manual_seed(0)
    out = augment(torch.from_numpy(normalize_cifar(raw))).numpy()
    padded = np.pad(raw, ((0, 0), (0, 0), (2, 2), (2, 2)))  # RandomCrop pads with 0
    seen = set()
    for k in range(len(raw)):
        matches = [
            (i, j, flip)
            for i in range(5)
            for j in range(5)
            for flip in (False, True)
            if np.allclose(
                out[k],
                normalize_cifar(
                    (lambda c: c[..., ::-1] if flip else c)(padded[k:k + 1, :, i:i + 8, j:j + 8])
                )[0],
                rtol=0, atol=1e-6,
            )
        ]
        assert matches, f"record {k} is no crop/flip of its padded image"
        seen.update(matches)
    # offsets and flips vary between records
    assert {m[2] for m in seen} == {False, True}
    assert len({m[:2] for m in seen}) > 10


def test_random_crop_flip_modes_and_seeding():
    x = torch.randn(16, 3, 32, 32)
    augment = RandomCropFlip()
    assert augment.eval()(x) is x
    augment.train()
    torch.manual_seed(3)
    a = augment(x)
    torch.manual_seed(3)
    b = augment(x)
    assert torch.equal(a, b) and not torch.equal(a, x)
    with pytest.raises(ValueError, match="fill has 3 values"):
        augment(torch.randn(2, 1, 8, 8))
    with pytest.raises(ValueError, match="padding must be a non-negative int"):
        RandomCropFlip(padding=-1)


def test_augmenting_network_predicts_without_augmentation():
    torch.manual_seed(0)
    plain = resnet20()
    augmenting = resnet20(augment=True)
    augmenting.load_state_dict(plain.state_dict())
    x = torch.randn(4, 3, 32, 32)
    with torch.no_grad():
        assert torch.equal(augmenting.eval()(x), plain.eval()(x))
        augmenting.train()
        torch.manual_seed(1)
        assert not torch.allclose(augmenting(x), plain.train()(x))


# --------------------------------------------------------------------------- defenses

IMAGES = np.random.default_rng(0).standard_normal((64, 3, 32, 32)).astype(np.float32)
LABELS = np.array(["cat", "dog", "frog", "ship"])[np.arange(64) % 4]

DEFENSES = [
    (VanillaClassifier, {}),
    (RelaxLossClassifier, {"alpha": 1.0}),
    (ConfidencePenaltyClassifier, {}),
    (LabelSmoothingClassifier, {}),
    (DropoutClassifier, {"dropout": 0.3}),
    (EarlyStoppingClassifier, {"snapshot_epochs": (1,)}),
    (DistillationClassifier, {}),
]


@pytest.mark.parametrize(("cls", "params"), DEFENSES, ids=[c.__name__ for c, _ in DEFENSES])
def test_every_defense_trains_resnet20_on_images(cls, params):
    clf = cls(module=resnet20, max_epochs=1, batch_size=16, random_state=0, **params)
    clf.fit(IMAGES, LABELS)
    assert len(clf.history) == 1 and np.isfinite(clf.history[-1, "train_loss"])
    assert clf.input_shape_ == (3, 32, 32)
    fc = clf.module_.fc
    linear = fc[-1] if isinstance(fc, nn.Sequential) else fc
    assert linear.out_features == 4, "n_classes is filled in from the data"
    proba = clf.predict_proba(IMAGES[:5])
    assert proba.shape == (5, 4)
    np.testing.assert_allclose(proba.sum(axis=1), 1, rtol=1e-5)
    assert set(clf.predict(IMAGES[:5])) <= set(LABELS)
    signals = compute_signals(clf, IMAGES[:5], LABELS[:5])
    np.testing.assert_allclose(signals[[f"proba_{k}" for k in range(4)]], proba, rtol=1e-5)
    if cls is RelaxLossClassifier:
        assert clf.flatten_mode_ == "image"
    if cls is DropoutClassifier:
        assert isinstance(fc[0], nn.Dropout) and fc[0].p == 0.3
    if cls is EarlyStoppingClassifier:
        assert list(clf.snapshots_) == [1]
    if cls is DistillationClassifier:
        assert isinstance(clf.teacher_.module_.fc, nn.Linear)


def test_dropout_needs_a_dropout_argument():
    def plain_conv_net(n_classes):
        return nn.Sequential(nn.Conv2d(3, 4, 3), nn.Flatten(), nn.LazyLinear(n_classes))

    with pytest.raises(ValueError, match="needs a module that takes a `dropout` argument"):
        DropoutClassifier(module=plain_conv_net, max_epochs=1).fit(IMAGES[:8], LABELS[:8])


def test_augmented_training_is_reproducible():
    def fit():
        return VanillaClassifier(module=resnet20, module__augment=True, max_epochs=1,
                                 batch_size=16, random_state=7).fit(IMAGES[:32], LABELS[:32])

    a, b = fit(), fit()
    assert a.module_.augment is not None
    for (name, pa), pb in zip(a.module_.state_dict().items(), b.module_.state_dict().values(),
                              strict=True):
        assert torch.equal(pa, pb), name


# --------------------------------------------------------------------------- white box


def tiny_conv_net():
    return nn.Sequential(
        nn.Conv2d(3, 4, 3, padding=1), nn.BatchNorm2d(4), nn.ReLU(), nn.MaxPool2d(2),
        nn.Conv2d(4, 6, 3, bias=False), nn.BatchNorm2d(6), nn.ReLU(),
        nn.AdaptiveAvgPool2d(1), nn.Flatten(), nn.Linear(6, 5),
    )


def per_record_norms(module, X, y):
    """The reference's loop: one backward pass per record, in eval mode."""
    module.eval()
    rows = []
    for xi, yi in zip(torch.as_tensor(X), torch.as_tensor(y), strict=True):
        x = xi[None].clone().requires_grad_(True)
        loss = F.cross_entropy(module(x), yi[None])
        gx, *gw = torch.autograd.grad(loss, [x, *module.parameters()])
        gw = torch.cat([g.flatten() for g in gw]).double()
        gx = gx.flatten().double()
        rows.append([gx.abs().sum(), gx.norm(), gw.abs().sum(), gw.norm()])
    return np.array([[v.item() for v in row] for row in rows])


@pytest.mark.parametrize(
    ("factory", "n_records", "n_classes", "rtol"),
    [(tiny_conv_net, 12, 5, 1e-5), (resnet20, 3, 10, 1e-4), (vgg11_bn, 2, 10, 1e-4)],
    ids=["tiny", "resnet20", "vgg11_bn"],
)
def test_white_box_norms_match_per_record_loop(factory, n_records, n_classes, rtol):
    torch.manual_seed(0)
    module = factory()
    size = 16 if factory is tiny_conv_net else 32
    with torch.no_grad():  # non-trivial running statistics for batch norm
        module.train()(torch.randn(8, 3, size, size) * 2 + 0.5)
    X = torch.randn(n_records, 3, size, size).numpy()
    y = np.arange(n_records) % n_classes
    signals = compute_signals(module, X, y, white_box=True, batch_size=5)
    assert module.training, "the module's mode is restored"
    expected = per_record_norms(module, X, y)
    got = signals[["grad_x_l1", "grad_x_l2", "grad_w_l1", "grad_w_l2"]].to_numpy()
    np.testing.assert_allclose(got, expected, rtol=rtol)
    assert len(np.unique(got[:, 3])) == n_records, "norms differ between records"
