"""Choose RelaxLoss's ``alpha`` and ``upper`` for Location30 without the audited rows.

Location30 is not in the RelaxLoss paper, so its settings are chosen the way a careful
user would (issue 14): the ``reference`` part of the seed-1000 split (1,002 rows) is cut,
seeded, into "validation members" (the training set of every candidate) and "validation
non-members". Each candidate of the grid trains on the validation members with the
paper's 120-epoch schedule (``run_defaults("relaxloss", "location")``, ``alpha`` and
``upper`` replaced), and is scored by

* privacy: the best AUC of the threshold attacks (loss, confidence, modified entropy),
  each fitted on that model's own signals of validation members vs non-members;
* utility: its accuracy on the validation non-members.

Vanilla trains on the same rows. The chosen candidate is the one with the lowest best
AUC among those whose validation accuracy is at least vanilla's minus ``--budget``.
``target_train`` and ``target_test`` (the rows ``skmia run`` audits) are never touched.

Usage::

    SKMIA_DATA_HOME=../shared/data .venv/bin/python benchmarks/location_relaxloss_grid.py \\
        --jobs 2

prints a markdown table (and writes it to ``--out`` when given).
"""

import argparse
import datetime
import os
import shlex
import sys
import time

import numpy as np


def _fit_and_score(method, params, members, nonmembers):
    """Train one candidate on ``members``; its validation accuracy and attack AUCs."""
    from skmia.attacks import (
        ConfidenceAttack,
        LossAttack,
        ModifiedEntropyAttack,
        membership_signals,
    )
    from skmia.experiment import method_classes
    from skmia.metrics import attack_auc

    clf = method_classes()[method](**params)
    clf.fit(*members)
    signals, membership = membership_signals(clf, members, nonmembers)
    aucs = {}
    for name, attack in (("loss", LossAttack()), ("confidence", ConfidenceAttack()),
                         ("modified_entropy", ModifiedEntropyAttack())):
        aucs[name] = attack_auc(membership, attack.fit(signals, membership)
                                .decision_function(signals))
    X_out, y_out = nonmembers
    accuracy = float(np.mean(clf.predict(X_out) == np.asarray(y_out)))
    return {"accuracy": accuracy, "aucs": aucs, "best_auc": max(aucs.values())}


def validation_halves(split, seed):
    """Seeded halves of ``split.reference``: (members, non-members) as (X, y) pairs."""
    X, y = split.reference
    order = np.random.default_rng(seed).permutation(len(y))
    half = (len(y) + 1) // 2
    take = [order[:half], order[half:]]
    return [(X[i], y[i]) for i in take]


def choose(rows, vanilla_accuracy, budget):
    """Index of the lowest best-AUC row whose accuracy is within ``budget`` of vanilla's."""
    eligible = [i for i, r in enumerate(rows) if r["accuracy"] >= vanilla_accuracy - budget]
    if not eligible:
        return None
    return min(eligible, key=lambda i: (rows[i]["best_auc"], -rows[i]["accuracy"]))


def table(vanilla, rows, chosen, budget):
    lines = [
        "| method | alpha | upper | val accuracy | best AUC | loss AUC | conf. AUC "
        "| m-entropy AUC | chosen |",
        "|---|---|---|---|---|---|---|---|---|",
    ]

    def line(method, alpha, upper, r, mark):
        a = r["aucs"]
        return (f"| {method} | {alpha} | {upper} | {r['accuracy']:.3f} | {r['best_auc']:.3f} "
                f"| {a['loss']:.3f} | {a['confidence']:.3f} | {a['modified_entropy']:.3f} "
                f"| {mark} |")

    lines.append(line("vanilla", "-", "-", vanilla, ""))
    for i, r in enumerate(rows):
        eligible = r["accuracy"] >= vanilla["accuracy"] - budget
        mark = "**chosen**" if i == chosen else ("" if eligible else "over budget")
        lines.append(line("relaxloss", r["alpha"], r["upper"], r, mark))
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--data-home", default=os.environ.get("SKMIA_DATA_HOME"))
    parser.add_argument("--seed", type=int, default=1000,
                        help="seed of the membership split (default: 1000)")
    parser.add_argument("--validation-seed", type=int, default=0,
                        help="seed of the validation halves and of training (default: 0)")
    parser.add_argument("--alpha", type=float, nargs="+", default=[0.5, 1.0, 2.0, 3.0])
    parser.add_argument("--upper", type=float, nargs="+", default=[0.3, 0.6, 0.9])
    parser.add_argument("--budget", type=float, default=0.03,
                        help="accuracy a candidate may lose against vanilla (default: 0.03)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="override the paper's 120 epochs (for smoke tests)")
    parser.add_argument("--jobs", type=int, default=1,
                        help="trainings at once, one torch thread each (default: 1)")
    parser.add_argument("--out", default=None, help="also write the table to this file")
    args = parser.parse_args(argv)

    from skmia._parallel import parallel_map
    from skmia.experiment import run_defaults
    from skmia.model_selection._split import load_split

    start = time.perf_counter()
    split = load_split("location", args.seed, args.data_home)
    members, nonmembers = validation_halves(split, args.validation_seed)

    def params(method, **extra):
        p = run_defaults(method, "location")
        p.update(extra, random_state=args.validation_seed, device="cpu")
        if args.epochs is not None:
            p["max_epochs"] = args.epochs
        return p

    grid = [(a, u) for a in args.alpha for u in args.upper]
    tasks = [("vanilla", params("vanilla"), members, nonmembers)]
    tasks += [("relaxloss", params("relaxloss", alpha=a, upper=u), members, nonmembers)
              for a, u in grid]
    results = parallel_map(_fit_and_score, tasks, n_jobs=args.jobs)
    vanilla, rows = results[0], results[1:]
    for (a, u), r in zip(grid, rows, strict=True):
        r.update(alpha=a, upper=u)
    chosen = choose(rows, vanilla["accuracy"], args.budget)
    elapsed = time.perf_counter() - start

    command = " ".join(shlex.quote(a) for a in ["benchmarks/location_relaxloss_grid.py",
                                                  *(sys.argv[1:] if argv is None else argv)])
    epochs = args.epochs if args.epochs is not None else run_defaults("vanilla",
                                                                        "location")["max_epochs"]
    header = [
        f"Date: {datetime.date.today().isoformat()}; command: `{command}`; "
        f"time: {elapsed / 60:.1f} min ({args.jobs} job(s)).",
        "",
        f"Location30, split seed {args.seed}: {len(members[1])} validation members and "
        f"{len(nonmembers[1])} validation non-members cut from `reference` (validation seed "
        f"{args.validation_seed}); {epochs} epochs; budget: accuracy >= vanilla's "
        f"{vanilla['accuracy']:.3f} - {args.budget} = {vanilla['accuracy'] - args.budget:.3f}.",
        "",
    ]
    text = "\n".join(header) + table(vanilla, rows, chosen, args.budget) + "\n"
    if chosen is None:
        text += "\nNo candidate is within the budget.\n"
    else:
        c = rows[chosen]
        text += (f"\nChosen: alpha={c['alpha']}, upper={c['upper']} (best AUC "
                 f"{c['best_auc']:.3f} vs vanilla's {vanilla['best_auc']:.3f}).\n")
    print(text)
    if args.out:
        with open(args.out, "w") as f:
            f.write(text)
    return {"vanilla": vanilla, "rows": rows, "chosen": chosen, "text": text}


if __name__ == "__main__":
    main()
