"""Privacy-utility table: every defense against every attack, on the tabular datasets.

For each dataset and each method of ``skmia.experiment.method_classes()`` (the methods
this skmia has), trains a target model and a shadow model with the settings of
``skmia.experiment.run_defaults`` (the paper's, per dataset) through
``skmia.experiment.train``, attacks each target with every attack of the reference code
through ``skmia.experiment.attack``, and writes, into ``--out``:

- ``summary.md``: per dataset, one row per method: test and train accuracy, ε (DP-SGD),
  the strongest attack's AUC, the best TPR at 0.1 % FPR, then each attack's ACC / AUC,
  as mean ± std over ``--seeds``; the settings, the machine, the date, the command and
  the wall time above the tables;
- ``summary.csv``: the same numbers, one row per (dataset, method), a ``*_mean`` and a
  ``*_std`` column per quantity (each attack's ACC, AUC and TPR at 0.1 % / 1 % FPR);
- ``results.csv``: every attack result, one row per (dataset, method, seed, attack),
  early stopping once per snapshot (``method`` early_stopping, ``label``
  early_stopping@<epoch>);
- ``privacy_utility.png``: test accuracy against the strongest attack's AUC, one point
  per method (early-stopping snapshots joined by a line), error bars over seeds;
- ``runs/``: the run directories (models, histories, per-run attack results). A second
  call with the same ``--out`` reuses every finished run and attack, so an interrupted
  benchmark resumes where it stopped.

The shadow model is trained by vanilla training, as the reference code's attacks do
(``--shadow same`` trains it with the target's own method: an adversary who knows the
defense). Early stopping is reported at each of its snapshots, as the reference attacks
them; its final model is vanilla's recipe run to the end.

Presets (flags given after a preset override it):

``--quick`` (the default)
    Location30 (real) and purchase-like (synthetic), every method, seeds 1000 and 1001,
    **20 epochs instead of the paper's 120**, the learning-rate milestones scaled with
    them (epochs 50, 100 of 120 become 8, 17 of 20) and early-stopping snapshots 5, 10,
    20 (those of the paper up to 20). Datasets are full size. About 15 minutes with
    ``--jobs 2`` on 2 CPU cores.
``--full``
    The paper's schedule (120 epochs, milestones 50 and 100); Texas100 and Purchase100
    when their files are in the data home (skipped, with the reason printed, when they
    are not), Location30, purchase-like and texas-like; seeds 1000, 1001, 1002. Days
    on 2 CPU cores (AdvReg costs about 20 vanilla trainings; one vanilla Purchase100
    model is about 20 minutes there): use ``--device cuda`` and ``--jobs``.
``--tiny``
    Location30, vanilla and RelaxLoss, 2 epochs, seed 1000: checks that the script
    works (its test runs it).

    python benchmarks/privacy_utility.py --quick --jobs 2 --out bench/quick
    python benchmarks/privacy_utility.py --full --jobs 8 --out bench/full
    python benchmarks/privacy_utility.py --datasets location --methods vanilla relaxloss \
        --epochs 30 --seeds 1000 1001 1002

Every method of the registry is a row, less the controls (``memguard``: a defense that
label-only attacks break, whose rows would show only the attacks it fools); ask for one
with ``--methods``, with ``--label-only`` to add the label-only attack (Choquette-Choo et
al., arXiv:2007.14321) that breaks it. ``dpsgd_hu`` is DP-SGD at the high-utility setting of
``benchmarks/dpsgd_grid.py``. For ``hamp`` and ``memguard`` the black-box columns read
the outputs they release (modified), the gradient columns their raw network (the white
box); ``summary.md`` says so.

The purchase-like and texas-like data are SYNTHETIC (``skmia.datasets``): their rows
say how the defenses behave on data of those shapes, nothing about the real datasets.
"""

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import sys
import time
import warnings
from pathlib import Path

import pandas as pd

from skmia import _registry

