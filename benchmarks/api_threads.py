"""How much a busy machine slows the Python API, under skmia's thread policy and without.

Two workloads, each in a fresh process:

``quickstart``
    the README's Quick start: RelaxLoss (60 epochs) on Location30's 1,002 members, the
    membership signals and a loss attack.
``audit16``
    a 16-model defense audit: ``audit_defense`` of a 256-unit vanilla MLP (20 epochs) on
    1,000 Location30 rows with 50 canaries.

Each runs with skmia's policy (``skmia.set_threads(1)``, the default: torch and the native
pools on one thread inside fits and audits) and with the settings left alone
(``skmia.set_threads(None)``: torch's default, a thread per core), once alone and once
beside a competitor (another process multiplying matrices on 2 torch threads without
pause, ``benchmarks/thread_policy.py``'s). The table gives the seconds and the ratio
busy / alone of each pair, measured in one run.

    python benchmarks/api_threads.py
    python benchmarks/api_threads.py --workloads quickstart
"""

import argparse
import datetime
import os
import platform
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).parent))
from thread_policy import COMPETITOR  # noqa: E402

WORKLOADS = {
    "quickstart": """
from skmia.attacks import LossAttack, membership_signals
from skmia.datasets import fetch_location30
from skmia.defenses import RelaxLossClassifier
from skmia.model_selection import membership_split
X, y = fetch_location30(return_X_y=True)
split = membership_split(X, y, random_state=1000)
relax = RelaxLossClassifier(alpha=1.0, upper=0.3, max_epochs=60, milestones=(),
                            random_state=0).fit(*split.target_train)
signals, membership = membership_signals(relax, split.target_train, split.target_test)
LossAttack(scoring="roc_auc").fit(signals, membership).evaluate(signals, membership)
""",
    "audit16": """
from skmia.audit import audit_defense, make_canaries
from skmia.datasets import fetch_location30
from skmia.defenses import VanillaClassifier
X, y = fetch_location30(return_X_y=True)
X, y = X[:1000], y[:1000]
canaries = make_canaries(X, y, 50, kind="mislabel", random_state=0)
audit_defense(VanillaClassifier(max_epochs=20, milestones=(), module__hidden_sizes=(256,)),
              X, y, canaries=canaries, n_models=16, random_state=0)
""",
}
POLICIES = {"skmia (1 thread)": "1", "left alone (torch default)": "None"}


def timed(workload, policy):
    """Seconds of the workload in a fresh process (imports excluded)."""
    code = (f"import time, skmia\nskmia.set_threads({policy})\n"
            f"import torch, skmia.defenses, skmia.audit, skmia.attacks\n"
            f"start = time.perf_counter()\n{WORKLOADS[workload]}\n"
            f"print(time.perf_counter() - start)\n")
    result = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,  # noqa: S603
                            check=True)
    return float(result.stdout.strip().splitlines()[-1])


def busy(workload, policy):
    competitor = subprocess.Popen([sys.executable, "-c", COMPETITOR])  # noqa: S603
    try:
        time.sleep(2)  # the competitor's torch is imported and spinning
        return timed(workload, policy)
    finally:
        competitor.kill()
        competitor.wait()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--workloads", nargs="+", default=list(WORKLOADS),
                        choices=tuple(WORKLOADS))
    args = parser.parse_args(argv)
    load = os.getloadavg()[0]
    rows = []
    for workload in args.workloads:
        for name, policy in POLICIES.items():
            alone = timed(workload, policy)
            beside = busy(workload, policy)
            rows.append(f"| {workload} | {name} | {alone:.1f} | {beside:.1f} | "
                        f"{beside / alone:.2f} |")
    print(f"python benchmarks/api_threads.py {' '.join(sys.argv[1:])}")
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{platform.machine()}, {os.cpu_count()} CPUs, load at start {load:.1f}, "
          f"at end {os.getloadavg()[0]:.1f}\n")
    print("| workload | policy | alone, s | beside a 2-thread loop, s | ratio |")
    print("|---|---|---:|---:|---:|")
    print("\n".join(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
