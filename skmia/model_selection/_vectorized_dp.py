"""DP-SGD in the vectorised bank: K private trainings as one batched network (DESIGN §10).

A defense whose step clips each record's gradient and adds noise declares it with
``_batched_private(n_rows)`` (see :class:`skmia.defenses.DPSGDClassifier`), which sets
the clone up as its own ``fit`` would (sample rate, noise multiplier) and returns
:class:`PrivateSettings`; ``_batched_private_steps(n)`` then takes ``n`` steps of its
accountant, and ``_batched_finish(models)`` ends the bank (once: the privacy warning).

Each model keeps everything its guarantee rests on, as when it is trained alone:

- Poisson sampling: at every step each of its rows is drawn with probability ``q``
  (``torch.rand(n) < q`` from its own generator, seeded by its ``training_seed_``,
  hence by ``secure_noise`` where set), never a row outside its own; batch sizes differ
  between models and steps, padded to the step's largest and masked. A model with an
  empty batch still takes its step (noise only), as the mechanism does;
- per-record clipping to ``max_grad_norm`` over all of its parameters
  (:func:`skmia.nn._batched_dp.clipped_gradients`, ghost norms);
- Gaussian noise of standard deviation ``noise_multiplier * max_grad_norm`` on the
  clipped sum from its own generator, divided by its expected batch size ``q n``;
- its own accountant, one step per step, and ``epsilon_`` after every epoch;
- the recipe's learning-rate schedule, momentum and weight decay (torch's SGD).

The draws of each model come from its generator in the order its ``fit`` draws them
from torch's global one (its rows, its dropout mask, its noise, step after step), so a
model of the bank equals the model trained alone to float32 rounding.
"""

import math
from dataclasses import dataclass

import numpy as np

__all__ = ["PrivateSettings", "poisson_width", "train_private"]


@dataclass(frozen=True)
class PrivateSettings:
    """What the batched bank needs of one model's private training.

    Attributes
    ----------
    sample_rate : float
        Poisson sampling rate ``q`` of a row at each step.
    steps_per_epoch : int
        Noisy steps per epoch.
    max_grad_norm : float
        The clipping bound ``C``.
    noise_std : float
        Standard deviation of the noise on the clipped sum (``σ · C``).
    expected_batch_size : float
        What the noisy sum is divided by (``q n``).
    """

    sample_rate: float
    steps_per_epoch: int
    max_grad_norm: float
    noise_std: float
    expected_batch_size: float


def poisson_width(n_rows, sample_rate):
    """The rows of a Poisson batch the memory estimate plans for: the mean ``q n`` and
    6 standard deviations (a Binomial(n, q) draw exceeds it with probability < 1e-8)."""
    mean = n_rows * sample_rate
    return int(min(n_rows, math.ceil(mean + 6 * math.sqrt(mean * (1 - sample_rate)) + 1)))


def _clipping_bound(settings):
    """The clipping bound of a group of models (one recipe: one bound)."""
    bounds = {s.max_grad_norm for s in settings}
    if len(bounds) != 1:
        raise ValueError("the models of a batched DP-SGD group need one clipping bound, "
                         f"got {sorted(bounds)}")
    return bounds.pop()


class _Sampler:
    """Each model's Poisson batch of one step, padded: ``index`` the flat pool rows
    ``(K * width,)``, ``mask`` ``(K, width)``, ``sizes`` the real rows per model."""

    def __init__(self, rows, rates, generators, device):
        import torch

        self.rows = [torch.as_tensor(r) for r in rows]
        self.rates = rates
        self.generators = generators
        self.device = device

    def draw(self, active):
        """The step's batches; a model not ``active`` (its epoch has no step left)
        draws nothing and gets an empty batch."""
        import torch

        drawn = [r[torch.rand(len(r), generator=g) < q] if on else r[:0]
                 for r, q, g, on in zip(self.rows, self.rates, self.generators, active,
                                        strict=True)]
        sizes = [len(d) for d in drawn]
        width = max(1, max(sizes))
        index = torch.empty((len(drawn), width), dtype=torch.int64)
        mask = torch.zeros((len(drawn), width))
        for k, d in enumerate(drawn):
            index[k, :len(d)] = d
            index[k, len(d):] = self.rows[k][0]  # padding: any row of the model, masked
            mask[k, :len(d)] = 1.0
        return index.view(-1).to(self.device), mask.to(self.device), sizes, width


