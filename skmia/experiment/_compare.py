"""Several training methods on one membership split, attacked alike, side by side.

:func:`compare` runs ``defense_attack`` (:func:`skmia.experiment.run`) for each method
and condenses each run's attack results to one row: the model's utility, the strongest
attack on it and what the attacks prove. Finished trainings are reused by
:func:`~skmia.experiment.run`; finished attack results are reused here, when the
``attack/compare.json`` that :func:`compare` writes beside them says they come from the
same models and the same attacks (see :func:`compare`).
"""

import hashlib
from dataclasses import replace
from pathlib import Path

import numpy as np

from .._rundir import (
    ATTACK,
    COMPARE_JSON,
    INTERVAL_SUFFIXES,
    MODEL_WEIGHTS,
    RESULTS_CSV,
    RunDirectory,
    tpr_column,
)
from ._config import check_config, check_method_options, method_classes
from ._modes import run
from ._train import _note, train

__all__ = ["compare", "COMPARE_COLUMNS"]

#: The FPR (a name of :data:`skmia._rundir.FPR_TABLE`) whose TPR :func:`compare` shows:
#: its column, then its interval's bounds.
COMPARED_FPR = "1%"
_TPR_COLUMNS = (tpr_column(COMPARED_FPR),
                *(tpr_column(COMPARED_FPR) + s for s in INTERVAL_SUFFIXES))
#: Columns of :func:`compare`'s table, in order.
COMPARE_COLUMNS = (
    "method", "train_accuracy", "test_accuracy", "strongest_attack", "auc", "tpr_attack",
    *_TPR_COLUMNS, "lira_auc", *("lira_" + c for c in _TPR_COLUMNS), "epsilon",
    "epsilon_note",
)

_LIRA = "LiRA online"


def compare(config_template, methods, *, attacks=(), reference_models=None,
            method_options=None):
    """Train and attack several methods on one split; one row of results per method.

    Parameters
    ----------
    config_template : RunConfig
        Everything but the method: dataset, seed, epochs, output root, device,
        ``white_box``, ``shadow_method``, ``n_jobs``, ``threads``, ``verbose``. Its
        ``method`` is ignored; its ``overrides`` must be empty (each method trains with
        its own defaults, see :func:`~skmia.experiment.run_defaults`, and
        ``method_options``).
    methods : sequence of str
        Training methods (``vanilla``, ``relaxloss``, ...), each trained once.
    attacks : sequence of str, default=()
        Attacks calibrated without the shadow model (``lira``, ``rmia``, ...), run after
        the reference code's; replaces ``config_template.attacks`` when given.
    reference_models : int, default=None
        Size of the bank of reference models those attacks need; replaces
        ``config_template.reference_models`` when given.
    method_options : dict of str to dict, default=None
        Per method, constructor arguments that replace its defaults
        (``{"dpsgd": {"target_epsilon": 8.0}}``): names the method's estimator takes
        (:meth:`get_params`, or a skorch route such as ``module__hidden_sizes``); an
        unknown method or name is refused with a ``ValueError`` naming the valid ones.
        A method's run directory holds one setting: a finished run trained with other
        settings is refused (choose another ``out``).

    Returns
    -------
    table : pandas.DataFrame
        One row per method, in the order given, columns :data:`COMPARE_COLUMNS`:
        ``train_accuracy`` and ``test_accuracy`` of the target model; ``strongest_attack``
        the attack of highest AUC and ``auc`` its AUC; ``tpr_attack`` the attack of
        highest TPR at 1 % FPR and ``tpr_at_1%fpr`` that TPR (often not the attack of
        highest AUC), with its 95 % Clopper-Pearson interval (``_low``,
        ``_high``; printed in the TPR's cell); ``lira_auc`` and ``lira_tpr_at_1%fpr``
        (and its interval) LiRA online's, where it ran (NaN otherwise); ``epsilon`` the
        ε that DP-SGD accounted (NaN for the other methods) and ``epsilon_note``
        ``"vacuous"`` where that ε exceeds
        :data:`~skmia.defenses._dpsgd.MEANINGFUL_EPSILON` (10: the guarantee then says
        nothing useful; the estimator's warning says the same, the table keeps it in
        view). No empirical ε: the attacks test one target model's records, whose
        membership comes from one random split, and no theorem turns those errors into a
        bound on ε (see the auditing guide). For
        early stopping the final model counts (the row whose ``snapshot_epoch`` is NaN),
        not its snapshots.
        ``table.attrs["folders"]`` maps each method to its run directory and
        ``table.attrs["reused"]`` to whether its attack results were reused.
        A run attacked before with more attacks (``skmia attack --attacks all``) keeps
        the rows of the attacks not run again here (see
        :func:`~skmia.experiment.attack`), so ``lira_*`` come from them.

    Notes
    -----
    Every method runs in its own run directory, exactly as ``skmia run --mode
    defense_attack`` would, with the same shadow model, and the attacks follow the
    reference protocol: fitted on the shadow model, evaluated on the target. A run whose
    target and ``attack/`` are finished is not attacked again when the
    ``attack/compare.json`` written here records the same attacks, white-box setting,
    bank size and shadow run, and the SHA-256 of the very weights and results that are
    there now; anything else (a retrained model, results rewritten by ``skmia run`` with
    other attacks) attacks again.

    Examples
    --------
    >>> from skmia.experiment import RunConfig, compare
    >>> config = RunConfig(dataset="location", method="vanilla", epochs=2,
    ...                    white_box=False, verbose=0, out="results")
    >>> table = compare(config, ["vanilla", "relaxloss"])  # doctest: +SKIP
    >>> list(table["method"])  # doctest: +SKIP
    ['vanilla', 'relaxloss']
    """
    import pandas as pd

    methods = list(methods)
    if not methods:
        raise ValueError("give at least one method to compare")
    valid = method_classes()
    unknown = [m for m in methods if m not in valid]
    if unknown:
        raise ValueError(f"unknown method(s) {', '.join(unknown)}; choose from "
                         f"{', '.join(valid)}")
    repeated = sorted({m for m in methods if methods.count(m) > 1})
    if repeated:
        raise ValueError(f"method(s) given twice: {', '.join(repeated)}")
    if config_template.overrides:
        raise ValueError(
            "compare trains every method with its own default settings; the template's "
            f"overrides ({', '.join(sorted(config_template.overrides))}) would apply to "
            "one method only: run that method with skmia run instead"
        )
    options = check_method_options(method_options, methods, config_template.dataset,
                                   config_template.model)
    template = replace(
        config_template,
        attacks=tuple(attacks) if attacks else tuple(config_template.attacks),
        reference_models=(config_template.reference_models if reference_models is None
                          else reference_models),
    )
    check_config(replace(template, method=methods[0]))
    rows, folders, reused = [], {}, {}
    for method in methods:
        config = replace(template, method=method, overrides=options.get(method, {}))
        results, was_reused = _results(config)
        folder = config.folder
        folders[method], reused[method] = folder, was_reused
        rows.append(_summary(method, results, folder))
    table = pd.DataFrame(rows, columns=list(COMPARE_COLUMNS))
    table.attrs["folders"] = folders
    table.attrs["reused"] = reused
    return table


