"""The audit directory of ``skmia audit``: defense audits of several methods, resumable.

Every method is audited on the same pool, canaries, test part and masks (one
:class:`~skmia.audit._plan.AuditPlan` from the seed). The directory is locked while
one process works in it; each finished round of models is written at once, so a run
stopped by Ctrl-C keeps what it trained and the next call continues it to the same
result; a later call with more models grows it. ``complete.json`` is written last.

Every file name of the directory is in :data:`skmia._rundir.AUDIT_FILES` (and the saved
result's in :data:`skmia._rundir.AUDIT_RESULT_FILES`), and every file is read and written
through :class:`skmia._rundir.RunDirectory`: no link is followed, nothing outside the
directory is touched, a file that is not a regular file is never read.
"""

import contextlib
import os
import time
from dataclasses import asdict, dataclass, field
from pathlib import Path

import numpy as np
import pandas as pd

from .. import _registry
from .._rundir import AUDIT_FILES, COMPLETE, RunDirectory, audit_round_file
from ..audit._result import OPTIONAL_ARRAYS

__all__ = ["AUDIT_COLUMNS", "AuditConfig", "audit_directory", "run_audit"]

#: Columns of the per-method table, in order.
AUDIT_COLUMNS = [
    "method", "threat_model", "n_models", "attack", "test_accuracy", "test_accuracy_std",
    "canary_tpr_at_0.1%fpr", "canary_tpr_at_0.1%fpr_low", "canary_tpr_at_0.1%fpr_high",
    "canary_tpr_at_1%fpr", "canary_tpr_at_1%fpr_low", "canary_tpr_at_1%fpr_high",
    "population_tpr_at_0.1%fpr", "population_tpr_at_1%fpr", "canary_auc", "population_auc",
    "empirical_epsilon", "epsilon", "note",
]
_ROUND_ARRAYS = ("phi", "in_mask", "test_accuracy", "train_accuracy", "epsilon")


@dataclass
class AuditConfig:
    """Everything that defines ``skmia audit``: the data, the canaries, the recipes."""

    dataset: str
    methods: tuple
    models: int = 64
    canaries: int = 500
    canary_kind: str = "mislabel"
    poisons: int = 0
    records: int | None = None
    test_size: float = 0.2
    seed: int = 1000
    epochs: int | None = None
    hidden: tuple | None = None
    overrides: dict = field(default_factory=dict)
    model: str | None = None
    out: str = "results"
    data_home: str | None = None
    device: str = "cpu"
    jobs: int = 1
    scheduler: str | None = None
    quiet: bool = False


def audit_directory(out, dataset, seed, model=None):
    """``<out>/<dataset>[/<model>]/audit/seed<seed>``."""
    return Path(out).joinpath(dataset, *([model] if model else []), "audit", f"seed{seed}")


def _plan(config):
    from ..audit import make_canaries
    from ..audit._plan import plan_audit
    from ..datasets import load_dataset

    record = _registry.DATASETS[config.dataset]
    kwargs = ({"random_state": _registry.SYNTHETIC_DATA_SEED} if record.synthetic
              else {"data_home": config.data_home})
    X, y = load_dataset(config.dataset, return_X_y=True, **kwargs)
    if config.records is not None:
        if not 0 < config.records <= len(y):
            raise ValueError(f"--records must be in 1 .. {len(y)} for {config.dataset}, "
                             f"got {config.records}")
        rows = np.random.default_rng([config.seed, 7]).choice(len(y), config.records,
                                                              replace=False)
        X, y = X[np.sort(rows)], y[np.sort(rows)]
    canaries = make_canaries(X, y, config.canaries, kind=config.canary_kind,
                             n_poisons=config.poisons, random_state=config.seed)
    return plan_audit(X, y, canaries=canaries, test_size=config.test_size,
                      random_state=config.seed)


