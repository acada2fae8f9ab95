"""Wall time of a Purchase-size ``defense_attack`` run, phase by phase.

What ``skmia run --dataset purchase --method relaxloss --mode defense_attack --jobs 2``
does, on SYNTHETIC data of Purchase100's size (``make_purchase_like(n_samples=197_324)``,
as the real archive cannot be downloaded here): the reference protocol's membership
split (39,465 rows in each training part), a RelaxLoss target (the paper's Purchase100
settings, 120 epochs) and a vanilla shadow trained at the same time through
:func:`skmia._parallel.parallel_map` (one torch thread each, as the CLI does by
default), then the reference code's nine attacks, white-box ones included, fitted on the
shadow's signals and evaluated on the target's. Each phase prints its wall time; the
table ends with the total, the goal (12 minutes on the 2-core development machine) and
the FLOP limit (two models x epochs x rows x 6 x the MLP's multiply-adds, at the
GFLOP/s a 2048x2048 float32 matrix product reaches here on all cores).

    python benchmarks/end_to_end.py              # the full run, ~12 minutes
    python benchmarks/end_to_end.py --baseline   # and one model after the other, ~24
    python benchmarks/end_to_end.py --epochs 1 --samples 40000 --baseline   # quick
"""

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

from skmia._parallel import parallel_map, torch_threads
from skmia.attacks import default_attacks, evaluate_attacks, membership_signals
from skmia.datasets import make_purchase_like
from skmia.experiment import method_classes, run_defaults
from skmia.model_selection import membership_split

GOAL_SECONDS = 12 * 60


def fit(method, X, y, epochs, seed):
    """One training as ``skmia run`` sets it up (the paper's settings, ``seed``)."""
    params = run_defaults(method, "purchase")
    if epochs is not None:
        params["max_epochs"] = epochs
    clf = method_classes()[method](**params, random_state=seed)
    start = time.perf_counter()
    clf.fit(X, y)
    return clf, time.perf_counter() - start


def matmul_gflops(size=2048, repeats=5):
    """GFLOP/s of a float32 ``size``-square matrix product on torch's threads."""
    a = torch.randn(size, size)
    a @ a
    start = time.perf_counter()
    for _ in range(repeats):
        a @ a
    return 2 * size**3 * repeats / (time.perf_counter() - start) / 1e9


def mlp_multiply_adds(model):
    return sum(p.numel() for name, p in model.named_parameters() if name.endswith("weight"))


def attack_all(target, shadow, split, seed):
    """Every default attack, white-box included; the table and the seconds it took."""
    start = time.perf_counter()
    shadow_signals = membership_signals(shadow, split.shadow_train, split.shadow_test,
                                        white_box=True)
    target_signals = membership_signals(target, split.target_train, split.target_test,
                                        white_box=True)
    signal_seconds = time.perf_counter() - start
    table, _ = evaluate_attacks(default_attacks(white_box=True, random_state=seed),
                                *shadow_signals, *target_signals)
    return table, signal_seconds, time.perf_counter() - start - signal_seconds


def timed_run(split, jobs, threads, epochs, seed):
    """Train both models ``jobs`` at a time on ``threads`` threads each, then attack."""
    phases = {}
    start = time.perf_counter()
    tasks = [("relaxloss", *split.target_train, epochs, seed),
             ("vanilla", *split.shadow_train, epochs, seed)]
    (target, target_s), (shadow, shadow_s) = parallel_map(
        fit, tasks, n_jobs=jobs, threads=threads)
    phases["training: both models, wall"] = time.perf_counter() - start
    phases["  relaxloss target (its own fit)"] = target_s
    phases["  vanilla shadow (its own fit)"] = shadow_s
    print(f"trained (--jobs {jobs} --threads {threads}) "
          f"[{phases['training: both models, wall']:.0f} s]", file=sys.stderr)
    with torch_threads(threads if jobs == 1 else None):
        table, signal_s, fit_s = attack_all(target, shadow, split, seed)
    phases["attacks: signals of both models (white-box included)"] = signal_s
    phases["attacks: fit and evaluate nine attacks"] = fit_s
    phases["**total** (with data)"] = sum(v for k, v in phases.items() if k[0] != " ")
    return phases, table, target


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=197_324,
                        help="rows of make_purchase_like (Purchase100 has 197,324)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the paper's 120")
    parser.add_argument("--jobs", type=int, default=2, help="models trained at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per model")
    parser.add_argument("--baseline", action="store_true",
                        help="also run one model after the other on 2 threads (as the "
                             "reference code does), and print the ratio")
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args(argv)

    start = time.perf_counter()
    X, y = make_purchase_like(n_samples=args.samples, random_state=0, return_X_y=True)
    split = membership_split(X, y, protocol="relaxloss", random_state=args.seed)
    data_s = time.perf_counter() - start
    print(f"data ready: {len(split.target_train)} target and {len(split.shadow_train)} "
          f"shadow rows [{data_s:.0f} s]", file=sys.stderr)
    runs = {f"--jobs {args.jobs} --threads {args.threads}":
            timed_run(split, args.jobs, args.threads, args.epochs, args.seed)}
    if args.baseline:
        runs["one after the other, 2 threads"] = timed_run(split, 1, 2, args.epochs,
                                                          args.seed)
    for phases, _, _ in runs.values():
        phases["**total** (with data)"] += data_s
    print_tables(args, split, data_s, runs)


def print_tables(args, split, data_s, runs):
    (phases, table, target), *_ = runs.values()
    epochs = target.max_epochs
    rows = len(split.target_train) + len(split.shadow_train)
    flops = rows * epochs * 6 * mlp_multiply_adds(target.module_)
    gflops = matmul_gflops()
    print(f"make_purchase_like(n_samples={args.samples:,}) (SYNTHETIC), relaxloss target + "
          f"vanilla shadow, {epochs} epochs, {len(split.target_train):,} rows each; torch "
          f"{torch.__version__}, {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}, {time.strftime('%Y-%m-%d')}")
    print()
    names = list(runs)
    print("| phase (wall s) | data | " + " | ".join(names) + (" | ratio |" if len(names) > 1
                                                          else " |"))
    print("|---|---:|" + "---:|" * len(names) + ("---:|" if len(names) > 1 else ""))
    print(f"| data: generate and split | {data_s:.1f} |" + " |" * len(names)
          + (" |" if len(names) > 1 else ""))
    for phase in phases:
        values = [runs[name][0][phase] for name in names]
        cells = " | ".join(f"{v:.1f}" for v in values)
        ratio = f" {values[0] / values[1]:.2f}x |" if len(names) > 1 else ""
        print(f"| {phase} | | {cells} |{ratio}")
    total = phases["**total** (with data)"]
    print()
    print(f"{names[0]}: total {total:.0f} s = {total / 60:.1f} min; goal {GOAL_SECONDS} s "
          f"(12 min), total / goal {total / GOAL_SECONDS:.2f}x; FLOP limit "
          f"{flops / 1e12:.1f} TFLOP at {gflops:.0f} GFLOP/s (2048x2048 float32 matmul, "
          f"all cores) = {flops / gflops / 1e9:.0f} s, total / limit "
          f"{total * gflops * 1e9 / flops:.2f}x")
    print()
    print("| attack | AUC | TPR at 1 % FPR |")
    print("|---|---:|---:|")
    for name, row in table.iterrows():
        print(f"| {name} | {row['auc']:.3f} | {row['tpr_at_1%fpr']:.3f} |")
    acc = np.mean(target.predict(split.target_test.X) == split.target_test.y)
    print(f"\ntarget test accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
