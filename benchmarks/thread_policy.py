"""How much a busy machine slows ``skmia run``, per torch-thread policy.

Each policy runs the same training twice, in a fresh process each time:

    skmia run --dataset purchase-like --method vanilla --mode defense --epochs E

once on an idle machine and once beside a competing process: another torch process
multiplying 1024x1024 matrices on 2 threads without pause (what a second user's job
looks like to OpenMP). Policies: 2 torch threads with OpenMP's default wait policy
(threads spin while they wait for work), 2 threads with ``OMP_WAIT_POLICY=PASSIVE``
(they sleep), and 1 thread (``--threads 1``, skmia's default). The table gives the
training time that the run writes in ``complete.json`` (the median over ``--repeats``,
and the slowest busy run), the ratio busy / idle, and the whole command's wall time
(start-up and data generation included): a
competitor that takes its share of the cores costs about 2x on 2 cores with 2 threads
and less with one; a policy that spins for cores it does not get costs a multiple.

    python benchmarks/thread_policy.py              # 10 epochs, about 2 minutes here
    python benchmarks/thread_policy.py --repeats 3  # the median of 3 runs per cell
    python benchmarks/thread_policy.py --epochs 2   # quick
"""

import argparse
import json
import os
import platform
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

COMPETITOR = (
    "import torch\n"
    "torch.set_num_threads(2)\n"
    "a = torch.randn(1024, 1024)\n"
    "while True:\n"
    "    a @ a\n"
)
# name -> (--threads, extra environment)
POLICIES = {
    "2 threads, OpenMP default wait (spinning)": (2, {}),
    "2 threads, OMP_WAIT_POLICY=PASSIVE": (2, {"OMP_WAIT_POLICY": "PASSIVE"}),
    "1 thread (skmia's default)": (1, {}),
}


def train_seconds(threads, env, epochs, out):
    """Wall time of one ``skmia run`` and the training time it records."""
    command = [sys.executable, "-c", "import sys; from skmia.cli import main; sys.exit(main())",
               "run", "--dataset", "purchase-like",
               "--method", "vanilla", "--mode", "defense", "--epochs", str(epochs),
               "--threads", str(threads), "--out", str(out), "-q"]
    full_env = {k: v for k, v in os.environ.items() if k != "OMP_WAIT_POLICY"}
    full_env.update(env)
    start = time.perf_counter()
    subprocess.run(command, env=full_env, check=True, stdout=subprocess.DEVNULL)  # noqa: S603
    wall = time.perf_counter() - start
    folder = next(Path(out).glob("purchase-like/vanilla/seed*"))
    done = json.loads((folder / "complete.json").read_text())
    return wall, done["seconds"], done["rows"]


def measure(epochs, repeats=1):
    """``(policy, busy) -> (wall, training, rows, worst training)``: the medians of
    ``repeats`` runs each and the slowest training; the policies alternate, so that drift
    hits them alike."""
    runs = {}
    for _ in range(repeats):
        for key, result in _measure_once(epochs).items():
            runs.setdefault(key, []).append(result)
    return {key: (statistics.median(r[0] for r in results),
                  statistics.median(r[1] for r in results), results[0][2],
                  max(r[1] for r in results))
            for key, results in runs.items()}


def _measure_once(epochs):
    rows = {}
    for name, (threads, env) in POLICIES.items():
        for busy in (False, True):
            competitor = None
            if busy:
                competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR])  # noqa: S603
                time.sleep(2)  # let it start multiplying
            try:
                with tempfile.TemporaryDirectory() as out:
                    rows[name, busy] = train_seconds(threads, env, epochs, out)
            finally:
                if competitor is not None:
                    competitor.kill()
                    competitor.wait()
            wall, seconds = rows[name, busy][:2]
            print(f"{name}, {'busy' if busy else 'idle'}: training {seconds:.1f} s "
                  f"(wall {wall:.1f} s)", file=sys.stderr, flush=True)
    return rows


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--epochs", type=int, default=10)
    parser.add_argument("--repeats", type=int, default=1, help="runs per cell (median)")
    args = parser.parse_args(argv)
    rows = measure(args.epochs, args.repeats)
    best_idle = min(rows[name, False][1] for name in POLICIES)
    n_rows = rows[next(iter(POLICIES)), False][2]
    print(f"skmia run --dataset purchase-like --method vanilla --mode defense --epochs "
          f"{args.epochs} ({n_rows:,} rows, paper MLP); {os.cpu_count()} cores, "
          f"{platform.processor() or platform.machine()}; busy = beside a 2-thread torch "
          f"matmul loop; median of {args.repeats} run(s) per cell")
    print()
    print("| policy | training idle (s) | training busy (s) | busy / idle | busy / best idle "
          "| slowest busy (s) | slowest / idle | command idle (s) | command busy (s) |")
    print("|---|---:|---:|---:|---:|---:|---:|---:|---:|")
    for name in POLICIES:
        wall_idle, idle = rows[name, False][:2]
        wall_busy, busy, _, worst = rows[name, True]
        print(f"| {name} | {idle:.1f} | {busy:.1f} | {busy / idle:.2f}x | "
              f"{busy / best_idle:.2f}x | {worst:.1f} | {worst / idle:.2f}x | "
              f"{wall_idle:.1f} | {wall_busy:.1f} |")


if __name__ == "__main__":
    main()
