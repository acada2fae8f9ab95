"""A run directory's lock: one process at a time trains or attacks it.

The lock itself (``<run>/.lock``, its stale cases, its messages) is
:meth:`skmia._rundir.RunDirectory.lock`; these are the experiment's names for it. A
second process refuses with :class:`RunLockedError`, naming the holder. A lock whose
process is gone, or a ``.lock`` that is not a regular file, is stale and taken over
(a line on stderr says so); a lock from another host is respected. Within one process
the lock is re-entrant, so that :func:`skmia.experiment.run` may hold it around
:func:`skmia.experiment.attack`, which takes it too.
"""

from .._rundir import LOCK as LOCK_FILE
from .._rundir import RunLockedError, hold_locks

__all__ = ["LOCK_FILE", "RunLockedError", "run_lock", "run_locks"]


def run_lock(folder, purpose="training"):
    """Hold ``folder``'s lock for a ``with`` block (creating ``folder``).

    Parameters
    ----------
    folder : path-like
        The run directory.
    purpose : str, default="training"
        What the lock is for, recorded in it (``"training"``, ``"attack"``).

    Raises
    ------
    RunLockedError
        A live process holds the lock; the message names its pid, host and start time.
    """
    return hold_locks([folder], purpose)


def run_locks(folders, purpose="training"):
    """Hold the locks of every folder of ``folders`` for a ``with`` block, or of none."""
    return hold_locks(folders, purpose)
