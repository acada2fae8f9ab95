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
import importlib
import inspect
import json

import numpy as np
import torch
from safetensors import SafetensorError
from safetensors.torch import load, save
from sklearn.preprocessing import LabelEncoder

from .. import __version__
from .._rundir import (
    MODEL_JSON,
    MODEL_WEIGHTS,
    PARAMS,
    Int,
    ListOf,
    RunDirectory,
    _problem,
    check_json,
)

__all__ = ["save_estimator", "load_estimator", "MODEL_JSON", "MODEL_WEIGHTS"]

#: Layout of the files; a file of another layout is refused.
FORMAT = 3

# modules (classes or factory functions), criteria and optimisers come from these only
_ALLOWED_FACTORY_PREFIXES = ("skmia.nn.", "torch.nn.", "torch.optim.")
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
_BANK_PREFIX = "bank."
_MASK_KEY = "in_mask_"
# fitted attributes of a bank kept in model.json (classes_ and the masks aside)
_BANK_FITTED = {
    "base_seed_": Int(), "n_features_in_": Int(0), "input_shape_": ListOf(Int(0)),
    "pool_digest_": str, "seeds_": ListOf(Int()),
}
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
_BANK_KEYS = {
    "class": str, "params": dict, "estimator": dict, "fitted": dict, "classes": list,
    "classes_dtype": str, "models": list,
}
_LABEL_KINDS = "biufU"  # bool, int, unsigned, float, str: labels JSON can hold


def _defense_classes():
    from .. import defenses

    return {
        name: getattr(defenses, name)
        for name in defenses.__all__
        if isinstance(getattr(defenses, name), type) and name.endswith("Classifier")
    }


def _factory_problem(obj, key):
    """Why the class or function ``obj`` may not be parameter ``key``; None if it may.

    ``module`` is a ``torch.nn.Module`` subclass or one of skmia.nn's network functions,
    ``optimizer`` a ``torch.optim.Optimizer`` subclass, anything else (``criterion``,
    ``module__activation``, ...) a ``torch.nn.Module`` subclass; ``key=None`` (a fitted
    attribute, an optimizer's setting) takes no class at all.
    """
    from .. import nn as skmia_nn

    is_module = isinstance(obj, type) and issubclass(obj, torch.nn.Module)
    if key is None:
        return "is a class or function, which is not allowed here"
    if key == "optimizer":
        if isinstance(obj, type) and issubclass(obj, torch.optim.Optimizer):
            return None
        return "is not a torch.optim.Optimizer subclass"
    if key == "module":
        network_function = (
            inspect.isfunction(obj) and obj.__name__ in skmia_nn.__all__
            and getattr(skmia_nn, obj.__name__) is obj
        )
        if is_module or network_function:
            return None
        return "is not a torch.nn.Module subclass nor a network function of skmia.nn"
    return None if is_module else "is not a torch.nn.Module subclass"


