"""The vectorised bank (one batched network for K models) and what ReferenceModels adds
around it: equivalence with models trained alone, refusals, head(k), warm-start checks,
memory bounds."""

import bank_fixtures
import numpy as np
import pytest
import torch
from bank_fixtures import ROUNDING, TINY, _alone, _weights
from sklearn.base import clone
from sklearn.linear_model import LogisticRegression

from skmia import _parallel
from skmia.defenses import (
    AdvRegClassifier,
    ConfidencePenaltyClassifier,
    DistillationClassifier,
    DPSGDClassifier,
    DropoutClassifier,
    EarlyStoppingClassifier,
    LabelSmoothingClassifier,
    RelaxLossClassifier,
    VanillaClassifier,
)
from skmia.model_selection import ReferenceModels, _batching, _memory
from skmia.nn import ModelBatches, _batched

# fixtures shared with the other files split from test_vectorized_bank.py, bound here by name
# (a nested conftest.py would break --doctest-modules)
pool = bank_fixtures.pool


# ------------------------------------------------------------------ equivalence
@pytest.mark.parametrize("estimator", [
    VanillaClassifier(**TINY),
    RelaxLossClassifier(alpha=1.0, **{**TINY, "max_epochs": 4}),  # both parities, both branches
    LabelSmoothingClassifier(smoothing=0.2, **TINY),
    ConfidencePenaltyClassifier(penalty=0.3, **TINY),
    DropoutClassifier(dropout=0.3, **TINY),
    DistillationClassifier(temperature=4.0, alpha=0.6, **TINY),  # teachers batched first
], ids=lambda e: type(e).__name__)
def test_each_model_equals_the_model_trained_alone(estimator, pool):
    X, y = pool
    bank = ReferenceModels(estimator, n_estimators=4, random_state=3,
                           vectorize=True).fit(X, y)
    sizes = bank.in_mask_.sum(axis=0)
    assert len(set(sizes.tolist())) > 1  # unequal subsets: balanced per record, not per model
    for k, model in enumerate(bank.estimators_):
        alone = _alone(bank, k, X, y)
        assert type(model) is type(estimator)
        torch.testing.assert_close(_weights(model), _weights(alone), **ROUNDING)
        # the same history, optimizer state and learning rate as skorch leaves them
        assert len(model.history) == len(alone.history) == estimator.max_epochs
        for mine, theirs in zip(model.history, alone.history, strict=True):
            assert set(mine) == set(theirs)
            assert [b["train_batch_size"] for b in mine["batches"]] == [
                b["train_batch_size"] for b in theirs["batches"]]
            assert mine["train_loss"] == pytest.approx(theirs["train_loss"], abs=1e-5)
        mine, theirs = model.optimizer_.state_dict(), alone.optimizer_.state_dict()
        assert mine["param_groups"] == theirs["param_groups"]
        for i, state in theirs["state"].items():
            torch.testing.assert_close(mine["state"][i]["momentum_buffer"],
                                       state["momentum_buffer"], **ROUNDING)
        assert model._training_finished()
        np.testing.assert_array_equal(model.train_indices_, np.arange(sizes[k]))
        if hasattr(alone, "teacher_"):
            assert model.teacher is None and model.teacher_ is not alone.teacher_
            torch.testing.assert_close(_weights(model.teacher_), _weights(alone.teacher_),
                                       **ROUNDING)


