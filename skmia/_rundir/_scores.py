"""``attack/scores.npz``: the scores behind a results table's figures.

A writer that draws no figures (the model audit of :func:`skmia.audit.audit_model`) keeps
the scores instead, and the report draws ``roc.png`` and ``loss_hist.png`` from them, so
that data flows one way (audit -> report).
"""

import io

import numpy as np

__all__ = ["read_scores", "scores_npz"]


def scores_npz(scores, membership, loss):
    """The bytes of ``scores.npz`` for ``scores`` (attack name -> one score per record),
    ``membership`` (1 for members) and the target's per-record ``loss``."""
    membership = np.asarray(membership).astype(np.int8)
    names = list(scores)
    matrix = np.stack([np.asarray(scores[name], dtype=np.float64) for name in names]) \
        if names else np.empty((0, len(membership)))
    buffer = io.BytesIO()
    np.savez(buffer, names=np.asarray(names, dtype=str), scores=matrix,
             membership=membership, loss=np.asarray(loss, dtype=np.float64))
    return buffer.getvalue()


def read_scores(data):
    """``(scores, membership, loss)`` read back from the bytes of ``scores.npz``.

    Raises
    ------
    ValueError
        When the bytes are not such a file (missing arrays, objects, mismatched shapes).
    """
    try:
        with np.load(io.BytesIO(data), allow_pickle=False) as npz:
            names, matrix = npz["names"], npz["scores"]
            membership, loss = npz["membership"], npz["loss"]
    except (OSError, KeyError, ValueError, EOFError) as exc:
        raise ValueError(f"scores.npz is not a scores file: {exc}") from None
    n = len(membership)
    if (names.ndim != 1 or matrix.shape != (len(names), n) or loss.shape != (n,)
            or membership.ndim != 1 or not np.isin(membership, (0, 1)).all()):
        raise ValueError("scores.npz is not a scores file: its arrays do not match "
                         f"(names {names.shape}, scores {matrix.shape}, membership "
                         f"{membership.shape}, loss {loss.shape})")
    return dict(zip(names.tolist(), matrix, strict=True)), membership.astype(int), loss