# the tabular datasets of skmia's registry, and which of them are synthetic
DATASETS = tuple(name for name, d in _registry.DATASETS.items() if d.kind == "tabular")
SYNTHETIC = tuple(name for name in DATASETS if _registry.DATASETS[name].synthetic)
PRESETS = {
    "tiny": {
        "datasets": ("location",),
        "methods": ("vanilla", "relaxloss"),
        "seeds": (1000,),
        "epochs": 2,
    },
    "quick": {
        "datasets": ("location", "purchase-like"),
        "methods": None,  # every method this skmia has
        "seeds": (1000, 1001),
        "epochs": 20,
    },
    "full": {
        "datasets": DATASETS,  # every tabular dataset
        "methods": None,
        "seeds": (1000, 1001, 1002),
        "epochs": None,  # the paper's
    },
}
# rough cost of one training relative to vanilla, to start the longest jobs first
_METHOD_COST = {"advreg": 9.0, "dpsgd": 2.0, "dpsgd_hu": 2.0, "distillation": 2.0,
                "selena": 26.0, "memguard": 1.5}
_DATASET_COST = {"texas": 40.0, "purchase": 10.0, "location": 0.25, "purchase-like": 1.0,
                 "texas-like": 5.0}
TPR_COLUMN = "tpr_at_0.1%fpr"
# no empirical ε: one target split once into members and non-members is not a DP audit
# with independent coins, so no theorem backs a bound (docs/auditing.rst)
METRICS = ("accuracy", "auc", "tpr_at_0.1%fpr", "tpr_at_1%fpr")
# with --reference-models K: the strongest attacks of today, calibrated on a bank of K
REFERENCE_ATTACKS = {"lira": "LiRA online", "rmia": "RMIA online"}
# with --label-only: the attack that output modification (HAMP, MemGuard) keeps working
LABEL_ONLY_ATTACK = {"label_only": "label-only"}


# ---------------------------------------------------------------------------- set-up

def parse_args(argv=None):
    parser = argparse.ArgumentParser(
        description=__doc__.splitlines()[0],
        epilog="Presets: --quick (default), --full, --tiny; see the module docstring.",
    )
    preset = parser.add_mutually_exclusive_group()
    for name in PRESETS:
        preset.add_argument(f"--{name}", dest="preset", action="store_const", const=name,
                            help=f"the {name} preset")
    parser.set_defaults(preset="quick")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, help="override the preset")
    parser.add_argument("--methods", nargs="+", help="override the preset (default: all)")
    parser.add_argument("--seeds", nargs="+", type=int, help="override the preset")
    parser.add_argument("--epochs", type=int,
                        help="override the preset; milestones and snapshots scale with it")
    parser.add_argument("--paper-epochs", action="store_true",
                        help="the paper's epochs whatever the preset")
    parser.add_argument("--shadow", choices=("vanilla", "same"), default="vanilla",
                        help="shadow training: vanilla (the reference) or the target's method")
    parser.add_argument("--no-white-box", dest="white_box", action="store_false",
                        help="skip the four gradient-norm attacks")
    parser.add_argument("--dpsgd-target-epsilon", type=float, default=None,
                        help="train DP-SGD to this ε instead of the paper's noise (0.01)")
    parser.add_argument("--reference-models", type=int, default=None, metavar="K",
                        help="also run LiRA and RMIA (online) with a bank of K reference "
                             "models per target, trained like it (K even; K trainings each)")
    parser.add_argument("--label-only", action="store_true",
                        help="also run the label-only attack (arXiv:2007.14321) on every "
                             "target: labels only, which HAMP and MemGuard keep")
    parser.add_argument("--device", default="cpu", help="torch device: cpu or cuda")
    parser.add_argument("--data-home", default=None,
                        help="dataset folder (default: $SKMIA_DATA_HOME, else ~/skmia_data)")
    parser.add_argument("--out", default="privacy_utility_results", help="output folder")
    parser.add_argument("--jobs", type=int, default=1,
                        help="trainings and attacks run in parallel (joblib, loky)")
    parser.add_argument("--threads", type=int, default=None,
                        help="torch threads per job (default: 1 when --jobs > 1)")
    args = parser.parse_args(argv)
    settings = PRESETS[args.preset]
    for key in ("datasets", "methods", "seeds"):
        if getattr(args, key) is None:
            setattr(args, key, settings[key])
    if args.paper_epochs:
        args.epochs = None
    elif args.epochs is None:
        args.epochs = settings["epochs"]
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be at least 1, got {args.epochs}")
    if args.jobs < 1:
        parser.error(f"--jobs must be at least 1, got {args.jobs}")
    k = args.reference_models
    if k is not None and (k < 2 or k % 2):
        parser.error(f"--reference-models must be an even number >= 2, got {k}")
    if args.threads is None and args.jobs > 1:
        args.threads = 1
    return args


