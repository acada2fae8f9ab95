"""K copies of :class:`skmia.nn.MLP` as one network: weights stacked on a model axis.

Many small networks trained one after the other spend their time in Python and in
dispatching tiny kernels; stacked, one ``baddbmm`` per layer computes the layer of all K
models at once (the vectorised bank of reference models, DESIGN §10). The layers are
written for skmia's MLP rather than through ``torch.func.vmap``: the per-model dropout
masks must be drawn from each model's own generator, in the order a model trained alone
draws them, which ``vmap``'s randomness modes cannot do.

On a CPU the bank trains on one torch thread per group of models, and each model's
products go either to one ``baddbmm`` per layer (MKL's ``sgemm``) or, where that runs
below the processor's width, to oneDNN (``torch.ops.mkldnn._linear_pointwise``, the
kernel ``torch.compile`` uses for linear layers), one call per model
(:func:`cpu_kernel`). MKL takes its AVX2 path on AMD processors; oneDNN takes AVX-512
where the processor has it: with AVX-512 oneDNN runs about twice MKL's speed, with AVX2
only one ``baddbmm`` per layer beats oneDNN's call per model (the timings:
``benchmarks/docs/reference_bank.md``). Either is float32 arithmetic; the
sums are blocked differently, so results differ by rounding.
"""

import torch
from torch import nn

from ._mlp import MLP

__all__ = ["StackedMLP", "StackedSGD", "cpu_kernel"]


def _onednn_linear():
    """oneDNN's linear product on dense CPU tensors, or None where torch lacks it."""
    if not torch.backends.mkldnn.is_available():
        return None
    linear = getattr(getattr(torch.ops, "mkldnn", None), "_linear_pointwise", None)
    if linear is None:
        return None
    # a private op: probe it once on a product known by hand. Where it is missing, has
    # another signature or is not built for this CPU (the three errors caught below),
    # the bank runs torch.baddbmm, a supported path: the same arithmetic, tested on
    # its own, only slower on AMD processors with AVX-512.
    x, w = torch.ones(2, 3), torch.ones(4, 3)
    try:
        product = linear(x, w, None, "none", [], "")
    except (RuntimeError, NotImplementedError, TypeError):
        return None
    return linear if torch.equal(product, torch.full((2, 4), 3.0)) else None


#: oneDNN's linear product, found on first use (False: not looked for yet)
_ONEDNN = False


def _onednn():
    global _ONEDNN
    if _ONEDNN is False:
        _ONEDNN = _onednn_linear()
    return _ONEDNN


class _StackedLinear(torch.autograd.Function):
    """``x[k] @ weight[k] + bias[k]`` for every model ``k`` by oneDNN, one call a model:
    ``x`` ``(K, B, in)``, ``weight`` ``(K, in, out)``, ``bias`` ``(K, out)``."""

    @staticmethod
    def forward(ctx, x, weight, bias):
        linear = _onednn()
        ctx.save_for_backward(x, weight)
        return torch.stack([linear(x[k], weight[k].t(), bias[k], "none", [], "")
                            for k in range(len(x))])

    @staticmethod
    def backward(ctx, grad):
        linear = _onednn()
        x, weight = ctx.saved_tensors
        models = range(len(x))
        grad_x = None
        if ctx.needs_input_grad[0]:
            grad_x = torch.stack([linear(grad[k], weight[k], None, "none", [], "")
                                  for k in models])
        grad_weight = torch.stack([linear(x[k].t(), grad[k].t(), None, "none", [], "")
                                   for k in models])
        return grad_x, grad_weight, grad.sum(dim=1)


def _processor():
    """``(vendor, AVX-512 used by torch)`` of this CPU (vendor "" where unknown)."""
    vendor = ""
    try:
        with open("/proc/cpuinfo") as cpuinfo:
            vendor = next((line.split(":", 1)[1].strip() for line in cpuinfo
                           if line.startswith("vendor_id")), "")
    except OSError:
        pass
    return vendor, torch.backends.cpu.get_cpu_capability().startswith("AVX512")


#: the batched product on a CPU, chosen on first use (None: not chosen yet)
_CPU_KERNEL = None


