"""Membership-inference attacks: signals of a trained model, and estimators that read them.

:func:`compute_signals` queries a model on labelled records and returns one row of
signals per record (logits, probabilities, label, loss and, white-box, gradient norms).
The attack estimators are scikit-learn binary classifiers of membership on those
signals (1 = member): :class:`NNAttack`, :class:`ConfidenceAttack`,
:class:`LossAttack`, :class:`EntropyAttack`, :class:`ModifiedEntropyAttack` and
:class:`GradientNormAttack`, all :class:`MembershipInferenceAttack`\\ s.
:func:`run_attacks` runs them all in the reference code's target/shadow protocol.

The threshold attacks and the metrics do not need torch; :func:`compute_signals`
imports it when called.
"""

from ._audit import default_attacks, evaluate_attacks, membership_signals, run_attacks
from ._base import MembershipInferenceAttack
from ._nn import NNAttack
from ._signals import WHITE_BOX_SIGNALS, compute_signals
from ._threshold import (
    ConfidenceAttack,
    EntropyAttack,
    GradientNormAttack,
    LossAttack,
    ModifiedEntropyAttack,
)

__all__ = [
    "WHITE_BOX_SIGNALS",
    "ConfidenceAttack",
    "EntropyAttack",
    "GradientNormAttack",
    "LossAttack",
    "MembershipInferenceAttack",
    "ModifiedEntropyAttack",
    "NNAttack",
    "compute_signals",
    "default_attacks",
    "evaluate_attacks",
    "membership_signals",
    "run_attacks",
]
