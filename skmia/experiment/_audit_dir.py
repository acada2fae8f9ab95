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
import hashlib
import json
import signal
import time
from dataclasses import asdict
from pathlib import Path

import numpy as np
import pandas as pd

from .. import _registry
from .._rundir import AUDIT_FILES, COMPLETE, RunDirectory, audit_round_file
from ..audit._result import AUDIT_COLUMNS, OPTIONAL_ARRAYS, method_row, method_rows
from ._checkpoint import RunInterrupted, _Stop, stopping_on_signals
from ._config import AuditConfig

# AUDIT_COLUMNS and the rows of a method (method_row, method_rows) are the audit's
__all__ = ["AUDIT_COLUMNS", "AuditConfig", "audit_directory", "method_row", "method_rows",
           "run_audit"]

_ROUND_ARRAYS = ("phi", "in_mask", "test_accuracy", "train_accuracy", "epsilon")


def audit_directory(out, dataset, seed, model=None):
    """``<out>/<dataset>[/<model>]/audit/seed<seed>``."""
    return Path(out).joinpath(dataset, *([model] if model else []), "audit", f"seed{seed}")


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


def _plan(config):
    from ..audit import make_canaries
    from ..audit._plan import plan_audit

    X, y = audit_data(config)
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


def _differing(saved, document, prefix=""):
    """Keys (``a.b`` one level down in objects) whose values differ."""
    changed = []
    for key in sorted(set(saved) | set(document), key=str):
        mine, theirs = saved.get(key), document.get(key)
        if isinstance(mine, dict) and isinstance(theirs, dict):
            changed += _differing(mine, theirs, f"{prefix}{key}.")
        elif mine != theirs:
            changed.append(f"{prefix}{key}")
    return changed


def _check_same(folder, name, document, what):
    """Refuse a folder whose ``name`` differs from ``document`` (nothing is written);
    whether it holds one."""
    if not folder.is_file(name):
        return False
    saved = folder.read_json(name, spec=dict)
    changed = _differing(saved, json.loads(json.dumps(document)))
    if changed:
        raise ValueError(
            f"{str(folder.root)!r} holds an audit made with other {what} (differing: "
            f"{', '.join(changed)}; {str(folder.path(name))!r}); nothing was changed: use "
            "another --out or --seed, or remove it."
        )
    return True


# ----------------------------------------------------------------------------- rounds
# A round file carries, in its safetensors metadata, what it was trained for: the
# audit's plan (pool, canaries, test part, settings, seed: AuditPlan.fingerprint), the
# method's recipe, its round number, and the digest of its arrays. A round is used only
# when all of them match and its IN/OUT masks are those the audit's seed gives.
_ROUND_FORMAT = "skmia audit round 1"


def _sha256_json(document):
    return hashlib.sha256(json.dumps(document, sort_keys=True).encode()).hexdigest()


def _arrays_sha256(arrays):
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class _RoundStamp:
    """What every round of a method must match: the plan, the recipe, the masks."""

    def __init__(self, plan, recipe_document):
        self.plan = plan
        self.plan_sha256 = plan.fingerprint()
        self.recipe_sha256 = _sha256_json(recipe_document)

    def metadata(self, r, arrays):
        return {"format": _ROUND_FORMAT, "round": str(r), "plan_sha256": self.plan_sha256,
                "recipe_sha256": self.recipe_sha256, "arrays_sha256": _arrays_sha256(arrays)}

    def problem(self, r, metadata, arrays):
        """Why a round file with ``metadata`` and ``arrays`` is not round ``r``, or None."""
        if metadata.get("format") != _ROUND_FORMAT:
            return "it is not a round skmia wrote (no round fingerprint)"
        if metadata.get("round") != str(r):
            return f"it is round {metadata.get('round')!r}, not round {r}"
        if metadata.get("plan_sha256") != self.plan_sha256:
            return ("it belongs to another audit (other data, canaries, test part, settings "
                    "or seed)")
        if metadata.get("recipe_sha256") != self.recipe_sha256:
            return "it was trained with other method settings"
        if metadata.get("arrays_sha256") != _arrays_sha256(arrays):
            return "its arrays do not match their digest (modified or copied over)"
        masks = self.plan.round_masks(r)
        shapes = {"in_mask": masks.shape, "test_accuracy": masks.shape[1:],
                  "train_accuracy": masks.shape[1:], "epsilon": masks.shape[1:]}
        wrong = [f"{k} {tuple(arrays[k].shape)}" for k, shape in shapes.items()
                 if tuple(arrays[k].shape) != shape]
        if tuple(arrays["phi"].shape[:2]) != masks.shape or wrong:
            return (f"its arrays have other shapes than this audit's rounds (phi "
                    f"{tuple(arrays['phi'].shape)}{', ' if wrong else ''}{', '.join(wrong)}; "
                    f"expected {masks.shape[0]} records x {masks.shape[1]} models)")
        if not np.array_equal(arrays["in_mask"].astype(bool), masks):
            return "its IN/OUT masks are not those the audit's seed gives"
        return None


def _save_round(folder, r, result, stamp):
    from safetensors.numpy import save

    arrays = {k: np.ascontiguousarray(result[k]) for k in (*_ROUND_ARRAYS, *OPTIONAL_ARRAYS)
              if k in result}
    arrays["in_mask"] = arrays["in_mask"].astype(np.uint8)
    folder.write_bytes(AUDIT_FILES["rounds"], audit_round_file(r),
                       data=save(arrays, metadata=stamp.metadata(r, arrays)))


