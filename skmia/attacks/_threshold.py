"""Threshold attacks: one score per record, a threshold per class (or one for all).

numpy only: importing this module does not import torch.
"""

from abc import abstractmethod

import numpy as np
from sklearn.utils.validation import check_is_fitted

from .._docstrings import Substitution
from .._sklearn_compat import StrOptions
from ._base import MembershipInferenceAttack
from ._signals import LABEL, LOSS, WHITE_BOX_SIGNALS, output_columns

__all__ = [
    "ConfidenceAttack",
    "EntropyAttack",
    "GradientNormAttack",
    "LossAttack",
    "ModifiedEntropyAttack",
]

# Parameters and attributes every threshold attack documents alike, written once
_SHARED_DOCS = Substitution(
    per_class="""per_class : bool, default=True
        One threshold per class (the record's ``label``), as the reference code does for
        its black-box attacks; ``False`` for one global threshold.""",
    scoring="""scoring : {"accuracy", "roc_auc"}, default="accuracy"
        What :meth:`score` returns: the attack accuracy ``0.5 * (TPR + TNR)`` of
        ``predict``, or the AUC of ``decision_function``.""",
    fitted_attributes="""threshold_ : float
        The global threshold: used for every record when ``per_class=False``, and for
        classes without a threshold of their own otherwise.
    class_thresholds_ : ndarray of shape (n_labels,) or None
        The threshold of each class index; ``None`` when ``per_class=False``. Labels
        beyond its length use ``threshold_``.
    scale_ : float
        Standard deviation of the fit scores. ``predict_proba[:, 1]`` is
        ``expit((decision_function(X) - threshold_) / scale_)``: monotone in the score,
        not a calibrated probability (wrap the attack in
        :class:`~sklearn.calibration.CalibratedClassifierCV` for one).
    n_model_classes_ : int or None
        Number of classes of the model whose signals were fitted (counted from the
        ``proba_*`` or ``logit_*`` columns); ``None`` when X has neither.
    classes_ : ndarray of shape (2,)
        ``[0, 1]``: non-member, member.
    n_features_in_ : int
        Number of signal columns read.
    feature_names_in_ : ndarray of str
        Their names.""",
)

# The reference code clips probabilities at this value before taking logs.
_LOG_FLOOR = 1e-30


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


