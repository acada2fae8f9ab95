"""DP-SGD's step for K stacked MLPs: per-record clipping by ghost norms, per-model noise.

A linear layer sees one row per record, so record ``i``'s gradient of its weight is the
outer product ``a_i δ_iᵀ`` of the layer's input ``a_i`` and the gradient ``δ_i`` of the
record's loss with respect to the layer's output; its squared norm is
``‖a_i‖² ‖δ_i‖²``, and ``‖δ_i‖²`` more for the bias (Goodfellow, 2015; ghost clipping,
Li et al., 2022, arXiv:2110.05679). A record's norm is taken over all of its model's
parameters, as opacus takes it, and the clipped sum of a layer is
``Aᵀ diag(c) Δ``: one batched product per layer for the K models, and no per-record
gradient is ever held. The noise of each model is drawn from its own generator, in
the order and layout in which opacus draws it for the model trained alone
(``torch.normal(0, σ·C, size)`` per parameter of ``module.parameters()``), so that a
model of the bank and the model trained alone see the same noise.
"""

import torch

__all__ = ["clipped_gradients", "add_noise", "record_norms"]


def _forward(net, x, generators, rows):
    """``net``'s forward (:meth:`StackedMLP.forward`) on detached weights, keeping what
    the norms need: the logits, each linear layer's input ``a`` and output ``z`` (the
    outputs are the tensors whose gradients ``δ`` are asked for)."""
    layers = list(zip(net.params[::2], net.params[1::2], strict=True))
    inputs, outputs = [], []
    for i, (weight, bias) in enumerate(layers):
        last = i == len(layers) - 1
        if last and generators is not None and net.dropout > 0:
            x = x * net._dropout_noise(x, generators, rows)
        z = torch.baddbmm(bias.detach().unsqueeze(1), x, weight.detach())
        if i == 0:
            z.requires_grad_()  # the first layer's input needs no gradient
        inputs.append(x)
        outputs.append(z)
        x = z if last else net.activation(z)
    return x, inputs, outputs


def record_norms(inputs, deltas):
    """Each record's gradient norm over all the layers: ``(K, B)`` from the layers'
    inputs ``(K, B, in)`` and output gradients ``(K, B, out)``."""
    squared = None
    for a, delta in zip(inputs, deltas, strict=True):
        term = delta.square().sum(2) * (a.square().sum(2) + 1.0)  # weight, bias
        squared = term if squared is None else squared + term
    return squared.sqrt()


def clipped_gradients(net, x, losses_of, max_grad_norm, generators=None, rows=None):
    """The sum over each model's records of their gradients clipped to ``max_grad_norm``.

    Parameters
    ----------
    net : StackedMLP
        The K networks.
    x : torch.Tensor of shape (K, B, n_features)
        Each model's batch, padded.
    losses_of : callable
        ``logits -> (K, B)`` per-record losses, zero on padding rows (whose gradients
        are then zero, and so their norms).
    max_grad_norm : float
        The clipping bound ``C``.
    generators, rows
        Dropout, as for :meth:`StackedMLP.forward`.

    Returns
    -------
    grads : list of torch.Tensor
        The clipped sums, one per tensor of ``net.params`` (its layout).
    losses : torch.Tensor of shape (K, B)
        The per-record losses, detached.
    norms : torch.Tensor of shape (K, B)
        Each record's gradient norm before clipping.
    """
    with torch.enable_grad():
        logits, inputs, outputs = _forward(net, x, generators, rows)
        losses = losses_of(logits)
        deltas = torch.autograd.grad(losses.sum(), outputs)
    with torch.no_grad():
        norms = record_norms(inputs, deltas)
        # opacus' coefficient: C / (norm + 1e-6), at most 1
        coef = (max_grad_norm / (norms + 1e-6)).clamp_(max=1.0).unsqueeze(2)
        grads = []
        for a, delta in zip(inputs, deltas, strict=True):
            scaled = delta * coef
            grads.append(torch.bmm(a.detach().transpose(1, 2), scaled))
            grads.append(scaled.sum(1))
    return grads, losses.detach(), norms


def add_noise(grads, names, generators, stds, expected_batch_size, buffers=None):
    """Add each model's Gaussian noise of standard deviation ``stds[k]`` to its clipped sums
    ``grads`` (in place) and divide by its ``expected_batch_size`` (a ``(K,)`` tensor),
    as opacus' optimizer does: noise drawn from ``generators[k]`` parameter by parameter
    in ``nn.Linear``'s layout (weights ``(out, in)``). ``buffers``: a dict kept between
    steps for the draws (filled on first use). Returns ``grads``."""
    buffers = {} if buffers is None else buffers
    scale = expected_batch_size.to(grads[0].dtype)
    for name, grad in zip(names, grads, strict=True):
        weight = name.endswith("weight")
        if any(stds):
            shape = (grad.shape[0], grad.shape[2], grad.shape[1]) if weight else grad.shape
            noise = buffers.get(name)
            if noise is None or noise.shape != shape:
                noise = buffers[name] = torch.empty(shape, dtype=grad.dtype,
                                                    device=grad.device)
            for k, (generator, std) in enumerate(zip(generators, stds, strict=True)):
                if std:  # opacus draws nothing without noise
                    torch.normal(0.0, std, noise.shape[1:], generator=generator,
                                 out=noise[k])
                else:
                    noise[k].zero_()
            grad.add_(noise.transpose(1, 2) if weight else noise)
        grad.div_(scale.view(-1, *([1] * (grad.dim() - 1))))
    return grads
