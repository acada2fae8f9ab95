"""Privacy scorers: how much a fitted model leaks about the rows it was fitted on, as a
``scoring=`` for ``GridSearchCV`` and ``cross_validate``.

They live in ``audit``, above both the attacks they run and the models they score (DESIGN
§1): ``model_selection`` keeps the scorers of attacks fitted on signals and
:func:`~skmia.model_selection.make_budget_refit`, which need neither.
"""

from numbers import Real

import numpy as np
from sklearn.base import clone
from sklearn.pipeline import Pipeline
from sklearn.utils import check_random_state

from .._sklearn_compat import HasMethods, Interval, StrOptions, validate_params
from ..metrics import attack_accuracy, attack_auc, tpr_at_fpr

__all__ = ["PRIVACY_ATTACKS", "PRIVACY_METRICS", "make_privacy_scorer"]

#: The attacks a privacy scorer runs by name: threshold attacks on black-box signals.
PRIVACY_ATTACKS = ("loss", "confidence", "entropy", "modified_entropy")
#: What a privacy scorer measures of the attack (attack success: lower is more private).
PRIVACY_METRICS = ("auc", "tpr_at_fpr", "accuracy")


@validate_params(
    {
        "attack": [StrOptions(set(PRIVACY_ATTACKS)), HasMethods(["fit", "decision_function"])],
        "metric": [StrOptions(set(PRIVACY_METRICS))],
        "max_fpr": [Interval(Real, 0, 1, closed="right")],
        "fit_fraction": [Interval(Real, 0, 1, closed="neither")],
        "white_box": ["boolean"],
        "random_state": ["random_state"],
        "data": [tuple, None],
    },
    prefer_skip_nested_validation=True,
)
def make_privacy_scorer(attack="loss", *, metric="auc", max_fpr=0.01, fit_fraction=0.5,
                        white_box=False, random_state=0, data=None):
    """Scorer of how much a fitted model leaks about the rows it was fitted on.

    For ``GridSearchCV`` and ``cross_validate`` with any splitter (``KFold``,
    ``StratifiedKFold``, ...): within each split, the **non-members** are the split's
    held-out rows, the ``X, y`` the scorer is called with, and the **members** are the
    rows the estimator was fitted on:

    - with ``data=(X, y)``, the ``X, y`` given to the search: the rows of ``data`` that
      are not in the split's held-out part (for a splitter that partitions the rows,
      as ``KFold`` does, exactly the rows the split fitted on). This works for any
      classifier and any ``Pipeline`` (scikit-learn's ``MLPClassifier``,
      ``make_pipeline(StandardScaler(), LabelSmoothingClassifier())``), scored through
      its ``predict_proba`` or ``decision_function``;
    - without, the rows a skmia defense recorded at fit
      (:meth:`~skmia.defenses.MIADefenseClassifier.training_rows`).

    The attack then runs by this rule:

    1. the signals of both (:func:`skmia.attacks.membership_signals`);
    2. ``fit_fraction`` of the members and the same fraction of the non-members, drawn
       with ``random_state``, fit the attack (its thresholds);
    3. the other rows score it: ``metric`` of the attack on them.

    With an int ``random_state`` every candidate of a search is scored on the same
    halves of a split, so candidates differ by their models only.

    Parameters
    ----------
    attack : {"loss", "confidence", "entropy", "modified_entropy"} or estimator, \
default="loss"
        The attack: a threshold attack by name (per-class thresholds, as the reference
        code), or an unfitted membership-inference attack such as
        :class:`~skmia.attacks.NNAttack` (cloned at each call).
    metric : {"auc", "tpr_at_fpr", "accuracy"}, default="auc"
        The attack's AUC, its true-positive rate at a false-positive rate <= ``max_fpr``
        (:func:`skmia.metrics.tpr_at_fpr`; NaN where ties leave the rate unresolved;
        the scoring part needs at least ``1 / max_fpr`` non-members, else the scorer
        raises and that split scores NaN with scikit-learn's warning), or its accuracy
        ``0.5 * (TPR + TNR)`` with the fitted thresholds.
    max_fpr : float in (0, 1], default=0.01
        The false-positive rate of ``metric="tpr_at_fpr"``.
    fit_fraction : float in (0, 1), default=0.5
        Share of the members, and of the non-members, that fit the attack.
    white_box : bool, default=False
        Compute gradient norms too (for :class:`~skmia.attacks.GradientNormAttack`).
    random_state : int, RandomState instance or None, default=0
        Draws the fitting part.
    data : tuple (X, y) or None, default=None
        The rows the search or ``cross_validate`` is given, as given (the same ``X`` and
        ``y`` objects, or equal arrays). A held-out row is recognised by its bytes and
        label: a row of ``data`` equal to a held-out one (a duplicate) is left out of
        the members too. None: the estimator must be a skmia defense (or a
        ``Pipeline`` ending in one whose earlier steps return their input unchanged).

    Returns
    -------
    scorer : callable
        ``scorer(estimator, X, y) -> float`` for a fitted model: any classifier with
        ``data``, else a skmia defense (or a ``Pipeline`` whose earlier steps return
        their input unchanged: the rows a defense was fitted on are known only while
        the arrays given to its ``fit`` are alive, and a transformer's output is freed
        once ``fit`` returns). The value is the attack's success:
        **lower is more private**, so do not pass it alone as ``refit``; pair it with
        accuracy and :func:`make_budget_refit`.

    Raises
    ------
    TypeError
        At scoring, without ``data``, for a model that does not record its training
        rows (the message names ``data=``).
    ValueError
        At scoring, when the training rows are no longer available (see
        ``training_rows``), when the rows scored are the training rows themselves
        (``return_train_score=True`` has no meaning here; with ``data``, refused when
        the scored rows are more than half of ``data``), or when a scored row is not in
        ``data``.

    See Also
    --------
    make_budget_refit : choose the most accurate candidate within a privacy budget.
    make_tpr_at_fpr_scorer : a scorer of *attacks* (fitted on signals), not defenses.

    Notes
    -----
    Threat model: the auditor's view -- a black-box adversary (white-box with
    ``white_box=True``) who sees the model's outputs on labelled records and knows the
    membership of part of them, the fitting part. Members and non-members come from the
    same distribution because the splitter drew them from the same rows. In k-fold the
    members outnumber the non-members ``k - 1`` to 1; AUC, TPR at FPR and the attack
    accuracy ``0.5 * (TPR + TNR)`` do not depend on that ratio.

    References
    ----------
    .. [1] D. Chen, N. Yu, M. Fritz. "RelaxLoss: Defending Membership Inference Attacks
       without Losing Utility". ICLR 2022. arXiv:2207.05801.
    .. [2] N. Carlini, S. Chien, M. Nasr, S. Song, A. Terzis, F. Tramer. "Membership
       Inference Attacks From First Principles". IEEE S&P 2022. arXiv:2112.03570.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from sklearn.model_selection import KFold, cross_validate
    >>> from skmia.defenses import VanillaClassifier
    >>> from skmia.audit import make_privacy_scorer
    >>> X, y = make_classification(300, n_features=20, n_informative=10, n_classes=3,
    ...                            random_state=0)
    >>> clf = VanillaClassifier(max_epochs=3, module__hidden_sizes=(32,), random_state=0)
    >>> scores = cross_validate(clf, X, y, cv=KFold(3, shuffle=True, random_state=0),
    ...                         scoring={"accuracy": "accuracy",
    ...                                  "attack_auc": make_privacy_scorer("loss")})
    >>> scores["test_attack_auc"].shape
    (3,)

    Any scikit-learn classifier, given the searched rows:

    >>> from sklearn.model_selection import GridSearchCV
    >>> from sklearn.neural_network import MLPClassifier
    >>> search = GridSearchCV(MLPClassifier(max_iter=50, random_state=0),
    ...                       {"alpha": [1e-4, 1.0]}, cv=KFold(3),
    ...                       scoring=make_privacy_scorer("loss", data=(X, y)))
    >>> search.fit(X, y).cv_results_["mean_test_score"].shape
    (2,)
    """
    if data is not None and len(data) != 2:
        raise ValueError(f"data must be the pair (X, y) the search is given; got a tuple "
                         f"of {len(data)}")
    return _PrivacyScorer(attack, metric, max_fpr, fit_fraction, white_box, random_state,
                          data)


