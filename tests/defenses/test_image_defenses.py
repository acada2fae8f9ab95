"""DP-SGD and AdvReg fitted on images (ResNet20, VGG11-BN): DP-SGD swaps batch norm for
group norm, AdvReg's inference network trains, white-box signals flow. Runs on CIFAR:
tests/experiment/test_cifar_runs.py."""

import numpy as np
import pytest

from skmia.attacks import compute_signals
from skmia.defenses import AdvRegClassifier, DPSGDClassifier
from skmia.nn import resnet20, vgg11_bn


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    return rng.normal(size=(64, 3, 32, 32)).astype(np.float32), rng.integers(0, 10, 64)


@pytest.mark.parametrize("module", [resnet20, vgg11_bn], ids=["resnet20", "vgg11_bn"])
def test_dpsgd_swaps_batchnorm_and_trains_on_images(images, module):
    X, y = images
    clf = DPSGDClassifier(module=module, noise_multiplier=1.0, max_epochs=1, batch_size=32,
                          random_state=0).fit(X, y)
    kinds = {type(m).__name__ for m in clf.module_.modules()}
    assert "GroupNorm" in kinds and not any(k.startswith("BatchNorm") for k in kinds)
    assert clf.predict_proba(X).shape == (64, 10)
    assert 0 < clf.epsilon_ < 10


def test_advreg_trains_on_images(images):
    X, y = images
    clf = AdvRegClassifier(module=resnet20, max_epochs=2, batch_size=16, warmup_epochs=1,
                           warmup_passes=1, inference_batches=2, classifier_batches=1,
                           random_state=0)
    clf.fit(X[:32], y[:32], X_reference=X[32:], y_reference=y[32:])
    assert clf.predict_proba(X).shape == (64, 10)
    assert np.isfinite(clf.history[-1, "inference_loss"])
    signals = compute_signals(clf, X[:4], y[:4], white_box=True)
    assert (signals[["grad_x_l2", "grad_w_l2"]].to_numpy() > 0).all()
