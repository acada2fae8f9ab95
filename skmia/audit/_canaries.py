"""Canaries: records that are easy to memorise, put into a training pool to be audited.

Aerni, Zhang & Tramèr (arXiv:2404.17399) audit a defense on the records it must protect
most: a few hundred mislabeled, duplicated or out-of-distribution records inserted into
the pool. :func:`make_canaries` makes them.
"""

from dataclasses import dataclass
from numbers import Integral

import numpy as np
from sklearn.utils import check_random_state

from .. import _registry
from .._sklearn_compat import Interval, StrOptions, validate_params
from .._validation import check_records

__all__ = ["CANARY_KINDS", "Canaries", "make_canaries"]

#: The kinds of canaries :func:`make_canaries` makes, and what each is (written in
#: :mod:`skmia._registry`).
CANARY_KINDS = _registry.CANARY_KINDS


@dataclass(eq=False)
class Canaries:
    """A pool with canaries inserted: what :func:`make_canaries` returns.

    Attributes
    ----------
    X : ndarray of shape (n_samples, ...)
        The pool: the records given, with the canary rows replaced by the canaries.
    y : ndarray of shape (n_samples,)
        Their labels (the canaries' labels for the canary rows).
    canary_index : ndarray of int64 of shape (n_canaries,)
        The rows of ``X`` that are canaries, sorted.
    kind : str
        One of :data:`CANARY_KINDS`.
    n_copies : int
        How many times a model that trains on a canary sees it (``duplicate_mislabel``:
        the copies are made when a model trains and are IN or OUT together; 1 otherwise).
    original_y : ndarray of shape (n_canaries,)
        The labels the canary rows had before.
    X_poison, y_poison : ndarray
        ``n_poisons`` random records with random labels that every audited model trains
        on and that are never audited (empty when ``n_poisons=0``).
    """

    X: np.ndarray
    y: np.ndarray
    canary_index: np.ndarray
    kind: str
    n_copies: int
    original_y: np.ndarray
    X_poison: np.ndarray
    y_poison: np.ndarray

    @property
    def is_canary(self):
        """Boolean mask over the rows of ``X``: True for canaries."""
        mask = np.zeros(len(self.y), dtype=bool)
        mask[self.canary_index] = True
        return mask

    def __repr__(self):
        return (f"Canaries(kind={self.kind!r}, n_canaries={len(self.canary_index)}, "
                f"n_samples={len(self.y)}, n_copies={self.n_copies}, "
                f"n_poisons={len(self.y_poison)})")


def _random_records(X, n, rng, *, image):
    """``n`` out-of-distribution records: uniform noise over X's range for images;
    otherwise each feature drawn independently from its column of ``X`` (binary stays
    binary)."""
    if image:
        low, high = float(np.min(X)), float(np.max(X))
        return rng.uniform(low, high, size=(n, *X.shape[1:])).astype(X.dtype)
    rows = rng.integers(0, len(X), size=(n, X.shape[1]))
    return np.take_along_axis(X, rows, axis=0).astype(X.dtype)


def _blank_images(X, n, rng):
    """``n`` constant images, one random value per channel (axis 1) within X's range."""
    low, high = float(np.min(X)), float(np.max(X))
    colour = rng.uniform(low, high, size=(n, X.shape[1]) + (1,) * (X.ndim - 2))
    return np.broadcast_to(colour, (n, *X.shape[1:])).astype(X.dtype)


def _other_labels(y, classes, rng):
    """For each label, a uniformly random class other than it."""
    position = np.searchsorted(classes, y)
    shift = rng.integers(1, len(classes), size=len(y))
    return classes[(position + shift) % len(classes)]


