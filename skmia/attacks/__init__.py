"""Membership-inference attacks: signals of a trained model, and estimators that read them.

:func:`compute_signals` queries a model on labelled records and returns one row of
signals per record (logits, probabilities, label, loss and, white-box, gradient norms).
The attack estimators are scikit-learn binary classifiers of membership on those
signals (1 = member): :class:`NNAttack`, :class:`ConfidenceAttack`,
:class:`LossAttack`, :class:`EntropyAttack`, :class:`ModifiedEntropyAttack` and
:class:`GradientNormAttack`, all :class:`MembershipInferenceAttack`\\ s.
:func:`run_attacks` runs them all in the reference code's target/shadow protocol.

Attacks calibrated by reference models (a bank of models trained like the target) read
the ``ref_*`` columns: :class:`LiRAAttack`, :class:`RMIAAttack` and
:class:`ReferenceAttack` (Attack-R); :class:`PopulationAttack` (Attack-P) and
:class:`QuantileAttack` (QMIA) calibrate on population records alone;
:class:`LabelOnlyAttack` reads the labels of perturbed copies (:func:`label_only_signals`).
Their ``fit`` also works without membership labels. :func:`augmented_views` names the
views of an augmented query (``compute_signals(..., augment=...)``).

The threshold attacks and the metrics do not need torch; :func:`compute_signals`
imports it when called.
"""

from ._augment import AUGMENTS, augmented_views
from ._base import MembershipInferenceAttack
from ._label_only import LabelOnlyAttack
from ._lira import LiRAAttack
from ._nn import NNAttack
from ._perturb import label_only_signals
from ._population import PopulationAttack
from ._quantile import QuantileAttack
from ._reference_attack import ReferenceAttack
from ._rmia import RMIAAttack
from ._run_attacks import (
    CALIBRATED_ATTACKS,
    CLI_RMIA,
    PLAIN_RMIA,
    calibrated_attacks,
    default_attacks,
    evaluate_attacks,
    evaluate_calibrated_attacks,
    evaluate_fitted_attacks,
    membership_signals,
    run_attacks,
    signal_options,
)
from ._signals import WHITE_BOX_SIGNALS, compute_signals
from ._threshold import (
    ConfidenceAttack,
    EntropyAttack,
    GradientNormAttack,
    LossAttack,
    ModifiedEntropyAttack,
)

__all__ = [
    "AUGMENTS",
    "CALIBRATED_ATTACKS",
    "CLI_RMIA",
    "PLAIN_RMIA",
    "WHITE_BOX_SIGNALS",
    "ConfidenceAttack",
    "EntropyAttack",
    "GradientNormAttack",
    "LabelOnlyAttack",
    "LiRAAttack",
    "LossAttack",
    "MembershipInferenceAttack",
    "ModifiedEntropyAttack",
    "NNAttack",
    "PopulationAttack",
    "QuantileAttack",
    "RMIAAttack",
    "ReferenceAttack",
    "augmented_views",
    "calibrated_attacks",
    "compute_signals",
    "default_attacks",
    "evaluate_attacks",
    "evaluate_calibrated_attacks",
    "evaluate_fitted_attacks",
    "label_only_signals",
    "membership_signals",
    "run_attacks",
    "signal_options",
]
