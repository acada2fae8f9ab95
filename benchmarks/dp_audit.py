"""Audits of DP-SGD's claim: how close the lower bounds come to the claimed ε.

Three parts (``--part``):

- ``tightness``: one white-box run of DP-SGD at ε = 8 on Location30 (all 5,010 records,
  MLP-256, 30 epochs, batch 128) with 1,000 gradient canaries, against the idealised
  audit of the same setting (each canary's score = the steps that drew it + the summed
  Gaussian noise, simulated) -- and how both grow with the canaries and the steps.
- ``grid``: claimed ε against each lower bound for DP-SGD on Location30 and purchase-like
  at several noise multipliers: white box and black box, one run and many runs.
- ``time``: the time of a one-run audit against one plain fit of the same estimator.

Each part prints a Markdown table and writes it (and a CSV) under ``--out``.
"""

import argparse
import os
import platform
import time
import warnings
from datetime import date
from pathlib import Path

import numpy as np
import pandas as pd

from skmia.audit import audit_dp
from skmia.defenses import DPSGDClassifier
from skmia.metrics import epsilon_lower_bound

ONE_RUN = ("one_run", "one_run_fdp")


def location():
    from skmia.datasets import fetch_location30

    bunch = fetch_location30()
    return bunch.data, bunch.target


def purchase_like(n=5000, seed=0):
    from skmia.datasets import make_purchase_like

    bunch = make_purchase_like(n_samples=n, random_state=seed)
    return bunch.data, bunch.target


def dpsgd(epochs=30, hidden=256, **params):
    return DPSGDClassifier(max_epochs=epochs, batch_size=128, lr=0.1, milestones=(),
                           module__hidden_sizes=(hidden,), **params)


# ------------------------------------------------------------------ idealised audit


def idealised_scores(q, steps, sigma, m, rng):
    """Coins and scores of ``m`` ideal gradient canaries: Binomial(steps, q) draws when
    IN, plus N(0, σ² steps)."""
    member = rng.random(m) < 0.5
    draws = np.where(member, rng.binomial(steps, q, m), 0)
    return member, draws + rng.normal(0.0, sigma * np.sqrt(steps), m)


def idealised(q, steps, sigma, m, seeds=20, confidence=0.95):
    """Median (over ``seeds`` simulations) of each one-run bound, each at ``confidence``."""
    values = {method: [] for method in ONE_RUN}
    for seed in range(seeds):
        member, score = idealised_scores(q, steps, sigma, m, np.random.default_rng(seed))
        for method in ONE_RUN:
            values[method].append(epsilon_lower_bound(member, score, method=method,
                                                      confidence=confidence,
                                                      random_state=seed).epsilon)
    return {method: float(np.median(v)) for method, v in values.items()}


def single_method_bounds(audit, column="score", confidence=0.95):
    """Each one-run bound on an audit's scores at ``confidence`` (not Bonferroni'd)."""
    member, score = audit.scores_["member"].to_numpy(), audit.scores_[column].to_numpy()
    return {method: epsilon_lower_bound(member, score, method=method, confidence=confidence)
            .epsilon for method in ONE_RUN}


def tightness(args):
    rows = []
    # the issue's idealised computation of this setting (expected steps, its σ)
    issue = idealised(128 / 5010, 1174, 0.844, 1000, seeds=args.seeds)
    rows.append({"run": "idealised, issue's (q=128/5010, T=1174, σ=0.844)", "canaries": 1000,
                 "steps": 1174, "sigma": 0.844, "claimed": 8.0, **issue})
    X, y = location()
    for (epochs, canaries), seed in ((s, seed) for s in args.settings
                                     for seed in args.audit_seeds):
        net = dpsgd(epochs=epochs, target_epsilon=args.epsilon)
        start = time.perf_counter()
        audit = audit_dp(net, X, y, canaries=canaries, white_box=True, random_state=seed)
        seconds = time.perf_counter() - start
        model = audit.estimator_
        ideal = idealised(model.sample_rate_, model.n_steps_, model.noise_multiplier_,
                          canaries, seeds=args.seeds)
        real = single_method_bounds(audit)
        rows.append({"run": f"idealised, this run's setting ({epochs} epochs)",
                     "canaries": canaries, "steps": model.n_steps_,
                     "sigma": model.noise_multiplier_, "claimed": audit.claimed_epsilon_,
                     **ideal})
        rows.append({"run": f"real white-box audit, one run ({epochs} epochs, seed {seed})",
                     "canaries": canaries, "steps": model.n_steps_,
                     "sigma": model.noise_multiplier_, "claimed": audit.claimed_epsilon_,
                     **real, "verdict (both, 95 %)": "violated" if audit.violated_ else "holds",
                     "seconds": round(seconds)})
        for score in ("update", "weights"):
            rows.append({"run": f"real, score={score!r} ({epochs} epochs, seed {seed})",
                         "canaries": canaries, "steps": model.n_steps_,
                         "sigma": model.noise_multiplier_, "claimed": audit.claimed_epsilon_,
                         **single_method_bounds(audit, score)})
        print(pd.DataFrame(rows).tail(4).to_string(), flush=True)
    if args.skip_growth:
        return pd.DataFrame(rows)
    # growth, idealised: canaries at this σ and q, and steps at the same σ and q
    q, sigma = 128 / 5010, 0.844
    for m in (250, 500, 1000, 2000, 5000, 10000):
        rows.append({"run": "idealised, canaries grow", "canaries": m, "steps": 1174,
                     "sigma": sigma, "claimed": 8.0, **idealised(q, 1174, sigma, m,
                                                                 seeds=args.seeds)})
    for steps in (300, 600, 2400, 4800):
        rows.append({"run": "idealised, steps grow (same σ: the claim grows too)",
                     "canaries": 1000, "steps": steps, "sigma": sigma,
                     "claimed": _claim(sigma, q, steps), **idealised(q, steps, sigma, 1000,
                                                                     seeds=args.seeds)})
    return pd.DataFrame(rows)