def train_private(models, rows, X_pool, y_pool, stop=None, progress=None):
    """Train ``models`` (prepared clones of a private recipe) together with DP-SGD.

    As :func:`skmia.model_selection._vectorized._train` (the same epoch loop,
    :func:`~skmia.model_selection._vectorized.run_epochs`; its ``stop`` and
    KeyboardInterrupt end the training quietly; returns whether it ended short), with
    each model's private step (see the module's docstring).
    """
    import torch

    from ..nn import ModelBatches
    from ._vectorized import run_epochs, stacked_training

    first = models[0]
    device = X_pool.device
    net, optimizer = stacked_training(models, device)
    settings = [m._batched_private(len(r)) for m, r in zip(models, rows, strict=True)]
    max_grad_norm = _clipping_bound(settings)
    steps = np.asarray([s.steps_per_epoch for s in settings])
    sampling = [torch.Generator().manual_seed(m.training_seed_) for m in models]
    # the model alone draws its rows on the CPU, its dropout and noise where it trains
    noise = (sampling if device.type == "cpu" else
             [torch.Generator(device).manual_seed(m.training_seed_) for m in models])
    sampler = _Sampler(rows, [s.sample_rate for s in settings], sampling, device)
    stds = [s.noise_std for s in settings]  # per model: a target ε chooses each its own
    scale = torch.as_tensor([s.expected_batch_size for s in settings], device=device)
    step = _PrivateStep(net, optimizer, noise, max_grad_norm, scale, stds)
    batches = ModelBatches(models, None, 0)

    def one_epoch(lr):
        batches.epoch = first.current_epoch
        losses, counts = [], []
        for t in range(steps.max()):
            active = t < steps
            index, mask, sizes, width = sampler.draw(active)
            losses.append(step(batches, X_pool, y_pool, index, mask, sizes, width, lr,
                               active))
            counts.append(sizes)
        for model, n_steps in zip(models, steps, strict=True):
            model._batched_private_steps(int(n_steps))  # before the privacy callback
        # an empty Poisson batch is a step too: each model took its first steps[k]
        taken = np.arange(steps.max())[:, None] < steps[None, :]
        return np.stack(losses), np.asarray(counts), taken

    return run_epochs(models, net, optimizer, one_epoch, stop, progress)


class _PrivateStep:
    """One noisy step of every model: per-record losses, clipped sums, noise, SGD."""

    def __init__(self, net, optimizer, generators, max_grad_norm, scale, stds):
        self.net, self.optimizer = net, optimizer
        self.generators, self.max_grad_norm, self.scale = generators, max_grad_norm, scale
        self.stds = stds
        self.buffers = {}

    def __call__(self, batches, X_pool, y_pool, index, mask, sizes, width, lr, active):
        """The step of the ``active`` models (a bool per model; the others keep their
        weights and momentum and draw no noise); returns each model's mean loss on its
        batch (0 on an empty one). ``batches``: the models'
        :class:`~skmia.nn._batched_objective.ModelBatches`, filled for this step."""
        import torch

        # the engine's per-record clipping and noise (internal to the engine)
        from ..nn._batched_dp import add_noise, clipped_gradients

        n_models = len(sizes)
        batches.inputs = X_pool.index_select(0, index).view(n_models, width,
                                                            *X_pool.shape[1:])
        batches.mask, batches.counts = mask, None
        targets = y_pool.index_select(0, index).view(n_models, width)
        dropout = self.generators if self.net.dropout else None
        objective = batches.models[0].training_objective

        def losses_of(logits):  # per record, zero on padding
            return objective(logits, targets, batches)

        grads, losses, _ = clipped_gradients(self.net, batches.inputs, losses_of,
                                             self.max_grad_norm, dropout, sizes)
        with torch.no_grad():
            stds = [std if on else 0.0 for std, on in zip(self.stds, active, strict=True)]
            add_noise(grads, self.net.names, self.generators, stds, self.scale, self.buffers)
        moving = None if active.all() else torch.as_tensor(np.flatnonzero(active),
                                                            device=self.scale.device)
        self.optimizer.step(grads, lr, moving)
        counts = torch.as_tensor(sizes, dtype=losses.dtype, device=losses.device)
        return (losses.sum(1) / counts.clamp(min=1)).cpu().numpy()
