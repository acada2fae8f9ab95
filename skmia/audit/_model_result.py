"""The table of a model audit, and its folder (``audit_model(..., out=...)``).

The table has a run's columns (:data:`skmia._rundir.RESULT_COLUMNS`), the intervals of
the TPR at low FPR and how each attack was fitted. The folder is read as a run
directory: it holds what ``skmia report`` and ``skmia report --html`` read of a run: ``params.json``
(``"kind": "model audit"`` marks it), ``attack/results.{csv,json}`` (rows of
:data:`skmia._rundir.RESULT_COLUMNS`), ``attack/roc.png``, ``attack/loss_hist.png``,
``attack/complete.json`` and ``complete.json``. Every file is written through
:class:`skmia._rundir.RunDirectory` into a staging folder beside ``out``, which takes
the place of ``out`` only once complete (:meth:`RunDirectory.replace_folder`): an
interrupted audit leaves the previous folder as it was, never a half-written one.
"""

import os
import secrets
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from .._rundir import (
    ATTACK,
    PARAMS,
    RESULT_COLUMNS,
    SCORES_NPZ,
    Opt,
    RunDirectory,
    result_fprs,
    scores_npz,
    tpr_column,
)

# the accuracy a run's table reports, so an audit's table reports the same figure
from ..attacks._run_attacks import _accuracy
from ..metrics import attack_accuracy, attack_auc, tpr_at_fpr

__all__ = ["INTERVAL_COLUMNS", "MODEL_AUDIT", "MODEL_AUDIT_COLUMNS", "check_out",
           "model_audit_table", "write_model_audit"]

#: The false-positive rates of the results, as fractions (the run's columns).
_MAX_FPRS = result_fprs()
#: The bounds of the 95 % Clopper-Pearson interval of the TPR at each FPR, where the
#: run's columns do not hold them already.
INTERVAL_COLUMNS = tuple(column for column in (f"{tpr_column(name)}_{end}" for name in _MAX_FPRS
                                               for end in ("low", "high"))
                         if column not in RESULT_COLUMNS)
#: The columns of :func:`~skmia.audit.audit_model`'s table: a run's, the intervals, how
#: each attack was fitted.
MODEL_AUDIT_COLUMNS = (*RESULT_COLUMNS, *INTERVAL_COLUMNS, "fitted_on")
#: The ``dataset`` of a model audit's rows (the records are the caller's).
DATASET = "custom"

#: ``params.json``'s ``kind`` of a model audit's folder.
MODEL_AUDIT = "model audit"


def check_out(out):
    """Refuse an ``out`` that audit_model must not replace: a file, or a folder holding
    anything but an earlier model audit (a new or empty folder is fine)."""
    path = Path(out)
    if not os.path.lexists(path):
        return
    if path.is_symlink() or not path.is_dir():
        raise ValueError(f"out={str(path)!r} exists and is not a folder; give a new folder "
                         "for the model audit.")
    entries = sorted(p.name for p in path.iterdir())
    if not entries:
        return
    folder = RunDirectory(path)
    if folder.is_file(PARAMS):
        try:
            kind = folder.read_json(PARAMS, spec=dict).get("kind")
        except ValueError:
            kind = None
        if kind == MODEL_AUDIT:
            return
    shown = ", ".join(entries[:5]) + (" ..." if len(entries) > 5 else "")
    raise ValueError(
        f"out={str(path)!r} holds files that are not a model audit ({shown}); audit_model "
        "writes a new or empty folder, or replaces an earlier model audit: choose another "
        "out or remove that folder.")


def _estimator_params(model):
    """The model's settings as ``params.json`` records a run's (``repr`` of each)."""
    if not hasattr(model, "get_params"):
        return {}
    return {k: repr(v) for k, v in sorted(model.get_params(deep=False).items())
            if not k.startswith("_") and k not in ("callbacks", "device", "steps")}


