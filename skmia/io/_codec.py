"""Saving and loading fitted defenses (and banks of them) without pickle: safetensors + JSON.

``model.safetensors`` holds every tensor, named by what it belongs to: the networks
(each of the class's ``_modules``, such as AdvReg's ``inference_module.``), the
optimizers' state (``optimizer.<name>.<index>.``), ``fitted.train_indices_``, and what
the class saves of its own (``state.<name>``: early stopping's snapshots) or as whole
models (``estimator.<part>.``: a distilled student's teacher). ``model.json`` holds the
class, the constructor parameters, the fitted attributes the class declares
(``_fitted_attributes``, with their JSON types), the training history (without its
per-batch records), the class's own state (``"state"``: DP-SGD's accountant) and two
digests: of the weights file and of the JSON itself.

What a class saves is declared by the class, next to its ``_checkpoint_state``:
``_fitted_attributes``, ``_state_attributes`` with ``_saved_state`` /
``_restore_saved_state``, and ``_unsaved_attributes`` with ``_draw_unsaved``. This module
knows no defense by name: a new defense is saved by declaring these. A loaded model
predicts as the saved one did, and ``partial_fit`` continues its training where it
stopped (same learning-rate schedule, optimizer state, seeds and accountant).

Loading rebuilds the estimator from allow-lists of classes and of fitted attributes, so
no saved byte is ever executed or unpickled. A file saved by another skmia version,
edited by hand, truncated, or holding keys or tensors the model does not have is
refused with a ``ValueError`` that names the file and the key.

DP-SGD's noise seed (``training_seed_``, which also draws its Poisson batches) is one of
its ``_unsaved_attributes``: whoever holds the files could replay the noise. A loaded
:class:`~skmia.defenses.DPSGDClassifier` draws a fresh seed from the operating system,
so ``partial_fit`` continues its accountant with new noise.
"""

import hashlib

import numpy as np
import torch
from sklearn.preprocessing import LabelEncoder

from .._rundir import (
    MODEL_JSON,
    RunDirectory,
    check_json,
)
from ._values import (
    _NOT_PLAIN,
    _check_keys,
    _check_state,
    _cpu,
    _decode,
    _decode_classes,
    _encode,
    _load_optimizer,
    _optimizer_state,
    _plain,
    _tensor_groups,
)
from ._values import _digest as _digest  # model.json's digest, read by tests from here

__all__ = ["FORMAT", "file_sha256", "saved_params_sha256"]

#: Layout of the files; a file of another layout is refused.
FORMAT = 3

# fitted attributes that are skorch's machinery, or saved apart from "fitted"
_SAVED_APART = {
    "history_", "initialized_", "callbacks_", "virtual_params_", "prefixes_",
    "cuda_dependent_attributes_", "label_encoder_", "train_indices_", "init_context_",
    "classes_inferred_",
}

# tensor names: "<group>.<rest>"; a group is a module's name or one of these
_STATE = "state"  # what a class's _saved_state gives
_ESTIMATOR = "estimator"  # the estimators a class's _saved_state gives, saved whole
_OPTIMIZER = "optimizer"
_FITTED = "fitted"
_INDICES = "train_indices_"
_RESERVED_GROUPS = (_STATE, _ESTIMATOR, _OPTIMIZER, _FITTED)
# why a model saved without its optimizers cannot be trained further
_IN_A_BANK = ("it was saved as one model of a bank of reference models, without its "
              "optimizer state")
_AS_A_PART = "it was saved as a part ({}) of another model, without its optimizer state"

# the keys of model.json: required, and allowed besides
_DOCUMENT_KEYS = {"skmia_version", "format", "weights_sha256", "digest", "params_sha256"}
_DEFENSE_KEYS = {
    "class": str, "params": dict, "not_saved": list, "fitted": dict, "classes": list,
    "classes_dtype": str, "state": dict, "history": list, "optimizers": dict,
    "resume": (str, type(None)),
}