def _encode(value, key=None):
    """JSON form of a constructor parameter ``key`` (None: a fitted attribute or an
    optimizer's setting); None when it cannot be saved."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return {"value": value.item()}
    if isinstance(value, (tuple, list)):
        items = [_encode(v, key) for v in value]
        if any(item is None for item in items):
            return None
        return {"tuple" if isinstance(value, tuple) else "list": items}
    if isinstance(value, type) or inspect.isfunction(value):  # e.g. MLP or resnet20
        path = f"{value.__module__}.{value.__qualname__}"
        if path.startswith(_ALLOWED_FACTORY_PREFIXES) and _factory_problem(value, key) is None:
            return {"class": path}
    return None


def _decode(encoded, where, key=None):
    """The value ``_encode(value, key)`` gave; ``where`` names the file and the key."""
    if not isinstance(encoded, dict) or len(encoded) != 1:
        raise ValueError(f"{where}: malformed value {encoded!r}")
    (kind, payload), = encoded.items()
    if kind == "value":
        if not (payload is None or isinstance(payload, (bool, int, float, str))):
            raise ValueError(f"{where}: malformed value {encoded!r}")
        return payload
    if kind in ("tuple", "list"):
        if not isinstance(payload, list):
            raise ValueError(f"{where}: malformed value {encoded!r}")
        items = [_decode(v, where, key) for v in payload]
        return tuple(items) if kind == "tuple" else items
    if kind == "class":
        if not isinstance(payload, str) or not payload.startswith(_ALLOWED_FACTORY_PREFIXES):
            raise ValueError(f"{where}: class {payload!r} is not allowed")
        module_name, _, attr = payload.rpartition(".")
        try:
            obj = getattr(importlib.import_module(module_name), attr, None)
        except ImportError:
            obj = None
        if not (isinstance(obj, type) or inspect.isfunction(obj)):
            raise ValueError(f"{where}: {payload!r} is not a class or function")
        problem = _factory_problem(obj, key)
        if problem is not None:
            raise ValueError(f"{where}: {payload!r} {problem}; refusing to load it")
        return obj
    raise ValueError(f"{where}: unknown kind of value {kind!r}")


def _digest(document):
    body = {k: v for k, v in document.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _fitted_attributes(cls):
    """``{name: JSON type}`` of the fitted attributes ``cls`` keeps in model.json: those
    it declares (``_fitted_attributes``), less those it never writes."""
    return {k: v for k, v in cls._fitted_attributes.items()
            if k not in cls._unsaved_attributes}


def _cpu(tensor):
    return tensor.detach().to("cpu").contiguous()


_NOT_PLAIN = object()


def _plain(value):
    """``value`` as JSON data (None, bool, number, str, lists, str-keyed dicts), or
    ``_NOT_PLAIN``."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return value
    if isinstance(value, (np.integer, np.floating, np.bool_)):
        return value.item()
    if isinstance(value, (list, tuple)):
        items = [_plain(v) for v in value]
        return _NOT_PLAIN if any(v is _NOT_PLAIN for v in items) else items
    if isinstance(value, dict) and all(isinstance(k, str) for k in value):
        items = {k: _plain(v) for k, v in value.items()}
        return _NOT_PLAIN if any(v is _NOT_PLAIN for v in items.values()) else items
    return _NOT_PLAIN


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


def _optimizer_state(optimizer):
    """``(document, tensors)`` of an optimizer's ``state_dict``; None when a setting is
    not plain data."""
    state = optimizer.state_dict()
    groups = []
    for group in state["param_groups"]:
        encoded = {k: _encode(v) for k, v in group.items() if k != "params"}
        if any(v is None for v in encoded.values()):
            return None
        groups.append({"params": [int(i) for i in group["params"]], "settings": encoded})
    tensors, values = {}, {}
    for index, entries in state["state"].items():
        for key, value in entries.items():
            if isinstance(value, torch.Tensor):
                tensors[f"{int(index)}.{key}"] = _cpu(value)
            elif (encoded := _encode(value)) is not None:
                values.setdefault(str(int(index)), {})[key] = encoded
            else:
                return None
    return {"param_groups": groups, "state": values}, tensors


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


def _bank_state(bank):
    """``(document, tensors)`` of a fitted :class:`ReferenceModels` of skmia defenses."""
    from sklearn.utils.validation import check_is_fitted

    check_is_fitted(bank)
    if type(bank.estimator).__name__ not in _defense_classes():
        raise TypeError(
            "only banks of skmia defenses can be saved without pickle, got a bank of "
            f"{type(bank.estimator).__name__}"
        )
    estimator_params, not_saved = _params_document(bank.estimator)
    params, _ = _params_document(bank)
    models, tensors = [], {_MASK_KEY: torch.as_tensor(bank.in_mask_)}
    for k, model in enumerate(bank.estimators_):
        document, model_tensors = _defense_state(model, _IN_A_BANK)
        models.append(document)
        tensors.update({f"{_BANK_PREFIX}{k}.{key}": v for key, v in model_tensors.items()})
    fitted = {key: _encode(getattr(bank, key)) for key in _BANK_FITTED if key != "seeds_"}
    fitted["seeds_"] = _encode([int(s) for s in bank.seeds_])
    document = {
        "class": type(bank).__name__,
        "params": params,
        "estimator": {"class": type(bank.estimator).__name__, "params": estimator_params,
                      "not_saved": not_saved},
        "fitted": fitted,
        "classes": np.asarray(bank.classes_).tolist(),
        "classes_dtype": np.asarray(bank.classes_).dtype.str,
        "models": models,
    }
    return document, tensors


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


