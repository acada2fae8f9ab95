"""The base class of the attack estimators: a binary classifier of membership on signals."""

import warnings
from abc import ABCMeta, abstractmethod

import numpy as np
import pandas as pd
from scipy.sparse import issparse
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .._sklearn_compat import StrOptions
from .._validation import validate_params
from ..metrics import attack_accuracy, attack_auc, tpr_at_fpr
from ..metrics._membership import _check_membership
from ._signals import LABEL, count_output_columns

__all__ = ["MembershipInferenceAttack", "SCORINGS"]

#: What ``score`` can return, chosen by the ``scoring`` parameter.
SCORINGS = ("accuracy", "roc_auc")

#: The low false-positive rates ``evaluate`` reports, with their keys.
EVALUATED_FPRS = {"tpr_at_0.1%fpr": 0.001, "tpr_at_1%fpr": 0.01}


class MembershipInferenceAttack(ClassifierMixin, BaseEstimator, metaclass=ABCMeta):
    """Base class of skmia's attacks: a binary classifier of membership on signals.

    An attack never holds a model: it reads the table of signals that
    :func:`skmia.attacks.compute_signals` returns (one row per record) and learns to
    tell members (``y == 1``) from non-members (``y == 0``). ``decision_function`` is
    the attack's raw score, higher for members; ``predict_proba[:, 1]`` is a monotone
    function of it; ``predict`` applies the rule ``fit`` learned; ``score`` is the attack
    accuracy ``0.5 * (TPR + TNR)`` (or the AUC with ``scoring="roc_auc"``).

    Subclasses list the signal columns they read in ``_columns`` and implement ``_fit``,
    ``decision_function`` and ``predict``; ``fit`` validates and sets ``classes_`` and
    ``n_model_classes_`` before calling ``_fit``. Parameters are checked at ``fit``
    against the class's ``_parameter_constraints`` table, which a subclass extends
    (``{**Parent._parameter_constraints, "per_class": ["boolean"]}``).

    Notes
    -----
    ``X`` must be a :class:`pandas.DataFrame` of signals holding the columns the attack
    reads (named in the error otherwise); other columns are ignored. Only
    :class:`NNAttack` also takes a plain 2-D array, as the rows of model outputs.
    """

    #: Whether a plain 2-D array is accepted as X (read as the model outputs).
    _accepts_arrays = False

    _parameter_constraints = {"scoring": [StrOptions(set(SCORINGS))]}

    @abstractmethod
    def _columns(self, n_classes):
        """The signal columns this attack reads, for a model of ``n_classes`` (or None)."""

    # ------------------------------------------------------------------ validation
    def _check_params(self):
        """Check the parameters against ``_parameter_constraints`` (InvalidParameterError)."""
        validate_params(self)

    def _validate_signals(self, X, *, reset):
        """Check X; return the columns read (DataFrame or None), as array, and the class count.

        The class count is that of the model the signals come from, read from the
        ``proba_*`` (else ``logit_*``) columns; ``None`` when there are none. For a plain
        array (NN attack only) it is the number of columns.
        """
        if not isinstance(X, pd.DataFrame):
            if self._accepts_arrays and not isinstance(X, pd.Series):
                array = validate_data(self, X, reset=reset)
                return None, array, array.shape[1]
            kind = "sparse input, which is not supported" if issparse(X) else type(X).__name__
            raise TypeError(
                f"{type(self).__name__} reads a pandas DataFrame of signals (the output of "
                f"skmia.attacks.compute_signals), got {kind}."
            )
        n_classes = count_output_columns(X.columns, "proba") or count_output_columns(
            X.columns, "logit"
        )
        n_classes = n_classes or None
        if not reset and self.n_model_classes_ is not None:
            if n_classes is not None and n_classes != self.n_model_classes_:
                raise ValueError(
                    f"The signals come from a model of {n_classes} classes, but "
                    f"{type(self).__name__} was fitted on signals of {self.n_model_classes_} "
                    "classes."
                )
            n_classes = self.n_model_classes_
        columns = self._columns(n_classes)
        missing = [c for c in columns if c not in X.columns]
        if missing:
            shown = ", ".join(repr(c) for c in missing[:3]) + (" ..." if len(missing) > 3 else "")
            raise ValueError(
                f"X lacks the signal column{'s' if len(missing) > 1 else ''} {shown} that "
                f"{type(self).__name__} reads; compute the signals with "
                "skmia.attacks.compute_signals"
                + (" (white_box=True)" if any(c.startswith("grad_") for c in missing) else "")
                + "."
            )
        signals = X[columns]
        for name in columns:
            col = signals[name]
            if not pd.api.types.is_numeric_dtype(col) or pd.api.types.is_bool_dtype(col):
                raise TypeError(f"The signal column {name!r} must be numeric, got {col.dtype}.")
            bad = ~np.isfinite(col.to_numpy(dtype=np.float64, na_value=np.nan))
            if bad.any():
                raise ValueError(
                    f"The signal column {name!r} contains NaN or infinite values "
                    f"({int(bad.sum())} of {len(col)} rows)."
                )
        if LABEL in columns:
            labels = signals[LABEL].to_numpy(dtype=np.float64)
            if (labels < 0).any() or (labels != np.round(labels)).any():
                raise ValueError(
                    f"The signal column {LABEL!r} must hold class indices 0, 1, ..., got "
                    f"{np.unique(labels[(labels < 0) | (labels != np.round(labels))])[:5]}."
                )
            if n_classes is not None and labels.max() >= n_classes:
                raise ValueError(
                    f"The signal column {LABEL!r} holds class index {int(labels.max())}, out "
                    f"of range for a model of {n_classes} classes."
                )
        return signals, validate_data(self, signals, reset=reset), n_classes

    @staticmethod
    def _validate_membership(y):
        y = np.asarray(y)
        if y.ndim == 2 and y.shape[1] == 1:
            y = column_or_1d(y, warn=True)
        return _check_membership(y)

    # ------------------------------------------------------------------ estimator API
    def fit(self, X, y):
        """Learn the attack from signals of known members and non-members.

        Parameters
        ----------
        X : pandas.DataFrame of shape (n_samples, n_signals)
            Signals, as :func:`~skmia.attacks.compute_signals` returns them (in the
            reference protocol: the shadow model's, on its members and non-members).
        y : array-like of shape (n_samples,)
            Membership: 1 = member, 0 = non-member; both must occur.

        Returns
        -------
        self : object
            The fitted attack.
        """
        self._check_params()
        y = self._validate_membership(y)
        signals, array, n_classes = self._validate_signals(X, reset=True)
        if array.shape[0] != len(y):
            raise ValueError(f"X has {array.shape[0]} rows but y has {len(y)} membership labels.")
        self.n_model_classes_ = n_classes
        self.classes_ = np.array([0, 1])
        self._fit(signals, array, y)
        return self

    @abstractmethod
    def _fit(self, signals, array, y):
        """Learn the attack from validated signals (``array`` when given as an array)."""

    def _proba_from_decision(self, decision):
        """Map the decision function monotonically onto ``[0, 1]``."""
        return expit(decision)

    def predict_proba(self, X):
        """Membership probabilities: column 1 is a monotone function of the decision.

        Parameters
        ----------
        X : pandas.DataFrame of shape (n_samples, n_signals)
            Signals.

        Returns
        -------
        proba : ndarray of shape (n_samples, 2)
            ``[P(non-member), P(member)]`` per row.
        """
        p = self._proba_from_decision(self.decision_function(X))
        return np.column_stack([1.0 - p, p])

    def score(self, X, y):
        """Attack accuracy ``0.5 * (TPR + TNR)``, or AUC when ``scoring="roc_auc"``.

        Parameters
        ----------
        X : pandas.DataFrame of shape (n_samples, n_signals)
            Signals.
        y : array-like of shape (n_samples,)
            Membership: 1 = member, 0 = non-member.

        Returns
        -------
        score : float
            The metric named by ``scoring``.
        """
        self._check_params()  # scoring may have been set after fit
        if self.scoring == "roc_auc":
            return attack_auc(y, self.decision_function(X))
        return attack_accuracy(y, self.predict(X))

    def evaluate(self, X, y):
        """All metrics of the attack on labelled signals.

        Parameters
        ----------
        X : pandas.DataFrame of shape (n_samples, n_signals)
            Signals (in the reference protocol: the target model's, on its members and
            non-members).
        y : array-like of shape (n_samples,)
            Membership: 1 = member, 0 = non-member.

        Returns
        -------
        metrics : dict
            ``accuracy`` (``0.5 * (TPR + TNR)`` of ``predict``), ``auc`` (of
            ``decision_function``, threshold-free), ``tpr_at_0.1%fpr`` and
            ``tpr_at_1%fpr`` (see :func:`skmia.metrics.tpr_at_fpr`; NaN, with a warning,
            when there are too few non-members to measure that FPR).
        """
        check_is_fitted(self)
        y = _check_membership(y)
        decision = self.decision_function(X)
        result = {
            "accuracy": attack_accuracy(y, self.predict(X)),
            "auc": attack_auc(y, decision),
        }
        n_neg = int(np.sum(y == 0))
        for key, fpr in EVALUATED_FPRS.items():
            if fpr * n_neg * (1 + 1e-9) < 1:
                warnings.warn(
                    f"{key} is NaN: {n_neg} non-members cannot measure an FPR of {fpr} "
                    f"(at least {int(np.ceil(1 / fpr))} are needed).",
                    UserWarning,
                    stacklevel=2,
                )
                result[key] = float("nan")
            else:
                result[key] = tpr_at_fpr(y, decision, max_fpr=fpr).tpr
        return result

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags
