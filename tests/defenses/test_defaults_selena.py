"""HAMP's and SELENA's training as their authors' code: the loop, the logit average."""

import numpy as np
import pytest
import torch
from sklearn.datasets import make_classification
from skorch.callbacks import Callback

from skmia.defenses import HAMPClassifier, SELENAClassifier

TINY = {"module__hidden_sizes": (8,), "max_epochs": 3, "milestones": (), "lr": 0.05,
        "batch_size": 16, "random_state": 0}


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(80, n_features=6, n_informative=4, n_classes=3,
                               random_state=0)
    return X.astype(np.float32), y


class _Record(Callback):
    def on_train_begin(self, net, **kwargs):
        net.seen_state_, net.first_batches_ = [], []

    def on_epoch_begin(self, net, **kwargs):
        net.seen_state_.append(len(net.optimizer_.state))

    def on_batch_begin(self, net, batch=None, training=False, **kwargs):
        if training and len(net.first_batches_) < len(net.history):
            net.first_batches_.append(batch[0].clone())


@pytest.mark.parametrize("cls", [HAMPClassifier, SELENAClassifier])
def test_the_paper_loop_restarts_momentum_and_keeps_one_order(cls, data):
    X, y = data
    extra = {"n_models": 3, "n_excluded": 1} if cls is SELENAClassifier else {}
    paper = cls(paper_loop=True, callbacks=[("rec", _Record())], **extra, **TINY).fit(X, y)
    ours = cls(paper_loop=False, callbacks=[("rec", _Record())], **extra, **TINY).fit(X, y)
    assert paper.seen_state_ == [0, 0, 0]  # a fresh optimiser state every epoch
    assert ours.seen_state_[0] == 0 and min(ours.seen_state_[1:]) > 0
    for batch in paper.first_batches_[1:]:
        torch.testing.assert_close(batch, paper.first_batches_[0])
    assert not torch.equal(ours.first_batches_[1], ours.first_batches_[0])
    order = paper.training_order(len(X))
    assert sorted(order.tolist()) == list(range(len(X)))
    np.testing.assert_array_equal(order, paper.training_order(len(X)))  # fixed by the seed


def test_split_ai_averages_logits_as_the_papers_code(data):
    X, y = data
    selena = SELENAClassifier(n_models=5, n_excluded=2, **TINY).fit(X, y)
    logits = selena.split_ai_proba(X[:10])
    as_proba = selena.set_params(average="proba").split_ai_proba(X[:10])
    for i in range(10):
        out = np.flatnonzero(~selena.in_mask_[i])
        proba = np.stack([selena.submodels_[k].predict_proba(X[i:i + 1])[0] for k in out])
        # the paper: softmax of the mean of the sub-models' logits (log p up to a constant)
        mean_logit = np.log(proba).mean(axis=0)
        expected = np.exp(mean_logit) / np.exp(mean_logit).sum()
        np.testing.assert_allclose(logits[i], expected, rtol=1e-5)
        np.testing.assert_allclose(as_proba[i], proba.mean(axis=0), rtol=1e-5)
    assert not np.allclose(logits, as_proba)  # the two rules differ on these rows


def test_every_record_is_out_of_l_submodels_whose_sizes_vary(data):
    X, y = data
    selena = SELENAClassifier(n_models=5, n_excluded=2, **TINY).fit(X, y)
    assert (selena.in_mask_.sum(axis=1) == 3).all()
    sizes = selena.in_mask_.sum(axis=0)
    assert sizes.sum() == 3 * len(X) and len(set(sizes.tolist())) > 1  # not all equal


def test_the_authors_optimiser_is_the_default():
    for cls in (HAMPClassifier, SELENAClassifier):
        params = cls().get_params()
        assert (params["lr"], params["optimizer__momentum"], params["optimizer__weight_decay"],
                params["batch_size"], params["max_epochs"], tuple(params["milestones"])) == (
            0.5, 0.99, 1e-5, 64, 100, (60, 90))
