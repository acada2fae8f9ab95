"""The vectorised bank (one batched network for K models) and what ReferenceModels adds
around it: equivalence with models trained alone, chunking, refusals, head(k), warm-start
checks, memory bounds, and the no-cold-start rules of skmia._parallel."""

import warnings

import numpy as np
import pytest
import torch
from sklearn.base import clone
from sklearn.datasets import make_classification
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
from skmia.model_selection import ReferenceModels, _batching, _memory, _vectorized
from skmia.nn import ModelBatches, _batched

TINY = {"max_epochs": 3, "module__hidden_sizes": (12,), "batch_size": 16}
#: float32 rounding of a few short trainings: a batched step sums each model's gradient
#: over its rows padded to the step's longest batch, a model alone over its own rows, so
#: the sums round differently (largest difference measured over 8 seeds of these
#: vanilla and RelaxLoss banks, weights and momentum of magnitude up to ~2: 1.1e-6)
ROUNDING = {"rtol": 0, "atol": 2e-6}


@pytest.fixture(scope="module")
def pool():
    X, y = make_classification(121, n_features=6, n_informative=4, n_classes=3,
                               random_state=1)
    return X.astype(np.float32), y


def _weights(model):
    return torch.cat([p.detach().flatten() for p in model.module_.parameters()])


def _alone(bank, k, X, y):
    """Model ``k`` of ``bank`` trained alone: its rows, its seed, the usual fit."""
    rows = bank.in_mask_[:, k]
    model = clone(bank.estimator).set_params(random_state=int(bank.seeds_[k]))
    return model.fit(X[rows], y[rows])


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


@pytest.mark.parametrize("kernel", ["onednn", "baddbmm"])
def test_stacked_linear_is_each_models_linear_layer(kernel, monkeypatch):
    """The batched product (oneDNN per model where :func:`cpu_kernel` says so and torch
    has it, else baddbmm) and its gradients for inputs, weights and biases: each
    model's ``nn.Linear``."""
    from skmia._parallel import torch_threads

    if kernel == "onednn" and _batched._onednn() is None:
        kernel = "baddbmm"  # a torch without oneDNN: the choice falls back
    monkeypatch.setattr(_batched, "_CPU_KERNEL", kernel)
    gen = torch.Generator().manual_seed(0)
    x = torch.randn(3, 5, 7, generator=gen, requires_grad=True)
    weight = torch.randn(3, 7, 4, generator=gen, requires_grad=True)  # (K, in, out)
    bias = torch.randn(3, 4, generator=gen, requires_grad=True)
    upstream = torch.randn(3, 5, 4, generator=gen)
    with torch_threads(1):
        out = _batched.stacked_linear(x, weight, bias)
    grads = torch.autograd.grad((out * upstream).sum(), (x, weight, bias))
    for k in range(3):
        xk, wk, bk = (t[k].detach().clone().requires_grad_() for t in (x, weight, bias))
        alone = torch.nn.functional.linear(xk, wk.t(), bk)
        torch.testing.assert_close(out[k], alone)
        mine = torch.autograd.grad((alone * upstream[k]).sum(), (xk, wk, bk))
        for got, want in zip(grads, mine, strict=True):
            torch.testing.assert_close(got[k], want)
    expected = {"onednn": "_StackedLinearBackward", "baddbmm": "BaddbmmBackward0"}
    assert type(out.grad_fn).__name__ == expected[kernel]


@pytest.mark.parametrize(("vendor", "avx512", "onednn", "kernel"), [
    ("AuthenticAMD", True, True, "onednn"),  # MKL keeps to AVX2 on AMD
    ("AuthenticAMD", False, True, "baddbmm"),  # AVX2 both: one call per layer wins
    ("GenuineIntel", True, True, "baddbmm"),  # MKL runs AVX-512 there
    ("AuthenticAMD", True, False, "baddbmm"),  # a torch without oneDNN
    ("", True, True, "baddbmm"),  # vendor unknown
])
def test_the_cpu_kernel_follows_the_processor(vendor, avx512, onednn, kernel, monkeypatch):
    monkeypatch.setattr(_batched, "_processor", lambda: (vendor, avx512))
    monkeypatch.setattr(_batched, "_ONEDNN", object() if onednn else None)
    monkeypatch.setattr(_batched, "_CPU_KERNEL", None)
    assert _batched.cpu_kernel() == kernel
    assert _batched.cpu_kernel() == kernel  # chosen once, then kept


