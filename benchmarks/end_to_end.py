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

    python benchmarks/end_to_end.py                           # the full run, ~12 minutes
    python benchmarks/end_to_end.py --epochs 2 --samples 40000   # quick
    python benchmarks/end_to_end.py --jobs 1 --threads 2      # one model after the other
"""

import argparse
import os
import platform
import sys
import time

import numpy as np
import torch

from skmia._parallel import parallel_map
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


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--samples", type=int, default=197_324,
                        help="rows of make_purchase_like (Purchase100 has 197,324)")
    parser.add_argument("--epochs", type=int, default=None, help="default: the paper's 120")
    parser.add_argument("--jobs", type=int, default=2, help="models trained at once")
    parser.add_argument("--threads", type=int, default=1, help="torch threads per model")
    parser.add_argument("--seed", type=int, default=1000)
    args = parser.parse_args(argv)
    phases = {}
    total_start = time.perf_counter()

    start = time.perf_counter()
    X, y = make_purchase_like(n_samples=args.samples, random_state=0, return_X_y=True)
    split = membership_split(X, y, protocol="relaxloss", random_state=args.seed)
    phases["data: generate and split"] = time.perf_counter() - start
    print(f"data ready: {len(split.target_train)} target and {len(split.shadow_train)} "
          f"shadow rows [{phases['data: generate and split']:.0f} s]", file=sys.stderr)

    start = time.perf_counter()
    tasks = [("relaxloss", *split.target_train, args.epochs, args.seed),
             ("vanilla", *split.shadow_train, args.epochs, args.seed)]
    (target, target_s), (shadow, shadow_s) = parallel_map(
        fit, tasks, n_jobs=args.jobs, threads=args.threads)
    phases["training: both models, wall"] = time.perf_counter() - start
    phases["  relaxloss target (inside its worker)"] = target_s
    phases["  vanilla shadow (inside its worker)"] = shadow_s
    print(f"trained [{phases['training: both models, wall']:.0f} s]", file=sys.stderr)

    table, signal_s, fit_s = attack_all(target, shadow, split, args.seed)
    phases["attacks: signals of both models (white-box included)"] = signal_s
    phases["attacks: fit and evaluate nine attacks"] = fit_s
    total = time.perf_counter() - total_start

    epochs = target.max_epochs
    rows = len(split.target_train) + len(split.shadow_train)
    flops = rows * epochs * 6 * mlp_multiply_adds(target.module_)
    gflops = matmul_gflops()
    print(f"make_purchase_like(n_samples={args.samples:,}) (SYNTHETIC), relaxloss target + "
          f"vanilla shadow, {epochs} epochs, {len(split.target_train):,} rows each, "
          f"--jobs {args.jobs} --threads {args.threads}; torch {torch.__version__}, "
          f"{os.cpu_count()} cores, {platform.processor() or platform.machine()}, "
          f"{time.strftime('%Y-%m-%d')}")
    print()
    print("| phase | wall (s) |")
    print("|---|---:|")
    for name, seconds in phases.items():
        print(f"| {name} | {seconds:.1f} |")
    print(f"| **total** | **{total:.1f}** ({total / 60:.1f} min) |")
    print(f"| goal (2-core machine) | {GOAL_SECONDS} (12.0 min); total / goal "
          f"{total / GOAL_SECONDS:.2f}x |")
    print(f"| FLOP limit: {flops / 1e12:.1f} TFLOP at {gflops:.0f} GFLOP/s | "
          f"{flops / gflops / 1e9:.0f}; total / limit {total * gflops * 1e9 / flops:.2f}x |")
    print()
    print("| attack | AUC | TPR at 1 % FPR |")
    print("|---|---:|---:|")
    for name, row in table.iterrows():
        print(f"| {name} | {row['auc']:.3f} | {row['tpr_at_1%fpr']:.3f} |")
    acc = np.mean(target.predict(split.target_test.X) == split.target_test.y)
    print(f"\ntarget test accuracy {acc:.3f}")


if __name__ == "__main__":
    main()
