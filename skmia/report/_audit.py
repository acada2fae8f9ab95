"""Defense audits in reports: the per-method table, the privacy-utility plot of canary
TPR at 0.1 % FPR against test accuracy, and log-log ROC curves of canaries vs others."""

import math
from pathlib import Path

import numpy as np
import pandas as pd

from .._rundir import (
    AUDIT_FILES,
    ListOf,
    RunDirectory,
    escape_text,
    find_folders,
    summary_fprs,
    tpr_column,
)
from ._audit_page import point_offsets, roc_panels
from ._plots import _literal, _pyplot, figure_png
from ._tables import markdown_cell

__all__ = ["audit_roc_figure", "audit_privacy_utility_figure", "find_audits",
           "format_audit_table", "interval_note", "row_label"]

_UNRESOLVED = "unresolved"
#: what ``summary.json`` of an audit must hold for the report to find its methods (the
#: table itself is rebuilt from each method's saved arrays): a word where a method's name
#: belongs is refused naming the file and the key
_SUMMARY_ROW = {"method": str}


def find_audits(paths):
    """Finished audit directories below ``paths``: ``[(folder, table, {method: audit})]``
    (read through :class:`~skmia._rundir.RunDirectory`: no link is followed). The table
    is made again from each method's saved audit (:func:`skmia.audit._result.method_rows`),
    so that an audit saved before a change of the tables (an older interval, a column
    since removed) is reported as a new one would be."""
    # the audit's table rows, rebuilt from a saved result as the audit builds them
    from ..audit._result import AUDIT_COLUMNS, DefenseAudit, method_rows

    found = []
    for root in paths:
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"{str(root)!r} does not exist")
        for path in find_folders(root, AUDIT_FILES["plan"]):
            folder = RunDirectory.below(root, path)
            if not folder.is_complete():
                continue
            rows = folder.read_json(AUDIT_FILES["table_json"],
                                    spec={"rows": ListOf(_SUMMARY_ROW)})["rows"]
            methods = list(dict.fromkeys(pd.DataFrame(rows)["method"]))
            audits = {m: DefenseAudit.load(folder.child(str(m), AUDIT_FILES["result"]))
                      for m in methods}
            table = pd.DataFrame([row for m in methods for row in method_rows(m, audits[m])])
            found.append((path, table.reindex(columns=AUDIT_COLUMNS), audits))
    return found


def _rate_cell(value, low=None, high=None):
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return _UNRESOLVED
    if low is None:
        return f"{value:.3f}"
    return f"{value:.3f} [{low:.3f}, {high:.3f}]"


def _threat_models(table):
    """The threat model of each row (tables written before it was a column: black box)."""
    if "threat_model" not in table:
        return ["black-box"] * len(table)
    return [t if isinstance(t, str) else "black-box" for t in table["threat_model"]]


def row_label(row):
    """How a plot names a row: its method, and its threat model unless plain black box."""
    threat = row.get("threat_model")
    if not isinstance(threat, str) or threat == "black-box":
        return str(row["method"])
    return f"{row['method']}, {threat}"


def _column(table, name):
    """A column of the table, all NaN where it lacks it (a table of an older skmia)."""
    return table[name] if name in table else pd.Series(np.nan, index=table.index)


def _with_interval(table, key):
    return [_rate_cell(v, lo, hi) for v, lo, hi in
            zip(_column(table, key), _column(table, f"{key}_low"), _column(table, f"{key}_high"),
                strict=True)]


def audit_display_table(table):
    """The per-method table as strings: rates with their intervals, the
    per-record-calibrated TPR, "unresolved" for NaN. No empirical ε: none with a theorem
    applies to pooled leave-one-out pairs (a table saved with one is shown without)."""
    from ._verdict import epsilon_cell

    shown = pd.DataFrame({"method": table["method"],
                          "threat model": _threat_models(table),
                          "models": table["n_models"], "attack": table["attack"]})
    shown["test acc."] = [f"{a:.3f} ± {s:.3f}" for a, s in
                          zip(table["test_accuracy"], table["test_accuracy_std"], strict=True)]
    for part in ("canary", "population"):
        for name in summary_fprs():
            shown[f"{part} TPR@{name}"] = _with_interval(table, f"{part}_{tpr_column(name)}")
        for name in summary_fprs():
            shown[f"{part} per-record TPR@{name}"] = [
                _rate_cell(v) for v in _column(table, f"{part}_record_{tpr_column(name)}")]
    for part in ("canary", "population"):
        shown[f"{part} AUC"] = _with_interval(table, f"{part}_auc")
    shown["DP ε"] = [epsilon_cell(v) for v in table["epsilon"]]
    return shown


def interval_note(table):
    """The line that says which procedure gave the table's intervals."""
    named = sorted({v for v in _column(table, "interval") if isinstance(v, str) and v})
    return "; ".join(named) or ("95 % Clopper-Pearson interval over pairs taken as "
                                "independent (a table of an older skmia: too narrow)")


