"""HAMP and SELENA against their authors' Location30 scripts: accuracy and loss AUC.

The setting of the HAMP repository's ``location/train-all.sh`` (``--train_size 1500``):
the Location30 rows are shuffled once (``--seed``), then cut into 1,350 training rows
(the members), 300 validation rows, 1,000 test rows and 1,350 non-members, in that
order. Every model is the paper's MLP (446-1024-512-256-128-30, tanh), one torch thread.

Each row gives the test accuracy and the AUC of a loss attack (score: minus the
cross-entropy of the output on the true label; members against non-members) on the
*released* outputs (``predict_proba``) and, for HAMP, on the *raw* network (the
logits a white-box adversary reads). "final" is the model after the last epoch, as
skmia releases it; "best-val" is the epoch of highest validation accuracy, the
checkpoint the authors' scripts load (``protected_model_best``) and report.

HAMP (the registry's Location30 preset: γ = 0.5, α = 0.001, SGD lr 0.5, momentum
0.99, weight decay 1e-5, batch 64, 100 epochs, ×0.1 at 60 and 90) with
``paper_loop`` False and True.

SELENA (the registry's Location30 preset: K = 25, L = 10, distillation lr 1.0 in the
paper loop) with its sub-models trained

``skmia``
    the class default: vanilla's optimiser (SGD lr 0.1, momentum 0.9, weight decay
    1e-4), the distillation's 100 epochs and schedule;
``authors``
    as ``location/train-selena.py`` trains its teachers: plain SGD lr 0.5 (no momentum,
    no weight decay), 50 epochs, batch 64, no schedule, each sub-model at its last
    epoch (``authors``) or at its best validation epoch (``authors-best``, what the
    script loads).

    python benchmarks/paper_fidelity.py --part hamp
    python benchmarks/paper_fidelity.py --part selena
    python benchmarks/paper_fidelity.py --part submodels

``submodels`` trains two sub-models of each recipe alone (each on a random 60 % of the
members, as Split-AI's): minutes, where the whole SELENA of ``selena`` trains 50
networks and three distillations.

The authors' numbers (issue 30, their code on the same sizes): HAMP test accuracy
0.539, loss AUC 0.710 released and 0.844 raw; SELENA test accuracy 0.577, loss AUC
0.623.
"""

import argparse
import copy
import datetime
import os
import platform
import shlex
import sys
import time
import warnings

import numpy as np

SIZES = {"train": 1350, "validation": 300, "test": 1000, "nonmembers": 1350}
#: the authors' numbers on these sizes (issue 30)
AUTHORS = {"hamp": {"test": 0.539, "released": 0.710, "raw": 0.844},
           "selena": {"test": 0.577, "released": 0.623}}


def load(seed):
    """The four parts of Location30, in the authors' order, after one shuffle."""
    from skmia.datasets import load_dataset

    X, y = load_dataset("location", return_X_y=True)
    X = np.asarray(X, dtype=np.float32)
    order = np.random.default_rng(seed).permutation(len(X))
    parts, start = {}, 0
    for name, size in SIZES.items():
        rows = order[start:start + size]
        parts[name] = (X[rows], np.asarray(y)[rows])
        start += size
    return parts


def _best_validation_callback(X_val, y_val):
    from skorch.callbacks import Callback

    class BestValidation(Callback):
        """Keeps a copy of the module at the epoch of highest validation accuracy (the
        first such epoch, as the authors' ``val_acc > best``)."""

        def __init__(self, X, y):
            self.X, self.y = X, y

        def on_train_begin(self, net, **kwargs):
            self.best_accuracy_, self.best_epoch_, self.best_state_ = -1.0, None, None

        def on_epoch_end(self, net, **kwargs):
            accuracy = float(np.mean(net.predict(self.X) == self.y))
            if accuracy > self.best_accuracy_:
                self.best_accuracy_ = accuracy
                self.best_epoch_ = len(net.history)
                self.best_state_ = copy.deepcopy(net.module_.state_dict())

    return BestValidation(X_val, y_val)


def _loss_auc(members, nonmembers):
    """AUC of minus the loss; each argument ``(probabilities, encoded labels)``."""
    from skmia.metrics import attack_auc

    (p_in, y_in), (p_out, y_out) = members, nonmembers
    loss = np.r_[-np.log(np.clip(p_in[np.arange(len(y_in)), y_in], 1e-30, None)),
                 -np.log(np.clip(p_out[np.arange(len(y_out)), y_out], 1e-30, None))]
    membership = np.r_[np.ones(len(y_in)), np.zeros(len(y_out))]
    return attack_auc(membership, -loss)


