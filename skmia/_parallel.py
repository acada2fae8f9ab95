"""Independent fits at the same time, through joblib, one torch thread each (DESIGN §7).

Every place that trains several independent models (the bank of reference models,
target and shadow of a run, the benchmarks) calls :func:`parallel_map`, so that
``with joblib.parallel_config(backend="dask"):`` moves the work onto a Dask cluster
with no other change. Each call of the function runs with one torch thread by
default, in sequential runs too: a model trained on one thread gets the same weights
whichever worker, process or machine trains it, so results never depend on ``n_jobs``
or on the backend (with two threads, matrix products may add in another order).
``threads=N`` trades that for speed where a machine has cores to spare.

No cold start: with ``only_if_it_pays=True`` (a bank's models), worker processes (each
importing torch, seconds apiece) are started only where the work pays for them. With
joblib's default backend and no workers started yet, the first two calls run here and
the second is timed (the first of a process pays one-time costs, such as the import of
``torch._dynamo`` by its first optimizer); the rest go to workers only when the time
they save is more than starting the workers costs (:data:`WORKER_START_SECONDS`).
Workers are capped at the number of calls, and loky keeps them for the next
:func:`parallel_map` of the same size in the process (the rounds of one command). Asking
for more workers or threads than the machine has cores gets a warning.

``n_jobs`` is read in one place, :func:`effective_jobs`: as joblib reads it (None: 1, or
the ``joblib.parallel_config``'s; -1: all cores; -k: all cores but k - 1), where "all
cores" are those this process may run on (:func:`n_cores`: CPU affinity, such as
``taskset`` or a container's cpuset, not the machine's count); under a backend that is
not a local pool (Dask), that backend says what it means (its workers' threads).

Warnings: the calls' warnings, in workers and here, are raised again in the caller
under their own module and category, each kind (the text up to its numbers: each
model's ε) once until the warning filters change, as Python's default filter shows a
warning once per place: a bank of 64 models that each warn shows one warning.
"""

import contextlib
import math
import os
import re
import sys
import threading
import time
import warnings

from joblib import Parallel, delayed

__all__ = ["check_threads", "torch_threads", "parallel_map", "bank_threads", "n_cores",
           "effective_jobs", "WORKER_START_SECONDS"]

#: what starting worker processes costs, one per core at once: each imports torch and
#: skmia and makes a first fit, then runs its first calls slower than warm ones; a little
#: above the start measured on the 2-core machine (benchmarks/docs/reference_bank.md)
WORKER_START_SECONDS = 12.0
_STARTED = set()  # worker counts of loky pools started by parallel_map in this process

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
    check_threads(threads, warn=False)  # warned once by whoever asked for them
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


def check_threads(threads, *, warn=True):
    """``threads`` as a positive int, or a ValueError that names it; a warning (unless
    ``warn=False``) when it is more than the machine's cores."""
    if isinstance(threads, bool) or not isinstance(threads, int) or threads < 1:
        raise ValueError(f"threads must be a positive integer, got {threads!r}")
    if warn:
        _warn_above_cores(threads, f"threads={threads} torch threads")
    return threads


def n_cores():
    """Cores this process may run on."""
    if hasattr(os, "sched_getaffinity"):
        return len(os.sched_getaffinity(0))
    return os.cpu_count() or 1


#: joblib's backends that run on this machine's cores (a pool of processes or threads)
_LOCAL_POOLS = ("LokyBackend", "MultiprocessingBackend", "ThreadingBackend")


