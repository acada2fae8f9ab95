"""Metrics of membership-inference attacks.

:func:`attack_accuracy` (the mean of TPR and TNR, as the RelaxLoss reference code
reports it), :func:`attack_auc` (threshold-free), :func:`tpr_at_fpr` (the true-positive
rate at a low false-positive rate, with a Clopper-Pearson interval),
:func:`attack_roc_curve` and :func:`empirical_epsilon` (the lower bound on the ε of
differential privacy that an attack's error rates imply). Everything here is numpy /
scikit-learn only: importing it does not import torch.
"""

from ._membership import (
    TPRAtFPR,
    attack_accuracy,
    attack_auc,
    attack_roc_curve,
    empirical_epsilon,
    tpr_at_fpr,
)

__all__ = [
    "TPRAtFPR",
    "attack_accuracy",
    "attack_auc",
    "attack_roc_curve",
    "empirical_epsilon",
    "tpr_at_fpr",
]
