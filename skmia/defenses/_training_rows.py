"""The record a defense keeps of the rows it was trained on, for privacy scorers.

A privacy scorer (:func:`skmia.audit.make_privacy_scorer`) receives a fitted
model and the held-out rows of a cross-validation split, never the rows the model was
fitted on. The defense therefore remembers them -- without copying them, and without
saving them: it keeps **weak references** to the ``X`` and ``y`` objects given to
``fit`` (strong ones only for inputs that cannot be weakly referenced, such as lists),
the positions trained on (``train_indices_``), and a digest of the rows as trained on.
Inside ``GridSearchCV`` / ``cross_validate`` the split's training arrays are alive while
the split is scored, so the rows are found; a copy, a pickle or a saved model holds no
reference, and :meth:`TrainingRows.rows` then says so.
"""

import hashlib
import weakref

import numpy as np
from sklearn.utils.validation import check_is_fitted

from ._data import _check_y

__all__ = ["RecordsTrainingRows", "TrainingRows", "rows_digest"]


def rows_digest(X, y):
    """A hex digest (BLAKE2b, 128 bits) of training rows: ``X`` as the float32 array
    the network saw, ``y`` as the encoded int64 labels, shapes included."""
    X = np.ascontiguousarray(X, dtype=np.float32)
    y = np.ascontiguousarray(y, dtype=np.int64)
    digest = hashlib.blake2b(digest_size=16)
    digest.update(repr((X.shape, y.shape)).encode())
    digest.update(memoryview(X).cast("B"))
    digest.update(memoryview(y).cast("B"))
    return digest.hexdigest()


def _reference(obj):
    """A callable returning ``obj``: a weak reference where ``obj`` allows one."""
    try:
        return weakref.ref(obj)
    except TypeError:  # lists, tuples: held as they are
        return lambda: obj


class _Call:
    """One training call: references to its ``X`` and ``y``, the positions trained on
    and the digest of those rows."""

    def __init__(self, X, y, indices, digest):
        self.X, self.y = _reference(X), _reference(y)
        self.indices = None if indices is None else np.asarray(indices, dtype=np.int64)
        self.digest = digest


class TrainingRows:
    """The rows of every training call since a defense was last trained from scratch.

    Parameters
    ----------
    calls : list of _Call
        The training calls, in order.
    unknown : str or None
        Why some of the rows cannot be known (the model was copied, unpickled or loaded
        before it was trained further), or None.
    """

    def __init__(self, calls=(), unknown=None):
        self.calls = list(calls)
        self.unknown = unknown

    def then(self, X, y, indices, digest):
        """This record with one more training call."""
        return TrainingRows([*self.calls, _Call(X, y, indices, digest)], self.unknown)

    def rows(self, validate):
        """The training rows: ``(X, y)``, the rows of every call concatenated.

        ``validate(X, y)`` checks one call's inputs as the defense did and returns
        ``(X, y, y_encoded)``; each call's rows are checked against its digest, so rows
        changed in place since training are refused.
        """
        if self.unknown is not None:
            raise ValueError(f"the rows this model was trained on are unknown: {self.unknown}")
        Xs, ys = [], []
        for call in self.calls:
            X, y = call.X(), call.y()
            if X is None or y is None:
                raise ValueError(
                    "the arrays this model was trained on are no longer in memory (a "
                    "defense keeps weak references to its training rows, not copies): "
                    "keep X and y alive while scoring, as GridSearchCV and cross_validate "
                    "do, or score the model on explicit members"
                )
            X, y, y_encoded = validate(X, y)
            if call.indices is not None:
                X, y, y_encoded = X[call.indices], y[call.indices], y_encoded[call.indices]
            if rows_digest(X, y_encoded) != call.digest:
                raise ValueError(
                    "the arrays this model was trained on were changed in place since "
                    "(their digest differs from the one recorded at fit)"
                )
            Xs.append(X)
            ys.append(y)
        if not Xs:
            raise ValueError("this model records no training call")
        if len(Xs) == 1:
            return Xs[0], ys[0]
        return np.concatenate(Xs), np.concatenate(ys)

    def __reduce__(self):
        # copies (pickle, deepcopy, joblib) hold no reference to the caller's arrays
        return (TrainingRows, ((), "the model was copied or unpickled since it was "
                                   "trained, and copies keep no reference to their rows"))



class RecordsTrainingRows:
    """Mixin of :class:`~skmia.defenses.MIADefenseClassifier`: the record of the rows
    each training call trained on, and :meth:`training_rows`."""

    def _record_training_call(self, given, X, y_encoded, continuing):
        """Remember the rows of this training call (see :meth:`training_rows`)."""
        indices = getattr(self, "train_indices_", None)
        if indices is not None and np.array_equal(indices, np.arange(len(X))):
            indices = None
        if indices is not None:
            X, y_encoded = X[indices], y_encoded[indices]
        self.train_digest_ = rows_digest(X, y_encoded)
        record = getattr(self, "_training_rows", None) if continuing else TrainingRows()
        if record is None:
            record = TrainingRows(unknown="it was trained further after being loaded")
        self._training_rows = record.then(*given, indices, self.train_digest_)
        return self

    def training_rows(self):
        """The rows this model was trained on (its members), as given to ``fit``.

        The rows of every training call since the last training from scratch
        (``fit``, then any ``partial_fit``), less the rows a ``train_split`` held out.
        They are found through weak references to the arrays given to ``fit``, so they
        are available while those arrays are alive (always within ``GridSearchCV`` and
        ``cross_validate``), and each call's rows are checked against the digest taken
        when it trained.

        Returns
        -------
        X : ndarray of float32 of shape (n_members, ...)
            The training records, as the network saw them.
        y : ndarray of shape (n_members,)
            Their labels, as given.

        Raises
        ------
        ValueError
            The rows are unknown: the model was copied, unpickled or loaded (copies keep
            no reference), the arrays were freed, or they were changed in place.
        """
        check_is_fitted(self, ["label_encoder_", "module_"])
        record = getattr(self, "_training_rows", None)
        if record is None:
            raise ValueError(
                f"this {type(self).__name__} records no training rows: it was loaded "
                "or trained outside its fit (a vectorised bank)"
            )
        return record.rows(self._validated_rows)

    def _validated_rows(self, X, y):
        """``(X, y, y_encoded)`` checked as a training call checks them."""
        X = self._check_X(X, reset=False)
        y = _check_y(y, len(X))
        return X, y, self.label_encoder_.transform(y).astype(np.int64)
