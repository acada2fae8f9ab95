"""skmia's thread policy: how many threads torch and the native pools (OpenMP, BLAS) use
while skmia works, in one place.

The ``skmia`` command trains on one torch thread per worker (:mod:`skmia._parallel`).
The Python API follows the same policy: inside a defense's ``fit``, ``partial_fit``,
:meth:`~skmia.model_selection.ReferenceModels.fit` and the audits, torch runs on
:func:`get_threads` threads and the native pools that scikit-learn and numpy use
(OpenMP, BLAS; through ``threadpoolctl``) are limited to as many. The caller's settings
are restored when the call returns. Threads that wait for a core spin: on a machine where
other work holds the cores, torch's default (a thread per core) made the README's quick
start about 100x slower than on an idle machine, and one thread keeps it near the cost
of sharing the cores (``benchmarks/thread_policy.py``).

- ``skmia.set_threads(n)`` changes the policy for the process, ``skmia.set_threads(None)``
  leaves torch's and the pools' own settings alone (skmia then sets nothing);
- ``with skmia.thread_limit(n):`` changes it for a block;
- ``n`` is a positive int, or ``-1`` for every core this process may run on
  (:func:`n_cores`, which respects CPU affinity: ``taskset``, containers' cpusets).
"""

import contextlib
import functools
import threading

from ._parallel import n_cores

__all__ = ["get_threads", "set_threads", "thread_limit", "limited_threads",
           "with_thread_policy", "n_cores"]

_POLICY = {"threads": 1}


def _checked(threads):
    if threads is None:
        return None
    if isinstance(threads, bool) or not isinstance(threads, int) or not (
            threads >= 1 or threads == -1):
        raise ValueError(f"threads must be a positive integer, -1 (every core) or None "
                         f"(leave the settings alone), got {threads!r}")
    return threads


def get_threads():
    """The threads skmia gives torch and the native pools while it works.

    Returns
    -------
    threads : int or None
        A count (``-1`` resolved to the cores this process may use), or None when skmia
        leaves the settings alone.
    """
    threads = _POLICY["threads"]
    return n_cores() if threads == -1 else threads


def set_threads(threads=1):
    """Set the thread policy of skmia's fits and audits for this process.

    Parameters
    ----------
    threads : int or None, default=1
        Torch threads and native-pool threads inside skmia's calls; ``-1`` for every
        core this process may use; None to leave torch's and the pools' settings as
        the caller has them.

    Returns
    -------
    previous : int or None
        The policy before the call (as given then), to restore it.

    Examples
    --------
    >>> import skmia
    >>> previous = skmia.set_threads(2)
    >>> skmia.get_threads()
    2
    >>> _ = skmia.set_threads(previous)
    """
    previous = _POLICY["threads"]
    _POLICY["threads"] = _checked(threads)
    return previous


@contextlib.contextmanager
def thread_limit(threads):
    """The thread policy set to ``threads`` for the block (see :func:`set_threads`).

    Examples
    --------
    >>> import skmia
    >>> with skmia.thread_limit(None):
    ...     print(skmia.get_threads())
    None
    """
    previous = set_threads(threads)
    try:
        yield
    finally:
        _POLICY["threads"] = previous


_LOCK = threading.Lock()
_DEPTH = [0, None]  # calls inside limited_threads in this process, the caller's count


@contextlib.contextmanager
def limited_threads():
    """Run the block under the policy: torch and the native pools on :func:`get_threads`
    threads, the caller's settings restored after. Nested blocks apply it once; a block
    inside that asks for threads itself (:func:`skmia._parallel.torch_threads`, as a
    bank of reference models with ``n_jobs`` does) gets what it asks for."""
    import torch
    from threadpoolctl import threadpool_limits

    threads = get_threads()
    with _LOCK:
        outermost = _DEPTH[0] == 0
        _DEPTH[0] += 1
        if outermost and threads is not None:
            _DEPTH[1] = torch.get_num_threads()
            torch.set_num_threads(threads)
    try:
        if outermost and threads is not None:
            with threadpool_limits(limits=threads):
                yield
        else:
            yield
    finally:
        with _LOCK:
            _DEPTH[0] -= 1
            if outermost and threads is not None:
                torch.set_num_threads(_DEPTH[1])


def with_thread_policy(function):
    """``function`` run inside :func:`limited_threads` (for fit and audit entry points)."""

    @functools.wraps(function)
    def wrapper(*args, **kwargs):
        with limited_threads():
            return function(*args, **kwargs)

    return wrapper
