"""Model selection for membership inference: the target/shadow protocol, the bank of
reference models, scorers of attacks and of defenses.

The bank's facts have one owner here, public for ``skmia.audit`` and
``skmia.experiment``: its draws (:func:`mask_block`, :func:`base_seed`,
:func:`bank_draws`, :func:`balanced_masks`, :func:`model_seeds`), its pool's digest
(:func:`pool_digest`), whether a saved bank is the one its seed gives
(:func:`check_bank_draws`), which models a Ctrl-C cut short (:func:`unfinished_models`),
its memory (:func:`bank_bytes`, :func:`check_bank_memory`), and how a block of models is
fitted, batched or not (:func:`batching_refusal`, :func:`fit_models`, :func:`fit_model`).
"""

from ._batching import batching_refusal
from ._draws import (
    balanced_masks,
    bank_draws,
    base_seed,
    check_bank_draws,
    mask_block,
    model_seeds,
    pool_digest,
    unfinished_models,
)
from ._memory import bank_bytes, check_bank_memory
from ._reference_models import ReferenceModels, fit_model, fit_models
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
    "balanced_masks",
    "bank_bytes",
    "bank_draws",
    "base_seed",
    "batching_refusal",
    "check_bank_draws",
    "check_bank_memory",
    "fit_model",
    "fit_models",
    "mask_block",
    "model_seeds",
    "pool_digest",
    "unfinished_models",
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