def missing_data(dataset, data_home):
    """Why ``dataset`` cannot be loaded from ``data_home`` without a download, or None."""
    if dataset in SYNTHETIC:
        return None
    from skmia.datasets import get_data_home

    home = get_data_home(data_home)
    record = _registry.DATASETS[dataset]
    archives = (record.archive.filename, record.cache)  # the archive or its parsed cache
    if not any((home / name).is_file() for name in archives):
        return f"neither {' nor '.join(archives)} is in the data home {str(home)!r}"
    permutation = record.permutation and record.permutation.filename
    if permutation and not (home / permutation).is_file():
        return f"{permutation} (the reference's row order) is not in {str(home)!r}"
    return None


def scaled_schedule(method, dataset, epochs):
    """Overrides for ``epochs`` instead of the paper's: milestones scaled in proportion."""
    from skmia.experiment import run_defaults

    if epochs is None:
        return {}
    params = run_defaults(method, dataset)
    paper_epochs = params["max_epochs"]
    milestones = sorted({round(m * epochs / paper_epochs) for m in params.get("milestones", ())})
    return {"milestones": tuple(m for m in milestones if 0 < m < epochs)}


def plan(args):
    """Datasets and methods to run, and the reason for each one left out."""
    from skmia.experiment import method_classes, run_defaults

    available = method_classes()
    skipped = []
    if args.methods is None:  # every method, less the controls (they would mislead here)
        methods = [m for m in available if not _registry.METHODS[m].control]
        skipped += [f"method {m}: a control that label-only attacks break (its rows would "
                    f"show only the attacks it fools); ask for it with --methods {m}"
                    for m in available if _registry.METHODS[m].control]
    else:
        methods = list(args.methods)
    for method in list(methods):
        if method not in available:
            skipped.append(f"method {method}: not in this skmia (skmia.experiment."
                           f"method_classes() has {', '.join(available)})")
            methods.remove(method)
    pairs = []
    for dataset in args.datasets:
        reason = missing_data(dataset, args.data_home)
        if reason:
            skipped.append(f"dataset {dataset}: {reason}")
            continue
        for method in methods:
            try:
                run_defaults(method, dataset)
            except ValueError as exc:
                skipped.append(f"{dataset} / {method}: no default settings ({exc})")
                continue
            pairs.append((dataset, method))
    return pairs, skipped


# ---------------------------------------------------------------------------- jobs

def _config(args, runs, dataset, method, seed):
    from skmia.experiment import RunConfig

    overrides = scaled_schedule(method, dataset, args.epochs)
    if (_registry.METHODS[method].classifier == "DPSGDClassifier"
            and args.dpsgd_target_epsilon is not None):
        overrides["target_epsilon"] = args.dpsgd_target_epsilon
    return RunConfig(dataset=dataset, method=method, seed=seed, epochs=args.epochs,
                     overrides=overrides, out=str(runs), data_home=args.data_home,
                     device=args.device, white_box=args.white_box, verbose=0)


def _collect_warnings(caught):
    """Unique ``(category, message, raised in skmia)`` of the warnings caught."""
    import skmia

    package = Path(skmia.__file__).resolve().parent
    found = {}
    for w in caught:
        in_skmia = Path(w.filename).resolve().is_relative_to(package)
        found[(w.category.__name__, str(w.message).splitlines()[0])] = in_skmia
    return [[category, message, in_skmia] for (category, message), in_skmia in found.items()]


