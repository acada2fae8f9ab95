"""Fit time of a bank of reference models: vectorised, model by model, and a plain loop.

For each dataset (Location30, the synthetic purchase-like data), each network (an MLP
with one hidden layer of 256 units, 10 epochs; the paper's MLP 1024-512-256-128, 3
epochs), each bank size K and 1 and 2 torch threads, K models each on half of a pool of
``--rows`` records (2,004: the audited pool of a Location30 run), batch 128, SGD lr 0.1,
momentum 0.9, weight decay 1e-4, trained by:

(a) a plain PyTorch loop, one model after the other (the baseline);
(b) ``ReferenceModels(..., vectorize=False)``: model by model, skmia's path before the
    vectorised bank; on 2 threads that is ``n_jobs=2`` worker processes (started and
    warmed before the timing);
(c) ``ReferenceModels(..., vectorize=True)`` (one batched network), ``n_jobs`` =
    threads;
(d) ``ReferenceModels(...)`` (the default, ``vectorize="auto"``: batched, as (c)) in a
    fresh process, as the CLI runs it (the first ``fit`` of a process, after its
    imports; the import of ``torch._dynamo`` that a process's first ``torch.optim``
    optimizer makes is timed apart and included), and (e) (b) in a fresh process: its
    workers start, or not, in the timing.

The FLOP limit is ``6 x parameters x rows x epochs x K`` (forward and backward) at the
speed of one large float32 matrix product on the same threads, by the faster of MKL
(``torch.matmul``) and oneDNN (the batched bank's kernel on a CPU); both speeds are
printed. (The first layer needs no input gradient: the work done is nearer 4 x its
weights than 6, so a run can come in under this "limit".) Times are the best of
``--repeats``; ratios in the table, among them the one-thread serial bank (b) over each
row's (c): the issue's "faster than skmia's serial bank" goal. ``--tolerance`` instead
trains a bank under the paper's full schedule (120 epochs, decay at 50 and 100)
vectorised and model by model and prints the largest difference between the models'
weights and probabilities.

    SKMIA_DATA_HOME=../shared/data python benchmarks/reference_bank.py          # ~10-30 min
    SKMIA_DATA_HOME=../shared/data python benchmarks/reference_bank.py --quick  # ~1 min
    SKMIA_DATA_HOME=../shared/data python benchmarks/reference_bank.py --tolerance
    SKMIA_DATA_HOME=../shared/data python benchmarks/reference_bank.py --dpsgd
    python benchmarks/reference_bank.py --dp-accounting  # one DP model's accounting

``--dpsgd`` times DP-SGD banks instead: K models (16 and 64) of the defense audit's
recipes on its Location30 pool (``skmia audit location``: 5,000 records, 250 canaries,
MLP-256, 30 epochs, seed 0): DP-SGD trained to ε = 8 (``dpsgd`` with
``target_epsilon=8``) and ``dpsgd_hu``, batched (``vectorize=True``) and model by model
(``vectorize=False``, for the Ks of ``--dp-per-model-ks``: 64 models one by one take
long), beside the vanilla recipe's batched bank of the same K, on 1 and 2 threads
(``n_jobs``), in one run; ratios to the vanilla batched bank of the same K and threads.
Each bank computes its own accounting: the accounting's memos are emptied and the worker
processes restarted before each timing.
The batched banks also get their CPU seconds (``time.process_time``: on a shared
machine, what a bank costs whatever share of the cores it got).
"""

import argparse
import datetime
import json
import math
import os
import platform
import shlex
import subprocess
import sys
import time

import numpy as np

from skmia import _registry

MODELS = {  # name: (label, hidden sizes, epochs)
    "mlp256": ("MLP 256", (256,), 10),
    "paper": ("paper MLP 1024-512-256-128", (1024, 512, 256, 128), 3),
}
DATASETS = ("location", "purchase-like")
PRESETS = {
    "full": {"ks": (16, 64), "models": list(MODELS), "datasets": list(DATASETS),
             "threads": (1, 2), "repeats": 2},
    "quick": {"ks": (16,), "models": ["mlp256"], "datasets": ["location"],
              "threads": (2,), "repeats": 1},
}
BATCH_SIZE = 128


