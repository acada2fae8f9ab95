"""Model selection for membership inference: the target/shadow protocol, the bank of
reference models, scorers of attacks and of defenses."""

from ._reference import ReferenceModels
from ._scorers import (
    attack_accuracy_scorer,
    attack_auc_scorer,
    make_budget_refit,
    make_tpr_at_fpr_scorer,
)
from ._split import PROTOCOLS, MembershipPart, MembershipSplit, membership_split

__all__ = [
    "PROTOCOLS",
    "MembershipPart",
    "MembershipSplit",
    "ReferenceModels",
    "attack_accuracy_scorer",
    "attack_auc_scorer",
    "make_budget_refit",
    "make_tpr_at_fpr_scorer",
    "membership_split",
]

_MOVED_TO_AUDIT = frozenset({"PRIVACY_ATTACKS", "PRIVACY_METRICS", "make_privacy_scorer"})


def __getattr__(name):
    # the privacy scorers run attacks on models, so they live above both (no import of
    # skmia.audit here: model_selection sits below it)
    if name in _MOVED_TO_AUDIT:
        raise AttributeError(
            f"skmia.model_selection.{name} moved to skmia.audit.{name} (a privacy scorer "
            f"runs attacks on models, so it lives above both): "
            f"from skmia.audit import {name}"
        )
    raise AttributeError(f"module 'skmia.model_selection' has no attribute {name!r}")
