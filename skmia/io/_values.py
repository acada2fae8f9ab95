"""The values of ``model.json``: allow-listed encoding of parameters, plain JSON data,
optimizer state, and where a problem is (the file and the key) for the errors.

Nothing here is executed or unpickled: a class or function comes back only when it is
one of the allowed factories (skmia's networks, torch modules and optimizers).
"""

import hashlib
import importlib
import inspect
import json

import numpy as np
import torch

from .._rundir import Int, ListOf, _problem

# modules (classes or factory functions), criteria and optimisers come from these only
_ALLOWED_FACTORY_PREFIXES = ("skmia.nn.", "torch.nn.", "torch.optim.")


_LABEL_KINDS = "biufU"  # bool, int, unsigned, float, str: labels JSON can hold


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
