"""run_attacks: the reference code's run_attacks.py in one call."""

import numpy as np
import pandas as pd
from sklearn.base import clone

from .. import _registry
from .._rundir import ATTACK_TABLE_COLUMNS
from ._label_only import LabelOnlyAttack
from ._lira import LiRAAttack
from ._nn import NNAttack
from ._population import PopulationAttack
from ._quantile import QuantileAttack
from ._reference_attack import ReferenceAttack
from ._rmia import CLI_RMIA, RMIAAttack
from ._signals import LABEL, compute_signals, output_columns
from ._threshold import (
    ConfidenceAttack,
    EntropyAttack,
    GradientNormAttack,
    LossAttack,
    ModifiedEntropyAttack,
)

__all__ = [
    "CALIBRATED_ATTACKS",
    "CLI_RMIA",
    "PLAIN_RMIA",
    "calibrated_attacks",
    "default_attacks",
    "evaluate_attacks",
    "evaluate_calibrated_attacks",
    "evaluate_fitted_attacks",
    "membership_signals",
    "run_attacks",
    "signal_options",
]

#: The attacks that calibrate themselves without a shadow model, by their CLI names:
#: ``name -> (label in results tables, needs a bank of reference models)``; written in
#: :mod:`skmia._registry`, where the ``skmia`` command reads it without importing attacks.
CALIBRATED_ATTACKS = _registry.CALIBRATED_ATTACKS

#: RMIA's plain softmax rule (the CLI's ``rmia_softmax`` and ``rmia_offline``).
PLAIN_RMIA = {"gamma": 1.0, "temperature": 1.0}



def default_attacks(*, white_box=True, random_state=None):
    """The reference code's attacks, by its names, as unfitted estimators.

    Parameters
    ----------
    white_box : bool, default=True
        Include the four gradient-norm attacks.
    random_state : int, RandomState instance or None, default=None
        Seed of the NN attack.

    Returns
    -------
    attacks : dict
        ``name -> estimator``: ``NN``, ``confidence``, ``entropy``,
        ``modified entropy``, ``loss`` (black-box, per-class thresholds) and
        ``grad_wrt_x_l1``, ``grad_wrt_x_l2``, ``grad_wrt_w_l1``, ``grad_wrt_w_l2``
        (white-box, one global threshold).

    Examples
    --------
    >>> from skmia.attacks import default_attacks
    >>> list(default_attacks(white_box=False))
    ['NN', 'confidence', 'entropy', 'modified entropy', 'loss']
    """
    attacks = {
        "NN": NNAttack(random_state=random_state),
        "confidence": ConfidenceAttack(),
        "entropy": EntropyAttack(),
        "modified entropy": ModifiedEntropyAttack(),
        "loss": LossAttack(),
    }
    if white_box:
        for signal in ("grad_x_l1", "grad_x_l2", "grad_w_l1", "grad_w_l2"):
            name = signal.replace("grad_", "grad_wrt_")
            attacks[name] = GradientNormAttack(signal)
    return attacks


