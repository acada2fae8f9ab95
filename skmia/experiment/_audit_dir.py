"""The audit directory of ``skmia audit``: defense audits of several methods, resumable.

Every method is audited on the same pool, canaries, test part and masks (the same data,
canaries and seed given to :func:`skmia.audit.audit_defense`), each in its own folder,
which ``audit_defense(..., out=...)`` owns: it locks it, writes each finished round of
models at once (a run stopped by Ctrl-C keeps what it trained and the next call
continues it to the same result; a later call with more models grows it), then the
result and the method's ``complete.json``. This module only turns the command's settings
into those calls: it checks every method's folder first (nothing is written when one is
refused), keeps the shared plan (``audit.json``), the table of every method and the
directory's ``complete.json``, written last.

Every file name of the directory is in :data:`skmia._rundir.AUDIT_FILES` (and the saved
result's in :data:`skmia._rundir.AUDIT_RESULT_FILES`), and every file is read and written
through :class:`skmia._rundir.RunDirectory`: no link is followed, nothing outside the
directory is touched, a file that is not a regular file is never read.
"""

import contextlib
import signal
import time
from dataclasses import asdict

import numpy as np
import pandas as pd

from .. import _registry
from .._rundir import AUDIT_FILES, COMPLETE, RunDirectory, audit_folder

# audit.json is checked as the audit checks its recipe.json
from ..audit._defense_folder import check_same_document

# the audit's table columns and per-method rows, which skmia.audit does not export
from ..audit._result import AUDIT_COLUMNS, method_row, method_rows
from ._checkpoint import RunInterrupted, _Stop, stopping_on_signals
from ._config import AuditConfig

# AUDIT_COLUMNS and the rows of a method (method_row, method_rows) are the audit's
__all__ = ["AUDIT_COLUMNS", "AuditConfig", "audit_directory", "method_row", "method_rows",
           "run_audit"]


def audit_directory(out, dataset, seed, model=None):
    """``<out>/<dataset>[/<model>]/audit/seed<seed>``."""
    return audit_folder(out, dataset, seed, model)


def audit_data(config):
    """The dataset an audit (``skmia audit`` or ``skmia audit-dp``) runs on: the whole
    dataset, or ``config.records`` rows of it drawn with ``config.seed``."""
    from ..datasets import load_dataset

    record = _registry.DATASETS[config.dataset]
    kwargs = ({"random_state": _registry.SYNTHETIC_DATA_SEED} if record.synthetic
              else {"data_home": config.data_home})
    X, y = load_dataset(config.dataset, return_X_y=True, **kwargs)
    if config.records is not None:
        if not 0 < config.records <= len(y):
            raise ValueError(f"--records must be in 1 .. {len(y)} for {config.dataset}, "
                             f"got {config.records}")
        rows = np.sort(np.random.default_rng([config.seed, 7]).choice(
            len(y), config.records, replace=False))
        X, y = X[rows], y[rows]
    return X, y


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


def _audit_calls(config):
    """Per method, its recipe and the arguments of its ``audit_defense`` call (its
    folder aside); also the audit's settings (``settings`` of its result)."""
    from ..audit import make_canaries

    X, y = audit_data(config)
    canaries = make_canaries(X, y, config.canaries, kind=config.canary_kind,
                             n_poisons=config.poisons, random_state=config.seed)
    shared = {"X": X, "y": y, "canaries": canaries, "n_models": config.models,
              "test_size": config.test_size, "random_state": config.seed}
    return {method: (_recipe(config, method), shared) for method in config.methods}


def _plan(config, calls=None):
    """The plan every method of ``config`` is audited with (``calls``: its
    :func:`_audit_calls`); no training."""
    from ..audit._plan import plan_audit  # the plan's settings, which audit_defense records

    _, shared = next(iter((calls or _audit_calls(config)).values()))
    return plan_audit(shared["X"], shared["y"], canaries=shared["canaries"],
                      test_size=shared["test_size"], random_state=shared["random_state"])


