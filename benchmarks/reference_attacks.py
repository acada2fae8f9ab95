"""Reference-model attacks against defenses, as the bank of reference models grows.

For each dataset and method, trains a target on the split's ``target_train`` (seed
1000, the reference protocol), then a bank of ``K_max`` reference models trained the
same way (same method and settings: an adversary who knows the defense) on the pool
``target_train + target_test`` — the audited records, each IN half of the models. The
population of RMIA, Attack-P and QMIA is the split's ``reference`` part (never audited,
in no model). Every attack is evaluated on the audited records with the first K models of the
bank, for K = 1, 2, 4, 8, 16 (the first K of a balanced bank are a balanced bank, K
even): AUC and TPR at 0.1 % / 1 % FPR, plus the empirical ε of LiRA online at the
largest K (:func:`skmia.metrics.empirical_epsilon`, δ = 1e-5, threshold chosen on half
of the records) next to DP-SGD's accounted ε.

An attack that cannot run with K models (online attacks need 2 IN and 2 OUT models per
record; with one model, half the records have no OUT model) is left empty and says
why in ``notes``. The threshold attacks (best of confidence, entropy, modified entropy,
loss, fitted on the target's own signals: the auditor's most favourable view),
Attack-P, QMIA and the label-only attack do not use the bank: one row each, under K = 0.
RMIA runs three ways: the library's default (softmax, γ = 1); "T=2 (CLI)", the softmax at
the authors' temperature 2 with γ = 2 (what ``skmia run --attacks rmia`` runs); "Taylor",
the authors' soft-margin Taylor signal (temperature 2, margin 0.6, 4 terms, γ = 2) with a
20 % trimmed mean of the reference probabilities.
A TPR the scores cannot resolve (ties among the top-scoring non-members) is printed —.

Writes ``summary.md`` (one table per dataset: rows method × attack, columns K),
``results.csv`` (every number) and prints the tables.

Presets:

``--quick`` (the default)
    Location30 (real, 2,004 audited records) and purchase-like (synthetic, 20,000 rows:
    8,000 audited), an MLP of one hidden layer of 256 units, 30 epochs at a constant
    learning rate, methods vanilla, relaxloss, dpsgd, label_smoothing,
    confidence_penalty (their settings from ``skmia.experiment.run_defaults``), K up to
    16.
``--tiny``
    Location30, vanilla, 2 epochs, K up to 4: checks that the script works.

    python benchmarks/reference_attacks.py --quick --jobs 2 --out bench/reference
    python benchmarks/reference_attacks.py --datasets location --methods vanilla relaxloss

The purchase-like data are SYNTHETIC: their rows say how the defenses behave on data of
that shape, nothing about Purchase100.
"""

import argparse
import datetime
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import numpy as np
import pandas as pd

PRESETS = {
    "tiny": {"datasets": ("location",), "methods": ("vanilla",), "epochs": 2, "k": (1, 2, 4)},
    "quick": {
        "datasets": ("location", "purchase-like"),
        "methods": ("vanilla", "relaxloss", "dpsgd", "label_smoothing", "confidence_penalty"),
        "epochs": 30,
        "k": (1, 2, 4, 8, 16),
    },
}
HIDDEN = (256,)
#: RMIA with the authors' tuned signal: their CIFAR configurations' temperature, margin,
#: Taylor terms and gamma; the trimmed share measured best of 0, 0.1, 0.2 on Location30.
TAYLOR_RMIA = {"gamma": 2.0, "signal": "taylor_soft_margin", "temperature": 2.0,
               "margin": 0.6, "taylor_terms": 4, "trim": 0.2}
FPRS = {"tpr_at_0.1%fpr": 0.001, "tpr_at_1%fpr": 0.01}


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    preset = parser.add_mutually_exclusive_group()
    preset.add_argument("--quick", action="store_const", dest="preset", const="quick")
    preset.add_argument("--tiny", action="store_const", dest="preset", const="tiny")
    parser.add_argument("--datasets", nargs="+", default=None)
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--epochs", type=int, default=None)
    parser.add_argument("--k", nargs="+", type=int, default=None,
                        help="bank sizes to evaluate (the bank has the largest)")
    parser.add_argument("--seed", type=int, default=1000)
    parser.add_argument("--jobs", type=int, default=1, help="reference models trained at once")
    parser.add_argument("--data-home", default=None)
    parser.add_argument("--out", default=None, help="folder for summary.md and results.csv")
    args = parser.parse_args(argv)
    settings = PRESETS[args.preset or "quick"]
    for key in ("datasets", "methods", "epochs", "k"):
        if getattr(args, key) is None:
            setattr(args, key, settings[key])
    return args


