"""QMIA: membership by a score above its predicted non-member quantile (Bertran et al.).

scikit-learn only: importing this module does not import torch.
"""

from numbers import Real

import numpy as np
from sklearn.base import clone
from sklearn.ensemble import HistGradientBoostingRegressor
from sklearn.utils import check_random_state

from .._sklearn_compat import HasMethods, Interval
from ._base import CALIBRATED_DOCS, FPR_CONSTRAINT, _CalibratedAttack
from ._signals import FEATURE, LABEL, SCORE, count_output_columns, output_columns

__all__ = ["QuantileAttack"]


@CALIBRATED_DOCS
class QuantileAttack(_CalibratedAttack):
    """QMIA: a quantile regressor predicts each record's non-member score; above it, a member.

    ``fit(population_signals)`` trains a regressor on population records only (never
    audited, so non-members) to predict, from a record's features and label, the
    ``1 - fpr`` quantile ``q(x, y)`` of the target model's ``score`` (the logit-scaled
    confidence φ) on a non-member like it. ``decision_function`` is ``score - q(x, y)``
    (less a held-out correction, see ``calibration_size``):
    a record is a member when its score exceeds the quantile that only a share ``fpr``
    of non-members like it exceed, so the rule ``decision_function >= 0`` (the default
    ``predict``) has a false-positive rate of about ``fpr`` on every kind of record. No
    reference model is trained.

    Parameters
    ----------
    fpr : float in (0, 1), default=0.05
        The false-positive rate ``α`` the attack aims at: the regressor learns the
        ``1 - fpr`` quantile.
    regressor : scikit-learn regressor or None, default=None
        The quantile regressor, cloned at ``fit``; its quantile is set to ``1 - fpr``
        (a ``quantile`` parameter, as :class:`~sklearn.ensemble.HistGradientBoostingRegressor`
        and :class:`~sklearn.linear_model.QuantileRegressor` have, or ``alpha`` of
        :class:`~sklearn.ensemble.GradientBoostingRegressor` with ``loss="quantile"``).
        None: ``HistGradientBoostingRegressor(loss="quantile", max_iter=200)``, gradient
        boosting on the pinball loss.
    calibration_size : float in [0, 1), default=0.25
        Share of the population held out from the regressor to correct its quantiles:
        the ``ceil((1 - fpr)(m + 1))``-th smallest residual ``score - q`` of the ``m``
        held-out records is subtracted from every decision, so that the rule flags about
        ``fpr`` of unseen non-members even where the regressor fits its own training
        records too closely (conformalized quantile regression). 0: the regressor's
        quantiles as they are (the paper's attack).
    random_state : int, RandomState instance or None, default=None
        Seeds the split of the population and the regressor (where it has a
        ``random_state``).
    %(scoring)s

    Attributes
    ----------
    regressor_ : regressor
        The fitted quantile regressor.
    offset_ : float
        The correction subtracted from ``score - q`` (0 with ``calibration_size=0``).
    n_record_features_ : int
        Number of ``feature_*`` columns (the record's own features) it reads.
    threshold_ : float
        ``predict`` flags ``decision_function >= threshold_``: 0 without labels at
        ``fit``; with labels, the threshold that maximises the attack accuracy on them.
    %(calibrated_attributes)s
    n_features_in_ : int
        Number of signal columns read (``score``, ``label``, ``feature_*``).
    feature_names_in_ : ndarray of str
        Their names.

    See Also
    --------
    PopulationAttack : one loss threshold for every record, set on the population.
    RMIAAttack : population records and reference models.

    Raises
    ------
    ValueError
        At ``fit``, when the held-out share holds fewer than ``1 / fpr - 1`` records
        (too few to place the ``1 - fpr`` quantile).

    Notes
    -----
    Threat model: a black-box adversary that sees the target's confidence on labelled
    records and holds population records of the same distribution, not used to train
    the target; it trains no reference model, only the regressor (on the target's
    answers on the population). It needs the records themselves as features:
    ``compute_signals(..., features=True)`` adds them as ``feature_0 ..
    feature_{d-1}`` (the record flattened). The label is a feature too.

    ``fit(signals, membership)`` (as in ``cross_validate``) trains the regressor on the
    non-members of the fit signals and chooses the threshold by accuracy.

    The paper regresses the hinge score ``z_y - max_{j != y} z_j`` with a network on
    the pinball loss (and a Gaussian parametrisation); here the score is the
    logit-scaled confidence (``z_y - logsumexp_{j != y} z_j``, a smooth hinge) and the
    regressor any scikit-learn quantile regressor, gradient boosting by default — the
    regressor LeakPro and SACRO-ML also offer for tabular data. Trees fitted on the
    pinball loss cover their own training records better than new ones (measured on
    synthetic data: 12-19 %% of held-out non-members above a fitted 90 %% quantile), which
    is what the held-out correction of ``calibration_size`` removes [2]_.

    References
    ----------
    .. [1] M. Bertran, S. Tang, M. Kearns, J. Morgenstern, A. Roth, Z. S. Wu. "Scalable
       Membership Inference Attacks via Quantile Regression". NeurIPS 2023.
       arXiv:2307.03694.
    .. [2] Y. Romano, E. Patterson, E. Candes. "Conformalized Quantile Regression".
       NeurIPS 2019. arXiv:1905.03222.

    Examples
    --------
    >>> import numpy as np, pandas as pd
    >>> from skmia.attacks import QuantileAttack
    >>> rng = np.random.default_rng(0)
    >>> x = rng.uniform(0, 4, 4000)          # a record's difficulty, its only feature
    >>> population = pd.DataFrame({"feature_0": x, "label": 0,
    ...                            "score": x + rng.standard_normal(4000)})
    >>> attack = QuantileAttack(fpr=0.1, random_state=0).fit(population.iloc[:2000])
    >>> held_out = population.iloc[2000:]
    >>> rate = attack.predict(held_out).mean()    # non-members flagged: about fpr
    >>> bool(abs(rate - 0.1) < 0.03)
    True
    """

    _parameter_constraints = {
        **_CalibratedAttack._parameter_constraints,
        "fpr": FPR_CONSTRAINT,
        "regressor": [HasMethods(["fit", "predict"]), None],
        "calibration_size": [Interval(Real, 0, 1, closed="left")],
        "random_state": ["random_state"],
    }

    def __init__(self, fpr=0.05, *, regressor=None, calibration_size=0.25,
                 random_state=None, scoring="accuracy"):
        self.fpr = fpr
        self.regressor = regressor
        self.calibration_size = calibration_size
        self.random_state = random_state
        self.scoring = scoring

    def _columns(self, n_classes):
        return [SCORE, LABEL, *output_columns(FEATURE, self.n_record_features_)]

    def _validate_signals(self, X, *, reset):
        if reset and hasattr(X, "columns"):
            self.n_record_features_ = count_output_columns(X.columns, FEATURE)
            if self.n_record_features_ == 0:
                raise ValueError(
                    f"X has no '{FEATURE}_*' columns, which QuantileAttack regresses on (the "
                    "records' own features); compute the signals with "
                    "skmia.attacks.compute_signals(..., features=True)."
                )
        return super()._validate_signals(X, reset=reset)

    def _make_regressor(self, seed):
        quantile = 1.0 - float(self.fpr)
        if self.regressor is None:
            return HistGradientBoostingRegressor(loss="quantile", quantile=quantile,
                                                 max_iter=200, random_state=seed)
        regressor = clone(self.regressor)
        params = regressor.get_params()
        if "quantile" in params:
            regressor.set_params(quantile=quantile)
        elif params.get("loss") == "quantile" and "alpha" in params:
            regressor.set_params(alpha=quantile)
        else:
            raise ValueError(
                f"regressor must be a quantile regressor (with a 'quantile' parameter, or "
                f"loss='quantile' and 'alpha'), got {type(self.regressor).__name__} with "
                f"loss={params.get('loss')!r}."
            )
        if "random_state" in params:
            regressor.set_params(random_state=seed)
        return regressor

    def _inputs(self, signals):
        columns = [LABEL, *output_columns(FEATURE, self.n_record_features_)]
        return signals[columns].to_numpy(dtype=np.float64)

    def _calibrate(self, signals, y):
        population = signals if y is None else signals.iloc[np.flatnonzero(y == 0)]
        rng = check_random_state(self.random_state)
        order = rng.permutation(len(population))
        n_held = int(round(float(self.calibration_size) * len(population)))
        fpr = float(self.fpr)
        rank = int(np.ceil((1.0 - fpr) * (n_held + 1)))  # of the held-out residuals
        if n_held and rank > n_held:
            raise ValueError(
                f"calibration_size={self.calibration_size} holds out {n_held} of "
                f"{len(population)} population records, too few to place the {1 - fpr:g} "
                f"quantile: at least {int(np.ceil(1 / fpr)) - 1} are needed."
            )
        fit_rows = population.iloc[order[n_held:]]
        self.regressor_ = self._make_regressor(rng.randint(np.iinfo(np.int32).max))
        self.regressor_.fit(self._inputs(fit_rows), fit_rows[SCORE].to_numpy(dtype=np.float64))
        self.offset_ = 0.0
        if n_held:
            residuals = self._residuals(population.iloc[order[:n_held]])
            self.offset_ = float(np.sort(residuals)[rank - 1])

    def _residuals(self, signals):
        quantile = np.asarray(self.regressor_.predict(self._inputs(signals)), dtype=np.float64)
        return signals[SCORE].to_numpy(dtype=np.float64) - quantile

    def _decision(self, signals, *, fitting=False):
        return self._residuals(signals) - self.offset_

    def _default_threshold(self):
        return 0.0