def _recipe(config, method):
    from ._config import RunConfig
    from ._config import estimator as _estimator

    run_config = RunConfig(dataset=config.dataset, method=method, seed=config.seed,
                           model=config.model, epochs=config.epochs,
                           overrides=dict(config.overrides), device=config.device)
    clf = _estimator(run_config, method)
    if "secure_noise" in clf.get_params(deep=False):  # an audit replays its own models
        clf.set_params(secure_noise=False)
    if config.hidden is not None:
        clf.set_params(module__hidden_sizes=tuple(config.hidden))
    return clf


def _recipe_document(clf):
    """What defines a method's models (its seed aside: every round draws its own)."""
    from ._config import settings

    return {"class": type(clf).__name__,
            "params": {k: v for k, v in settings(clf).items() if k != "random_state"}}


def _check_same(folder, name, document, what):
    """Write ``document`` as ``name``, or refuse a folder whose ``name`` differs from it."""
    if folder.is_file(name):
        saved = folder.read_json(name, spec=dict)
        changed = sorted(k for k in set(saved) | set(document)
                         if saved.get(k) != document.get(k))
        if changed:
            raise ValueError(
                f"{folder.root} holds an audit made with other {what} (differing: "
                f"{', '.join(map(str, changed))}); use another --out or --seed, or remove it."
            )
    else:
        folder.write_json(name, document=document)


def _save_round(folder, r, result):
    from safetensors.numpy import save

    arrays = {k: np.ascontiguousarray(result[k]) for k in (*_ROUND_ARRAYS, *OPTIONAL_ARRAYS)
              if k in result}
    arrays["in_mask"] = arrays["in_mask"].astype(np.uint8)
    folder.write_bytes(AUDIT_FILES["rounds"], audit_round_file(r), data=save(arrays))


def _load_round(folder, r):
    from safetensors import SafetensorError
    from safetensors.numpy import load

    name = (AUDIT_FILES["rounds"], audit_round_file(r))
    try:
        arrays = load(folder.read_bytes(*name))
    except SafetensorError as exc:
        raise ValueError(f"{str(folder.path(*name))!r} is not a round of this audit ({exc}); "
                         "delete it and run the same command again") from exc
    missing = sorted(set(_ROUND_ARRAYS) - set(arrays))
    if missing:
        raise ValueError(f"{str(folder.path(*name))!r} lacks the arrays {missing}; delete it "
                         "and run the same command again")
    arrays["in_mask"] = arrays["in_mask"].astype(bool)
    return arrays


def _rounds_per_chunk(config):
    if config.scheduler is not None:
        from distributed import get_client

        return max(1, sum(get_client().nthreads().values()))
    return (os.cpu_count() or 1) if config.jobs == -1 else max(1, config.jobs)


def _audit_method(config, plan, folder, method, n_rounds):
    """Train the missing rounds of ``method`` (saving each chunk), then its result."""
    from ..audit._defense import _check_estimator, assemble, train_rounds

    clf = _recipe(config, method)
    _check_estimator(clf, plan)
    folder.makedirs(AUDIT_FILES["rounds"])
    _check_same(folder, AUDIT_FILES["recipe"], _recipe_document(clf), "method settings")
    missing = [r for r in range(n_rounds)
               if not folder.is_file(AUDIT_FILES["rounds"], audit_round_file(r))]
    if missing:
        folder.clear(COMPLETE)
    chunk = _rounds_per_chunk(config)
    n_jobs = -1 if config.scheduler is not None else config.jobs
    # AdvReg's inference network and MemGuard's defender learn non-members from the test
    # part (the classifier never trains on its labels), as the reference code's do from
    # its reference split
    fit_params = ({"X_reference": plan.X_test, "y_reference": plan.y_test}
                  if _registry.METHODS[method].needs_reference else {})
    for start in range(0, len(missing), chunk):
        todo = missing[start:start + chunk]
        for r, result in zip(todo, train_rounds(clf, plan, todo, fit_params=fit_params,
                                                n_jobs=n_jobs,
                                                verbose=int(not config.quiet)),
                             strict=True):
            _save_round(folder, r, result)
    audit = assemble(plan, [_load_round(folder, r) for r in range(n_rounds)],
                     {"estimator": type(clf).__name__, "method": method,
                      "dataset": config.dataset})
    audit.save(folder.child(AUDIT_FILES["result"]))
    folder.mark_complete(document={"n_models": audit.n_models})
    return audit


