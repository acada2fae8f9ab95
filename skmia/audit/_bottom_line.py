"""The bottom line of a model audit: the strongest attack at each FPR, why attacks that
should agree do not, what an unresolved rate would need, and each record's risk.

:func:`~skmia.audit.audit_model` runs many attacks; a reader wants one answer. The
bottom-line row takes, at each FPR, the attack that finds most members (an adversary
runs every attack it can), and a note explains the attacks that find significantly
fewer (their 95 % interval wholly below the strongest's), from what the signals show:
a threshold shared by every record against per-record calibration, LiRA's Gaussians on
reference scores that do not spread (a forest's votes, probabilities of 1), the 2-fold
thresholds' use of membership labels. ``per_record_`` ranks the audited records by the
FPR at which the bottom-line attack flags them, as ``per_record_`` of
:class:`~skmia.audit.DefenseAudit` ranks a defense audit's.
"""

import numpy as np
import pandas as pd

from .._rundir import tpr_column

__all__ = ["BOTTOM_LINE", "ModelAudit", "add_bottom_line", "attack_progress", "bottom_line",
           "per_record",
           "risk_attack", "signal_diagnostics", "unresolved_notes"]

#: The ``attack`` of the bottom-line row.
BOTTOM_LINE = "bottom line"
#: Reference scores of a record that spread less than this (φ, logit scale) give LiRA's
#: Gaussian no width.
_FLAT = 1e-6
#: Above this share of records with flat reference scores, LiRA's Gaussians are the
#: reason it falls behind.
_FLAT_SHARE = 0.05


class ModelAudit(pd.DataFrame):
    """The table :func:`~skmia.audit.audit_model` returns: a DataFrame, one row per attack
    and the bottom line, with ``per_record_`` (see :func:`per_record`). Operations on it
    give plain DataFrames."""

    _metadata = ["per_record_"]

    @property
    def _constructor(self):
        return pd.DataFrame


def _family(attack):
    if attack.startswith("LiRA"):
        return "lira"
    if attack.startswith(("RMIA", "Attack-R")):
        return "bank"
    if attack == "QMIA":
        return "population"
    if attack == "label-only":
        return "label-only"
    return "threshold"


def signal_diagnostics(signals):
    """What the signals say about why attacks disagree: the share of records whose
    reference scores do not spread among their IN models or among their OUT models
    (``flat_reference``, NaN without a bank), the number of distinct target scores
    (``distinct_scores``) and of reference models (``n_reference``)."""
    ref = sorted(c for c in signals.columns if c.startswith("ref_score_"))
    out = {"distinct_scores": int(signals["score"].nunique()), "n_records": len(signals),
           "n_reference": len(ref), "flat_reference": np.nan}
    if ref:
        score = signals[ref].to_numpy(dtype=np.float64)
        inside = signals[[c.replace("score", "in") for c in ref]].to_numpy(dtype=bool)
        with np.errstate(invalid="ignore"):
            spread_in = np.nanstd(np.where(inside, score, np.nan), axis=1)
            spread_out = np.nanstd(np.where(~inside, score, np.nan), axis=1)
        out["flat_reference"] = float(np.mean((spread_in < _FLAT) | (spread_out < _FLAT)))
    return out


