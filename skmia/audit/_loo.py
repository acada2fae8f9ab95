"""Leave-one-out LiRA over a bank of models: every model the target once.

numpy / scipy only. The array ``phi`` holds the logit-scaled confidence of every model on
every record, with an augmentation axis (view 0 the record as it is): shape
``(n_records, n_models, n_aug)``. For each target model ``k``, the other models are its
reference models: each record's scores under the references that trained on it (IN) and
under those that did not (OUT) are fitted with Gaussians, one per augmentation, and the
record's score is the mean over augmentations of ``log N(φ_k; μ_in, σ_in) -
log N(φ_k; μ_out, σ_out)`` — what Aerni, Zhang & Tramèr's code computes
(arXiv:2404.17399).
"""

import numpy as np

__all__ = ["LOO_ATTACKS", "loo_lira_scores"]

#: The two variants: the name used in tables -> ``fix_variance``.
LOO_ATTACKS = {"lira_fixed_variance": True, "lira_per_record_variance": False}

# added to every standard deviation, as the authors' code does, so that a zero spread
# gives finite log-densities
_EPS = 1e-30
# records per chunk: keeps the (records, models, augmentations) temporaries small
_CHUNK_VALUES = 4_000_000


_LOG_SQRT_2PI = np.log(np.sqrt(2 * np.pi))


def _normal_logpdf(x, mean, std):
    """``log N(x; mean, std)`` in the operations of ``scipy.stats.norm.logpdf`` (the same
    floats; a test checks it), without importing ``scipy.stats``: a saved audit's
    report computes these scores on load. NaN where ``std`` is NaN, as scipy."""
    z = (x - mean) / std
    return -z**2 / 2.0 - _LOG_SQRT_2PI - np.log(std)


def _chunks(n_records, n_models, n_aug):
    step = max(1, _CHUNK_VALUES // max(1, n_models * n_aug))
    return [slice(i, min(i + step, n_records)) for i in range(0, n_records, step)]


def _global_std(phi, weight, chunks):
    """Standard deviation (ddof=1) of every score where ``weight`` (one value per
    record, model and augmentation), about their common mean."""
    total = count = 0.0
    for rows in chunks:
        w = np.broadcast_to(weight[rows], phi[rows].shape)
        total += float(np.sum(phi[rows], where=w))
        count += float(np.sum(w))
    mean = total / count
    squares = 0.0
    for rows in chunks:
        w = np.broadcast_to(weight[rows], phi[rows].shape)
        squares += float(np.sum(np.square(phi[rows] - mean), where=w))
    with np.errstate(divide="ignore", invalid="ignore"):
        return np.sqrt(squares / (count - 1)) + _EPS


def _gaussian(values, weight, fix_std):
    """Per record and augmentation: mean and std (ddof=1) over the models in ``weight``."""
    count = weight.sum(axis=1)  # (records, 1)
    with np.errstate(divide="ignore", invalid="ignore"):
        mean = np.sum(values * weight, axis=1) / count
        if fix_std is not None:
            return mean, fix_std
        squares = np.sum(np.square(values - mean[:, None, :]) * weight, axis=1)
        return mean, np.sqrt(squares / (count - 1)) + _EPS


def loo_lira_scores(phi, in_mask, *, fix_variance):
    """Leave-one-out online LiRA score of every (record, model) pair.

    Parameters
    ----------
    phi : array-like of shape (n_records, n_models) or (n_records, n_models, n_aug)
        Logit-scaled confidence of each model on each record (per augmentation).
    in_mask : array-like of bool of shape (n_records, n_models)
        Whether the record was in the model's training set.
    fix_variance : bool
        False: each record's IN and OUT Gaussians have their own standard deviations
        (per augmentation, ``ddof=1``). True: one standard deviation for IN and one for
        OUT, of all IN (OUT) scores of the reference models on these records and all
        augmentations about their common mean (``ddof=1``), as the authors' code
        computes it for each target model.

    Returns
    -------
    scores : ndarray of float64 of shape (n_records, n_models)
        ``scores[i, k]``: the attack's score of record ``i`` against target model ``k``,
        higher for members. NaN where a Gaussian has too few models (per-record variance
        needs two IN and two OUT references per record).

    References
    ----------
    .. [1] M. Aerni, J. Zhang, F. Tramèr. "Evaluations of Machine Learning Privacy
       Defenses are Misleading". ACM CCS 2024. arXiv:2404.17399.
    .. [2] N. Carlini et al. "Membership Inference Attacks From First Principles".
       IEEE S&P 2022. arXiv:2112.03570.
    """
    phi = np.asarray(phi, dtype=np.float64)
    if phi.ndim == 2:
        phi = phi[:, :, None]
    in_mask = np.asarray(in_mask, dtype=bool)
    if phi.ndim != 3 or in_mask.shape != phi.shape[:2]:
        raise ValueError(
            f"phi must have shape (n_records, n_models[, n_aug]) and in_mask (n_records, "
            f"n_models); got {phi.shape} and {in_mask.shape}."
        )
    n, n_models, n_aug = phi.shape
    chunks = _chunks(n, n_models, n_aug)
    scores = np.empty((n, n_models))
    for k in range(n_models):
        others = np.ones(n_models, dtype=bool)
        others[k] = False
        w_in = (in_mask & others)[:, :, None].astype(np.float64)
        w_out = (~in_mask & others)[:, :, None].astype(np.float64)
        std_in = _global_std(phi, w_in > 0, chunks) if fix_variance else None
        std_out = _global_std(phi, w_out > 0, chunks) if fix_variance else None
        for rows in chunks:
            mean_in, sd_in = _gaussian(phi[rows], w_in[rows], std_in)
            mean_out, sd_out = _gaussian(phi[rows], w_out[rows], std_out)
            target = phi[rows, k, :]
            with np.errstate(divide="ignore", invalid="ignore"):
                log_in = _normal_logpdf(target, mean_in, sd_in).mean(axis=-1)
                log_out = _normal_logpdf(target, mean_out, sd_out).mean(axis=-1)
                scores[rows, k] = log_in - log_out
    return scores