def estimator(method, dataset, epochs, seed):
    """The method's defense with the run's settings, on the benchmark's small MLP."""
    from skmia.experiment import method_classes, run_defaults

    params = run_defaults(method, dataset)
    params.update(max_epochs=epochs, milestones=(), module__hidden_sizes=HIDDEN,
                  random_state=seed)
    if "snapshot_epochs" in params:
        params["snapshot_epochs"] = (epochs,)
    return method_classes()[method](**params)


def load(dataset, seed, data_home):
    """The dataset's membership split, as ``skmia run`` makes it."""
    from skmia.model_selection._split import load_split

    return load_split(dataset, seed, data_home)


def reference_attacks():
    """name -> (attack, calibrated on "audited" or "population" signals)."""
    from skmia.attacks import CLI_RMIA, LiRAAttack, ReferenceAttack, RMIAAttack

    return {
        "LiRA online": (LiRAAttack(), "audited"),
        "LiRA online, fixed variance": (LiRAAttack(fix_variance=True), "audited"),
        "LiRA offline": (LiRAAttack(online=False), "audited"),
        "LiRA offline, fixed variance": (LiRAAttack(online=False, fix_variance=True),
                                         "audited"),
        "RMIA online": (RMIAAttack(gamma=1.0, temperature=1.0), "population"),
        "RMIA offline": (RMIAAttack(offline_a=0.3, gamma=1.0, temperature=1.0), "population"),
        "RMIA online, T=2 (CLI)": (RMIAAttack(**CLI_RMIA), "population"),
        "RMIA offline, T=2 (CLI)": (RMIAAttack(offline_a=0.3, **CLI_RMIA), "population"),
        "RMIA online, Taylor": (RMIAAttack(**TAYLOR_RMIA), "population"),
        "RMIA offline, Taylor": (RMIAAttack(offline_a=0.3, **TAYLOR_RMIA), "population"),
        "Attack-R": (ReferenceAttack(), "audited"),
    }


def _model_of(column):
    """The reference model a ``ref_*`` column belongs to, or None for other columns."""
    if column.startswith(("ref_score_aug_", "ref_logit_")):
        return int(column.split("_")[-2 if column.startswith("ref_logit_") else -1])
    if column.startswith(("ref_score_", "ref_in_")):
        return int(column.rsplit("_", 1)[1])
    return None


def first_models(signals, k):
    """``signals`` with the ``ref_*`` columns of the first ``k`` models only."""
    drop = [c for c in signals.columns if (_model_of(c) or 0) >= k]
    return signals.drop(columns=drop)


def metrics(membership, score):
    """AUC and the TPRs at low FPR: NaN where too few non-members or ties leave it unresolved."""
    from skmia.metrics import attack_auc, tpr_at_fpr

    row = {"auc": attack_auc(membership, score)}
    n_out = int(np.sum(membership == 0))
    for key, fpr in FPRS.items():
        rate = tpr_at_fpr(membership, score, max_fpr=fpr) if fpr * n_out >= 1 else None
        row[key] = rate.tpr if rate is not None and rate.resolved else np.nan
    return row


def audit(dataset, method, args):
    """Rows of one (dataset, method): every attack, every K."""
    from skmia.attacks import (
        LabelOnlyAttack,
        PopulationAttack,
        QuantileAttack,
        compute_signals,
        default_attacks,
    )
    from skmia.metrics import empirical_epsilon
    from skmia.model_selection import ReferenceModels

    split = load(dataset, args.seed, args.data_home)
    X_pool, y_pool, membership, _ = split.audit_pool()
    start = time.perf_counter()
    target = estimator(method, dataset, args.epochs, args.seed)
    target.fit(split.target_train.X, split.target_train.y)
    bank = ReferenceModels(estimator(method, dataset, args.epochs, args.seed),
                           n_estimators=max(args.k), n_jobs=args.jobs, random_state=args.seed)
    bank.fit(X_pool, y_pool)
    seconds = time.perf_counter() - start
    audited = compute_signals(target, X_pool, y_pool, reference=bank,
                              pool_index=np.arange(len(y_pool)), reference_logits=True,
                              features=True, label_only=True,
                              label_only_params={"n_queries": 16, "random_state": 0})
    population = compute_signals(target, split.reference.X, split.reference.y, reference=bank,
                                 reference_logits=True, features=True)
    base = {"dataset": dataset, "method": method,
            "test_accuracy": float(np.mean(target.predict(split.target_test.X)
                                           == split.target_test.y)),
            "epsilon": getattr(target, "epsilon_", np.nan), "train_seconds": seconds}
    rows = []
    best, best_name = None, None
    for name, attack in default_attacks(white_box=False).items():
        if name == "NN":
            continue
        row = metrics(membership, attack.fit(audited, membership).decision_function(audited))
        if best is None or row["auc"] > best["auc"]:
            best, best_name = row, name
    rows.append({**base, "attack": f"best threshold ({best_name})", "k": 0, **best})
    for name, attack in (("Attack-P", PopulationAttack()),
                         ("QMIA", QuantileAttack(random_state=args.seed)),
                         ("label-only", LabelOnlyAttack())):
        attack.fit(audited if name == "label-only" else population)
        rows.append({**base, "attack": name, "k": 0,
                     **metrics(membership, attack.decision_function(audited))})
    for k in args.k:
        audited_k, population_k = first_models(audited, k), first_models(population, k)
        for name, (attack, calibration) in reference_attacks().items():
            try:
                attack.fit(audited_k if calibration == "audited" else population_k)
                score = attack.decision_function(audited_k)
            except ValueError as exc:
                rows.append({**base, "attack": name, "k": k, "notes": str(exc).split(";")[0]})
                continue
            row = {**base, "attack": name, "k": k, **metrics(membership, score)}
            if name == "LiRA online" and k == max(args.k):
                row["empirical_epsilon"] = empirical_epsilon(membership, score)
            rows.append(row)
    return rows


