"""A defense's objective is written once (``training_objective``, K models at a time),
whether it is batched is the defense's own method (``_batch_refusal``, extended with
``super()``), the batched bank fires skorch's epoch events on each model, and a loaded
model is resumed through its public ``resume_from``."""

import bank_fixtures
import numpy as np
import pytest
import torch
from bank_fixtures import ROUNDING, TINY, _alone, _weights
from skorch.callbacks import Callback

from skmia.defenses import DPSGDClassifier, RelaxLossClassifier, VanillaClassifier
from skmia.defenses._relaxloss import RELAXLOSS_OBJECTIVES
from skmia.io import load_estimator, save_estimator
from skmia.model_selection import ReferenceModels, _vectorized
from skmia.model_selection._batching import batching_refusal

# the vectorised bank's tiny pool, recipe, rounding and a model trained alone
pool = bank_fixtures.pool

class WeightNorm(Callback):
    """Records, at each epoch's end, the norm of the weights then (a callback that reads
    the network: the bank must write it back first) and, at its start, the lr."""

    def on_epoch_begin(self, net, **kwargs):
        net.history.record("lr_seen", net.optimizer_.param_groups[0]["lr"])

    def on_epoch_end(self, net, **kwargs):
        net.history.record("weight_norm", float(_weights(net).norm()))


class Squared(VanillaClassifier):
    """An objective of its own, written once for K models: batched by construction."""

    @property
    def _default_callbacks(self):
        return [*super()._default_callbacks, ("weight_norm", WeightNorm())]

    def training_objective(self, logits, targets, batches):
        ce = super().training_objective(logits, targets, batches)
        return ce + 0.5 * ce**2


def test_a_subclass_objective_is_batched_with_its_callbacks(pool):
    """One objective: the bank trains it and each model equals the one trained alone,
    its callback's epoch events and the step-decayed learning rate included."""
    X, y = pool
    recipe = Squared(milestones=(1, 2), gamma=0.5, **TINY)
    assert batching_refusal(recipe, X, {}) is None
    bank = ReferenceModels(recipe, n_estimators=2, random_state=0, vectorize=True).fit(X, y)
    for k, model in enumerate(bank.estimators_):
        alone = _alone(bank, k, X, y)
        torch.testing.assert_close(_weights(model), _weights(alone), **ROUNDING)
        assert [set(row) for row in model.history] == [set(row) for row in alone.history]
        assert model.history[:, "lr"] == alone.history[:, "lr"] == [0.1, 0.05, 0.025]
        assert model.history[:, "lr_seen"] == model.history[:, "lr"]
        np.testing.assert_allclose(model.history[:, "weight_norm"],
                                   alone.history[:, "weight_norm"], rtol=1e-5)
        assert model.history[-1, "weight_norm"] == pytest.approx(
            float(_weights(model).norm()))  # the weights of that epoch, written back


def test_relaxloss_records_its_objective_through_the_same_callback(pool):
    X, y = pool
    recipe = RelaxLossClassifier(alpha=1.0, **{**TINY, "max_epochs": 4})
    bank = ReferenceModels(recipe, n_estimators=2, random_state=0, vectorize=True).fit(X, y)
    for k, model in enumerate(bank.estimators_):
        expected = list(RELAXLOSS_OBJECTIVES) * 2
        assert model.history[:, "train_objective"] == expected
        assert _alone(bank, k, X, y).history[:, "train_objective"] == expected


class OwnLoop(VanillaClassifier):
    def fit_loop(self, X, y=None, epochs=None, **fit_params):
        return super().fit_loop(X, y, epochs=epochs, **fit_params)


class OwnBatches(VanillaClassifier):
    def get_iterator(self, dataset, training=False):
        return super().get_iterator(dataset, training=training)


class PerBatch(Callback):
    def on_batch_end(self, net, **kwargs):
        pass


class WithPerBatch(VanillaClassifier):
    @property
    def _default_callbacks(self):
        return [*super()._default_callbacks, ("per_batch", PerBatch())]


class PrivateLoop(DPSGDClassifier):
    def run_single_epoch(self, *args, **kwargs):
        return super().run_single_epoch(*args, **kwargs)


