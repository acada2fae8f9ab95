"""Fit time of a bank of reference models against K plain PyTorch fits of the same model.

For each dataset (Location30, the synthetic purchase-like data), each network (the
paper's MLP 1024-512-256-128 and an MLP with one hidden layer of 256 units) and each
bank size K, three timings of K models, each trained on a random half of the pool with
the same optimiser (SGD lr 0.1, momentum 0.9, weight decay 1e-4), batch size and epochs:

(a) K sequential fits by a plain PyTorch loop (``DataLoader`` over tensors), with
    torch's default number of threads;
(b) ``ReferenceModels(VanillaClassifier(...), n_estimators=K, n_jobs=1).fit(pool)``;
(c) the same with ``n_jobs=--jobs`` (2 by default).

The three alternate, ``--repeats`` times, and the table gives the best time of each
(the least disturbed by other work on the machine) and the ratios (b)/(a) and (c)/(a).
Goal on a 2-core machine: (b) <= 1.1x and (c) <= 0.6x. The bank trains every model on
one torch thread, so that its models do not depend on ``n_jobs`` (DESIGN §7); a second
table measures what that costs: one plain fit on one thread against one on torch's
default threads.

    SKMIA_DATA_HOME=../shared/data python benchmarks/reference_bank.py          # 4-10 min
    SKMIA_DATA_HOME=../shared/data python benchmarks/reference_bank.py --quick  # 1-2 min
"""

import argparse
import datetime
import math
import os
import platform
import shlex
import sys
import time

import numpy as np

from skmia import _registry

MODELS = {
    "paper": ("paper MLP 1024-512-256-128", (1024, 512, 256, 128)),
    "mlp256": ("MLP 256", (256,)),
}
DATASETS = ("location", "purchase-like")
PRESETS = {
    # pool sizes: Location30 is used whole (5,010 rows); purchase-like rows are drawn
    "full": {"epochs": 3, "ks": (4, 16), "purchase_rows": 6000, "repeats": 2},
    "quick": {"epochs": 2, "ks": (4,), "purchase_rows": 4000, "repeats": 1},
}
BATCH_SIZE = 128


def parse_args(argv=None):
    """The command line: a preset, then any option that overrides it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="2 epochs, K = 4, 4,000 purchase-like rows (about 2 minutes)")
    parser.add_argument("--jobs", type=int, default=2, help="n_jobs of the parallel bank (c)")
    parser.add_argument("--epochs", type=int, default=None, help="epochs of every model")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=list(DATASETS))
    parser.add_argument("--models", nargs="+", choices=tuple(MODELS), default=list(MODELS))
    parser.add_argument("--ks", nargs="+", type=int, default=None, help="bank sizes K (even)")
    parser.add_argument("--purchase-rows", type=int, default=None,
                        help="rows of the purchase-like pool")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timings of each kind; the best one is reported")
    parser.add_argument("--data-home", default=None,
                        help=f"folder of {_registry.DATASETS['location'].archive.filename} "
                             "(default: $SKMIA_DATA_HOME)")
    args = parser.parse_args(argv)
    preset = PRESETS["quick" if args.quick else "full"]
    for name, value in preset.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if args.jobs < 2:
        parser.error(f"--jobs must be at least 2 (the parallel column), got {args.jobs}")
    if args.epochs < 1 or args.repeats < 1 or any(k < 2 or k % 2 for k in args.ks):
        parser.error("--epochs and --repeats must be >= 1 and every K an even number >= 2")
    return args


def load_pool(dataset, args):
    """The pool ``(X, y)`` of a dataset, and its description for the table."""
    if dataset == "location":
        from skmia.datasets import fetch_location30

        X, y = fetch_location30(data_home=args.data_home, download_if_missing=False,
                                return_X_y=True)
        return X, y, f"Location30, {len(y):,} rows x {X.shape[1]} features, 30 classes"
    from skmia.datasets import make_purchase_like

    X, y = make_purchase_like(n_samples=args.purchase_rows, random_state=0, return_X_y=True)
    return X, y, f"purchase-like (SYNTHETIC), {len(y):,} rows x {X.shape[1]}, 100 classes"


def plain_fits(X, y, hidden, n_models, epochs, seed=0):
    """``n_models`` fits by a hand-written loop, each on a random half of ``(X, y)``."""
    import torch
    import torch.nn.functional as F

    from skmia.nn import MLP

    rng = np.random.default_rng(seed)
    n_classes = int(y.max()) + 1
    nets = []
    for k in range(n_models):
        rows = rng.permutation(len(y))[: len(y) // 2]
        torch.manual_seed(seed + k)
        net = MLP(X.shape[1], n_classes, hidden_sizes=hidden)
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        data = torch.utils.data.TensorDataset(torch.as_tensor(X[rows]), torch.as_tensor(y[rows]))
        loader = torch.utils.data.DataLoader(data, batch_size=BATCH_SIZE, shuffle=True)
        net.train()
        for _ in range(epochs):
            for xb, yb in loader:
                opt.zero_grad()
                F.cross_entropy(net(xb), yb).backward()
                opt.step()
        nets.append(net)
    return nets


def bank_fit(X, y, hidden, n_models, epochs, n_jobs, seed=0):
    """``ReferenceModels`` of ``VanillaClassifier`` with the plain loop's settings."""
    from skmia.defenses import VanillaClassifier
    from skmia.model_selection import ReferenceModels

    model = VanillaClassifier(max_epochs=epochs, batch_size=BATCH_SIZE, lr=0.1,
                              module__hidden_sizes=hidden, random_state=seed)
    bank = ReferenceModels(model, n_estimators=n_models, n_jobs=n_jobs, random_state=seed)
    return bank.fit(X, y)


