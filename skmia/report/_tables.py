"""Tables of results gathered from run directories."""

import math
from pathlib import Path

import pandas as pd

from .._io import read_json

__all__ = ["collect_results", "format_table", "REPORT_COLUMNS"]

#: Columns of :func:`collect_results`' table, in order.
REPORT_COLUMNS = (
    "dataset",
    "model",
    "method",
    "seed",
    "snapshot_epoch",
    "epsilon",
    "attack",
    "train_accuracy",
    "test_accuracy",
    "accuracy",
    "auc",
    "tpr_at_0.1%fpr",
    "tpr_at_1%fpr",
    "shadow_method",
)


def collect_results(paths):
    """Gather the attack results of every finished run below ``paths``.

    Parameters
    ----------
    paths : iterable of path-like
        Run directories, or folders holding them at any depth.

    Returns
    -------
    table : pandas.DataFrame
        One row per (run, snapshot, attack), columns :data:`REPORT_COLUMNS`. Runs whose
        attack stage did not finish are left out.
    """
    rows = []
    for root in paths:
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"{str(root)!r} does not exist")
        for marker in sorted(root.rglob("attack/complete.json")):
            rows.extend(read_json(marker.parent / "results.json")["rows"])
    table = pd.DataFrame(rows)
    for column in REPORT_COLUMNS:
        if column not in table:
            table[column] = None
    return table[list(REPORT_COLUMNS)]


def _cell(value):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return ""
    if isinstance(value, float):
        return f"{value:.4f}"
    return str(value)


def format_table(table, fmt="markdown"):
    """Render a results table as ``"markdown"`` or ``"csv"`` text."""
    if fmt == "csv":
        return table.to_csv(index=False)
    if fmt != "markdown":
        raise ValueError(f"fmt must be 'markdown' or 'csv', got {fmt!r}")
    columns = [c for c in table.columns if table[c].map(_cell).ne("").any()]
    header = "| " + " | ".join(columns) + " |"
    rule = "|" + "|".join("---" for _ in columns) + "|"
    body = ["| " + " | ".join(_cell(v) for v in row) + " |" for row in
            table[columns].itertuples(index=False)]
    return "\n".join([header, rule, *body]) + "\n"