def _defense_classes():
    from .. import defenses

    return {
        name: getattr(defenses, name)
        for name in defenses.__all__
        if isinstance(getattr(defenses, name), type) and name.endswith("Classifier")
    }


def _fitted_attributes(cls):
    """``{name: JSON type}`` of the fitted attributes ``cls`` keeps in model.json: those
    it declares (``_fitted_attributes``), less those it never writes."""
    return {k: v for k, v in cls._fitted_attributes.items()
            if k not in cls._unsaved_attributes}


def _history_document(clf):
    """The training history, one dict per epoch, without skorch's per-batch records."""
    epochs = []
    for epoch in clf.history:
        row = {}
        for key, value in epoch.items():
            plain = _plain(value)
            if key != "batches" and plain is not _NOT_PLAIN:
                row[key] = plain
        epochs.append(row)
    return epochs


def _defense_state(clf, not_resumable=None):
    """``(document, tensors)`` of a fitted skmia defense: what ``model.json`` and
    ``model.safetensors`` hold, without the digests.

    ``not_resumable`` (a reason) leaves the optimizers' state out (the models of a bank,
    a student's teacher): the model predicts, and ``partial_fit`` refuses to continue it.
    """
    classes = _defense_classes()
    name = type(clf).__name__
    if classes.get(name) is not type(clf):
        raise TypeError(f"only skmia defenses can be saved, got {name}")
    tensors = {}
    for module in clf._modules:
        if module in _RESERVED_GROUPS:
            raise TypeError(f"{name} has a network named {module!r}, a name skmia reserves")
        for key, value in getattr(clf, f"{module}_").state_dict().items():
            tensors[f"{module}.{key}"] = _cpu(value)
    if hasattr(clf, "train_indices_"):
        tensors[f"{_FITTED}.{_INDICES}"] = torch.as_tensor(np.asarray(clf.train_indices_))
    refused = [] if not_resumable is None else [not_resumable]
    optimizers = {}
    if not_resumable is None:
        for optimizer in clf._optimizers:
            saved = _optimizer_state(getattr(clf, f"{optimizer}_"))
            if saved is None:
                refused.append(f"the settings of its {optimizer} are not plain data")
                continue
            optimizers[optimizer], state = saved
            tensors.update({f"{_OPTIMIZER}.{optimizer}.{k}": v for k, v in state.items()})
    params, not_saved = _params_document(clf)
    allowed = _fitted_attributes(type(clf))
    never = set(clf._unsaved_attributes)
    apart = (_SAVED_APART | set(clf._state_attributes)
             | {f"{n}_" for n in (*clf._modules, *clf._criteria, *clf._optimizers)})
    fitted = {}
    for key, value in vars(clf).items():
        if not key.endswith("_") or key.startswith("_") or key in apart or key in never:
            continue
        encoded = _encode(value)
        if key not in allowed or encoded is None:
            raise TypeError(
                f"{name}.{key} is a fitted attribute that {name} does not declare: add it "
                f"to {name}._fitted_attributes (with its JSON type) to save it"
            )
        fitted[key] = encoded
    classes_ = clf.classes_
    document = {
        "class": name,
        "params": params,
        "not_saved": not_saved,
        "fitted": fitted,
        "classes": classes_.tolist(),
        "classes_dtype": classes_.dtype.str,
        "history": _history_document(clf),
        "optimizers": optimizers,
        "state": _class_state(clf, tensors, refused),
    }
    document["resume"] = "; ".join(refused) or None
    return document, tensors


def _class_state(clf, tensors, refused):
    """The document of what ``clf``'s class saves of its own (``_saved_state``); its
    tensors go to ``tensors``, what cannot be saved to ``refused``."""
    values, own, estimators = clf._saved_state()
    plain = _plain(values)
    if plain is _NOT_PLAIN or not isinstance(plain, dict):
        raise TypeError(f"{type(clf).__name__}._saved_state gave values that are not JSON "
                        "data")
    tensors.update({f"{_STATE}.{k}": _cpu(v) for k, v in own.items()})
    parts = {}
    for part, estimator in estimators.items():
        if _defense_classes().get(type(estimator).__name__) is type(estimator):
            parts[part], part_tensors = _defense_state(estimator, _AS_A_PART.format(part))
            tensors.update({f"{_ESTIMATOR}.{part}.{k}": v for k, v in part_tensors.items()})
        else:
            refused.append(f"its {part}, a {type(estimator).__name__}, is not a skmia "
                           "defense and was not saved")
    return {"values": plain, "estimators": parts}


