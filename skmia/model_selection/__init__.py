"""Model selection for membership inference: the target/shadow protocol, the bank of
reference models, and scorers."""

from ._reference import ReferenceModels
from ._scorers import attack_accuracy_scorer, attack_auc_scorer, make_tpr_at_fpr_scorer
from ._split import PROTOCOLS, MembershipPart, MembershipSplit, membership_split

__all__ = [
    "PROTOCOLS",
    "MembershipPart",
    "MembershipSplit",
    "ReferenceModels",
    "attack_accuracy_scorer",
    "attack_auc_scorer",
    "make_tpr_at_fpr_scorer",
    "membership_split",
]
