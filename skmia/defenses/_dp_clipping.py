"""The clipping path of DP-SGD: opacus' per-record gradient hooks around one training.

Ghost clipping (Li et al., 2022; Bu et al., 2023) computes each record's gradient norm
without materialising per-record gradients; :class:`_PrivateTraining` holds the hooks
and the DP optimizer for one training call and takes the norms from gradients with
respect to the layers' outputs only (``fast_norms``).
"""

import warnings
from contextlib import contextmanager

import torch
from opacus.grad_sample import prepare_module
from opacus.optimizers import DPOptimizer, DPOptimizerFastGradientClipping
from opacus.optimizers.optimizer import _check_processed_flag, _mark_as_processed

__all__ = []

class _IncompleteNorms(RuntimeError):
    """The cheap first ghost-clipping pass did not reach every layer's hooks."""


class _InPlaceNoiseOptimizer(DPOptimizerFastGradientClipping):
    """opacus' ghost-clipping optimizer without its per-step copies.

    opacus copies each clipped gradient into ``summed_grad``, draws the noise into a
    fresh tensor (after allocating a tensor of zeros it does not use) and adds the two
    into a third: three allocations of every parameter's size per step, each a pass over
    memory (and, for large layers, fresh pages from the operating system). Here the
    clipped gradient *is* ``summed_grad``, the noise is drawn into one buffer per
    parameter kept for the whole training, and added in place. The draws are opacus'
    (``torch.normal(0, σ·C, size, generator)``, same order, same generator), so a seeded
    training gives the same model; secure noise (``secure_mode``) is never used here.
    """

    def accumulate(self):
        for p in self.params:
            if p.summed_grad is not None:
                p.summed_grad.add_(p.grad.data)
            else:
                p.summed_grad = p.grad.data  # the second backward pass's fresh tensor

    def add_noise(self):
        std = self.noise_multiplier * self.max_grad_norm
        buffers = self.__dict__.setdefault("_noise_buffers", {})
        for p in self.params:
            summed = p.summed_grad
            _check_processed_flag(summed)
            if std != 0:
                noise = buffers.get(id(p))
                if noise is None or noise.shape != summed.shape:
                    noise = buffers[id(p)] = torch.empty_like(summed)
                torch.normal(0.0, std, summed.shape, generator=self.generator, out=noise)
                summed.add_(noise)
            p.grad = summed.view_as(p)
            _mark_as_processed(summed)


class _PrivateTraining:
    """What one training call needs and nothing may pickle: opacus hooks, DP optimizer.

    Ghost clipping takes two backward passes: the first gives opacus' hooks each
    record's gradient norm, the second the gradient of the clipped (re-weighted) loss.
    The first needs gradients with respect to the layers' outputs only, not their
    weights: with ``fast_norms`` it asks autograd for exactly those (on an MLP this skips
    the costliest matrix products, the weight gradients of the first layer).
    """

    def __init__(self, module, optimizer, *, mode, noise_multiplier, max_grad_norm,
                 expected_batch_size, n_rows, fast_norms=True):
        self.mode = mode
        self.n_rows = n_rows
        ghost = mode == "ghost"
        kwargs = {"max_grad_norm": max_grad_norm} if ghost else {}
        self.hooks = prepare_module(
            module, grad_sample_mode=mode, wrap_model=False, batch_first=True,
            loss_reduction="mean", **kwargs,
        )
        optimizer_class = _InPlaceNoiseOptimizer if ghost else DPOptimizer
        self.optimizer = optimizer_class(
            optimizer,
            noise_multiplier=noise_multiplier,
            max_grad_norm=max_grad_norm,
            expected_batch_size=expected_batch_size,
            loss_reduction="mean",
        )
        self.fast_norms = ghost and fast_norms
        self.outputs = []
        self._handles = []
        if self.fast_norms:
            self._handles = [
                layer.register_forward_hook(self._keep_output)
                for layer in self.hooks.iterate_submodules(module)
            ]

    def _keep_output(self, layer, args, output):
        if layer.training and torch.is_grad_enabled():
            outputs = output if isinstance(output, (tuple, list)) else (output,)
            self.outputs.extend(
                t for t in outputs if isinstance(t, torch.Tensor) and t.requires_grad
            )

    def backward(self, losses):
        """Leave the clipped, summed per-record gradients in ``.grad`` (before noise)."""
        if self.mode != "ghost":
            losses.mean().backward()  # opacus' hooks rescale to per-record gradients
            return
        if self.fast_norms:
            params = self.hooks.trainable_parameters
            for p in params:
                if hasattr(p, "_norm_sample"):
                    del p._norm_sample
            torch.autograd.grad(losses.mean(), self.outputs, retain_graph=True,
                                allow_unused=True)
            if not all(hasattr(p, "_norm_sample") for p in params):
                raise _IncompleteNorms
        else:
            losses.mean().backward(retain_graph=True)
        coef = self.hooks.get_clipping_coef().to(losses.device)
        self.optimizer.zero_grad(set_to_none=True)
        self.hooks.disable_hooks()
        try:
            (coef * losses).sum().backward()
        finally:
            self.hooks.enable_hooks()

    def close(self):
        for handle in self._handles:
            handle.remove()
        self.outputs = []
        module = self.hooks._module
        self.hooks.cleanup()
        for sub in module.modules():  # per-layer caches opacus leaves on the modules
            for name in ("activations", "max_batch_len"):
                if name in vars(sub):
                    delattr(sub, name)
        for p in module.parameters():
            if hasattr(p, "summed_grad"):
                del p.summed_grad
            if hasattr(p, "_norm_sample"):
                del p._norm_sample


@contextmanager
def _quiet_backward_hooks():
    # opacus' per-layer backward hooks fire on the first layer, whose input needs no
    # gradient; torch notes it on every backward pass. It is expected here.
    with warnings.catch_warnings():
        warnings.filterwarnings("ignore", message="Full backward hook is firing")
        yield


def _batchnorm1d_to_groupnorm(module):
    """Replace every ``BatchNorm1d`` by ``GroupNorm(1, C)``, a LayerNorm over the features.

    opacus' fixer gives every BatchNorm ``gcd(32, C)`` groups: right for the channels of
    an image network, but after a linear layer (activations ``(n, C)``) a group of one
    feature normalises to zero, and the network cannot learn.
    """
    for name, child in module.named_children():
        if isinstance(child, torch.nn.BatchNorm1d):
            setattr(module, name, torch.nn.GroupNorm(1, child.num_features, affine=child.affine))
        else:
            _batchnorm1d_to_groupnorm(child)
    return module