def parse_args(argv=None):
    """The command line: a preset, then any option that overrides it."""
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--quick", action="store_true",
                        help="K = 16, the small MLP on Location30, 2 threads, one timing")
    parser.add_argument("--tolerance", action="store_true",
                        help="measure vectorised against model-by-model weights after the "
                             "paper's full schedule instead of timing")
    parser.add_argument("--datasets", nargs="+", choices=DATASETS, default=None)
    parser.add_argument("--models", nargs="+", choices=tuple(MODELS), default=None)
    parser.add_argument("--ks", nargs="+", type=int, default=None, help="bank sizes K (even)")
    parser.add_argument("--threads", nargs="+", type=int, default=None,
                        help="torch threads (and n_jobs) of each timing")
    parser.add_argument("--epochs", type=int, default=None,
                        help="epochs of every model (default: 10 small MLP, 3 paper MLP)")
    parser.add_argument("--rows", type=int, default=2004, help="records in the pool")
    parser.add_argument("--repeats", type=int, default=None,
                        help="timings of each kind; the best one is reported")
    parser.add_argument("--no-fresh", action="store_true",
                        help="skip the timings in fresh processes")
    parser.add_argument("--data-home", default=None,
                        help=f"folder of {_registry.DATASETS['location'].archive.filename} "
                             "(default: $SKMIA_DATA_HOME)")
    parser.add_argument("--dpsgd", action="store_true",
                        help="time DP-SGD banks of the audit's recipes (see the docstring)")
    parser.add_argument("--dp-per-model-ks", nargs="*", type=int, default=[16],
                        help="with --dpsgd: the Ks also trained model by model")
    parser.add_argument("--dp-accounting", nargs="*", type=int, default=None, metavar="ROWS",
                        help="time one DP-SGD model's accounting (ε = 8 noise search and ε "
                             "after each epoch) for these training-set sizes (default "
                             "2003 1987: two models of the --dpsgd bank)")
    parser.add_argument("--child", default=None, help=argparse.SUPPRESS)
    args = parser.parse_args(argv)
    preset = PRESETS["quick" if args.quick else "full"]
    for name, value in preset.items():
        if getattr(args, name) is None:
            setattr(args, name, value)
    if (any(k < 2 or k % 2 for k in args.ks) or args.repeats < 1 or args.rows < 200
            or any(t < 1 for t in args.threads) or (args.epochs is not None and args.epochs < 1)):
        parser.error("every K must be an even number >= 2, --repeats, --threads and "
                     "--epochs >= 1, --rows >= 200")
    return args


def load_pool(dataset, rows, data_home=None):
    """A seeded pool of ``rows`` records of a dataset, and its description."""
    if dataset == "location":
        from skmia.datasets import fetch_location30

        X, y = fetch_location30(data_home=data_home, download_if_missing=False,
                                return_X_y=True)
        name = "Location30"
    else:
        from skmia.datasets import make_purchase_like

        X, y = make_purchase_like(n_samples=max(5 * rows, 10_000), random_state=0,
                                  return_X_y=True)
        name = "purchase-like (SYNTHETIC)"
    rng = np.random.default_rng(0)
    shuffled = rng.permutation(len(y))
    if dataset == "location":
        keep = np.sort(shuffled[:rows])
    else:  # classes as even as the data allows (100 classes in 2,004 rows: ~20 each,
        # so that no model of a 64-model bank misses one)
        rank = np.empty(len(y), dtype=np.int64)
        for c in np.unique(y):
            members = shuffled[y[shuffled] == c]
            rank[members] = np.arange(len(members))
        keep = np.sort(shuffled[np.argsort(rank[shuffled], kind="stable")][:rows])
    X, y = X[keep], y[keep]
    return X, y, f"{name}, {len(y):,} rows x {X.shape[1]}, {len(np.unique(y))} classes"


