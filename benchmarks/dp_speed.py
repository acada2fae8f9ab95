"""Epoch time of DP-SGD (ghost clipping, and opacus' per-record gradients) against vanilla.

The paper's MLP (1024-512-256-128, Tanh) on synthetic records of Purchase100's shape
(600 features, 100 classes) and of Texas100's shape (6,169 features, 100 classes); SGD
lr 0.1, momentum 0.9, weight decay 1e-4, (expected) batch 128. Trainers:

- ``VanillaClassifier``: plain training, the baseline;
- ``DPSGDClassifier`` with its default ``grad_sample_mode="auto"`` (ghost clipping);
- ``DPSGDClassifier`` on ghost clipping with opacus' own optimizer step (which copies
  each clipped gradient and allocates its noise afresh every step) instead of skmia's
  in-place one (``_dp_clipping._InPlaceNoiseOptimizer``, the same draws): what the
  in-place step saves;
- ``DPSGDClassifier(grad_sample_mode="hooks")``: opacus' default per-record gradients.

Epoch time is the time of the training steps (not set-up, not the per-epoch ε
accounting), as wall time and as CPU time of the process: on a shared machine the wall
time swings with other people's load, the CPU time much less. opacus' per-record mode is
far too slow for whole epochs of Texas100's shape, so it is timed on ``--hooks-steps``
steps and scaled to the epoch's number of steps (a step's time does not depend on the
number of rows). Trainers run alternately, ``--repeats`` times; the table shows medians
and ratios to vanilla. Target: DP-SGD (ghost) <= 3x vanilla.

    python benchmarks/dp_speed.py                 # 10,000 / 3,000 rows, 3 repeats (~3 min)
    python benchmarks/dp_speed.py --full          # 40,000 / 13,466 rows, 3 repeats
    python benchmarks/dp_speed.py --purchase-rows 40000 --texas-rows 13466 --repeats 3
"""

import argparse
import math
import os
import platform
import statistics
import time

import numpy as np
import torch
from skorch.callbacks import Callback

from skmia.datasets import make_purchase_like, make_texas_like
from skmia.defenses import VanillaClassifier, _dp_clipping
from skmia.defenses._dpsgd import DPSGDClassifier

BATCH = 128
COMMON = {"batch_size": BATCH, "milestones": (), "classes": np.arange(100)}
DP = {"noise_multiplier": 1.0, "max_grad_norm": 1.0, "delta": 1e-5}


class _StepTimer(Callback):
    """Wall and CPU (process) time summed over the training batches of a fit."""

    def on_train_begin(self, net, **kwargs):
        self.wall = self.cpu = 0.0
        self.steps = 0

    def on_batch_begin(self, net, training=False, **kwargs):
        if training:
            self._start = (time.perf_counter(), time.process_time())

    def on_batch_end(self, net, training=False, **kwargs):
        if training:
            wall, cpu = self._start
            self.wall += time.perf_counter() - wall
            self.cpu += time.process_time() - cpu
            self.steps += 1


class _OpacusStepDPSGD(DPSGDClassifier):
    """DP-SGD whose ghost-clipping path steps with opacus' own optimizer."""

    def fit(self, X, y, **fit_params):
        from opacus.optimizers import DPOptimizerFastGradientClipping

        ours = _dp_clipping._InPlaceNoiseOptimizer
        _dp_clipping._InPlaceNoiseOptimizer = DPOptimizerFastGradientClipping
        try:
            return super().fit(X, y, **fit_params)
        finally:
            _dp_clipping._InPlaceNoiseOptimizer = ours


def trainers(hooks=True):
    found = {
        "VanillaClassifier": lambda seed: VanillaClassifier(random_state=seed, **COMMON),
        "DPSGDClassifier (ghost clipping, default)": lambda seed: DPSGDClassifier(
            random_state=seed, **COMMON, **DP
        ),
        "DPSGDClassifier (ghost clipping, opacus' optimizer step)":
            lambda seed: _OpacusStepDPSGD(random_state=seed, **COMMON, **DP),
        "DPSGDClassifier (opacus per-record, hooks)": lambda seed: DPSGDClassifier(
            grad_sample_mode="hooks", random_state=seed, **COMMON, **DP
        ),
    }
    return found if hooks else {k: v for k, v in found.items() if "hooks" not in k}