def _encoded(clf, y):
    return clf.label_encoder_.transform(y)


def evaluate(clf, parts, raw=False):
    """Test accuracy and the loss attack's AUC on the released (and raw) outputs."""
    import torch

    (X_in, y_in), (X_out, y_out) = parts["train"], parts["nonmembers"]
    X_test, y_test = parts["test"]
    row = {"test": float(np.mean(clf.predict(X_test) == y_test))}
    released = [(clf.predict_proba(X), _encoded(clf, y)) for X, y in ((X_in, y_in),
                                                                      (X_out, y_out))]
    row["released"] = _loss_auc(*released)
    if raw:
        with torch.no_grad():
            outputs = [(torch.softmax(clf.raw_module_(torch.as_tensor(X)), 1).numpy()
                        .astype(np.float64), _encoded(clf, y))
                       for X, y in ((X_in, y_in), (X_out, y_out))]
        row["raw"] = _loss_auc(*outputs)
    return row


def _fit_quietly(clf, X, y):
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        return clf.fit(X, y)


def _final_and_best(clf, parts, callback, raw=False):
    """The rows of the model after its last epoch and at its best validation epoch."""
    final = evaluate(clf, parts, raw=raw)
    final_state = copy.deepcopy(clf.module_.state_dict())
    clf.module_.load_state_dict(callback.best_state_)
    best = {**evaluate(clf, parts, raw=raw), "epoch": callback.best_epoch_}
    clf.module_.load_state_dict(final_state)
    return final, best


def hamp_rows(parts, seed):
    from skmia._registry import LOCATION_HAMP
    from skmia.defenses import HAMPClassifier

    rows = []
    for paper_loop in (False, True):
        best = _best_validation_callback(*parts["validation"])
        params = {**LOCATION_HAMP, "paper_loop": paper_loop}
        start = time.perf_counter()
        clf = _fit_quietly(HAMPClassifier(**params, callbacks=[("best", best)],
                                          random_state=seed), *parts["train"])
        seconds = time.perf_counter() - start
        final, at_best = _final_and_best(clf, parts, best, raw=True)
        name = f"hamp, paper_loop={paper_loop}"
        rows += [{"model": name, "checkpoint": "final", **final, "seconds": seconds},
                 {"model": name, "checkpoint": "best-val", **at_best, "seconds": seconds}]
    return rows


def _authors_submodel(parts, seed):
    from skmia.defenses import VanillaClassifier

    return VanillaClassifier(lr=0.5, optimizer__momentum=0.0, optimizer__weight_decay=0.0,
                             max_epochs=50, batch_size=64, milestones=(), random_state=seed,
                             callbacks=[("best", _best_validation_callback(
                                 *parts["validation"]))])


def _submodel_accuracy(models, parts):
    X_test, y_test = parts["test"]
    return float(np.mean([np.mean(m.predict(X_test) == y_test) for m in models]))


def _distil_from(selena, submodels, parts, seed):
    """A SELENA distilled from the given fitted sub-models (same masks)."""
    from skmia.defenses import SELENAClassifier
    from skmia.defenses._base import MIADefenseClassifier
    from skmia.defenses._selena import _row_ids

    class _GivenSubmodels(SELENAClassifier):
        def _setup(self, X, y, classes=None):
            X, y = MIADefenseClassifier._setup(self, X, y, classes=classes)
            self.submodels_, self.in_mask_ = submodels, selena.in_mask_
            self.train_row_ids_, self._soft_targets = _row_ids(X), None
            return X, y

    best = _best_validation_callback(*parts["validation"])
    params = {k: v for k, v in selena.get_params(deep=False).items() if k != "callbacks"}
    clf = _GivenSubmodels(**params, callbacks=[("best", best)])
    return _fit_quietly(clf, *parts["train"]), best


