"""Whether and how a bank is batched (DESIGN §10): what the vectorised bank refuses, what
``vectorize="auto"`` trains model by model, and its threads (its memory:
:mod:`skmia.model_selection._memory`).

The defenses are reached only through what they declare (their ``_batch_refusal``,
``training_objective``, ``_batched_teacher``, and for a private step ``_batched_private``:
:mod:`skmia.model_selection._vectorized_dp`), so this module imports none.
"""

__all__ = ["batching_refusal", "batched_threads", "group_threads"]


def batching_refusal(estimator, X, fit_params):
    """Why ``estimator`` cannot be trained in a batched bank on ``X``, or None if it can.

    A skmia defense says so itself (``_batch_refusal``, which each defense extends:
    :class:`skmia.defenses._batchable.BatchableTraining`); any other estimator is
    refused.
    """
    refusal = getattr(estimator, "_batch_refusal", None)
    if not callable(refusal):
        name = type(estimator).__name__
        return f"{name} is not a skmia defense (a skorch network trained as one batch)"
    return refusal(X, fit_params)


def batched_threads(estimator, n_jobs):
    """Torch threads of a batched bank asked ``n_jobs``: one on a CPU, whatever
    ``n_jobs`` (the other cores train groups of models at once: :func:`group_threads`;
    so the models do not depend on ``n_jobs``), else
    :func:`skmia._parallel.bank_threads`."""
    from .._parallel import bank_threads

    threads = bank_threads(n_jobs)  # warns above the cores, as asked
    device = str(estimator.get_params(deep=False).get("device") or "cpu")
    return 1 if device.startswith("cpu") else threads


def group_threads(n_jobs, torch_threads):
    """Threads that train groups of a batched bank at once (see :func:`fit_batched`):
    the cores ``n_jobs`` asks for, capped at the machine's, where each group runs on one
    torch thread (a CPU); else 1 (torch's own threads share the work)."""
    from .._parallel import effective_jobs, n_cores

    if torch_threads != 1:
        return 1
    return max(1, min(effective_jobs(n_jobs), n_cores()))