def method_rows(method, audit):
    """Rows of :data:`AUDIT_COLUMNS` from a method's :class:`DefenseAudit`: one per
    threat model it was audited under."""
    return [method_row(method, audit, threat) for threat in audit.threat_models_]


def method_row(method, audit, threat_model=None):
    """One row of :data:`AUDIT_COLUMNS` from a method's :class:`DefenseAudit`, under
    ``threat_model`` (default: the one the defense claims to stop)."""
    threat_model = threat_model or audit.primary_threat_model
    canary = audit.summary_row("canaries", threat_model)
    others = audit.summary_row("others", threat_model)
    row = {"method": method, "threat_model": threat_model, "n_models": audit.n_models,
           "attack": audit.strongest(threat_model),
           "test_accuracy": canary.get("test_accuracy", others.get("test_accuracy")),
           "test_accuracy_std": others.get("test_accuracy_std"),
           "population_tpr_at_0.1%fpr": others.get("tpr_at_0.1%fpr"),
           "population_tpr_at_1%fpr": others.get("tpr_at_1%fpr"),
           "canary_auc": canary.get("auc"), "population_auc": others.get("auc"),
           "empirical_epsilon": canary.get("empirical_epsilon"),
           "epsilon": others.get("epsilon"),
           "note": "; ".join(n for n in (canary.get("note"), others.get("note"))
                             if isinstance(n, str) and n)}
    for name in ("0.1%", "1%"):
        for end in ("", "_low", "_high"):
            row[f"canary_tpr_at_{name}fpr{end}"] = canary.get(f"tpr_at_{name}fpr{end}")
    return row


def _scheduler(address):
    """Within the block, joblib sends work to the Dask scheduler at ``address``."""
    if address is None:
        return contextlib.nullcontext()
    import joblib
    from distributed import Client

    stack = contextlib.ExitStack()
    stack.enter_context(Client(address))
    stack.enter_context(joblib.parallel_config(backend="dask"))
    return stack


def run_audit(config):
    """Audit every method of ``config`` in its audit directory; the per-method table.

    Returns
    -------
    table : pandas.DataFrame
        One row per method, columns :data:`AUDIT_COLUMNS`; ``table.attrs["folder"]`` is
        the audit directory.
    """
    from ..audit._plan import _check_n_models

    folder = RunDirectory(audit_directory(config.out, config.dataset, config.seed,
                                          config.model))
    plan = _plan(config)
    _check_n_models(config.models, plan.block)
    plan.check_rounds(plan.n_rounds(config.models))
    for method in config.methods:  # every recipe is valid before anything trains
        _recipe(config, method)
    shared = {k: v for k, v in asdict(config).items()
              if k in ("dataset", "model", "canaries", "canary_kind", "poisons", "records",
                       "test_size", "seed")}
    shared["plan"] = plan.settings
    start = time.perf_counter()
    with folder.lock("audit"), _scheduler(config.scheduler):
        folder.clear(COMPLETE)
        _check_same(folder, AUDIT_FILES["plan"], shared, "data or canaries")
        rows = []
        for method in config.methods:
            audit = _audit_method(config, plan, folder.child(method), method,
                                  plan.n_rounds(config.models))
            rows.extend(method_rows(method, audit))
        table = pd.DataFrame(rows).reindex(columns=AUDIT_COLUMNS)
        folder.write_bytes(AUDIT_FILES["table_csv"], data=table.to_csv(index=False).encode())
        folder.write_json(AUDIT_FILES["table_json"],
                          document={"rows": table.astype(object).where(table.notna(), None)
                                    .to_dict("records")})
        folder.mark_complete(document={"methods": list(config.methods),
                                       "n_models": config.models,
                                       "seconds": round(time.perf_counter() - start, 1)})
    table.attrs["folder"] = str(folder.root)
    return table
