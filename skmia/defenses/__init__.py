"""Defenses: skorch classifiers trained to leak less about their training rows.

Every class is a :class:`skorch.NeuralNetClassifier` with the RelaxLoss reference code's
optimisation defaults, the paper's MLP as default network, and scikit-learn's
estimator contract (``fit`` / ``predict_proba`` / ``classes_``, ``clone``,
``GridSearchCV``). :func:`paper_defaults` gives the paper's settings per dataset.
"""

from ._advreg import AdvRegClassifier
from ._base import MIADefenseClassifier, ValidationData, VanillaClassifier
from ._distillation import DistillationClassifier
from ._dpsgd import DPSGDClassifier, WeakPrivacyWarning
from ._early_stopping import EarlyStoppingClassifier
from ._hamp import HAMPClassifier
from ._memguard import MemGuardClassifier
from ._presets import METHODS, paper_defaults
from ._regularizers import ConfidencePenaltyClassifier, DropoutClassifier, LabelSmoothingClassifier
from ._relaxloss import RelaxLossClassifier
from ._selena import SELENAClassifier

__all__ = [
    "METHODS",
    "AdvRegClassifier",
    "DPSGDClassifier",
    "WeakPrivacyWarning",
    "ConfidencePenaltyClassifier",
    "DistillationClassifier",
    "DropoutClassifier",
    "EarlyStoppingClassifier",
    "HAMPClassifier",
    "LabelSmoothingClassifier",
    "MemGuardClassifier",
    "MIADefenseClassifier",
    "RelaxLossClassifier",
    "SELENAClassifier",
    "ValidationData",
    "VanillaClassifier",
    "paper_defaults",
]