def _rate(value):
    """A TPR cell: three decimals, or ``—`` where the rate is unresolved."""
    return "\N{EM DASH}" if pd.isna(value) else f"{value:.3f}"


def tables(results, ks):
    """One markdown table per dataset: rows method x attack, columns AUC / TPR per K."""
    out = []
    for dataset, frame in results.groupby("dataset", sort=False):
        out.append(f"\n### {dataset}\n")
        header = ["method", "test acc", "ε (DP)", "attack", "K=0 (no bank)",
                  *(f"K={k}" for k in ks)]
        out.append("| " + " | ".join(header) + " |")
        out.append("|" + "---|" * len(header))
        for (method, attack), group in frame.groupby(["method", "attack"], sort=False):
            first = group.iloc[0]
            cells = [method, f"{first['test_accuracy']:.3f}",
                     "" if pd.isna(first["epsilon"]) else f"{first['epsilon']:.3g}", attack]
            for k in (0, *ks):
                hit = group[group["k"] == k]
                if hit.empty:
                    cells.append("")
                elif pd.isna(hit.iloc[0].get("auc", np.nan)):
                    cells.append("n/a")
                else:
                    r = hit.iloc[0]
                    cells.append(f"{r['auc']:.3f} / {_rate(r['tpr_at_0.1%fpr'])} / "
                                 f"{_rate(r['tpr_at_1%fpr'])}")
            out.append("| " + " | ".join(cells) + " |")
        eps = frame.dropna(subset=["empirical_epsilon"]) if "empirical_epsilon" in frame else []
        if len(eps):
            out.append("\nEmpirical ε of LiRA online at K=" + str(max(ks)) + " (δ = 1e-5, 95 %): "
                       + ", ".join(f"{r.method} {r.empirical_epsilon:.2f}"
                                   for r in eps.itertuples()))
    return "\n".join(out) + "\n"


def main(argv=None):
    from skmia._rundir import atomic_write_bytes, atomic_write_text

    args = parse_args(argv)
    start = time.perf_counter()
    rows = []
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # DP-SGD's weak-privacy warning is in the table
        for dataset in args.datasets:
            for method in args.methods:
                rows.extend(audit(dataset, method, args))
                print(f"{dataset} {method}: done [{time.perf_counter() - start:.0f} s]",
                      file=sys.stderr)
    results = pd.DataFrame(rows)
    import torch

    header = (
        f"Reference-model attacks, {datetime.date.today()}, {platform.machine()} "
        f"{platform.processor() or ''} ({torch.get_num_threads()} torch threads), "
        f"torch {torch.__version__}; seed {args.seed}, {args.epochs} epochs, MLP {HIDDEN}, "
        f"bank of {max(args.k)} models trained like the target, {args.jobs} job(s); "
        f"{time.perf_counter() - start:.0f} s in all.\n"
        f"Command: python benchmarks/reference_attacks.py {shlex.join(argv or sys.argv[1:])}\n"
        "Cells: AUC / TPR at 0.1 % FPR / TPR at 1 % FPR; — where the scores leave the rate "
        "unresolved (ties among the top-scoring non-members: no threshold reaches that "
        "FPR, which a 0 would misreport).\n"
    )
    text = header + tables(results, args.k)
    print(text)
    if args.out:
        out = Path(args.out)
        atomic_write_text(out / "summary.md", text)
        atomic_write_bytes(out / "results.csv", results.to_csv(index=False).encode())
    return results


if __name__ == "__main__":
    main()
