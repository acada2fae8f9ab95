"""Querying a model: signal column names, logits, losses, gradient norms, scores.

The leaf that :func:`~skmia.attacks.compute_signals` (``_signals``) and the reference
bank's columns (``_reference_signals``) share. torch is imported inside the functions
that need it, so that the threshold attacks, which only read a signals table, stay
usable without it.
"""

import numbers
import re

import numpy as np
from sklearn.exceptions import NotFittedError

__all__ = ["WHITE_BOX_SIGNALS", "logit_confidence"]

#: The white-box columns of :func:`compute_signals`.
WHITE_BOX_SIGNALS = ("grad_x_l1", "grad_x_l2", "grad_w_l1", "grad_w_l2")

LABEL = "label"
LOSS = "loss"
SCORE = "score"
REF_SCORE = "ref_score"
REF_IN = "ref_in"
REF_LOGIT = "ref_logit"
#: ``score_aug_{a}``: the target's score of view ``a``; ``ref_score_aug_{a}_{k}``: model k's.
SCORE_AUG = "score_aug"
#: ``feature_{j}``: feature j of the record itself (flattened), for QMIA's regressor.
FEATURE = "feature"
REF_SCORE_AUG = "ref_score_aug"
LABEL_ONLY = "label_only"
#: The key of ``signals.attrs`` that names the bank of reference models.
FINGERPRINT = "reference_fingerprint"


def output_columns(prefix, n_classes):
    """``[prefix_0, ..., prefix_{n_classes - 1}]``."""
    return [f"{prefix}_{k}" for k in range(n_classes)]


def count_output_columns(columns, prefix):
    """Number of ``prefix_<k>`` columns, checked to be exactly ``prefix_0 .. prefix_{C-1}``.

    Returns 0 when there is none; raises ``ValueError`` naming the gap otherwise.
    """
    pattern = re.compile(rf"^{re.escape(prefix)}_(\d+)$")
    found = sorted(int(m.group(1)) for c in columns if (m := pattern.match(str(c))))
    if found and found != list(range(len(found))):
        missing = sorted(set(range(found[-1] + 1)) - set(found))
        detail = f"'{prefix}_{missing[0]}' is missing" if missing else "an index repeats"
        raise ValueError(
            f"The signal columns '{prefix}_*' must be {prefix}_0 ... {prefix}_{{C-1}} for a "
            f"model of C classes; {detail}."
        )
    return len(found)


def _resolve_model(model):
    """(torch module, class labels in output order or None) of a fitted model."""
    import torch

    try:
        from skorch import NeuralNet
    except ImportError:  # pragma: no cover - skorch is a dependency
        NeuralNet = ()
    if NeuralNet and isinstance(model, NeuralNet):
        if not getattr(model, "initialized_", False) or getattr(model, "module_", None) is None:
            raise NotFittedError(
                f"This {type(model).__name__} is not initialized yet; fit it before "
                "computing its signals."
            )
        if isinstance(getattr(model, "criterion_", None), torch.nn.NLLLoss):
            raise ValueError(
                "compute_signals reads logits, but this net is trained with NLLLoss, "
                "skorch's convention for modules that output probabilities. Train it with "
                "criterion=torch.nn.CrossEntropyLoss (the module returning logits)."
            )
        return model.module_, getattr(model, "classes_", None)
    if isinstance(model, torch.nn.Module):
        return model, None
    raise TypeError(
        "model must be a fitted skorch net (a skmia defense, a NeuralNetClassifier) or a "
        f"torch.nn.Module returning logits, got {type(model).__name__}."
    )