def format_audit_table(table):
    """The per-method table as markdown, with the intervals' procedure and a footnote
    for unresolved rates (control characters and ``|`` in any value escaped, as
    :func:`markdown_cell` does)."""
    from ._verdict import audit_verdict

    shown = audit_display_table(table)
    lines = ["| " + " | ".join(map(markdown_cell, shown.columns)) + " |",
             "|" + "|".join("---" for _ in shown.columns) + "|"]
    lines += ["| " + " | ".join(map(markdown_cell, row)) + " |"
              for row in shown.itertuples(index=False)]
    lines += ["", f"intervals: {interval_note(table)}; per-record TPR: each record's "
                  "threshold on its own OUT scores (arXiv:2605.25819)"]
    notes = sorted({n for part in _column(table, "note") if isinstance(part, str)
                    for n in part.split("; ") if n})
    lines += [f"note: {escape_text(n)}" for n in notes]
    lines += ["", *map(escape_text, audit_verdict(table))]  # names reach a terminal
    return "\n".join(lines) + "\n"


def audit_privacy_utility_figure(table, *, title=None):
    """Canary TPR at the audit table's lowest FPR (0.1 %; with its 95 % interval)
    against test accuracy per method."""
    from matplotlib.transforms import offset_copy

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    shifts = point_offsets(table["test_accuracy"])  # a method's threat models side by side
    name, rate = next(iter(summary_fprs().items()))  # the lowest FPR of the audit table
    column = f"canary_{tpr_column(name)}"
    for shift, (_, row) in zip(shifts, table.iterrows(), strict=True):
        tpr = row[column]
        if tpr is None or np.isnan(tpr):
            continue
        err = [[tpr - row[column + "_low"]],
               [row[column + "_high"] - tpr]]
        ax.errorbar([row["test_accuracy"]], [tpr], yerr=err,
                    xerr=[[row["test_accuracy_std"]], [row["test_accuracy_std"]]],
                    marker="o", capsize=3, linestyle="none", label=row_label(row),
                    transform=offset_copy(ax.transData, fig=fig, x=shift, units="points"))
        x, dx = row["test_accuracy"], row["test_accuracy_std"]  # shifted marks: not counted
        ax.update_datalim([(x - dx, row[column + "_low"]),
                           (x + dx, row[column + "_high"])])
    ax.margins(x=0.08)  # room for the shifted marks at either end
    ax.autoscale_view()
    ax.axhline(rate, color="grey", linestyle=":", linewidth=1, label="chance (FPR)")
    ax.set(xlabel="test accuracy (mean ± std over models)",
           ylabel=f"canary TPR at {name[:-1]} % FPR (95 % interval)", title=title, yscale="log")
    ax.legend(fontsize=7, loc="best")
    _literal(fig).tight_layout()  # names are text, never mathtext
    return fig


def audit_roc_figure(audit, *, title=None, threat_model=None):
    """Log-log ROC curves of the audit's attack on canary pairs and on the others', under
    ``threat_model`` (default: the one the defense claims to stop)."""
    from ..metrics import attack_roc_curve

    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(4.5, 4.5))
    threat_model = threat_model or audit.primary_threat_model
    attack = audit.strongest(threat_model)
    score = audit.threat_scores_[threat_model][attack]
    for name, rows in audit.subsets().items():
        if name == "all":
            continue
        s, m = score[rows].ravel(), audit.in_mask[rows].ravel()
        if not np.isfinite(s).all() or m.all() or not m.any():
            continue
        fpr, tpr, _ = attack_roc_curve(m, s)
        ax.plot(fpr, tpr, label=f"{name}, {attack} ({m.sum()} member pairs)")
    ax.plot([1e-5, 1], [1e-5, 1], color="grey", linestyle=":", linewidth=1)
    ax.set(xscale="log", yscale="log", xlim=(1e-4, 1), ylim=(1e-4, 1.02),
           xlabel="false-positive rate", ylabel="true-positive rate", title=title)
    ax.legend(fontsize=7, loc="lower right")
    _literal(fig).tight_layout()  # names are text, never mathtext
    return fig


def audit_sections(audits, *, table_html, figure_html, escape):
    """HTML of every audit: its table, privacy-utility plot, ROC curves per method."""
    out = []
    for folder, table, results in audits:
        shown = audit_display_table(table)
        out.append(f"<h2>Defense audit: {escape(folder)}</h2>\n"
                   "<p>Leave-one-out LiRA over every (record, model) pair; TPR at a low FPR "
                   "and AUC over the pooled pairs of the canaries and of the other records "
                   f"(population). Intervals: {escape(interval_note(table))} (they assume "
                   "models drawn independently from the training algorithm and records from "
                   "the pool, not independent pairs). Per-record TPR: each record's "
                   "threshold at the FPR on its own OUT scores, averaged over records; "
                   "unresolved with fewer than 1/FPR OUT models per record. No empirical "
                   "ε is shown: no theorem bounds ε from pooled leave-one-out pairs. Each "
                   "row says the threat model it assumes: a defense that releases modified "
                   "outputs (HAMP, MemGuard) is audited on what it releases, on its labels "
                   "alone and on its raw network.</p>\n")
        out.append(table_html(list(shown.columns), shown.itertuples(index=False), "audit"))
        out.append(figure_html(figure_png(audit_privacy_utility_figure(table)),
                               "privacy-utility", "Canary TPR at 0.1 % FPR against test "
                               "accuracy; lower and to the right is better.", "audit-pu"))
        for method, threat, audit in roc_panels(table, results):
            name = row_label({"method": method, "threat_model": threat})
            out.append(figure_html(figure_png(audit_roc_figure(audit, title=name,
                                                               threat_model=threat)),
                                   f"ROC {name}", f"{method}, {threat}: "
                                   f"{audit.strongest(threat)}, {audit.n_models} models",
                                   "audit-roc"))
    return "".join(out)
