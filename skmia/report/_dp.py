"""The report of a DP audit: claimed ε against each lower bound, the verdict, a plot."""

from pathlib import Path

import pandas as pd

from .._rundir import DP_AUDIT_FILES, RunDirectory, find_folders
from ._plots import _LINE_STYLES, _pyplot, figure_png

__all__ = ["dp_audit_figure", "dp_audit_sections", "find_dp_audits", "format_dp_audit_table",
           "plot_dp_audit"]


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
    for name in ("noise_multiplier", "claimed_epsilon", "heuristic_epsilon", "epsilon"):
        if name not in table or not pd.api.types.is_numeric_dtype(table[name]):
            raise ValueError(f"the DP audit table's {name} column is missing or not numeric")
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


# ------------------------------------------------------------------------ the HTML page

#: Columns of the HTML table of a DP audit (the verdict is written out in words).
_HTML_SHOWN = ("setting", "noise_multiplier", "claimed_epsilon", "heuristic_epsilon",
               "method", "epsilon", "confidence", "max_epsilon", "verdict")


def _is_number(value):
    return isinstance(value, (int, float)) and not isinstance(value, bool)


def _verdict(row, confidence):
    """"claim violated at 95 %" or "holds"; "—" where the row does not say."""
    violated = row.get("violated")
    if not isinstance(violated, bool):
        return None
    if not violated:
        return "holds"
    level = confidence if _is_number(confidence) else row.get("confidence")
    return (f"claim violated at {100 * level:g} %" if _is_number(level)
            else "claim violated")


def _html_rows(table, confidence):
    """The cells of each row; a lower bound limited by the canaries is starred."""
    rows, limited = [], False
    for row in table.to_dict("records"):
        cells = []
        for name in _HTML_SHOWN:
            value = row.get(name)
            if name == "verdict":
                value = _verdict(row, confidence)
            elif (name == "epsilon" and row.get("limited_by_counts") is True
                  and _is_number(value)):
                limited, value = True, f"{value:.4f}*"
            cells.append(value)
        rows.append(cells)
    return rows, limited


def _describe(settings, table):
    """``(dataset, sentence)``: what the audit audited, and how."""
    def first(name):
        value = settings.get(name)
        if value is None and name in table and len(table):
            value = table[name].iloc[0]
        return value

    methods = list(dict.fromkeys(str(m) for m in table.get("method", [])))
    runs, canaries, confidence = first("runs"), first("canaries"), first("confidence")
    many = _is_number(runs) and runs > 1
    how = [f"{len(methods)} method(s), {', '.join(methods)}",
           (f"many-run audit ({runs:g} runs of DP-SGD per canary set, "
            f"{settings.get('reference')} reference models)" if many
            else "one-run audit (one training, arXiv:2305.08846)"),
           ("white box: gradient canaries" if first("white_box") is True
            else f"black box: {settings.get('canary_kind', 'input')} canaries"),
           f"{canaries} canaries" if canaries is not None else "canaries not recorded",
           (f"verdict at confidence {100 * confidence:g} % (Bonferroni over the methods)"
            if _is_number(confidence) else "confidence not recorded")]
    return first("dataset"), "; ".join(how)


def dp_audit_sections(dp_audits, *, table_html, figure_html, escape, missing):
    """HTML of the DP audits below a report's paths (:func:`find_dp_audits`): per audit
    folder, a header (dataset, methods, one-run or many-run, black or white box,
    canaries, confidence), the table of the claimed ε against each lower bound with its
    verdict, and :func:`dp_audit_figure` over the noise multipliers. A figure that
    cannot be drawn is replaced by a line saying why, also appended to ``missing``."""
    if not dp_audits:
        return ""
    out = ["<h2>DP audits: claimed vs lower-bound \N{GREEK SMALL LETTER EPSILON}</h2>\n"]
    for folder, table in dp_audits:
        settings = RunDirectory(folder).read_json(DP_AUDIT_FILES["settings"], spec=dict)
        dataset, how = _describe(settings, table)
        on = f" on {dataset}" if dataset is not None else ""
        out.append(f'<section class="dp-audit" data-dp-audit="{escape(folder)}">\n'
                   f"<h3>DP-SGD audit{escape(on)}</h3>\n"
                   f'<p class="path">{escape(folder)}</p>\n<p>{escape(how)}.</p>\n')
        rows, limited = _html_rows(table, settings.get("confidence"))
        out.append(table_html(list(_HTML_SHOWN), rows, "dp-audit"))
        if limited:
            out.append('<p class="note">* limited by the number of canaries (at least 90 % '
                       "of max_epsilon, the bound of a perfect attack): more canaries could "
                       "show more.</p>\n")
        title = f"DP-SGD{on}: claimed ε vs lower bounds"
        try:
            png = plot_dp_audit(table, title=title)
        except (KeyError, TypeError, ValueError) as exc:
            why = f"the DP audit's plot cannot be drawn from its {DP_AUDIT_FILES['table_json']}"
            missing.append(f"{folder}: {why} ({exc!r})")
            out.append(f'<p class="missing">{escape(why)} ({escape(repr(exc))}): this '
                       "figure is not shown</p>\n")
        else:
            out.append(figure_html(
                png, f"claimed and lower-bound ε of {title}",
                "Claimed ε (accountant) and each method's lower bound against the noise "
                "multiplier; filled markers where the claim is violated.", "dp-audit"))
        out.append("</section>\n")
    return "".join(out)