def train_job(config, partition, threads):
    """One training (in a worker process); returns its folder, time and warnings."""
    from skmia.experiment import train

    if threads:
        import torch

        torch.set_num_threads(threads)
    start, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        folder = train(config, partition)
    return (str(folder), time.perf_counter() - start, _collect_warnings(caught),
            time.process_time() - cpu)


def attack_job(target_dir, shadow_dir, white_box, data_home, shadow_method, threads,
               device="cpu", reference_models=None, label_only=False):
    """Attack one finished target (in a worker process), or reuse its finished attack."""
    from skmia.experiment import attack

    attacks = ((*REFERENCE_ATTACKS,) if reference_models else ()) + (
        (*LABEL_ONLY_ATTACK,) if label_only else ())
    names = {**REFERENCE_ATTACKS, **LABEL_ONLY_ATTACK}
    done = Path(target_dir) / "attack" / "complete.json"
    if done.is_file() and json.loads(done.read_text())["shadow"] == str(shadow_dir):
        previous = pd.read_csv(done.parent / "results.csv")
        if set(names[a] for a in attacks) <= set(previous["attack"]):
            return previous, 0.0, [], 0.0
    if threads:
        import torch

        torch.set_num_threads(threads)
    start, cpu = time.perf_counter(), time.process_time()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        results = attack(target_dir, shadow_dir, white_box=white_box, data_home=data_home,
                         device=device, verbose=0, shadow_method=shadow_method,
                         attacks=attacks, reference_models=reference_models)
    return (results, time.perf_counter() - start, _collect_warnings(caught),
            time.process_time() - cpu)


def run_parallel(jobs, n_jobs, describe):
    """Run ``(function, args)`` jobs through joblib's loky backend, printing each end."""
    from joblib import Parallel, delayed

    parallel = Parallel(n_jobs=n_jobs, backend="loky", return_as="generator")
    outputs = []
    total = len(jobs)
    for i, output in enumerate(parallel(delayed(f)(*a) for f, a in jobs), start=1):
        outputs.append(output)
        print(f"  [{i:>3}/{total}] {describe[i - 1]} ({output[1]:.1f} s)", flush=True)
    return outputs


# ---------------------------------------------------------------------------- tables

def label_rows(results):
    """Label each attack result by method; early stopping by ``early_stopping@<epoch>``.

    The final model of early stopping (no snapshot epoch) is left out: it is vanilla's
    recipe run to the end, and the reference attacks the snapshots only.
    """
    results = results.copy()
    snapshot = pd.to_numeric(results["snapshot_epoch"], errors="coerce")
    results["label"] = results["method"].astype(str)
    has_snapshot = snapshot.notna()
    results.loc[has_snapshot, "label"] = (
        results.loc[has_snapshot, "method"].astype(str) + "@"
        + snapshot[has_snapshot].astype(int).astype(str)
    )
    final_es = (results["method"] == "early_stopping") & ~has_snapshot
    return results[~final_es].reset_index(drop=True)


def per_run(results):
    """One row per (dataset, label, seed): utility, ε, strongest attack, every attack."""
    rows = []
    for (dataset, label, seed), group in results.groupby(["dataset", "label", "seed"],
                                                         sort=False):
        group = group.set_index("attack")
        strongest = group["auc"].idxmax()
        epsilon = pd.to_numeric(group["epsilon"], errors="coerce").iloc[0]
        row = {
            "dataset": dataset,
            "method": label,
            "seed": seed,
            "test_accuracy": group["test_accuracy"].iloc[0],
            "train_accuracy": group["train_accuracy"].iloc[0],
            "epsilon": epsilon,
            "strongest_auc": group["auc"].max(),
            "strongest_attack": strongest,
            "best_tpr_at_0.1%fpr": group[TPR_COLUMN].max(),
        }
        for attack, values in group.iterrows():
            for metric in METRICS:
                row[f"{attack}|{metric}"] = values.get(metric, float("nan"))
        rows.append(row)
    return pd.DataFrame(rows)


