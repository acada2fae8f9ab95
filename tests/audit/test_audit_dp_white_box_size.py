"""A white-box DP audit refuses a network with fewer trainable parameters than gradient
canaries before it trains anything."""

import numpy as np
import pytest
from sklearn.datasets import make_classification

from skmia.audit import audit_dp
from skmia.audit._dp import _n_trainable_parameters
from skmia.defenses import DPSGDClassifier


def _data():
    return make_classification(120, n_features=3, n_informative=3, n_redundant=0,
                               n_classes=3, n_clusters_per_class=1, random_state=0)


def test_parameters_are_counted_without_training():
    X, y = _data()
    net = DPSGDClassifier(noise_multiplier=2.0, max_epochs=1, batch_size=40,
                          module__hidden_sizes=(2,), random_state=0)
    # 3 features -> 2 hidden -> 3 classes: (3*2 + 2) + (2*3 + 3) weights and biases
    assert _n_trainable_parameters(net, X, y) == 17
    assert not hasattr(net, "module_")  # the estimator given is left untouched


def test_too_many_gradient_canaries_are_refused_before_training(monkeypatch):
    X, y = _data()
    net = DPSGDClassifier(noise_multiplier=2.0, max_epochs=1, batch_size=40,
                          module__hidden_sizes=(2,), random_state=0)

    def no_training(self, *args, **kwargs):
        raise AssertionError("audit_dp trained before refusing the canaries")

    monkeypatch.setattr(DPSGDClassifier, "fit", no_training)
    monkeypatch.setattr(DPSGDClassifier, "partial_fit", no_training)
    with pytest.raises(ValueError, match=r"100 gradient canaries needs as many trainable "
                                         r"parameters .* the network has 17\. Use fewer"):
        audit_dp(net, X, y, canaries=100, white_box=True, random_state=0)


def test_enough_parameters_pass_the_check():
    X, y = _data()
    net = DPSGDClassifier(noise_multiplier=2.0, max_epochs=1, batch_size=40,
                          module__hidden_sizes=(32,), random_state=0)
    audit = audit_dp(net, X, y, canaries=100, white_box=True, random_state=0)
    n = sum(p.numel() for p in audit.estimator_.module_.parameters() if p.requires_grad)
    assert n == _n_trainable_parameters(net, X, y) == (3 * 32 + 32) + (32 * 3 + 3)
    assert np.isfinite(audit.bounds_["epsilon"]).all()
