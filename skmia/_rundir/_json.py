"""JSON read from a run directory, checked: each value against its type, every string
free of lone surrogates, and errors that name the file and the key; and text escaped
for printing."""

import json


class Int:
    """An integer (never a bool or a float) in ``[low, high]``."""

    def __init__(self, low=None, high=None):
        self.low, self.high = low, high

    def problem(self, value):
        if not isinstance(value, int) or isinstance(value, bool):
            return "should be an integer"
        if (self.low is not None and value < self.low) or (
                self.high is not None and value > self.high):
            return f"should be an integer in [{self.low}, {self.high}]"
        return None


class Opt:
    """``None`` or a value of ``spec``."""

    def __init__(self, spec):
        self.spec = spec


class ListOf:
    """A JSON array whose items are of ``spec``."""

    def __init__(self, spec):
        self.spec = spec


class MapOf:
    """A JSON object of any keys whose values are of ``spec``."""

    def __init__(self, spec):
        self.spec = spec


class OneOf:
    """One of the given values."""

    def __init__(self, *values):
        self.values = values


_NAMES = {str: "a string", bool: "true or false", float: "a number", dict: "an object",
          list: "an array", object: "any value"}


def _problem(value, spec):
    """Why ``value`` is not of ``spec`` (a one-level check); None when it is."""
    if spec is object:
        return None
    if isinstance(spec, Int):
        return spec.problem(value)
    if isinstance(spec, Opt):
        return None if value is None else _problem(value, spec.spec)
    if isinstance(spec, OneOf):
        return None if value in spec.values and not isinstance(value, bool) else (
            f"should be one of {', '.join(map(repr, spec.values))}")
    if isinstance(spec, ListOf) or spec is list:
        return None if isinstance(value, (list, tuple)) else "should be an array"
    if isinstance(spec, (MapOf, dict)) or spec is dict:
        return None if isinstance(value, dict) else "should be an object"
    if spec is float:
        ok = isinstance(value, (int, float)) and not isinstance(value, bool)
        return None if ok else "should be a number"
    if spec is str:
        return None if isinstance(value, str) else "should be a string"
    if spec is bool:
        return None if isinstance(value, bool) else "should be true or false"
    raise TypeError(f"unknown JSON spec {spec!r}")


def check_json(value, spec, where, key=""):
    """Check ``value`` (parsed JSON) against ``spec``; one ``ValueError`` naming
    ``where`` (the file) and the key of the first value that does not fit.

    ``spec`` is a type (``str``, ``float``: any number, ``bool``, ``dict``,
    ``list``, ``object``: anything), :class:`Int`, :class:`Opt`, :class:`OneOf`,
    :class:`ListOf`, :class:`MapOf`, or a dict of required keys -> spec (other keys are
    allowed). Returns ``value``.
    """
    problem = _problem(value, spec)
    if problem is not None:
        shown = repr(value)
        shown = shown if len(shown) <= 60 else shown[:57] + "..."
        raise ValueError(f"{str(where)!r}: key {key or '(top level)'!r} {problem}, got "
                         f"{escape_text(shown)} ({type(value).__name__})")
    inner = spec.spec if isinstance(spec, Opt) else spec
    if value is None:
        return value
    if isinstance(inner, dict):
        for name, sub in inner.items():
            if name not in value:
                raise ValueError(f"{str(where)!r} lacks the key {_join(key, name)!r}")
            check_json(value[name], sub, where, _join(key, name))
    elif isinstance(inner, MapOf):
        for name, item in value.items():
            check_json(item, inner.spec, where, _join(key, name))
    elif isinstance(inner, ListOf):
        for i, item in enumerate(value):
            check_json(item, inner.spec, where, _join(key, str(i)))
    return value


def _join(key, name):
    return f"{key}.{name}" if key else str(name)


def _no_surrogates(value, where, key=""):
    """Refuse strings (keys or values) holding a lone surrogate (``"\\ud800"`` in JSON)."""
    if isinstance(value, str):
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            raise ValueError(f"{str(where)!r}: key {key or '(top level)'!r} holds a lone "
                             "surrogate, which is not text") from None
    elif isinstance(value, list):
        for i, item in enumerate(value):
            _no_surrogates(item, where, _join(key, str(i)))
    elif isinstance(value, dict):
        for name, item in value.items():
            _no_surrogates(name, where, key)
            _no_surrogates(item, where, _join(key, name))


def parse_json(data, where, spec=object):
    """Parse the bytes ``data`` of file ``where`` as UTF-8 JSON of ``spec``."""
    try:
        text = data.decode("utf-8")
    except UnicodeDecodeError as exc:
        raise ValueError(f"{str(where)!r} is not UTF-8 text (byte {exc.start})") from None
    try:
        document = json.loads(text)
    except ValueError as exc:
        raise ValueError(f"{str(where)!r} is not valid JSON ({exc})") from None
    _no_surrogates(document, where)
    return check_json(document, spec, where)


def escape_text(text):
    """``text`` with control and other unprintable characters as ``\\x..`` escapes, so that
    no printed value can move the cursor, retitle or clear a terminal."""
    text = str(text)
    if text.isprintable():
        return text
    return "".join(c if c.isprintable() else
                   (f"\\x{ord(c):02x}" if ord(c) < 0x100 else f"\\u{ord(c):04x}")
                   for c in text)