def plain_fits(X, y, hidden, n_models, epochs, seed=0):
    """``n_models`` fits by a hand-written loop, each on a random half of ``(X, y)``,
    slicing a shuffled order of tensors (no DataLoader)."""
    import torch
    import torch.nn.functional as F

    from skmia.nn import MLP

    rng = np.random.default_rng(seed)
    n_classes = int(y.max()) + 1
    X_all, y_all = torch.as_tensor(X, dtype=torch.float32), torch.as_tensor(y)
    nets = []
    for k in range(n_models):
        rows = torch.as_tensor(rng.permutation(len(y))[: len(y) // 2])
        Xk, yk = X_all[rows], y_all[rows]
        torch.manual_seed(seed + k)
        net = MLP(X.shape[1], n_classes, hidden_sizes=hidden)
        opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
        for _ in range(epochs):
            order = torch.randperm(len(yk))
            for start in range(0, len(yk), BATCH_SIZE):
                batch = order[start:start + BATCH_SIZE]
                opt.zero_grad()
                F.cross_entropy(net(Xk[batch]), yk[batch]).backward()
                opt.step()
        nets.append(net)
    return nets


def make_bank(hidden, n_models, epochs, n_jobs, vectorize, seed=0, **params):
    """``ReferenceModels`` of ``VanillaClassifier`` with the plain loop's settings."""
    from skmia.defenses import VanillaClassifier
    from skmia.model_selection import ReferenceModels

    settings = {"max_epochs": epochs, "batch_size": BATCH_SIZE, "lr": 0.1,
                "milestones": (), **params}
    model = VanillaClassifier(module__hidden_sizes=tuple(hidden), **settings)
    return ReferenceModels(model, n_estimators=n_models, n_jobs=n_jobs, random_state=seed,
                           vectorize=vectorize)


def _import_torch():
    import torch

    return torch.get_num_threads()


def start_workers(n_jobs):
    """Start joblib's worker processes (importing torch) before anything is timed."""
    from joblib import Parallel, delayed

    Parallel(n_jobs=n_jobs)(delayed(_import_torch)() for _ in range(n_jobs))


def cold_accounting(n_jobs):
    """Empty the DP accounting's memos (``skmia/defenses/_dp_accounting.py``) here, and
    start fresh worker processes, so that a timed bank computes its own accounting:
    banks of the same seed share their first models' training sets, hence their sample
    rates, and an earlier bank's ε would otherwise come from the memo."""
    from joblib.externals.loky import get_reusable_executor

    from skmia.defenses import _dp_accounting, _dp_prv, _dp_rdp

    for memo in (_dp_accounting._privacy_epsilon, _dp_rdp.one_step_rdp,
                 _dp_prv._prv_epsilon, _dp_prv.noise_for_epsilon):
        memo.cache_clear()
    if n_jobs > 1:
        get_reusable_executor().shutdown(wait=True)
        start_workers(n_jobs)


def _timed(function, *args, **kwargs):
    start = time.perf_counter()
    function(*args, **kwargs)
    return time.perf_counter() - start


def gflops_per_second(threads, size=1536, repeats=3):
    """Speed of one large float32 matrix product on ``threads`` torch threads, by MKL
    (``torch.matmul``) and by oneDNN (the batched bank's CPU kernel, where torch has it):
    ``{"mkl": GFLOP/s, "onednn": GFLOP/s or None}``."""
    import torch

    from skmia._parallel import torch_threads
    from skmia.nn._batched import _onednn

    a, b = torch.randn(size, size), torch.randn(size, size)
    linear = _onednn()
    kernels = {"mkl": torch.matmul,
               "onednn": linear and (lambda x, w: linear(x, w, None, "none", [], ""))}
    speeds = {}
    with torch_threads(threads):
        for name, product in kernels.items():
            if product is None:
                speeds[name] = None
                continue
            product(a, b)
            best = min(_timed(product, a, b) for _ in range(repeats))
            speeds[name] = 2 * size**3 / best / 1e9
    return speeds


def flops(X, y, hidden, n_models, epochs):
    """Forward and backward of every model: 6 FLOPs per parameter and row."""
    widths = [X.shape[1], *hidden, int(y.max()) + 1]
    params = sum(a * b + b for a, b in zip(widths[:-1], widths[1:], strict=True))
    return 6 * params * (len(y) // 2) * epochs * n_models


def fresh_fit(spec):
    """Time the first ``fit`` of a bank in a new Python process (imports not timed, but
    for ``torch._dynamo``'s): ``(seconds, of which torch._dynamo's import)``."""
    command = [sys.executable, os.path.abspath(__file__), "--child", json.dumps(spec)]
    env = {**os.environ, "OMP_NUM_THREADS": str(spec["threads"])}
    out = subprocess.run(command, check=True, capture_output=True, text=True, env=env)  # noqa: S603
    timed = json.loads(out.stdout.strip().splitlines()[-1])
    return timed["seconds"], timed["dynamo"]


def _child(spec):
    import torch  # noqa: F401  (imported before the timing, as the CLI has it)

    X, y, _ = load_pool(spec["dataset"], spec["rows"], spec["data_home"])
    bank = make_bank(spec["hidden"], spec["K"], spec["epochs"], spec["threads"],
                     spec["vectorize"])
    began = time.perf_counter()
    import torch._dynamo  # noqa: F401  (what the first torch.optim optimizer imports)

    dynamo = time.perf_counter() - began
    print(json.dumps({"seconds": dynamo + _timed(bank.fit, X, y), "dynamo": dynamo}))


def time_row(X, y, hidden, k, epochs, threads, args, spec):
    """The timings of one (dataset, network, K, threads)."""
    from skmia._parallel import torch_threads

    best = {"plain": math.inf, "per_model": math.inf, "vectorised": math.inf}
    for _ in range(args.repeats):  # alternated: a drift in load hits all of them
        with torch_threads(threads):
            best["plain"] = min(best["plain"], _timed(plain_fits, X, y, hidden, k, epochs))
        best["per_model"] = min(best["per_model"], _timed(
            make_bank(hidden, k, epochs, threads, False).fit, X, y))
        best["vectorised"] = min(best["vectorised"], _timed(
            make_bank(hidden, k, epochs, threads, True).fit, X, y))
    if not args.no_fresh:
        spec = {**spec, "hidden": list(hidden), "K": k, "epochs": epochs, "threads": threads}
        best["fresh"], best["dynamo"] = fresh_fit({**spec, "vectorize": "auto"})
        best["fresh_per_model"], _ = fresh_fit({**spec, "vectorize": False})
    speeds = gflops_per_second(threads)
    best["flop_limit"] = flops(X, y, hidden, k, epochs) / 1e9 / max(
        v for v in speeds.values() if v)
    return best


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


def _cell(value, unit=""):
    return "-" if value is None else f"{value:.2f}{unit}"


def print_table(rows):
    """The Markdown table of the timings and their ratios."""
    serial = {(r["dataset"], r["network"], r["K"]): r["per_model"]
              for r in rows if r["threads"] == 1}
    print("| dataset | network | K | threads | (a) plain loop | (b) model by model | "
          "(c) vectorised | (d) default, fresh (dynamo) | (e) (b) fresh | FLOP limit | "
          "(c)/(a) | (b)/(c) | (b, 1 thread)/(c) | (c)/limit | (d)/limit |")
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for r in rows:
        fresh, one = r.get("fresh"), serial.get((r["dataset"], r["network"], r["K"]))
        fresh_cell = "-" if fresh is None else f"{fresh:.2f} ({r['dynamo']:.2f})"
        print(f"| {r['dataset']} | {r['network']} | {r['K']} | {r['threads']} | "
              f"{r['plain']:.2f} | {r['per_model']:.2f} | {r['vectorised']:.2f} | "
              f"{fresh_cell} | {_cell(r.get('fresh_per_model'))} | {r['flop_limit']:.2f} | "
              f"{r['vectorised'] / r['plain']:.2f}x | {r['per_model'] / r['vectorised']:.2f}x | "
              f"{_cell(None if one is None else one / r['vectorised'], 'x')} | "
              f"{r['vectorised'] / r['flop_limit']:.2f}x | "
              f"{_cell(None if fresh is None else fresh / r['flop_limit'], 'x')} |")


def tolerance(args):
    """Largest weight and probability differences, vectorised against model by model,
    after the paper's schedule (120 epochs, lr x0.1 at 50 and 100)."""
    from skmia.defenses import RelaxLossClassifier, VanillaClassifier
    from skmia.model_selection import ReferenceModels

    X, y, described = load_pool(args.datasets[0], args.rows, args.data_home)
    schedule = {"max_epochs": args.epochs or 120, "milestones": (50, 100),
                "batch_size": BATCH_SIZE, "module__hidden_sizes": (256,)}
    print(f"pool: {described}; {schedule}")
    for estimator in (VanillaClassifier(**schedule),
                      RelaxLossClassifier(alpha=0.8, upper=0.3, **schedule)):
        banks = [ReferenceModels(estimator, n_estimators=args.ks[0], random_state=0,
                                 vectorize=v, n_jobs=1).fit(X, y) for v in (True, False)]
        weights = probas = 0.0
        for a, b in zip(banks[0].estimators_, banks[1].estimators_, strict=True):
            for p, q in zip(a.module_.parameters(), b.module_.parameters(), strict=True):
                weights = max(weights, float((p - q).detach().abs().max()))
            probas = max(probas, float(np.abs(a.predict_proba(X) - b.predict_proba(X)).max()))
        print(f"{type(estimator).__name__}, K={args.ks[0]}: max |weight difference| "
              f"{weights:.2e}, max |probability difference| {probas:.2e}")


#: the audit's recipes: (label, method, overrides)
AUDIT_RECIPES = (("vanilla", "vanilla", {}), ("dpsgd (ε=8)", "dpsgd", {"target_epsilon": 8.0}),
                 ("dpsgd_hu", "dpsgd_hu", {}))


def audit_recipes(data_home, epochs):
    """The defense audit's Location30 pool and its recipes (MLP-256), by label."""
    from skmia.experiment._audit_dir import AuditConfig, _plan, _recipe

    recipes, config = {}, None
    for label, method, overrides in AUDIT_RECIPES:
        config = AuditConfig(dataset="location", methods=(method,), canaries=250,
                             records=5000, seed=0, epochs=epochs, hidden=(256,),
                             overrides=overrides, data_home=data_home, verbose=0)
        recipes[label] = _recipe(config, method)
    plan = _plan(config)
    return plan.X_pool, plan.y_pool, recipes


def dpsgd_rows(args):
    """Seconds of each (K, threads, recipe, path) of ``--dpsgd``."""
    import warnings

    from sklearn.base import clone

    from skmia.defenses import WeakPrivacyWarning
    from skmia.model_selection import ReferenceModels

    X, y, recipes = audit_recipes(args.data_home, args.epochs or 30)
    warnings.simplefilter("ignore", WeakPrivacyWarning)  # dpsgd_hu's ε is vacuous
    for recipe in recipes.values():  # warm-up: imports, first calls
        ReferenceModels(clone(recipe).set_params(max_epochs=1),
                        n_estimators=2, random_state=0).fit(X[:400], y[:400])
    rows = []
    for threads in args.threads:
        if threads > 1:
            start_workers(threads)
        for k in args.ks:
            row = {"K": k, "threads": threads}
            runs = [(label, "batched", True) for label in recipes]  # the quick ones first
            if k in args.dp_per_model_ks:
                runs += [(label, "model by model", False) for label in recipes
                         if label != "vanilla"]
            for label, path, vectorize in runs:
                bank = ReferenceModels(recipes[label], n_estimators=k, n_jobs=threads,
                                       random_state=0, vectorize=vectorize)
                cold_accounting(threads)
                cpu = time.process_time()
                row[f"{label}, {path}"] = _timed(bank.fit, X, y)
                if vectorize:  # this process's threads did all of the work
                    row[f"{label}, {path} (CPU)"] = time.process_time() - cpu
                print(f"  K={k} threads={threads} {label} {path}: "
                      f"{row[f'{label}, {path}']:.1f} s", file=sys.stderr, flush=True)
            rows.append(row)
    return rows, f"the audit's Location30 pool, {len(y):,} rows x {X.shape[1]}"


def dp_accounting(rows, epochs, batch_size=128, target=8.0, delta=1e-5):
    """``--dp-accounting``: seconds (wall and CPU) of what ``DPSGDClassifier`` accounts for
    one model of the ``--dpsgd`` bank's ε = 8 recipe on ``n`` rows: the noise search for
    ε = 8, then its PRV ε after each epoch; the σ and last ε found, to compare bit for bit
    between two versions of skmia (only functions both have are called)."""
    import warnings

    from skmia.defenses import _dp_accounting, _dp_prv

    warnings.simplefilter("ignore")
    print(f"load average (1/5/15 min) {_load()}; skmia from {_dp_prv.__file__}")
    print("| rows | σ | ε after the last epoch | noise search (s) | per-epoch ε (s) | "
          "total wall (s) | total CPU (s) |")
    print("|---:|---:|---:|---:|---:|---:|---:|")
    for n in rows:
        for module in (_dp_accounting, _dp_prv):  # every memo of the accounting, cold
            for value in vars(module).values():
                getattr(value, "cache_clear", lambda: None)()
        for value in vars(sys.modules.get("skmia.defenses._dp_rdp", _dp_prv)).values():
            getattr(value, "cache_clear", lambda: None)()
        q, per_epoch = min(1.0, batch_size / n), math.ceil(n / batch_size)
        began, cpu = time.perf_counter(), time.process_time()
        sigma = _dp_prv.noise_for_epsilon(target, delta, q, epochs * per_epoch, "prv")
        searched = time.perf_counter()
        eps = [_dp_accounting.privacy_epsilon([(sigma, q, per_epoch * e)], delta, "prv")
               for e in range(1, epochs + 1)]
        end = time.perf_counter()
        print(f"| {n} | {sigma!r} | {eps[-1]!r} | {searched - began:.2f} | "
              f"{end - searched:.2f} | {end - began:.2f} | {time.process_time() - cpu:.2f} |")
    return rows


def _vanilla(row, column):
    """The vanilla batched bank's seconds to compare ``column`` with (CPU to CPU)."""
    return row["vanilla, batched (CPU)" if column.endswith("(CPU)") else "vanilla, batched"]


def print_dpsgd_table(rows):
    """The Markdown table of ``--dpsgd``: seconds, and ratios to vanilla batched."""
    columns = [c for c in rows[0] if c not in ("K", "threads")]
    columns += [c for r in rows for c in r if c not in columns and c not in ("K", "threads")]
    compared = [c for c in columns if not c.startswith("vanilla")]
    print("| K | threads | " + " | ".join(columns) + " | " + " | ".join(
        f"{c} / vanilla, batched{' (CPU)' if c.endswith('(CPU)') else ''}"
        for c in compared) + " |")
    print("|---:|---:|" + "---:|" * (len(columns) + len(compared)))
    for r in rows:
        cells = [_cell(r.get(c)) for c in columns]
        ratios = [_cell(None if r.get(c) is None else r[c] / _vanilla(r, c), "x")
                  for c in compared]
        print(f"| {r['K']} | {r['threads']} | " + " | ".join(cells + ratios) + " |")


def main(argv=None):
    """Run the benchmark and print its table; returns its rows (dicts of seconds)."""
    args = parse_args(argv)
    if args.child is not None:
        return _child(json.loads(args.child))
    if args.tolerance:
        return tolerance(args)
    if args.dp_accounting is not None:
        return dp_accounting(args.dp_accounting or [2003, 1987], args.epochs or 30)
    if args.dpsgd:
        return dpsgd_main(args, argv)
    command = " ".join(["python benchmarks/reference_bank.py",
                        shlex.join(sys.argv[1:] if argv is None else argv)]).strip()
    load_start, began = _load(), time.perf_counter()
    rows, pools = [], []
    for dataset in args.datasets:
        X, y, described = load_pool(dataset, args.rows, args.data_home)
        pools.append(described)
        spec = {"dataset": dataset, "rows": args.rows, "data_home": args.data_home}
        for model in args.models:
            label, hidden, epochs = MODELS[model]
            epochs = args.epochs or epochs
            plain_fits(X[:256], y[:256], hidden, 1, 1)  # warm-up of torch and skmia here
            make_bank(hidden, 2, 1, 1, "auto").fit(X, y)
            make_bank(hidden, 2, 1, 1, False).fit(X, y)
            for threads in args.threads:
                if threads > 1:  # start the workers of (b) untimed
                    start_workers(threads)
                for k in args.ks:
                    row = time_row(X, y, hidden, k, epochs, threads, args, spec)
                    rows.append({"dataset": dataset, "network": label, "K": k,
                                 "threads": threads, "epochs": epochs, **row})
                    print(f"  {dataset} {label} K={k} threads={threads}: " + ", ".join(
                        f"{key} {value:.2f} s" for key, value in row.items()),
                        file=sys.stderr, flush=True)
    import torch

    print(f"{datetime.date.today().isoformat()}, {cpu_name()}, {os.cpu_count()} cores, "
          f"Python {platform.python_version()}, torch {torch.__version__}; load average "
          f"(1/5/15 min) {load_start} at the start, {_load()} at the end; "
          f"{(time.perf_counter() - began) / 60:.1f} minutes")
    for threads in args.threads:
        speeds = gflops_per_second(threads)
        print(f"one 1536x1536 float32 product on {threads} thread(s): " + ", ".join(
            f"{name} {value:.0f} GFLOP/s" for name, value in speeds.items() if value))
    print(f"command: `{command}`")
    print(f"pools: {'; '.join(pools)}. Each model on half its pool, batch {BATCH_SIZE}, SGD "
          f"lr 0.1, momentum 0.9, weight decay 1e-4, epochs: "
          + ", ".join(f"{MODELS[m][0]} {args.epochs or MODELS[m][2]}" for m in args.models)
          + f"; seconds, best of {args.repeats} timing(s).")
    print()
    print_table(rows)
    return rows


def dpsgd_main(args, argv):
    """``--dpsgd``: time the banks, print the machine, the command and the table."""
    command = " ".join(["python benchmarks/reference_bank.py",
                        shlex.join(sys.argv[1:] if argv is None else argv)]).strip()
    load_start, began = _load(), time.perf_counter()
    rows, pool = dpsgd_rows(args)
    import torch

    print(f"{datetime.date.today().isoformat()}, {cpu_name()}, {os.cpu_count()} cores, "
          f"torch {torch.__version__}; load average (1/5/15 min) {load_start} at the start, "
          f"{_load()} at the end; {(time.perf_counter() - began) / 60:.1f} minutes")
    print(f"command: `{command}`; {pool}; seconds, one timing each")
    print()
    print_dpsgd_table(rows)
    return rows


if __name__ == "__main__":
    main()