def selena_rows(parts, seed):
    from skmia._registry import LOCATION_SELENA
    from skmia.defenses import SELENAClassifier

    rows = []
    for recipe in ("skmia", "authors"):
        best = _best_validation_callback(*parts["validation"])
        estimator = _authors_submodel(parts, seed) if recipe == "authors" else None
        start = time.perf_counter()
        clf = _fit_quietly(SELENAClassifier(**LOCATION_SELENA, estimator=estimator, n_jobs=1,
                                            callbacks=[("best", best)], random_state=seed),
                           *parts["train"])
        seconds = time.perf_counter() - start
        final, at_best = _final_and_best(clf, parts, best)
        sub = _submodel_accuracy(clf.submodels_, parts)
        for checkpoint, row in (("final", final), ("best-val", at_best)):
            rows.append({"model": f"selena, sub-models {recipe}", "checkpoint": checkpoint,
                         **row, "submodels": sub, "seconds": seconds})
        if recipe != "authors":
            continue
        # the authors' teachers: each sub-model at its best validation epoch
        best_models = []
        for model in clf.submodels_:
            model = copy.deepcopy(model)
            callback = dict(model.callbacks)["best"]
            model.module_.load_state_dict(callback.best_state_)
            best_models.append(model)
        start = time.perf_counter()
        distilled, best = _distil_from(clf, best_models, parts, seed)
        seconds = time.perf_counter() - start
        final, at_best = _final_and_best(distilled, parts, best)
        sub = _submodel_accuracy(best_models, parts)
        for checkpoint, row in (("final", final), ("best-val", at_best)):
            rows.append({"model": "selena, sub-models authors-best", "checkpoint": checkpoint,
                         **row, "submodels": sub, "seconds": seconds})
    return rows


def submodel_rows(parts, seed, n_submodels=2):
    """SELENA's sub-models alone: ``n_submodels`` of each recipe, each on a random
    (K - L) / K = 60 % of the members, as Split-AI's; their test accuracy at the last
    and at the best validation epoch (SELENA's released network can be no more accurate
    than them on unseen rows)."""
    from skmia.defenses import VanillaClassifier

    rows = []
    X, y = parts["train"]
    for k in range(n_submodels):
        keep = np.random.default_rng([seed, k]).permutation(len(X))[:len(X) * 15 // 25]
        for recipe in ("skmia", "authors"):
            if recipe == "authors":
                model = _authors_submodel(parts, seed + k)
            else:
                from skmia._registry import SOFT_LABEL_SCHEDULE

                # SELENA's default sub-model: vanilla's optimiser, the class's epochs,
                # batch and schedule
                model = VanillaClassifier(
                    max_epochs=SOFT_LABEL_SCHEDULE["max_epochs"],
                    batch_size=SOFT_LABEL_SCHEDULE["batch_size"],
                    milestones=SOFT_LABEL_SCHEDULE["milestones"], random_state=seed + k,
                    callbacks=[("best", _best_validation_callback(*parts["validation"]))])
            start = time.perf_counter()
            model = _fit_quietly(model, X[keep], y[keep])
            seconds = time.perf_counter() - start
            final, at_best = _final_and_best(model, parts, dict(model.callbacks)["best"])
            for checkpoint, row in (("final", final), ("best-val", at_best)):
                rows.append({"model": f"sub-model {k}, {recipe} ({len(keep)} rows)",
                             "checkpoint": checkpoint, **row, "seconds": seconds})
    return rows


def markdown(rows, part):
    lines = ["| model | checkpoint | test acc | loss AUC released | loss AUC raw | "
             "sub-model test acc | s |", "|---|---|---:|---:|---:|---:|---:|"]
    for row in rows:
        epoch = f" (epoch {row['epoch']})" if "epoch" in row else ""
        raw = f"{row['raw']:.3f}" if "raw" in row else ""
        sub = f"{row['submodels']:.3f}" if "submodels" in row else ""
        lines.append(f"| {row['model']} | {row['checkpoint']}{epoch} | {row['test']:.3f} | "
                     f"{row['released']:.3f} | {raw} | {sub} | {row['seconds']:.0f} |")
    numbers = AUTHORS["selena" if part == "submodels" else part]
    lines.append(f"| {part}, the authors' code (issue 30) | best-val | "
                 f"{numbers['test']:.3f} | {numbers['released']:.3f} | "
                 f"{numbers.get('raw', '')} | | |")
    return "\n".join(lines)


def main(argv=None):
    import torch

    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--part", choices=("hamp", "selena", "submodels"), required=True)
    parser.add_argument("--seed", type=int, default=0,
                        help="the shuffle of the rows and every model's random_state")
    args = parser.parse_args(argv)
    torch.set_num_threads(1)
    start = time.perf_counter()
    parts = load(args.seed)
    rows = {"hamp": hamp_rows, "selena": selena_rows,
            "submodels": submodel_rows}[args.part](parts, args.seed)
    given = sys.argv[1:] if argv is None else argv
    print(f"python benchmarks/paper_fidelity.py {shlex.join(given)}")
    print(f"{datetime.datetime.now(datetime.timezone.utc):%Y-%m-%d %H:%M} UTC, "
          f"{platform.machine()}, {os.cpu_count()} CPUs, load {os.getloadavg()[0]:.1f}, "
          f"wall {time.perf_counter() - start:.0f} s\n")
    print(markdown(rows, args.part))
    return 0


if __name__ == "__main__":
    sys.exit(main())