def summarize(runs):
    """Mean and std (ddof=1) over seeds of :func:`per_run`'s numbers."""
    rows = []
    numeric = [c for c in runs.columns if c not in ("dataset", "method", "seed",
                                                     "strongest_attack")]
    for (dataset, method), group in runs.groupby(["dataset", "method"], sort=False):
        row = {"dataset": dataset, "method": method, "n_seeds": len(group),
               "strongest_attack": "/".join(dict.fromkeys(group["strongest_attack"]))}
        for column in numeric:
            values = pd.to_numeric(group[column], errors="coerce")
            row[f"{column}_mean"] = values.mean()
            row[f"{column}_std"] = values.std(ddof=1) if len(values) > 1 else float("nan")
        rows.append(row)
    return pd.DataFrame(rows)


def _pm(mean, std, digits=3):
    if mean is None or (isinstance(mean, float) and math.isnan(mean)):
        return ""
    if std is None or math.isnan(std):
        return f"{mean:.{digits}f}"
    return f"{mean:.{digits}f} ± {std:.{digits}f}"


def _epsilon(mean, std):
    if mean is None or math.isnan(mean):
        return ""
    if math.isinf(mean):
        return "∞"
    return f"{mean:.3g}" + ("" if std is None or math.isnan(std) else f" ± {std:.2g}")


