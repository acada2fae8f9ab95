"""What a defense is given to train on: the device, validation data, labels, arrays."""

import math
import warnings

import numpy as np
import torch
from sklearn.exceptions import DataConversionWarning
from sklearn.utils.multiclass import check_classification_targets
from sklearn.utils.validation import check_array, check_consistent_length
from skorch.callbacks import EpochScoring
from skorch.dataset import Dataset

__all__ = ["CheckedInputs", "ValidationData", "check_device", "in_memory_arrays"]


def check_device(device):
    """Refuse a CUDA device on a machine where torch sees none (a ValueError, not
    torch's driver error)."""
    if str(device).startswith("cuda") and not torch.cuda.is_available():
        raise ValueError(
            f"device {str(device)!r} was asked for, but torch sees no CUDA GPU on this "
            f"machine (torch {torch.__version__}); use --device cpu"
        )


class ValidationData:
    """An explicit validation set, given to a defense as ``train_split``.

    Defenses train on every row passed to ``fit`` (``train_split=None``), so that rows
    given as members really are members. To monitor a validation loss (for example for
    :class:`~skmia.defenses.EarlyStoppingClassifier`), pass the validation rows
    explicitly: ``VanillaClassifier(train_split=ValidationData(X_val, y_val))``. Labels
    are encoded with the classifier's own ``classes_``.

    Parameters
    ----------
    X : array-like of shape (n_samples, ...)
        Validation records.
    y : array-like of shape (n_samples,)
        Their labels, drawn from the training labels.
    """

    def __init__(self, X, y):
        self.X = X
        self.y = y

    def __call__(self, dataset, y=None, **kwargs):
        raise RuntimeError("ValidationData is resolved by the defense classifier itself")

    def __repr__(self):
        return f"ValidationData(n_samples={len(self.y)})"


def in_memory_arrays(dataset, who):
    """``(X, y)`` of skorch's training dataset (or a subset of it) as arrays.

    For defenses that sample their own batches (DP-SGD's Poisson sampling, AdvReg's
    rounds); ``who`` names the classifier in the error for any other kind of dataset.
    """
    indices = None
    if isinstance(dataset, torch.utils.data.Subset):
        dataset, indices = dataset.dataset, np.asarray(dataset.indices)
    if (
        type(dataset) is not Dataset
        or not isinstance(dataset.X, (np.ndarray, torch.Tensor))
        or not isinstance(dataset.y, (np.ndarray, torch.Tensor))
    ):
        raise TypeError(
            f"{who} samples its batches from in-memory arrays; got a training dataset of "
            f"type {type(dataset).__name__}. Pass X and y as arrays."
        )
    X, y = dataset.X, dataset.y
    if indices is not None:
        X, y = X[indices], y[indices]
    return X, y


def _check_y(y, n_samples):
    if y is None:
        raise ValueError(
            "this classifier requires y to be passed, but the target y is None; "
            "give one label per record."
        )
    if isinstance(y, torch.Tensor):
        y = y.detach().cpu().numpy()
    y = np.asarray(y)
    if y.ndim != 1:
        if y.ndim == 2 and y.shape[1] == 1:
            warnings.warn(
                "A column-vector y was passed when a 1d array was expected; it is raveled.",
                DataConversionWarning,
                stacklevel=3,
            )
            y = y.ravel()
        else:
            raise ValueError(f"y must be 1-D with one label per record, got shape {y.shape}.")
    check_consistent_length(np.empty(n_samples), y)
    check_classification_targets(y)
    return y


def _encoded_accuracy(net, dataset, y_encoded):
    """Validation accuracy on skorch's dataset, whose labels are already encoded."""
    return float(np.mean(net.predict_proba(dataset).argmax(axis=1) == np.asarray(y_encoded)))


def _valid_accuracy():
    return EpochScoring(_encoded_accuracy, name="valid_acc", lower_is_better=False)


class CheckedInputs:
    """Mixin of :class:`~skmia.defenses.MIADefenseClassifier`: the checks of the
    records and labels given after ``fit`` has seen the data (``input_shape_``,
    ``label_encoder_``)."""

    def _check_training_data(self, X, y, what="y"):
        """Validate ``(X, y)`` against what ``fit`` saw; return float32 X and encoded y."""
        X = self._check_X(X, reset=False)
        y = _check_y(y, len(X))
        known = np.isin(y, self.label_encoder_.classes_)
        if not known.all():
            raise ValueError(
                f"{what} has labels not seen in fit: {np.unique(y[~known]).tolist()}; "
                f"known classes: {self.label_encoder_.classes_.tolist()}"
            )
        return X, self.label_encoder_.transform(y).astype(np.int64)

    def _check_X(self, X, reset):
        name = type(self).__name__
        if isinstance(X, torch.Tensor):
            X = X.detach().cpu().numpy()
        try:
            X = check_array(
                X,
                dtype=np.float32,
                allow_nd=True,
                ensure_all_finite=True,
                input_name="X",
                estimator=name,
            )
        except ValueError as exc:
            if "could not convert" in str(exc) or "dtype" in str(exc).lower():
                raise ValueError(f"{name}: X must be numeric ({exc}).") from exc
            raise
        if X.ndim not in (2, 4):
            raise ValueError(
                f"{name} expects X as a 2-D table (n_samples, n_features) or 4-D images "
                f"(n_samples, channels, height, width), got an array of shape {X.shape}."
            )
        if reset:
            self.input_shape_ = tuple(int(d) for d in X.shape[1:])
            self.n_features_in_ = math.prod(self.input_shape_)
        elif tuple(X.shape[1:]) != self.input_shape_:
            if X.ndim == 2 and len(self.input_shape_) == 1:
                raise ValueError(
                    f"X has {X.shape[1]} features, but {name} is expecting "
                    f"{self.n_features_in_} features as input."
                )
            raise ValueError(
                f"X has records of shape {tuple(X.shape[1:])}, but {name} was fitted on "
                f"records of shape {self.input_shape_}."
            )
        return np.ascontiguousarray(X)
