"""What the defenses that change their outputs at inference share (HAMP, MemGuard).

Such a defense trains an ordinary network, then releases, for each query, something
other than that network's output. Its ``module_`` is a :class:`ReleasedOutputs`: in
training mode it is the network (``module_.network``); in evaluation mode without
gradients, the mode in which skorch's ``predict_proba`` and the black-box queries of
:func:`skmia.attacks.compute_signals` read a module, it returns the *released* logits,
whose softmax is the released probability vector. A query that differentiates through
the module (``compute_signals(..., white_box=True)``) is a white-box adversary's, who
holds the weights and whom the released outputs (which have no gradient) do not
concern: it gets the raw network. The raw network stays reachable as
``module_.network`` (``raw_module_`` on the classifier).

The randomness of a released output is a function of the query: its seed is a hash of
the record's bytes and of the model's own seed (:func:`query_seeds`), so that a record
asked twice gets the same answer (an adversary cannot average the noise away by
repeating a query) and a saved and re-loaded model answers as the original did.
"""

import hashlib

import numpy as np
import torch

__all__ = ["ReleasedOutputs", "ReleasingClassifierMixin", "query_seeds", "query_generators"]


def query_seeds(X, seed):
    """One 64-bit seed per record: a keyed BLAKE2b hash of the record's float32 bytes.

    Parameters
    ----------
    X : torch.Tensor or ndarray of shape (n_samples, ...)
        The queries.
    seed : int
        The model's own seed (the key of the hash).

    Returns
    -------
    seeds : list of int
        ``seeds[i]`` depends only on ``X[i]`` and ``seed``.
    """
    if isinstance(X, torch.Tensor):
        X = X.detach().to("cpu", torch.float32).numpy()
    rows = np.ascontiguousarray(np.asarray(X, dtype=np.float32).reshape(len(X), -1))
    key = int(seed).to_bytes(8, "little", signed=True)
    return [int.from_bytes(hashlib.blake2b(row.tobytes(), digest_size=8, key=key).digest(),
                           "little") for row in rows]


def query_generators(X, seed):
    """A :class:`numpy.random.Generator` per record, seeded by :func:`query_seeds`."""
    return [np.random.default_rng(s) for s in query_seeds(X, seed)]


class ReleasingClassifierMixin:
    """``raw_module_`` and a ``predict`` from the raw network, for a defense whose
    ``module_`` is a :class:`ReleasedOutputs` that keeps every predicted label."""

    @property
    def raw_module_(self):
        """The trained network (``module_.network``): its logits are the raw outputs."""
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, "module_")
        return self.module_.network

    def predict(self, X):
        """The raw network's most probable class, which the released output keeps.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Records shaped as in ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
        """
        from sklearn.utils.validation import check_is_fitted

        check_is_fitted(self, ["label_encoder_", "module_"])
        X = torch.as_tensor(self._check_X(X, reset=False))
        network = self.raw_module_
        was_training = network.training
        network.eval()
        try:
            with torch.no_grad():
                labels = torch.cat([network(X[i:i + 1024].to(self.device)).argmax(1).cpu()
                                    for i in range(0, len(X), 1024)]) if len(X) else (
                    torch.zeros(0, dtype=torch.long))
        finally:
            network.train(was_training)
        return self.classes_[labels.numpy()]


class ReleasedOutputs(torch.nn.Module):
    """A trained network plus what the defense releases in its place at inference.

    In training mode (``module.train()``), and in evaluation mode with gradients
    enabled (a white-box query), the forward pass is the network's. In evaluation mode
    under ``torch.no_grad()`` (every black-box query) it is :meth:`release`: logits
    whose softmax is what the defense answers. Subclasses keep what :meth:`release`
    needs as buffers, so that it is saved and loaded with the weights.

    Parameters
    ----------
    network : torch.nn.Module
        The trained network, returning logits.
    seed : int
        Key of the per-query hash (:func:`query_seeds`).
    """

    def __init__(self, network, seed=0):
        super().__init__()
        self.network = network
        self.register_buffer("seed", torch.tensor(int(seed), dtype=torch.int64))

    def forward(self, X):
        if self.training or torch.is_grad_enabled():
            return self.network(X)
        with torch.no_grad():
            return self.release(X)

    def release(self, X):  # pragma: no cover - every subclass defines it
        """The released logits of the queries ``X`` (evaluation mode)."""
        return self.network(X)

    def query_generators(self, X):
        """One seeded generator per query row."""
        return query_generators(X, int(self.seed))


def as_logits(proba, floor=1e-30):
    """Logits whose softmax is ``proba`` (rows summing to 1), finite where it is 0."""
    return torch.log(proba.clamp_min(floor))
