"""label_only_signals: does a model keep its label on perturbed copies of a record.

numpy only: importing this module (or calling ``label_only_signals`` on a numpy
``predict``) does not import torch.
"""

import numbers

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["label_only_signals"]


def _perturb_tabular(X, binary, rng, p, noise_scale):
    """One perturbed copy of 2-D ``X``: bits flipped at rate p, Gaussian noise elsewhere."""
    out = X.copy()
    if binary.any():
        bits = X[:, binary]
        flip = rng.random_sample(bits.shape) < p
        out[:, binary] = np.where(flip, 1 - bits, bits)
    if (~binary).any():
        noise = rng.standard_normal((X.shape[0], int((~binary).sum())))
        out[:, ~binary] = X[:, ~binary] + (noise_scale * noise).astype(X.dtype, copy=False)
    return out


def _perturb_images(X, rng, max_shift):
    """One perturbed copy of ``(n, C, H, W)`` images: random horizontal flips and shifts.

    Each image is mirrored with probability 1/2, then translated by ``(dy, dx)`` drawn
    uniformly from ``[-max_shift, max_shift]`` each, the uncovered border filled with 0.
    """
    n, _, height, width = X.shape
    flip = rng.random_sample(n) < 0.5
    dy = rng.randint(-max_shift, max_shift + 1, n)
    dx = rng.randint(-max_shift, max_shift + 1, n)
    X = np.where(flip[:, None, None, None], X[..., ::-1], X)
    d = max_shift
    padded = np.pad(X, ((0, 0), (0, 0), (d, d), (d, d)))
    rows = np.arange(height)[None, :] + d - dy[:, None]  # (n, H)
    cols = np.arange(width)[None, :] + d - dx[:, None]  # (n, W)
    return padded[
        np.arange(n)[:, None, None, None],
        np.arange(X.shape[1])[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]


def label_only_signals(predict, X, y, *, n_queries=32, p=0.05, noise_scale=0.1, max_shift=2,
                       random_state=None):
    """Whether perturbed copies of each record are still classified correctly: labels only.

    For each of ``n_queries`` rounds, every record is perturbed once and the copies are
    classified with ``predict``; entry ``(i, q)`` is 1 when copy ``q`` of record ``i``
    gets the label ``y[i]``. Members of an overfit model tend to keep their label under
    perturbation more often than non-members. Only predicted labels are used, so any
    model works, down to one that only answers ``predict``.

    Perturbations:

    - 2-D ``X`` (tabular): each feature whose values in ``X`` are all 0 or 1 is flipped
      with probability ``p``; every other feature gets Gaussian noise of standard deviation
      ``noise_scale`` (in the units of ``X``: standardise first where scales differ).
    - 4-D ``X`` of shape ``(n, C, H, W)`` (images): a random horizontal flip (probability
      1/2) and a random translation by up to ``max_shift`` pixels in each direction,
      borders filled with 0.

    Parameters
    ----------
    predict : callable or estimator
        ``predict(X) -> labels``, or an object with such a ``predict`` method.
    X : array-like of shape (n_samples, n_features) or (n_samples, C, H, W)
        The records; kept in their float dtype (float32 stays float32).
    y : array-like of shape (n_samples,)
        The records' labels, as ``predict`` returns them.
    n_queries : int, default=32
        Number of perturbed copies per record (``predict`` is called once per copy round,
        on all records).
    p : float in [0, 1], default=0.05
        Flip probability of each binary feature (tabular).
    noise_scale : float, default=0.1
        Standard deviation of the Gaussian noise on non-binary features (tabular).
    max_shift : int, default=2
        Largest translation, in pixels (images).
    random_state : int, RandomState instance or None, default=None
        Seeds the perturbations.

    Returns
    -------
    correct : ndarray of uint8 of shape (n_samples, n_queries)
        1 where the perturbed copy is still classified as ``y``; the ``label_only_*``
        columns of :func:`~skmia.attacks.compute_signals`.

    See Also
    --------
    LabelOnlyAttack : the attack that reads these signals.

    References
    ----------
    .. [1] C. A. Choquette-Choo, F. Tramer, N. Carlini, N. Papernot. "Label-Only
       Membership Inference Attacks". ICML 2021. arXiv:2007.14321.

    Examples
    --------
    >>> import numpy as np
    >>> from skmia.attacks import label_only_signals
    >>> X = np.array([[0.0, 1.0, 3.0], [1.0, 1.0, -0.1]])   # two binary features, one real
    >>> predict = lambda X: (X[:, 2] > 0).astype(int)      # a model that only predicts
    >>> correct = label_only_signals(predict, X, [1, 1], n_queries=8, random_state=0)
    >>> correct.shape, correct.dtype.name
    ((2, 8), 'uint8')
    >>> correct.mean(axis=1).tolist()   # robust far from the boundary, not near it
    [1.0, 0.25]
    """
    if hasattr(predict, "predict"):
        predict = predict.predict
    if not callable(predict):
        raise TypeError(
            f"predict must be a callable X -> labels or an object with a predict method, got "
            f"{type(predict).__name__}."
        )
    if isinstance(n_queries, bool) or not isinstance(n_queries, numbers.Integral):
        raise TypeError(f"n_queries must be an int, got {n_queries!r}.")
    if n_queries < 1:
        raise ValueError(f"n_queries must be >= 1, got {n_queries}.")
    if not (isinstance(p, numbers.Real) and 0 <= p <= 1):
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}.")
    if not (isinstance(noise_scale, numbers.Real) and np.isfinite(noise_scale)
            and noise_scale >= 0):
        raise ValueError(f"noise_scale must be a finite number >= 0, got {noise_scale!r}.")
    if isinstance(max_shift, bool) or not isinstance(max_shift, numbers.Integral) or max_shift < 0:
        raise ValueError(f"max_shift must be an int >= 0, got {max_shift!r}.")
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must be numeric, got dtype {X.dtype}.")
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    if X.ndim not in (2, 4):
        raise ValueError(
            f"X must be 2-D (records x features) or 4-D images (n, C, H, W), got {X.ndim}-D "
            f"of shape {X.shape}."
        )
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values.")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(
            f"y must be 1-D with one label per record ({len(X)}), got shape {y.shape}."
        )
    rng = check_random_state(random_state)
    binary = np.all((X == 0) | (X == 1), axis=0) if X.ndim == 2 else None
    correct = np.empty((len(X), n_queries), dtype=np.uint8)
    for q in range(n_queries):
        if X.ndim == 2:
            copy = _perturb_tabular(X, binary, rng, p, noise_scale)
        else:
            copy = _perturb_images(X, rng, max_shift)
        labels = np.asarray(predict(copy))
        if labels.shape != y.shape:
            raise ValueError(
                f"predict returned labels of shape {labels.shape} for {len(X)} records; "
                "it must return one label per record."
            )
        correct[:, q] = labels == y
    return correct