def reference_attack_table(table):
    """LiRA's and RMIA's AUC and TPR at 0.1 % / 1 % FPR, one row per method."""
    names = [n for n in REFERENCE_ATTACKS.values() if f"{n}|auc_mean" in table]
    if not names:
        return []
    header = ["method", *(f"{n} {m}" for n in names
                          for m in ("AUC", "TPR@0.1%", "TPR@1%"))]
    lines = ["", "Reference-model attacks (bank of K models trained like the target):", "",
             "| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
    for row in table.to_dict(orient="records"):
        cells = [row["method"]]
        for n in names:
            cells += [_pm(row.get(f"{n}|auc_mean"), row.get(f"{n}|auc_std")),
                      _pm(row.get(f"{n}|tpr_at_0.1%fpr_mean"), row.get(f"{n}|tpr_at_0.1%fpr_std")),
                      _pm(row.get(f"{n}|tpr_at_1%fpr_mean"), row.get(f"{n}|tpr_at_1%fpr_std"))]
        lines.append("| " + " | ".join(cells) + " |")
    return lines


def markdown_tables(summary, attacks):
    """Per dataset: the headline table, the per-attack ACC / AUC table and, when they ran,
    the reference-model attacks' table."""
    lines = []
    for dataset, table in summary.groupby("dataset", sort=False):
        kind = " (SYNTHETIC)" if dataset in SYNTHETIC else ""
        lines += [f"### {dataset}{kind}", ""]
        has_epsilon = table["epsilon_mean"].notna().any()
        header = ["method", "test acc", "train acc", *(["ε"] if has_epsilon else []),
                  "strongest AUC", "strongest attack", "best TPR@0.1%FPR"]
        lines += ["| " + " | ".join(header) + " |", "|---" + "|---:" * (len(header) - 1) + "|"]
        for row in table.to_dict(orient="records"):
            cells = [
                row["method"],
                _pm(row["test_accuracy_mean"], row["test_accuracy_std"]),
                _pm(row["train_accuracy_mean"], row["train_accuracy_std"]),
                *([_epsilon(row["epsilon_mean"], row["epsilon_std"])] if has_epsilon else []),
                _pm(row["strongest_auc_mean"], row["strongest_auc_std"]),
                row["strongest_attack"],
                _pm(row["best_tpr_at_0.1%fpr_mean"], row["best_tpr_at_0.1%fpr_std"], 4),
            ]
            lines.append("| " + " | ".join(cells) + " |")
        lines += ["", "Each attack's ACC / AUC:", ""]
        lines += ["| method | " + " | ".join(attacks) + " |",
                  "|---" + "|---:" * len(attacks) + "|"]
        for row in table.to_dict(orient="records"):
            cells = [
                _pm(row.get(f"{a}|accuracy_mean"), row.get(f"{a}|accuracy_std"), 2)
                + " / " + _pm(row.get(f"{a}|auc_mean"), row.get(f"{a}|auc_std"), 2)
                for a in attacks
            ]
            lines.append(f"| {row['method']} | " + " | ".join(cells) + " |")
        lines += reference_attack_table(table)
        lines.append("")
    return "\n".join(lines)


def privacy_utility_figure(summary):
    """Test accuracy against the strongest attack's AUC, a panel per dataset."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    datasets = list(dict.fromkeys(summary["dataset"]))
    fig, axes = plt.subplots(1, len(datasets), figsize=(5.2 * len(datasets), 5.2),
                             squeeze=False)
    methods = list(dict.fromkeys(m.split("@")[0] for m in summary["method"]))
    colours = {m: plt.get_cmap("tab10")(i % 10) for i, m in enumerate(methods)}
    markers = dict(zip(methods, "osD^vP*Xph<>", strict=False))
    for ax, dataset in zip(axes[0], datasets, strict=True):
        table = summary[summary["dataset"] == dataset]
        for method in methods:
            rows = table[table["method"].str.split("@").str[0] == method]
            if rows.empty:
                continue
            x, y = rows["strongest_auc_mean"], rows["test_accuracy_mean"]
            ax.errorbar(x, y, xerr=rows["strongest_auc_std"].fillna(0),
                        yerr=rows["test_accuracy_std"].fillna(0),
                        fmt=markers.get(method, "o") + ("-" if len(rows) > 1 else ""),
                        color=colours[method], label=method, capsize=3, markersize=6,
                        linewidth=1)
            if len(rows) > 1:  # early-stopping snapshots: name the epochs
                for label, xi, yi in zip(rows["method"], x, y, strict=True):
                    ax.annotate(label.split("@")[1], (xi, yi), fontsize=6,
                                textcoords="offset points", xytext=(3, 3))
        ax.axvline(0.5, color="grey", linestyle=":", linewidth=1)
        kind = " (synthetic)" if dataset in SYNTHETIC else ""
        ax.set(title=f"{dataset}{kind}", xlabel="AUC of the strongest attack (lower: private)",
               ylabel="test accuracy (higher: useful)")
        ax.grid(alpha=0.3)
    handles, labels = axes[0][0].get_legend_handles_labels()
    for ax in axes[0][1:]:
        for h, lab in zip(*ax.get_legend_handles_labels(), strict=True):
            if lab not in labels:
                handles.append(h)
                labels.append(lab)
    fig.tight_layout(rect=(0, 0.12, 1, 1))
    fig.legend(handles, labels, loc="lower center", ncol=min(len(labels), 5), fontsize=8)
    return fig


def _write(path, data):
    """Write atomically (skmia's own atomic write): whole new content or the old one."""
    from skmia._rundir import atomic_write_bytes

    atomic_write_bytes(path, data.encode("utf-8") if isinstance(data, str) else data)


def machine():
    import torch

    cpu = platform.processor() or platform.machine()
    try:
        with open("/proc/cpuinfo") as f:
            cpu = next(line.split(":", 1)[1].strip() for line in f if "model name" in line)
    except (OSError, StopIteration):
        pass
    gpu = torch.cuda.get_device_name(0) if torch.cuda.is_available() else "no GPU"
    return (f"{platform.system()} {platform.machine()}, {os.cpu_count()} CPU cores ({cpu}), "
            f"{gpu}, Python {platform.python_version()}, torch {torch.__version__}")


def _load():
    try:
        return f"{os.getloadavg()[0]:.1f}"
    except OSError:
        return "?"


# ---------------------------------------------------------------------------- main

def _check_settings(runs, args):
    """Refuse an --out whose runs were made with other settings; record them otherwise."""
    import skmia

    settings = {"epochs": args.epochs, "shadow": args.shadow, "white_box": args.white_box,
                "reference_models": args.reference_models,
                "dpsgd_target_epsilon": args.dpsgd_target_epsilon,
                "skmia_version": skmia.__version__}
    settings_file = runs / "settings.json"
    if settings_file.is_file():
        before = json.loads(settings_file.read_text())
        if before != settings:
            raise SystemExit(f"{runs} holds runs made with other settings ({before}); "
                             f"use another --out")
    else:
        _write(settings_file, json.dumps(settings, indent=2) + "\n")


def _shadow_method(args, method):
    return method if args.shadow == "same" else "vanilla"


def train_everything(args, runs, pairs):
    """Step 1: every training (target and shadow of each pair and seed), longest first."""
    trainings, seen = [], set()
    for dataset, method in pairs:
        for seed in args.seeds:
            for m, partition in ((method, "target"), (_shadow_method(args, method), "shadow")):
                if (dataset, m, seed, partition) in seen:
                    continue
                seen.add((dataset, m, seed, partition))
                cost = _DATASET_COST[dataset] * _METHOD_COST.get(m, 1.0)
                trainings.append((cost, dataset, m, seed, partition))
    trainings.sort(key=lambda t: -t[0])
    print(f"training {len(trainings)} models", flush=True)
    return run_parallel(
        [(train_job, (_config(args, runs, d, m, s), p, args.threads))
         for _, d, m, s, p in trainings],
        args.jobs, [f"trained {d} {m} seed {s} {p}" for _, d, m, s, p in trainings],
    )


def attack_everything(args, runs, pairs):
    """Step 2: every target attacked (or its finished attack reused); the results table
    in the order of ``pairs`` and seeds."""
    from skmia.experiment import run_directory

    attacks = []
    for dataset, method in pairs:
        for seed in args.seeds:
            target_dir = run_directory(runs, dataset, method, seed)
            shadow_dir = (run_directory(runs, dataset, _shadow_method(args, method), seed)
                          / "shadow")
            cost = _DATASET_COST[dataset] * (3 if method == "early_stopping" else 1)
            attacks.append((cost, dataset, method, seed, str(target_dir), str(shadow_dir)))
    attacks.sort(key=lambda a: -a[0])
    print(f"attacking {len(attacks)} targets", flush=True)
    attack_out = run_parallel(
        [(attack_job, (t, s, args.white_box, args.data_home, args.shadow, args.threads,
                       args.device, args.reference_models, args.label_only))
         for *_, t, s in attacks],
        args.jobs, [f"attacked {d} {m} seed {s}" for _, d, m, s, *_ in attacks],
    )
    order = {pair: i for i, pair in enumerate(pairs)}
    results = pd.concat([o[0] for o in attack_out], ignore_index=True)
    results["_order"] = [order[(d, m)] for d, m in zip(results["dataset"], results["method"],
                                                       strict=True)]
    results = results.sort_values(["_order", "seed"], kind="stable").drop(columns="_order")
    return attack_out, results


def write_tables_and_plot(out, results):
    """Step 3: results.csv, summary.csv and privacy_utility.png; the labelled results and
    the summary."""
    labelled = label_rows(results)
    summary = summarize(per_run(labelled))
    _write(out / "results.csv", labelled.to_csv(index=False))
    _write(out / "summary.csv", summary.to_csv(index=False))
    import io

    import matplotlib.pyplot as plt

    fig = privacy_utility_figure(summary)
    png = io.BytesIO()
    fig.savefig(png, format="png", dpi=120)
    plt.close(fig)
    _write(out / "privacy_utility.png", png.getvalue())
    return labelled, summary


def _caught_warnings(outputs):
    caught = {}
    for output in outputs:
        for category, message, in_skmia in output[2]:
            caught[(category, message)] = in_skmia
    return caught


def summary_header(args, argv, skipped, caught, times, load_start):
    """The lines above the tables: command, date, machine, times, settings, warnings."""
    from skmia.datasets import get_data_home

    wall, train_seconds, train_cpu, attack_seconds, attack_cpu = times
    command = "python " + " ".join(shlex.quote(a) for a in [sys.argv[0], *(
        sys.argv[1:] if argv is None else argv)])
    return [
        "## Privacy-utility benchmark",
        "",
        f"- command: `{command}`",
        f"- date: {datetime.datetime.now().astimezone().strftime('%Y-%m-%d %H:%M %Z')}",
        f"- data home: {get_data_home(args.data_home)}",
        f"- machine: {machine()}; load average {load_start} at the start, {_load()} at the end",
        f"- wall time: {wall / 60:.1f} min ({args.jobs} jobs, {args.threads or 'default'} "
        f"torch threads each); job time (wall / CPU): training {train_seconds / 60:.1f} / "
        f"{train_cpu / 60:.1f} min, attacks {attack_seconds / 60:.1f} / "
        f"{attack_cpu / 60:.1f} min (0 for work reused from --out)",
        f"- preset: {args.preset}; seeds {', '.join(map(str, args.seeds))}; "
        + ("the paper's epochs and learning-rate schedule" if args.epochs is None else
           f"**{args.epochs} epochs instead of the paper's 120**, learning-rate milestones "
           "scaled in proportion, early-stopping snapshots up to that epoch")
        + "; datasets at full size",
        f"- shadow model: {args.shadow}"
        + (" (the reference protocol)" if args.shadow == "vanilla" else
           " (trained with the target's method)"),
        f"- white-box attacks: {'yes' if args.white_box else 'no'}; DP-SGD: "
        + ("the paper's noise multiplier" if args.dpsgd_target_epsilon is None else
           f"target ε {args.dpsgd_target_epsilon}") + ", δ = 1e-5"
        + "; dpsgd_hu: the high-utility setting of benchmarks/dpsgd_grid.py",
        "- threat model of each row: black box (the attacks read the outputs the model "
        "releases), the grad_wrt_* columns white box (gradients of the trained network); "
        "for hamp and memguard the released outputs are their modified ones, so their "
        "black-box columns are the attacks they claim to stop, and their grad_wrt_* "
        "columns the raw network a white-box adversary holds"
        + ("; the label-only column reads predicted labels only (32 perturbed copies per "
           "record, no shadow model: AUC is threshold-free), which output modification "
           "keeps" if args.label_only else ""),
        *(f"- skipped {reason}" for reason in skipped),
        *(f"- warning{' (from skmia)' if in_skmia else ''}: {category}: {message}"
          for (category, message), in_skmia in caught.items()),
        "",
        "mean ± std (ddof=1) over seeds. ACC = 0.5·(TPR + TNR) of the attack's decision "
        "learned on the shadow model; AUC is threshold-free; strongest = the highest AUC "
        "of all attacks; TPR@0.1%FPR = the highest over attacks.",
        "",
    ]


def main(argv=None):
    args = parse_args(argv)
    start, load_start = time.perf_counter(), _load()
    out = Path(args.out)
    runs = out / "runs"
    runs.mkdir(parents=True, exist_ok=True)
    _check_settings(runs, args)
    pairs, skipped = plan(args)
    for reason in skipped:
        print(f"skipped {reason}", flush=True)
    if not pairs:
        raise SystemExit("nothing to run")
    epochs = "the paper's epochs" if args.epochs is None else f"{args.epochs} epochs"
    print(f"preset {args.preset}: {len(pairs)} (dataset, method) pairs x {len(args.seeds)} "
          f"seeds, {epochs}, {args.shadow} shadow, jobs={args.jobs}", flush=True)

    train_out = train_everything(args, runs, pairs)
    attack_out, results = attack_everything(args, runs, pairs)
    labelled, summary = write_tables_and_plot(out, results)

    caught = _caught_warnings((*train_out, *attack_out))
    wall = time.perf_counter() - start
    times = (wall, sum(o[1] for o in train_out), sum(o[3] for o in train_out),
             sum(o[1] for o in attack_out), sum(o[3] for o in attack_out))
    header = summary_header(args, argv, skipped, caught, times, load_start)
    markdown = "\n".join(header) + markdown_tables(summary,
                                                   list(dict.fromkeys(labelled["attack"])))
    _write(out / "summary.md", markdown)
    _write(out / "warnings.json", json.dumps(
        [{"category": c, "message": m, "from_skmia": s} for (c, m), s in caught.items()],
        indent=2) + "\n")
    print(markdown, flush=True)
    print(f"wrote {out / 'summary.md'}, summary.csv, results.csv, privacy_utility.png "
          f"({wall / 60:.1f} min)", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
