"""Attack-P: one loss threshold for every record, set on population records.

numpy only: importing this module does not import torch.
"""

import numpy as np

from ._base import CALIBRATED_DOCS, FPR_CONSTRAINT, _CalibratedAttack
from ._signals import LOSS

__all__ = ["PopulationAttack"]


@CALIBRATED_DOCS
class PopulationAttack(_CalibratedAttack):
    """Attack-P: membership by a target loss below a quantile of the population's losses.

    ``fit(population_signals)`` reads the target model's losses on population records
    (never audited, so non-members: the split's ``reference`` part) and sets the
    threshold that flags a fraction ``fpr`` of them; a record is a member iff its loss is
    at most that threshold. ``decision_function`` is ``-loss``.

    Parameters
    ----------
    fpr : float in (0, 1), default=0.05
        The false-positive rate on the population that ``predict`` aims at after ``fit``
        without labels.
    %(scoring)s

    Attributes
    ----------
    threshold_ : float
        ``predict`` flags ``decision_function >= threshold_``, i.e. ``loss <= -threshold_``.
        Without labels at ``fit``: minus the ``k``-th smallest population loss,
        ``k = floor(fpr * n_population)``, so that ``k`` population records are flagged
        (more only where losses tie). With labels: the threshold that maximises the attack
        accuracy on them.
    %(calibrated_attributes)s
    n_features_in_ : int
        Number of signal columns read (1: ``loss``).
    feature_names_in_ : ndarray of str
        Their names.

    Raises
    ------
    ValueError
        At ``fit`` without labels, when ``fpr * n_population < 1``: no population record
        could be flagged, and the rate cannot be measured.

    See Also
    --------
    ReferenceAttack : Attack-R, a threshold per record from reference models.
    LossAttack : the same score with thresholds chosen on a shadow model's members.

    Notes
    -----
    Threat model: a black-box adversary that sees the target's loss on labelled records
    and holds population records of the same distribution, not used to train the target;
    it trains no model. Its decision is the loss attack's score; only the threshold
    differs, set from non-members alone, which is why it needs no shadow model and why
    it controls the false-positive rate (on the population, so on the audited
    non-members when they are of the same distribution) rather than the accuracy.

    References
    ----------
    .. [1] J. Ye, A. Maddi, S. K. Murakonda, V. Bindschaedler, R. Shokri. "Enhanced
       Membership Inference Attacks against Machine Learning Models". ACM CCS 2022.
       arXiv:2111.09679.

    Examples
    --------
    >>> import pandas as pd
    >>> from skmia.attacks import PopulationAttack
    >>> population = pd.DataFrame({"loss": [0.5, 0.9, 1.2, 2.0, 0.7, 1.5, 3.0, 0.8, 1.1, 2.5]})
    >>> attack = PopulationAttack(fpr=0.2).fit(population)   # flags 2 of 10
    >>> attack.threshold_
    -0.7
    >>> attack.predict(pd.DataFrame({"loss": [0.1, 0.7, 1.0]})).tolist()
    [1, 1, 0]
    """

    _parameter_constraints = {
        **_CalibratedAttack._parameter_constraints,
        "fpr": FPR_CONSTRAINT,
    }

    def __init__(self, fpr=0.05, *, scoring="accuracy"):
        self.fpr = fpr
        self.scoring = scoring

    def _columns(self, n_classes):
        return [LOSS]

    def _calibrate(self, signals, y):
        if y is not None:
            return
        loss = np.sort(signals[LOSS].to_numpy(dtype=np.float64))
        k = int(np.floor(float(self.fpr) * len(loss) * (1 + 1e-9)))
        if k < 1:
            raise ValueError(
                f"fpr={self.fpr} is below 1/n_population = 1/{len(loss)}: no population "
                f"record can be flagged. Fit on at least {int(np.ceil(1 / self.fpr))} "
                "population records."
            )
        self._population_threshold = -loss[k - 1]

    def _decision(self, signals, *, fitting=False):
        return -signals[LOSS].to_numpy(dtype=np.float64)

    def _default_threshold(self):
        return self._population_threshold