def _reason(best, weaker, diagnostics):
    """Why ``weaker`` finds fewer members than ``best`` at a low FPR."""
    b, w = _family(best), _family(weaker)
    if w == "lira" and b == "bank":
        flat = diagnostics["flat_reference"]
        if flat >= _FLAT_SHARE:
            return (f"for {flat:.0%} of the records the reference models' scores do not "
                    f"spread (the model's {diagnostics['distinct_scores']} distinct scores "
                    f"on {diagnostics['n_records']} records: votes or probabilities that "
                    "saturate), so LiRA's per-record Gaussians have no width; "
                    f"{best} compares ranks against the reference scores and needs none")
        return (f"LiRA fits a Gaussian to each record's scores under "
                f"{diagnostics['n_reference']} reference models, {best} only ranks "
                "them: where the scores are not Gaussian (skewed, clipped) ranks hold up")
    if b in ("lira", "bank") and w == "threshold":
        return (f"{weaker} sets one threshold for every record (per class at most), which "
                "misses members that are confident only relative to their own reference "
                f"scores; {best} calibrates each record against the reference models")
    if b in ("lira", "bank") and w == "population":
        return (f"{weaker} predicts each record's threshold from its features, learnt on "
                f"population records; {best} reads how models trained with and without "
                "the record itself score it")
    if b == "threshold" and best != "Attack-P" and w in ("lira", "bank", "population"):
        return (f"{best}'s threshold was fitted on half of the audited members and "
                "non-members (the auditor's view, with membership labels); "
                f"{weaker} uses no membership label, as an adversary without them")
    if w == "label-only":
        return f"{weaker} sees the predicted label only, {best} the model's confidences"
    return f"{best} and {weaker} read different signals; the bottom line takes the stronger"


def _fpr_text(name):
    return name.replace("%", " %")


def bottom_line(table, max_fprs, diagnostics):
    """The bottom-line row (``attack`` :data:`BOTTOM_LINE`) of ``table`` and the notes on
    attacks that disagree.

    At each FPR of ``max_fprs`` (``{"1%": 0.01, ...}``) the row holds the highest resolved
    TPR and that attack's interval; ``auc`` is the highest AUC; the row's model columns
    are the table's, its ``accuracy`` and ``empirical_epsilon`` are NaN (a maximum over
    attacks is no attack's, and no bound at 95 %). ``fitted_on`` names the strongest
    attack at each FPR. A note is given per FPR and per family of attacks (thresholds,
    population, LiRA, other reference-model attacks, label-only) whose strongest member's
    interval lies wholly below the strongest attack's lower bound.
    """
    row = table.iloc[0].to_dict()
    row.update({"attack": BOTTOM_LINE, "accuracy": np.nan, "empirical_epsilon": np.nan,
                "auc": table["auc"].max()})
    strongest, notes = [], []
    for name in max_fprs:
        key = tpr_column(name)
        resolved = table.dropna(subset=[key])
        if resolved.empty:
            row[key] = row[f"{key}_low"] = row[f"{key}_high"] = np.nan
            strongest.append(f"{_fpr_text(name)}: unresolved")
            continue
        best = resolved.loc[resolved[key].idxmax()]
        for end in ("", "_low", "_high"):
            row[f"{key}{end}"] = best[f"{key}{end}"]
        strongest.append(f"{_fpr_text(name)}: {best['attack']}")
        notes.extend(_disagreements(resolved, best, key, name, diagnostics))
    row["fitted_on"] = "the strongest attack at each FPR: " + ", ".join(strongest)
    return row, notes


def _disagreements(resolved, best, key, name, diagnostics):
    notes = []
    families = resolved.assign(family=[_family(a) for a in resolved["attack"]])
    for family, group in families.groupby("family", sort=False):
        if family == _family(best["attack"]):
            continue
        top = group.loc[group[key].idxmax()]
        if top["attack"] == best["attack"] or not top[f"{key}_high"] < best[f"{key}_low"]:
            continue
        notes.append(
            f"at {_fpr_text(name)} FPR {best['attack']} finds {best[key]:.3f} "
            f"[{best[f'{key}_low']:.3f}, {best[f'{key}_high']:.3f}] of the members and "
            f"{top['attack']} {top[key]:.3f} [{top[f'{key}_low']:.3f}, "
            f"{top[f'{key}_high']:.3f}]: {_reason(best['attack'], top['attack'], diagnostics)}")
    return notes


