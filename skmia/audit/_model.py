"""audit_model: the strongest membership audit that one fitted model and its inputs allow."""

import inspect
import os
import time
import warnings
from numbers import Integral

import numpy as np
from sklearn.base import clone, is_classifier
from sklearn.utils import check_random_state

from .._sklearn_compat import StrOptions, validate_params
from .._threads import with_thread_policy
from ..attacks import CALIBRATED_ATTACKS, calibrated_attacks, compute_signals, default_attacks

# how attacks read any fitted model, so the audit reads it the same way
from ..attacks._models import DECISION_NOTE, resolve_target
from ..model_selection import ReferenceModels
from ._bottom_line import add_bottom_line, attack_progress
from ._model_result import _MAX_FPRS as MAX_FPRS
from ._model_result import MODEL_AUDIT_COLUMNS, check_out, model_audit_table, write_model_audit

__all__ = ["MODEL_AUDIT_COLUMNS", "audit_model"]

#: What the attacks calibrated without a shadow model need, beyond the audited records.
_BANK_ATTACKS = ("lira", "attack_r")
_POPULATION_ATTACKS = ("attack_p", "qmia", "rmia")
#: Every attack that calibrates on population records.
_CALIBRATED_ON_POPULATION = {"attack_p", "qmia", "rmia", "rmia_softmax", "rmia_offline"}
#: The fewest population records each default attack calibrates on: Attack-P flags
#: 5 % of them (1 / 0.05), QMIA holds out a quarter to place its 95 % quantile (19 / 0.25).
_MIN_POPULATION = {"attack_p": 20, "qmia": 76, "rmia": 1}
_FOLD_STREAM = 0  # the stream of the seed that splits the audited records in halves