def _label_indices(y, classes, n_outputs, classes_given):
    """Map labels onto output indices 0..n_outputs-1."""
    if classes is not None:
        classes = np.asarray(classes)
        if len(classes) == n_outputs:
            sorter = np.argsort(classes, kind="stable")
            try:
                pos = np.searchsorted(classes, y, sorter=sorter)
            except TypeError as exc:
                raise ValueError(
                    f"y's labels (dtype {y.dtype}) cannot be compared with the model's "
                    f"classes (dtype {classes.dtype})."
                ) from exc
            idx = sorter[np.clip(pos, 0, len(classes) - 1)]
            unknown = classes[idx] != y
            if unknown.any():
                raise ValueError(
                    f"y holds labels the model does not know: "
                    f"{np.unique(y[unknown])[:5].tolist()}; its classes are "
                    f"{classes[:10].tolist()}{' ...' if len(classes) > 10 else ''}."
                )
            return idx.astype(np.int64)
        if classes_given:
            raise ValueError(
                f"classes has {len(classes)} entries but the model has {n_outputs} outputs."
            )
    # no class list that matches the outputs: y must already be output indices
    if y.dtype.kind == "f" and np.all(np.isfinite(y)) and np.all(y == np.round(y)):
        y = y.astype(np.int64)
    if y.dtype.kind not in "iu":
        raise ValueError(
            f"y must hold class indices 0..{n_outputs - 1} (or pass classes=, the labels in "
            f"the order of the model's outputs); got dtype {y.dtype}."
        )
    bad = (y < 0) | (y >= n_outputs)
    if bad.any():
        raise ValueError(
            f"y holds class indices outside 0..{n_outputs - 1} for a model with "
            f"{n_outputs} outputs: {np.unique(y[bad])[:5].tolist()}."
        )
    return y.astype(np.int64)


def _norms(flat):
    """Per-row L1 norm and squared L2 norm, accumulated in float64."""
    flat = flat.double()
    return flat.abs().sum(dim=1), flat.square().sum(dim=1)


class _WhiteBox:
    """Per-record gradient norms of the cross-entropy, a batch at a time.

    ``nn.Linear`` layers called once per forward pass on ``(batch, features)`` inputs
    use exact identities: the per-record gradient of the weight is the outer product
    ``delta_i a_i^T`` of the gradient at the layer's output and the layer's input, so
    ``||.||_1 = ||delta_i||_1 ||a_i||_1`` and ``||.||_2 = ||delta_i||_2 ||a_i||_2``; the bias's
    is ``delta_i``. One batched backward pass gives every ``delta_i``. Any other parameter
    (convolutions, batch norm, a layer used twice, shared weights) gets its per-record
    gradients from ``torch.func.vmap(grad(...))``.
    """

    def __init__(self, module):
        import torch

        self.module = module
        self.params = [(n, p) for n, p in module.named_parameters() if p.requires_grad]
        owners = {}
        for _, p in module.named_parameters(remove_duplicate=False):
            owners[id(p)] = owners.get(id(p), 0) + 1
        self.shared = {pid for pid, count in owners.items() if count > 1}
        self.linears = [m for m in module.modules() if isinstance(m, torch.nn.Linear)]

    def __call__(self, x, y):
        import torch
        import torch.nn.functional as F

        records = {}

        def record(mod, args, out):
            records.setdefault(mod, []).append((args[0].detach(), out))
            # later in-place ops (ReLU(inplace=True)) must not touch the recorded output
            return out.clone()

        handles = [m.register_forward_hook(record) for m in self.linears]
        try:
            x = x.detach().clone().requires_grad_(True)
            logits = self.module(x)
        finally:
            for handle in handles:
                handle.remove()
        if logits.ndim != 2:
            raise ValueError(f"The model must return (n, n_classes) logits, got {logits.shape}.")
        loss = F.cross_entropy(logits, y, reduction="none")

        n = x.shape[0]
        fast = [
            m
            for m, calls in records.items()
            if len(calls) == 1
            and calls[0][0].ndim == 2
            and calls[0][0].shape[0] == n
            and not any(id(p) in self.shared for p in m.parameters())
        ]
        wanted = [x] + [records[m][0][1] for m in fast]
        grads = torch.autograd.grad(loss.sum(), wanted, allow_unused=True)

        zeros = torch.zeros(n, dtype=torch.float64, device=x.device)
        gx = grads[0]
        gx_l1, gx_l2sq = (zeros, zeros) if gx is None else _norms(gx.reshape(n, -1))
        gw_l1, gw_l2sq = zeros.clone(), zeros.clone()
        done = set()
        for m, delta in zip(fast, grads[1:], strict=True):
            if delta is None:  # the layer does not reach the loss: zero gradient
                done.update(id(p) for p in m.parameters())
                continue
            d_l1, d_l2sq = _norms(delta)
            if m.weight.requires_grad:
                a_l1, a_l2sq = _norms(records[m][0][0])
                gw_l1 += d_l1 * a_l1
                gw_l2sq += d_l2sq * a_l2sq
                done.add(id(m.weight))
            if m.bias is not None and m.bias.requires_grad:
                gw_l1 += d_l1
                gw_l2sq += d_l2sq
                done.add(id(m.bias))
        rest = {name: p for name, p in self.params if id(p) not in done}
        if rest:
            for g in self._vmap_grads(rest, x.detach(), y).values():
                l1, l2sq = _norms(g.reshape(n, -1))
                gw_l1 += l1
                gw_l2sq += l2sq
        grad_norms = torch.stack([gx_l1, gx_l2sq.sqrt(), gw_l1, gw_l2sq.sqrt()], dim=1)
        return logits.detach(), loss.detach(), grad_norms

    def _vmap_grads(self, rest, x, y):
        import torch.nn.functional as F
        from torch.func import functional_call, grad, vmap

        module = self.module
        fixed = {name: p.detach() for name, p in module.named_parameters() if name not in rest}
        buffers = dict(module.named_buffers())

        def record_loss(params, xi, yi):
            out = functional_call(module, ({**fixed, **params}, buffers), (xi.unsqueeze(0),))
            return F.cross_entropy(out, yi.unsqueeze(0))

        detached = {name: p.detach() for name, p in rest.items()}
        return vmap(grad(record_loss), in_dims=(None, 0, 0))(detached, x, y)