def save_estimator(clf, folder):
    """Save a fitted skmia defense, or a bank of them, to ``folder``.

    Writes ``model.safetensors`` (tensors) and ``model.json`` (everything else, with a
    digest of both). A :class:`~skmia.model_selection.ReferenceModels` bank is saved
    whole: each model's weights under ``bank.<k>.``, the masks as ``in_mask_``. In a run
    directory, ``model.json`` also records the SHA-256 of the ``params.json`` beside it,
    which :func:`skmia.experiment.load_run` checks.

    Parameters that cannot be stored as data (a teacher estimator, callbacks, a
    validation set) are recorded by name in ``"not_saved"`` and come back as their
    defaults; they are not needed for prediction. The optimizers' state and the history
    are saved, so that ``partial_fit`` continues the loaded model as it would have
    continued this one; DP-SGD's noise seed is not (see the module's notes).
    """
    from ..model_selection import ReferenceModels

    folder = _folder(folder)
    if isinstance(clf, ReferenceModels):
        document, tensors = _bank_state(clf)
    else:
        document, tensors = _defense_state(clf)
    weights = save(tensors)
    document = {"skmia_version": __version__, "format": FORMAT, **document,
                "weights_sha256": hashlib.sha256(weights).hexdigest()}
    params_sha256 = file_sha256(folder, PARAMS)
    if params_sha256 is not None:  # in a run directory: what it was trained under
        document["params_sha256"] = params_sha256
    document["digest"] = _digest(document)
    folder.write_bytes(MODEL_WEIGHTS, data=weights)
    folder.write_json(MODEL_JSON, document=document)


def load_estimator(folder, *, device=None):
    """Re-create the fitted defense (or bank) saved in ``folder``, unpickling nothing.

    Parameters
    ----------
    folder : path-like
        A folder written by :func:`save_estimator`.
    device : str or None, default=None
        Override the saved ``device`` (e.g. load a CUDA-trained model on the CPU).

    Returns
    -------
    clf : MIADefenseClassifier or ReferenceModels
        The fitted classifier, or the fitted bank.

    Raises
    ------
    FileNotFoundError
        The folder holds no saved model.
    ValueError
        The files were written by another skmia version, edited, or are corrupt.
    """
    folder = _folder(folder)
    json_path, weights_path = folder.path(MODEL_JSON), folder.path(MODEL_WEIGHTS)
    if not folder.exists(MODEL_JSON) or not folder.exists(MODEL_WEIGHTS):
        raise FileNotFoundError(
            f"{str(folder.root)!r} holds no saved model (expected {MODEL_JSON} and "
            f"{MODEL_WEIGHTS})"
        )
    document = folder.read_json(MODEL_JSON)
    where = str(json_path)
    if not isinstance(document, dict) or document.get("digest") != _digest(document):
        raise ValueError(
            f"{where!r} has been modified or is corrupt (its digest does not match its "
            f"content); refusing to load it. Delete {str(folder.root)!r} (or both "
            f"{MODEL_JSON} and {MODEL_WEIGHTS}) so that it is trained again."
        )
    if document.get("skmia_version") != __version__:
        raise ValueError(
            f"{where!r} was saved by skmia {document.get('skmia_version')}; this is skmia "
            f"{__version__}. Re-run the training with this version."
        )
    if document.get("format") != FORMAT:
        raise ValueError(
            f"{where!r} holds a model in layout {document.get('format')!r}; this skmia "
            f"reads layout {FORMAT}. Re-run the training with this version."
        )
    weights = folder.read_bytes(MODEL_WEIGHTS)
    if hashlib.sha256(weights).hexdigest() != document.get("weights_sha256"):
        raise ValueError(
            f"{str(weights_path)!r} does not match the digest in {MODEL_JSON}: the weights "
            f"were modified or truncated. Delete {str(folder.root)!r} (or both "
            f"{MODEL_JSON} and {MODEL_WEIGHTS}) so that they are trained again."
        )
    try:
        tensors = load(weights)
    except (SafetensorError, ValueError) as exc:
        raise ValueError(
            f"{str(weights_path)!r} is not a safetensors file ({exc}); refusing to load it."
        ) from exc
    where = _Where(json_path, weights_path)
    try:
        if document.get("class") == "ReferenceModels":
            return _restore_bank(document, tensors, where, device)
        return _restore_defense(document, tensors, where, device)
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        # what the checks below do not foresee still names the file, never a traceback
        raise ValueError(
            f"{str(json_path)!r} does not describe a model this skmia can load "
            f"({type(exc).__name__}: {exc}); refusing to load it."
        ) from exc


