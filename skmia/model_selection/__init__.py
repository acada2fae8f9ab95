"""Model selection for membership inference: the target/shadow protocol, the bank of
reference models, scorers of attacks and of defenses."""

from ._reference import ReferenceModels
from ._scorers import (
    PRIVACY_ATTACKS,
    PRIVACY_METRICS,
    attack_accuracy_scorer,
    attack_auc_scorer,
    make_budget_refit,
    make_privacy_scorer,
    make_tpr_at_fpr_scorer,
)
from ._split import PROTOCOLS, MembershipPart, MembershipSplit, membership_split

__all__ = [
    "PRIVACY_ATTACKS",
    "PRIVACY_METRICS",
    "PROTOCOLS",
    "MembershipPart",
    "MembershipSplit",
    "ReferenceModels",
    "attack_accuracy_scorer",
    "attack_auc_scorer",
    "make_budget_refit",
    "make_privacy_scorer",
    "make_tpr_at_fpr_scorer",
    "membership_split",
]
