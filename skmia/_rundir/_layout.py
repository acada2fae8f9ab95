"""The layouts of runs and audits: where their folders go below ``--out``, and the
names of the files and subfolders inside them. Every layout in one place.

A run, an audit and a DP audit are folders ``<out>/<dataset>[/<model>]/.../seed<seed>``
(:func:`run_folder`, :func:`audit_folder`, :func:`dp_audit_folder`); their files are
named here (``RUN_FILES``, ``ATTACK_FILES``, ``AUDIT_FILES``, ``DP_AUDIT_FILES``, ...).
Nothing else in skmia joins these parts or spells these names; :mod:`skmia._rundir`
re-exports them.
"""

from pathlib import Path

__all__ = ["ATTACK_STAGING", "AUDIT", "AUDIT_DP", "SHADOW", "audit_folder",
           "dp_audit_folder", "run_folder", "seed_folder", "PARAMS", "HISTORY",
           "MODEL_JSON", "MODEL_WEIGHTS", "COMPLETE", "CHECKPOINT", "ATTACK", "REFERENCE",
           "RESULTS_CSV", "RESULTS_JSON", "ROC_PNG", "LOSS_HIST_PNG", "SCORES_NPZ",
           "COMPARE_JSON", "RUN_FILES", "ATTACK_FILES", "AUDIT_FILES", "AUDIT_RESULT_FILES",
           "DP_AUDIT_FILES", "audit_round_file"]

# ---------------------------------------------------------------------- file names

PARAMS = "params.json"
HISTORY = "history.json"
MODEL_JSON = "model.json"
MODEL_WEIGHTS = "model.safetensors"
COMPLETE = "complete.json"
CHECKPOINT = "checkpoint"
ATTACK = "attack"
REFERENCE = "reference"
RESULTS_CSV = "results.csv"
RESULTS_JSON = "results.json"
ROC_PNG = "roc.png"
LOSS_HIST_PNG = "loss_hist.png"
# the scores behind the figures, where the writer draws none (a model audit): the report
# draws roc.png and loss_hist.png from them
SCORES_NPZ = "scores.npz"
COMPARE_JSON = "compare.json"
#: the files of a training, and of an attack (``attack/``), completion marker last
RUN_FILES = (PARAMS, HISTORY, MODEL_JSON, MODEL_WEIGHTS, COMPLETE)
ATTACK_FILES = (RESULTS_CSV, RESULTS_JSON, ROC_PNG, LOSS_HIST_PNG, SCORES_NPZ, COMPARE_JSON,
                COMPLETE)
#: an audit directory (``skmia audit``): the shared plan, per method its recipe, its
#: finished rounds (``audit_round_file(r)``) and result, the table of every method
AUDIT_FILES = {
    "plan": "audit.json",
    "recipe": "recipe.json",
    "rounds": "rounds",
    "result": "result",
    "table_csv": "summary.csv",
    "table_json": "summary.json",
    "complete": COMPLETE,
}
#: a saved :class:`skmia.audit.DefenseAudit` (``settings.json`` last)
AUDIT_RESULT_FILES = {"arrays": "arrays.safetensors", "summary": "summary.csv",
                      "per_record": "per_record.csv", "settings": "settings.json"}


#: a DP audit directory (``skmia audit-dp``): the shared settings, per audited setting
#: (a subfolder) its result and per-canary scores, the table and plot of every setting
DP_AUDIT_FILES = {
    "settings": "audit_dp.json",
    "result": "result.json",
    "scores": "scores.csv",
    "table_csv": "summary.csv",
    "table_json": "summary.json",
    "plot": "dp_audit.png",
    "complete": COMPLETE,
}


def audit_round_file(r):
    """The file of round ``r`` of a method in an audit directory."""
    return f"round_{r:04d}.safetensors"


#: a run's shadow run, a subfolder of the target's (``<run>/shadow``)
SHADOW = "shadow"
#: the folder of the defense audits of a dataset (``skmia audit``)
AUDIT = "audit"
#: the folder of the DP audits of a dataset (``skmia audit-dp``)
AUDIT_DP = "audit_dp"
#: a run's new ``attack/`` while it is written (it replaces ``attack/`` once complete)
ATTACK_STAGING = ".attack.partial"


def seed_folder(seed):
    """The last part of every run and audit folder: ``seed<seed>``."""
    return f"seed{seed}"


def _dataset_folder(out, dataset, model):
    return Path(out).joinpath(dataset, *([model] if model else []))


def run_folder(out, dataset, method, seed, model=None):
    """A run directory: ``<out>/<dataset>[/<model>]/<method>/seed<seed>``."""
    return _dataset_folder(out, dataset, model) / method / seed_folder(seed)


def audit_folder(out, dataset, seed, model=None):
    """A defense audit directory: ``<out>/<dataset>[/<model>]/audit/seed<seed>``."""
    return _dataset_folder(out, dataset, model) / AUDIT / seed_folder(seed)


def dp_audit_folder(out, dataset, seed):
    """A DP audit directory: ``<out>/<dataset>/audit_dp/seed<seed>``."""
    return _dataset_folder(out, dataset, None) / AUDIT_DP / seed_folder(seed)