class _Where:
    """Where a problem is, for the error: the file, and the key in it."""

    def __init__(self, json_path, weights_path, key_prefix="", tensor_prefix=""):
        self.json_path, self.weights_path = str(json_path), str(weights_path)
        self.key_prefix, self.tensor_prefix = key_prefix, tensor_prefix

    def key(self, name):
        """A key of model.json."""
        return f"{self.json_path!r}: key {self.key_prefix + name!r}"

    def tensor(self, name):
        """A tensor of model.safetensors."""
        return f"{self.weights_path!r}: tensor {self.tensor_prefix + name!r}"

    def nested(self, key_prefix, tensor_prefix):
        return _Where(self.json_path, self.weights_path, self.key_prefix + key_prefix,
                      self.tensor_prefix + tensor_prefix)


def _check_keys(document, required, optional, where, extra=()):
    """Refuse a JSON object that lacks a key of ``required``, has a key of neither
    ``required`` nor ``optional`` (nor ``extra``), or a value of another type."""
    if not isinstance(document, dict):
        raise ValueError(f"{where.key('')} should be an object, got {document!r}")
    for key, kind in {**required, **optional}.items():
        if key not in document:
            if key in required:
                raise ValueError(f"{where.key(key)} is missing; refusing to load it")
        elif not isinstance(document[key], kind) or isinstance(document[key], bool):
            raise ValueError(
                f"{where.key(key)} has a value of the wrong type: {document[key]!r}"
            )
    unknown = sorted(set(document) - set(required) - set(optional) - set(extra))
    if unknown:
        raise ValueError(
            f"{where.key(unknown[0])} is not a key of a saved model; refusing to load it"
        )


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


def _decode_classes(document, where):
    dtype = document["classes_dtype"]
    try:
        dtype = np.dtype(dtype)
    except TypeError as exc:
        raise ValueError(f"{where.key('classes_dtype')} is not a dtype: {dtype!r}") from exc
    if dtype.kind not in _LABEL_KINDS:
        raise ValueError(f"{where.key('classes_dtype')} is not a dtype of labels: {dtype!r}")
    try:
        classes = np.asarray(document["classes"], dtype=dtype)
    except (TypeError, ValueError) as exc:
        raise ValueError(f"{where.key('classes')} does not hold labels of {dtype}") from exc
    if classes.ndim != 1 or len(classes) < 2 or len(np.unique(classes)) != len(classes):
        raise ValueError(f"{where.key('classes')} should list 2 or more distinct labels")
    return classes


def _tensor_groups(tensors, where):
    """``{group: {rest: tensor}}`` for tensor names ``"<group>.<rest>"``."""
    groups = {}
    for key, value in tensors.items():
        group, dot, rest = key.partition(".")
        if not dot or not rest:
            raise ValueError(f"{where.tensor(key)} is not a tensor of a saved model")
        groups.setdefault(group, {})[rest] = value
    return groups


def _check_state(expected, state, where, prefix, what):
    """Refuse ``state`` unless it has exactly the tensors of ``expected``, alike."""
    for key in expected:
        if key not in state:
            raise ValueError(
                f"{where.tensor(prefix + key)} is missing: the file does not hold the "
                f"weights of this {what}"
            )
    for key, value in state.items():
        if key not in expected:
            raise ValueError(f"{where.tensor(prefix + key)} is not a tensor of the {what}")
        want = expected[key]
        if value.shape != want.shape or value.dtype != want.dtype:
            raise ValueError(
                f"{where.tensor(prefix + key)} is {value.dtype} of shape "
                f"{tuple(value.shape)}; the {what} has {want.dtype} of shape "
                f"{tuple(want.shape)}"
            )


def _load_optimizer(optimizer, spec, tensors, where, name):
    """Give ``optimizer`` the state saved as ``spec`` (model.json) and ``tensors``."""
    key = f"optimizers.{name}"
    _check_keys(spec, {"param_groups": list, "state": dict}, {}, where.nested(key + ".", ""))
    params = [p for group in optimizer.param_groups for p in group["params"]]
    groups, indices = [], []
    for i, group in enumerate(spec["param_groups"]):
        here = where.key(f"{key}.param_groups.{i}")
        if (not isinstance(group, dict) or set(group) != {"params", "settings"}
                or _problem(group["params"], ListOf(Int(0))) is not None
                or not isinstance(group["settings"], dict)):
            raise ValueError(f"{here} is malformed; refusing to load it")
        settings = {k: _decode(v, f"{here}.{k}") for k, v in group["settings"].items()}
        groups.append({**settings, "params": list(group["params"])})
        indices.extend(group["params"])
    if indices != list(range(len(params))):
        raise ValueError(
            f"{where.key(key + '.param_groups')} lists parameters {indices}; the optimizer "
            f"has {len(params)}"
        )
    state = {}
    for tail, value in tensors.items():
        index, _, field = tail.partition(".")
        if not index.isdigit() or not field or int(index) >= len(params):
            raise ValueError(f"{where.tensor(tail)} is not a tensor of the {name}'s state")
        if value.ndim and value.shape != params[int(index)].shape:
            raise ValueError(
                f"{where.tensor(tail)} has shape {tuple(value.shape)}; its parameter has "
                f"{tuple(params[int(index)].shape)}"
            )
        state.setdefault(int(index), {})[field] = value
    for index, entries in spec["state"].items():
        if not index.isdigit() or int(index) >= len(params) or not isinstance(entries, dict):
            raise ValueError(f"{where.key(f'{key}.state.{index}')} is malformed")
        for field, value in entries.items():
            state.setdefault(int(index), {})[field] = _decode(
                value, where.key(f"{key}.state.{index}.{field}")
            )
    try:
        optimizer.load_state_dict({"state": state, "param_groups": groups})
    except (ValueError, KeyError, TypeError, RuntimeError) as exc:
        raise ValueError(f"{where.key(key)} does not fit the model's {name} ({exc})") from exc


