"""Scorers for GridSearchCV and cross_validate of membership-inference attacks (fitted on
signals), and the budget ``refit`` of a privacy search. The scorers of defenses (how much a
fitted model leaks) run attacks on models, so they live above both, in
:mod:`skmia.audit` (:func:`skmia.audit.make_privacy_scorer`)."""

from numbers import Real

import numpy as np
from sklearn.metrics import make_scorer

from .._sklearn_compat import Interval, StrOptions, validate_params
from ..metrics import attack_accuracy, attack_auc, tpr_at_fpr

__all__ = [
    "attack_accuracy_scorer",
    "attack_auc_scorer",
    "make_budget_refit",
    "make_tpr_at_fpr_scorer",
]

_SCORES = ("decision_function", "predict_proba")

#: Scorer of the attack accuracy ``0.5 * (TPR + TNR)`` of ``predict``.
attack_accuracy_scorer = make_scorer(attack_accuracy)

#: Scorer of the threshold-free AUC of ``decision_function`` (else ``predict_proba``).
attack_auc_scorer = make_scorer(attack_auc, response_method=_SCORES)


def _tpr_at_fpr_value(y_true, score, *, max_fpr):
    return tpr_at_fpr(y_true, score, max_fpr=max_fpr).tpr


def make_tpr_at_fpr_scorer(max_fpr=0.01):
    """Scorer of an attack's true-positive rate at a false-positive rate <= ``max_fpr``.

    It scores a membership-inference *attack* fitted on signals (membership labels in
    ``y``); to score how much a *defense* leaks, use
    ``make_privacy_scorer(metric="tpr_at_fpr")``.

    Parameters
    ----------
    max_fpr : float, default=0.01
        Largest false-positive rate allowed, as a fraction. Every evaluation fold needs
        at least ``1 / max_fpr`` non-members (:func:`skmia.metrics.tpr_at_fpr` refuses
        fewer; ``cross_validate`` then reports NaN for that fold, with a warning).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y)``, reading ``decision_function`` (else
        ``predict_proba``); greater is better.

    See Also
    --------
    skmia.metrics.tpr_at_fpr : the metric, with its confidence interval.
    skmia.audit.make_privacy_scorer : the scorer of a defense.

    References
    ----------
    .. [1] N. Carlini, S. Chien, M. Nasr, S. Song, A. Terzis, F. Tramer. "Membership
       Inference Attacks From First Principles". IEEE S&P 2022. arXiv:2112.03570.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from sklearn.model_selection import cross_val_score
    >>> from skmia.attacks import LossAttack
    >>> from skmia.model_selection import make_tpr_at_fpr_scorer
    >>> rng = np.random.default_rng(0)
    >>> y = np.r_[np.ones(400, dtype=int), np.zeros(400, dtype=int)]
    >>> signals = pd.DataFrame({"loss": rng.exponential(np.where(y == 1, 0.1, 1.0)),
    ...                         "label": rng.integers(0, 2, 800)})
    >>> scores = cross_val_score(LossAttack(), signals, y, cv=2,
    ...                          scoring=make_tpr_at_fpr_scorer(max_fpr=0.01))
    >>> bool(scores.min() > 0.05)
    True
    """
    if not 0.0 < float(max_fpr) <= 1.0:
        raise ValueError(f"max_fpr must be in (0, 1], got {max_fpr!r}.")
    return make_scorer(_tpr_at_fpr_value, response_method=_SCORES, max_fpr=max_fpr)


