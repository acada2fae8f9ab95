"""The base class of the attack estimators: a binary classifier of membership on signals."""

import warnings
from abc import ABCMeta, abstractmethod
from numbers import Real

import numpy as np
import pandas as pd
from scipy.sparse import issparse
from scipy.special import expit
from sklearn.base import BaseEstimator, ClassifierMixin
from sklearn.utils.validation import check_is_fitted, column_or_1d, validate_data

from .._docstrings import Substitution
from .._rundir import summary_fprs, tpr_column
from .._sklearn_compat import Interval, StrOptions
from .._validation import validate_params
from ..metrics import attack_accuracy, attack_auc, tpr_at_fpr

# the metrics' own check of labels and scores, so an attack refuses what they refuse
from ..metrics._membership import _check_membership
from ._signals import LABEL, count_output_columns

__all__ = ["FPR_CONSTRAINT", "SCORINGS", "MembershipInferenceAttack"]

#: What ``score`` can return, chosen by the ``scoring`` parameter.
SCORINGS = ("accuracy", "roc_auc")

#: The low false-positive rates ``evaluate`` reports, with their keys.
EVALUATED_FPRS = {tpr_column(name): rate for name, rate in summary_fprs().items()}


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
            when there are too few non-members to measure that FPR, and NaN when the
            scores leave that FPR unresolved: ties among the highest-scoring
            non-members, so that no threshold flags between 1 and ``FPR * n`` of them).
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
                rate = tpr_at_fpr(y, decision, max_fpr=fpr)
                result[key] = rate.tpr if rate.resolved else float("nan")
        return result

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.classifier_tags.multi_class = False
        return tags


#: Docstring text shared by the attacks ``fit`` calibrates with or without labels.
CALIBRATED_DOCS = Substitution(
    scoring="""scoring : {"accuracy", "roc_auc"}, default="accuracy"
        What :meth:`score` returns: the attack accuracy ``0.5 * (TPR + TNR)`` of
        ``predict``, or the AUC of ``decision_function``.""",
    calibrated_attributes="""supervised_ : bool
        Whether ``fit`` had membership labels.
    scale_ : float
        Standard deviation of the fit decisions, the scale of ``predict_proba``.
    n_model_classes_ : int or None
        Number of classes of the target model (from ``proba_*`` / ``logit_*``), if any.
    classes_ : ndarray of shape (2,)
        ``[0, 1]``: non-member, member.""",
)


#: The false-positive rate an attack calibrated without labels aims at, in (0, 1).
FPR_CONSTRAINT = [Interval(Real, 0, 1, closed="neither")]


def _reference_thresholds(score, member, labels=None, n_labels=0):
    """The reference code's thresholds, by sorting instead of its O(n^2) scan.

    For one set of records, the reference tries every observed score as a threshold
    ``t`` (members first, then non-members, each in row order), computes
    ``0.5 * (#{members >= t} / n_members + #{non-members < t} / n_nonmembers)`` and keeps
    the first strict improvement over ``(t=0, acc=0)``: the first candidate in that scan
    order with the highest accuracy. Here a sort gives the distinct scores and, by
    cumulative counts, the accuracy of each with the reference's floating-point
    operations; the winner is the best distinct score met first in scan order.
    O(n log n), for all classes together.

    Parameters
    ----------
    score : ndarray of shape (n,)
    member : ndarray of bool of shape (n,)
    labels : ndarray of int64 of shape (n,), values in ``[0, n_labels)``, default=None
        Classes for per-class thresholds; ``None`` for the global threshold only.
    n_labels : int, default=0

    Returns
    -------
    threshold : scalar of the dtype of ``score``
        The global threshold.
    class_thresholds : ndarray of shape (n_labels,) or None
        The threshold of each class, the global one for a class without members or
        without non-members.
    """
    n = len(score)
    by_score = np.argsort(score)  # ties need no order: runs and scan ranks settle them
    scan_rank = np.where(member, 0, n) + np.arange(n)  # position in the reference's scan
    (threshold,), _ = _best_in_groups(by_score, score, member, scan_rank, None, 1)
    if labels is None:
        return threshold, None
    if n_labels <= np.iinfo(np.int16).max:  # a stable radix sort of small labels: O(n)
        by_label_score = by_score[np.argsort(labels[by_score].astype(np.int16), kind="stable")]
    else:
        score_rank = np.empty(n, dtype=np.int64)
        score_rank[by_score] = np.arange(n)
        by_label_score = np.argsort(labels * n + score_rank)  # one integer key, no ties
    thresholds, has_both = _best_in_groups(
        by_label_score, score, member, scan_rank, labels, n_labels
    )
    return threshold, np.where(has_both, thresholds, threshold)


