"""The plan of a defense audit: the test part, the canaries, the pool and its masks.

See :func:`skmia.audit.audit_defense` (Aerni, Zhang & Tramèr, arXiv:2404.17399). A plan
is drawn from the audit's seed alone, so an audit directory can rebuild it and continue.
"""

from dataclasses import dataclass, field
from numbers import Integral, Real

import numpy as np
from sklearn.base import BaseEstimator, ClassifierMixin, clone
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_array, check_consistent_length

from ..model_selection import bank_draws, base_seed, mask_block
from ._canaries import Canaries, make_canaries

__all__ = ["AuditPlan", "check_n_models", "plan_audit"]

# the streams of the audit's seed: the test part, canaries drawn from an int, round r,
# the label-only queries' perturbations
_TEST_STREAM, _CANARY_STREAM, _ROUND_STREAM, _LABEL_ONLY_STREAM = 0, 1, 2, 3
_MIN_MODELS = 4
#: perturbed copies per record of the label-only attack (the default of
#: :func:`skmia.attacks.label_only_signals`)
LABEL_ONLY_QUERIES = 32


@dataclass(eq=False)
class AuditPlan:
    """Everything an audit fixes before training: the pool, the test part, the seeds.

    Every method audited with the same plan trains on the same pool, canaries, test part
    and masks.
    """

    X_pool: np.ndarray
    y_pool: np.ndarray
    pool_index: np.ndarray  # row of each pool record in the X given
    is_canary: np.ndarray
    X_test: np.ndarray
    y_test: np.ndarray
    test_index: np.ndarray
    X_poison: np.ndarray
    y_poison: np.ndarray
    n_copies: int
    keep: float
    block: int
    seed: int
    augment: object = None
    settings: dict = field(default_factory=dict)

    def fingerprint(self):
        """SHA-256 of everything the plan fixes (the pool and its canaries, the test
        part, the poisons, the settings and the seed): an audit directory's rounds carry
        it, so that a round of another audit is refused."""
        import hashlib
        import json

        digest = hashlib.sha256(json.dumps(self.settings, sort_keys=True).encode())
        for array in (self.X_pool, self.y_pool, self.pool_index, self.is_canary,
                      self.X_test, self.y_test, self.test_index, self.X_poison,
                      self.y_poison):
            array = np.ascontiguousarray(array)
            digest.update(f"{array.dtype.str}{array.shape}".encode())
            digest.update(array.tobytes())
        digest.update(f"{self.n_copies},{self.keep},{self.block},{self.seed}".encode())
        return digest.hexdigest()

    def label_only_seed(self):
        """The seed of the label-only queries' perturbations: the same copies of each
        record for every model, so that its IN and OUT models answer the same queries."""
        sequence = np.random.SeedSequence([self.seed, _LABEL_ONLY_STREAM])
        return int(sequence.generate_state(1)[0] >> 1)

    def round_seed(self, r):
        """The seed of round ``r``'s bank: the audit's seed and ``r`` alone."""
        sequence = np.random.SeedSequence([self.seed, _ROUND_STREAM, r])
        return int(sequence.generate_state(1)[0] >> 1)

    def n_rounds(self, n_models):
        """Rounds of ``n_models`` models."""
        return n_models // self.block

    def round_draws(self, r):
        """The training masks (pool records, block) and model seeds of round ``r``'s
        bank: what :class:`~skmia.model_selection.ReferenceModels` with
        ``random_state=round_seed(r)`` draws."""
        return bank_draws(len(self.y_pool), self.block, self.keep,
                          base_seed(self.round_seed(r)))

    def round_masks(self, r):
        """The training masks round ``r``'s bank will draw, (pool records, block)."""
        return self.round_draws(r)[0]

    def check_rounds(self, n_rounds):
        """Refuse, before any training, masks that would leave a model without a class."""
        classes = np.unique(self.y_pool)
        for r in range(n_rounds):
            for k, mask in enumerate(self.round_masks(r).T):
                missing = np.setdiff1d(classes, self.y_pool[mask])
                if len(missing):
                    raise ValueError(
                        f"model {r * self.block + k} would train on no record of class(es) "
                        f"{missing[:5].tolist()} (the pool has "
                        f"{[int(np.sum(self.y_pool == c)) for c in missing[:5]]} of them): "
                        "every model must see every class. Use more records, or fewer "
                        "models."
                    )


class _ExpandedFit(ClassifierMixin, BaseEstimator):
    """Fits ``estimator`` on pool rows given by index, with each canary's copies and the
    poisons added: what a round trains when canaries are duplicated or poisons added."""

    def __init__(self, estimator, X_pool, y_pool, copies, X_poison, y_poison,
                 random_state=None):
        self.estimator = estimator
        self.X_pool = X_pool
        self.y_pool = y_pool
        self.copies = copies
        self.X_poison = X_poison
        self.y_poison = y_poison
        self.random_state = random_state

    def fit(self, X, y, **fit_params):
        rows = np.asarray(X)[:, 0].astype(np.int64)
        rows = np.repeat(rows, self.copies[rows])
        X_fit = np.concatenate([self.X_pool[rows], self.X_poison])
        y_fit = np.concatenate([self.y_pool[rows], self.y_poison])
        self.estimator_ = clone(self.estimator)
        if "random_state" in self.estimator_.get_params(deep=False):
            self.estimator_.set_params(random_state=self.random_state)
        self.estimator_.fit(X_fit, y_fit, **fit_params)
        self.classes_ = self.estimator_.classes_
        return self

    def predict(self, X):
        return self.estimator_.predict(X)


