"""Seeded SYNTHETIC stand-ins with the shapes of Purchase100 and Texas100.

The real datasets are large downloads; these generators give data of the same shape
(binary features, 100 classes) in seconds, built so that the RelaxLoss paper's MLP
overfits them with a real train/test gap. They are synthetic: never a substitute for the
real data when a result is meant to speak about Purchase100 or Texas100.

The recipe, for ``n_features`` features and ``n_classes`` classes:

1. Feature popularity: every feature gets a base log-odds, ``logit(density)`` plus
   Gaussian spread, so a few features are common and most are rare.
2. Shared clusters: the classes are dealt into ``n_classes // 10`` groups; each group
   raises the log-odds of its own random subset of features. Classes of a group look
   alike, as neighbouring clusters of shoppers or procedures do.
3. Class prototypes: each class raises the log-odds of a further, smaller random subset
   of features. The class prototype is the vector of Bernoulli probabilities.
4. Records: a record of class ``c`` blends its prototype with that of a random class of
   the same group (weight uniform in ``[0, max_mix]``) and draws each feature as an
   independent Bernoulli variable, so records scatter around and between prototypes.
5. Labels: classes have Dirichlet-drawn (unequal) frequencies, and a fraction of the
   labels is replaced by a uniformly drawn class: records that only memorisation fits.
"""

import numbers
from typing import NamedTuple

import numpy as np
from scipy.special import expit, logit
from sklearn.utils import Bunch, check_random_state

__all__ = ["make_purchase_like", "make_texas_like"]

# rows sampled at a time: bounds the float64 temporaries to a few tens of MB
_CHUNK_ROWS = 512


class _Recipe(NamedTuple):
    title: str
    real: str  # name of the real dataset
    real_shape: str
    fetcher: str  # the function that loads the real dataset
    density: float  # base rate of a feature before group and class effects
    popularity_spread: float  # std of the features' base log-odds
    group_fraction: float  # share of features a group raises
    group_shift: float  # log-odds added by a group
    class_fraction: float  # share of features a class raises
    class_shift: float  # log-odds added by a class
    max_mix: float  # largest weight of the other class's prototype in a record
    label_noise: float  # share of labels replaced by a uniformly drawn class
    class_balance: float  # Dirichlet concentration of the class frequencies


_PURCHASE = _Recipe(
    title="purchase-like",
    real="Purchase100",
    real_shape="197,324 shopping histories x 600 binary features, 100 classes",
    fetcher="fetch_purchase100",
    density=0.06,
    popularity_spread=1.0,
    group_fraction=0.2,
    group_shift=1.5,
    class_fraction=0.12,
    class_shift=2.5,
    max_mix=0.3,
    label_noise=0.05,
    class_balance=10.0,
)

_TEXAS = _Recipe(
    title="texas-like",
    real="Texas100",
    real_shape="67,330 hospital records x 6,169 binary features, 100 classes",
    fetcher="fetch_texas100",
    density=0.003,
    popularity_spread=1.5,
    group_fraction=0.1,
    group_shift=2.0,
    class_fraction=0.04,
    class_shift=2.5,
    max_mix=0.3,
    label_noise=0.1,
    class_balance=3.0,
)


def _check_int(value, name, minimum, hint=""):
    if isinstance(value, bool) or not isinstance(value, numbers.Integral):
        raise ValueError(f"{name} must be an integer, got {value!r} ({type(value).__name__}).")
    if value < minimum:
        raise ValueError(f"{name} must be >= {minimum}{hint}, got {value}.")
    return int(value)


