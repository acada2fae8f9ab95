"""Augmented queries: the views of a record that LiRA's authors query a model on.

numpy only: importing this module does not import torch.
"""

import numpy as np

__all__ = ["AUGMENTS", "augmented_views"]

#: The pixel shift of ``"flip_shift"``'s translated views (CIFAR's training shifts).
SHIFT = 2

#: The sets of views ``augment=`` names, with what they hold (view 0 is the record).
AUGMENTS = {
    "flip": "2 views: the image and its mirror (left-right)",
    "flip_shift": (
        f"18 views: the image and its mirror, each translated by (dy, dx) in "
        f"{{-{SHIFT}, 0, {SHIFT}}}^2, borders filled by reflection"
    ),
}


def _shifted(X, dy, dx):
    """``(n, C, H, W)`` images translated by ``(dy, dx)`` pixels, borders reflected."""
    if dy == 0 and dx == 0:
        return X
    s = SHIFT
    padded = np.pad(X, ((0, 0), (0, 0), (s, s), (s, s)), mode="reflect")
    height, width = X.shape[2], X.shape[3]
    return padded[:, :, s - dy : s - dy + height, s - dx : s - dx + width]


def augmented_views(X, augment):
    """The views of each record that an augmented query submits, view 0 the record itself.

    Parameters
    ----------
    X : array-like of shape (n_samples, C, H, W)
        Images (4-D: channels first, as skmia's convolutional networks take them).
    augment : {"flip", "flip_shift"} or None
        The set of views (see :data:`AUGMENTS`): ``"flip"``, the image and its mirror;
        ``"flip_shift"``, 18 views, the image and its mirror each translated by
        ``(dy, dx)`` in ``{-2, 0, 2}²`` (borders filled by reflection). None: the
        record alone.

    Returns
    -------
    views : list of ndarray
        ``A`` arrays of the shape and dtype of ``X``; ``views[0]`` is ``X`` itself.

    Raises
    ------
    ValueError
        For an unknown ``augment``, or for records that are not images: there is no
        mirror or shift of a row of a table (tabular data takes ``augment=None``).

    Notes
    -----
    LiRA queries each record under the augmentations the model was trained with and
    averages the per-view Gaussian log-likelihood ratios: the model's confidence on
    the mirror and on small shifts of a training image is also raised by training, so
    each view is another look at the same membership [1]_.

    References
    ----------
    .. [1] N. Carlini, S. Chien, M. Nasr, S. Song, A. Terzis, F. Tramer. "Membership
       Inference Attacks From First Principles". IEEE S&P 2022. arXiv:2112.03570.

    Examples
    --------
    >>> import numpy as np
    >>> from skmia.attacks import augmented_views
    >>> X = np.arange(2 * 1 * 3 * 3, dtype=np.float32).reshape(2, 1, 3, 3)
    >>> views = augmented_views(X, "flip")
    >>> len(views), views[0] is X
    (2, True)
    >>> views[1][0, 0].tolist()
    [[2.0, 1.0, 0.0], [5.0, 4.0, 3.0], [8.0, 7.0, 6.0]]
    >>> len(augmented_views(np.zeros((2, 3, 8, 8)), "flip_shift"))
    18
    """
    if augment is None:
        return [X]
    if not isinstance(augment, str) or augment not in AUGMENTS:
        raise ValueError(
            f"augment must be None or one of {', '.join(map(repr, AUGMENTS))}, got "
            f"{augment!r}."
        )
    X = np.asarray(X)
    if X.ndim != 4:
        raise ValueError(
            f"augment={augment!r} mirrors and shifts images of shape (n, C, H, W), but X has "
            f"shape {X.shape}: tabular records have no such views; use augment=None."
        )
    mirror = X[..., ::-1]
    if augment == "flip":
        return [X, mirror]
    if min(X.shape[2:]) <= SHIFT:
        raise ValueError(
            f"augment='flip_shift' shifts by {SHIFT} pixels: images must be larger than "
            f"{SHIFT} x {SHIFT}, got {X.shape[2]} x {X.shape[3]}."
        )
    offsets = [(dy, dx) for dy in (0, -SHIFT, SHIFT) for dx in (0, -SHIFT, SHIFT)]
    return [_shifted(image, dy, dx) for image in (X, mirror) for dy, dx in offsets]
