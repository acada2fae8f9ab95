"""The target/shadow membership protocol of the RelaxLoss reference code."""

import numbers

import numpy as np
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_consistent_length

from .. import _registry
from .._sklearn_compat import _safe_indexing

__all__ = ["AuditPool", "MembershipPart", "MembershipSplit", "membership_split", "load_split",
           "PROTOCOLS"]

#: The protocols :func:`membership_split` knows.
PROTOCOLS = _registry.PROTOCOLS

_PART_NAMES = ("target_train", "target_test", "shadow_train", "shadow_test", "reference")


class MembershipPart:
    """Rows of one part of a membership split: unpacks as ``X, y``.

    Attributes
    ----------
    X : array-like
        The part's rows of the ``X`` given to :func:`membership_split`.
    y : array-like
        The matching labels.
    indices : ndarray of int64
        Positions of these rows in the original ``X``.
    """

    def __init__(self, X, y, indices):
        self.X = X
        self.y = y
        self.indices = indices

    def __iter__(self):
        return iter((self.X, self.y))

    def __len__(self):
        return len(self.indices)

    def __repr__(self):
        return f"MembershipPart(n_rows={len(self)})"


class MembershipSplit:
    """The five disjoint parts of a membership-inference experiment.

    Attributes
    ----------
    target_train, target_test, shadow_train, shadow_test, reference : MembershipPart
        Members and non-members of the target model, members and non-members of the
        shadow model, and a reference pool of further non-members (AdvReg's inference
        set, reference-model attacks).
    protocol : str
        The protocol that made the split.
    random_state : int, RandomState instance or None
        The seed it used.
    """

    def __init__(self, parts, protocol, random_state):
        for name in _PART_NAMES:
            setattr(self, name, parts[name])
        self.protocol = protocol
        self.random_state = random_state

    @property
    def parts(self):
        """dict: part name -> :class:`MembershipPart`, in the order of the reference code."""
        return {name: getattr(self, name) for name in _PART_NAMES}

    def sizes(self):
        """Return a dict: part name -> number of rows."""
        return {name: len(part) for name, part in self.parts.items()}

    def __repr__(self):
        sizes = ", ".join(f"{name}={n}" for name, n in self.sizes().items())
        return f"MembershipSplit(protocol={self.protocol!r}, {sizes})"

    def audit_pool(self):
        """The audited records: the target's members, then its non-members.

        They are also the pool of a bank of reference models trained for the target
        (every audited record IN half of the models), so ``pool_index`` is simply
        their position in it.

        Returns
        -------
        pool : AuditPool
            Unpacks as ``X, y, membership, pool_index``.
        """
        members, non_members = self.target_train, self.target_test
        X = np.concatenate([np.asarray(members.X), np.asarray(non_members.X)])
        y = np.concatenate([np.asarray(members.y), np.asarray(non_members.y)])
        membership = np.r_[np.ones(len(members), dtype=np.int64),
                           np.zeros(len(non_members), dtype=np.int64)]
        indices = np.concatenate([members.indices, non_members.indices])
        return AuditPool(X, y, membership, indices)


class AuditPool:
    """The audited records of a split: members then non-members (see
    :meth:`MembershipSplit.audit_pool`); unpacks as ``X, y, membership, pool_index``.

    Attributes
    ----------
    X, y : ndarray
        The records and their labels.
    membership : ndarray of int64
        1 for the target's members, 0 for its non-members.
    indices : ndarray of int64
        Positions of the records in the original ``X``.
    pool_index : ndarray of int64
        Positions of the records in the pool (``0 .. n - 1``).
    """

    def __init__(self, X, y, membership, indices):
        self.X, self.y, self.membership, self.indices = X, y, membership, indices
        self.pool_index = np.arange(len(y), dtype=np.int64)

    def __iter__(self):
        return iter((self.X, self.y, self.membership, self.pool_index))

    def __len__(self):
        return len(self.y)