@validate_params(
    {
        "model": "no_validation",
        "X_members": ["array-like"],
        "y_members": ["array-like"],
        "X_nonmembers": ["array-like"],
        "y_nonmembers": ["array-like"],
        "recipe": "no_validation",
        "population": [tuple, list, None],
        "attacks": [list, tuple, None],
        "n_reference": [Integral],
        "white_box": [StrOptions({"auto"}), "boolean"],
        "n_jobs": [Integral, None],
        "random_state": ["random_state"],
        "out": [str, os.PathLike, None],
        "verbose": ["verbose"],
    },
    prefer_skip_nested_validation=False,
)
@with_thread_policy
def audit_model(model, X_members, y_members, X_nonmembers, y_nonmembers, *, recipe=None,
                population=None, attacks=None, n_reference=16, white_box="auto", n_jobs=None,
                random_state=None, out=None, verbose=1):
    """Audit one fitted model: how well its members can be told from its non-members.

    Runs the strongest membership-inference attacks that the inputs allow on the
    records given, and reports each one's AUC and TPR at low FPR (with Clopper-Pearson
    intervals: one model's records; no empirical ε, as no theorem bounds ε from one
    model's records, see the auditing guide):

    - always, the reference code's attacks (NN, confidence, entropy, modified entropy,
      loss; with ``white_box`` the four gradient norms), each fitted on one half of the
      audited records and scored on the other (2-fold, so that no threshold is chosen on
      the records it scores);
    - with ``population``, records of the same distribution that the model never saw:
      Attack-P (a loss threshold set on them, Ye et al.) and QMIA (a quantile regressor
      trained on them, Bertran et al.);
    - with a ``recipe`` (by default the model itself, cloned, where that is meaningful):
      a bank of ``n_reference`` models trained like the target on random halves of the
      audited records (:class:`~skmia.model_selection.ReferenceModels`), and online
      LiRA [1]_ and Attack-R against it, and RMIA [2]_ when there is a population too.

    Parameters
    ----------
    model : fitted classifier, skorch net or torch.nn.Module
        The model audited: anything :func:`skmia.attacks.compute_signals` reads (a skmia
        defense, a skorch net, a torch module returning logits, a scikit-learn
        classifier, a :class:`~sklearn.pipeline.Pipeline`).
    X_members, y_members : array-like
        Records the model was trained on, and their labels.
    X_nonmembers, y_nonmembers : array-like
        Records of the same distribution it was not trained on. At least 2 members and
        2 non-members; TPR at 0.1 % FPR needs 1,000 non-members (it is NaN below that,
        as an unresolved rate, never 0).
    recipe : estimator, default=None
        An unfitted classifier trained the way the model was (same class, settings and
        epochs), for the bank of reference models. None: ``sklearn.base.clone(model)``
        where that is meaningful (a scikit-learn classifier or skorch net; not a torch
        module, which holds no training recipe, nor a frozen model): otherwise there is
        no bank, and ``table.attrs["notes"]`` says why. A recipe whose ``fit`` takes
        ``X_reference`` (AdvReg, MemGuard) is given the population as its reference set.
    population : (X, y) pair, default=None
        Population records: of the same distribution, never trained on by the model,
        distinct from the audited ones. Calibrates Attack-P, QMIA and RMIA.
    attacks : list of str, default=None
        The attacks to run, by name: the keys of
        :func:`skmia.attacks.default_attacks` (``"NN"``, ``"loss"``, ``"grad_wrt_w_l2"``,
        ...) and of :data:`skmia.attacks.CALIBRATED_ATTACKS` (``"lira"``, ``"rmia"``,
        ``"attack_p"``, ``"qmia"``, ``"label_only"``, ...). None: every attack the
        inputs allow (label-only aside, which queries perturbed copies). A named attack
        whose input is missing is refused with a ``ValueError`` saying what it needs.
    n_reference : int, default=16
        Reference models in the bank (even, at least 4); 0 trains none. Each costs one
        training of the recipe.
    white_box : "auto" or bool, default="auto"
        Also run the gradient-norm attacks. ``"auto"``: where the model is a torch
        model (or a pipeline ending in one; the gradient is then with respect to the
        input of the network, after the pipeline's transforms). True on another model is
        refused.
    n_jobs : int, default=None
        Reference models trained at the same time (see ``ReferenceModels``).
    random_state : int, RandomState instance or None, default=None
        Seeds the halves of the 2-fold fit, the NN attack and the bank. The seed used
        is the rows' ``seed``.
    out : path-like, default=None
        Also write the results as a run directory there, which ``skmia report`` and
        ``skmia report --html`` read: ``params.json``, ``attack/results.{csv,json}``
        (the columns of :data:`skmia._rundir.RESULT_COLUMNS`), ``attack/roc.png``,
        ``attack/loss_hist.png`` and ``complete.json``. The folder is written beside
        and put in place once complete; it must be new, empty, or an earlier model
        audit (which it replaces): any other folder is refused before any work.
    verbose : int, default=1
        Progress on stderr, with an estimate of the time left: the bank's models (over
        their epochs where they train as one batched network), then the signals and
        the attacks. 0 prints nothing.

    Returns
    -------
    table : pandas.DataFrame
        One row per attack, columns :data:`MODEL_AUDIT_COLUMNS`: the run's columns
        (``dataset`` is ``"custom"``, ``method`` the model's class, ``attack``,
        ``train_accuracy`` and ``test_accuracy`` of the model on the members and
        non-members, the attack's ``accuracy`` (balanced, of its ``predict``), ``auc``,
        ``tpr_at_0.01%fpr``, ``tpr_at_0.1%fpr``, ``tpr_at_1%fpr``), the bounds of the 95 %
        Clopper-Pearson interval of the TPR at each FPR (``tpr_at_1%fpr_low``,
        ``tpr_at_1%fpr_high``, ...) and ``fitted_on``, how the attack was fitted. The last
        row, ``"bottom line"``, holds at each FPR the strongest attack's TPR and interval
        (``fitted_on`` names them) and the highest AUC. ``table.attrs["notes"]`` lists what
        was left out and why (no bank, too small a population, a model read through
        ``decision_function``), the non-members an unresolved rate would need, and why
        attacks disagree where one finds significantly fewer members than the strongest;
        ``table.attrs["folder"]`` is the folder written, with ``out`` (the attacks' rows).
        ``table.per_record_`` ranks the audited records by the FPR at which the bottom
        line's attack flags them (:func:`~skmia.audit._bottom_line.per_record`).

    Raises
    ------
    ValueError
        Records and labels of different lengths, members and non-members of different
        record shapes, fewer than 2 of either, an unknown attack or one whose inputs
        are missing, ``white_box=True`` on a model without gradients, an ``out`` that is
        a file or a folder of other files. ``NotFittedError`` (a ``ValueError``) for a
        model that is not fitted.
    TypeError
        A model that ``compute_signals`` cannot read.

    Warns
    -----
    UserWarning
        When the model has no ``predict_proba``: its signals come from
        ``decision_function``, and the probabilities and loss they hold are not the
        model's (see :func:`~skmia.attacks.compute_signals`).

    See Also
    --------
    audit_defense : audit a training algorithm (many models, canaries), not one model.
    skmia.attacks.compute_signals : the signals the attacks read.

    Notes
    -----
    Threat model: each row is an adversary that queries the model with labelled records
    (black-box; white-box rows also hold its parameters). The reference code's attacks
    here are the *auditor's* view: their thresholds are fitted on half of the audited
    members and non-members, where an attacker would need a shadow model; the
    calibrated attacks (Attack-P, QMIA, LiRA, RMIA, Attack-R) use no membership label:
    an adversary with population data and the training recipe runs them as they are.
    The bank trains on the audited records themselves (each IN half of the models), as
    online LiRA needs.

    A model audit measures one model; a training algorithm is better measured over many
    trainings with canaries, the records at risk (Aerni, Zhang & Tramèr [3]_, which
    :func:`audit_defense` does). Few audited records give wide intervals: read the
    ``*_low`` and ``*_high`` columns beside each rate.

    References
    ----------
    .. [1] N. Carlini, S. Chien, M. Nasr, S. Song, A. Terzis, F. Tramèr. "Membership
       Inference Attacks From First Principles". IEEE S&P 2022. arXiv:2112.03570.
    .. [2] S. Zarifzadeh, P. Liu, R. Shokri. "Low-Cost High-Power Membership Inference
       Attacks". ICML 2024. arXiv:2312.03262.
    .. [3] M. Aerni, J. Zhang, F. Tramèr. "Evaluations of Machine Learning Privacy
       Defenses are Misleading". ACM CCS 2024. arXiv:2404.17399.

    Examples
    --------
    >>> import numpy as np
    >>> from sklearn.tree import DecisionTreeClassifier
    >>> from skmia.audit import audit_model
    >>> rng = np.random.default_rng(0)
    >>> X, y = rng.normal(size=(400, 5)), rng.integers(0, 2, 400)   # labels are noise
    >>> tree = DecisionTreeClassifier(random_state=0).fit(X[:200], y[:200])  # memorises
    >>> table = audit_model(tree, X[:200], y[:200], X[200:], y[200:], n_reference=0,
    ...                     random_state=0)
    >>> row = table.set_index("attack").loc["loss"]
    >>> [round(float(row[c]), 4) for c in ("train_accuracy", "test_accuracy", "auc")]
    [1.0, 0.55, 0.725]

    The tree gives probability 1 to each member's label, and to the label of 55 % of
    the non-members: those tie with the members, the others are found, so the loss
    attack's AUC is ``1 - 0.55 / 2 = 0.725``.
    """
    start = time.perf_counter()
    if out is not None:
        check_out(out)  # before any work: a folder of other files is refused
    members, nonmembers, population = _check_records(X_members, y_members, X_nonmembers,
                                                     y_nonmembers, population)
    target = resolve_target(model)
    white_box = _check_white_box(white_box, target)
    _check_n_reference(n_reference)
    seed, notes = _seed(random_state), []
    recipe = _recipe(model, target, recipe, n_reference, population, notes)
    names = _attack_names(attacks, white_box, population, recipe is not None, notes)
    if target.method == "decision_function" and attacks is None and "rmia" in names:
        # γ = 2 asks for a likelihood ratio of 2 that decisions (not probabilities) rarely
        # reach: every record would score 0
        names[names.index("rmia")] = "rmia_softmax"
        notes.append("RMIA at γ = 1 (rmia_softmax): γ = 2 assumes probabilities")
    X_audit = np.concatenate([members[0], nonmembers[0]])
    y_audit = np.concatenate([members[1], nonmembers[1]])
    membership = np.r_[np.ones(len(members[1]), np.int64),
                       np.zeros(len(nonmembers[1]), np.int64)]
    calibrated = [n for n in names if n in CALIBRATED_ATTACKS]
    bank = None
    if recipe is not None and any(CALIBRATED_ATTACKS[name][1] for name in calibrated):
        bank = _bank(recipe, X_audit, y_audit, population, n_reference, n_jobs, seed, verbose)
    progress = attack_progress(len(names), verbose)
    audited, population_signals = _signals(model, target, X_audit, y_audit, population, bank,
                                           calibrated, white_box, seed, notes)
    progress.step("signals")
    scores, predictions, fitted_on = {}, {}, {}
    threshold = {name: attack for name, attack in
                 default_attacks(white_box=white_box, random_state=seed).items()
                 if name in names}
    _cross_fit(threshold, audited, membership, seed, scores, predictions, fitted_on, progress)
    _calibrate(calibrated, audited, population_signals, scores, predictions, fitted_on,
               progress)
    progress.close()
    table = model_audit_table(model, target, audited, membership, scores, predictions,
                              fitted_on, seed)
    audit = add_bottom_line(table, scores, membership, audited, MAX_FPRS, notes)
    audit.attrs["notes"] = notes
    if out is not None:
        settings = {"n_members": len(members[1]), "n_nonmembers": len(nonmembers[1]),
                    "n_population": None if population is None else len(population[1]),
                    "n_reference": 0 if bank is None else len(bank.estimators_),
                    "white_box": white_box, "attacks": list(table["attack"]), "notes": notes}
        audit.attrs["folder"] = str(write_model_audit(
            out, table, scores, membership, audited["loss"].to_numpy(), model, settings,
            seconds=time.perf_counter() - start))
    return audit