def cpu_kernel():
    """The batched bank's product on a CPU: ``"onednn"`` where torch has oneDNN's linear
    product and MKL would run below the processor's width (an AMD processor with
    AVX-512: MKL keeps to AVX2 there, half oneDNN's speed), else ``"baddbmm"`` (one
    MKL call per layer for all the models; faster than oneDNN's call per model on an
    AVX2 processor, see the module's docstring). Fixed by the machine, not by timing,
    so a bank is reproducible on it; not measured on an Intel processor with AVX-512,
    where MKL runs AVX-512 and ``baddbmm`` is used."""
    global _CPU_KERNEL
    if _CPU_KERNEL is None:
        vendor, avx512 = _processor()
        amd_avx512 = vendor == "AuthenticAMD" and avx512
        _CPU_KERNEL = "onednn" if amd_avx512 and _onednn() is not None else "baddbmm"
    return _CPU_KERNEL


def uses_onednn(device="cpu"):
    """Whether :func:`stacked_linear` runs oneDNN: on a CPU whose :func:`cpu_kernel` is
    oneDNN, on one torch thread (the batched bank's threads on a CPU:
    ``_batching.batched_threads``). On more threads each model's product would be a
    parallel region of its own, K of them per layer and step, which a busy machine makes
    several times slower than one thread (``benchmarks/docs/reference_bank.md``)."""
    return (torch.device(device).type == "cpu" and torch.get_num_threads() == 1
            and cpu_kernel() == "onednn")


def stacked_linear(x, weight, bias):
    """Every model's linear layer: ``x`` ``(K, B, in)``, ``weight`` ``(K, in, out)``,
    ``bias`` ``(K, out)``; oneDNN where :func:`uses_onednn`, else ``baddbmm``."""
    if x.dtype == torch.float32 and uses_onednn(x.device):
        return _StackedLinear.apply(x, weight, bias)
    return torch.baddbmm(bias.unsqueeze(1), x, weight)


class StackedMLP:
    """The weights of K :class:`~skmia.nn.MLP` of one shape, stacked; a batched forward.

    Parameters
    ----------
    modules : sequence of MLP
        The K networks, all with the same layer sizes, activation and dropout. Their
        weights are copied; the modules are not changed.
    device : str or torch.device, default=None
        Where the stacked weights live (default: where the modules' weights are).

    Attributes
    ----------
    params : list of torch.Tensor
        Leaf tensors, two per linear layer: weights ``(K, in, out)`` (each the transpose
        of ``nn.Linear``'s, so that the products and their gradients are contiguous) and
        biases ``(K, out)``, in the order of ``MLP.state_dict()``.
    names : list of str
        The ``state_dict`` key of each tensor of ``params``.
    """

    def __init__(self, modules, device=None):
        modules = list(modules)
        if not modules or not all(isinstance(m, MLP) for m in modules):
            raise TypeError("StackedMLP stacks skmia.nn.MLP modules (at least one)")
        first = modules[0]
        self.n_models = len(modules)
        self.dropout = next((m.p for m in first.modules() if isinstance(m, nn.Dropout)), 0.0)
        self.activation = next(
            (m for m in first.features if not isinstance(m, nn.Linear)), nn.Identity())
        states = [m.state_dict() for m in modules]
        self.names = list(states[0])
        shapes = [tuple(states[0][name].shape) for name in self.names]
        for state in states[1:]:
            if [tuple(state[name].shape) for name in self.names] != shapes:
                raise ValueError("StackedMLP needs networks of one shape")
        self.params = [
            torch.stack([self._stacked_layout(name, state[name].detach()) for state in states])
            .to(device).contiguous().requires_grad_()
            for name in self.names
        ]

    @staticmethod
    def _stacked_layout(name, tensor):
        return tensor.t() if name.endswith("weight") else tensor

    def module_layout(self, name, tensor):
        """One model's slice of a stacked tensor (a weight, its gradient or its momentum)
        in ``nn.Linear``'s layout, as a contiguous copy on the CPU."""
        return self._stacked_layout(name, tensor).to("cpu").clone(
            memory_format=torch.contiguous_format)

    def forward(self, x, generators=None, rows=None):
        """Logits of every model for its own batch.

        Parameters
        ----------
        x : torch.Tensor of shape (K, B, n_features)
            Model ``k``'s batch in ``x[k]`` (padded to ``B`` rows).
        generators : list of torch.Generator or None
            In training mode with dropout: each model's generator, from which its dropout
            mask is drawn (``rows[k]`` rows), as ``torch.nn.Dropout`` draws it from the
            global generator for a model trained alone. None: no dropout (evaluation).
        rows : list of int, default=None
            The real rows of each model's batch (the rest is padding).

        Returns
        -------
        logits : torch.Tensor of shape (K, B, n_classes)
        """
        layers = list(zip(self.params[::2], self.params[1::2], strict=True))
        for weight, bias in layers[:-1]:
            x = self.activation(stacked_linear(x, weight, bias))
        if generators is not None and self.dropout > 0:
            x = x * self._dropout_noise(x, generators, rows)
        return stacked_linear(x, *layers[-1])

    def _dropout_noise(self, x, generators, rows):
        """Model ``k``'s mask, drawn as ``F.dropout`` draws it: ``bernoulli_(1 - p)`` on
        its ``rows[k]`` rows, divided by ``1 - p``; padding rows get zeros."""
        keep = 1.0 - self.dropout
        noise = torch.zeros_like(x)
        for k, (generator, n) in enumerate(zip(generators, rows, strict=True)):
            if n:
                mask = torch.empty((n, x.shape[2]), dtype=x.dtype, device=x.device)
                noise[k, :n] = mask.bernoulli_(keep, generator=generator).div_(keep)
        return noise

    def state_dicts(self, models=None):
        """One ``state_dict`` per model (copies, on the CPU), for ``models`` (default all)."""
        models = range(self.n_models) if models is None else models
        return [
            {name: self.module_layout(name, p[k].detach()) for name, p in zip(
                self.names, self.params, strict=True)}
            for k in models
        ]

    def n_parameters(self):
        """Parameters of one model."""
        return sum(p[0].numel() for p in self.params)