@pytest.mark.parametrize(("recipe", "reason"), [
    (OwnLoop(**TINY), r"OwnLoop changes skorch's training loop \(fit_loop\)"),
    (OwnBatches(**TINY), r"OwnBatches changes skorch's training loop \(get_iterator\)"),
    (WithPerBatch(**TINY), "WithPerBatch acts on each batch .callback 'per_batch'."),
    (PrivateLoop(**TINY), r"PrivateLoop changes skorch's training loop \(run_single_epoch\)"),
])
def test_a_subclass_changing_skorchs_loop_is_trained_model_by_model(recipe, reason, pool):
    X, y = pool
    assert batching_refusal(recipe, X, {}) is not None
    with pytest.raises(ValueError, match=f"vectorize=True, but .*{reason}"):
        ReferenceModels(recipe, n_estimators=2, vectorize=True).fit(X, y)


class Picky(VanillaClassifier):
    """Extends the base class's refusal with a reason of its own."""

    def _batch_refusal(self, X, fit_params):
        return (super()._batch_refusal(X, fit_params)
                or self._refusal(["its data has a negative value" if X.min() < 0 else None]))


def test_a_defense_extends_its_refusal_with_super(pool):
    X, y = pool
    assert batching_refusal(Picky(**TINY), X, {}) == "Picky: its data has a negative value"
    assert batching_refusal(Picky(**TINY), np.abs(X), {}) is None
    # the base class's reasons come first
    assert batching_refusal(Picky(optimizer=torch.optim.Adam, **TINY), X, {}) == (
        "Picky: its optimizer is not torch.optim.SGD")


def test_the_base_objective_in_skorchs_loop_is_the_criterion(pool):
    """K = 1: the criterion itself, whatever loss it is (the stacked form is for
    cross-entropy only, which the refusal checks)."""
    X, y = pool
    clf = VanillaClassifier(criterion=torch.nn.MultiMarginLoss, **TINY).fit(X, y)
    logits, targets = torch.randn(5, 3), torch.tensor([0, 1, 2, 0, 1])
    assert torch.equal(clf.training_loss(logits, targets, None),
                       torch.nn.MultiMarginLoss()(logits, targets))
    assert "criterion is not plain" in batching_refusal(clf, X, {})


def test_resume_from_continues_from_the_given_generator_state(pool, tmp_path):
    X, y = pool
    clf = VanillaClassifier(**{**TINY, "max_epochs": 1}, random_state=0).fit(X, y)
    save_estimator(clf, tmp_path)
    state = (torch.random.get_rng_state(), [])
    resumed = [load_estimator(tmp_path) for _ in range(3)]
    assert all(m.resume_refusal_ is None for m in resumed)
    for model in resumed[:2]:
        assert model.resume_from(state) is model
    for model in resumed:
        model.partial_fit(X, y)
    assert torch.equal(_weights(resumed[0]), _weights(resumed[1]))
    assert not torch.equal(_weights(resumed[0]), _weights(resumed[2]))  # seeded anew
    with pytest.raises(ValueError, match="random generator state is malformed"):
        resumed[0].resume_from((torch.zeros(3), []))


def test_a_model_that_cannot_train_further_refuses_to_resume(pool, tmp_path):
    X, y = pool
    bank = ReferenceModels(VanillaClassifier(**TINY), n_estimators=2, random_state=0)
    save_estimator(bank.fit(X, y), tmp_path)
    model = load_estimator(tmp_path).estimators_[0]  # saved without its optimizer
    assert "one model of a bank" in model.resume_refusal_
    with pytest.raises(ValueError, match="cannot resume this loaded model: it was saved "
                                         "as one model of a bank"):
        model.resume_from((torch.random.get_rng_state(), []))
    model.fit(X, y)
    assert model.resume_refusal_ is None


def test_the_batched_loop_reads_the_learning_rate_the_schedules_set(pool, monkeypatch):
    """skorch's lr_schedule sets each model's rate; models of one group disagreeing on
    it is an error, not a silent choice."""
    X, y = pool
    prepared = [_vectorized._prepared(VanillaClassifier(**TINY), X, y, np.arange(len(y)), k)
                for k in range(2)]
    prepared[1].optimizer_.param_groups[0]["lr"] = 0.5
    with pytest.raises(ValueError, match=r"one learning rate, got \[0.1, 0.5\]"):
        _vectorized._learning_rate(prepared)
