"""Label-only membership inference: robustness of the predicted label to perturbations.

:func:`~skmia.attacks.label_only_signals` (in ``_perturb``) queries any ``predict`` on
perturbed copies of each record; :class:`LabelOnlyAttack` reads the result. numpy only:
importing this module does not import torch.
"""

import numpy as np
import pandas as pd

from ._base import _CalibratedAttack
from ._perturb import label_only_signals
from ._signals import LABEL_ONLY, count_output_columns, output_columns

__all__ = ["LabelOnlyAttack", "label_only_signals"]


class LabelOnlyAttack(_CalibratedAttack):
    """Membership by robustness of the predicted label: the fraction of copies still right.

    Reads the ``label_only_0 .. label_only_{Q-1}`` columns (see
    :func:`label_only_signals`): ``decision_function`` is the fraction of a record's
    ``Q`` perturbed copies that the model still classifies correctly.

    Parameters
    ----------
    scoring : {"accuracy", "roc_auc"}, default="accuracy"
        What :meth:`score` returns: the attack accuracy ``0.5 * (TPR + TNR)`` of
        ``predict``, or the AUC of ``decision_function``.

    Attributes
    ----------
    threshold_ : float
        ``predict`` flags ``decision_function >= threshold_``: with labels at ``fit`` (a
        shadow model's members and non-members, as in the paper), the threshold that
        maximises the attack accuracy on them; without, 0.5 (most copies still right).
    supervised_ : bool
        Whether ``fit`` had membership labels.
    n_queries_ : int
        Number ``Q`` of perturbed copies per record.
    scale_ : float
        Standard deviation of the fit decisions, the scale of ``predict_proba``.
    n_model_classes_ : int or None
        Number of classes of the target model (from ``proba_*`` / ``logit_*``), if any.
    classes_ : ndarray of shape (2,)
        ``[0, 1]``: non-member, member.
    n_features_in_ : int
        Number of signal columns read (``Q``).
    feature_names_in_ : ndarray of str
        Their names.

    See Also
    --------
    label_only_signals : the signals it reads.

    Notes
    -----
    Threat model: an adversary that only sees the predicted label of the records it
    queries (and of perturbed copies of them) — the weakest interface a model can have;
    a defense that only alters confidences (e.g. output rounding, MemGuard) does not
    hide this signal. The paper thresholds the score on a shadow model; the default
    without labels is a plain majority rule.

    References
    ----------
    .. [1] C. A. Choquette-Choo, F. Tramer, N. Carlini, N. Papernot. "Label-Only
       Membership Inference Attacks". ICML 2021. arXiv:2007.14321.

    Examples
    --------
    >>> import pandas as pd
    >>> from skmia.attacks import LabelOnlyAttack
    >>> signals = pd.DataFrame({"label_only_0": [1, 1, 0], "label_only_1": [1, 0, 0],
    ...                         "label_only_2": [1, 1, 1]})
    >>> attack = LabelOnlyAttack().fit(signals)
    >>> attack.decision_function(signals).round(3).tolist()
    [1.0, 0.667, 0.333]
    >>> attack.predict(signals).tolist()
    [1, 1, 0]
    """

    def __init__(self, *, scoring="accuracy"):
        self.scoring = scoring

    def _columns(self, n_classes):
        return output_columns(LABEL_ONLY, self.n_queries_)

    def _validate_signals(self, X, *, reset):
        if isinstance(X, pd.DataFrame):
            n_queries = count_output_columns(X.columns, LABEL_ONLY)
            if n_queries == 0:
                raise ValueError(
                    f"X has no '{LABEL_ONLY}_*' columns, which LabelOnlyAttack reads; compute "
                    "the signals with skmia.attacks.compute_signals(..., label_only=True) or "
                    "skmia.attacks.label_only_signals."
                )
            if reset:
                self.n_queries_ = n_queries
            elif n_queries != self.n_queries_:
                raise ValueError(
                    f"X holds {n_queries} label-only queries per record, but LabelOnlyAttack "
                    f"was fitted on {self.n_queries_}."
                )
        return super()._validate_signals(X, reset=reset)

    def _calibrate(self, signals, y):
        pass

    def _decision(self, signals, *, fitting=False):
        values = signals.to_numpy(dtype=np.float64)
        bad = (values != 0) & (values != 1)
        if bad.any():
            raise ValueError(
                f"The '{LABEL_ONLY}_*' columns must hold 0 or 1 (copy misclassified or still "
                f"right), got {np.unique(values[bad])[:5].tolist()}."
            )
        return values.mean(axis=1)

    def _default_threshold(self):
        return 0.5