def unresolved_notes(max_fprs, n_nonmembers, table):
    """One note per FPR that no attack resolves: the non-members it would need (at least
    1/FPR, one false positive; 10/FPR for an interval worth reading), or the ties that
    leave no threshold there."""
    notes = []
    for name, fpr in max_fprs.items():
        if table[tpr_column(name)].notna().any():
            continue
        need = int(np.ceil(1 / fpr - 1e-9))
        if n_nonmembers * fpr * (1 + 1e-9) < 1:
            notes.append(f"TPR at {_fpr_text(name)} FPR unresolved: {n_nonmembers:,} "
                         f"non-members, it needs at least {need:,} (1/FPR: one false "
                         f"positive; {10 * need:,} for an interval of use)")
        else:
            notes.append(f"TPR at {_fpr_text(name)} FPR unresolved: more than "
                         f"{fpr * n_nonmembers:g} of the {n_nonmembers:,} non-members tie "
                         "at the top score of every attack, so no threshold has that FPR; "
                         "more non-members help only if they break the ties")
    return notes


def per_record(scores, membership, attack):
    """Each audited record's risk under ``attack``: ``record`` (its row in the members,
    or in the non-members), ``member``, ``score`` and ``fpr_flagged``, the FPR of the
    threshold at its score (the fraction of non-members scoring at least as high; lower
    is riskier), sorted riskiest first."""
    score = np.asarray(scores[attack], dtype=np.float64)
    member = np.asarray(membership) == 1
    out_scores = np.sort(score[~member])
    flagged = (len(out_scores) - np.searchsorted(out_scores, score, side="left")) \
        / max(1, len(out_scores))
    record = np.where(member, np.cumsum(member) - 1, np.cumsum(~member) - 1)
    table = pd.DataFrame({"record": record, "member": member, "attack": attack,
                          "score": score, "fpr_flagged": flagged})
    table = table.sort_values(["fpr_flagged", "score"], ascending=[True, False],
                              kind="stable")
    return table.reset_index(drop=True)


def risk_attack(table, max_fprs):
    """The attack behind ``per_record_``: the strongest at the lowest FPR that some attack
    resolves, else the one of highest AUC."""
    for name in max_fprs:
        key = tpr_column(name)
        if table[key].notna().any():
            return table.loc[table[key].idxmax(), "attack"]
    if table["auc"].notna().any():
        return table.loc[table["auc"].idxmax(), "attack"]
    return table["attack"].iloc[0]


def add_bottom_line(table, scores, membership, signals, max_fprs, notes):
    """``table`` with its bottom-line row last, as a :class:`ModelAudit` whose
    ``per_record_`` ranks the records; the notes on unresolved rates and disagreeing
    attacks are appended to ``notes``."""
    diagnostics = signal_diagnostics(signals)
    row, disagreements = bottom_line(table, max_fprs, diagnostics)
    notes.extend(unresolved_notes(max_fprs, int(np.sum(np.asarray(membership) == 0)), table))
    notes.extend(disagreements)
    bottom = pd.DataFrame([row], columns=table.columns).astype(table.dtypes.to_dict())
    result = ModelAudit(pd.concat([table, bottom], ignore_index=True))
    result.per_record_ = per_record(scores, membership, risk_attack(table, max_fprs))
    return result


class _Progress:
    """A tqdm bar whose ``step(name)`` counts one step done and names it."""

    def __init__(self, bar):
        self.bar = bar

    def step(self, name):
        self.bar.set_postfix_str(str(name), refresh=False)
        self.bar.update(1)

    def close(self):
        self.bar.close()


def attack_progress(n_attacks, verbose):
    """A progress bar over a model audit's signals and its ``n_attacks`` attacks, with
    tqdm's estimate of the time left; silent at ``verbose=0``. Close it when done."""
    from tqdm.auto import tqdm

    return _Progress(tqdm(total=1 + n_attacks, desc="audit_model: signals and attacks",
                          unit="step", disable=not verbose, leave=True))