#: the optimizer updates the stacked tensors in blocks of models whose weights, gradients
#: and momentum take at most this many bytes (at least one model), when all of them take
#: more than ``_SGD_WHOLE_BYTES``: four passes over a block that stays in the cache
#: instead of four passes over tensors that do not (timings: benchmarks/docs/reference_bank.md)
_SGD_BLOCK_BYTES = 2 * 2**20
_SGD_WHOLE_BYTES = 16 * 2**20


class StackedSGD:
    """torch.optim.SGD on stacked parameters, with a model axis: the arithmetic of its
    single-tensor step (the same operations in the same order, as ``_foreach`` calls on
    the K-stacked tensors, a block of models at a time); at a step where some models
    have no batch, only the models that step are updated (gathered, updated, put back),
    the others keep their weights and momentum."""

    def __init__(self, params, group):
        self.params = params
        self.momentum = group["momentum"]
        self.dampening = group["dampening"]
        self.weight_decay = group["weight_decay"]
        self.nesterov = group["nesterov"]
        self.buffers = None

    def step(self, grads, lr, active=None):
        """One update from this step's ``grads`` (consumed); ``active``: None for every
        model, else the index of the models that step (never at the first step)."""
        grads = list(grads)
        with torch.no_grad():
            if active is None:
                self.buffers = self._update(self.params, grads, self.buffers, lr)
                return
            params = [p.index_select(0, active) for p in self.params]
            grads = [g.index_select(0, active) for g in grads]
            buffers = (None if self.buffers is None
                       else [b.index_select(0, active) for b in self.buffers])
            buffers = self._update(params, grads, buffers, lr)
            for full, part in zip(self.params, params, strict=True):
                full.index_copy_(0, active, part)
            if buffers is not None:
                for full, part in zip(self.buffers, buffers, strict=True):
                    full.index_copy_(0, active, part)

    def _update(self, params, grads, buffers, lr):
        """``torch.optim.SGD``'s step on lists of stacked tensors, block by block of
        models; returns the momentum buffers (made at the first step)."""
        first = buffers is None and self.momentum != 0
        if first:
            buffers = [torch.empty_like(g) for g in grads]
        n_models = len(params[0])
        per_model = 3 * sum(p[0].numel() * p.element_size() for p in params)
        block = n_models
        if per_model * n_models > _SGD_WHOLE_BYTES:
            block = max(1, _SGD_BLOCK_BYTES // per_model)
        for start in range(0, n_models, block):
            part = slice(start, start + block)
            self._update_block([p[part] for p in params], [g[part] for g in grads],
                               None if buffers is None else [b[part] for b in buffers],
                               lr, first)
        return buffers

    def _update_block(self, params, grads, buffers, lr, first):
        if self.weight_decay != 0:  # in place: ``grads`` are this step's own
            torch._foreach_add_(grads, params, alpha=self.weight_decay)
        if self.momentum != 0:
            if first:  # torch.optim.SGD: the first buffer is a copy of the gradient
                torch._foreach_copy_(buffers, grads)
            else:
                torch._foreach_mul_(buffers, self.momentum)
                torch._foreach_add_(buffers, grads, alpha=1 - self.dampening)
            if self.nesterov:
                torch._foreach_add_(grads, buffers, alpha=self.momentum)
            else:
                grads = buffers
        torch._foreach_add_(params, grads, alpha=-lr)