# ------------------------------------------------------------------------------ checks


def _check_part(name, X, y):
    """``(X, y)`` of the audited ``name`` as arrays, checked to match and hold 2 rows."""
    X, y = np.asarray(X), np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y_{name} must be 1-D with one label per record, got shape "
                         f"{y.shape}.")
    if X.ndim < 2 or len(X) != len(y):
        raise ValueError(f"X_{name} and y_{name} must have one record per label: got X of "
                         f"shape {X.shape} and {len(y)} labels.")
    if len(y) < 2:
        raise ValueError(f"at least 2 {name} are needed (one for each half of the 2-fold "
                         f"fit), got {len(y)}.")
    return X, y


def _check_records(X_members, y_members, X_nonmembers, y_nonmembers, population):
    """The members, non-members and population as ``(X, y)`` arrays, checked."""
    members = _check_part("members", X_members, y_members)
    nonmembers = _check_part("nonmembers", X_nonmembers, y_nonmembers)
    shape = members[0].shape[1:]
    if nonmembers[0].shape[1:] != shape:
        raise ValueError(f"X_members has records of shape {shape} but X_nonmembers of shape "
                         f"{nonmembers[0].shape[1:]}: they must be records of one kind.")
    if population is not None:
        if len(population) != 2:
            raise ValueError("population must be an (X, y) pair of population records.")
        population = _check_part("population", *population)
        if population[0].shape[1:] != shape:
            raise ValueError(f"population records have shape {population[0].shape[1:]}, the "
                             f"audited ones {shape}: they must be records of one kind.")
    for name, part in (("non-member", nonmembers), ("population", population)):
        if part is not None:
            _warn_overlap(members[0], part[0], name)
    return members, nonmembers, population


