"""The report of a DP audit: claimed ε against each lower bound, the verdict, a plot."""

from pathlib import Path

import pandas as pd

from .._rundir import DP_AUDIT_FILES, RunDirectory, find_folders
from ._plots import _LINE_STYLES, _pyplot, figure_png

__all__ = ["dp_audit_figure", "find_dp_audits", "format_dp_audit_table", "plot_dp_audit"]


def find_dp_audits(paths):
    """Finished DP audit directories (``skmia audit-dp``) below ``paths``:
    ``[(folder, table)]``, read through :class:`~skmia._rundir.RunDirectory`."""
    found = []
    for root in paths:
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"{str(root)!r} does not exist")
        for path in find_folders(root, DP_AUDIT_FILES["settings"]):
            folder = RunDirectory(path)
            if folder.is_complete():
                rows = folder.read_json(DP_AUDIT_FILES["table_json"],
                                        spec={"rows": list})["rows"]
                found.append((path, pd.DataFrame(rows)))
    return found

_SHOWN = ("setting", "noise_multiplier", "claimed_epsilon", "heuristic_epsilon", "method",
          "epsilon",
          "confidence", "max_epsilon", "verdict")


def format_dp_audit_table(table):
    """The table of :func:`skmia.experiment._dp_audit.run_dp_audit` as Markdown: per
    setting and method, the claimed ε, the heuristic last-iterate ε (what a strong audit
    of the last model can hope to reach), the lower bound (with its confidence), the largest
    bound the counts allow and the verdict; a footnote where the counts limit a bound."""
    lines = ["| " + " | ".join(_SHOWN) + " |", "|" + "|".join("---" for _ in _SHOWN) + "|"]
    limited = False
    for row in table.to_dict("records"):
        cells = []
        for name in _SHOWN:
            value = row[name]
            if name == "epsilon" and row["limited_by_counts"]:
                limited = True
                cells.append(f"{value:.3g}*")
            elif name == "verdict":
                cells.append("**violated**" if row["violated"] else "holds")
            elif isinstance(value, float):
                cells.append(f"{value:.3g}")
            else:
                cells.append(str(value))
        lines.append("| " + " | ".join(cells) + " |")
    if limited:
        lines += ["", "\\* limited by the number of canaries (at least 90 % of max_epsilon, "
                      "the bound of a perfect attack): more canaries could show more."]
    return "\n".join(lines) + "\n"


def dp_audit_figure(table, *, title=None):
    """Claimed ε and each method's lower bound against the noise multiplier (ε on a
    log scale above 0.1, linear below, so that a bound of 0 shows);
    filled markers where the claim is violated."""
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    claims = table.drop_duplicates("setting").sort_values("noise_multiplier")
    ax.plot(claims["noise_multiplier"], claims["claimed_epsilon"], color="black",
            marker="s", label="claimed ε (accountant)")
    ax.plot(claims["noise_multiplier"], claims["heuristic_epsilon"], color="grey",
            linestyle=":", marker="^", label="heuristic last-iterate ε")
    for i, (method, rows) in enumerate(table.groupby("method", sort=False)):
        rows = rows.sort_values("noise_multiplier")
        line, = ax.plot(rows["noise_multiplier"], rows["epsilon"],
                        linestyle=_LINE_STYLES[i % len(_LINE_STYLES)], marker="o",
                        markerfacecolor="none", label=f"lower bound: {method}")
        bad = rows[rows["violated"].astype(bool)]
        if len(bad):
            ax.plot(bad["noise_multiplier"], bad["epsilon"], linestyle="none", marker="o",
                    color=line.get_color())
    ax.set(xlabel="noise multiplier σ", ylabel="ε at δ (lower bounds at their confidence)",
           title=title)
    ax.set_yscale("symlog", linthresh=0.1)  # a bound of 0 (no evidence) stays visible
    ax.legend(fontsize=7, loc="best")
    fig.tight_layout()
    return fig


def plot_dp_audit(table, *, title=None):
    """:func:`dp_audit_figure` as PNG bytes."""
    return figure_png(dp_audit_figure(table, title=title))