def _results(config):
    """The attack results of ``config``'s run, reused where they may be; and whether."""
    folder = RunDirectory(config.folder)
    if folder.is_complete() and folder.is_complete(ATTACK) and folder.is_file(ATTACK,
                                                                            COMPARE_JSON):
        # finished trainings come back at once, and refuse other settings as skmia run does
        train(replace(config, verbose=0), "target")
        if folder.read_json(ATTACK, COMPARE_JSON) == _record(config, _shadow_folder(config)):
            results = folder.read_results()
            results.attrs["folder"] = str(folder.path(ATTACK))
            if config.verbose:
                _note(f"{config.method}: reused the finished run and its attack results in "
                      f"{str(folder.root)!r}")
            return results, True
    results = run(config, "defense_attack")
    folder.write_json(ATTACK, COMPARE_JSON, document=_record(config, _shadow_folder(config)))
    return results, False


def _shadow_folder(config):
    """The finished shadow run that ``run(config, "attack")`` attacked with (looked up
    quietly: :func:`~skmia.experiment.run` said whether it trained or reused it)."""
    return Path(train(replace(config, verbose=0), "shadow", config.shadow_training_method))


def _record(config, shadow_dir):
    """What the attack results of a run depend on, beyond its folder's settings."""
    target, shadow = RunDirectory(config.folder), RunDirectory(shadow_dir)
    return {
        "white_box": bool(config.white_box),
        "attacks": list(config.attacks),
        "reference_models": config.reference_models,
        "shadow": str(shadow_dir),
        "target_weights_sha256": _sha256(target, MODEL_WEIGHTS),
        "shadow_weights_sha256": _sha256(shadow, MODEL_WEIGHTS),
        "results_sha256": _sha256(target, ATTACK, RESULTS_CSV),
    }


def _sha256(folder, *parts):
    if not folder.is_file(*parts):
        return None
    return hashlib.sha256(folder.read_bytes(*parts)).hexdigest()


def _summary(method, results, folder):
    """One row of :data:`COMPARE_COLUMNS` from a run's attack results."""
    final = results[results["snapshot_epoch"].isna()] if "snapshot_epoch" in results \
        else results
    if final.empty:
        raise ValueError(f"the attack results of {str(folder)!r} hold no row of the final "
                         "model")
    final = final.reset_index(drop=True)
    strongest = final.loc[final["auc"].idxmax()]
    best_tpr = final.loc[final[_TPR_COLUMNS[0]].idxmax()]
    # the ε above which DP-SGD warns: the comparison flags the same ε
    from ..defenses._dp_accounting import MEANINGFUL_EPSILON

    lira = final[final["attack"] == _LIRA]
    epsilon = final["epsilon"].dropna()
    return {
        "method": method,
        "train_accuracy": float(strongest["train_accuracy"]),
        "test_accuracy": float(strongest["test_accuracy"]),
        "strongest_attack": strongest["attack"],
        "auc": float(strongest["auc"]),
        "tpr_attack": best_tpr["attack"],
        **_tpr(best_tpr, ""),
        "lira_auc": float(lira["auc"].iloc[0]) if len(lira) else np.nan,
        **_tpr(lira.iloc[0] if len(lira) else None, "lira_"),
        "epsilon": float(epsilon.iloc[0]) if len(epsilon) else np.nan,
        "epsilon_note": ("vacuous" if len(epsilon) and not epsilon.iloc[0] <= MEANINGFUL_EPSILON
                         else None),
    }


def _tpr(row, prefix):
    """The TPR at 1 % FPR of a result row and its interval, as ``<prefix>tpr_at_1%fpr``
    and the ``_low`` / ``_high`` columns (NaN without a row, or for results written
    before intervals were)."""
    return {prefix + n: np.nan if row is None else float(row.get(n, np.nan))
            for n in _TPR_COLUMNS}