class _PrivacyScorer:
    """The callable :func:`make_privacy_scorer` returns."""

    def __init__(self, attack, metric, max_fpr, fit_fraction, white_box, random_state,
                 data=None):
        self.data = data
        self.attack = attack
        self.metric = metric
        self.max_fpr = max_fpr
        self.fit_fraction = fit_fraction
        self.white_box = white_box
        self.random_state = random_state

    def __repr__(self):
        attack = self.attack if isinstance(self.attack, str) else type(self.attack).__name__
        fpr = f", max_fpr={self.max_fpr}" if self.metric == "tpr_at_fpr" else ""
        return f"make_privacy_scorer({attack!r}, metric={self.metric!r}{fpr})"

    def __call__(self, estimator, X, y):
        from ..attacks import membership_signals

        if self.data is not None:
            model, members = estimator, _rows_outside(self.data, X, y)
        else:
            model, X, members = self._recorded_members(estimator, X, y)
        signals, membership = membership_signals(model, members, (X, y),
                                                 white_box=self.white_box)
        fit = _fitting_part(membership, self.fit_fraction, self.random_state)
        attack = clone(self._attack()).fit(signals[fit], membership[fit])
        held, truth = signals[~fit], membership[~fit]
        if self.metric == "accuracy":
            return attack_accuracy(truth, attack.predict(held))
        score = attack.decision_function(held)
        if self.metric == "auc":
            return attack_auc(truth, score)
        result = tpr_at_fpr(truth, score, max_fpr=self.max_fpr)
        return result.tpr if result.resolved else float("nan")

    @staticmethod
    def _recorded_members(estimator, X, y):
        """The final defense, ``X`` as it sees it, and the rows it recorded at fit."""
        model, X = _final_defense(estimator, X)
        try:
            members = model.training_rows()
        except ValueError as exc:
            if model is estimator:
                raise
            raise ValueError(
                f"{exc}. In a Pipeline, the defense was fitted on the rows its earlier "
                f"steps returned, which nothing keeps once fit returns: preprocess "
                f"outside the search, or use steps that return their input unchanged"
            ) from exc
        _refuse_training_rows(model, X, y)
        return model, X, members

    def _attack(self):
        if not isinstance(self.attack, str):
            return self.attack
        from .. import attacks

        return {"loss": attacks.LossAttack, "confidence": attacks.ConfidenceAttack,
                "entropy": attacks.EntropyAttack,
                "modified_entropy": attacks.ModifiedEntropyAttack}[self.attack]()