def effective_jobs(n_jobs):
    """The workers ``n_jobs`` asks for: the one reading of ``n_jobs`` in skmia.

    Parameters
    ----------
    n_jobs : int or None
        As joblib reads it: None is the active ``joblib.parallel_config``'s ``n_jobs``,
        else 1; a positive count is itself; -1 is every core this process may run on
        (:func:`n_cores`, which respects CPU affinity: ``taskset``, a container's cpuset,
        where ``os.cpu_count()`` counts the whole machine); -k is all of them but k - 1
        (at least 1). Under a backend that is not a pool on this machine (Dask, or
        joblib's sequential one) the backend reads it (Dask: -1 is the cluster's threads).

    Returns
    -------
    n_workers : int
        At least 1.
    """
    from joblib.parallel import get_active_backend

    backend, configured = get_active_backend()
    if n_jobs is None:
        n_jobs = 1 if configured is None else configured
    if isinstance(n_jobs, bool) or not isinstance(n_jobs, int) or n_jobs == 0:
        raise ValueError(f"n_jobs must be a nonzero integer or None, got {n_jobs!r}")
    if type(backend).__name__ not in _LOCAL_POOLS:
        return max(1, backend.effective_n_jobs(n_jobs))
    return max(1, n_cores() + 1 + n_jobs) if n_jobs < 0 else n_jobs


def _warn_above_cores(n, what):
    cores = n_cores()
    if n > cores:
        warnings.warn(
            f"{what} on a machine with {cores} core{'s' * (cores != 1)}: they take turns "
            f"on the cores and gain nothing; ask for at most {cores}.",
            UserWarning,
            stacklevel=4,
        )


def bank_threads(n_jobs):
    """Torch threads of a vectorised bank of reference models asked ``n_jobs`` cores
    (None: 1; -1: all): that many, capped at the machine's cores (with a warning)."""
    wanted = effective_jobs(n_jobs)
    _warn_above_cores(wanted, f"n_jobs={n_jobs} asks for {wanted} cores")
    return max(1, min(wanted, n_cores()))


def _workers(n_jobs, n_tasks, threads):
    """Workers for ``n_tasks`` calls: ``n_jobs`` as joblib reads it, capped at the calls;
    a warning when they (times ``threads``) ask for more than the machine's cores."""
    from joblib.parallel import get_active_backend

    workers = max(1, min(effective_jobs(n_jobs), n_tasks))
    local = type(get_active_backend()[0]).__name__ in (*_LOCAL_POOLS, "SequentialBackend")
    if local and workers > 1:
        _warn_above_cores(workers * threads,
                          f"{workers} workers x {threads} torch thread(s) = "
                          f"{workers * threads} threads")
    return workers


def _call_with_threads(function, args, threads):
    with torch_threads(threads):
        return function(*args)


def _call_in_worker(function, args, threads, caller_pid):
    """``(result, warnings)`` of the call: unless it runs in the process ``caller_pid``
    (None: none), its warnings are kept to be raised again in the caller
    (:func:`_raise_again`), where its filters (``skmia -q``, one warning per kind) see
    them; in ``caller_pid`` they are raised as they come and none are kept.
    Each kept warning is ``(message, category, filename, lineno, module)``, the module
    being the one the warning names (``None`` where no loaded module has that file)."""
    if os.getpid() == caller_pid:
        return _call_with_threads(function, args, threads), ()
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        result = _call_with_threads(function, args, threads)
    return result, [(w.message, w.category, w.filename, w.lineno, _module_of(w.filename))
                    for w in caught]


def _module_of(filename):
    """The name of the loaded module whose file is ``filename``, as ``warnings.warn``
    names a warning's module (from the warning frame's ``__name__``), or None."""
    for name, module in list(sys.modules.items()):
        if getattr(module, "__file__", None) == filename:
            return name
    return None


_WORKER_WARNINGS = {}  # the registry of the warnings raised again: each once, as here
_NUMBER = re.compile(r"[-+]?(?:inf|nan|\d[\d.]*(?:e[-+]?\d+)?)")
# the kinds of warning (category, module, text without its numbers) raised again since
# the warning filters were last changed: a bank's models warn alike, in their numbers
# only (each model's epsilon), and a library call shows that once
_SHOWN = {"filters": None, "kinds": set()}