@validate_params(
    {
        "X": ["array-like"],
        "y": ["array-like"],
        "n_canaries": [Interval(Integral, 1, None, closed="left")],
        "kind": [StrOptions(set(CANARY_KINDS))],
        "n_copies": [Interval(Integral, 2, None, closed="left")],
        "n_poisons": [Interval(Integral, 0, None, closed="left")],
        "random_state": ["random_state"],
    },
    prefer_skip_nested_validation=True,
)
def make_canaries(X, y, n_canaries, *, kind="mislabel", n_copies=4, n_poisons=0,
                  random_state=None):
    """Insert canaries into a pool: records that a model memorises if it can.

    ``n_canaries`` rows of ``(X, y)``, drawn uniformly, are replaced by canaries:

    - ``"mislabel"``: the record with its label replaced by a random other class (the
      paper's default);
    - ``"duplicate_mislabel"``: a mislabeled record that a model trains on ``n_copies``
      times; the copies are IN or OUT together (for defenses that train sub-models, such
      as SELENA);
    - ``"random"``: a synthetic out-of-distribution record with a random label — for a
      table, each feature drawn from its column of ``X`` (binary features stay binary);
      for images, uniform noise over ``X``'s range;
    - ``"blank"`` (images only): a constant image (one random value per channel) with a
      random label (the paper's DP-SGD canary).

    Parameters
    ----------
    X : array-like of shape (n_samples, n_features) or (n_samples, channels, ...)
        The pool: a table, or a batch of images (channels on axis 1).
    y : array-like of shape (n_samples,)
        Its labels; at least two classes.
    n_canaries : int
        How many rows become canaries; fewer than ``n_samples``.
    kind : {"mislabel", "duplicate_mislabel", "random", "blank"}, default="mislabel"
        What a canary is.
    n_copies : int, default=4
        ``duplicate_mislabel``: times a model trains on each canary it trains on.
    n_poisons : int, default=0
        Extra random records with random labels that every audited model trains on and
        that are never audited (the paper's adaptive evaluation of RelaxLoss: they keep
        the training loss high so that the loss target does not spare the canaries).
    random_state : int, RandomState instance or None, default=None
        Draws the canary rows, their labels and features, and the poisons.

    Returns
    -------
    canaries : Canaries
        ``X``, ``y`` (the pool with canaries), ``canary_index``, ``kind``, ``n_copies``,
        ``original_y``, ``X_poison``, ``y_poison``.

    Raises
    ------
    ValueError
        When ``n_canaries`` is not below the number of rows, ``y`` has one class only,
        or ``kind="blank"`` is asked of a table.

    References
    ----------
    .. [1] M. Aerni, J. Zhang, F. Tramèr. "Evaluations of Machine Learning Privacy
       Defenses are Misleading". ACM CCS 2024. arXiv:2404.17399.

    Examples
    --------
    >>> import numpy as np
    >>> from skmia.audit import make_canaries
    >>> X = np.random.default_rng(0).integers(0, 2, (100, 8)).astype(np.float32)
    >>> y = np.arange(100) % 3
    >>> canaries = make_canaries(X, y, 10, random_state=0)
    >>> len(canaries.canary_index), bool(np.all(canaries.y[canaries.canary_index]
    ...                                         != canaries.original_y))
    (10, True)
    """
    X, y = check_records(X, y)
    classes = np.unique(y)
    if len(classes) < 2:
        raise ValueError(
            f"y has one class only ({classes.tolist()}): a canary's label must differ from "
            "its record's or be random among at least two classes."
        )
    if n_canaries >= len(y):
        raise ValueError(
            f"n_canaries={n_canaries} must be below the number of records ({len(y)}): "
            "the pool needs records that are not canaries."
        )
    image = X.ndim > 2
    if kind == "blank" and not image:
        raise ValueError(
            "kind='blank' makes constant images; X is a table (2-D). Use 'mislabel', "
            "'duplicate_mislabel' or 'random' for tabular data."
        )
    rng = np.random.default_rng(check_random_state(random_state).randint(2**31 - 1))
    index = np.sort(rng.choice(len(y), size=n_canaries, replace=False))
    X_new, y_new = X.copy(), y.copy()
    if kind in ("mislabel", "duplicate_mislabel"):
        y_new[index] = _other_labels(y[index], classes, rng)
    else:
        maker = _blank_images if kind == "blank" else (
            lambda X_, n_, rng_: _random_records(X_, n_, rng_, image=image))
        X_new[index] = maker(X, n_canaries, rng)
        y_new[index] = classes[rng.integers(0, len(classes), size=n_canaries)]
    X_poison = _random_records(X, n_poisons, rng, image=image)
    y_poison = classes[rng.integers(0, len(classes), size=n_poisons)]
    return Canaries(
        X=X_new, y=y_new, canary_index=index.astype(np.int64), kind=kind,
        n_copies=n_copies if kind == "duplicate_mislabel" else 1,
        original_y=y[index].copy(), X_poison=X_poison, y_poison=y_poison,
    )