def _safetensors_metadata(data):
    """The ``__metadata__`` of a safetensors file's header ({} when it has none)."""
    size = int.from_bytes(data[:8], "little") if len(data) >= 8 else -1
    if not 0 < size <= len(data) - 8:
        raise ValueError("its header is truncated")
    try:
        header = json.loads(data[8:8 + size])
        metadata = header.get("__metadata__") or {}
    except (ValueError, AttributeError):
        raise ValueError("its header is not JSON") from None
    return metadata if isinstance(metadata, dict) else {}


def _load_round(folder, r, stamp):
    """Round ``r``'s arrays, refused (naming the file) unless it is this audit's round
    ``r`` of this recipe."""
    from safetensors import SafetensorError
    from safetensors.numpy import load

    name = (AUDIT_FILES["rounds"], audit_round_file(r))
    shown = repr(str(folder.root.joinpath(*name)))
    again = "delete it and run the same command again"
    data = folder.read_bytes(*name)
    try:
        metadata = _safetensors_metadata(data)
        arrays = load(data)
    except (SafetensorError, ValueError) as exc:
        raise ValueError(f"{shown} is not a round of this audit ({exc}); {again}") from None
    missing = sorted(set(_ROUND_ARRAYS) - set(arrays))
    if missing:
        raise ValueError(f"{shown} lacks the arrays {missing}; {again}")
    problem = stamp.problem(r, metadata, arrays)
    if problem is not None:
        raise ValueError(f"{shown} is not round {r} of this audit: {problem}; {again}")
    arrays["in_mask"] = arrays["in_mask"].astype(bool)
    return arrays


def _rounds_per_chunk(config):
    if config.scheduler is not None:
        from distributed import get_client

        return max(1, sum(get_client().nthreads().values()))
    from .._parallel import effective_jobs

    return effective_jobs(config.n_jobs)


def _checked_method(config, plan, folder, method, n_rounds):
    """Check a method's folder before anything is written: its recipe (the same as the
    saved one) and every round it holds (read, then let go: they are read again for the
    result). Returns ``(clf, stamp, the rounds found)``."""
    from ..audit._defense import _check_estimator

    clf = _recipe(config, method)
    _check_estimator(clf, plan)
    document = _recipe_document(clf)
    _check_same(folder, AUDIT_FILES["recipe"], document, "method settings")
    stamp = _RoundStamp(plan, document)
    found = [r for r in range(n_rounds)
             if folder.is_file(AUDIT_FILES["rounds"], audit_round_file(r))]
    for r in found:
        _load_round(folder, r, stamp)
    return clf, stamp, found


def _audit_method(config, plan, folder, method, n_rounds, checked):
    """Train the missing rounds of ``method`` (saving each chunk), then its result."""
    from ..audit._defense import assemble, train_rounds

    clf, stamp, rounds = checked
    folder.makedirs(AUDIT_FILES["rounds"])
    if not folder.is_file(AUDIT_FILES["recipe"]):
        folder.write_json(AUDIT_FILES["recipe"], document=_recipe_document(clf))
    missing = [r for r in range(n_rounds) if r not in rounds]
    if missing:
        folder.clear(COMPLETE)
    chunk = _rounds_per_chunk(config)
    n_jobs = -1 if config.scheduler is not None else config.n_jobs
    # AdvReg's inference network and MemGuard's defender learn non-members from the test
    # part (the classifier never trains on its labels), as the reference code's do from
    # its reference split
    fit_params = ({"X_reference": plan.X_test, "y_reference": plan.y_test}
                  if _registry.METHODS[method].needs_reference else {})
    for start in range(0, len(missing), chunk):
        todo = missing[start:start + chunk]
        for r, result in zip(todo, train_rounds(clf, plan, todo, fit_params=fit_params,
                                                n_jobs=n_jobs,
                                                verbose=config.verbose),
                             strict=True):
            _save_round(folder, r, result, stamp)
    audit = assemble(plan, [_load_round(folder, r, stamp) for r in range(n_rounds)],
                     {"estimator": type(clf).__name__, "method": method,
                      "dataset": config.dataset})
    audit.save(folder.child(AUDIT_FILES["result"]))
    folder.mark_complete(document={"n_models": audit.n_models})
    return audit


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


def _audit_all(config, plan, folder, shared):
    """Check the audit directory, then audit every method and write the table."""
    n_rounds = plan.n_rounds(config.models)
    # every check first: an audit that is refused (other data, other settings, a
    # round that is not its own) is left as it was, complete.json included
    has_plan = _check_same(folder, AUDIT_FILES["plan"], shared, "data or canaries")
    checked = {method: _checked_method(config, plan, folder.child(method), method,
                                       n_rounds)
               for method in config.methods}
    folder.clear(COMPLETE)
    if not has_plan:
        folder.write_json(AUDIT_FILES["plan"], document=shared)
    rows = []
    for method in config.methods:
        audit = _audit_method(config, plan, folder.child(method), method, n_rounds,
                              checked.pop(method))
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
    from ..audit._plan import _check_n_models

    config.check()
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
    with folder.lock("audit"), _scheduler(config.scheduler), stopping_on_signals():
        try:
            table = _audit_all(config, plan, folder, shared)
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