def _row_keys(X):
    """Each record of ``X`` as bytes (numbers as float64, so that dtypes compare)."""
    X = np.asarray(X)
    flat = X.reshape(len(X), -1)
    if flat.dtype.kind in "biuf":
        flat = flat.astype(np.float64)
    return [row.tobytes() if flat.dtype.kind != "O" else repr(row.tolist()).encode()
            for row in np.ascontiguousarray(flat)]


def _warn_overlap(X_members, X_other, name):
    """Warn when records given as ``name`` records are members too (the same features):
    the audit then measures nothing about them."""
    members = set(_row_keys(X_members))
    shared = sum(key in members for key in _row_keys(X_other))
    if shared:
        warnings.warn(
            f"{shared} of the {len(X_other)} {name} records are also member records (the "
            f"same features): the audit cannot tell them apart. Pass records the model did "
            "not train on.", UserWarning, stacklevel=4)


def _check_n_reference(n_reference):
    if n_reference < 0 or (n_reference and (n_reference < 4 or n_reference % 2)):
        raise ValueError(f"n_reference must be 0 (no bank) or an even number of at least 4 "
                         f"(LiRA needs 2 models with and 2 without each record), got "
                         f"{n_reference!r}.")


def _check_white_box(white_box, target):
    if white_box == "auto":
        return target.module is not None
    if white_box and target.module is None:
        raise ValueError(
            f"white_box=True needs the gradients of a torch model, but {target.name} is not "
            "one (a skmia defense, a skorch net, a torch.nn.Module, or a Pipeline ending in "
            "one): audit its black-box signals (white_box='auto' or False).")
    return bool(white_box)