def _make_like(recipe, n_samples, n_features, n_classes, random_state, return_X_y):
    n_classes = _check_int(n_classes, "n_classes", 2)
    n_features = _check_int(n_features, "n_features", 1)
    n_samples = _check_int(
        n_samples, "n_samples", n_classes, f" (n_classes={n_classes}, one record per class)"
    )
    rng = check_random_state(random_state)

    base = logit(recipe.density) + recipe.popularity_spread * rng.standard_normal(n_features)
    n_groups = max(1, n_classes // 10)
    group_of_class = rng.permutation(np.arange(n_classes) % n_groups)
    group_effect = recipe.group_shift * (
        rng.random_sample((n_groups, n_features)) < recipe.group_fraction
    )
    class_effect = recipe.class_shift * (
        rng.random_sample((n_classes, n_features)) < recipe.class_fraction
    )
    prototypes = expit(base + group_effect[group_of_class] + class_effect)

    # one record of each class first, so that every class is present with its true label
    frequencies = rng.dirichlet(np.full(n_classes, recipe.class_balance))
    y_true = np.concatenate(
        [np.arange(n_classes), rng.choice(n_classes, n_samples - n_classes, p=frequencies)]
    )
    relabel = rng.random_sample(n_samples) < recipe.label_noise
    relabel[:n_classes] = False
    y = y_true.copy()
    y[relabel] = rng.randint(0, n_classes, relabel.sum())
    order = rng.permutation(n_samples)
    y_true, y = y_true[order], y[order]

    # the partner of a record: a class drawn uniformly from its class's group
    by_group = np.argsort(group_of_class, kind="stable")
    group_sizes = np.bincount(group_of_class, minlength=n_groups)
    group_starts = np.cumsum(group_sizes) - group_sizes
    groups = group_of_class[y_true]
    pick = np.floor(rng.random_sample(n_samples) * group_sizes[groups]).astype(np.int64)
    partner = by_group[group_starts[groups] + pick]
    mix = recipe.max_mix * rng.random_sample(n_samples)

    X = np.empty((n_samples, n_features), dtype=np.float32)
    for start in range(0, n_samples, _CHUNK_ROWS):
        rows = slice(start, start + _CHUNK_ROWS)
        w = mix[rows, None]
        p = (1.0 - w) * prototypes[y_true[rows]] + w * prototypes[partner[rows]]
        X[rows] = rng.random_sample(p.shape) < p

    y = y.astype(np.int64)
    if return_X_y:
        return X, y
    return Bunch(
        data=X,
        target=y,
        feature_names=np.array([f"x{i}" for i in range(n_features)], dtype=object),
        DESCR=_describe(recipe, n_samples, n_features, n_classes, X.mean()),
    )


def _describe(recipe, n_samples, n_features, n_classes, density):
    return (
        f"SYNTHETIC {recipe.title} data, generated by skmia: this is NOT the real "
        f"{recipe.real} dataset, and no result on it speaks about the real one.\n\n"
        f"{n_samples} records x {n_features} binary features, {n_classes} classes; "
        f"{density:.1%} of the feature values are ones. It imitates the shape of the real "
        f"{recipe.real} ({recipe.real_shape}): class prototypes of Bernoulli probabilities "
        f"built from feature popularity, {max(1, n_classes // 10)} groups of similar "
        f"classes and class-specific features; each record blends its class's prototype "
        f"with up to {recipe.max_mix:.0%} of a similar class's, and "
        f"{recipe.label_noise:.0%} of the labels are replaced by a uniformly drawn class. "
        f"The recipe is tuned so that the RelaxLoss paper's MLP overfits it with a "
        f"train/test gap like the real data's. Use it for quick experiments and tests; "
        f"skmia.datasets.{recipe.fetcher} loads the real data."
    )


def make_purchase_like(
    n_samples=20_000, *, n_features=600, n_classes=100, random_state=None, return_X_y=False
):
    """Generate SYNTHETIC data of Purchase100's shape: 600 binary features, 100 classes.

    This is not Purchase100: it is a seeded, random stand-in of the same shape, for quick
    experiments, tests and CPU benchmarks. Use :func:`fetch_purchase100` for the real
    shopping histories.

    The classes are prototypes of Bernoulli probabilities over the features (common and
    rare features, clusters of similar classes, class-specific features); records blend
    their class's prototype with a similar class's, and 5 % of the labels are replaced by
    a uniformly drawn class. About 16 % of the feature values are ones, and the class
    frequencies are mildly unequal. The paper's MLP learns the classes but fits the
    training records far better than unseen ones, as it does on the real data.

    Parameters
    ----------
    n_samples : int, default=20_000
        Number of records. At least ``n_classes``: the first record of each class keeps
        its true label, so every class is present.
    n_features : int, default=600
        Number of binary features.
    n_classes : int, default=100
        Number of classes, at least 2. The recipe is tuned for the defaults; other sizes
        give data of the same kind, with a different difficulty.
    random_state : int, RandomState instance or None, default=None
        Seed of the generator. Pass an int for the same data at every call.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``data`` (float32 array of 0.0 and 1.0, shape ``(n_samples, n_features)``),
        ``target`` (int64 in ``0..n_classes - 1``), ``feature_names`` and ``DESCR``,
        which says that the data is synthetic.
    (data, target) : tuple
        When ``return_X_y`` is True.

    Raises
    ------
    ValueError
        ``n_samples``, ``n_features`` or ``n_classes`` is not an integer, or too small.

    See Also
    --------
    make_texas_like : The same for Texas100's shape.
    fetch_purchase100 : The real Purchase100.

    Notes
    -----
    Real Purchase100 with this MLP: training accuracy about 100 %, test accuracy roughly
    80-85 %. Measured on this synthetic data with the defaults (``n_samples=20_000``,
    ``random_state=0``) split in half into 10,000 members and 10,000 non-members, the
    paper's MLP (``skmia.nn.MLP``; SGD lr 0.1, momentum 0.9, weight decay 1e-4, batch
    128, cross-entropy, 30 epochs, torch 2.14 on 2 CPU cores)::

        python benchmarks/synthetic_gap.py --dataset purchase-like --epochs 30

    reached training accuracy 100.0 % and test accuracy 84.1 % (a gap of 15.9 points);
    the mean cross-entropy was 0.0087 on members and 1.07 on non-members. Training
    accuracy passes 99 % after about 10 epochs. More records give a higher test
    accuracy; the recipe is tuned for the defaults.

    Examples
    --------
    >>> import numpy as np
    >>> from skmia.datasets import make_purchase_like
    >>> X, y = make_purchase_like(n_samples=500, random_state=0, return_X_y=True)
    >>> X.shape, X.dtype, y.dtype
    ((500, 600), dtype('float32'), dtype('int64'))
    >>> np.unique(X)
    array([0., 1.], dtype=float32)
    >>> len(np.unique(y))
    100
    >>> print(make_purchase_like(n_samples=100, random_state=0).DESCR.split(":")[0])
    SYNTHETIC purchase-like data, generated by skmia
    """
    return _make_like(_PURCHASE, n_samples, n_features, n_classes, random_state, return_X_y)


def make_texas_like(
    n_samples=10_000, *, n_features=6_169, n_classes=100, random_state=None, return_X_y=False
):
    """Generate SYNTHETIC data of Texas100's shape: 6,169 binary features, 100 classes.

    This is not Texas100: it is a seeded, random stand-in of the same shape, for quick
    experiments, tests and CPU benchmarks. Use :func:`fetch_texas100` for the real
    hospital records.

    The classes are prototypes of Bernoulli probabilities over the features (a few
    common features, many rare ones, clusters of similar classes, class-specific
    features); records blend their class's prototype with a similar class's, and 10 % of
    the labels are replaced by a uniformly drawn class. The data is sparse (about 1.6 %
    ones, some 100 per record) and the class frequencies are clearly unequal. The paper's
    MLP fits the training records perfectly and gets about half of the unseen ones right,
    as it does on the real data.

    Parameters
    ----------
    n_samples : int, default=10_000
        Number of records. At least ``n_classes``: the first record of each class keeps
        its true label, so every class is present. The default holds 247 MB of float32.
    n_features : int, default=6_169
        Number of binary features.
    n_classes : int, default=100
        Number of classes, at least 2. The recipe is tuned for the defaults; other sizes
        give data of the same kind, with a different difficulty.
    random_state : int, RandomState instance or None, default=None
        Seed of the generator. Pass an int for the same data at every call.
    return_X_y : bool, default=False
        Return ``(data, target)`` instead of a Bunch.

    Returns
    -------
    data : sklearn.utils.Bunch
        ``data`` (float32 array of 0.0 and 1.0, shape ``(n_samples, n_features)``),
        ``target`` (int64 in ``0..n_classes - 1``), ``feature_names`` and ``DESCR``,
        which says that the data is synthetic.
    (data, target) : tuple
        When ``return_X_y`` is True.

    Raises
    ------
    ValueError
        ``n_samples``, ``n_features`` or ``n_classes`` is not an integer, or too small.

    See Also
    --------
    make_purchase_like : The same for Purchase100's shape.
    fetch_texas100 : The real Texas100.

    Notes
    -----
    Real Texas100 with this MLP: training accuracy about 100 %, test accuracy about
    50 %. Measured on this synthetic data with the defaults (``n_samples=10_000``,
    ``random_state=0``) split in half into 5,000 members and 5,000 non-members, the
    paper's MLP (``skmia.nn.MLP``; SGD lr 0.1, momentum 0.9, weight decay 1e-4, batch
    128, cross-entropy, 30 epochs, torch 2.14 on 2 CPU cores)::

        python benchmarks/synthetic_gap.py --dataset texas-like --epochs 30

    reached training accuracy 100.0 % and test accuracy 51.4 % (a gap of 48.6 points);
    the mean cross-entropy was 0.0047 on members and 2.98 on non-members. Training
    accuracy passes 99 % after about 11 epochs. More records give a higher test
    accuracy; the recipe is tuned for the defaults.

    Examples
    --------
    >>> import numpy as np
    >>> from skmia.datasets import make_texas_like
    >>> data = make_texas_like(n_samples=200, random_state=0)
    >>> data.data.shape, data.target.shape
    ((200, 6169), (200,))
    >>> bool(data.data.mean() < 0.05)
    True
    >>> print(data.DESCR.split(":")[0])
    SYNTHETIC texas-like data, generated by skmia
    """
    return _make_like(_TEXAS, n_samples, n_features, n_classes, random_state, return_X_y)