# ------------------------------------------------------------------ grid and time


DATASETS = {"location": location, "purchase-like": purchase_like}


def _bound_row(dataset, sigma, kind, runs, audit, seconds):
    row = {"dataset": dataset, "sigma": sigma, "canaries": kind, "runs": runs,
           "claimed": audit.claimed_epsilon_, "verdict": "violated" if audit.violated_
           else "holds", "seconds": round(seconds)}
    for method, bound in audit.bounds_.iterrows():
        row[method] = bound["epsilon"]
        row[f"{method} max"] = bound["max_epsilon"]
    return row


def grid(args):
    from skmia.audit import audit_dp_runs

    rows = []
    for dataset in args.datasets:
        X, y = DATASETS[dataset]()
        for sigma in args.sigmas:
            for white_box in (True, False):
                kind = "gradient" if white_box else "mislabel"
                net = dpsgd(epochs=args.epochs, noise_multiplier=sigma)
                if args.one_run_sigmas is None or sigma in args.one_run_sigmas:
                    start = time.perf_counter()
                    audit = audit_dp(net, X, y, canaries=args.canaries,
                                     white_box=white_box, random_state=0)
                    rows.append(_bound_row(dataset, sigma, kind, 1, audit,
                                           time.perf_counter() - start))
                    print(rows[-1], flush=True)
                if sigma in args.many_run_sigmas:
                    start = time.perf_counter()
                    audit = audit_dp_runs(net, X, y, canaries=args.canaries,
                                          n_runs=args.runs, n_reference=args.reference,
                                          white_box=white_box, random_state=0)
                    rows.append(_bound_row(dataset, sigma, kind, args.runs, audit,
                                           time.perf_counter() - start))
                    print(rows[-1], flush=True)
    return pd.DataFrame(rows)


def timing(args):
    """Best of ``--repeats`` interleaved calls: one plain fit, one black-box and one
    white-box one-run audit of the same estimator on the same records."""
    rows = []
    for dataset in args.datasets:
        X, y = DATASETS[dataset]()
        net = dpsgd(epochs=args.epochs, noise_multiplier=1.0, random_state=0)
        times = {"plain fit": [], "one-run audit, black box": [],
                 "one-run audit, white box": []}
        for _ in range(args.repeats):
            start = time.perf_counter()
            net.fit(X, y)
            times["plain fit"].append(time.perf_counter() - start)
            for white_box in (False, True):
                start = time.perf_counter()
                audit_dp(net, X, y, canaries=args.canaries, white_box=white_box,
                         random_state=0)
                name = f"one-run audit, {'white' if white_box else 'black'} box"
                times[name].append(time.perf_counter() - start)
        fit = min(times["plain fit"])
        for name, values in times.items():
            rows.append({"dataset": dataset, "task": name, "seconds": min(values),
                         "ratio to a plain fit": min(values) / fit})
        print(pd.DataFrame(rows).tail(3).to_string(), flush=True)
    return pd.DataFrame(rows)


def _claim(sigma, q, steps):
    from skmia.defenses._dp_accounting import privacy_epsilon

    return privacy_epsilon([(sigma, q, steps)], 1e-5)


# ------------------------------------------------------------------ main


def parse_args(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("tightness", "grid", "time"), default="tightness")
    parser.add_argument("--epsilon", type=float, default=8.0)
    parser.add_argument("--seeds", type=int, default=20,
                        help="simulations per idealised number (their median)")
    parser.add_argument("--settings", type=lambda s: tuple(map(int, s.split(":"))),
                        nargs="+", default=[(30, 1000)],
                        help="EPOCHS:CANARIES of each real white-box run (tightness)")
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--sigmas", type=float, nargs="+", default=[0.7, 1.0, 2.0],
                        help="grid: noise multipliers")
    parser.add_argument("--one-run-sigmas", type=float, nargs="*", default=None,
                        help="grid: noise multipliers audited in one run (default: all)")
    parser.add_argument("--many-run-sigmas", type=float, nargs="*", default=[1.0],
                        help="grid: noise multipliers also audited over many runs")
    parser.add_argument("--epochs", type=int, default=30, help="grid, time: epochs")
    parser.add_argument("--canaries", type=int, default=1000, help="grid, time: canaries")
    parser.add_argument("--runs", type=int, default=8, help="grid: audited runs")
    parser.add_argument("--reference", type=int, default=8, help="grid: reference runs")
    parser.add_argument("--repeats", type=int, default=2, help="time: interleaved repeats")
    parser.add_argument("--audit-seeds", type=int, nargs="+", default=[0],
                        help="random_state of each real audit (canaries, coins, model)")
    parser.add_argument("--skip-growth", action="store_true",
                        help="tightness: leave out the idealised growth tables")
    parser.add_argument("--out", default="benchmarks/results/dp_audit")
    return parser.parse_args(argv)


def main(argv=None):
    args = parse_args(argv)
    warnings.simplefilter("ignore")
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    table = {"tightness": tightness, "grid": grid, "time": timing}[args.part](args)
    header = (f"Date {date.today()}, {platform.processor() or platform.machine()}, "
              f"{os.cpu_count()} cores, load {os.getloadavg()[0]:.1f}")
    text = header + "\n\n" + table.to_markdown(index=False, floatfmt=".3g")
    (out / f"{args.part}.md").write_text(text + "\n")
    table.to_csv(out / f"{args.part}.csv", index=False)
    print(text)


if __name__ == "__main__":
    main()
