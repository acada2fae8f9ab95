"""Tables of results gathered from run directories."""

import math
from pathlib import Path

import pandas as pd

from .._rundir import (
    ATTACK,
    COMPLETE,
    INTERVAL_SUFFIXES,
    RESULT_COLUMNS,
    RunDirectory,
    escape_text,
    find_folders,
)

__all__ = ["collect_results", "format_table", "shown_table", "REPORT_COLUMNS"]

#: Columns of :func:`collect_results`' table, in order: the result schema of every run,
#: :data:`skmia._rundir.RESULT_COLUMNS`.
REPORT_COLUMNS = tuple(RESULT_COLUMNS)


def collect_results(paths):
    """Gather the attack results of every finished run below ``paths``.

    Parameters
    ----------
    paths : iterable of path-like
        Run directories, or folders holding them at any depth (no symbolic link is
        followed).

    Returns
    -------
    table : pandas.DataFrame
        One row per (run, snapshot, attack), columns :data:`REPORT_COLUMNS`. Runs whose
        attack stage did not finish are left out.

    Raises
    ------
    ValueError
        A results file is a link, not a regular file, or holds a value of the wrong
        type; the message names the file and the key.
    """
    tables = []
    for root in paths:
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"{str(root)!r} does not exist")
        for attack in find_folders(root, COMPLETE):
            if attack.name == ATTACK:
                tables.append(RunDirectory.below(root, attack.parent).read_results())
    if not tables:
        return pd.DataFrame(columns=list(REPORT_COLUMNS))
    return pd.concat(tables, ignore_index=True)[list(REPORT_COLUMNS)]


def _cell(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return escape_text(value)


def markdown_cell(value):
    """``value`` as the text of a markdown table cell: control characters as escapes
    (no value moves the cursor or retitles a terminal), ``|`` escaped (no value adds a
    column), newlines shown as ``\\x0a``."""
    return escape_text(value).replace("|", "\\|")


#: The note under a table where a TPR cell is empty (see :func:`unresolved_note`).
UNRESOLVED_NOTE = (
    "A TPR cell left empty (\N{EM DASH} in the HTML report): the rate is unresolved (ties "
    "among the top-scoring non-members, or too few non-members, leave no threshold at "
    "that false-positive rate); it is not 0."
)


def unresolved_note(table):
    """:data:`UNRESOLVED_NOTE` when a ``tpr_at_*`` column shown has an empty cell, else ``""``.

    A column with no value at all is not shown, so it needs no note.
    """
    columns = [c for c in table.columns if str(c).startswith("tpr_at_")]
    shown = [table[c].map(_cell).ne("") for c in columns]
    return UNRESOLVED_NOTE if any(s.any() and not s.all() for s in shown) else ""


def _with_interval(value, low, high):
    """``"0.0399 [0.0251, 0.0601]"``: a rate and its interval as text (NaN: no rate)."""
    if _cell(value) == "":
        return float("nan")
    if _cell(low) == "" or _cell(high) == "":
        return _cell(value)
    return f"{_cell(value)} [{_cell(low)}, {_cell(high)}]"


def shown_table(table, exclude=()):
    """The table as every report shows it (the markdown table, the HTML results tables,
    ``skmia compare``): each rate with its 95 % Clopper-Pearson interval in one cell
    (``0.0399 [0.0251, 0.0601]``, from the ``<rate>_low`` / ``<rate>_high``
    columns of :data:`skmia._rundir.RESULT_COLUMNS`), without the columns ``exclude``
    and the columns that hold no value in any row. The CSV keeps the bounds as columns.
    """
    shown = table.copy()
    for column in table.columns:
        bounds = [column + suffix for suffix in INTERVAL_SUFFIXES]
        if all(b in table for b in bounds):
            shown[column] = [_with_interval(*v) for v in
                             zip(table[column], *(table[b] for b in bounds), strict=True)]
            shown = shown.drop(columns=bounds)
    columns = [c for c in shown.columns
               if c not in exclude and shown[c].map(_cell).ne("").any()]
    return shown[columns]


def format_table(table, fmt="markdown"):
    """Render a results table as ``"markdown"`` or ``"csv"`` text; control characters
    in any value (or column name) are printed as escapes, and ``|`` in markdown as
    ``\\|``. Markdown shows
    :func:`shown_table` (rates with their intervals, no empty column), with the note of
    :func:`unresolved_note` below it where a TPR cell is empty; CSV every column."""
    if fmt == "csv":
        safe = table.rename(columns=escape_text).map(
            lambda v: escape_text(v) if isinstance(v, str) else v)
        return safe.to_csv(index=False)
    if fmt != "markdown":
        raise ValueError(f"fmt must be 'markdown' or 'csv', got {fmt!r}")
    table = shown_table(table)
    columns = list(table.columns)
    header = "| " + " | ".join(markdown_cell(c) for c in columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(markdown_cell(_cell(v)) for v in row) + " |" for row in
            table[columns].itertuples(index=False)]
    note = unresolved_note(table)
    return "\n".join([header, rule, *body]) + "\n" + (f"\n{note}\n" if note else "")
