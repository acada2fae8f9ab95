"""Atomic file writes: a file either has its complete new content or is untouched.

The implementation lives in :mod:`skmia._rundir` (a leaf module), which reads and
writes run directories with it; this module keeps the names for the rest of skmia.
"""

from ._rundir import atomic_write_bytes, atomic_write_json, atomic_write_text, read_json

__all__ = ["atomic_write_bytes", "atomic_write_text", "atomic_write_json", "read_json"]