def time_steps(make, X, y, *, epochs, seed, rows=None):
    """Wall and CPU seconds per training step of one fit (on the first ``rows`` rows)."""
    if rows is not None:
        X, y = X[:rows], y[:rows]
    timer = _StepTimer()
    make(seed).set_params(max_epochs=epochs, callbacks=[("step_timer", timer)]).fit(X, y)
    return timer.wall / timer.steps, timer.cpu / timer.steps


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--purchase-rows", type=int, default=10_000)
    parser.add_argument("--texas-rows", type=int, default=3_000)
    parser.add_argument("--epochs", type=int, default=1)
    parser.add_argument("--repeats", type=int, default=3)
    parser.add_argument("--hooks-steps", type=int, default=4,
                        help="steps timed for opacus' per-record mode, scaled to an epoch")
    parser.add_argument("--full", action="store_true",
                        help="the issue's sizes: 40,000 and 13,466 rows, 3 repeats")
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    parser.add_argument("--no-hooks", dest="hooks", action="store_false",
                        help="leave out opacus' per-record mode (the slowest row)")
    parser.add_argument("--no-texas", dest="texas", action="store_false",
                        help="Purchase-shaped data only")
    args = parser.parse_args(argv)
    if args.full:
        args.purchase_rows, args.texas_rows, args.repeats = 40_000, 13_466, 3
    if args.threads:
        torch.set_num_threads(args.threads)

    shapes = {
        "Purchase-shaped (600 features)": (make_purchase_like, args.purchase_rows),
        "Texas-shaped (6,169 features)": (make_texas_like, args.texas_rows),
    }
    if not args.texas:
        shapes.pop("Texas-shaped (6,169 features)")
    # warm up torch's kernels and thread pool
    X0, y0 = make_purchase_like(n_samples=512, random_state=1, return_X_y=True)
    for make in trainers(args.hooks).values():
        make(0).set_params(max_epochs=1).fit(X0, y0)

    rows_out = []
    for data_name, (maker, n_rows) in shapes.items():
        X, y = maker(n_samples=n_rows, random_state=0, return_X_y=True)
        steps = math.ceil(n_rows / BATCH)
        wall = {name: [] for name in trainers(args.hooks)}
        cpu = {name: [] for name in trainers(args.hooks)}
        for repeat in range(args.repeats):
            for name, make in trainers(args.hooks).items():  # alternated, so drift hits all alike
                if "hooks" in name:
                    w, c = time_steps(make, X, y, epochs=1, seed=repeat,
                                      rows=args.hooks_steps * BATCH)
                else:
                    w, c = time_steps(make, X, y, epochs=args.epochs, seed=repeat)
                wall[name].append(w * steps)
                cpu[name].append(c * steps)
        base_wall = statistics.median(wall["VanillaClassifier"])
        base_cpu = statistics.median(cpu["VanillaClassifier"])
        for name in trainers(args.hooks):
            w, c = statistics.median(wall[name]), statistics.median(cpu[name])
            timed = f"{args.hooks_steps} of {steps}" if "hooks" in name else f"{steps}"
            rows_out.append((data_name, n_rows, name, timed, w, w / base_wall, c, c / base_cpu))

    print(
        f"MLP 1024-512-256-128, batch {BATCH} (DP: expected batch, Poisson), "
        f"noise_multiplier 1.0, median of {args.repeats}; torch {torch.__version__}, "
        f"{torch.get_num_threads()} threads, {os.cpu_count()} CPUs "
        f"({platform.processor() or platform.machine()})"
    )
    print()
    print("| data | rows | trainer | steps timed | wall s / epoch | vs vanilla "
          "| CPU s / epoch | vs vanilla |")
    print("|---|---:|---|---:|---:|---:|---:|---:|")
    for data_name, n_rows, name, timed, w, w_ratio, c, c_ratio in rows_out:
        print(f"| {data_name} | {n_rows:,} | {name} | {timed} | {w:.2f} | {w_ratio:.2f}x "
              f"| {c:.2f} | {c_ratio:.2f}x |")


if __name__ == "__main__":
    main()
