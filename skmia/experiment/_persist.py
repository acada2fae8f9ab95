"""Saving and loading fitted defenses (and banks of them) without pickle: safetensors + JSON.

``model.safetensors`` holds the network's tensors (and, for early stopping, each
snapshot's, under ``snapshot.<epoch>.``, and ``train_indices_``); ``model.json`` holds
the class, the constructor parameters, the fitted attributes and two digests: of the
weights file and of the JSON itself. Loading rebuilds the estimator from an allow-list
of classes, so no saved byte is ever executed or unpickled; a file saved by another
skmia version or edited by hand is refused.
"""

import hashlib
import importlib
import inspect
import json
from pathlib import Path

import numpy as np
import torch
from safetensors.torch import load_file, save
from sklearn.preprocessing import LabelEncoder

from .. import __version__
from .._io import atomic_write_bytes, atomic_write_json, read_json

__all__ = ["save_estimator", "load_estimator", "MODEL_JSON", "MODEL_WEIGHTS"]

MODEL_JSON = "model.json"
MODEL_WEIGHTS = "model.safetensors"

# modules (classes or factory functions), criteria and optimisers come from these only
_ALLOWED_FACTORY_PREFIXES = ("skmia.nn.", "torch.nn.", "torch.optim.")
# fitted attributes that describe skorch's machinery, not the model
_SKORCH_STATE = {
    "history_", "initialized_", "module_", "criterion_", "optimizer_", "callbacks_",
    "virtual_params_", "prefixes_", "cuda_dependent_attributes_", "label_encoder_",
    "snapshots_", "teacher_", "train_indices_", "init_context_",
}
_SNAPSHOT_PREFIX = "snapshot."
_INDICES_KEY = "fitted.train_indices_"
_BANK_PREFIX = "bank."
_MASK_KEY = "in_mask_"
# fitted attributes of a bank kept in model.json (seeds_, classes_ and the masks aside)
_BANK_FITTED = ("base_seed_", "n_features_in_", "input_shape_", "pool_digest_")


def _defense_classes():
    from .. import defenses

    return {
        name: getattr(defenses, name)
        for name in defenses.__all__
        if isinstance(getattr(defenses, name), type) and name.endswith("Classifier")
    }


def _encode(value):
    """JSON form of a constructor parameter; None when it cannot be saved."""
    if value is None or isinstance(value, (bool, int, float, str)):
        return {"value": value}
    if isinstance(value, (np.integer, np.floating)):
        return {"value": value.item()}
    if isinstance(value, tuple) and all(_encode(v) is not None for v in value):
        return {"tuple": [_encode(v) for v in value]}
    if isinstance(value, list) and all(_encode(v) is not None for v in value):
        return {"list": [_encode(v) for v in value]}
    if isinstance(value, type) or inspect.isfunction(value):  # e.g. MLP or resnet20
        path = f"{value.__module__}.{value.__qualname__}"
        if path.startswith(_ALLOWED_FACTORY_PREFIXES):
            return {"class": path}
    return None


def _decode(encoded, where):
    if not isinstance(encoded, dict) or len(encoded) != 1:
        raise ValueError(f"{where}: malformed parameter {encoded!r}")
    (kind, payload), = encoded.items()
    if kind == "value":
        return payload
    if kind == "tuple":
        return tuple(_decode(v, where) for v in payload)
    if kind == "list":
        return [_decode(v, where) for v in payload]
    if kind == "class":
        if not isinstance(payload, str) or not payload.startswith(_ALLOWED_FACTORY_PREFIXES):
            raise ValueError(f"{where}: class {payload!r} is not allowed")
        module_name, _, attr = payload.rpartition(".")
        obj = getattr(importlib.import_module(module_name), attr, None)
        if not (isinstance(obj, type) or inspect.isfunction(obj)):
            raise ValueError(f"{where}: {payload!r} is not a class or function")
        return obj
    raise ValueError(f"{where}: unknown parameter kind {kind!r}")


def _digest(document):
    body = {k: v for k, v in document.items() if k != "digest"}
    return hashlib.sha256(json.dumps(body, sort_keys=True).encode()).hexdigest()


def _defense_state(clf):
    """``(document, tensors)`` of a fitted skmia defense: what ``model.json`` and
    ``model.safetensors`` hold, without the digests."""
    classes = _defense_classes()
    name = type(clf).__name__
    if classes.get(name) is not type(clf):
        raise TypeError(f"only skmia defenses can be saved, got {name}")
    tensors = {k: v.detach().to("cpu").contiguous() for k, v in clf.module_.state_dict().items()}
    for epoch, state in getattr(clf, "snapshots_", {}).items():
        for key, value in state.items():
            tensors[f"{_SNAPSHOT_PREFIX}{epoch}.{key}"] = value.contiguous()
    if hasattr(clf, "train_indices_"):
        tensors[_INDICES_KEY] = torch.as_tensor(np.asarray(clf.train_indices_))
    params, not_saved = _params_document(clf)
    fitted = {}
    for key, value in vars(clf).items():
        if not key.endswith("_") or key.startswith("_") or key in _SKORCH_STATE:
            continue
        encoded = _encode(value)
        if encoded is not None:
            fitted[key] = encoded
    classes_ = clf.classes_
    document = {
        "class": name,
        "params": params,
        "not_saved": not_saved,
        "fitted": fitted,
        "classes": classes_.tolist(),
        "classes_dtype": classes_.dtype.str,
        "snapshots": sorted(int(e) for e in getattr(clf, "snapshots_", {})),
    }
    return document, tensors


