"""The run directory: every file name of a run, safe reads and writes, the result schema.

A **run directory** (``<out>/<dataset>[/<model>]/<method>/seed<seed>/``, made by
``skmia run``) and an **audit directory** (made by ``skmia audit``) are folders that
skmia writes and later reads back. :class:`RunDirectory` is the one object that knows
their file names and touches their files; no other module spells a file name of a run.

Everything in such a folder is untrusted input: a folder can be copied from elsewhere,
edited, or hold links. :class:`RunDirectory` therefore

- never follows a symbolic link: a path of the folder that is a link, or passes through
  one, is refused with :class:`UnsafePathError` naming it, and nothing outside the
  folder is read, written or deleted;
- reads a file only when it is a regular file (opened with ``O_NOFOLLOW |
  O_NONBLOCK`` and checked with ``fstat``: a FIFO or a device never blocks a read);
- reads JSON through :func:`check_json`, so that a wrong type (``"seed": "1000"``,
  ``1e300``, a list where an object belongs), bytes that are not UTF-8 or a lone
  surrogate give one ``ValueError`` naming the file and the key;
- writes every file atomically (a temporary file in the same folder, then
  ``os.replace``), writes ``complete.json`` last, and replaces a finished result folder
  only once the new one is complete (:meth:`RunDirectory.replace_folder`);
- holds ``.lock`` while a process writes it (:meth:`RunDirectory.lock`).

The results of every attack of a run are rows of :data:`RESULT_COLUMNS` (name -> type),
written by :meth:`RunDirectory.write_results` and read back by
:meth:`RunDirectory.read_results`; the experiment, the report and the CLI all use it.

An audit directory uses the same class: ``RunDirectory(folder)`` with
``AUDIT``/``COMPLETE`` names, ``with folder.lock("audit")``, ``folder.write_json(...)``
for its files and ``folder.mark_complete(...)`` last; ``folder.is_complete()`` tells a
finished audit, ``folder.clear(...)`` removes the files of an unfinished one.

This package (``_files``: reads and writes; ``_json``: typed JSON and escapes;
``_lock``: the lock) imports nothing from the rest of skmia, so anyone may import it.
"""

import math
import os
import secrets
import shutil
import stat
from pathlib import Path

from ._files import (
    UnsafePathError,
    _json_bytes,
    _read_regular,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    find_folders,
    read_json,
)
from ._json import (
    Int,
    ListOf,
    MapOf,
    OneOf,
    Opt,
    check_json,
    escape_text,
    parse_json,
)
from ._json import (
    _problem as _problem,
)
from ._lock import LOCK, RunLockedError, hold_locks
from ._lock import _process_start as _process_start
from ._scores import read_scores, scores_npz

__all__ = [
    "RunDirectory", "UnsafePathError", "RunLockedError", "Column", "RESULT_COLUMNS",
    "CONTEXT_COLUMNS", "INTERVAL_SUFFIXES", "PARAMS_SCHEMA", "check_json", "escape_text",
    "atomic_write_bytes", "atomic_write_text", "atomic_write_json", "read_json",
    "find_folders", "Int", "Opt",
    "ListOf", "MapOf", "OneOf", "hold_locks", "parse_json", "LOCK", "PARAMS", "HISTORY",
    "MODEL_JSON", "MODEL_WEIGHTS", "COMPLETE", "CHECKPOINT", "ATTACK", "REFERENCE",
    "SHADOW", "AUDIT", "RESULTS_CSV", "RESULTS_JSON", "ROC_PNG", "LOSS_HIST_PNG",
    "SCORES_NPZ", "read_scores", "scores_npz",
    "COMPARE_JSON", "RUN_FILES", "ATTACK_FILES", "HISTORY_SCHEMA", "ATTACK_TABLE_COLUMNS",
    "AUDIT_FILES", "AUDIT_RESULT_FILES", "audit_round_file", "DP_AUDIT_FILES",
]

# ---------------------------------------------------------------------- file names
PARAMS = "params.json"
HISTORY = "history.json"
MODEL_JSON = "model.json"
MODEL_WEIGHTS = "model.safetensors"
COMPLETE = "complete.json"
CHECKPOINT = "checkpoint"
ATTACK = "attack"
REFERENCE = "reference"
SHADOW = "shadow"
AUDIT = "audit"
RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
ROC_PNG = "roc.png"
LOSS_HIST_PNG = "loss_hist.png"
# the scores behind the figures, where the writer draws none (a model audit): the report
# draws roc.png and loss_hist.png from them
SCORES_NPZ = "scores.npz"
COMPARE_JSON = "compare.json"
#: the files of a training, and of an attack (``attack/``), completion marker last
RUN_FILES = (PARAMS, HISTORY, MODEL_JSON, MODEL_WEIGHTS, COMPLETE)
ATTACK_FILES = (RESULTS_CSV, RESULTS_JSON, ROC_PNG, LOSS_HIST_PNG, SCORES_NPZ, COMPARE_JSON,
                COMPLETE)
