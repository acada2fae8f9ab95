"""Defense audits of every skmia defense: canary leakage at the accuracy each reaches.

For each dataset, every method of ``skmia.experiment.method_classes()`` is audited with
the protocol of Aerni, Zhang & Tramèr (CCS 2024, arXiv:2404.17399) through
``skmia.experiment._audit_dir.run_audit`` (what ``skmia audit`` runs): the same pool,
mislabeled canaries, test part and masks for every method of a dataset; ``--models``
models per method on balanced halves of the pool; leave-one-out LiRA on every
(record, model) pair. Writes to ``--out``: ``summary.md`` (the tables), ``summary.csv``
(one row per dataset and method) and ``defense_audit.png`` (canary TPR at 0.1 % FPR
against test accuracy, 95 % intervals). The audit directories under ``--out`` keep every
finished round of models: a second call resumes or grows them.

DP-SGD runs twice: with the paper's noise multiplier (0.01, no meaningful ε) and trained
to ``--dpsgd-epsilon`` (an untuned ε baseline, ε accounted); ``dpsgd_hu`` is the
high-utility setting of ``benchmarks/dpsgd_grid.py`` (the paper's baseline). HAMP and
MemGuard, which release modified outputs, get one row per threat model: their released
outputs (black box), their labels alone (label-only attack) and their raw network (white
box). MemGuard is in the default methods here, as the control its label-only row breaks.

    python benchmarks/defense_audit.py                      # 64 models, 30 epochs, MLP-256
    python benchmarks/defense_audit.py --models 16 --epochs 30   # the reduced run
"""

import argparse
import platform
import time
from datetime import date
from pathlib import Path

import pandas as pd

from skmia._rundir import AUDIT_FILES
from skmia.experiment import method_classes
from skmia.experiment._audit_dir import AuditConfig, audit_directory, run_audit
from skmia.report._audit import format_audit_table, row_label
from skmia.report._plots import _pyplot

DATASETS = ("location", "purchase-like")


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--methods", nargs="+", default=None,
                        help="default: every method, the controls (memguard) included")
    parser.add_argument("--models", type=int, default=64)
    parser.add_argument("--epochs", type=int, default=30)
    parser.add_argument("--hidden", type=int, nargs="+", default=[256])
    parser.add_argument("--records", type=int, default=5000,
                        help="records per dataset (pool + test part)")
    parser.add_argument("--canaries", type=int, default=250)
    parser.add_argument("--dpsgd-epsilon", type=float, default=8.0)
    parser.add_argument("--jobs", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--out", default="benchmarks/results/defense_audit")
    parser.add_argument("--finished-only", action="store_true",
                        help="tabulate the methods already audited in --out; train nothing")
    return parser.parse_args(argv)


def _variants(methods, epsilon):
    """(label, method, overrides): every method, DP-SGD also at a chosen ε."""
    for method in methods:
        yield method, method, {}
        if method == "dpsgd":
            yield f"dpsgd (ε={epsilon:g})", method, {"target_epsilon": epsilon}


def audit_dataset(args, dataset):
    rows = []
    # every method, the controls included: a defense that releases modified outputs
    # (HAMP, MemGuard) is audited under three threat models, whose rows show the control
    # breaking (label-only, white box) beside the black-box row it claims
    methods = args.methods or list(method_classes())
    for label, method, overrides in _variants(methods, args.dpsgd_epsilon):
        folder = Path(args.out) / ("eps" if overrides else "paper")
        done = audit_directory(folder, dataset, args.seed) / method / AUDIT_FILES["complete"]
        if args.finished_only and not done.is_file():
            print(f"{dataset} {label}: not audited in {folder}, left out", flush=True)
            continue
        config = AuditConfig(
            dataset=dataset, methods=(method,), models=args.models,
            canaries=args.canaries, records=args.records, seed=args.seed,
            epochs=args.epochs, hidden=tuple(args.hidden), overrides=overrides,
            out=str(folder), n_jobs=args.jobs, verbose=0,
        )
        start = time.perf_counter()
        try:
            table = run_audit(config)
        except (ValueError, RuntimeError) as exc:  # say it, keep the others
            print(f"{dataset} {label}: failed: {exc}", flush=True)
            continue
        table = table.assign(method=label, dataset=dataset,
                             seconds=round(time.perf_counter() - start))
        print(f"{dataset} {label}: {table['seconds'].iloc[0]} s", flush=True)
        rows.append(table)
    return pd.concat(rows, ignore_index=True)


def main(argv=None):
    args = parse_args(argv)
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    tables = {d: audit_dataset(args, d) for d in args.datasets}
    cpu = _cpu_name()
    lines = [f"Date {date.today()}, {cpu}, {args.models} models per method, "
             f"{args.epochs} epochs, MLP {args.hidden}, {args.records} records "
             f"({args.canaries} mislabeled canaries), seed {args.seed}, --jobs {args.jobs}.",
             ""]
    plt = _pyplot()
    fig, axes = plt.subplots(1, len(tables), figsize=(6 * len(tables), 4.5), squeeze=False)
    for ax, (dataset, table) in zip(axes[0], tables.items(), strict=True):
        lines += [f"### {dataset}", "", format_audit_table(table),
                  "seconds per method: " + ", ".join(
                      f"{m} {s}" for m, s in dict(zip(table["method"], table["seconds"],
                                                      strict=True)).items()), ""]
        _draw(ax, table, dataset)
    fig.tight_layout()
    fig.savefig(out / "defense_audit.png", dpi=120)
    pd.concat(tables.values()).to_csv(out / "summary.csv", index=False)
    (out / "summary.md").write_text("\n".join(lines))
    print("\n".join(lines))


def _cpu_name():
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown CPU"


def _draw(ax, table, title):
    for _, row in table.iterrows():
        tpr = row["canary_tpr_at_0.1%fpr"]
        if pd.isna(tpr):
            continue
        ax.errorbar([row["test_accuracy"]], [tpr],
                    yerr=[[tpr - row["canary_tpr_at_0.1%fpr_low"]],
                          [row["canary_tpr_at_0.1%fpr_high"] - tpr]],
                    marker="o", capsize=3, linestyle="none", label=row_label(row))
    ax.axhline(0.001, color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set(xlabel="test accuracy", ylabel="canary TPR at 0.1 % FPR", yscale="log",
           title=title)
    ax.legend(fontsize=7)


if __name__ == "__main__":
    main()
