"""Whether and how a bank is batched (DESIGN §10): what the vectorised bank refuses, what
``vectorize="auto"`` trains model by model, its threads and its memory.

The defenses are reached only through what they declare (their ``_batch_refusal``,
``training_objective``, ``_batched_teacher``, and for a private step ``_batched_private``:
:mod:`skmia.model_selection._vectorized_dp`), so this module imports none.
"""

__all__ = ["batching_refusal", "batched_threads", "group_threads",
           "available_memory", "memory_refusal", "training_bytes", "chunk_size"]


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
    from joblib import effective_n_jobs

    from .._parallel import n_cores

    if torch_threads != 1:
        return 1
    return max(1, min(effective_n_jobs(n_jobs), n_cores()))


# ---------------------------------------------------------------------- memory


def available_memory(device):
    """Bytes free for training on ``device``: free CUDA memory, else MemAvailable."""
    if str(device or "cpu") != "cpu":
        import torch

        device = torch.device(device)
        if device.type == "cuda":
            return int(torch.cuda.mem_get_info(device)[0])
    try:
        with open("/proc/meminfo") as meminfo:
            for line in meminfo:
                if line.startswith("MemAvailable:"):
                    return int(line.split()[1]) * 1024
    except OSError:
        pass
    import os

    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def memory_refusal(what, need, available):
    """The message refusing a bank that would not fit in memory."""
    return (f"{what} would need {need / 2**30:.1f} GiB, more than the "
            f"{available / 2**30:.1f} GiB of memory available: ask for fewer models, or "
            f"use a machine with more memory.")


def training_bytes(n_parameters, batch_size, widths, private=False):
    """Bytes one model of a batched step holds: its weights, gradients, momentum and the
    update's temporaries (4 copies of the parameters), and the batch with the activations
    of every layer kept for the backward pass and their gradients (4 per value).

    ``private`` (DP-SGD, :mod:`skmia.model_selection._vectorized_dp`): one more copy of
    the parameters (the noise drawn), and per record each layer's input and output, the
    output's gradient and its clipped copy besides the activations and the gathered
    batch (6 per value); ``batch_size`` is then the padded Poisson batch
    (:func:`~skmia.model_selection._vectorized_dp.poisson_width`)."""
    copies, per_value = (5, 6) if private else (4, 4)
    return 4 * (copies * n_parameters + per_value * batch_size * sum(widths))


def chunk_size(n_models, per_model_bytes, device):
    """Models trained at once: all of them when their training state fits in a quarter
    of the free memory of ``device`` (CPU: MemAvailable; CUDA: free device memory), else
    as many as do (at least one)."""
    budget = available_memory(device) // 4
    return int(min(n_models, max(1, budget // max(per_model_bytes, 1))))
