"""The folder of a model audit (``audit_model(..., out=...)``), read as a run directory.

It holds what ``skmia report`` and ``skmia report --html`` read of a run: ``params.json``
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

from .. import __version__
from .._rundir import (
    ATTACK,
    LOSS_HIST_PNG,
    PARAMS,
    RESULT_COLUMNS,
    ROC_PNG,
    RunDirectory,
)

__all__ = ["MODEL_AUDIT", "check_out", "write_model_audit"]

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
    from ..report import figure_png, loss_histogram_figure, roc_figure

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
    title = f"{first['method']} (model audit)"
    try:
        folder.write_json(PARAMS, document=params)
        folder.write_results(table[list(RESULT_COLUMNS)].to_dict("records"), folder=ATTACK)
        folder.write_bytes(ATTACK, ROC_PNG, data=figure_png(
            roc_figure(scores, membership, title=title, confidence_level=0.95)))
        folder.write_bytes(ATTACK, LOSS_HIST_PNG, data=figure_png(
            loss_histogram_figure(loss, membership, title=title)))
        folder.mark_complete(ATTACK, document={"kind": MODEL_AUDIT})
        folder.mark_complete(document={"kind": MODEL_AUDIT, "rows": settings["n_members"],
                                       "seconds": round(seconds, 3)})
        check_out(path)  # nothing else took its place meanwhile
        parent.replace_folder(staging, path.name)
    finally:
        parent.remove_tree(staging)  # left only when something failed
    return path