@validate_params(
    {
        "budget": [Interval(Real, None, None, closed="neither")],
        "privacy": [str],
        "accuracy": [str],
        "if_none": [StrOptions({"raise", "most_private"})],
    },
    prefer_skip_nested_validation=True,
)
def make_budget_refit(budget, *, privacy="attack_auc", accuracy="accuracy", if_none="raise"):
    """A ``refit`` callable for ``GridSearchCV``: the most accurate candidate within a
    privacy budget.

    A candidate is *within the budget* when the mean over splits of its privacy score
    (``mean_test_<privacy>``, an attack's success such as
    :func:`skmia.audit.make_privacy_scorer`'s AUC: lower is more private) is at most ``budget``;
    NaN is never within. Among those, the highest ``mean_test_<accuracy>`` wins; ties
    go to the lower privacy score, then to the first candidate in ``cv_results_``.

    Parameters
    ----------
    budget : float
        The largest privacy score accepted (for an attack AUC, in ``[0.5, 1]``).
    privacy : str, default="attack_auc"
        The key of the privacy scorer in the search's ``scoring`` dict.
    accuracy : str, default="accuracy"
        The key of the utility scorer (greater is better).
    if_none : {"raise", "most_private"}, default="raise"
        When no candidate is within the budget: ``"raise"`` a ``ValueError`` that lists
        every candidate's scores (``GridSearchCV.fit`` then stops before it stores
        ``cv_results_``, hence the list), or refit the ``"most_private"`` candidate,
        the lowest privacy score (ties: the more accurate, then the first).

    Returns
    -------
    refit : callable
        ``refit(cv_results) -> int``, the index of the chosen candidate (picklable).

    See Also
    --------
    skmia.audit.make_privacy_scorer : the privacy scorer of a defense.

    References
    ----------
    .. [1] D. Chen, N. Yu, M. Fritz. "RelaxLoss: Defending Membership Inference Attacks
       without Losing Utility". ICLR 2022. arXiv:2207.05801 (a defense's setting chosen
       for utility at a given attack success).

    Examples
    --------
    >>> from skmia.model_selection import make_budget_refit
    >>> refit = make_budget_refit(0.6)
    >>> refit({"mean_test_attack_auc": [0.55, 0.58, 0.70],
    ...        "mean_test_accuracy": [0.60, 0.62, 0.66],
    ...        "params": [{"alpha": 2}, {"alpha": 1}, {"alpha": 0.5}]})
    1
    """
    return _BudgetRefit(budget, privacy, accuracy, if_none)


class _BudgetRefit:
    """The callable :func:`make_budget_refit` returns."""

    def __init__(self, budget, privacy, accuracy, if_none):
        self.budget = budget
        self.privacy = privacy
        self.accuracy = accuracy
        self.if_none = if_none

    def __repr__(self):
        return (f"make_budget_refit({self.budget!r}, privacy={self.privacy!r}, "
                f"accuracy={self.accuracy!r}, if_none={self.if_none!r})")

    def __call__(self, cv_results):
        privacy = self._column(cv_results, self.privacy)
        accuracy = self._column(cv_results, self.accuracy)
        index = np.arange(len(privacy))
        within = np.flatnonzero(np.isfinite(privacy) & (privacy <= self.budget))
        if within.size:
            accuracy = np.where(np.isfinite(accuracy), accuracy, -np.inf)
            order = np.lexsort((index[within], privacy[within], -accuracy[within]))
            return int(within[order[0]])
        finite = np.flatnonzero(np.isfinite(privacy))
        if self.if_none == "most_private" and finite.size:
            accuracy = np.where(np.isfinite(accuracy), accuracy, -np.inf)
            order = np.lexsort((index[finite], -accuracy[finite], privacy[finite]))
            return int(finite[order[0]])
        params = cv_results.get("params", [None] * len(privacy))
        rows = "; ".join(f"{p}: {self.privacy} {v:.4g}, {self.accuracy} {a:.4g}"
                         for p, v, a in zip(params, privacy, accuracy, strict=True))
        raise ValueError(
            f"no candidate keeps the mean {self.privacy} within the budget "
            f"{self.budget:g} ({rows}); raise the budget, or pass "
            f"if_none='most_private' to refit the most private candidate"
        )

    @staticmethod
    def _column(cv_results, name):
        key = f"mean_test_{name}"
        if key not in cv_results:
            raise ValueError(
                f"cv_results has no {key!r}: give the search a scorer named {name!r} "
                f"(scoring={{{name!r}: ...}}), or name yours in make_budget_refit"
            )
        return np.asarray(cv_results[key], dtype=float)