def calibrated_attacks(names):
    """The attacks of ``names`` (keys of :data:`CALIBRATED_ATTACKS`), unfitted.

    Parameters
    ----------
    names : iterable of str
        ``lira``, ``lira_offline`` (LiRA with fixed variances, the paper's advice for
        fewer than 64 reference models), ``rmia`` (the softmax at temperature 2,
        ``gamma=2``: :data:`CLI_RMIA`, ``RMIAAttack()``'s defaults), ``rmia_softmax``
        (the plain softmax, ``gamma=1``: :data:`PLAIN_RMIA`), ``rmia_offline`` (plain,
        ``offline_a=0.3``), ``attack_r``, ``attack_p``, ``qmia``, ``label_only``.

    Returns
    -------
    attacks : dict
        ``label -> (attack, calibration)``: ``calibration`` is ``"audited"`` when the
        attack calibrates on the audited records' own signals (their reference scores,
        their label-only queries) and ``"population"`` when on population records
        (RMIA, Attack-P).

    Examples
    --------
    >>> from skmia.attacks import calibrated_attacks
    >>> {label: calibration for label, (_, calibration) in
    ...  calibrated_attacks(["lira", "rmia"]).items()}
    {'LiRA online': 'audited', 'RMIA online, T=2': 'population'}
    """
    makers = {
        # fixed variances: Carlini et al.'s advice below 64 reference models
        "lira": lambda: (LiRAAttack(fix_variance=True), "audited"),
        "lira_offline": lambda: (LiRAAttack(online=False, fix_variance=True), "audited"),
        "rmia": lambda: (RMIAAttack(), "population"),
        "rmia_softmax": lambda: (RMIAAttack(**PLAIN_RMIA), "population"),
        "rmia_offline": lambda: (RMIAAttack(offline_a=0.3, **PLAIN_RMIA), "population"),
        "attack_r": lambda: (ReferenceAttack(), "audited"),
        "attack_p": lambda: (PopulationAttack(), "population"),
        "qmia": lambda: (QuantileAttack(random_state=0), "population"),
        "label_only": lambda: (LabelOnlyAttack(), "audited"),
    }
    unknown = [n for n in names if n not in makers]
    if unknown:
        raise ValueError(
            f"unknown attack(s) {', '.join(map(repr, unknown))}; choose from "
            f"{', '.join(CALIBRATED_ATTACKS)}"
        )
    return {CALIBRATED_ATTACKS[n][0]: makers[n]() for n in names}


def signal_options(names):
    """The :func:`compute_signals` options that the calibrated attacks ``names`` read.

    Parameters
    ----------
    names : iterable of str
        Keys of :data:`CALIBRATED_ATTACKS`.

    Returns
    -------
    options : dict
        ``label_only``, ``reference_logits`` and ``features``, each True where one of
        the attacks reads those columns (the label-only queries; the reference models'
        logits for RMIA at a temperature; the records' features for QMIA).

    Examples
    --------
    >>> from skmia.attacks import signal_options
    >>> signal_options(["lira", "qmia"])
    {'label_only': False, 'reference_logits': False, 'features': True}
    """
    names = set(names)
    return {"label_only": "label_only" in names,
            "reference_logits": "rmia" in names,  # the temperature reads the logits
            "features": "qmia" in names}


def evaluate_calibrated_attacks(attacks, audited, membership, population=None):
    """Calibrate each attack without a shadow model and evaluate it on the audited records.

    Parameters
    ----------
    attacks : dict
        ``label -> (attack, calibration)``, as :func:`calibrated_attacks` returns.
    audited : pandas.DataFrame
        The target's signals on the audited records (with their ``ref_*`` and
        ``label_only_*`` columns as the attacks need).
    membership : array-like of shape (n_audited,)
        1 = member, 0 = non-member: used to evaluate, never to fit.
    population : pandas.DataFrame, default=None
        The target's signals on population records (never audited), for the attacks
        calibrated on them.

    Returns
    -------
    results : pandas.DataFrame
        One row per attack, with the columns of :func:`run_attacks`; ``accuracy`` is
        that of each attack's default rule (it had no labels to choose a threshold).
    scores : dict of str to ndarray
        Each attack's ``decision_function`` on the audited records.
    """
    fitted = {}
    for label, (attack, calibration) in attacks.items():
        if calibration == "population" and population is None:
            raise ValueError(f"{label} calibrates on population records: pass population=")
        fitted[label] = clone(attack).fit(audited if calibration == "audited" else population)
    return _results(fitted, audited, membership)


