"""Does each defense's default train a useful model? Test accuracy against vanilla's.

For each dataset, recipe and method of the registry, fits the method's classifier with its
class defaults (nothing from the per-dataset presets) on the target members of
``membership_split(random_state=1000)`` and prints its test accuracy on the target
non-members beside vanilla's at the same recipe, and the difference in points. A row is
flagged when the defense is more than 10 points below vanilla.

Recipes:

``small``
    ``max_epochs=30, milestones=(), module__hidden_sizes=(256,)``: a quick first fit.
``full``
    the class defaults as they are (the paper's MLP, 120 epochs; HAMP and SELENA 100).

Datasets: Location30 (real; ``SKMIA_DATA_HOME``) and purchase-like (SYNTHETIC,
``make_purchase_like(n_samples=5000, random_state=0)``, about the size of Location30).
AdvReg and MemGuard take the split's ``reference`` part as their reference set.
``--members N`` keeps the first N target members (and N non-members), for quick checks.

    python benchmarks/defense_defaults.py --recipes small --jobs 2
    python benchmarks/defense_defaults.py --recipes full --methods vanilla hamp --jobs 2
"""

import argparse
import datetime
import os
import platform
import shlex
import sys
import time
import warnings

from joblib import Parallel, delayed

from skmia import _registry

RECIPES = {
    "small": {"max_epochs": 30, "milestones": (), "module__hidden_sizes": (256,)},
    "full": {},
}
DATASETS = ("location", "purchase-like")
#: how far below vanilla (in points of test accuracy) a default may land
TOLERANCE = 10.0


def load(dataset, members=None):
    """``(X_train, y_train), (X_test, y_test), (X_reference, y_reference)``."""
    from skmia.datasets import load_dataset, make_purchase_like
    from skmia.model_selection import membership_split

    if dataset == "purchase-like":
        X, y = make_purchase_like(n_samples=5000, random_state=0, return_X_y=True)
    else:
        X, y = load_dataset(dataset, return_X_y=True)
    split = membership_split(X, y, random_state=1000)
    parts = split.target_train, split.target_test, split.reference
    n = members or len(split.target_train)
    return tuple((part.X[:n], part.y[:n]) for part in parts)


def fit_one(method, recipe, data, random_state=0):
    """Test and train accuracy of ``method``'s defaults under ``recipe``, the seconds the
    fit took and the warnings it gave (their categories' names)."""
    import numpy as np
    import torch

    from skmia.experiment import method_classes

    torch.set_num_threads(1)
    (X, y), (X_test, y_test), (X_ref, y_ref) = data
    cls = method_classes()[method]
    # every class of the data: a small cut of the members may miss one
    classes = np.unique(np.concatenate([y, y_test, y_ref]))
    params = {**RECIPES[recipe], "random_state": random_state, "classes": classes}
    if method == "selena":
        params["n_jobs"] = 1
    fit_params = {}
    if _registry.METHODS[method].needs_reference:
        fit_params = {"X_reference": X_ref, "y_reference": y_ref}
    start = time.perf_counter()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        clf = cls(**params).fit(X, y, **fit_params)
    seconds = time.perf_counter() - start
    names = sorted({w.category.__name__ for w in caught})
    return {"test": float(np.mean(clf.predict(X_test) == y_test)),
            "train": float(np.mean(clf.predict(X) == y)), "seconds": seconds,
            "warnings": names}


def methods_of_registry():
    """Every method with a classifier, each once (``dpsgd_hu`` is DP-SGD's class)."""
    from skmia.experiment import method_classes

    return [m for m in method_classes() if m != "dpsgd_hu"]


def measure(datasets, recipes, methods, *, members=None, jobs=1, random_state=0):
    """One row per (dataset, recipe, method): its accuracies and vanilla's."""
    methods = ["vanilla", *(m for m in methods if m != "vanilla")]
    tasks = [(d, r, m) for d in datasets for r in recipes for m in methods]
    data = {d: load(d, members) for d in datasets}
    results = Parallel(n_jobs=jobs)(delayed(fit_one)(m, r, data[d], random_state)
                                    for d, r, m in tasks)
    by_task = dict(zip(tasks, results, strict=True))
    rows = []
    for (d, r, m), result in by_task.items():
        vanilla = by_task[(d, r, "vanilla")]["test"]
        rows.append({"dataset": d, "recipe": r, "method": m, **result, "vanilla": vanilla,
                     "points": 100 * (result["test"] - vanilla)})
    return rows


def markdown(rows):
    lines = ["| dataset | recipe | method | test acc | vanilla | points | train acc | "
             "s | warnings |", "|---|---|---|---:|---:|---:|---:|---:|---|"]
    for row in rows:
        flag = " **below**" if row["points"] < -TOLERANCE else ""
        lines.append(
            f"| {row['dataset']} | {row['recipe']} | {row['method']} | {row['test']:.3f} | "
            f"{row['vanilla']:.3f} | {row['points']:+.1f}{flag} | {row['train']:.3f} | "
            f"{row['seconds']:.0f} | {', '.join(row['warnings']) or '-'} |")
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--datasets", nargs="+", default=list(DATASETS), choices=DATASETS)
    parser.add_argument("--recipes", nargs="+", default=["small"], choices=tuple(RECIPES))
    parser.add_argument("--methods", nargs="+", default=None)
    parser.add_argument("--members", type=int, default=None)
    parser.add_argument("--seed", type=int, default=0, help="random_state of every fit")
    parser.add_argument("--jobs", type=int, default=1)
    args = parser.parse_args(argv)
    start = time.perf_counter()
    rows = measure(args.datasets, args.recipes, args.methods or methods_of_registry(),
                   members=args.members, jobs=args.jobs, random_state=args.seed)
    given = sys.argv[1:] if argv is None else argv
    print(f"python benchmarks/defense_defaults.py {shlex.join(given)}")
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"wall {time.perf_counter() - start:.0f} s\n")
    print(markdown(rows))
    return 0


if __name__ == "__main__":
    sys.exit(main())
