"""Scorers of membership-inference attacks for GridSearchCV and cross_validate."""

from sklearn.metrics import make_scorer

from ..metrics import attack_accuracy, attack_auc, tpr_at_fpr

__all__ = ["attack_accuracy_scorer", "attack_auc_scorer", "make_tpr_at_fpr_scorer"]

_SCORES = ("decision_function", "predict_proba")

#: Scorer of the attack accuracy ``0.5 * (TPR + TNR)`` of ``predict``.
attack_accuracy_scorer = make_scorer(attack_accuracy)

#: Scorer of the threshold-free AUC of ``decision_function`` (else ``predict_proba``).
attack_auc_scorer = make_scorer(attack_auc, response_method=_SCORES)


def _tpr_at_fpr_value(y_true, score, *, max_fpr):
    return tpr_at_fpr(y_true, score, max_fpr=max_fpr).tpr


def make_tpr_at_fpr_scorer(max_fpr=0.01):
    """Scorer of an attack's true-positive rate at a false-positive rate <= ``max_fpr``.

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
