"""Names a package imports on first use (PEP 562), so that importing it stays light."""

import importlib
import sys

__all__ = ["lazy_names"]


def lazy_names(package, where):
    """``(__getattr__, __dir__)`` for ``package``: ``where`` maps a name to the private
    module (relative to ``package``) that defines it; the name is imported on first use
    and kept in the package's namespace."""
    namespace = sys.modules[package].__dict__

    def __getattr__(name):
        if name in where:
            value = getattr(importlib.import_module(f".{where[name]}", package), name)
            namespace[name] = value
            return value
        raise AttributeError(f"module {package!r} has no attribute {name!r}")

    def __dir__():
        return sorted({*namespace, *namespace.get("__all__", ())})

    return __getattr__, __dir__
