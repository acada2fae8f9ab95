"""The parts of the HTML page that describe a defense audit: its header (what was audited,
how, and the verdict), one ROC figure per method and threat model, and the offsets that
keep the privacy-utility plot's points from hiding one another."""

import numpy as np

__all__ = ["audit_header", "point_offsets", "roc_panels"]

#: Horizontal distance, in points, between markers of rows whose test accuracies are
#: too close to tell apart on the plot (a method's threat models share one accuracy).
OFFSET_POINTS = 9
#: Accuracies closer than this fraction of the plotted range share a column of markers.
_SAME_COLUMN = 0.015


def point_offsets(accuracies):
    """Horizontal offsets in points for markers at ``accuracies``: rows whose accuracies
    are within 1.5 % of the range of each other are spread side by side, centred on
    their place, so that none hides another; a row alone keeps its place (offset 0)."""
    x = np.asarray(accuracies, dtype=np.float64)
    offsets = np.zeros(len(x))
    finite = np.flatnonzero(np.isfinite(x))
    if len(finite) == 0:
        return offsets
    span = max(np.ptp(x[finite]), 0.05)
    order = finite[np.argsort(x[finite], kind="stable")]
    groups, current = [], [order[0]]
    for i in order[1:]:
        if x[i] - x[current[-1]] <= _SAME_COLUMN * span:
            current.append(i)
        else:
            groups.append(current)
            current = [i]
    groups.append(current)
    for group in groups:
        group = sorted(group)  # the table's order, left to right
        for k, i in enumerate(group):
            offsets[i] = (k - (len(group) - 1) / 2) * OFFSET_POINTS
    return offsets


def roc_panels(table, results):
    """``(method, threat_model, audit)`` of every row of the audit table: one ROC figure
    each, so the page shows a labelled curve for every (method, threat model) row."""
    threats = (table["threat_model"] if "threat_model" in table
               else [None] * len(table))
    panels = []
    for method, threat in zip(table["method"], threats, strict=True):
        audit = results[method]
        if not isinstance(threat, str) or threat not in audit.threat_models_:
            threat = audit.primary_threat_model
        panels.append((str(method), threat, audit))
    return panels


def audit_header(audits, escape):
    """HTML at the top of the page for the defense audits below it: per audit folder,
    what it audited (methods, dataset, models, records, canaries) and its verdict."""
    from ._verdict import audit_verdict  # imports the audit (torch): only with audits

    out = []
    for folder, table, results in audits:
        methods = list(dict.fromkeys(str(m) for m in table["method"]))
        first = next(iter(results.values()), None)
        details = []
        if first is not None:
            dataset = first.settings.get("dataset")
            n_models = sorted({int(a.n_models) for a in results.values()})
            details.append(f"{' or '.join(map(str, n_models))} models per method")
            details.append(f"{len(first.is_canary):,} records in the pool, "
                           f"{int(first.is_canary.sum()):,} of them canaries")
        else:
            dataset = None
        on = f" on {dataset}" if dataset else ""
        n_threats = len(table)
        out.append(
            f'<div class="audit-header"><p><strong>Defense audit{escape(on)}</strong> '
            f"({escape(folder)}): {len(methods)} method(s), {escape(', '.join(methods))}; "
            f"{n_threats} (method, threat model) row(s); {escape('; '.join(details))}. "
            "Leave-one-out LiRA attacks every (record, model) pair.</p>\n")
        lines = audit_verdict(table)
        out.append(f'<p class="verdict">{escape(lines[0])}</p>\n<ul class="verdict">\n'
                   + "".join(f"<li>{escape(line[2:])}</li>\n" for line in lines[1:]
                             if line.startswith("- "))
                   + "</ul>\n"
                   + "".join(f"<p class=\"verdict\">{escape(line)}</p>\n" for line in lines[1:]
                             if not line.startswith("- "))
                   + "</div>\n")
    return "".join(out)
