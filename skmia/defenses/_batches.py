"""The mini-batch iterators of the defenses, in one place: slices of in-memory arrays
(every defense), AdvReg's rounds of classifier batches and DP-SGD's Poisson batches.
Each draws its order from torch's global generator, which the training seeds."""

import math

import numpy as np
import torch

__all__ = []


class _ArrayBatches:
    """Batches ``(X[idx], y[idx])`` of in-memory arrays, optionally in shuffled order."""

    def __init__(self, X, y, batch_size, shuffle):
        self.X = _as_tensor(X)
        self.y = None if y is None else _as_tensor(y)
        self.batch_size = int(batch_size)
        self.shuffle = shuffle

    def __len__(self):
        return math.ceil(len(self.X) / self.batch_size)

    def __iter__(self):
        n = len(self.X)
        order = torch.randperm(n) if self.shuffle else None
        for start in range(0, n, self.batch_size):
            if order is None:
                rows = slice(start, start + self.batch_size)
            else:
                rows = order[start : start + self.batch_size]
            yield self.X[rows], (None if self.y is None else self.y[rows])


def _as_tensor(array):
    """``torch.as_tensor``, copying a read-only array (joblib hands its workers large
    arrays as read-only memory maps, which torch would otherwise warn about)."""
    if isinstance(array, np.ndarray) and not array.flags.writeable:
        array = array.copy()
    return torch.as_tensor(array)


class _ClassifierBatches:
    """The classifier's batches of one epoch, in the reference's schedule.

    Warm-up epochs, or ``classifier_batches=None``: one pass over a shuffle of the rows.
    Otherwise ``n_batches // classifier_batches`` rounds, each taking the first
    ``classifier_batches`` batches of a fresh shuffle (the reference restarts its loader
    each round).
    """

    def __init__(self, net, X, y, batch_size):
        self.net = net
        self.X = torch.as_tensor(X)
        self.y = torch.as_tensor(y)
        self.batch_size = batch_size

    def _n_batches(self):
        return math.ceil(len(self.X) / self.batch_size)

    def __len__(self):
        per_round = self.net.classifier_batches
        if self.net._in_warmup() or per_round is None:
            return self._n_batches()
        return max(1, self._n_batches() // per_round) * min(per_round, self._n_batches())

    def __iter__(self):
        n, size = len(self.X), self.batch_size
        per_round = self.net.classifier_batches
        if self.net._in_warmup() or per_round is None:
            rounds, per_round = 1, self._n_batches()
        else:
            rounds = max(1, self._n_batches() // per_round)
        for _ in range(rounds):
            order = torch.randperm(n)
            for start in range(0, min(per_round * size, n), size):
                rows = order[start : start + size]
                yield self.X[rows], self.y[rows]


class _PoissonBatches:
    """``n_steps`` batches per pass, each row included independently with ``sample_rate``.

    Drawn with torch's global generator (seeded by ``random_state``); a batch may be
    empty, and is then still a step of the mechanism (noise only).
    """

    def __init__(self, X, y, sample_rate, n_steps):
        self.X = torch.as_tensor(X)
        self.y = torch.as_tensor(y)
        self.sample_rate = sample_rate
        self.n_steps = n_steps

    def __len__(self):
        return self.n_steps

    def __iter__(self):
        n = len(self.X)
        for _ in range(self.n_steps):
            rows = torch.nonzero(torch.rand(n) < self.sample_rate).squeeze(1)
            yield self.X[rows], self.y[rows]
