"""Independent fits at the same time, through joblib, one torch thread each (DESIGN §7).

Every place that trains several independent models (the bank of reference models,
target and shadow of a run, the benchmarks) calls :func:`parallel_map`, so that
``with joblib.parallel_config(backend="dask"):`` moves the work onto a Dask cluster
with no other change. Each call of the function runs with one torch thread by
default, in sequential runs too: a model trained on one thread gets the same weights
whichever worker, process or machine trains it, so results never depend on ``n_jobs``
or on the backend (with two threads, matrix products may add in another order).
``threads=N`` trades that for speed where a machine has cores to spare.
"""

import contextlib
import threading

from joblib import Parallel, delayed

__all__ = ["check_threads", "torch_threads", "parallel_map"]

_LOCK = threading.Lock()
_DEPTH = [0, None]  # tasks inside torch_threads in this process, saved thread count


@contextlib.contextmanager
def torch_threads(threads=1):
    """Run the block with ``torch.set_num_threads(threads)``; restore the count afterwards.

    ``threads=None`` leaves torch's setting as it is. Safe under joblib's threading
    backend: the count is saved by the first task to enter and restored by the last to
    leave.
    """
    import torch

    if threads is None:
        yield
        return
    check_threads(threads)
    with _LOCK:
        if _DEPTH[0] == 0:
            _DEPTH[1] = torch.get_num_threads()
            torch.set_num_threads(threads)
        _DEPTH[0] += 1
    try:
        yield
    finally:
        with _LOCK:
            _DEPTH[0] -= 1
            if _DEPTH[0] == 0:
                torch.set_num_threads(_DEPTH[1])


def check_threads(threads):
    """``threads`` as a positive int, or a ValueError that names it."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    return threads


def _call_with_threads(function, args, threads):
    with torch_threads(threads):
        return function(*args)


def _warn_if_threads(n_jobs):
    """Threads of one process share torch's global random generator, which the defenses
    seed for each fit: fits in threads at once would draw from each other's stream."""
    import warnings

    from joblib.parallel import get_active_backend

    backend, config_n_jobs = get_active_backend()
    if type(backend).__name__ != "ThreadingBackend":
        return
    if backend.effective_n_jobs(n_jobs if n_jobs is not None else config_n_jobs) != 1:
        warnings.warn(
            "joblib's threading backend trains models in threads of one process, which "
            "share torch's random generator: the results depend on thread scheduling. Use "
            "a process-based backend (loky, the default; Dask workers with one thread).",
            UserWarning,
            stacklevel=3,
        )


def parallel_map(function, tasks, *, n_jobs=None, threads=1, verbose=0, desc=None):
    """``[function(*args) for args in tasks]``, the calls run by joblib.

    Parameters
    ----------
    function : callable
        Picklable (a module-level function), as joblib's process backends need.
    tasks : iterable of tuple
        The positional arguments of each call.
    n_jobs : int or None, default=None
        Calls run at once, as :class:`joblib.Parallel` reads it (None: 1, unless a
        ``joblib.parallel_config`` says otherwise; -1: all cores).
    threads : int, default=1
        Torch threads of each call. With one, the results do not depend on ``n_jobs``,
        the backend or the machine's core count.
    verbose : int, default=0
        A progress bar over calls when > 0.
    desc : str, default=None
        The progress bar's label.

    Returns
    -------
    results : list
        One result per task, in the order of ``tasks``.
    """
    from tqdm.auto import tqdm

    _warn_if_threads(n_jobs)
    check_threads(threads)
    tasks = list(tasks)
    calls = (delayed(_call_with_threads)(function, tuple(args), threads) for args in tasks)
    results = []
    with tqdm(total=len(tasks), desc=desc, disable=not verbose, leave=True) as bar:
        for result in Parallel(n_jobs=n_jobs, return_as="generator")(calls):
            results.append(result)
            bar.update(1)
    return results