def test_the_processor_is_read_from_this_machine():
    import os

    vendor, avx512 = _batched._processor()
    assert isinstance(vendor, str) and isinstance(avx512, bool)
    if os.path.exists("/proc/cpuinfo"):
        with open("/proc/cpuinfo") as cpuinfo:
            text = cpuinfo.read()
        assert vendor and f": {vendor}\n" in text
        if avx512:  # torch runs AVX-512 code only where the processor has it
            assert " avx512f " in text


def test_the_other_kernel_gives_the_same_bank(pool, monkeypatch):

    X, y = pool
    default = ReferenceModels(VanillaClassifier(**TINY), n_estimators=4, random_state=2,
                              vectorize=True).fit(X, y)
    other = "baddbmm" if _batched.cpu_kernel() == "onednn" else "onednn"
    if _batched._onednn() is None:
        other = "baddbmm"
    monkeypatch.setattr(_batched, "_CPU_KERNEL", other)
    calls = []
    monkeypatch.setattr(_batched._StackedLinear, "forward", _counting(
        _batched._StackedLinear.forward, calls))
    again = clone(default).fit(X, y)
    for a, b in zip(default.estimators_, again.estimators_, strict=True):
        torch.testing.assert_close(_weights(a), _weights(b), **ROUNDING)
    assert bool(calls) == (other == "onednn")  # the bank's one thread ran that kernel


def _counting(function, calls):
    def counted(*args, **kwargs):
        calls.append(1)
        return function(*args, **kwargs)
    return staticmethod(counted)


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


def test_chunks_give_the_models_of_one_chunk(pool, monkeypatch):
    X, y = pool
    whole = ReferenceModels(VanillaClassifier(**TINY), n_estimators=6, random_state=0)
    whole.fit(X, y)
    seen = []

    def two_at_a_time(n_models, per_model_bytes, device):
        seen.append(per_model_bytes)
        return 2

    monkeypatch.setattr(_vectorized, "chunk_size", two_at_a_time)
    chunked = ReferenceModels(VanillaClassifier(**TINY), n_estimators=6, random_state=0)
    chunked.fit(X, y)
    # 12 hidden units: 6*12+12 + 12*3+3 = 123 parameters, batch 16 of 6 + 12 + 3 values
    assert seen == [4 * (4 * 123 + 4 * 16 * (6 + 12 + 3))]
    for a, b in zip(whole.estimators_, chunked.estimators_, strict=True):
        torch.testing.assert_close(_weights(a), _weights(b), **ROUNDING)


def test_groups_in_threads_give_the_models_of_one_thread(pool, monkeypatch):
    X, y = pool
    monkeypatch.setattr(_vectorized, "CPU_GROUP", 3)  # 7 models: groups of 3, 3 and 1
    trained = []
    train = _vectorized._train

    def recording(models, rows, X_pool, y_pool, stop=None, progress=None):
        trained.append(len(models))
        return train(models, rows, X_pool, y_pool, stop, progress)

    monkeypatch.setattr(_vectorized, "_train", recording)
    X_pool, y_pool = X, y
    masks = np.random.default_rng(0).random((len(y), 7)) < 0.5
    seeds = list(range(7))
    one = _vectorized.fit_batched(VanillaClassifier(**TINY), X_pool, y_pool, masks, seeds)
    two = _vectorized.fit_batched(VanillaClassifier(**TINY), X_pool, y_pool, masks, seeds,
                                  n_threads=2)
    assert trained == [3, 3, 1, 3, 3, 1]  # the CPU groups, serially then in threads
    for a, b in zip(one, two, strict=True):  # bit for bit: the threads change no model
        assert torch.equal(_weights(a), _weights(b))
        assert a.history[-1, "train_loss"] == b.history[-1, "train_loss"]
    assert _batching.group_threads(2, torch_threads=1) == min(2, _parallel.n_cores())
    assert _batching.group_threads(2, torch_threads=2) == 1  # torch shares the work
    assert _batching.group_threads(None, torch_threads=1) == 1