def _seed(random_state):
    """The audit's seed: ``random_state`` itself when an int, else drawn from it."""
    if isinstance(random_state, Integral) and not isinstance(random_state, bool):
        return int(random_state)
    return int(check_random_state(random_state).randint(2**31 - 1))


def _recipe(model, target, recipe, n_reference, population, notes):
    """The recipe of the bank, or None (with a note saying why there is none)."""
    if n_reference == 0:
        if recipe is not None:
            raise ValueError("recipe is given but n_reference=0: no bank would use it.")
        notes.append("no reference models (n_reference=0): no LiRA, RMIA or Attack-R")
        return None
    explicit = recipe is not None
    if recipe is None:
        why = _why_not_clone(model, target)
        if why:
            notes.append(f"no reference models: {why}; pass recipe=, an unfitted "
                         "estimator trained like it, for LiRA, RMIA and Attack-R")
            return None
        recipe = clone(model)
    elif not is_classifier(recipe):
        raise TypeError(f"recipe must be an unfitted scikit-learn classifier (a skmia "
                        f"defense, a skorch net, ...), got {type(recipe).__name__}.")
    if _needs_reference_set(recipe) and population is None:
        why = (f"{type(recipe).__name__} trains against a reference set of non-members "
               "(fit's X_reference), and there is no population= to give it")
        if explicit:
            raise ValueError(f"recipe cannot be trained: {why}.")
        notes.append(f"no reference models: {why}")
        return None
    return recipe


def _needs_reference_set(recipe):
    """Whether the recipe's ``fit`` takes a reference set (AdvReg, MemGuard)."""
    return "X_reference" in inspect.signature(recipe.fit).parameters


def _why_not_clone(model, target):
    """Why ``clone(model)`` is no training recipe (None when it is one)."""
    if target.module is not None and not hasattr(model, "get_params"):
        return f"{target.name} is a torch module, which holds no training recipe to clone"
    final = model.steps[-1][1] if hasattr(model, "steps") else model
    if target.module is not None and not hasattr(final, "get_params"):
        return (f"the pipeline ends in a torch module ({type(final).__name__}), which "
                "holds no training recipe to clone")
    if type(final).__name__ == "FrozenEstimator":
        return "a FrozenEstimator is not trained again by its clone"
    if not is_classifier(model):
        return f"{type(model).__name__} is not a scikit-learn classifier"
    return None


def _attack_names(attacks, white_box, population, has_recipe, notes):
    """The attacks to run, by name, checked against what the inputs allow."""
    threshold = list(default_attacks(white_box=True))
    known = threshold + list(CALIBRATED_ATTACKS)
    if attacks is None:
        names = list(default_attacks(white_box=white_box))
        n_population = 0 if population is None else len(population[1])
        for name in _POPULATION_ATTACKS:
            if name == "rmia" and not has_recipe:
                continue
            if n_population >= _MIN_POPULATION[name]:
                names.append(name)
            elif population is not None:
                notes.append(f"no {CALIBRATED_ATTACKS[name][0]}: it needs at least "
                             f"{_MIN_POPULATION[name]} population records, got {n_population}")
        if population is None:
            notes.append("no population=: no Attack-P, QMIA or RMIA")
        return names + (list(_BANK_ATTACKS) if has_recipe else [])
    names = list(attacks)
    unknown = [n for n in names if n not in known]
    if unknown:
        raise ValueError(f"unknown attack(s) {', '.join(map(repr, unknown))}; choose from "
                         f"{', '.join(known)}.")
    for name in names:
        if name.startswith("grad_") and not white_box:
            raise ValueError(f"{name!r} is a white-box attack: it needs white_box (a torch "
                             "model).")
        label, needs_bank = CALIBRATED_ATTACKS.get(name, (name, False))
        if needs_bank and not has_recipe:
            raise ValueError(f"{name!r} ({label}) needs reference models: pass recipe= (and "
                             "n_reference > 0).")
        if name in _CALIBRATED_ON_POPULATION and population is None:
            raise ValueError(f"{name!r} ({label}) calibrates on population records: pass "
                             "population=(X, y).")
    return names