def test_relaxloss_takes_each_models_own_branch():
    """On odd epochs a model whose batch loss is above alpha descends, one below it
    flattens: both branches in one batched step, each equal to the model's own loss."""
    from skmia.defenses._losses import relaxloss

    torch.manual_seed(0)
    targets = torch.randint(0, 3, (2, 5))
    logits = torch.stack([torch.zeros(5, 3),  # loss log 3 = 1.10 > alpha
                          8.0 * torch.nn.functional.one_hot(targets[1], 3)])  # ~0 < alpha
    logits = torch.cat([logits, torch.full((2, 2, 3), 50.0)], dim=1)  # padding rows
    targets = torch.cat([targets, torch.zeros(2, 2, dtype=torch.long)], dim=1)
    mask = torch.cat([torch.ones(2, 5), torch.zeros(2, 2)], dim=1)
    clf = RelaxLossClassifier(alpha=0.9, upper=0.5)
    clf.flatten_mode_ = "tabular"
    for epoch in (0, 1):
        batches = ModelBatches([clf, clf], None, epoch, mask, torch.full((2,), 5.0))
        batched = clf.training_objective(logits, targets, batches)
        for k in range(2):
            alone = relaxloss(logits[k, :5], targets[k, :5], epoch=epoch, alpha=0.9,
                              upper=0.5, flatten_mode="tabular")
            torch.testing.assert_close(batched[k], alone)
    ce = torch.nn.functional.cross_entropy(logits[0, :5], targets[0, :5])
    torch.testing.assert_close(batched[0], ce)  # model 0 descends, model 1 flattens
    assert not torch.allclose(batched[1], torch.nn.functional.cross_entropy(
        logits[1, :5], targets[1, :5]))


def test_early_stopping_keeps_the_same_snapshots(pool):
    X, y = pool
    estimator = EarlyStoppingClassifier(snapshot_epochs=(1, 2), **TINY)
    bank = ReferenceModels(estimator, n_estimators=2, random_state=0, vectorize=True)
    bank.fit(X, y)
    for k, model in enumerate(bank.estimators_):
        alone = _alone(bank, k, X, y)
        assert sorted(model.snapshots_) == [1, 2]
        for epoch in (1, 2):
            for name, value in alone.snapshots_[epoch].items():
                torch.testing.assert_close(model.snapshots_[epoch][name], value,
                                           **ROUNDING)


def test_vectorised_and_per_model_banks_agree_to_rounding(pool):
    X, y = pool
    batched = ReferenceModels(VanillaClassifier(**TINY), n_estimators=2, random_state=5)
    alone = clone(batched).set_params(vectorize=False)
    batched.fit(X, y)
    alone.fit(X, y)
    np.testing.assert_array_equal(batched.in_mask_, alone.in_mask_)
    np.testing.assert_array_equal(batched.seeds_, alone.seeds_)
    for a, b in zip(batched.estimators_, alone.estimators_, strict=True):
        torch.testing.assert_close(_weights(a), _weights(b), **ROUNDING)


# ------------------------------------------------------------------ what falls back
@pytest.mark.parametrize(("estimator", "reason"), [
    (DPSGDClassifier(grad_sample_mode="hooks", **TINY), "grad_sample_mode=.hooks. asks"),
    (AdvRegClassifier(**TINY), "AdvRegClassifier trains with a step of its own"),
    (DistillationClassifier(teacher=VanillaClassifier(), **TINY), "a teacher is given"),
    (LogisticRegression(), "LogisticRegression is not a skmia defense"),
    (VanillaClassifier(optimizer=torch.optim.RMSprop, **TINY), "optimizer is not torch.optim.SGD"),
    (VanillaClassifier(module__hidden_sizes=(4,), module=torch.nn.Linear),
     "module is not the class skmia.nn.MLP"),
    (VanillaClassifier(criterion=torch.nn.NLLLoss, **TINY), "criterion is not plain"),
])
def test_vectorize_true_refuses_what_it_cannot_batch(estimator, reason, pool):
    X, y = pool
    bank = ReferenceModels(estimator, n_estimators=2, random_state=0, vectorize=True)
    with pytest.raises(ValueError, match=f"vectorize=True, but .*{reason}"):
        bank.fit(X, y)


def test_a_subclass_with_its_own_objective_is_not_batched(pool):
    class Doubled(VanillaClassifier):
        def training_loss(self, logits, targets, X):
            return 2 * super().training_loss(logits, targets, X)

    X, y = pool
    with pytest.raises(ValueError, match="Doubled.training_loss has no batched form"):
        ReferenceModels(Doubled(**TINY), n_estimators=2, vectorize=True).fit(X, y)