#: an audit directory (``skmia audit``): the shared plan, per method its recipe, its
#: finished rounds (``audit_round_file(r)``) and result, the table of every method
AUDIT_FILES = {
    "plan": "audit.json",
    "recipe": "recipe.json",
    "rounds": "rounds",
    "result": "result",
    "table_csv": "summary.csv",
    "table_json": "summary.json",
    "complete": COMPLETE,
}
#: a saved :class:`skmia.audit.DefenseAudit` (``settings.json`` last)
AUDIT_RESULT_FILES = {"arrays": "arrays.safetensors", "summary": "summary.csv",
                      "per_record": "per_record.csv", "settings": "settings.json"}


#: a DP audit directory (``skmia audit-dp``): the shared settings, per audited setting
#: (a subfolder) its result and per-canary scores, the table and plot of every setting
DP_AUDIT_FILES = {
    "settings": "audit_dp.json",
    "result": "result.json",
    "scores": "scores.csv",
    "table_csv": "summary.csv",
    "table_json": "summary.json",
    "plot": "dp_audit.png",
    "complete": COMPLETE,
}


def audit_round_file(r):
    """The file of round ``r`` of a method in an audit directory."""
    return f"round_{r:04d}.safetensors"


# ------------------------------------------------------------------ the result schema


class Column:
    """A column of the results: its JSON type (a :func:`check_json` spec) and meaning.

    ``context``: it repeats the run's settings; ``required=False``: results written
    before the column existed lack it, and read it back as missing (NaN).
    """

    def __init__(self, spec, doc, context=False, required=True):
        self.spec, self.doc, self.context, self.required = spec, doc, context, required

    def __repr__(self):
        return f"Column({self.doc!r})"


_RATE = Opt(float)
#: suffixes of the bounds of a rate's 95 % Clopper-Pearson interval (``<rate><suffix>``)
INTERVAL_SUFFIXES = ("_low", "_high")


def _interval(rate):
    """The columns of the 95 % Clopper-Pearson interval of the column ``rate``."""
    return {rate + suffix: Column(_RATE, f"{bound} of the 95 % Clopper-Pearson interval "
                                         f"of {rate}", required=False)
            for suffix, bound in zip(INTERVAL_SUFFIXES, ("lower bound", "upper bound"),
                                     strict=True)}


#: Every column of a run's results, in order: ``name -> Column`` (its type and meaning).
#: ``attack/results.{csv,json}`` hold these; the report and the CLI read these.
RESULT_COLUMNS = {
    "dataset": Column(str, "dataset name", context=True),
    "model": Column(Opt(str), "network (CIFAR), empty for the MLP", context=True),
    "method": Column(str, "training method of the target"),
    "seed": Column(Int(0, 2**32 - 1), "seed of the split and training", context=True),
    "snapshot_epoch": Column(Opt(Int(0)), "epoch of an early-stopping snapshot; empty: "
                                          "the final model"),
    "epsilon": Column(_RATE, "the epsilon DP-SGD accounted"),
    "attack": Column(str, "attack name"),
    "train_accuracy": Column(_RATE, "target's accuracy on its members"),
    "test_accuracy": Column(_RATE, "target's accuracy on its non-members"),
    "accuracy": Column(_RATE, "attack accuracy, (TPR + TNR) / 2"),
    "auc": Column(_RATE, "attack ROC AUC"),
    "tpr_at_0.01%fpr": Column(_RATE, "TPR at 0.01 % FPR (empty below 10,000 non-members)"),
    **_interval("tpr_at_0.01%fpr"),
    "tpr_at_0.1%fpr": Column(_RATE, "TPR at 0.1 % FPR"),
    **_interval("tpr_at_0.1%fpr"),
    "tpr_at_1%fpr": Column(_RATE, "TPR at 1 % FPR"),
    **_interval("tpr_at_1%fpr"),
    # no "empirical_epsilon": no theorem turns one model's member / non-member errors into
    # a bound on epsilon (docs/auditing.rst); results that hold it still read (other keys
    # of a row are ignored)
    "shadow_method": Column(str, "the shadow's training method", context=True),
}
#: Columns of :func:`skmia.attacks.run_attacks`' table: one row per attack evaluated on
#: one model. A run's row of :data:`RESULT_COLUMNS` takes these, the target's two
#: accuracies as ``train_accuracy`` and ``test_accuracy``.
ATTACK_TABLE_COLUMNS = ("accuracy", "auc", "tpr_at_0.1%fpr", "tpr_at_1%fpr",
                        "target_train_accuracy", "target_test_accuracy")