class _ThresholdAttack(MembershipInferenceAttack):
    """Shared machinery: the score comes from ``_score``; ``fit`` picks thresholds."""

    #: Whether the score itself needs the record's label (p_y, the modified entropy).
    _score_needs_label = False

    _parameter_constraints = {
        **MembershipInferenceAttack._parameter_constraints,
        "per_class": ["boolean"],
    }

    def __init__(self, *, per_class=True, scoring="accuracy"):
        self.per_class = per_class
        self.scoring = scoring

    @abstractmethod
    def _score_columns(self, n_classes):
        """The columns the score is computed from."""

    def _columns(self, n_classes):
        needed = self._score_columns(n_classes)
        if (self.per_class or self._score_needs_label) and LABEL not in needed:
            needed = [*needed, LABEL]
        return needed

    @abstractmethod
    def _score(self, signals):
        """The membership score of each record: higher for members."""

    def _fit(self, signals, array, y):
        score = self._score(signals)
        spread = float(np.std(score, dtype=np.float64))
        self.scale_ = spread if np.isfinite(spread) and spread > 0 else 1.0
        if not self.per_class:
            self.threshold_, self.class_thresholds_ = _reference_thresholds(score, y == 1)
            return
        labels = signals[LABEL].to_numpy().astype(np.int64)
        n_labels = max(int(labels.max()) + 1, self.n_model_classes_ or 0)
        self.threshold_, self.class_thresholds_ = _reference_thresholds(
            score, y == 1, labels, n_labels
        )

    def decision_function(self, X):
        """The attack score of each record, higher for members, threshold-free.

        Parameters
        ----------
        X : pandas.DataFrame of shape (n_samples, n_signals)
            Signals holding the columns this attack reads.

        Returns
        -------
        score : ndarray of shape (n_samples,)
            The reference code's score (its sign included); AUC is computed on it.
        """
        check_is_fitted(self)
        signals, _, _ = self._validate_signals(X, reset=False)
        return self._score(signals).astype(np.float64)

    def _thresholds_for(self, signals):
        if self.class_thresholds_ is None:
            return self.threshold_
        labels = signals[LABEL].to_numpy().astype(np.int64)
        known = labels < len(self.class_thresholds_)
        return np.where(known, self.class_thresholds_[np.where(known, labels, 0)], self.threshold_)

    def predict(self, X):
        """Membership by the learned threshold(s): member iff score >= threshold.

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
        return (self._score(signals) >= self._thresholds_for(signals)).astype(np.int64)

    def _proba_from_decision(self, decision):
        # a logistic squashing around the global threshold; not a calibrated probability
        return super()._proba_from_decision((decision - self.threshold_) / self.scale_)

    def _proba(self, signals):
        columns = output_columns("proba", self.n_model_classes_)
        return np.ascontiguousarray(signals[columns].to_numpy())


@_SHARED_DOCS
class ConfidenceAttack(_ThresholdAttack):
    """Membership by the confidence in the true class, thresholded per class.

    The score of a record is ``p_y``, the predicted probability of its own class
    (column ``proba_{label}``). Members tend to get higher confidence.

    Parameters
    ----------
    %(per_class)s
    %(scoring)s

    Attributes
    ----------
    %(fitted_attributes)s

    See Also
    --------
    LossAttack, EntropyAttack, ModifiedEntropyAttack : the other threshold attacks.
    skmia.attacks.compute_signals : the signals table it reads.

    Notes
    -----
    Threat model: a black-box adversary that queries the model with labelled records and
    sees its output probabilities. It fits its thresholds on a shadow model trained like
    the target on data of the same distribution (the reference protocol), or, as an
    auditor, on the target's own signals by cross-validation.

    ``fit`` chooses, per class or once for all records, the threshold that maximises the
    attack accuracy ``0.5 * (TPR + TNR)`` on the fit data with the reference code's
    rule: a record is a member iff its score is at least the threshold; the candidates
    are the observed scores, tried members first, then non-members, each in row order,
    and the first strict improvement wins. Give the members' rows before the
    non-members' (``pandas.concat([train, test])``) to get the reference's exact
    thresholds. The search sorts instead of scanning: O(n log n) instead of the
    reference's O(n^2), with identical results.

    A class without members or without non-members in ``fit`` (a class never seen
    included) gets the global threshold. The reference code keeps a threshold of 0 for
    such a class, an artifact of a 0/0 accuracy; where every class has both (the
    reference datasets), the results agree.

    ``decision_function`` is the raw score, so AUC (threshold-free) is the reference's.
    With ``per_class=True``, ``predict`` depends on the label as well as on the score,
    so it is not a function of ``predict_proba`` alone.

    References
    ----------
    .. [1] D. Chen, N. Yu, M. Fritz. "RelaxLoss: Defending Membership Inference Attacks
       without Losing Utility". ICLR 2022. arXiv:2207.05801.
    .. [2] L. Song, P. Mittal. "Systematic Evaluation of Privacy Risks of Machine Learning
       Models". USENIX Security 2021. arXiv:2003.10595.

    Examples
    --------
    >>> import pandas as pd
    >>> from skmia.attacks import ConfidenceAttack
    >>> signals = pd.DataFrame({"proba_0": [0.9, 0.8, 0.6, 0.3],
    ...                         "proba_1": [0.1, 0.2, 0.4, 0.7], "label": [0, 0, 0, 0]})
    >>> attack = ConfidenceAttack().fit(signals, [1, 1, 0, 0])
    >>> float(attack.threshold_), attack.predict(signals).tolist()
    (0.8, [1, 1, 0, 0])
    >>> attack.score(signals, [1, 1, 0, 0])
    1.0
    """

    _score_needs_label = True

    def _score_columns(self, n_classes):
        return output_columns("proba", n_classes or 1)

    def _score(self, signals):
        labels = signals[LABEL].to_numpy().astype(np.int64)
        return self._proba(signals)[np.arange(len(labels)), labels]


@_SHARED_DOCS
class EntropyAttack(_ThresholdAttack):
    """Membership by low prediction entropy, thresholded per class.

    The score of a record is ``-H(p) = sum_c p_c log p_c``, with probabilities clipped
    at 1e-30 inside the log as in the reference code. Members tend to get confident,
    low-entropy predictions. The score ignores the label; with ``per_class=True`` the
    label picks the threshold.

    Parameters
    ----------
    %(per_class)s
    %(scoring)s

    Attributes
    ----------
    %(fitted_attributes)s

    See Also
    --------
    ConfidenceAttack : the rule that picks thresholds, described in full.

    Notes
    -----
    Threat model: a black-box adversary that sees the output probabilities of labelled
    records it queries; thresholds fitted on a shadow model (the reference protocol) or
    by cross-validation on the target's signals. Thresholds are chosen as in
    :class:`ConfidenceAttack`: the reference code's rule, in O(n log n).

    References
    ----------
    .. [1] D. Chen, N. Yu, M. Fritz. "RelaxLoss: Defending Membership Inference Attacks
       without Losing Utility". ICLR 2022. arXiv:2207.05801.
    .. [2] L. Song, P. Mittal. "Systematic Evaluation of Privacy Risks of Machine Learning
       Models". USENIX Security 2021. arXiv:2003.10595.

    Examples
    --------
    >>> import pandas as pd
    >>> from skmia.attacks import EntropyAttack
    >>> signals = pd.DataFrame({"proba_0": [1.0, 0.5], "proba_1": [0.0, 0.5],
    ...                         "label": [0, 1]})
    >>> score = EntropyAttack().fit(signals, [1, 0]).decision_function(signals)
    >>> float(score[0]) == 0.0, round(float(score[1]), 4)  # -H: 0 one-hot, -log 2 coin
    (True, -0.6931)
    """

    def _score_columns(self, n_classes):
        return output_columns("proba", n_classes or 1)

    def _score(self, signals):
        proba = self._proba(signals)
        entropy = np.sum(np.multiply(proba, -np.log(np.maximum(proba, _LOG_FLOOR))), axis=1)
        return -entropy


@_SHARED_DOCS
class ModifiedEntropyAttack(_ThresholdAttack):
    """Membership by Song and Mittal's modified entropy, thresholded per class.

    The score of a record is ``-Mentr`` with
    ``Mentr = -(1 - p_y) log p_y - sum_{c != y} p_c log(1 - p_c)``, logs of values
    clipped at 1e-30 as in the reference code. Unlike the entropy it uses the label:
    a confident wrong prediction scores low, a confident right one high.

    Parameters
    ----------
    %(per_class)s
    %(scoring)s

    Attributes
    ----------
    %(fitted_attributes)s

    See Also
    --------
    ConfidenceAttack : the rule that picks thresholds, described in full.

    Notes
    -----
    Threat model: a black-box adversary that sees the output probabilities of labelled
    records it queries; thresholds fitted on a shadow model (the reference protocol) or
    by cross-validation on the target's signals. Thresholds are chosen as in
    :class:`ConfidenceAttack`: the reference code's rule, in O(n log n).

    References
    ----------
    .. [1] L. Song, P. Mittal. "Systematic Evaluation of Privacy Risks of Machine Learning
       Models". USENIX Security 2021. arXiv:2003.10595.
    .. [2] D. Chen, N. Yu, M. Fritz. "RelaxLoss: Defending Membership Inference Attacks
       without Losing Utility". ICLR 2022. arXiv:2207.05801.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skmia.attacks import ModifiedEntropyAttack
    >>> signals = pd.DataFrame({"proba_0": [0.9, 0.9], "proba_1": [0.1, 0.1],
    ...                         "label": [0, 1]})  # right, then confidently wrong
    >>> score = ModifiedEntropyAttack().fit(signals, [1, 0]).decision_function(signals)
    >>> bool(np.isclose(score[0], 0.1 * np.log(0.9) + 0.1 * np.log(0.9)))
    True
    >>> bool(np.isclose(score[1], 0.9 * np.log(0.1) + 0.9 * np.log(0.1)))
    True
    """

    _score_needs_label = True

    def _score_columns(self, n_classes):
        return output_columns("proba", n_classes or 1)

    def _score(self, signals):
        proba = self._proba(signals)
        labels = signals[LABEL].to_numpy().astype(np.int64)
        rows = np.arange(len(labels))
        neg_log = -np.log(np.maximum(proba, _LOG_FLOOR))
        complement = 1 - proba
        neg_log_complement = -np.log(np.maximum(complement, _LOG_FLOOR))
        # Mentr = (1 - p_y) * (-log p_y) + sum_{c != y} p_c * (-log(1 - p_c))
        weights = proba.copy()
        weights[rows, labels] = complement[rows, labels]
        logs = neg_log_complement.copy()
        logs[rows, labels] = neg_log[rows, labels]
        return -np.sum(np.multiply(weights, logs), axis=1)


@_SHARED_DOCS
class LossAttack(_ThresholdAttack):
    """Membership by low loss, thresholded per class.

    The score of a record is ``-loss``, minus its cross-entropy (column ``loss``).
    Training minimises the loss of the members, so theirs tends to be lower.

    Parameters
    ----------
    %(per_class)s
    %(scoring)s

    Attributes
    ----------
    %(fitted_attributes)s

    See Also
    --------
    ConfidenceAttack : the rule that picks thresholds, described in full.

    Notes
    -----
    Threat model: a black-box adversary that sees the loss (equivalently, the
    probability of the true class) of labelled records it queries; thresholds fitted on
    a shadow model (the reference protocol) or by cross-validation on the target's
    signals. Thresholds are chosen as in :class:`ConfidenceAttack`: the reference
    code's rule, in O(n log n).

    References
    ----------
    .. [1] S. Yeom, I. Giacomelli, M. Fredrikson, S. Jha. "Privacy Risk in Machine
       Learning: Analyzing the Connection to Overfitting". IEEE CSF 2018.
       arXiv:1709.01604.
    .. [2] D. Chen, N. Yu, M. Fritz. "RelaxLoss: Defending Membership Inference Attacks
       without Losing Utility". ICLR 2022. arXiv:2207.05801.

    Examples
    --------
    >>> import pandas as pd
    >>> from skmia.attacks import LossAttack
    >>> signals = pd.DataFrame({"loss": [0.01, 0.2, 0.1, 2.3], "label": [0, 0, 1, 1]})
    >>> attack = LossAttack().fit(signals, [1, 0, 1, 0])
    >>> attack.class_thresholds_.tolist(), attack.predict(signals).tolist()
    ([-0.01, -0.1], [1, 0, 1, 0])
    """

    def _score_columns(self, n_classes):
        return [LOSS]

    def _score(self, signals):
        return -signals[LOSS].to_numpy()


@_SHARED_DOCS
class GradientNormAttack(_ThresholdAttack):
    """Membership by a small loss gradient (white-box), one global threshold.

    The score of a record is minus the norm named by ``signal``: the L1 or L2 norm of
    the gradient of the record's loss with respect to its input (``grad_x_*``) or to all
    model parameters (``grad_w_*``). Training drives the members' gradients towards zero.

    Parameters
    ----------
    signal : {"grad_x_l1", "grad_x_l2", "grad_w_l1", "grad_w_l2"}, default="grad_w_l2"
        The white-box column of :func:`~skmia.attacks.compute_signals` to threshold.
    per_class : bool, default=False
        ``False`` for one global threshold, as the reference code does for its white-box
        attacks; ``True`` for one threshold per class (the record's ``label``).
    %(scoring)s

    Attributes
    ----------
    %(fitted_attributes)s

    See Also
    --------
    ConfidenceAttack : the rule that picks thresholds, described in full.

    Notes
    -----
    Threat model: a white-box adversary that holds the parameters and differentiates
    the loss of each labelled record; thresholds fitted on a shadow model (the
    reference protocol) or by cross-validation on the target's signals. Thresholds are
    chosen as in :class:`ConfidenceAttack`: the reference code's rule, in O(n log n).

    References
    ----------
    .. [1] D. Chen, N. Yu, M. Fritz. "RelaxLoss: Defending Membership Inference Attacks
       without Losing Utility". ICLR 2022. arXiv:2207.05801.
    .. [2] M. Nasr, R. Shokri, A. Houmansadr. "Comprehensive Privacy Analysis of Deep
       Learning: Passive and Active White-box Inference Attacks against Centralized and
       Federated Learning". IEEE S&P 2019. arXiv:1812.00910.

    Examples
    --------
    >>> import pandas as pd
    >>> from skmia.attacks import GradientNormAttack
    >>> signals = pd.DataFrame({"grad_w_l2": [0.5, 1.0, 3.0, 4.0]})
    >>> attack = GradientNormAttack("grad_w_l2").fit(signals, [1, 1, 0, 0])
    >>> float(attack.threshold_), attack.predict(signals).tolist()
    (-1.0, [1, 1, 0, 0])
    """

    _parameter_constraints = {
        **_ThresholdAttack._parameter_constraints,
        "signal": [StrOptions(set(WHITE_BOX_SIGNALS))],
    }

    def __init__(self, signal="grad_w_l2", *, per_class=False, scoring="accuracy"):
        self.signal = signal
        self.per_class = per_class
        self.scoring = scoring

    def _score_columns(self, n_classes):
        return [self.signal]

    def _score(self, signals):
        return -signals[self.signal].to_numpy()