def write_model_audit(out, table, scores, membership, loss, model, settings, *, seconds):
    """Write the model audit's folder at ``out`` (see the module); returns its path."""
    path = Path(out)
    parent = RunDirectory(path.parent if str(path.parent) else ".")
    parent.makedirs()
    staging = f".{path.name}.partial-{secrets.token_hex(4)}"
    folder = parent.child(staging)
    first = table.iloc[0]
    params = {
        "skmia_version": __version__, "kind": MODEL_AUDIT, "dataset": first["dataset"],
        "method": first["method"], "model": None, "seed": int(first["seed"]),
        "partition": "target", "estimator": type(model).__name__,
        "estimator_params": _estimator_params(model), **settings,
    }
    try:
        folder.write_json(PARAMS, document=params)
        folder.write_results(table[list(RESULT_COLUMNS)].to_dict("records"), folder=ATTACK)
        # the scores, not figures: the report draws them (data flows audit -> report)
        folder.write_bytes(ATTACK, SCORES_NPZ, data=scores_npz(scores, membership, loss))
        folder.mark_complete(ATTACK, document={"kind": MODEL_AUDIT})
        # "rows": what the report calls a run's training rows, the members here
        folder.mark_complete(document={"kind": MODEL_AUDIT, "rows": settings["n_members"],
                                       "audit_seconds": round(seconds, 3)})
        check_out(path)  # nothing else took its place meanwhile
        parent.replace_folder(staging, path.name)
    finally:
        parent.remove_tree(staging)  # left only when something failed
    return path


# ---------------------------------------------------------------------------- results


def _metrics(membership, score, prediction):
    """Attack accuracy, AUC, TPR at each FPR (NaN where unresolved) with intervals. No
    empirical ε: one model's records are no DP audit (see docs/auditing.rst)."""
    row = {"accuracy": attack_accuracy(membership, prediction), "auc": np.nan}
    for name in _MAX_FPRS:
        key = tpr_column(name)
        row[key] = row[f"{key}_low"] = row[f"{key}_high"] = np.nan
    if not np.all(np.isfinite(score)):
        return row  # an attack that could not score every record: no rate
    row["auc"] = attack_auc(membership, score)
    n_out = int(np.sum(membership == 0))
    for name, fpr in _MAX_FPRS.items():
        if n_out * fpr * (1 + 1e-9) < 1:
            continue  # too few non-members to measure that FPR: unresolved
        rate = tpr_at_fpr(membership, score, max_fpr=fpr)
        if rate.resolved:
            key = tpr_column(name)
            row[key], row[f"{key}_low"], row[f"{key}_high"] = rate.tpr, rate.ci_low, rate.ci_high
    return row


def _method(model):
    """How the rows name the model: its class, a pipeline's steps in brackets."""
    if hasattr(model, "steps"):
        return f"Pipeline[{', '.join(type(step).__name__ for _, step in model.steps)}]"
    return type(model).__name__


def model_audit_table(model, target, audited, membership, scores, predictions, fitted_on, seed):
    """One row per attack, columns :data:`MODEL_AUDIT_COLUMNS`."""
    epsilon = getattr(target.net if target.net is not None else target.estimator,
                      "epsilon_", None)
    context = {
        "dataset": DATASET, "model": None, "method": _method(model), "seed": seed,
        "snapshot_epoch": None, "epsilon": None if epsilon is None else float(epsilon),
        "train_accuracy": _accuracy(audited[membership == 1]),
        "test_accuracy": _accuracy(audited[membership == 0]),
        "shadow_method": "none",
    }
    rows = [{**context, "attack": name, **_metrics(membership, score, predictions[name]),
             "fitted_on": fitted_on[name]} for name, score in scores.items()]
    table = pd.DataFrame(rows, columns=list(MODEL_AUDIT_COLUMNS))
    rates = [name for name, column in RESULT_COLUMNS.items()
             if isinstance(column.spec, Opt) and column.spec.spec is float]
    for name in (*rates, *INTERVAL_COLUMNS):  # as the run's results are read back
        table[name] = table[name].astype(float)
    return table