def _best_in_groups(order, score, member, scan_rank, group, n_groups):
    """Reference thresholds per group, given ``order`` sorting by (group, score).

    ``group`` may be ``None`` when ``n_groups == 1``.
    """
    n = len(order)
    v, m, r = score[order], member[order], scan_rank[order]
    # runs of one distinct score within one group
    new = np.empty(n, dtype=bool)
    new[0] = True
    np.not_equal(v[1:], v[:-1], out=new[1:])
    if n_groups > 1:
        g = group[order]
        new[1:] |= g[1:] != g[:-1]
    starts = np.flatnonzero(new)
    run_members = np.add.reduceat(m.view(np.int8), starts, dtype=np.int64)
    run_nonmembers = np.diff(np.append(starts, n)) - run_members
    run_first = np.minimum.reduceat(r, starts)
    if n_groups > 1:
        run_group = g[starts]
        n_members = np.bincount(g[m], minlength=n_groups)
        n_nonmembers = np.bincount(g, minlength=n_groups) - n_members
    else:
        run_group = np.zeros(len(starts), dtype=np.int64)
        n_members = np.array([np.count_nonzero(m)])
        n_nonmembers = n - n_members
    has_both = (n_members > 0) & (n_nonmembers > 0)
    thresholds = np.zeros(n_groups, dtype=score.dtype)
    keep = has_both[run_group]
    if not keep.any():
        return thresholds, has_both
    run_group, run_first, run_score = run_group[keep], run_first[keep], v[starts[keep]]
    run_members, run_nonmembers = run_members[keep], run_nonmembers[keep]

    group_start = np.flatnonzero(np.append(True, run_group[1:] != run_group[:-1]))
    runs_per_group = np.diff(np.append(group_start, len(run_group)))
    # members and non-members below each run, within its own group
    members_below = np.cumsum(run_members) - run_members
    nonmembers_below = np.cumsum(run_nonmembers) - run_nonmembers
    members_below -= np.repeat(members_below[group_start], runs_per_group)
    nonmembers_below -= np.repeat(nonmembers_below[group_start], runs_per_group)

    n_m, n_u = n_members[run_group], n_nonmembers[run_group]
    acc = 0.5 * ((n_m - members_below) / (n_m + 0.0) + nonmembers_below / (n_u + 0.0))
    best_acc = np.repeat(np.maximum.reduceat(acc, group_start), runs_per_group)
    first = np.where(acc == best_acc, run_first, np.iinfo(np.int64).max)
    winner_first = np.repeat(np.minimum.reduceat(first, group_start), runs_per_group)
    winners = first == winner_first
    thresholds[run_group[winners]] = run_score[winners]
    return thresholds, has_both


class _CalibratedAttack(MembershipInferenceAttack):
    """An attack that ``fit`` can calibrate with or without membership labels.

    With labels, ``fit`` chooses the threshold on ``decision_function`` that maximises
    the attack accuracy on the fit signals (the threshold attacks' rule, one global
    threshold). Without (``fit(signals)``), it keeps the default of the subclass
    (``_default_threshold``) and ``predict`` applies ``_default_predict``.

    Subclasses implement ``_calibrate(signals, y)`` (learn what the score needs; ``y``
    may be None), ``_decision(signals, *, fitting=False)`` and ``_default_threshold()``.
    """

    def fit(self, X, y=None):
        """Calibrate the attack, with membership labels or without.

        Parameters
        ----------
        X : pandas.DataFrame of shape (n_samples, n_signals)
            Signals, as :func:`~skmia.attacks.compute_signals` returns them: what the
            attack calibrates on (see the class's description).
        y : array-like of shape (n_samples,), default=None
            Membership: 1 = member, 0 = non-member, both present. When given,
            ``threshold_`` maximises the attack accuracy on them; when None,
            ``threshold_`` is the documented default of the attack.

        Returns
        -------
        self : object
            The fitted attack.
        """
        self._check_params()
        if y is not None:
            y = self._validate_membership(y)
        signals, array, n_classes = self._validate_signals(X, reset=True)
        if y is not None and array.shape[0] != len(y):
            raise ValueError(f"X has {array.shape[0]} rows but y has {len(y)} membership labels.")
        self.n_model_classes_ = n_classes
        self.classes_ = np.array([0, 1])
        self._fit(signals, array, y)
        return self

    def _fit(self, signals, array, y):
        self.supervised_ = y is not None
        self._calibrate(signals, y)
        decision = self._decision(signals, fitting=True)
        spread = float(np.std(decision))
        self.scale_ = spread if np.isfinite(spread) and spread > 0 else 1.0
        if y is None:
            self.threshold_ = float(self._default_threshold())
        else:
            self.threshold_ = float(_reference_thresholds(decision, y == 1)[0])
        # predict_proba is centred on the threshold, or on the median fit decision where
        # the default rule is per record (no single threshold)
        self._centre = self.threshold_ if np.isfinite(self.threshold_) else float(
            np.median(decision)
        )

    @abstractmethod
    def _calibrate(self, signals, y):
        """Learn what the score needs from the fit signals (``y`` may be None)."""

    @abstractmethod
    def _decision(self, signals, *, fitting=False):
        """The score of each record (float64), higher for members."""

    @abstractmethod
    def _default_threshold(self):
        """The threshold on the decision that ``predict`` uses after ``fit`` without labels."""

    def _default_predict(self, signals, decision):
        return decision >= self.threshold_

    def decision_function(self, X):
        """The attack score of each record, higher for members.

        Parameters
        ----------
        X : pandas.DataFrame of shape (n_samples, n_signals)
            Signals holding the columns this attack reads.

        Returns
        -------
        score : ndarray of float64 of shape (n_samples,)
        """
        check_is_fitted(self)
        signals, _, _ = self._validate_signals(X, reset=False)
        return self._decision(signals)

    def predict(self, X):
        """Membership: ``decision_function(X) >= threshold_`` (see the class for the default).

        Parameters
        ----------
        X : pandas.DataFrame of shape (n_samples, n_signals)
            Signals holding the columns this attack reads.

        Returns
        -------
        y_pred : ndarray of int64 of shape (n_samples,)
            1 = member, 0 = non-member.
        """
        check_is_fitted(self)
        signals, _, _ = self._validate_signals(X, reset=False)
        decision = self._decision(signals)
        if self.supervised_:
            return (decision >= self.threshold_).astype(np.int64)
        return np.asarray(self._default_predict(signals, decision)).astype(np.int64)

    def _proba_from_decision(self, decision):
        # a logistic squashing around the threshold; not a calibrated probability
        return super()._proba_from_decision((decision - self._centre) / self.scale_)

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.target_tags.required = False
        return tags