def test_a_stop_flag_ends_a_group_at_the_start_of_an_epoch(pool):
    import threading

    X, y = pool
    masks = np.ones((len(y), 2), dtype=bool)
    prepared = [_vectorized._prepared(VanillaClassifier(**TINY), X, y, np.arange(len(y)), k)
                for k in range(2)]
    before = [_weights(m).clone() for m in prepared]
    stop = threading.Event()
    stop.set()
    X_pool = torch.as_tensor(X)
    y_pool = torch.as_tensor(prepared[0].label_encoder_.transform(y).astype(np.int64))
    assert _vectorized._train(prepared, [np.flatnonzero(m) for m in masks.T], X_pool,
                              y_pool, stop) is True  # ended short of its epochs
    for model, weights in zip(prepared, before, strict=True):
        assert len(model.history) == 0 and torch.equal(_weights(model), weights)


@pytest.mark.parametrize("options", [
    {"momentum": 0.9, "weight_decay": 1e-2, "dampening": 0.25, "nesterov": False},
    {"momentum": 0.5, "weight_decay": 0.0, "dampening": 0.0, "nesterov": True},
    {"momentum": 0.0, "weight_decay": 1e-3, "dampening": 0.0, "nesterov": False},
])
@pytest.mark.parametrize("block_bytes", [None, 1])  # whole tensors; one model a block
def test_the_stacked_sgd_is_torchs_sgd_model_by_model(options, block_bytes, monkeypatch):
    """Three models, four steps, the last two with a model sitting out: each model's
    weights and momentum are torch.optim.SGD's, bit for bit."""
    if block_bytes is not None:
        monkeypatch.setattr(_batched, "_SGD_WHOLE_BYTES", 0)
        monkeypatch.setattr(_batched, "_SGD_BLOCK_BYTES", block_bytes)
    gen = torch.Generator().manual_seed(0)
    shapes = [(4, 3), (3,)]
    start = [torch.randn((3, *s), generator=gen) for s in shapes]
    grads = [[torch.randn((3, *s), generator=gen) for s in shapes] for _ in range(4)]
    actives = [None, None, torch.tensor([0, 2]), torch.tensor([1])]
    stacked = [p.clone() for p in start]
    sgd = _batched.StackedSGD(stacked, options)
    for lr, active, g in zip((0.1, 0.1, 0.05, 0.05), actives, grads, strict=True):
        sgd.step([x.clone() for x in g], lr, active)
    for k in range(3):
        params = [torch.nn.Parameter(p[k].clone()) for p in start]
        torch_sgd = torch.optim.SGD(params, lr=0.1, **options)
        for lr, active, g in zip((0.1, 0.1, 0.05, 0.05), actives, grads, strict=True):
            if active is not None and k not in active.tolist():
                continue
            for param, grad in zip(params, g, strict=True):
                param.grad = grad[k].clone()
            torch_sgd.param_groups[0]["lr"] = lr
            torch_sgd.step()
        for i, param in enumerate(params):
            torch.testing.assert_close(stacked[i][k], param.detach(), rtol=0, atol=0)
            if options["momentum"]:
                torch.testing.assert_close(sgd.buffers[i][k],
                                           torch_sgd.state[param]["momentum_buffer"],
                                           rtol=0, atol=0)


def test_the_chunk_rule(monkeypatch):
    monkeypatch.setattr(_memory, "available_memory", lambda device: 4000)
    assert _memory.chunk_size(64, 100, "cpu") == 10  # a quarter of 4,000 B / 100 B
    assert _memory.chunk_size(8, 100, "cpu") == 8
    assert _memory.chunk_size(64, 10**6, "cpu") == 1


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


