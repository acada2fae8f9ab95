"""The memory of a bank: one estimate of what a bank holds, one refusal, and the budget
of a batched training step.

A bank is refused before anything is drawn or trained when its masks and fitted models
would not fit in the memory available (:func:`check_bank_memory`); a batched bank trains
as many models at once as their training state allows (:func:`chunk_size`).
"""

import os

__all__ = ["MODEL_BYTES", "available_memory", "bank_bytes", "check_bank_memory",
           "chunk_size", "memory_refusal", "training_bytes"]

#: the least memory a fitted model takes: a fitted skorch network of the smallest MLP
#: (measured: benchmarks/docs/reference_bank.md); scikit-learn models take less, but a
#: bank of millions is refused either way
MODEL_BYTES = 28 * 1024


def available_memory(device):
    """Bytes free for training on ``device``: free CUDA memory, else MemAvailable.

    Parameters
    ----------
    device : str, torch.device or None
        None and ``"cpu"`` read the machine's memory.

    Returns
    -------
    n_bytes : int
    """
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
    return os.sysconf("SC_PAGE_SIZE") * os.sysconf("SC_AVPHYS_PAGES")


def memory_refusal(what, need, available):
    """The message refusing a bank that would not fit in memory.

    Parameters
    ----------
    what : str
        What would not fit (the sentence's subject).
    need, available : int
        Bytes.

    Returns
    -------
    message : str
    """
    return (f"{what} would need {need / 2**30:.1f} GiB, more than the "
            f"{available / 2**30:.1f} GiB of memory available: ask for fewer models, or "
            f"use a machine with more memory.")


def bank_bytes(n_samples, n_models, model_bytes=MODEL_BYTES, *, start=0):
    """Bytes a bank holds once its models ``start`` to ``n_models - 1`` are fitted.

    The masks take two bytes per record and model (drawn, then joined to those of the
    models fitted before); each new model at least :data:`MODEL_BYTES`, or
    ``model_bytes`` when that is more (its weights).

    Parameters
    ----------
    n_samples, n_models : int
        Pool size and bank size.
    model_bytes : int, default=MODEL_BYTES
        Bytes of one fitted model.
    start : int, default=0
        Models fitted already (their memory is held; only their masks are counted).

    Returns
    -------
    n_bytes : int
    """
    return 2 * n_samples * n_models + max(int(model_bytes), MODEL_BYTES) * (n_models - start)


def check_bank_memory(n_samples, n_models, model_bytes=MODEL_BYTES, *, start=0,
                      subject=None):
    """Refuse a bank whose masks and fitted models (:func:`bank_bytes`) would not fit
    in the memory available (:func:`available_memory` of the CPU).

    Parameters
    ----------
    n_samples, n_models, model_bytes, start
        As :func:`bank_bytes`.
    subject : str, default=None
        What the message names first (default: ``"<n_models> reference models"``).

    Raises
    ------
    ValueError
        Giving the estimate and the memory available.
    """
    need = bank_bytes(n_samples, n_models, model_bytes, start=start)
    available = available_memory("cpu")
    if need > available:
        each = max(int(model_bytes), MODEL_BYTES)
        raise ValueError(memory_refusal(
            f"{subject or f'{n_models:,} reference models'}: the masks ({n_samples:,} records x "
            f"{n_models:,} models) and the fitted models (at least "
            f"{each / 1024:,.0f} KiB each)", need, available))


def training_bytes(n_parameters, batch_size, widths, private=False):
    """Bytes one model of a batched step holds.

    Its weights, gradients, momentum and the update's temporaries (4 copies of the
    parameters), and the batch with the activations of every layer kept for the
    backward pass and their gradients (4 per value).

    ``private`` (DP-SGD, :mod:`skmia.model_selection._vectorized_dp`): one more copy of
    the parameters (the noise drawn), and per record each layer's input and output, the
    output's gradient and its clipped copy besides the activations and the gathered
    batch (6 per value); ``batch_size`` is then the padded Poisson batch
    (:func:`~skmia.model_selection._vectorized_dp.poisson_width`).

    Returns
    -------
    n_bytes : int
    """
    copies, per_value = (5, 6) if private else (4, 4)
    return 4 * (copies * n_parameters + per_value * batch_size * sum(widths))


def chunk_size(n_models, per_model_bytes, device):
    """Models trained at once: all of them when their training state fits in a quarter
    of the free memory of ``device`` (CPU: MemAvailable; CUDA: free device memory), else
    as many as do (at least one).

    Returns
    -------
    n_models : int
    """
    budget = available_memory(device) // 4
    return int(min(n_models, max(1, budget // max(per_model_bytes, 1))))