def _plan_document(config, calls):
    """``audit.json``: the data and canaries every method is audited on."""
    document = {k: v for k, v in asdict(config).items()
                if k in ("dataset", "model", "canaries", "canary_kind", "poisons", "records",
                         "test_size", "seed")}
    document["plan"] = _plan(config, calls).settings
    return document


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


def _check_directory(folder, calls, shared):
    """Refuse an audit directory of other data, canaries or settings, or holding a round
    that is not its own, before anything is written (complete.json included); whether
    it holds the plan."""
    from ..audit import check_audit_folder

    has_plan = check_same_document(folder, AUDIT_FILES["plan"], shared, "data or canaries")
    for method, (clf, kwargs) in calls.items():
        check_audit_folder(folder.child(method).root, clf, **kwargs)
    return has_plan


def _audit_all(config, calls, folder, shared):
    """Audit every method (each ``audit_defense`` checks its folder again, locked) and
    write the table."""
    from ..audit import audit_defense

    has_plan = check_same_document(folder, AUDIT_FILES["plan"], shared, "data or canaries")
    folder.clear(COMPLETE)
    if not has_plan:
        folder.write_json(AUDIT_FILES["plan"], document=shared)
    rows = []
    n_jobs = -1 if config.scheduler is not None else config.n_jobs
    for method, (clf, kwargs) in calls.items():
        audit = audit_defense(
            clf, **kwargs, n_jobs=n_jobs, verbose=config.verbose,
            # AdvReg's inference network and MemGuard's defender learn non-members from
            # the test part (the classifier never trains on its labels), as the reference
            # code's do from its reference split
            test_as_reference=_registry.METHODS[method].needs_reference,
            out=folder.child(method).root,
            settings={"method": method, "dataset": config.dataset})
        rows.extend(method_rows(method, audit))
    table = pd.DataFrame(rows).reindex(columns=AUDIT_COLUMNS)
    folder.write_bytes(AUDIT_FILES["table_csv"], data=table.to_csv(index=False).encode())
    folder.write_json(AUDIT_FILES["table_json"],
                      document={"rows": table.astype(object).where(table.notna(), None)
                                .to_dict("records")})
    return table


def run_audit(config):
    """Audit every method of ``config`` in its audit directory; the per-method table.

    Returns
    -------
    table : pandas.DataFrame
        One row per method, columns :data:`AUDIT_COLUMNS`; ``table.attrs["folder"]`` is
        the audit directory.
    """
    config.check()
    folder = RunDirectory(audit_directory(config.out, config.dataset, config.seed,
                                          config.model))
    calls = _audit_calls(config)  # every recipe is valid before anything trains
    shared = _plan_document(config, calls)
    _check_directory(folder, calls, shared)  # every check first: a refusal writes nothing
    start = time.perf_counter()
    with folder.lock("audit"), _scheduler(config.scheduler), stopping_on_signals():
        try:
            table = _audit_all(config, calls, folder, shared)
        except RunInterrupted:
            raise
        except (_Stop, KeyboardInterrupt) as stop:
            # a Ctrl-C or SIGTERM (as _Stop: skorch's fit cannot swallow it), or a
            # Ctrl-C a fit swallowed (the round refused its models)
            signum = getattr(stop, "signum", signal.SIGINT)
            name = "SIGTERM" if signum == signal.SIGTERM else "SIGINT"
            raise RunInterrupted(
                f"interrupted ({name}); nothing unfinished was marked complete: the "
                f"finished rounds are kept in {str(folder.root)!r}; run the same command "
                "again to continue", signum) from None
        folder.mark_complete(document={"methods": list(config.methods),
                                       "n_models": config.models,
                                       "seconds": round(time.perf_counter() - start, 1)})
    table.attrs["folder"] = str(folder.root)
    return table