def _interrupt_at_epoch(monkeypatch, n):
    """A Ctrl-C at the ``n``-th epoch the batched bank runs; returns the epochs begun."""
    run_epoch, calls = _vectorized._run_epoch, []

    def interrupted(*args):
        calls.append(1)
        if len(calls) == n:
            raise KeyboardInterrupt
        return run_epoch(*args)

    monkeypatch.setattr(_vectorized, "_run_epoch", interrupted)
    return calls


def test_a_keyboard_interrupt_ends_the_models_quietly_as_skorch_does(pool, monkeypatch):
    """fit_batched ends quietly, as skorch's fit does; ReferenceModels.fit then raises."""
    X, y = pool
    _interrupt_at_epoch(monkeypatch, 2)
    masks = np.ones((len(y), 2), dtype=bool)
    for model in _vectorized.fit_batched(VanillaClassifier(**TINY), X, y, masks, [0, 1]):
        assert len(model.history) == 2 and "train_loss" not in model.history[-1]
        assert not model._training_finished()
    _interrupt_at_epoch(monkeypatch, 2)
    bank = ReferenceModels(VanillaClassifier(**TINY), n_estimators=2, random_state=0)
    with pytest.raises(KeyboardInterrupt, match="0 of the 2 reference models finished"):
        bank.fit(X, y)
    assert not hasattr(bank, "estimators_")


def test_a_keyboard_interrupt_in_one_thread_starts_no_other_group(pool, monkeypatch):
    X, y = pool
    monkeypatch.setattr(_vectorized, "CPU_GROUP", 2)  # 4 models: two groups
    calls = _interrupt_at_epoch(monkeypatch, 2)
    masks = np.ones((len(y), 4), dtype=bool)
    models = _vectorized.fit_batched(VanillaClassifier(**TINY), X, y, masks, [0, 1, 2, 3])
    assert [len(m.history) for m in models] == [2, 2, 0, 0]
    assert len(calls) == 2


def test_an_error_in_one_thread_ends_the_other_groups_early(pool, monkeypatch):
    X, y = pool
    monkeypatch.setattr(_vectorized, "CPU_GROUP", 2)
    run_epoch = _vectorized._run_epoch
    epochs = []

    def failing(context, *args):
        epochs.append(id(context))
        if context.models[0].random_state == 0 and len(epochs) > 1:
            raise ValueError("a part failed")
        return run_epoch(context, *args)

    monkeypatch.setattr(_vectorized, "_run_epoch", failing)
    masks = np.ones((len(y), 4), dtype=bool)
    long = VanillaClassifier(**{**TINY, "max_epochs": 2000})
    with pytest.raises(ValueError, match="a part failed"):
        _vectorized.fit_batched(long, X, y, masks, [0, 1, 2, 3], n_threads=2)
    assert len(epochs) < 200  # the other group stopped at its epoch's end, not its last


_SIGINT_CHILD = """
import json, os, signal, sys, threading, time
import numpy as np
from sklearn.datasets import make_classification
from skmia.defenses import VanillaClassifier
from skmia.model_selection import ReferenceModels, _batching, _memory, _vectorized

X, y = make_classification(400, n_features=20, n_informative=8, n_classes=3,
                           random_state=0)
run_epoch, sent = _vectorized._run_epoch, threading.Event()

def signalling(*args):  # a real Ctrl-C once the first epoch of a group has run
    losses = run_epoch(*args)
    if not sent.is_set():
        sent.set()
        os.kill(os.getpid(), signal.SIGINT)
    return losses

_vectorized._run_epoch = signalling
_vectorized.CPU_GROUP = 2
recipe = VanillaClassifier(max_epochs=3000, module__hidden_sizes=(16,), batch_size=32)
began = time.perf_counter()
models = _vectorized.fit_batched(recipe, X.astype(np.float32), y, np.ones((400, 4), bool),
                                 [0, 1, 2, 3], n_threads=2)
print(json.dumps({"epochs": [len(m.history) for m in models],
                  "seconds": time.perf_counter() - began}))
"""


