"""Model selection for membership inference: the target/shadow protocol, and scorers."""

from ._scorers import attack_accuracy_scorer, attack_auc_scorer, make_tpr_at_fpr_scorer
from ._split import PROTOCOLS, MembershipPart, MembershipSplit, membership_split

__all__ = [
    "PROTOCOLS",
    "MembershipPart",
    "MembershipSplit",
    "attack_accuracy_scorer",
    "attack_auc_scorer",
    "make_tpr_at_fpr_scorer",
    "membership_split",
]
