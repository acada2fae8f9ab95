"""The run directory: every file name of a run, safe reads and writes, the result schema.

A **run directory** (``<out>/<dataset>[/<model>]/<method>/seed<seed>/``, made by
``skmia run``) and an **audit directory** (made by ``skmia audit``) are folders that
skmia writes and later reads back. :class:`RunDirectory` is the one object that knows
their file names and touches their files; no other module spells a file name of a run.

Everything in such a folder is untrusted input: a folder can be copied from elsewhere,
edited, or hold links. :class:`RunDirectory` therefore

- never follows a symbolic link: a path of the folder that is a link, or passes through
  one, is refused with :class:`UnsafePathError` naming it, and nothing outside the
  folder is read, written or deleted, even while another process swaps a subfolder for
  a link: every name below the root is opened with ``O_NOFOLLOW`` relative to its
  parent's descriptor (``dir_fd``), so none is resolved twice (``_files``; where a
  platform has no ``dir_fd``, names are checked then used by path);
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

import contextlib
import math
import os
import secrets
import stat
from pathlib import Path

from ._files import (
    UnsafePathError,
    _json_bytes,
    _refuse_link,
    atomic_write_bytes,
    atomic_write_json,
    atomic_write_text,
    find_folders,
    listdir_at,
    lstat_at,
    open_folder,
    read_at,
    read_json,
    rename_at,
    rmtree_at,
    unlink_at,
    write_at,
)
from ._fprs import FPR_TABLE, result_fprs, summary_fprs, tpr_column
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
from ._layout import (
    ATTACK,
    ATTACK_FILES,
    ATTACK_STAGING,
    AUDIT,
    AUDIT_DP,
    AUDIT_FILES,
    AUDIT_RESULT_FILES,
    CHECKPOINT,
    COMPARE_JSON,
    COMPLETE,
    DP_AUDIT_FILES,
    HISTORY,
    LOSS_HIST_PNG,
    MODEL_JSON,
    MODEL_WEIGHTS,
    PARAMS,
    REFERENCE,
    RESULTS_CSV,
    RESULTS_JSON,
    ROC_PNG,
    RUN_FILES,
    SCORES_NPZ,
    SHADOW,
    audit_folder,
    audit_round_file,
    dp_audit_folder,
    run_folder,
    seed_folder,
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
    "FPR_TABLE", "result_fprs", "summary_fprs", "tpr_column", "ATTACK_STAGING", "AUDIT_DP",
    "audit_folder", "dp_audit_folder", "run_folder", "seed_folder",
]

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


def _tpr_columns(name, rate):
    """The TPR column at the FPR ``name`` (:data:`FPR_TABLE`) and its interval's."""
    column = tpr_column(name)
    doc = f"TPR at {name[:-1]} % FPR (empty below {round(1 / rate):,} non-members)"
    return {column: Column(_RATE, doc), **_interval(column)}


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
    **{column: kind for name, rate in result_fprs().items()
       for column, kind in _tpr_columns(name, rate).items()},
    # no "empirical_epsilon": no theorem turns one model's member / non-member errors into
    # a bound on epsilon (docs/auditing.rst); results that hold it still read (other keys
    # of a row are ignored)
    "shadow_method": Column(str, "the shadow's training method", context=True),
}
#: Columns of :func:`skmia.attacks.run_attacks`' table: one row per attack evaluated on
#: one model. A run's row of :data:`RESULT_COLUMNS` takes these, the target's two
#: accuracies as ``train_accuracy`` and ``test_accuracy``.
ATTACK_TABLE_COLUMNS = ("accuracy", "auc", *(tpr_column(name) for name in summary_fprs()),
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
    root : path-like or RunDirectory
        The folder. It may itself be reached through a link (its path is the caller's
        choice); nothing below it may be one. A :class:`RunDirectory` given (such as a
        :meth:`child`) keeps the folder it is below: its names are walked from there.

    Notes
    -----
    Every read and write walks the folder by descriptor (``dir_fd``): each name below
    the root is opened with ``O_NOFOLLOW`` relative to its parent's descriptor, and files
    are created with ``O_EXCL | O_NOFOLLOW`` and renamed into place relative to their
    folder's, so a subfolder another process swaps for a link meanwhile is refused,
    never followed. Where the platform has no ``dir_fd`` (``_files.DIR_FD`` False), each
    name is checked, then used by path.
    """

    def __init__(self, root):
        if isinstance(root, RunDirectory):
            self._top, self._below = root._top, root._below
        else:
            self._top, self._below = Path(root), ()
        self.root = self._top.joinpath(*self._below)

    def __repr__(self):
        return f"RunDirectory({str(self.root)!r})"

    def __fspath__(self):
        return str(self.root)

    # paths ---------------------------------------------------------------------
    def _names(self, parts):
        """``parts`` as names, each a single name inside the folder."""
        names = Path(*parts).parts if parts else ()
        for part in names:
            if part in ("..", ".", "") or os.path.isabs(part):
                raise UnsafePathError(f"{part!r} is not a name inside {str(self.root)!r}")
        return names

    def path(self, *parts):
        """``root/parts``, refused (:class:`UnsafePathError`) when a part is a link,
        is ``..`` or absolute, or the path resolves outside the folder. For messages and
        for callers that need a path: reads and writes of the folder's files go through
        this object's methods, which resolve no name twice."""
        path = self.root
        for part in self._names(parts):
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

    @classmethod
    def below(cls, root, folder):
        """The folder ``folder`` found below ``root`` (by :func:`find_folders`), walked
        from ``root``: no name between them is followed as a link when it is read."""
        return cls(root).child(*Path(folder).relative_to(root).parts)

    def child(self, *parts):
        """The folder ``parts`` below this one, as a :class:`RunDirectory` of its own
        (walked from this one's root: no name of ``parts`` is ever followed as a link)."""
        child = RunDirectory(self)
        child._below = (*self._below, *self._names(parts))
        child.root = self._top.joinpath(*child._below)
        return child

    def _folder(self, names, create=False):
        """The open folder ``root/names`` (a ``with`` block's handle)."""
        return open_folder(self._top, (*self._below, *names), create=create)

    def _stat(self, parts):
        """``lstat`` of ``parts`` (None when it or a folder above it is missing); a link
        is refused, at any depth."""
        names = self._names(parts)
        if not names:
            return os.stat(self.root) if os.path.isdir(self.root) else None
        try:
            with self._folder(names[:-1]) as handle:
                st = lstat_at(handle, names[-1])
        except FileNotFoundError:
            return None
        _refuse_link(st, self.root.joinpath(*names))
        return st

    def exists(self, *parts):
        return self._stat(parts) is not None

    def is_file(self, *parts):
        """Whether ``parts`` is a regular file (a FIFO is not; a link is refused)."""
        st = self._stat(parts)
        return st is not None and stat.S_ISREG(st.st_mode)

    def is_complete(self, *parts):
        """Whether the folder (or its subfolder ``parts``) holds ``complete.json``."""
        return self.is_file(*parts, COMPLETE)

    def listdir(self, *parts):
        """The names in the folder ``parts`` (empty when it does not exist)."""
        try:
            with self._folder(self._names(parts)) as handle:
                return listdir_at(handle)
        except FileNotFoundError:
            return []

    # reading -------------------------------------------------------------------
    def read_bytes(self, *parts):
        """The bytes of the regular file ``parts`` (never through a link, never a FIFO)."""
        names = self._names(parts)
        shown = self.root.joinpath(*names)
        try:
            with self._folder(names[:-1]) as handle:
                return read_at(handle, names[-1], shown)
        except FileNotFoundError:
            raise FileNotFoundError(f"{str(shown)!r} does not exist") from None

    def read_json(self, *parts, spec=object):
        """The JSON document ``parts``, checked against ``spec`` (see :func:`check_json`)."""
        return parse_json(self.read_bytes(*parts), self.root.joinpath(*self._names(parts)),
                          spec)

    def read_params(self):
        """``params.json``, checked against :data:`PARAMS_SCHEMA`."""
        return self.read_json(PARAMS, spec=PARAMS_SCHEMA)

    def read_results(self):
        """The attack results (``attack/results.json``) as a DataFrame of
        :data:`RESULT_COLUMNS`, each value checked against its column's type."""
        rows = self.read_json(ATTACK, RESULTS_JSON, spec=_RESULTS_SPEC)["rows"]
        where = self.root / ATTACK / RESULTS_JSON
        for i, row in enumerate(rows):  # columns older results lack: checked where present
            for name, spec in _OPTIONAL_RESULTS.items():
                check_json(row.get(name), spec, where, f"rows.{i}.{name}")
        return _results_frame(rows)

    # writing -------------------------------------------------------------------
    def makedirs(self, *parts):
        """Create the folder ``parts`` (and the root), no part through a link."""
        names = self._names(parts)
        with self._folder(names, create=True):
            pass
        return self.root.joinpath(*names)

    def write_bytes(self, *parts, data):
        """Write ``data`` to ``parts`` atomically (a link there is refused, not followed)."""
        names = self._names(parts)
        with self._folder(names[:-1], create=True) as handle:
            write_at(handle, names[-1], data, self.root.joinpath(*names))

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
        check_json({"rows": clean}, _ALL_RESULTS_SPEC, self.root / folder / RESULTS_JSON)
        table = _results_frame(clean)
        self.write_bytes(folder, RESULTS_CSV, data=table.to_csv(index=False).encode())
        self.write_json(folder, RESULTS_JSON, document={"rows": clean})
        return table

    # removing ------------------------------------------------------------------
    def clear(self, *names, folder=()):
        """Remove the files ``names`` of the folder (or of its subfolder ``folder``);
        ``complete.json`` first, so a half-cleared folder never looks finished."""
        folder = self._names((folder,) if isinstance(folder, str) else tuple(folder))
        try:
            with self._folder(folder) as handle:
                for name in sorted(names, key=lambda n: n != COMPLETE):
                    st = lstat_at(handle, name)
                    if st is None:
                        continue
                    if stat.S_ISDIR(st.st_mode):
                        raise UnsafePathError(f"{str(self.root.joinpath(*folder, name))!r} "
                                              "is a folder; expected a file")
                    with contextlib.suppress(FileNotFoundError):
                        unlink_at(handle, name)  # a link is removed, never followed
        except FileNotFoundError:
            return

    def remove_tree(self, *parts):
        """Delete the folder ``parts`` and everything in it (links inside are removed,
        never followed); a link in its place is refused."""
        names = self._names(parts)
        if not names:
            raise UnsafePathError(f"refusing to delete the folder {str(self.root)!r} itself")
        st = self._stat(names)
        if st is None:
            return
        if not stat.S_ISDIR(st.st_mode):
            raise UnsafePathError(f"{str(self.root.joinpath(*names))!r} is not a folder")
        with self._folder(names[:-1]) as handle:
            rmtree_at(handle, names[-1])

    def replace_folder(self, new, old):
        """Put the complete folder ``new`` in place of ``old``: ``old`` keeps its files
        until ``new`` is whole, then ``old`` is moved aside and deleted."""
        aside = f".{old}.old.{secrets.token_hex(4)}"
        with self._folder(()) as handle:
            for name in (new, old):
                _refuse_link(lstat_at(handle, name), self.root / name)
            moved = lstat_at(handle, old) is not None
            if moved:
                rename_at(handle, old, aside)
            try:
                rename_at(handle, new, old)
            except BaseException:
                if moved:  # put the previous folder back
                    rename_at(handle, aside, old)
                raise
            if moved:
                rmtree_at(handle, aside)

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