def _params_document(estimator):
    """``(params, not_saved)``: the constructor parameters that can be stored as data."""
    params, not_saved = {}, []
    for key, value in estimator.get_params(deep=False).items():
        if key.startswith("_"):  # skorch's bookkeeping, set by __init__ itself
            continue
        encoded = _encode(value)
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
        document, model_tensors = _defense_state(model)
        models.append(document)
        tensors.update({f"{_BANK_PREFIX}{k}.{key}": v for key, v in model_tensors.items()})
    fitted = {key: _encode(getattr(bank, key)) for key in _BANK_FITTED}
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


def save_estimator(clf, folder):
    """Save a fitted skmia defense, or a bank of them, to ``folder``.

    Writes ``model.safetensors`` (tensors) and ``model.json`` (everything else, with a
    digest of both). A :class:`~skmia.model_selection.ReferenceModels` bank is saved
    whole: each model's weights under ``bank.<k>.``, the masks as ``in_mask_``.

    Parameters that cannot be stored as data (a teacher estimator, callbacks, a
    validation set) are recorded by name in ``"not_saved"`` and come back as their
    defaults; they are not needed for prediction.
    """
    from ..model_selection import ReferenceModels

    folder = Path(folder)
    if isinstance(clf, ReferenceModels):
        document, tensors = _bank_state(clf)
    else:
        document, tensors = _defense_state(clf)
    weights = save(tensors)
    document = {"skmia_version": __version__, **document,
                "weights_sha256": hashlib.sha256(weights).hexdigest()}
    document["digest"] = _digest(document)
    atomic_write_bytes(folder / MODEL_WEIGHTS, weights)
    atomic_write_json(folder / MODEL_JSON, document)


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
    folder = Path(folder)
    json_path, weights_path = folder / MODEL_JSON, folder / MODEL_WEIGHTS
    if not json_path.is_file() or not weights_path.is_file():
        raise FileNotFoundError(
            f"{str(folder)!r} holds no saved model (expected {MODEL_JSON} and {MODEL_WEIGHTS})"
        )
    document = read_json(json_path)
    where = str(json_path)
    if not isinstance(document, dict) or document.get("digest") != _digest(document):
        raise ValueError(
            f"{where!r} has been modified or is corrupt (its digest does not match its "
            f"content); refusing to load it. Re-run to recreate it."
        )
    if document.get("skmia_version") != __version__:
        raise ValueError(
            f"{where!r} was saved by skmia {document.get('skmia_version')}; this is skmia "
            f"{__version__}. Re-run the training with this version."
        )
    weights = weights_path.read_bytes()
    if hashlib.sha256(weights).hexdigest() != document["weights_sha256"]:
        raise ValueError(
            f"{str(weights_path)!r} does not match the digest in {MODEL_JSON}: the weights "
            f"were modified or truncated. Re-run to recreate them."
        )
    tensors = load_file(weights_path)
    if document["class"] == "ReferenceModels":
        return _restore_bank(document, tensors, where, device)
    return _restore_defense(document, tensors, where, device)


def _defense_class(name, where):
    cls = _defense_classes().get(name)
    if cls is None:
        raise ValueError(f"{where}: {name!r} is not a skmia defense")
    return cls


def _restore_defense(document, tensors, where, device):
    cls = _defense_class(document["class"], where)
    params = {k: _decode(v, where) for k, v in document["params"].items()}
    if device is not None:
        params["device"] = device
    clf = cls(**params)
    for key, value in document["fitted"].items():
        setattr(clf, key, _decode(value, where))
    encoder = LabelEncoder()
    encoder.classes_ = np.asarray(document["classes"], dtype=np.dtype(document["classes_dtype"]))
    clf.label_encoder_ = encoder

    tensors = dict(tensors)
    indices = tensors.pop(_INDICES_KEY, None)
    if indices is not None:
        clf.train_indices_ = indices.numpy()
    snapshots = {}
    for key in [k for k in tensors if k.startswith(_SNAPSHOT_PREFIX)]:
        epoch, _, param = key[len(_SNAPSHOT_PREFIX):].partition(".")
        snapshots.setdefault(int(epoch), {})[param] = tensors.pop(key)
    clf.initialize()
    clf.module_.load_state_dict(tensors)
    if document["snapshots"] or hasattr(clf, "snapshots_"):
        clf.snapshots_ = dict(sorted(snapshots.items()))
    return clf


def _restore_bank(document, tensors, where, device):
    from ..model_selection import ReferenceModels

    spec = document["estimator"]
    estimator_params = {k: _decode(v, where) for k, v in spec["params"].items()}
    if device is not None:
        estimator_params["device"] = device
    estimator = _defense_class(spec["class"], where)(**estimator_params)
    params = {k: _decode(v, where) for k, v in document["params"].items()}
    bank = ReferenceModels(estimator, **params)
    by_model = {}
    for key, value in tensors.items():
        if key.startswith(_BANK_PREFIX):
            k, _, name = key[len(_BANK_PREFIX):].partition(".")
            by_model.setdefault(int(k), {})[name] = value
    bank.estimators_ = [
        _restore_defense(model, by_model.get(k, {}), f"{where} (model {k})", device)
        for k, model in enumerate(document["models"])
    ]
    bank.in_mask_ = tensors[_MASK_KEY].numpy().astype(bool)
    for key, value in document["fitted"].items():
        setattr(bank, key, _decode(value, where))
    bank.seeds_ = np.asarray(bank.seeds_, dtype=np.int64)
    bank.input_shape_ = tuple(bank.input_shape_)
    bank.classes_ = np.asarray(document["classes"], dtype=np.dtype(document["classes_dtype"]))
    return bank
