"""The verdict of a defense audit, in words: what each method leaks, against vanilla's and
against the DP-SGD baseline at comparable accuracy, and which threat model breaks it.

A pure function of the audit's per-method table (what ``skmia audit`` prints and writes
as ``summary.json``: one row per method and threat model, the canaries' and the
population's TPR at low FPR of the strongest leave-one-out LiRA, the models' test
accuracy, DP-SGD's accounted ε), so that ``skmia audit``, ``skmia report`` and the HTML
page say the same thing. The comparison follows Aerni, Zhang & Tramèr (CCS 2024,
arXiv:2404.17399): a defense is measured on its most vulnerable records (the canaries)
and held against DP-SGD at comparable test accuracy.
"""

import math

from .._rundir import tpr_column

# the audit's threat-model names and FPRs, so the verdict words what the audit measured
from ..audit._result import BLACK_BOX, DEFENDED, LABEL_ONLY, MAX_FPRS, WHITE_BOX

__all__ = ["BROKEN_FRACTION", "COMPARABLE_ACCURACY", "audit_verdict", "epsilon_cell",
           "is_vacuous"]

#: A threat model breaks a defense when its adversary finds at least this fraction of the
#: canaries that vanilla's outputs give away (at the verdict's FPR): the defense does not
#: even halve the risk of the records it should protect most.
BROKEN_FRACTION = 0.5
#: Test accuracies that differ by at most this much are comparable (a DP-SGD baseline
#: at most this much less accurate than a defense still counts as "as accurate").
COMPARABLE_ACCURACY = 0.02
#: The FPRs of the audit table, lowest first: the verdict reads the lowest one that
#: resolves a canary rate.
_FPRS = tuple(MAX_FPRS)
#: How the verdict names the adversary of each threat model.
_FROM = {BLACK_BOX: "from its outputs", DEFENDED: "from its released outputs",
         LABEL_ONLY: "from its labels alone", WHITE_BOX: "from its raw network (white box)"}
_VANILLA = "vanilla"


def is_vacuous(epsilon):
    """Whether an accounted DP ε guarantees nothing useful (above
    :data:`~skmia.defenses._dp_accounting.MEANINGFUL_EPSILON`, 10, or infinite)."""
    if not _number(epsilon):
        return False  # before the import: the defenses load torch's optimisers, opacus
    # the ε above which DP-SGD warns, so the verdict flags the same ε
    from ..defenses._dp_accounting import MEANINGFUL_EPSILON

    return not epsilon <= MEANINGFUL_EPSILON


def epsilon_cell(epsilon):
    """A DP ε as a table shows it: empty for a method without one, ``"vacuous"`` beside an
    ε above 10 (as ``skmia compare`` marks it)."""
    if not _number(epsilon):
        return ""
    if is_vacuous(epsilon):
        return f"{epsilon:.3g} (vacuous)"
    return f"{epsilon:.2f}"


def audit_verdict(table):
    """The verdict of a defense audit, one line per method after a heading.

    Parameters
    ----------
    table : pandas.DataFrame
        The audit's per-method table: columns ``method``, ``threat_model``,
        ``test_accuracy``, ``canary_tpr_at_{0.1%,1%}fpr``,
        ``population_tpr_at_{0.1%,1%}fpr`` and ``epsilon`` (NaN for a method without
        DP accounting); one row per method and threat model, the threat model the
        method claims to stop first.

    Returns
    -------
    lines : list of str
        A heading naming the FPR read (0.1 %, or 1 % where no canary rate at 0.1 % is
        resolved), then per method, in the table's order: its test accuracy (and DP ε,
        "vacuous" above 10); the fraction of canaries and of the population found under
        each threat model, beside vanilla's; for a method that is neither vanilla nor
        DP-SGD, how it compares with the DP-SGD baseline at comparable accuracy (the
        DP-SGD row at least as accurate, less :data:`COMPARABLE_ACCURACY`, that finds the
        fewest canaries; the most accurate one, said to be less accurate, when none
        is); and the threat models that break it (finding at least
        :data:`BROKEN_FRACTION` of vanilla's canaries). A rate the audit could not
        resolve is "unresolved" and compared with nothing.
    """
    rows = [_row(r) for r in table.to_dict("records")]
    fpr = next((f for f in _FPRS if any(_number(r["canary"][f]) for r in rows)), _FPRS[-1])
    fallback = "" if fpr == _FPRS[0] else f"; {_pct(_FPRS[0])} FPR is unresolved in this audit"
    lines = [f"Verdict at {_pct(fpr)} FPR (TPR of the strongest attack: the fraction of "
             "the canaries, the records most at risk, and of the population, the other "
             f"records, found{fallback}):"]
    vanilla = next((r for r in rows if r["method"] == _VANILLA), None)
    dp = [r for r in rows if _number(r["epsilon"]) and r["method"] != _VANILLA]
    dp = [r for r in dp if r is _first(rows, r["method"])]
    methods = list(dict.fromkeys(r["method"] for r in rows))
    for method in methods:
        own = [r for r in rows if r["method"] == method]
        lines.append("- " + _method_verdict(own, vanilla, dp, fpr))
    if vanilla is None:
        lines.append("(no vanilla row in this audit: nothing to hold the methods against)")
    return lines