def _check_flag(name, value):
    if not isinstance(value, bool | np.bool_):
        raise TypeError(f"{name} must be a bool, got {value!r}.")


def _check_batch_size(batch_size):
    if not isinstance(batch_size, numbers.Integral) or isinstance(batch_size, bool):
        raise TypeError(f"batch_size must be a positive int, got {batch_size!r}.")
    if batch_size < 1:
        raise ValueError(f"batch_size must be a positive int, got {batch_size}.")


def _check_records(module, X, y):
    """X as a CPU tensor in the module's float dtype, y as an array; checked to match."""
    import torch

    first = next((p for p in module.parameters() if p.is_floating_point()), None)
    dtype = first.dtype if first is not None else torch.float32
    if isinstance(X, torch.Tensor):
        X_t = X.detach().to(device="cpu", dtype=dtype)
    else:
        X_arr = np.asarray(X)
        if X_arr.dtype.kind not in "biuf":
            raise TypeError(f"X must be numeric, got dtype {X_arr.dtype}.")
        X_t = torch.as_tensor(np.ascontiguousarray(X_arr), dtype=dtype)
    y_arr = np.asarray(y)
    if y_arr.ndim != 1:
        raise ValueError(f"y must be 1-D with one label per record, got shape {y_arr.shape}.")
    if X_t.ndim < 1 or X_t.shape[0] != len(y_arr):
        raise ValueError(
            f"X and y must have the same number of rows, got {X_t.shape[0]} and {len(y_arr)}."
        )
    if len(y_arr) == 0:
        raise ValueError("X and y are empty: there is nothing to query.")
    if not torch.isfinite(X_t).all():
        raise ValueError("X contains NaN or infinite values.")
    return X_t, y_arr


def _check_input_shape(model, X_t):
    """Refuse records of another shape than the fitted model's, as ``predict`` does."""
    expected = getattr(model, "input_shape_", None)
    if expected is None or tuple(X_t.shape[1:]) == tuple(expected):
        return
    if X_t.ndim == 2 and len(expected) == 1:
        raise ValueError(
            f"X has {X_t.shape[1]} features, but the model expects {expected[0]}."
        )
    raise ValueError(
        f"X has records of shape {tuple(X_t.shape[1:])}, but the model expects records of "
        f"shape {tuple(expected)}."
    )


