"""Gradient ("Dirac") canaries for a white-box audit of DP-SGD.

A gradient canary is a record whose clipped gradient is a fixed vector: ``C`` (the
clipping bound ``max_grad_norm``) times one coordinate of the parameters (a Dirac
direction, as in Nasr et al., USENIX Security 2023, arXiv:2302.07956, and Steinke, Nasr
& Jagielski, NeurIPS 2023, arXiv:2305.08846). Canaries get distinct coordinates, so
their directions are orthogonal. A canary that is IN (its fair coin, drawn by the
auditor) is added to the clipped-gradient sum of exactly the steps where a Poisson
sampler at the training's sample rate draws it, before the noise; a canary that is OUT
is never inserted. DP-SGD's accounting covers each canary as it covers every row: a
record of norm ``C`` drawn at rate ``q``.

Each step, :class:`GradientCanaries` reads, along every canary's coordinate, the
released noisy sum and the sum of the real records' clipped gradients. Three scores
per canary, each summed over the steps and divided by ``C``:

- ``"step"``: the released noisy sum minus the real records' clipped sum along the
  canary -- ``(number of steps that drew it, if IN) + σ · N(0, steps)`` exactly. An
  adversary who sees every noisy step (the accountant's assumption) and knows the
  other records' clipped gradients (the adversary of DP's definition) computes it; the
  real records' part does not depend on the canary's coin given the past steps, so the
  guarantee covers it.
- ``"update"``: the released noisy sum along the canary (what an adversary who sees
  every step but not the other gradients reads).
- ``"weights"``: the initial minus the final weight along the canary (the last model
  only; momentum, weight decay and the learning-rate schedule blur it).

:class:`DPSGDClassifier` calls :meth:`GradientCanaries.attach` when it sets up its
private training (the hook), so the canaries ride along every training call.
"""

from contextlib import contextmanager

import numpy as np
import torch

__all__ = ["GRADIENT_CANARY_SCORES", "GradientCanaries", "inserted_canaries"]

#: The scores :class:`GradientCanaries` keeps for each canary (see the module notes).
GRADIENT_CANARY_SCORES = ("step", "update", "weights")


class GradientCanaries:
    """Dirac gradient canaries for one DP-SGD training, and their scores.

    Parameters
    ----------
    membership : array-like of bool of shape (n_canaries,)
        Each canary's coin: True to insert it (IN), False never to (OUT).
    random_state : numpy.random.Generator
        Draws the canaries' coordinates and their Poisson samples (independent of the
        training's own generator).

    Attributes
    ----------
    n_steps_ : int
        Steps seen.
    draws_ : ndarray of int64 of shape (n_canaries,)
        How many steps drew each canary (inserted only when IN).
    coordinates_ : ndarray of int64 of shape (n_canaries,)
        Each canary's coordinate in the flattened trainable parameters.
    """

    def __init__(self, membership, random_state):
        self.membership = np.asarray(membership, dtype=bool)
        self.random_state = random_state
        self.n_steps_ = 0
        self.draws_ = np.zeros(len(self.membership), dtype=np.int64)
        self._sums = {name: np.zeros(len(self.membership)) for name in ("step", "update")}
        self._layout = None

    def check_parameters(self, n_parameters):
        """Raise ValueError when a network has fewer coordinates than canaries."""
        if n_parameters < len(self.membership):
            raise ValueError(
                f"a white-box audit with {len(self.membership)} gradient canaries needs as "
                f"many trainable parameters (one coordinate each); the network has "
                f"{n_parameters}. Use fewer canaries or a larger network."
            )

    def attach(self, optimizer, *, sample_rate, max_grad_norm):
        """Insert the canaries into every noisy step of ``optimizer`` (an opacus
        ``DPOptimizer``) from now on, drawing each at ``sample_rate``."""
        params = list(optimizer.params)
        if self._layout is None:
            self._choose_coordinates(params)
        self._params = params
        self._sample_rate = float(sample_rate)
        self._clip = float(max_grad_norm)
        add_noise = optimizer.add_noise

        def add_noise_with_canaries():
            real = self._insert(params)
            add_noise()
            self._observe(params, real)

        optimizer.add_noise = add_noise_with_canaries  # this training call's optimizer only

    def _choose_coordinates(self, params):
        sizes = np.array([p.numel() for p in params], dtype=np.int64)
        self.check_parameters(int(sizes.sum()))
        flat = np.sort(self.random_state.choice(int(sizes.sum()), len(self.membership),
                                                replace=False))
        self.coordinates_ = flat
        starts = np.concatenate([[0], np.cumsum(sizes)[:-1]])
        owner = np.searchsorted(starts, flat, side="right") - 1
        self._layout = []
        for i, p in enumerate(params):
            rows = np.flatnonzero(owner == i)
            index = torch.as_tensor(flat[rows] - starts[i], device=p.device)
            self._layout.append((rows, index))
        self._initial = self._weights(params)

    def _gather(self, tensors):
        out = np.zeros(len(self.membership))
        for t, (rows, index) in zip(tensors, self._layout, strict=True):
            if len(rows):
                out[rows] = t.detach().reshape(-1)[index].double().cpu().numpy()
        return out

    def _weights(self, params):
        return self._gather(params)

    def _insert(self, params):
        """Add ``C`` along each IN canary drawn this step to the clipped sum; return the
        real records' clipped sum along every canary."""
        drawn = self.random_state.random(len(self.membership)) < self._sample_rate
        inserted = drawn & self.membership
        self.draws_ += inserted
        summed = [p.summed_grad for p in params]
        real = self._gather(summed)
        for s, (rows, index) in zip(summed, self._layout, strict=True):
            if len(rows):
                add = torch.as_tensor(inserted[rows] * self._clip, dtype=s.dtype,
                                      device=s.device)
                s.view(-1).index_add_(0, index, add)
        return real

    def _observe(self, params, real):
        released = self._gather([p.grad for p in params])
        self._sums["step"] += (released - real) / self._clip
        self._sums["update"] += released / self._clip
        self.n_steps_ += 1

    def scores(self):
        """Each canary's scores (a dict name -> ndarray), the weights read now."""
        if self._layout is None:
            raise RuntimeError("the canaries were never attached to a training")
        final = self._weights(self._params)
        return {"step": self._sums["step"].copy(), "update": self._sums["update"].copy(),
                "weights": (self._initial - final) / self._clip}


@contextmanager
def inserted_canaries(net, canaries):
    """Let ``net`` (a :class:`DPSGDClassifier`) insert ``canaries`` while inside."""
    net._gradient_canaries = canaries
    try:
        yield canaries
    finally:
        del net._gradient_canaries