def _relaxloss_indices(n, rng):
    # The reference code's arithmetic, float rounding included: int((0.4 + 0.2) * n).
    train_ratio, reference_ratio = 0.4, 0.2
    n_pool = int(train_ratio * n)
    test_start = int((train_ratio + reference_ratio) * n)
    order = np.arange(n_pool)
    rng.shuffle(order)
    shadow_train, target_train = order[: n_pool // 2], order[n_pool // 2 :]
    # a second shuffle of the same length, over the start of the test pool
    order = np.arange(n_pool)
    rng.shuffle(order)
    shadow_test, target_test = order[: n_pool // 2], order[n_pool // 2 :]
    return {
        "target_train": target_train,
        "target_test": test_start + target_test,
        "shadow_train": shadow_train,
        "shadow_test": test_start + shadow_test,
        "reference": np.arange(n_pool, test_start),
    }


def _cifar_indices(n, rng):
    order = np.arange(n)
    rng.shuffle(order)
    size = n // len(_PART_NAMES)
    return {name: order[i * size : (i + 1) * size] for i, name in enumerate(_PART_NAMES)}


def membership_split(X, y, *, protocol="relaxloss", random_state=1000):
    """Split a dataset into target/shadow members and non-members, as the reference does.

    ``protocol="relaxloss"`` is the reference code's split for Texas100 and Purchase100:
    the first 40 % of the rows form the training pool, the next 20 % the reference pool,
    the remaining 40 % the test pool. With ``numpy.random.seed(random_state)`` semantics
    (a ``RandomState`` seeded with ``random_state``; the global generator is left alone),
    one shuffle of the training pool's positions gives ``shadow_train`` (first half) and
    ``target_train`` (the rest); a second shuffle of the same length over the start of
    the test pool gives ``shadow_test`` and ``target_test``. On the rows of
    :func:`skmia.datasets.fetch_purchase100` or :func:`~skmia.datasets.fetch_texas100`
    each seed gives the reference code's exact rows.

    ``protocol="cifar"`` is the reference code's CIFAR split: one seeded shuffle of all
    row positions, then five consecutive folds of ``n // 5`` rows: ``target_train``,
    ``target_test``, ``shadow_train``, ``shadow_test``, ``reference``.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
        Records: an array (2-D tables, 4-D images), a DataFrame or anything scikit-learn
        can index by rows.
    y : array-like of shape (n_samples,)
        Labels.
    protocol : {"relaxloss", "cifar"}, default="relaxloss"
        Which reference protocol to follow.
    random_state : int, RandomState instance or None, default=1000
        Seed of the shuffles; 1000 is the reference code's default.

    Returns
    -------
    split : MembershipSplit
        Parts ``target_train``, ``target_test``, ``shadow_train``, ``shadow_test`` and
        ``reference``; each unpacks as ``X_part, y_part`` and has ``indices``.

    Notes
    -----
    The parts are pairwise disjoint. Members and non-members of a model have the same
    size up to one row: with ``n_pool = int(0.4 * n)``, the shadow parts have
    ``n_pool // 2`` rows and the target parts the rest (Purchase100: 39,465 target and
    39,464 shadow rows of each kind; Texas100: 13,466 each). The reference code lists
    Texas100's target rows in ascending position; the rows are the same, the order here
    is that of its Purchase100 code.

    References
    ----------
    .. [1] D. Chen, N. Yu, M. Fritz. "RelaxLoss: Defending Membership Inference Attacks
       without Losing Utility". ICLR 2022. arXiv:2207.05801.

    Examples
    --------
    >>> import numpy as np
    >>> from skmia.model_selection import membership_split
    >>> X, y = np.arange(200).reshape(100, 2), np.arange(100) % 3
    >>> split = membership_split(X, y)
    >>> split.sizes()
    {'target_train': 20, 'target_test': 20, 'shadow_train': 20, 'shadow_test': 20, \
'reference': 20}
    >>> X_members, y_members = split.target_train
    >>> X_members.shape
    (20, 2)
    """
    if protocol not in PROTOCOLS:
        raise ValueError(f"protocol must be one of {PROTOCOLS}, got {protocol!r}.")
    if not (
        random_state is None
        or isinstance(random_state, np.random.RandomState)
        or (isinstance(random_state, numbers.Integral) and not isinstance(random_state, bool))
    ):
        raise TypeError(
            f"random_state must be an int, a numpy RandomState or None, got {random_state!r}."
        )
    if not hasattr(X, "__len__") or not hasattr(y, "__len__"):
        raise TypeError("X and y must be array-likes with one row per record.")
    y_arr = np.asarray(y)
    if y_arr.ndim != 1:
        raise ValueError(f"y must be 1-D with one label per record, got shape {y_arr.shape}.")
    try:
        check_consistent_length(X, y)
    except ValueError as exc:
        raise ValueError(
            f"X and y must have the same number of rows, got {len(X)} and {len(y_arr)}."
        ) from exc
    n = len(y_arr)
    rng = check_random_state(random_state)
    if protocol == "relaxloss":
        indices = _relaxloss_indices(n, rng)
    else:
        indices = _cifar_indices(n, rng)
    empty = [name for name, idx in indices.items() if len(idx) == 0]
    if empty:
        minimum = 5
        raise ValueError(
            f"{n} rows are too few for the {protocol!r} protocol: {', '.join(empty)} would be "
            f"empty (at least {minimum} rows are needed)."
        )
    parts = {
        name: MembershipPart(
            _safe_indexing(X, idx), _safe_indexing(y, idx), idx.astype(np.int64, copy=False)
        )
        for name, idx in indices.items()
    }
    return MembershipSplit(parts, protocol, random_state)


_DATA_CACHE = {}


def load_split(dataset, seed, data_home=None):
    """The membership split of a named dataset for ``seed``, with the dataset's protocol.

    Synthetic sets are drawn with skmia's fixed data seed; real ones are read from
    ``data_home``. The last dataset loaded stays in memory for the next call.
    """
    from ..datasets import load_dataset

    record = _registry.DATASETS.get(dataset.lower())  # load_dataset takes any case
    synthetic = record is not None and record.synthetic
    key = (dataset, None if synthetic else str(data_home))
    if key not in _DATA_CACHE:
        if synthetic:
            kwargs = {"random_state": _registry.SYNTHETIC_DATA_SEED}
        else:
            kwargs = {"data_home": data_home}
        _DATA_CACHE.clear()  # keep one dataset in memory at a time
        _DATA_CACHE[key] = load_dataset(dataset, return_X_y=True, **kwargs)
    X, y = _DATA_CACHE[key]
    return membership_split(X, y, protocol=record.protocol, random_state=seed)