def _method_verdict(own, vanilla, dp, fpr):
    first = own[0]
    is_vanilla = first["method"] == _VANILLA
    head = f"{first['method']} (test acc. {_rate(first['accuracy'])}"
    if vanilla is not None and not is_vanilla:
        head += f", vanilla {_rate(vanilla['accuracy'])}"
    if _number(first["epsilon"]):
        vacuous = ", vacuous" if is_vacuous(first["epsilon"]) else ""
        head += f", DP ε {first['epsilon']:.3g}{vacuous}"
    parts = [head + ")"]
    reference = None if is_vanilla else vanilla
    parts.append(_leak_clause(own, "canary", "of canaries", reference, fpr))
    parts.append(_leak_clause(own, "population", "of the population", reference, fpr))
    text = parts[0] + ": " + "; ".join(parts[1:]) + "."
    if not is_vanilla and first not in dp and dp:
        text += " " + _dp_sentence(first, dp, fpr)
    broken = _broken(own, vanilla, fpr)
    if broken:
        text += " " + broken
    return text


def _leak_clause(own, part, what, reference, fpr):
    """``"0.703 of canaries from its released outputs (vanilla 0.978), 0.991 from its
    labels alone"``: one rate per threat model, the first beside vanilla's."""
    clauses = []
    for i, row in enumerate(own):
        value = row[part][fpr]
        where = "" if row["threat"] == BLACK_BOX else " " + _FROM.get(row["threat"],
                                                                       f"({row['threat']})")
        text = f"{_rate(value)} {what}{where}" if i == 0 else f"{_rate(value)}{where}"
        if i == 0 and reference is not None:
            text += f" (vanilla {_rate(reference[part][fpr])})"
        clauses.append(text)
    return ", ".join(clauses)


def _dp_sentence(row, dp, fpr):
    """How ``row`` compares with the DP-SGD baseline at comparable accuracy."""
    accurate = [d for d in dp if d["accuracy"] >= row["accuracy"] - COMPARABLE_ACCURACY]
    if not accurate:
        best = max(dp, key=lambda d: d["accuracy"])
        return (f"No DP-SGD baseline at comparable accuracy: the most accurate, "
                f"{best['method']}, reaches {_rate(best['accuracy'])} "
                f"({row['accuracy'] - best['accuracy']:.3f} less).")
    base = min(accurate, key=lambda d: _sort_key(d["canary"][fpr]))
    canary = _compare(row["canary"][fpr], base["canary"][fpr], "canaries")
    population = _compare(row["population"][fpr], base["population"][fpr],
                          "of the population")
    level = ("at comparable accuracy"
             if base["accuracy"] <= row["accuracy"] + COMPARABLE_ACCURACY else "more accurate")
    text = (f"Against DP-SGD {level} ({base['method']}, test acc. "
            f"{_rate(base['accuracy'])}): {canary} and {population}")
    dominated = (_less(base["canary"][fpr], row["canary"][fpr])
                 and not _less(row["population"][fpr], base["population"][fpr]))
    if dominated:
        text += f"; {base['method']} is as accurate and leaks less of both"
    return text + "."


def _broken(own, vanilla, fpr):
    """``"Broken from its labels alone: ..."``, or "" when no threat model breaks it."""
    if vanilla is None or own[0]["method"] == _VANILLA:
        return ""
    reference = vanilla["canary"][fpr]
    if not _number(reference) or reference <= 0:
        return ""
    broken = [r for r in own if _number(r["canary"][fpr])
              and r["canary"][fpr] >= BROKEN_FRACTION * reference]
    if not broken:
        return ""
    where = [_FROM.get(r["threat"], f"under {r['threat']}") for r in broken]
    where = ", ".join(where[:-1]) + " and " + where[-1] if len(where) > 1 else where[0]
    return (f"Broken {where}: {'each finds' if len(broken) > 1 else 'it finds'} at least "
            f"{BROKEN_FRACTION * 100:g} % of the canaries that vanilla's outputs give away "
            f"({_rate(reference)}).")


# --------------------------------------------------------------------------- helpers


def _row(record):
    """A table row as the verdict reads it."""
    threat = record.get("threat_model")
    return {"method": str(record["method"]),
            "threat": threat if isinstance(threat, str) else BLACK_BOX,
            "accuracy": float(record["test_accuracy"]),
            **{part: {f: _float(record.get(f"{part}_{tpr_column(f)}")) for f in _FPRS}
               for part in ("canary", "population")},
            "epsilon": _float(record.get("epsilon"))}


def _first(rows, method):
    return next(r for r in rows if r["method"] == method)


def _float(value):
    try:
        return float(value)
    except (TypeError, ValueError):
        return math.nan


def _number(value):
    return isinstance(value, (int, float)) and not math.isnan(value)


def _rate(value):
    return f"{value:.3f}" if _number(value) else "unresolved"


def _pct(fpr):
    return fpr.replace("%", " %")


def _sort_key(value):
    return value if _number(value) else math.inf


def _less(a, b):
    """Whether ``a`` is below ``b`` as the table prints them (3 decimals)."""
    return _number(a) and _number(b) and round(a, 3) < round(b, 3)


def _compare(value, base, what):
    """``"more canaries (0.703 vs 0.191)"``, ``"fewer ..."``, ``"as many ..."``."""
    if not (_number(value) and _number(base)):
        return f"{what} {_rate(value)} vs {_rate(base)}"
    word = "more" if _less(base, value) else "fewer" if _less(value, base) else "as many"
    return f"{word} {what} ({_rate(value)} vs {_rate(base)})"