#: columns that repeat the run's settings (shown once per run, not per row)
CONTEXT_COLUMNS = tuple(name for name, c in RESULT_COLUMNS.items() if c.context)
_RESULTS_SPEC = {"rows": ListOf({name: c.spec for name, c in RESULT_COLUMNS.items()
                                  if c.required})}
_ALL_RESULTS_SPEC = {"rows": ListOf({name: c.spec for name, c in RESULT_COLUMNS.items()})}
_OPTIONAL_RESULTS = {name: c.spec for name, c in RESULT_COLUMNS.items() if not c.required}

#: What ``params.json`` of a run must hold (other keys are allowed).
PARAMS_SCHEMA = {
    "dataset": str, "method": str, "model": Opt(str), "seed": Int(0, 2**32 - 1),
    "partition": OneOf("target", "shadow"), "estimator_params": MapOf(str),
}
HISTORY_SCHEMA = ListOf(MapOf(object))


# ---------------------------------------------------------------- the run directory


class RunDirectory:
    """A run (or audit) directory: its file names, and every read and write of them.

    Parameters
    ----------
    root : path-like
        The folder. It may itself be reached through a link (it is resolved once);
        nothing below it may be one.
    """

    def __init__(self, root):
        self.root = Path(root)

    def __repr__(self):
        return f"RunDirectory({str(self.root)!r})"

    def __fspath__(self):
        return str(self.root)

    # paths ---------------------------------------------------------------------
    def path(self, *parts):
        """``root/parts``, refused (:class:`UnsafePathError`) when a part is a link,
        is ``..`` or absolute, or the path resolves outside the folder."""
        path = self.root
        for part in Path(*parts).parts if parts else ():
            if part in ("..", ".", "") or os.path.isabs(part):
                raise UnsafePathError(f"{part!r} is not a name inside {str(self.root)!r}")
            path = path / part
            if path.is_symlink():
                raise UnsafePathError(
                    f"{str(path)!r} is a symbolic link; skmia never follows links inside a "
                    f"run directory (it could reach outside {str(self.root)!r}): remove it")
        if path.exists():
            real, base = path.resolve(), self.root.resolve()
            if real != base and base not in real.parents:
                raise UnsafePathError(f"{str(path)!r} resolves to {str(real)!r}, outside "
                                      f"{str(self.root)!r}")
        return path

    def child(self, *parts):
        """The folder ``parts`` below this one, as a :class:`RunDirectory` of its own."""
        return RunDirectory(self.path(*parts))

    def exists(self, *parts):
        return os.path.lexists(self.path(*parts))

    def is_file(self, *parts):
        """Whether ``parts`` is a regular file (a link or a FIFO is not)."""
        try:
            return stat.S_ISREG(os.lstat(self.path(*parts)).st_mode)
        except FileNotFoundError:
            return False

    def is_complete(self, *parts):
        """Whether the folder (or its subfolder ``parts``) holds ``complete.json``."""
        return self.is_file(*parts, COMPLETE)

    # reading -------------------------------------------------------------------
    def read_bytes(self, *parts):
        """The bytes of the regular file ``parts`` (never through a link, never a FIFO)."""
        path = self.path(*parts)
        return _read_regular(path, path)

    def read_json(self, *parts, spec=object):
        """The JSON document ``parts``, checked against ``spec`` (see :func:`check_json`)."""
        path = self.path(*parts)
        return parse_json(_read_regular(path, path), path, spec)

    def read_params(self):
        """``params.json``, checked against :data:`PARAMS_SCHEMA`."""
        return self.read_json(PARAMS, spec=PARAMS_SCHEMA)

    def read_results(self):
        """The attack results (``attack/results.json``) as a DataFrame of
        :data:`RESULT_COLUMNS`, each value checked against its column's type."""
        rows = self.read_json(ATTACK, RESULTS_JSON, spec=_RESULTS_SPEC)["rows"]
        where = self.path(ATTACK, RESULTS_JSON)
        for i, row in enumerate(rows):  # columns older results lack: checked where present
            for name, spec in _OPTIONAL_RESULTS.items():
                check_json(row.get(name), spec, where, f"rows.{i}.{name}")
        return _results_frame(rows)

    # writing -------------------------------------------------------------------
    def _target(self, parts):
        path = self.path(*parts)
        self.makedirs(*Path(*parts).parts[:-1])
        if os.path.isdir(path) and not os.path.islink(path):
            raise UnsafePathError(f"{str(path)!r} is a folder; expected a file")
        return path

    def makedirs(self, *parts):
        """Create the folder ``parts`` (and the root), checking each part for links."""
        self.root.mkdir(parents=True, exist_ok=True)
        for i in range(1, len(parts) + 1):
            path = self.path(*parts[:i])
            path.mkdir(exist_ok=True)
            if not path.is_dir():
                raise UnsafePathError(f"{str(path)!r} is not a folder")
        return self.path(*parts)

    def write_bytes(self, *parts, data):
        """Write ``data`` to ``parts`` atomically (a link there is refused, not followed)."""
        atomic_write_bytes(self._target(parts), data)

    def write_json(self, *parts, document):
        """Write ``document`` as JSON to ``parts`` atomically."""
        self.write_bytes(*parts, data=_json_bytes(document))

    def mark_complete(self, *parts, document=None):
        """Write ``complete.json`` (last) in the folder or its subfolder ``parts``."""
        self.write_json(*parts, COMPLETE, document=document or {})

    def write_results(self, rows, *, folder=ATTACK):
        """Write rows of :data:`RESULT_COLUMNS` as ``results.csv`` and ``results.json``
        in ``folder``; a row with another column, or a value of another type, is refused.
        Returns the table, as :meth:`read_results` gives it back."""
        clean = [{name: _json_value(row.get(name)) for name in RESULT_COLUMNS}
                 for row in rows]
        for row in rows:
            extra = sorted(set(row) - set(RESULT_COLUMNS))
            if extra:
                raise ValueError(f"result column(s) {extra} are not in RESULT_COLUMNS")
        check_json({"rows": clean}, _ALL_RESULTS_SPEC, self.path(folder, RESULTS_JSON))
        table = _results_frame(clean)
        self.write_bytes(folder, RESULTS_CSV, data=table.to_csv(index=False).encode())
        self.write_json(folder, RESULTS_JSON, document={"rows": clean})
        return table

    # removing ------------------------------------------------------------------
    def clear(self, *names, folder=()):
        """Remove the files ``names`` of the folder (or of its subfolder ``folder``);
        ``complete.json`` first, so a half-cleared folder never looks finished."""
        folder = (folder,) if isinstance(folder, str) else tuple(folder)
        if not os.path.lexists(self.path(*folder)):
            return
        for name in sorted(names, key=lambda n: n != COMPLETE):
            path = self.path(*folder, name)
            if os.path.isdir(path):
                raise UnsafePathError(f"{str(path)!r} is a folder; expected a file")
            path.unlink(missing_ok=True)

    def remove_tree(self, *parts):
        """Delete the folder ``parts`` and everything in it (links inside are removed,
        never followed); a link in its place is refused."""
        path = self.path(*parts)
        if os.path.lexists(path):
            if not path.is_dir():
                raise UnsafePathError(f"{str(path)!r} is not a folder")
            shutil.rmtree(path)

    def replace_folder(self, new, old):
        """Put the complete folder ``new`` in place of ``old``: ``old`` keeps its files
        until ``new`` is whole, then ``old`` is moved aside and deleted."""
        source, target = self.path(new), self.path(old)
        aside = self.path(f".{old}.old.{secrets.token_hex(4)}")
        moved = os.path.lexists(target)
        if moved:
            os.rename(target, aside)
        try:
            os.rename(source, target)
        except BaseException:
            if moved:  # put the previous folder back
                os.rename(aside, target)
            raise
        self.remove_tree(aside.name)

    # the lock ------------------------------------------------------------------
    def lock(self, purpose="training"):
        """Hold ``.lock`` for a ``with`` block; see :func:`hold_locks`."""
        return hold_locks([self], purpose)


def _results_frame(rows):
    """Rows of :data:`RESULT_COLUMNS` as a DataFrame: rates as floats (NaN where none)."""
    import pandas as pd

    table = pd.DataFrame(rows, columns=list(RESULT_COLUMNS))
    for name, column in RESULT_COLUMNS.items():
        if column.spec is _RATE:
            table[name] = table[name].astype(float)
    return table


def _json_value(value):
    """A value of a result row as JSON data: NaN and numpy scalars become None / Python."""
    if value is None:
        return None
    if hasattr(value, "item") and not isinstance(value, (str, bytes)):
        value = value.item()
    if isinstance(value, float) and math.isnan(value):
        return None
    return value