def test_auto_falls_back_model_by_model(pool):
    X, y = pool
    estimator = VanillaClassifier(optimizer=torch.optim.RMSprop, **TINY)
    bank = ReferenceModels(estimator, n_estimators=2, random_state=0).fit(X, y)
    for k, model in enumerate(bank.estimators_):  # model by model: bit for bit
        assert torch.equal(_weights(model), _weights(_alone(bank, k, X, y)))


def test_auto_batches_every_mlp_on_one_thread_per_group(pool, monkeypatch):
    X, y = pool
    large = VanillaClassifier(module__hidden_sizes=(1024, 512), max_epochs=1)
    for kernel in ("baddbmm", "onednn"):
        monkeypatch.setattr(_batched, "_CPU_KERNEL", kernel)
        bank = ReferenceModels(large, n_estimators=2, random_state=0)
        assert bank._batching_refusal(X, {}) is None  # batched, whatever its size
        assert _batching.batched_threads(large, 2) == 1  # one thread, whatever n_jobs
    cuda = clone(large).set_params(device="cuda")
    assert _batching.batched_threads(cuda, 2) == min(2, _parallel.n_cores())


# ------------------------------------------------------------------ head, warm start
def test_head_is_the_bank_of_the_first_models(pool):
    X, y = pool
    bank = ReferenceModels(VanillaClassifier(**TINY), n_estimators=6, random_state=0)
    bank.fit(X, y)
    head = bank.head(4)
    assert head is not bank and head.n_estimators == 4 and len(head.estimators_) == 4
    assert all(a is b for a, b in zip(head.estimators_, bank.estimators_[:4], strict=False))
    small = ReferenceModels(VanillaClassifier(**TINY), n_estimators=4, random_state=0)
    small.fit(X, y)
    np.testing.assert_array_equal(head.in_mask_, small.in_mask_)
    np.testing.assert_array_equal(head.seeds_, small.seeds_)
    assert head.fingerprint() == small.fingerprint() != bank.fingerprint()
    assert head.pool_digest_ == bank.pool_digest_ and head.base_seed_ == bank.base_seed_
    head.in_mask_[0, 0] = not head.in_mask_[0, 0]  # a copy: the bank keeps its masks
    assert bank.in_mask_[0, 0] != head.in_mask_[0, 0]
    for bad in (0, 3, 7, 2.0, True):
        with pytest.raises(ValueError, match=r"head\(k\) takes a whole number of models"):
            bank.head(bad)


def test_warm_start_refuses_a_changed_recipe(pool):
    X, y = pool
    bank = ReferenceModels(VanillaClassifier(**{**TINY, "max_epochs": 1}), n_estimators=2,
                           warm_start=True, random_state=0).fit(X, y)
    bank.set_params(n_estimators=4, estimator__max_epochs=3)
    with pytest.raises(ValueError, match="estimator's max_epochs changed since: 1 -> 3"):
        bank.fit(X, y)
    assert len(bank.estimators_) == 2
    bank.set_params(estimator__max_epochs=1, estimator__verbose=0).fit(X, y)  # same recipe
    assert len(bank.estimators_) == 4


def test_a_huge_bank_is_refused_before_any_allocation(pool, monkeypatch):
    X, y = pool
    monkeypatch.setattr(_memory, "available_memory", lambda device: 8 * 2**30)
    bank = ReferenceModels(VanillaClassifier(**TINY), n_estimators=10**9)
    with pytest.raises(ValueError, match=r"masks \(121 records x 1,000,000,000 models\) and "
                                         r"the fitted models \(at least 28 KiB each\) would "
                                         r"need 26928.3 GiB, more than the 8.0 GiB"):
        bank.fit(X, y)
    # a bank of large models passes the first estimate (28 KiB a model) and is refused
    # by the same estimate once the first model shows its size (20,483 parameters)
    monkeypatch.setattr(_memory, "available_memory", lambda device: 100 * 2**20)
    wide = VanillaClassifier(**{**TINY, "module__hidden_sizes": (2048,)})
    with pytest.raises(ValueError, match="2,000 models of 20,483 parameters"):
        ReferenceModels(wide, n_estimators=2000, vectorize=True).fit(X, y)
