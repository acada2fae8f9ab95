"""Metrics of membership-inference attacks.

:func:`attack_accuracy` (the mean of TPR and TNR, as the RelaxLoss reference code
reports it), :func:`attack_auc` (threshold-free), :func:`tpr_at_fpr` (the true-positive
rate at a low false-positive rate, with a Clopper-Pearson interval),
:func:`attack_roc_curve`, :func:`epsilon_lower_bound` (a lower bound on the ε of
differential privacy with a theorem behind it, four methods, returned as an
:class:`EpsilonBound`), :func:`max_epsilon_lower_bound` (the most a number of records
can show) and :func:`empirical_epsilon` (the clopper_pearson bound as a float).
Everything here is numpy / scipy / scikit-learn only: importing it does not import torch.
The ε bounds' module is imported on first use (PEP 562), and scikit-learn only by the
functions that need it: reading an audit's rates (``skmia report``) stays light.
"""

from .._lazy import lazy_names
from ._membership import (
    TPRAtFPR,
    attack_accuracy,
    attack_auc,
    attack_roc_curve,
    empirical_epsilon,
    tpr_at_fpr,
)

#: the names of the ε bounds' module, imported when first asked for
_LAZY = {"EpsilonBound": "_epsilon", "epsilon_lower_bound": "_epsilon",
         "max_epsilon_lower_bound": "_epsilon"}

__all__ = [
    "EpsilonBound",
    "TPRAtFPR",
    "attack_accuracy",
    "attack_auc",
    "attack_roc_curve",
    "empirical_epsilon",
    "epsilon_lower_bound",
    "max_epsilon_lower_bound",
    "tpr_at_fpr",
]


__getattr__, __dir__ = lazy_names(__name__, _LAZY)
