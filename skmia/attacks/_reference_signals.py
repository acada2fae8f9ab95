"""The reference bank's columns of compute_signals: each reference model's score.

torch is imported inside the functions that need it.
"""

import numpy as np
import pandas as pd

from ._models import estimator_logits, output_method
from ._query import (
    FINGERPRINT,
    LABEL,
    REF_IN,
    REF_LOGIT,
    REF_SCORE,
    REF_SCORE_AUG,
    _forward,
    _resolve_model,
    count_output_columns,
    logit_confidence,
)

__all__ = ["add_reference_columns"]


def _reference_logits(model, X_t, batch_size):
    """Outputs of one reference model on ``X_t``: logits of a net, else log-probabilities
    (or decisions, for a classifier without ``predict_proba``)."""
    import torch

    try:
        from skorch import NeuralNet
    except ImportError:  # pragma: no cover - skorch is a dependency
        NeuralNet = ()
    if (NeuralNet and isinstance(model, NeuralNet)) or isinstance(model, torch.nn.Module):
        module, _ = _resolve_model(model)
        first = next((p for p in module.parameters() if p.is_floating_point()), None)
        if first is not None:  # records given to a pipeline or a classifier: float64
            X_t = X_t.to(dtype=first.dtype)
        return _forward(module, X_t, batch_size).double().numpy()
    return estimator_logits(model, output_method(model), X_t.numpy())


def _check_bank(reference, model, model_classes, X_t, n_outputs):
    """Refuse a bank that is not fitted, or fitted on other features or classes."""
    from sklearn.utils.validation import check_is_fitted

    from ..model_selection import ReferenceModels

    if not isinstance(reference, ReferenceModels):
        raise TypeError(
            "reference must be a fitted skmia.model_selection.ReferenceModels, got "
            f"{type(reference).__name__}."
        )
    check_is_fitted(reference)
    shape = tuple(X_t.shape[1:])
    if shape != tuple(reference.input_shape_):
        raise ValueError(
            f"X has records of shape {shape}, but the reference bank was fitted on records "
            f"of shape {tuple(reference.input_shape_)}: it was trained on other features."
        )
    n_model = getattr(model, "n_features_in_", None)
    if n_model is not None and n_model != reference.n_features_in_:
        raise ValueError(
            f"the reference bank was fitted on {reference.n_features_in_} features, but the "
            f"model on {n_model}: they were trained on different data."
        )
    bank_classes = np.asarray(reference.classes_)
    if model_classes is not None and not (
        len(model_classes) == len(bank_classes)
        and np.array_equal(np.asarray(model_classes), bank_classes)
    ):
        raise ValueError(
            f"the reference bank was fitted on classes {bank_classes[:10].tolist()}"
            f"{' ...' if len(bank_classes) > 10 else ''} ({len(bank_classes)}), but the "
            f"model on {np.asarray(model_classes)[:10].tolist()}"
            f"{' ...' if len(model_classes) > 10 else ''} ({len(model_classes)})."
        )
    if model_classes is None and not np.array_equal(bank_classes, np.arange(n_outputs)):
        raise ValueError(
            f"the reference bank's classes are {bank_classes[:10].tolist()}, but the model "
            "has no class list: pass classes=, the labels in the order of its outputs."
        )
    if len(bank_classes) != n_outputs:
        raise ValueError(
            f"the reference bank was fitted on {len(bank_classes)} classes, but the model "
            f"has {n_outputs} outputs."
        )


def _check_pool_index(pool_index, n, n_pool):
    """Row of the bank's pool of each record, as int64, or None."""
    if pool_index is None:
        return None
    index = np.asarray(pool_index)
    if index.ndim != 1 or len(index) != n:
        raise ValueError(
            f"pool_index must hold one position in the bank's pool per record: {n} "
            f"entries, got shape {index.shape}."
        )
    if index.dtype.kind not in "iu":
        raise TypeError(
            f"pool_index must hold integer positions in the bank's pool, got dtype "
            f"{index.dtype}."
        )
    bad = (index < 0) | (index >= n_pool)
    if bad.any():
        raise ValueError(
            f"pool_index holds positions outside the bank's pool of {n_pool} records "
            f"(0 .. {n_pool - 1}): {np.unique(index[bad])[:5].tolist()}."
        )
    return index.astype(np.int64)


def add_reference_columns(signals, reference, model, model_classes, views, pool_index,
                          batch_size, *, augmented=False, logits=False):
    """``signals`` with the bank's columns: ``ref_score_k`` and ``ref_in_k`` for each model.

    ``views`` are the query tensors, ``views[0]`` the records themselves; with
    ``augmented``, ``ref_score_aug_{a}_{k}`` (view ``a`` under model ``k``) are added, and
    with ``logits``, ``ref_logit_{k}_{c}``.
    """
    X_t = views[0]
    n_outputs = count_output_columns(signals.columns, "logit")
    _check_bank(reference, model, model_classes, X_t, n_outputs)
    n = len(signals)
    index = _check_pool_index(pool_index, n, len(reference.in_mask_))
    labels = signals[LABEL].to_numpy()
    scores, flags, extra = {}, {}, {}
    for k, estimator in enumerate(reference.estimators_):
        for a, view in enumerate(views if augmented else views[:1]):
            out = _reference_logits(estimator, view, batch_size)
            phi = logit_confidence(out, labels)
            if a == 0:
                scores[f"{REF_SCORE}_{k}"] = phi
                if logits:
                    extra.update({f"{REF_LOGIT}_{k}_{c}": out[:, c]
                                  for c in range(out.shape[1])})
            if augmented:
                extra[f"{REF_SCORE_AUG}_{a}_{k}"] = phi
        flags[f"{REF_IN}_{k}"] = (np.zeros(n, dtype=bool) if index is None
                                  else reference.in_mask_[index, k])
    columns = {**scores, **flags, **dict(sorted(extra.items(), key=_column_order))}
    attrs = dict(signals.attrs)
    signals = pd.concat([signals, pd.DataFrame(columns, index=signals.index)], axis=1)
    signals.attrs.update(attrs)
    signals.attrs[FINGERPRINT] = reference.fingerprint()
    return signals


def _column_order(item):
    """Order of the extra bank columns: ``ref_score_aug`` by view then model, then logits."""
    name = item[0]
    numbers = tuple(int(part) for part in name.rsplit("_", 2)[1:])
    return (name.startswith(REF_LOGIT), numbers)
