"""Do a defense audit's intervals hold over reruns? Location30, several seeds.

Runs :func:`skmia.audit.audit_defense` (vanilla, Location30, mislabeled canaries, an MLP
with one hidden layer, the default test part) once per seed and asks, for the canaries'
and the other records' rates under leave-one-out LiRA with fixed variance, how often
each seed's 95 % interval holds the other seeds' estimates: the measure of issue 28
(with Clopper-Pearson over pairs taken as independent, 2 of 12 at TPR 0.1 % FPR). Both
intervals are computed on the same audits: the two-way bootstrap over models and
records that ``summary_`` prints, and Clopper-Pearson over the pooled pairs
(:func:`skmia.metrics.tpr_at_fpr`). Each finished audit is saved under ``--out`` and
loaded on the next call instead of trained again.

    SKMIA_DATA_HOME=../shared/data python benchmarks/audit_intervals.py --seeds 0 1 2

An interval that covers the mean over reruns at 95 % holds another seed's estimate less
often than that (the other estimate has its own spread: about 83 % for two independent
estimates of equal spread and a normal interval), so read the count against the old
interval's, not against 95 %.
"""

import argparse
import time
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from skmia.audit import DefenseAudit, audit_defense, loo_lira_scores, make_canaries
from skmia.datasets import fetch_location30
from skmia.defenses import VanillaClassifier
from skmia.metrics import tpr_at_fpr

ATTACK = "lira_fixed_variance"
SUBSETS = {"canaries": "canary", "others": "population"}
RATES = {"tpr_at_0.1%fpr": 0.001, "tpr_at_1%fpr": 0.01, "auc": None}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--seeds", type=int, nargs="+", default=[0, 1, 2])
    parser.add_argument("--models", type=int, default=16)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, default=256)
    parser.add_argument("--canaries", type=int, default=250)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--out", default="benchmarks/results/audit_intervals")
    return parser.parse_args(argv)


def run_audit(args, seed, X, y):
    """The audit of ``seed``, loaded when saved before."""
    folder = Path(args.out) / f"seed{seed}"
    if (folder / "settings.json").is_file():
        return DefenseAudit.load(folder), 0.0
    start = time.perf_counter()
    canaries = make_canaries(X, y, args.canaries, random_state=seed)
    recipe = VanillaClassifier(module__hidden_sizes=(args.hidden,), max_epochs=args.epochs)
    audit = audit_defense(recipe, X, y, canaries=canaries, n_models=args.models,
                          n_jobs=args.jobs, random_state=seed)
    audit.save(folder)
    return audit, time.perf_counter() - start


def estimates(audit):
    """Per subset and rate: the estimate, the printed interval, Clopper-Pearson's."""
    rows = []
    table = audit.summary_.set_index(["threat_model", "subset", "attack"])
    for subset, part in SUBSETS.items():
        row = table.loc[(audit.primary_threat_model, subset, ATTACK)]
        rows_mask = audit.subsets()[subset]
        member = audit.in_mask[rows_mask].ravel()
        # the summary's scores: fixed variance pools the subset's records
        signal = audit.threat_models_[audit.primary_threat_model][rows_mask]
        score = loo_lira_scores(signal, audit.in_mask[rows_mask], fix_variance=True).ravel()
        for rate, max_fpr in RATES.items():
            cp = ((np.nan, np.nan) if max_fpr is None
                  else tpr_at_fpr(member, score, max_fpr=max_fpr)[1:3])
            rows.append({"part": part, "rate": rate, "value": row[rate],
                         "low": row[f"{rate}_low"], "high": row[f"{rate}_high"],
                         "cp_low": cp[0], "cp_high": cp[1]})
    return rows


def coverage(table):
    """How often each seed's interval (and Clopper-Pearson's) holds another's estimate."""
    out = []
    for (part, rate), group in table.groupby(["part", "rate"], sort=False):
        cases = held = cp_held = 0
        for _, mine in group.iterrows():
            for _, other in group[group["seed"] != mine["seed"]].iterrows():
                cases += 1
                held += mine["low"] <= other["value"] <= mine["high"]
                cp_held += mine["cp_low"] <= other["value"] <= mine["cp_high"]
        out.append({"part": part, "rate": rate, "cases": cases, "bootstrap": held,
                    "clopper_pearson": cp_held if rate != "auc" else np.nan})
    return pd.DataFrame(out)


def _cell(low, value, high):
    return f"{value:.4f} [{low:.4f}, {high:.4f}]"


def main(argv=None):
    args = parse_args(argv)
    Path(args.out).mkdir(parents=True, exist_ok=True)
    X, y = fetch_location30(return_X_y=True)
    rows = []
    for seed in args.seeds:
        audit, seconds = run_audit(args, seed, X, y)
        print(f"seed {seed}: {seconds:.0f} s", flush=True)
        rows += [{"seed": seed, **r} for r in estimates(audit)]
    table = pd.DataFrame(rows)
    table.to_csv(Path(args.out) / "estimates.csv", index=False)
    lines = [f"{date.today()}, seeds {args.seeds}, vanilla, Location30, {args.canaries} "
             f"canaries, {args.models} models, MLP-{args.hidden}, {args.epochs} epochs, "
             f"{ATTACK}", "",
             "| seed | part | rate | estimate [two-way bootstrap] | Clopper-Pearson over pairs |",
             "|---|---|---|---|---|"]
    for _, r in table.iterrows():
        cp = "" if np.isnan(r["cp_low"]) else f"[{r['cp_low']:.4f}, {r['cp_high']:.4f}]"
        lines.append(f"| {r['seed']} | {r['part']} | {r['rate']} | "
                     f"{_cell(r['low'], r['value'], r['high'])} | {cp} |")
    held = coverage(table)
    lines += ["", "| part | rate | cases | held by the bootstrap interval | held by "
              "Clopper-Pearson |", "|---|---|---|---|---|"]
    lines += [f"| {r.part} | {r.rate} | {r.cases} | {r.bootstrap} | "
              f"{'' if np.isnan(r.clopper_pearson) else int(r.clopper_pearson)} |"
              for r in held.itertuples()]
    at_low = held[held["rate"] == "tpr_at_0.1%fpr"]
    lines += ["", f"TPR at 0.1 % FPR, canaries and population: the bootstrap interval held "
                  f"{int(at_low['bootstrap'].sum())} of {int(at_low['cases'].sum())}, "
                  f"Clopper-Pearson {int(at_low['clopper_pearson'].sum())}."]
    (Path(args.out) / "summary.md").write_text("\n".join(lines) + "\n")
    print("\n".join(lines))


if __name__ == "__main__":
    main()