def membership_signals(model, members, nonmembers, *, white_box=False, batch_size=256):
    """Signals of ``model`` on its members and non-members, with membership labels.

    Parameters
    ----------
    model : fitted classifier, skorch net or torch.nn.Module
        The model queried: anything :func:`compute_signals` reads (a skmia defense, a
        skorch net, a torch module, a Pipeline, a scikit-learn classifier).
    members, nonmembers : (X, y) pairs
        Records the model was and was not trained on (e.g. ``split.target_train`` and
        ``split.target_test``).
    white_box : bool, default=False
        Also compute gradient norms (see :func:`compute_signals`).
    batch_size : int, default=256
        Passed to :func:`compute_signals`.

    Returns
    -------
    signals : pandas.DataFrame
        Members' rows first, then non-members'.
    membership : ndarray of int64
        1 for members, 0 for non-members.
    """
    (X_in, y_in), (X_out, y_out) = members, nonmembers
    signals = pd.concat(
        [
            compute_signals(model, X_in, y_in, white_box=white_box, batch_size=batch_size),
            compute_signals(model, X_out, y_out, white_box=white_box, batch_size=batch_size),
        ],
        ignore_index=True,
    )
    membership = np.r_[np.ones(len(y_in), dtype=np.int64), np.zeros(len(y_out), dtype=np.int64)]
    return signals, membership


def evaluate_attacks(attacks, shadow_signals, shadow_membership, target_signals,
                     target_membership):
    """Fit each attack on the shadow's signals and evaluate it on the target's.

    Parameters
    ----------
    attacks : dict of str to estimator
        ``name -> unfitted attack``; each is cloned before fitting.
    shadow_signals, shadow_membership
        What the attacks learn from (see :func:`membership_signals`).
    target_signals, target_membership
        What they are evaluated on.

    Returns
    -------
    results : pandas.DataFrame
        One row per attack, with the columns of :func:`run_attacks`.
    scores : dict of str to ndarray
        Each fitted attack's ``decision_function`` on the target's signals (for ROC
        curves).
    """
    if not isinstance(attacks, dict) or not attacks:
        raise TypeError("attacks must be a non-empty dict: name -> unfitted attack estimator.")
    fitted = {name: clone(attack).fit(shadow_signals, shadow_membership)
              for name, attack in attacks.items()}
    return evaluate_fitted_attacks(fitted, target_signals, target_membership)


def evaluate_fitted_attacks(fitted, signals, membership):
    """Evaluate attacks fitted already (on a shadow model's signals) on a target's.

    What :func:`evaluate_attacks` does after fitting: one fit on the shadow then serves
    several targets (early stopping's snapshots, say).

    Parameters
    ----------
    fitted : dict of str to fitted attack
        ``name -> attack``, each fitted.
    signals, membership
        The target's signals and membership labels (see :func:`membership_signals`).

    Returns
    -------
    results : pandas.DataFrame
        One row per attack, with the columns of :func:`run_attacks`.
    scores : dict of str to ndarray
        Each attack's ``decision_function`` on ``signals``.
    """
    if not isinstance(fitted, dict) or not fitted:
        raise TypeError("fitted must be a non-empty dict: name -> fitted attack estimator.")
    return _results(fitted, signals, membership)


def _results(fitted, signals, membership):
    """The results table (one row per fitted attack) and each attack's scores."""
    membership = np.asarray(membership)
    train_accuracy = _accuracy(signals[membership == 1])
    test_accuracy = _accuracy(signals[membership == 0])
    rows, scores = {}, {}
    for name, attack in fitted.items():
        rows[name] = {
            **attack.evaluate(signals, membership),
            "target_train_accuracy": train_accuracy,
            "target_test_accuracy": test_accuracy,
        }
        scores[name] = attack.decision_function(signals)
    table = pd.DataFrame.from_dict(rows, orient="index", columns=list(ATTACK_TABLE_COLUMNS))
    return table, scores


def _accuracy(signals):
    n_classes = sum(str(c).startswith("logit_") for c in signals.columns)
    logits = signals[output_columns("logit", n_classes)].to_numpy()
    return float(np.mean(logits.argmax(axis=1) == signals[LABEL].to_numpy()))