def _params_document(estimator):
    """``(params, not_saved)``: the constructor parameters that can be stored as data."""
    params, not_saved = {}, []
    for key, value in estimator.get_params(deep=False).items():
        if key.startswith("_"):  # skorch's bookkeeping, set by __init__ itself
            continue
        encoded = _encode(value, key)
        if encoded is None:
            not_saved.append(key)
        else:
            params[key] = encoded
    return params, sorted(not_saved)


def _folder(folder):
    return folder if isinstance(folder, RunDirectory) else RunDirectory(folder)


def file_sha256(folder, name):
    """SHA-256 of the file ``name`` of ``folder``, or None when there is no such file."""
    try:
        return hashlib.sha256(_folder(folder).read_bytes(name)).hexdigest()
    except FileNotFoundError:
        return None


def saved_params_sha256(folder):
    """The SHA-256 of ``params.json`` that ``folder``'s ``model.json`` was saved beside,
    or None when it records none (a model saved outside a run directory)."""
    document = _folder(folder).read_json(MODEL_JSON)
    return document.get("params_sha256") if isinstance(document, dict) else None


def _defense_class(name, where):
    cls = _defense_classes().get(name)
    if cls is None:
        raise ValueError(f"{where.key('class')}: {name!r} is not a skmia defense")
    return cls


def _decode_params(cls, encoded, where, prefix="params."):
    """The constructor parameters of ``cls`` in ``encoded``; unknown names are refused."""
    default = cls()
    known = set(default.get_params(deep=False))
    prefixes = {*default.prefixes_, "module", "criterion", "optimizer"}
    params = {}
    for key, value in encoded.items():
        routed = "__" in key and key.partition("__")[0] in prefixes
        if key.startswith("_") or not (key in known or routed):
            raise ValueError(
                f"{where.key(prefix + key)} is not a parameter of {cls.__name__}; refusing "
                f"to load it"
            )
        params[key] = _decode(value, where.key(prefix + key), key)
    return params


def _decode_fitted(cls, fitted, where):
    """The fitted attributes in ``fitted``, each allowed for ``cls`` and of its type."""
    allowed = _fitted_attributes(cls)
    values = {}
    for key, value in fitted.items():
        if key in cls._unsaved_attributes:
            what = cls._unsaved_attributes[key].format(cls.__name__)
            raise ValueError(
                f"{where.key('fitted.' + key)} holds {what}, which skmia never saves: "
                f"whoever has the file could replay it. Refusing to load it."
            )
        if key not in allowed:
            raise ValueError(
                f"{where.key('fitted.' + key)} is not a fitted attribute of {cls.__name__}; "
                f"refusing to load it"
            )
        decoded = _decode(value, where.key(f"fitted.{key}"))
        try:
            check_json(decoded, allowed[key], where.json_path, f"fitted.{key}")
        except ValueError as exc:
            raise ValueError(f"{where.key('fitted.' + key)} has a value of the wrong type "
                             f"({str(exc).partition(': ')[2]})") from None
        values[key] = decoded
    missing = sorted(set(allowed) - set(values) - set(cls._optional_attributes))
    if missing:
        raise ValueError(f"{where.key('fitted.' + missing[0])} is missing; refusing to load it")
    if "input_shape_" in values:  # a shape, as numpy gives it
        values["input_shape_"] = tuple(values["input_shape_"])
    return values