def test_a_real_ctrl_c_ends_a_bank_trained_in_threads():
    """SIGINT reaches the main thread only; the groups in the other threads end at
    their epoch's end and ``fit_batched`` returns, as skorch's fit does (ReferenceModels
    then raises: tests/model_selection/test_reliability_interrupt.py)."""
    import json
    import subprocess
    import sys

    out = subprocess.run([sys.executable, "-c", _SIGINT_CHILD], capture_output=True,
                         text=True, timeout=300, check=False)
    assert out.returncode == 0, out.stderr
    result = json.loads(out.stdout.strip().splitlines()[-1])
    assert len(result["epochs"]) == 4
    assert all(epochs < 3000 for epochs in result["epochs"])
    assert max(result["epochs"]) >= 1


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


# ------------------------------------------------------------------ no cold start
def _square(x):
    return x * x


@pytest.fixture
def workers_asked(monkeypatch):
    """The workers each joblib.Parallel of skmia._parallel is asked for, on a 2-core
    machine; the calls themselves run here."""
    monkeypatch.setattr(_parallel, "n_cores", lambda: 2)
    started = []
    real = _parallel.Parallel

    def recording(*args, n_jobs=None, **kwargs):
        started.append(n_jobs)
        return real(*args, n_jobs=1, **kwargs)

    monkeypatch.setattr(_parallel, "Parallel", recording)
    return started


def test_workers_are_capped_at_the_tasks_and_warned_above_the_cores(workers_asked,
                                                                     monkeypatch):
    monkeypatch.setattr(_parallel, "_cold", lambda workers: False)
    with warnings.catch_warnings():
        warnings.simplefilter("error")
        assert _parallel.parallel_map(_square, [(2,), (3,)], n_jobs=24) == [4, 9]
    assert workers_asked == [2]  # two tasks: two workers, however many asked; no warning
    with pytest.warns(UserWarning, match=r"4 workers x 1 torch thread\(s\) = 4 threads on a "
                                         r"machine with 2 cores"):
        _parallel.parallel_map(_square, [(1,)] * 6, n_jobs=4)
    with pytest.warns(UserWarning, match="threads=64 torch threads on a machine with 2 cores"):
        _parallel.check_threads(64)
    with pytest.warns(UserWarning, match="n_jobs=24 asks for 24 cores on a machine with 2"):
        assert _parallel.bank_threads(24) == 2
    assert _parallel.bank_threads(None) == 1


def test_short_work_stays_in_this_process(workers_asked, monkeypatch):
    """With no worker started yet, the first two calls run here, the second timed;
    calls that would not pay for starting workers run here too, with the same results."""
    monkeypatch.setattr(_parallel, "_cold", lambda workers: True)
    tasks = [(k,) for k in range(4)]
    assert _parallel.parallel_map(_square, tasks, n_jobs=2, only_if_it_pays=True) == [
        0, 1, 4, 9]
    assert workers_asked == [1]
    # calls that must run at once (a run's target and shadow) get the workers asked
    assert _parallel.parallel_map(_square, tasks[:2], n_jobs=2) == [0, 1]
    assert workers_asked == [1, 2]
    monkeypatch.setattr(_parallel, "n_cores", lambda: 2)
    start = _parallel.WORKER_START_SECONDS
    # 3 calls left on 2 workers take 2 calls' time: 1 saved, against one start per core
    assert _parallel._pays(start + 0.5, 3, 2) and not _parallel._pays(start - 0.5, 3, 2)
    assert not _parallel._pays(100 * start, 1, 2)  # one call: workers save nothing
    # 4 workers on 2 cores start two at a time: twice the cost
    call = 1.9 * start / 3
    assert _parallel._pays(call, 4, 4) is False  # saves 3 calls (1.9 starts), pays 2
    assert _parallel._pays(call, 4, 2) is True  # saves 2 calls (1.27 starts), pays 1
