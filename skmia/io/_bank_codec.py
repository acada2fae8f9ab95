"""A :class:`~skmia.model_selection.ReferenceModels` bank in one pair of files: its
parameters and fitted attributes, and each model as :mod:`._codec` saves a defense
(without optimizer state) under ``bank.<k>.``, the masks as ``in_mask_``."""

import inspect

import numpy as np
import torch

from .._rundir import Int, ListOf, _problem
from ._codec import (
    _DOCUMENT_KEYS,
    _IN_A_BANK,
    _decode_params,
    _defense_class,
    _defense_classes,
    _defense_state,
    _params_document,
    _restore_defense,
)
from ._values import _check_keys, _decode, _decode_classes, _encode

__all__ = ["bank_state", "restore_bank"]

_BANK_PREFIX = "bank."
_MASK_KEY = "in_mask_"
# fitted attributes of a bank kept in model.json (classes_ and the masks aside)
_BANK_FITTED = {
    "base_seed_": Int(), "n_features_in_": Int(0), "input_shape_": ListOf(Int(0)),
    "pool_digest_": str, "seeds_": ListOf(Int()),
}
_BANK_KEYS = {
    "class": str, "params": dict, "estimator": dict, "fitted": dict, "classes": list,
    "classes_dtype": str, "models": list,
}


def bank_state(bank):
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


def restore_bank(document, tensors, where, device):
    """The fitted :class:`ReferenceModels` of ``bank_state``'s ``(document, tensors)``."""
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
