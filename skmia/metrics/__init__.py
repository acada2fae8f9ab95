"""Metrics of membership-inference attacks.

:func:`attack_accuracy` (the mean of TPR and TNR, as the RelaxLoss reference code
reports it), :func:`attack_auc` (threshold-free), :func:`tpr_at_fpr` (the true-positive
rate at a low false-positive rate, with a Clopper-Pearson interval) and
:func:`attack_roc_curve`. Everything here is numpy / scikit-learn only: importing it
does not import torch.
"""

from ._membership import TPRAtFPR, attack_accuracy, attack_auc, attack_roc_curve, tpr_at_fpr

__all__ = ["TPRAtFPR", "attack_accuracy", "attack_auc", "attack_roc_curve", "tpr_at_fpr"]
