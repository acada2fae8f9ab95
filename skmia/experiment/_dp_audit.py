"""The DP audit directory of ``skmia audit-dp``: DP-SGD's claim against lower bounds.

One audit directory, ``<out>/<dataset>/audit_dp/seed<seed>/``, holds one subfolder per
audited setting (a noise multiplier, or a target ε), each with the audit's result (the heuristic
last-iterate ε of :func:`skmia.audit.last_iterate_epsilon` beside the claim) and
per-canary scores and its own ``complete.json``; a later call with the same settings
keeps every finished setting and audits the others. The directory is locked while one
process works in it, the table and the plot of every setting are written next, and
``complete.json`` last. File names: :data:`skmia._rundir.DP_AUDIT_FILES`; every file
goes through :class:`skmia._rundir.RunDirectory`.
"""

import time
from dataclasses import asdict

import pandas as pd

from .._rundir import COMPLETE, DP_AUDIT_FILES, ListOf, MapOf, RunDirectory, dp_audit_folder
from .._settings import DPAuditConfig

__all__ = ["DP_AUDIT_COLUMNS", "DPAuditConfig", "dp_audit_directory", "run_dp_audit"]

#: Columns of the table of a DP audit directory: one row per (setting, method).
DP_AUDIT_COLUMNS = ["setting", "noise_multiplier", "claimed_epsilon", "heuristic_epsilon",
                    "method", "epsilon",
                    "confidence", "max_epsilon", "limited_by_counts", "violated", "verdict",
                    "canaries", "runs", "white_box", "seconds"]
_RESULT_SPEC = {"settings": MapOf(object), "claimed_epsilon": float,
                "heuristic_epsilon": float, "noise_multiplier": float, "seconds": float,
                "bounds": ListOf(MapOf(object))}


def dp_audit_directory(out, dataset, seed):
    """``<out>/<dataset>/audit_dp/seed<seed>`` (:func:`skmia._rundir.dp_audit_folder`)."""
    return dp_audit_folder(out, dataset, seed)


def _data(config):
    from ._audit_dir import audit_data

    return audit_data(config)


def _recipe(config, overrides):
    from ._config import RunConfig, estimator

    params = {"batch_size": config.batch_size, "delta": config.delta, **overrides}
    if "target_epsilon" in overrides:
        params["noise_multiplier"] = 1.0  # unused: the target chooses the noise
    run = RunConfig(dataset=config.dataset, method="dpsgd", seed=config.seed,
                    epochs=config.epochs, overrides=params, device=config.device)
    clf = estimator(run, "dpsgd")
    if config.hidden is not None:
        clf.set_params(module__hidden_sizes=tuple(config.hidden))
    return clf


def _audit_one(config, clf, X, y):
    from ..audit import audit_dp, audit_dp_runs

    common = {"canaries": config.canaries, "white_box": config.white_box,
              "delta": config.delta, "confidence": config.confidence,
              "random_state": config.seed}
    if not config.white_box:
        common["canary_kind"] = config.canary_kind
    if config.runs > 1:
        return audit_dp_runs(clf, X, y, n_runs=config.runs, n_reference=config.reference,
                             n_jobs=config.n_jobs, **common)
    return audit_dp(clf, X, y, **common)


def _save_setting(folder, audit, seconds):
    from ..audit import last_iterate_epsilon

    model = audit.estimator_
    noise = model.noise_multiplier_
    heuristic = last_iterate_epsilon(noise, model.sample_rate_, model.n_steps_,
                                     model.delta_)
    bounds = audit.bounds_.reset_index().astype(object)
    folder.write_bytes(DP_AUDIT_FILES["scores"], data=audit.scores_.to_csv(index=False)
                       .encode())
    folder.write_json(DP_AUDIT_FILES["result"], document={
        "settings": {k: v for k, v in audit.settings_.items()},
        "claimed_epsilon": audit.claimed_epsilon_, "heuristic_epsilon": heuristic,
        "noise_multiplier": float(noise),
        "seconds": round(seconds, 1), "bounds": bounds.to_dict("records")})
    folder.mark_complete()


def _rows(name, result, config):
    rows = []
    for bound in result["bounds"]:
        rows.append({
            "setting": name, "noise_multiplier": result["noise_multiplier"],
            "claimed_epsilon": result["claimed_epsilon"],
            "heuristic_epsilon": result["heuristic_epsilon"], "method": bound["method"],
            "epsilon": bound["epsilon"], "confidence": bound["confidence"],
            "max_epsilon": bound["max_epsilon"],
            "limited_by_counts": bound["limited_by_counts"], "violated": bound["violated"],
            "verdict": "violated" if bound["violated"] else "holds",
            "canaries": config.canaries, "runs": config.runs,
            "white_box": config.white_box, "seconds": result["seconds"]})
    return rows


def run_dp_audit(config):
    """Audit DP-SGD's claim at every setting of ``config``; the table of every setting.

    Returns
    -------
    table : pandas.DataFrame
        Columns :data:`DP_AUDIT_COLUMNS`; ``table.attrs["folder"]`` is the directory.
    """
    # the DP audit's figure, drawn as the HTML report draws it (lazy: matplotlib)
    from ..report._dp import plot_dp_audit

    settings = config.check().settings()
    X, y = _data(config)
    recipes = [(name, _recipe(config, overrides)) for name, overrides in settings]
    folder = RunDirectory(dp_audit_directory(config.out, config.dataset, config.seed))
    shared = {k: v for k, v in asdict(config).items()
              if k not in ("noise_multipliers", "target_epsilons", "out", "data_home",
                           "device", "n_jobs")}
    shared["hidden"] = None if config.hidden is None else list(config.hidden)
    with folder.lock("audit"):
        folder.clear(COMPLETE)
        _check_same(folder, shared)
        rows = []
        for name, clf in recipes:
            child = folder.child(name)
            if not child.is_complete():
                child.makedirs()
                start = time.perf_counter()
                audit = _audit_one(config, clf, X, y)
                _save_setting(child, audit, time.perf_counter() - start)
            rows += _rows(name, child.read_json(DP_AUDIT_FILES["result"], spec=_RESULT_SPEC),
                          config)
        table = pd.DataFrame(rows).reindex(columns=DP_AUDIT_COLUMNS)
        folder.write_bytes(DP_AUDIT_FILES["table_csv"], data=table.to_csv(index=False).encode())
        folder.write_json(DP_AUDIT_FILES["table_json"], document={
            "rows": table.astype(object).where(table.notna(), None).to_dict("records")})
        folder.write_bytes(DP_AUDIT_FILES["plot"], data=plot_dp_audit(
            table, title=f"DP-SGD on {config.dataset}: claimed ε vs lower bounds"))
        folder.mark_complete(document={"settings": [n for n, _ in settings]})
    table.attrs["folder"] = str(folder.root)
    return table


def _check_same(folder, document):
    name = DP_AUDIT_FILES["settings"]
    if folder.is_file(name):
        saved = folder.read_json(name, spec=dict)
        changed = sorted(k for k in set(saved) | set(document)
                         if saved.get(k) != document.get(k))
        if changed:
            raise ValueError(f"{folder.root} holds a DP audit made with other settings "
                             f"(differing: {', '.join(changed)}); use another --out or "
                             "--seed, or remove it.")
    else:
        folder.write_json(name, document=document)