def warm_fit(X, y, hidden):
    """One tiny fit: a process's first fit of a network costs twice what the next do."""
    from skmia.defenses import VanillaClassifier

    VanillaClassifier(max_epochs=1, module__hidden_sizes=hidden, random_state=0).fit(X, y)
    return os.getpid()


def start_workers(n_jobs, X, y, hidden):
    """Start joblib's worker processes and warm them up before anything is timed."""
    from skmia._parallel import parallel_map

    start = time.perf_counter()
    parallel_map(warm_fit, [(X, y, hidden)] * n_jobs, n_jobs=n_jobs)
    return time.perf_counter() - start


def _timed(function, *args):
    start = time.perf_counter()
    function(*args)
    return time.perf_counter() - start


def cpu_name():
    """The processor's model name, as the kernel reports it."""
    try:
        with open("/proc/cpuinfo") as info:
            for line in info:
                if line.startswith("model name"):
                    return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or platform.machine()


def _load():
    return "/".join(f"{x:.2f}" for x in os.getloadavg())


def main(argv=None):
    """Run the benchmark and print its tables; returns the rows of the main table.

    Parameters
    ----------
    argv : list of str, default=None
        Command-line arguments (default: ``sys.argv[1:]``).

    Returns
    -------
    rows : list of dict
        One per (dataset, model, K): the three times in seconds and the two ratios.
    """
    args = parse_args(argv)
    import torch

    threads = torch.get_num_threads()
    command = " ".join(["python benchmarks/reference_bank.py",
                        shlex.join(sys.argv[1:] if argv is None else argv)]).strip()
    load_start = _load()
    began = time.perf_counter()
    rows, scaling, pools = [], [], []
    startup = None
    for dataset in args.datasets:
        X, y, described = load_pool(dataset, args)
        pools.append(described)
        for model in args.models:
            label, hidden = MODELS[model]
            # warm-up, for this network: torch here, the fit path here and in the workers
            plain_fits(X[:256], y[:256], hidden, 1, 1)
            warm_fit(X[:256], y[:256], hidden)
            seconds = start_workers(args.jobs, X[:256], y[:256], hidden)
            startup = seconds if startup is None else startup
            one = {1: math.inf, threads: math.inf}
            for _ in range(args.repeats):
                for n in one:
                    torch.set_num_threads(n)
                    one[n] = min(one[n], _timed(plain_fits, X, y, hidden, 1, args.epochs))
            torch.set_num_threads(threads)
            scaling.append({"dataset": dataset, "model": label, "one": one[1],
                            "default": one[threads]})
            for k in args.ks:
                plain = serial = parallel = math.inf
                for _ in range(args.repeats):  # alternated: a drift in load hits all three
                    plain = min(plain, _timed(plain_fits, X, y, hidden, k, args.epochs))
                    serial = min(serial, _timed(bank_fit, X, y, hidden, k, args.epochs, 1))
                    # loky ends workers idle for 5 minutes: restart them untimed if it did
                    start_workers(args.jobs, X[:256], y[:256], hidden)
                    parallel = min(parallel, _timed(bank_fit, X, y, hidden, k, args.epochs,
                                                    args.jobs))
                rows.append({"dataset": dataset, "model": label, "K": k, "plain": plain,
                             "serial": serial, "parallel": parallel,
                             "serial_ratio": serial / plain, "parallel_ratio": parallel / plain})
                print(f"  {dataset} {label} K={k}: plain {plain:.1f} s, bank {serial:.1f} s, "
                      f"bank n_jobs={args.jobs} {parallel:.1f} s", file=sys.stderr, flush=True)
    wall = time.perf_counter() - began

    print(f"{datetime.date.today().isoformat()}, {cpu_name()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, torch {torch.__version__} "
          f"({threads} threads by default); load average (1/5/15 min) {load_start} at the "
          f"start, {_load()} at the end; {wall / 60:.1f} minutes")
    print(f"command: `{command}`")
    print(f"pools: {'; '.join(pools)}. Each model trains on a random half of its pool, "
          f"{args.epochs} epoch(s), batch {BATCH_SIZE}, SGD lr 0.1, momentum 0.9, weight "
          f"decay 1e-4; best of {args.repeats} timing(s) of each kind. Untimed warm-up "
          f"for each network: one tiny fit by each trainer in each process; joblib's "
          f"{args.jobs} worker processes were started before the timings ({startup:.1f} s, "
          f"once per session).")
    print()
    print(f"| dataset | model | K | (a) plain PyTorch, {threads} threads (s) | "
          f"(b) bank, n_jobs=1 (s) | (c) bank, n_jobs={args.jobs} (s) | (b)/(a) | (c)/(a) |")
    print("|---|---|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        print(f"| {r['dataset']} | {r['model']} | {r['K']} | {r['plain']:.1f} | "
              f"{r['serial']:.1f} | {r['parallel']:.1f} | {r['serial_ratio']:.2f}x | "
              f"{r['parallel_ratio']:.2f}x |")
    print()
    print(f"One plain fit (one model, half the pool), 1 thread against {threads}:")
    print()
    print(f"| dataset | model | 1 thread (s) | {threads} threads (s) | 1 thread / {threads} |")
    print("|---|---|---:|---:|---:|")
    for s in scaling:
        print(f"| {s['dataset']} | {s['model']} | {s['one']:.2f} | {s['default']:.2f} | "
              f"{s['one'] / s['default']:.2f}x |")
    return rows


if __name__ == "__main__":
    main()