def check_n_models(n_models, block):
    """Refuse ``n_models`` below 4 or not a whole number of mask blocks."""
    if n_models < _MIN_MODELS or n_models % block:
        raise ValueError(
            f"n_models={n_models} must be at least {_MIN_MODELS} and a whole multiple of "
            f"the mask block, {block} (the fewest models in which every record is IN "
            "exactly keep of the time): leave-one-out LiRA needs IN and OUT reference "
            "models for every record."
        )


def _test_rows(test_size, n, canary_rows, rng):
    """Rows of ``X`` held out for the test part: drawn among the non-canaries, or given."""
    if isinstance(test_size, Real) and not isinstance(test_size, bool):
        fraction = not isinstance(test_size, Integral)
        count = int(round(test_size * n)) if fraction else int(test_size)
        if (fraction and not 0 < test_size < 1) or count < 1:
            raise ValueError(f"test_size must be a fraction in (0, 1), a count >= 1 or row "
                             f"indices; got {test_size!r}.")
        candidates = np.setdiff1d(np.arange(n), canary_rows)
        if count > len(candidates) - 2:
            raise ValueError(
                f"test_size={test_size!r} holds out {count} records, but only "
                f"{len(candidates)} are not canaries: the pool would be too small."
            )
        return np.sort(rng.choice(candidates, size=count, replace=False))
    rows = np.asarray(test_size)
    if rows.ndim != 1 or rows.dtype.kind not in "iu" or len(rows) == 0:
        raise ValueError(f"test_size given as rows must be 1-D integer indices, got {rows!r}.")
    if len(np.unique(rows)) != len(rows) or rows.min() < 0 or rows.max() >= n:
        raise ValueError(f"test rows must be distinct indices in 0 .. {n - 1}.")
    overlap = np.intersect1d(rows, canary_rows)
    if len(overlap):
        raise ValueError(
            f"the test part overlaps the canaries (rows {overlap[:5].tolist()}): no model "
            "may train on the test part, and every canary is in the pool."
        )
    return np.sort(rows.astype(np.int64))


def _canaries_for(canaries, X, y, seed):
    if canaries is None:
        return None
    if isinstance(canaries, Integral) and not isinstance(canaries, bool):
        rng = np.random.default_rng([seed, _CANARY_STREAM])
        return make_canaries(X, y, int(canaries), random_state=int(rng.integers(2**31 - 1)))
    if not isinstance(canaries, Canaries):
        raise TypeError(
            "canaries must be what make_canaries(X, y, ...) returned, an int (that many "
            f"mislabeled canaries) or None, got {type(canaries).__name__}."
        )
    if canaries.X.shape != X.shape or len(canaries.y) != len(y):
        raise ValueError(
            f"canaries were made from data of shape {canaries.X.shape}, but X has shape "
            f"{X.shape}: pass the X and y given to make_canaries."
        )
    plain = ~canaries.is_canary
    if not (np.array_equal(canaries.y[plain], y[plain])
            and np.array_equal(canaries.X[plain], X[plain])):
        raise ValueError("canaries were made from other records than X, y: pass the X and "
                         "y given to make_canaries.")
    return canaries


def plan_audit(X, y, *, canaries=None, keep=0.5, test_size=0.2, augment=None,
               random_state=None):
    """Validate an audit's data and fix its pool, test part and seeds (no training).

    Parameters are those of :func:`audit_defense`.

    Returns
    -------
    plan : AuditPlan
    """
    X = check_array(X, allow_nd=True, dtype=None, input_name="X")
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D with one label per record, got shape {y.shape}.")
    check_consistent_length(X, y)
    if not (isinstance(keep, Real) and 0 < keep < 1):
        raise ValueError(f"keep must be in (0, 1) (the fraction of models each record is "
                         f"in), got {keep!r}.")
    seed = int(check_random_state(random_state).randint(2**31 - 1))
    found = _canaries_for(canaries, X, y, seed)
    canary_rows = found.canary_index if found is not None else np.zeros(0, np.int64)
    rng = np.random.default_rng([seed, _TEST_STREAM])
    test_rows = _test_rows(test_size, len(y), canary_rows, rng)
    pool_rows = np.setdiff1d(np.arange(len(y)), test_rows)
    X_all, y_all = (found.X, found.y) if found is not None else (X, y)
    is_canary = np.isin(pool_rows, canary_rows)
    n_plain = int((~is_canary).sum())
    if found is not None and len(canary_rows) > n_plain:
        raise ValueError(
            f"{len(canary_rows)} canaries in a pool of {len(pool_rows)} records: the pool is "
            "too small, more than half of it would be canaries. Use fewer canaries or a "
            "smaller test part."
        )
    X_poison = found.X_poison if found is not None else X[:0]
    y_poison = found.y_poison if found is not None else y[:0]
    plan = AuditPlan(
        X_pool=X_all[pool_rows], y_pool=y_all[pool_rows], pool_index=pool_rows,
        is_canary=is_canary, X_test=X[test_rows], y_test=y[test_rows], test_index=test_rows,
        X_poison=X_poison, y_poison=y_poison,
        n_copies=found.n_copies if found is not None else 1, keep=float(keep),
        block=mask_block(keep), seed=seed, augment=augment,
    )
    plan.settings = {
        "n_records": int(len(y)), "pool_size": int(len(pool_rows)),
        "test_size": int(len(test_rows)), "n_canaries": int(len(canary_rows)),
        "canary_kind": found.kind if found is not None else None,
        "n_copies": plan.n_copies, "n_poisons": int(len(y_poison)), "keep": float(keep),
        "mask_block": plan.block, "seed": seed,
        "augment": None if augment is None else repr(augment),
    }
    return plan