def _row_keys(X, y):
    """One hashable key per row: its values' bytes and its label."""
    X = np.ascontiguousarray(np.asarray(X))
    flat = X.reshape(len(X), -1)
    return [(row.tobytes(), label) for row, label in zip(flat, np.asarray(y).tolist(),
                                                          strict=True)]


def _rows_outside(data, X, y):
    """The rows of ``data`` (an ``(X, y)`` pair) that are not among the rows ``X, y``."""
    X_all, y_all = data
    X_all, y_all = np.asarray(X_all), np.asarray(y_all)
    X_held = np.asarray(X, dtype=X_all.dtype)
    if len(X_held) > len(X_all) / 2:
        raise ValueError(
            f"a privacy scorer scores a split's held-out rows, here {len(X_held)} of the "
            f"{len(X_all)} rows of data: these look like the training rows "
            f"(return_train_score=True has no meaning here)"
        )
    held = set(_row_keys(X_held, y))
    keys = _row_keys(X_all, y_all)
    outside = np.array([key not in held for key in keys], dtype=bool)
    if len(held - set(keys)):
        raise ValueError(
            f"{len(held - set(keys))} of the rows scored are not rows of the data given "
            f"to make_privacy_scorer(data=...): pass the X, y the search is fitted on"
        )
    return X_all[outside], y_all[outside]


def _final_defense(estimator, X):
    """The fitted defense that ``estimator`` is or ends with, and ``X`` as it sees it."""
    if isinstance(estimator, Pipeline):
        if len(estimator) > 1:
            X = estimator[:-1].transform(X)
        estimator = estimator[-1]
    if not callable(getattr(estimator, "training_rows", None)):
        raise TypeError(
            f"without data=, a privacy scorer scores a fitted skmia defense (or a "
            f"Pipeline ending in one), which records the rows it was fitted on; got "
            f"{type(estimator).__name__}. For any other model pass the searched rows: "
            f"make_privacy_scorer(..., data=(X, y))"
        )
    return estimator, X


def _refuse_training_rows(model, X, y):
    """A ValueError when the rows scored are exactly the rows ``model`` trained on."""
    # the digest a defense keeps of its training rows (not public: it identifies them)
    from ..defenses._training_rows import rows_digest

    if len(y) != len(getattr(model, "train_indices_", ())):
        return
    X, _, y_encoded = model._validated_rows(X, y)
    if rows_digest(X, y_encoded) == getattr(model, "train_digest_", None):
        raise ValueError(
            "a privacy scorer was given the rows the model was trained on as non-members "
            "(return_train_score=True?): it scores a split's held-out rows"
        )


def _fitting_part(membership, fit_fraction, random_state):
    """Mask of the rows fitting the attack: ``fit_fraction`` of each membership class
    (at least one, and one left to score), drawn with ``random_state``."""
    rng = check_random_state(random_state)
    fit = np.zeros(len(membership), dtype=bool)
    for value, name in ((1, "members"), (0, "non-members")):
        rows = np.flatnonzero(membership == value)
        if len(rows) < 2:
            raise ValueError(
                f"a privacy scorer needs at least 2 {name} (one to fit the attack, one "
                f"to score it), got {len(rows)}"
            )
        n_fit = min(max(int(round(fit_fraction * len(rows))), 1), len(rows) - 1)
        fit[rng.permutation(rows)[:n_fit]] = True
    return fit