# ------------------------------------------------------------------------ the attacks


def _bank(recipe, X, y, population, n_reference, n_jobs, seed, verbose=0):
    """The bank of reference models, trained on halves of the audited records."""
    fit_params = {}
    if _needs_reference_set(recipe):  # AdvReg, MemGuard: the population, never audited
        fit_params = {"X_reference": population[0], "y_reference": population[1]}
    bank = ReferenceModels(recipe, n_estimators=n_reference, n_jobs=n_jobs, random_state=seed,
                           verbose=verbose)
    return bank.fit(X, y, **fit_params)


def _signals(model, target, X, y, population, bank, calibrated, white_box, seed, notes):
    """The model's signals on the audited records and on the population (or None); a
    model read through ``decision_function`` is said once, in a warning and a note."""
    features, label_only = "qmia" in calibrated, "label_only" in calibrated
    shared = {"features": features}
    if bank is not None:
        shared.update(reference=bank, reference_logits="rmia" in calibrated)
    with warnings.catch_warnings():  # said once below, not once per query
        warnings.filterwarnings("ignore", message=".*has no predict_proba", category=UserWarning)
        audited = compute_signals(
            model, X, y, white_box=white_box, label_only=label_only,
            label_only_params={"random_state": seed} if label_only else None,
            **({"pool_index": np.arange(len(y))} if bank is not None else {}), **shared)
        pop = None
        if population is not None and set(calibrated) & _CALIBRATED_ON_POPULATION:
            pop = compute_signals(model, *population, **shared)
    if target.method == "decision_function":
        notes.append(DECISION_NOTE.format(name=target.name))
        # 4: the caller of audit_model (through validate_params' wrapper)
        warnings.warn(notes[-1] + ".", UserWarning, stacklevel=4)
    return audited, pop


def _halves(membership, seed):
    """A mask of half of the members and half of the non-members, drawn from ``seed``."""
    rng = np.random.default_rng([seed, _FOLD_STREAM])
    first = np.zeros(len(membership), dtype=bool)
    for value in (0, 1):
        rows = rng.permutation(np.flatnonzero(membership == value))
        first[rows[: len(rows) // 2]] = True
    return first


def _cross_fit(attacks, signals, membership, seed, scores, predictions, fitted_on,
               progress=None):
    """Fit each attack on one half, score the other, and the other way round."""
    first = _halves(membership, seed)
    for name, attack in attacks.items():
        score, prediction = np.empty(len(membership)), np.empty(len(membership), np.int64)
        for fit in (first, ~first):
            fitted = clone(attack).fit(signals[fit], membership[fit])
            score[~fit] = fitted.decision_function(signals[~fit])
            prediction[~fit] = fitted.predict(signals[~fit])
        scores[name], predictions[name] = score, prediction
        fitted_on[name] = "the other half of the audited records (2-fold)"
        if progress is not None:
            progress.step(name)


def _calibrate(names, audited, population, scores, predictions, fitted_on, progress=None):
    """Fit the attacks calibrated without a shadow model (no membership labels)."""
    attacks = calibrated_attacks(names)
    for name in names:
        label = CALIBRATED_ATTACKS[name][0]
        attack, calibration = attacks[label]
        fitted = clone(attack).fit(audited if calibration == "audited" else population)
        scores[label] = fitted.decision_function(audited)
        predictions[label] = fitted.predict(audited)
        needs_bank = CALIBRATED_ATTACKS[name][1]
        fitted_on[label] = " and ".join(
            part for part, used in (("reference models", needs_bank),
                                    ("population records", calibration == "population"),
                                    ("perturbed queries", name == "label_only"))
            if used) or "the audited records, without labels"
        if progress is not None:
            progress.step(label)