def _restore_defense(document, tensors, where, device):
    _check_keys(document, _DEFENSE_KEYS, {}, where, _DOCUMENT_KEYS)
    cls = _defense_class(document["class"], where)
    params = _decode_params(cls, document["params"], where)
    if device is not None:
        params["device"] = device
    # the defenses' own device check, so a loaded model refuses what a new one refuses
    from ..defenses._base import check_device

    check_device(params.get("device", "cpu"))
    clf = cls(**params)
    for key, value in _decode_fitted(cls, document["fitted"], where).items():
        setattr(clf, key, value)
    encoder = LabelEncoder()
    encoder.classes_ = _decode_classes(document, where)
    clf.label_encoder_ = encoder

    groups = _tensor_groups(tensors, where)
    fitted = groups.pop(_FITTED, {})
    for key in fitted:
        if key != _INDICES:
            raise ValueError(f"{where.tensor(f'{_FITTED}.{key}')} is not a tensor of a saved model")
    if _INDICES in fitted:
        clf.train_indices_ = fitted[_INDICES].numpy()
    try:
        clf.initialize()
    except (TypeError, ValueError, RuntimeError) as exc:
        raise ValueError(
            f"{where.key('params')}: cannot build the {cls.__name__} they describe ({exc})"
        ) from exc
    for module in clf._modules:
        network = getattr(clf, f"{module}_")
        state = groups.pop(module, {})
        _check_state(network.state_dict(), state, where, f"{module}.", f"network {module}")
        network.load_state_dict(state)

    saved, states = document["optimizers"], {}
    for rest, value in groups.pop(_OPTIMIZER, {}).items():
        name, _, tail = rest.partition(".")
        if name not in saved:
            raise ValueError(f"{where.tensor(f'{_OPTIMIZER}.{rest}')} is not of a saved optimizer")
        states.setdefault(name, {})[tail] = value
    for name, spec in saved.items():
        if name not in clf._optimizers:
            raise ValueError(f"{where.key('optimizers.' + name)} is not an optimizer of "
                             f"{cls.__name__}")
        _load_optimizer(getattr(clf, f"{name}_"), spec, states.get(name, {}),
                        where.nested("", f"{_OPTIMIZER}.{name}."), name)
    if document["resume"] is None and set(saved) != set(clf._optimizers):
        missing = sorted(set(clf._optimizers) - set(saved))
        raise ValueError(f"{where.key('optimizers.' + missing[0])} is missing")

    from skorch.history import History

    if not all(isinstance(epoch, dict) for epoch in document["history"]):
        raise ValueError(f"{where.key('history')} should list one object per epoch")
    clf.history_ = History(document["history"])

    clf._resume_refused = document["resume"]
    _restore_class_state(clf, document["state"], groups, where, device)
    if groups:
        group, rest = next((g, next(iter(t))) for g, t in groups.items())
        raise ValueError(f"{where.tensor(f'{group}.{rest}')} is not a tensor of the model")

    clf._draw_unsaved()  # e.g. DP-SGD's noise seed, never written: a fresh one
    return clf


def _restore_class_state(clf, state, groups, where, device):
    """Give ``clf`` what its class saved of its own (see :func:`_class_state`)."""
    here = where.nested("state.", "")
    _check_keys(state, {"values": dict, "estimators": dict}, {}, here)
    by_part = {}
    for rest, value in groups.pop(_ESTIMATOR, {}).items():
        part, _, tail = rest.partition(".")
        if part not in state["estimators"]:
            raise ValueError(f"{where.tensor(f'{_ESTIMATOR}.{rest}')} is not of a saved part")
        by_part.setdefault(part, {})[tail] = value
    estimators = {
        part: _restore_defense(document, by_part.get(part, {}),
                               where.nested(f"state.estimators.{part}.",
                                            f"{_ESTIMATOR}.{part}."), device)
        for part, document in state["estimators"].items()
    }
    try:
        clf._restore_saved_state(state["values"], groups.pop(_STATE, {}), estimators)
    except (ValueError, KeyError, TypeError) as exc:
        raise ValueError(f"{where.key('state')} does not hold what a {type(clf).__name__} "
                         f"saves ({exc}); refusing to load it") from exc