def run_attacks(
    target, shadow, split, *, white_box=True, attacks=None, batch_size=256, random_state=None
):
    """Attack a target model with every reference attack, trained on a shadow model.

    The reference code's ``run_attacks.py`` in one call: signals of the shadow model on
    its members (``split.shadow_train``) and non-members (``split.shadow_test``) train
    each attack; signals of the target on its members (``split.target_train``) and
    non-members (``split.target_test``) evaluate it.

    Parameters
    ----------
    target : fitted skorch net or torch.nn.Module
        The model under attack, trained on ``split.target_train``.
    shadow : fitted skorch net or torch.nn.Module
        A model trained like the target on ``split.shadow_train``.
    split : MembershipSplit
        From :func:`skmia.model_selection.membership_split`; any object with
        ``target_train``, ``target_test``, ``shadow_train``, ``shadow_test`` parts that
        unpack as ``X, y`` will do.
    white_box : bool, default=True
        Also compute gradient norms and run the gradient-norm attacks.
    attacks : dict of str to estimator, default=None
        ``name -> unfitted attack``; each is cloned before fitting. By default
        :func:`default_attacks`.
    batch_size : int, default=256
        Passed to :func:`~skmia.attacks.compute_signals`.
    random_state : int, RandomState instance or None, default=None
        Seed of the default NN attack.

    Returns
    -------
    results : pandas.DataFrame
        One row per attack, indexed by name, with columns ``accuracy`` (``0.5 * (TPR +
        TNR)``), ``auc``, ``tpr_at_0.1%fpr``, ``tpr_at_1%fpr`` (see
        :meth:`MembershipInferenceAttack.evaluate`) and the target's own
        ``target_train_accuracy`` and ``target_test_accuracy`` (the same on every row,
        so that tables of several runs concatenate into one tidy table).

    Notes
    -----
    Threat model: the adversary knows the training recipe and has data of the same
    distribution, disjoint from the target's, to train a shadow model; it queries the
    target with labelled records (white-box: it also holds the parameters). Members and
    non-members are balanced when the split comes from ``membership_split``.

    References
    ----------
    .. [1] D. Chen, N. Yu, M. Fritz. "RelaxLoss: Defending Membership Inference Attacks
       without Losing Utility". ICLR 2022. arXiv:2207.05801.
    .. [2] R. Shokri, M. Stronati, C. Song, V. Shmatikov. "Membership Inference Attacks
       against Machine Learning Models". IEEE S&P 2017. arXiv:1610.05820.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skmia.attacks import LossAttack, run_attacks
    >>> from skmia.model_selection import membership_split
    >>> from skmia.nn import MLP
    >>> rng = np.random.default_rng(0)
    >>> X = rng.random((5000, 8), dtype=np.float32)
    >>> y = rng.integers(0, 3, 5000)
    >>> split = membership_split(X, y)
    >>> _ = torch.manual_seed(0)
    >>> target, shadow = MLP(8, 3, hidden_sizes=(16,)), MLP(8, 3, hidden_sizes=(16,))
    >>> results = run_attacks(target, shadow, split, attacks={"loss": LossAttack()})
    >>> list(results.columns)  # doctest: +NORMALIZE_WHITESPACE
    ['accuracy', 'auc', 'tpr_at_0.1%fpr', 'tpr_at_1%fpr', 'target_train_accuracy',
     'target_test_accuracy']
    >>> bool(abs(results.loc["loss", "auc"] - 0.5) < 0.1)  # untrained models leak nothing
    True
    """
    if attacks is None:
        attacks = default_attacks(white_box=white_box, random_state=random_state)
    if not isinstance(attacks, dict) or not attacks:
        raise TypeError("attacks must be a non-empty dict: name -> unfitted attack estimator.")
    shadow = membership_signals(
        shadow, split.shadow_train, split.shadow_test, white_box=white_box, batch_size=batch_size
    )
    target = membership_signals(
        target, split.target_train, split.target_test, white_box=white_box, batch_size=batch_size
    )
    results, _ = evaluate_attacks(attacks, *shadow, *target)
    return results
