"""What a bank of reference models draws, and how a saved bank is recognised.

One place holds the facts that every bank follows, whoever trains it
(:class:`~skmia.model_selection.ReferenceModels`, the rounds of
:func:`skmia.audit.audit_defense`, a run's saved bank): the mask block, the balanced
masks, each model's seed, the pool's digest and whether a model finished its epochs.
A bank's masks and seeds depend on its base seed and on each model's index alone
(Carlini et al., arXiv:2112.03570: every record IN exactly ``keep`` of the models), so
a bank grown in parts, a round of an audit and a bank read back from disk can each be
checked against what its seed gives.
"""

import hashlib
from fractions import Fraction

import numpy as np
from sklearn.utils import check_random_state

__all__ = ["balanced_masks", "bank_draws", "base_seed", "check_bank_draws", "mask_block",
           "model_seeds", "pool_digest", "unfinished_models"]

# the mask of block j is drawn from the stream (base seed, _MASK_STREAM, j); the seed of
# model k from (base seed, _MODEL_STREAM, k): neither depends on how many models there are
_MASK_STREAM, _MODEL_STREAM = 0, 1


def mask_block(keep):
    """The fewest models in which every record can be IN exactly ``keep`` of the time.

    Parameters
    ----------
    keep : float
        Fraction of the models each record is in.

    Returns
    -------
    block : int
        The denominator of ``keep`` (2 for one half); a bank grows in whole blocks.
    """
    return Fraction(keep).limit_denominator(10_000).denominator


def base_seed(random_state):
    """The base seed a bank draws from ``random_state``.

    Every mask and model seed of the bank derives from it.

    Parameters
    ----------
    random_state : int, RandomState instance or None

    Returns
    -------
    seed : int
        In ``[0, 2**31 - 1)``.
    """
    return int(check_random_state(random_state).randint(2**31 - 1))


def balanced_masks(n_samples, n_estimators, keep, seed, *, start=0):
    """Training masks of models ``start`` to ``n_estimators - 1`` of a bank.

    Models are drawn in blocks of ``q`` (the denominator of ``keep``, 2 for one half):
    within a block, each record's ``keep * q`` IN models are a uniformly random subset,
    drawn as Carlini et al.'s code draws them (the ranks of uniform draws, one column per
    record). Every record is therefore in exactly ``keep * n_estimators`` models, and the
    masks of the first models do not depend on how many follow, so a bank grown with
    ``warm_start`` equals one fitted at its final size.

    Parameters
    ----------
    n_samples, n_estimators : int
        Pool size and bank size; ``n_estimators`` and ``start`` multiples of ``q``.
    keep : float
        Fraction of the models each record is in.
    seed : int
        The bank's base seed.
    start : int, default=0
        The first model to draw (models before it exist already).

    Returns
    -------
    masks : ndarray of bool of shape (n_samples, n_estimators - start)
    """
    q = mask_block(keep)
    n_in = round(keep * q)
    blocks = []
    for block in range(start // q, n_estimators // q):
        rng = np.random.default_rng([seed, _MASK_STREAM, block])
        ranks = rng.random((q, n_samples)).argsort(axis=0).argsort(axis=0)
        blocks.append((ranks < n_in).T)
    return np.concatenate(blocks, axis=1) if blocks else np.zeros((n_samples, 0), bool)


def model_seeds(seed, stop, *, start=0):
    """The ``random_state`` of models ``start`` to ``stop - 1`` of a bank.

    Each derives from the bank's base seed ``seed`` and its index alone.

    Returns
    -------
    seeds : ndarray of int64 of shape (stop - start,)
    """
    return np.asarray(
        [int(np.random.SeedSequence([seed, _MODEL_STREAM, k]).generate_state(1)[0] >> 1)
         for k in range(start, stop)], dtype=np.int64)


def bank_draws(n_samples, n_estimators, keep, seed, *, start=0):
    """The masks and model seeds of models ``start`` to ``n_estimators - 1`` of a bank.

    Parameters
    ----------
    n_samples, n_estimators, keep, seed, start
        As :func:`balanced_masks`.

    Returns
    -------
    masks : ndarray of bool of shape (n_samples, n_estimators - start)
    seeds : ndarray of int64 of shape (n_estimators - start,)
    """
    return (balanced_masks(n_samples, n_estimators, keep, seed, start=start),
            model_seeds(seed, n_estimators, start=start))


def pool_digest(X, y):
    """SHA-256 (hex) of a pool: dtypes, shapes and bytes of ``X`` and ``y``.

    A bank records it (``pool_digest_``), so that growing it or reusing a saved one on
    other data is refused.
    """
    digest = hashlib.sha256()
    for array in (X, y):
        array = np.ascontiguousarray(array)
        digest.update(f"{array.dtype.str}{array.shape}".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


def unfinished_models(models):
    """Indices of the ``models`` whose training ended short of its epochs.

    skorch's ``fit`` and the batched bank end quietly on a Ctrl-C; models that cannot
    say (scikit-learn classifiers) count as finished.

    Returns
    -------
    indices : list of int
    """
    return [k for k, model in enumerate(models)
            if not getattr(model, "_training_finished", lambda: True)()]


def check_bank_draws(bank, X, y):
    """Refuse a fitted bank that was not drawn on the pool ``(X, y)`` by its own seed.

    Checks the pool's digest, then that the masks and model seeds are those the bank's
    ``base_seed_`` gives (a bank edited, or copied from another run, is refused).

    Parameters
    ----------
    bank : fitted ReferenceModels
    X, y : ndarray
        The pool the bank should have been trained on.

    Raises
    ------
    ValueError
        Naming what differs.
    """
    if bank.pool_digest_ != pool_digest(X, y):
        raise ValueError("the bank was trained on another pool (copied from another run?)")
    masks, seeds = bank_draws(len(y), len(bank.estimators_), bank.keep, bank.base_seed_)
    if not (np.array_equal(masks, bank.in_mask_)
            and np.array_equal(np.asarray(bank.seeds_, dtype=np.int64), seeds)):
        raise ValueError(f"the bank's masks or seeds are not those its seed "
                         f"{bank.base_seed_} gives (edited?)")