def _query(module, X_t, y_arr, classes, classes_given, white_box, batch_size):
    """Logits, label indices, losses and (white-box) gradient norms, a batch at a time.

    The module is queried in eval mode and its mode restored afterwards.
    """
    import torch
    import torch.nn.functional as F

    first = next((p for p in module.parameters() if p.is_floating_point()), None)
    device = first.device if first is not None else torch.device("cpu")
    n = len(y_arr)
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            try:
                probe = module(X_t[:1].to(device))
            except RuntimeError as exc:
                raise ValueError(
                    f"the model cannot take records of shape {tuple(X_t.shape[1:])}: {exc}"
                ) from exc
        if probe.ndim != 2:
            raise ValueError(
                f"The model must return (n, n_classes) logits, got shape {tuple(probe.shape)}."
            )
        labels = _label_indices(y_arr, classes, probe.shape[1], classes_given)
        labels_t = torch.as_tensor(labels)
        logits, losses, grad_norms = [], [], []
        white = _WhiteBox(module) if white_box else None
        for start in range(0, n, batch_size):
            xb = X_t[start : start + batch_size].to(device)
            yb = labels_t[start : start + batch_size].to(device)
            if white is None:
                with torch.no_grad():
                    out = module(xb)
                    loss = F.cross_entropy(out, yb, reduction="none")
            else:
                with torch.enable_grad():
                    out, loss, norms = white(xb, yb)
                grad_norms.append(norms.cpu())
                if hasattr(module, "release"):  # HAMP, MemGuard: outputs as released;
                    with torch.no_grad():  # gradients are the weights' (skmia.defenses)
                        out = module(xb)
                        loss = F.cross_entropy(out, yb, reduction="none")
            logits.append(out.cpu())
            losses.append(loss.cpu())
    finally:
        module.train(was_training)
    norms = torch.cat(grad_norms).numpy() if white_box else None
    logits = torch.cat(logits)
    proba = torch.softmax(logits, dim=1).numpy()
    return logits.numpy(), proba, labels, torch.cat(losses).numpy(), norms


def logit_confidence(logits, labels):
    """The logit-scaled confidence ``phi = log p_y - log(1 - p_y)`` of each record.

    Computed from logits without overflow as ``z_y - logsumexp_{j != y} z_j``, in
    float64; it is also the log-odds of the true class under the softmax.

    Parameters
    ----------
    logits : ndarray of shape (n_samples, n_classes)
        Model outputs (any additive constant per row cancels, so log-probabilities
        work too).
    labels : ndarray of int of shape (n_samples,)
        Output index of each record's class.

    Returns
    -------
    phi : ndarray of float64 of shape (n_samples,)

    References
    ----------
    .. [1] N. Carlini et al. "Membership Inference Attacks From First Principles".
       IEEE S&P 2022. arXiv:2112.03570.

    Examples
    --------
    >>> import numpy as np
    >>> from skmia.attacks._signals import logit_confidence
    >>> logit_confidence(np.array([[2.0, 0.0], [1e4, -1e4]]), np.array([0, 1])).tolist()
    [2.0, -20000.0]
    """
    z = np.asarray(logits, dtype=np.float64)
    rows = np.arange(len(z))
    true = z[rows, labels]
    others = z.copy()
    others[rows, labels] = -np.inf
    top = others.max(axis=1)
    with np.errstate(invalid="ignore"):
        rest = top + np.log(np.exp(others - top[:, None]).sum(axis=1))
    return true - rest


def _forward(module, X_t, batch_size):
    """The module's outputs on ``X_t`` (a CPU tensor), in eval mode, a batch at a time."""
    import torch

    first = next((p for p in module.parameters() if p.is_floating_point()), None)
    device = first.device if first is not None else torch.device("cpu")
    was_training = module.training
    module.eval()
    try:
        with torch.no_grad():
            return torch.cat([module(X_t[i : i + batch_size].to(device)).cpu()
                              for i in range(0, len(X_t), batch_size)])
    finally:
        module.train(was_training)
