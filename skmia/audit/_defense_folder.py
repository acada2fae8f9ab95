"""The folder of a defense audit (``audit_defense(..., out=...)``): its recipe, its
finished rounds, its result, written as they finish and trusted only when they are its own.

The folder holds ``recipe.json`` (what defines the models, their seeds aside), one file
per finished round (``rounds/round_<r>.safetensors``), the saved
:class:`~skmia.audit.DefenseAudit` (``result/``) and ``complete.json``, written last; the
names are :data:`skmia._rundir.AUDIT_FILES`. Every file is read and written through
:class:`skmia._rundir.RunDirectory`: no link is followed, nothing outside the folder is
touched. A round file carries, in its safetensors metadata, what it was trained for: the
audit's plan (:meth:`AuditPlan.fingerprint`), the recipe, its round number and the digest
of its arrays; it is used only when all of them match and its IN/OUT masks are those the
audit's seed gives (the bank's draws), so a folder stopped by a Ctrl-C continues, or
grows, to the result one call would give.
"""

import hashlib
import json

import numpy as np

from .._rundir import AUDIT_FILES, RunDirectory, audit_round_file
from ._result import OPTIONAL_ARRAYS

__all__ = ["ROUND_ARRAYS", "RoundStamp", "arrays_sha256", "check_same_document",
           "load_round", "recipe_document", "save_round"]

ROUND_ARRAYS = ("phi", "in_mask", "test_accuracy", "train_accuracy", "epsilon")
_ROUND_FORMAT = "skmia audit round 1"


def recipe_document(estimator):
    """What defines an audit's models, their seeds aside (every round draws its own):
    the class and its :func:`~skmia.io.estimator_settings`."""
    from ..io import estimator_settings

    return {"class": type(estimator).__name__,
            "params": estimator_settings(estimator, exclude=("random_state",))}


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


def check_same_document(folder, name, document, what):
    """Refuse a folder whose JSON file ``name`` differs from ``document`` (nothing is
    written); whether the folder holds that file."""
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


def arrays_sha256(arrays):
    """SHA-256 of named arrays (names, dtypes, shapes and bytes, by name)."""
    digest = hashlib.sha256()
    for name in sorted(arrays):
        array = np.ascontiguousarray(arrays[name])
        digest.update(f"{name}:{array.dtype.str}:{array.shape};".encode())
        digest.update(array.tobytes())
    return digest.hexdigest()


class RoundStamp:
    """What every round of an audit's folder must match: the plan, the recipe, the masks."""

    def __init__(self, plan, recipe):
        self.plan = plan
        self.plan_sha256 = plan.fingerprint()
        self.recipe_sha256 = hashlib.sha256(
            json.dumps(recipe, sort_keys=True).encode()).hexdigest()

    def metadata(self, r, arrays):
        """The metadata a round file of round ``r`` holding ``arrays`` carries."""
        return {"format": _ROUND_FORMAT, "round": str(r), "plan_sha256": self.plan_sha256,
                "recipe_sha256": self.recipe_sha256, "arrays_sha256": arrays_sha256(arrays)}

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
        if metadata.get("arrays_sha256") != arrays_sha256(arrays):
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


def save_round(folder, r, result, stamp):
    """Write round ``r``'s arrays to ``folder`` (a :class:`RunDirectory`), stamped."""
    from safetensors.numpy import save

    arrays = {k: np.ascontiguousarray(result[k]) for k in (*ROUND_ARRAYS, *OPTIONAL_ARRAYS)
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


def load_round(folder, r, stamp):
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
    missing = sorted(set(ROUND_ARRAYS) - set(arrays))
    if missing:
        raise ValueError(f"{shown} lacks the arrays {missing}; {again}")
    problem = stamp.problem(r, metadata, arrays)
    if problem is not None:
        raise ValueError(f"{shown} is not round {r} of this audit: {problem}; {again}")
    arrays["in_mask"] = arrays["in_mask"].astype(bool)
    return arrays


def checked_folder(out, estimator, plan, n_rounds):
    """Check an audit's folder before anything is written: its recipe (the same as the
    saved one) and every round it holds (read, then let go). Returns
    ``(folder, stamp, the rounds found)``."""
    folder = out if isinstance(out, RunDirectory) else RunDirectory(out)
    document = recipe_document(estimator)
    check_same_document(folder, AUDIT_FILES["recipe"], document, "method settings")
    stamp = RoundStamp(plan, document)
    found = [r for r in range(n_rounds)
             if folder.is_file(AUDIT_FILES["rounds"], audit_round_file(r))]
    for r in found:
        load_round(folder, r, stamp)
    return folder, stamp, found