def _restore_defense(document, tensors, where, device):
    _check_keys(document, _DEFENSE_KEYS, {}, where, _DOCUMENT_KEYS)
    cls = _defense_class(document["class"], where)
    params = _decode_params(cls, document["params"], where)
    if device is not None:
        params["device"] = device
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


def _restore_bank(document, tensors, where, device):
    from ..model_selection import ReferenceModels

    _check_keys(document, _BANK_KEYS, {}, where, _DOCUMENT_KEYS)
    spec = document["estimator"]
    here = where.nested("estimator.", "")
    _check_keys(spec, {"class": str, "params": dict, "not_saved": list}, {}, here)
    estimator_class = _defense_class(spec["class"], here)
    estimator_params = _decode_params(estimator_class, spec["params"], here)
    if device is not None:
        estimator_params["device"] = device
    estimator = estimator_class(**estimator_params)
    known = set(inspect.signature(ReferenceModels).parameters) - {"estimator"}
    params = {}
    for key, value in document["params"].items():
        if key not in known:
            raise ValueError(f"{where.key('params.' + key)} is not a parameter of "
                             f"ReferenceModels; refusing to load it")
        params[key] = _decode(value, where.key(f"params.{key}"))
    bank = ReferenceModels(estimator, **params)

    tensors = dict(tensors)
    if _MASK_KEY not in tensors:
        raise ValueError(f"{where.tensor(_MASK_KEY)} is missing; refusing to load it")
    mask = tensors.pop(_MASK_KEY)
    models = document["models"]
    by_model = {}
    for key, value in tensors.items():
        k, _, name = key[len(_BANK_PREFIX):].partition(".")
        if not key.startswith(_BANK_PREFIX) or not k.isdigit() or int(k) >= len(models):
            raise ValueError(f"{where.tensor(key)} is not a tensor of a saved bank")
        by_model.setdefault(int(k), {})[name] = value
    bank.estimators_ = [
        _restore_defense(model, by_model.get(k, {}),
                         where.nested(f"models.{k}.", f"{_BANK_PREFIX}{k}."), device)
        for k, model in enumerate(models)
    ]
    if mask.ndim != 2 or mask.shape[1] != len(models):
        raise ValueError(f"{where.tensor(_MASK_KEY)} should have one column per model")
    bank.in_mask_ = mask.numpy().astype(bool)
    fitted = document["fitted"]
    for key in sorted(set(fitted) | set(_BANK_FITTED)):
        if key not in _BANK_FITTED:
            raise ValueError(f"{where.key('fitted.' + key)} is not a fitted attribute of "
                             f"ReferenceModels; refusing to load it")
        if key not in fitted:
            raise ValueError(f"{where.key('fitted.' + key)} is missing; refusing to load it")
        value = _decode(fitted[key], where.key(f"fitted.{key}"))
        if _problem(value, _BANK_FITTED[key]) is not None:
            raise ValueError(f"{where.key('fitted.' + key)} has a value of the wrong type")
        setattr(bank, key, value)
    bank.seeds_ = np.asarray(bank.seeds_, dtype=np.int64)
    if len(bank.seeds_) != len(models):
        raise ValueError(f"{where.key('fitted.seeds_')} should hold one seed per model")
    bank.input_shape_ = tuple(bank.input_shape_)
    bank.classes_ = _decode_classes(document, where)
    return bank
