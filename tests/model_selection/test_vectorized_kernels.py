"""The batched layers and optimiser of the vectorised bank: each model's linear layer and
SGD step, and the CPU kernel chosen for this processor."""

import bank_fixtures
import pytest
import torch
from bank_fixtures import ROUNDING, TINY, _counting, _weights
from sklearn.base import clone

from skmia.defenses import VanillaClassifier
from skmia.model_selection import ReferenceModels
from skmia.nn import _batched

# fixtures shared with the other files split from test_vectorized_bank.py, bound here by name
# (a nested conftest.py would break --doctest-modules)
pool = bank_fixtures.pool


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