def _raise_again(caught):
    """Raise the warnings of calls again here, through this process's filters and
    under their own module and category (so that a filter on ``skmia`` applies), each
    kind once (:data:`_SHOWN`) until the filters change."""
    # the list itself is held, so that a new list (catch_warnings makes one) cannot
    # reuse its id; its contents change in place with filterwarnings
    current = warnings.filters
    with _LOCK:
        held = _SHOWN["filters"]
        if held is None or held[0] is not current or held[1] != tuple(current):
            _SHOWN["filters"], _SHOWN["kinds"] = (current, tuple(current)), set()
        fresh = []
        for message, category, filename, lineno, *module in caught:
            module = module[0] if module else None
            kind = (category, module, _NUMBER.sub("#", str(message)))
            if kind not in _SHOWN["kinds"]:
                _SHOWN["kinds"].add(kind)
                fresh.append((message, category, filename, lineno, module))
    for message, category, filename, lineno, module in fresh:
        warnings.warn_explicit(message, category, filename, lineno, module=module,
                               registry=_WORKER_WARNINGS)


def _warn_if_threads(n_jobs):
    """Threads of one process share torch's global random generator, which the defenses
    seed for each fit: fits in threads at once would draw from each other's stream."""
    import warnings

    from joblib.parallel import get_active_backend

    if type(get_active_backend()[0]).__name__ != "ThreadingBackend":
        return
    if effective_jobs(n_jobs) != 1:
        warnings.warn(
            "joblib's threading backend trains models in threads of one process, which "
            "share torch's random generator: the results depend on thread scheduling. Use "
            "a process-based backend (loky, the default; Dask workers with one thread).",
            UserWarning,
            stacklevel=3,
        )


def parallel_map(function, tasks, *, n_jobs=None, threads=1, verbose=0, desc=None,
                 only_if_it_pays=False):
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
    only_if_it_pays : bool, default=False
        With joblib's default backend and no worker started yet, run the first two
        calls here, the second timed, and start workers for the others only when they
        save more time than starting them costs (for many calls of unknown length, such
        as a bank's models). False starts the workers asked, for calls that must run at
        once.

    Returns
    -------
    results : list
        One result per task, in the order of ``tasks``.
    """
    from tqdm.auto import tqdm

    _warn_if_threads(n_jobs)
    check_threads(threads, warn=False)  # the workers x threads warning says it
    tasks = list(tasks)
    workers = _workers(n_jobs, len(tasks), threads)
    results = []
    # every call's warnings are raised again here, each kind once (_raise_again); not
    # in threads, whose catch_warnings would race on this process's filters
    keeper = os.getpid() if _in_threads() else None
    with tqdm(total=len(tasks), desc=desc, disable=not verbose, leave=True) as bar:
        if only_if_it_pays and workers > 1 and _cold(workers):
            for args in tasks[:2]:  # the second call's time: the first pays first uses
                began = time.perf_counter()
                result, caught = _call_in_worker(function, tuple(args), threads, keeper)
                _raise_again(caught)
                results.append(result)
                bar.update(1)
            if not _pays(time.perf_counter() - began, len(tasks) - 2, workers):
                workers = 1
            else:
                _STARTED.add(workers)
        calls = (delayed(_call_in_worker)(function, tuple(args), threads, keeper)
                 for args in tasks[len(results):])
        for result, caught in Parallel(n_jobs=workers, return_as="generator")(calls):
            _raise_again(caught)
            results.append(result)
            bar.update(1)
    return results


def _in_threads():
    """Whether joblib's active backend runs calls in threads of this process."""
    from joblib.parallel import get_active_backend

    return type(get_active_backend()[0]).__name__ == "ThreadingBackend"


def _cold(workers):
    """Whether ``workers`` processes of joblib's default backend would start now: none
    started by this module, and loky's reusable pool (kept by joblib across calls) is
    not of that size."""
    from joblib.parallel import get_active_backend

    if type(get_active_backend()[0]).__name__ != "LokyBackend" or workers in _STARTED:
        return False
    try:
        from joblib.externals.loky import reusable_executor

        pool = reusable_executor._executor
        return pool is None or pool._max_workers != workers or pool._flags.broken is not None
    except AttributeError:  # another loky: assume the workers must start
        return True


def _pays(seconds, n_left, workers):
    """Whether ``n_left`` calls of ``seconds`` each finish sooner on ``workers`` new
    processes (started one per core at once) than here, one after the other."""
    saved = seconds * (n_left - math.ceil(n_left / workers))
    return saved > WORKER_START_SECONDS * math.ceil(workers / n_cores())
