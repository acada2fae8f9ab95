"""compute_signals: what an adversary learns by querying a model on labelled records.

torch is imported inside the functions that need it, so that the threshold attacks,
which only read a signals table, stay usable without it.
"""

import numbers
import re

import numpy as np
import pandas as pd
from sklearn.exceptions import NotFittedError

__all__ = ["WHITE_BOX_SIGNALS", "compute_signals", "logit_confidence"]

#: The white-box columns of :func:`compute_signals`.
WHITE_BOX_SIGNALS = ("grad_x_l1", "grad_x_l2", "grad_w_l1", "grad_w_l2")

LABEL = "label"
LOSS = "loss"
SCORE = "score"
REF_SCORE = "ref_score"
REF_IN = "ref_in"
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


def compute_signals(model, X, y, *, white_box=False, batch_size=256, classes=None,
                    reference=None, pool_index=None, label_only=False,
                    label_only_params=None):
    """Query a trained classifier on labelled records and tabulate what an attacker sees.

    Parameters
    ----------
    model : fitted skorch net or torch.nn.Module
        The model under attack: a fitted skmia defense, any fitted
        :class:`skorch.NeuralNetClassifier` whose module returns logits (trained with
        :class:`torch.nn.CrossEntropyLoss`), or a :class:`torch.nn.Module` returning
        logits. It is queried in eval mode; its mode is restored afterwards and its
        parameters and ``.grad`` are left untouched.
    X : array-like of shape (n_samples, ...)
        Records, in the model's input format (rows of a table, images).
    y : array-like of shape (n_samples,)
        Their labels.
    white_box : bool, default=False
        Also compute the norms of the per-record loss gradient with respect to the input
        and to all parameters that require gradients (columns ``grad_x_l1``,
        ``grad_x_l2``, ``grad_w_l1``, ``grad_w_l2``).
    batch_size : int, default=256
        Records per forward (and backward) pass. White-box signals of a large
        convolutional network may need a smaller value.
    classes : array-like, default=None
        Labels in the order of the model's outputs. By default the model's ``classes_``
        when it has one entry per output (skmia defenses, skorch classifiers that saw
        every class); otherwise ``y`` must already be output indices ``0 .. C-1``.
    reference : ReferenceModels, default=None
        A fitted bank of reference models (:class:`skmia.model_selection.ReferenceModels`),
        trained like ``model`` on the same features and classes: adds, for each of its
        models ``k``, ``ref_score_k`` (the record's ``score`` under that model) and
        ``ref_in_k`` (whether the record was in its training subset).
    pool_index : array-like of int of shape (n_samples,), default=None
        With ``reference``: the row of the bank's pool that each record is, so that
        ``ref_in_k = reference.in_mask_[pool_index, k]``. None when the records were
        never in the pool (every ``ref_in_k`` False: offline attacks only).
    label_only : bool, default=False
        Add ``label_only_0 .. label_only_{Q-1}``: 1 where the ``q``-th randomly perturbed
        copy of the record is still classified correctly (the model's predicted labels
        only; see :func:`label_only_signals`).
    label_only_params : dict, default=None
        Keyword arguments of :func:`label_only_signals` (``n_queries``, ``p``,
        ``noise_scale``, ``max_shift``, ``random_state``).

    Returns
    -------
    signals : pandas.DataFrame of shape (n_samples, 2 * C + 3 [+ 4] [+ 2 * K])
        One row per record: ``logit_0 .. logit_{C-1}``, ``proba_0 .. proba_{C-1}``
        (softmax), ``label`` (the output index of the record's class), ``loss`` (its
        cross-entropy), with ``white_box=True`` ``grad_x_l1``, ``grad_x_l2``,
        ``grad_w_l1``, ``grad_w_l2``, then ``score`` (the logit-scaled confidence
        ``phi = z_y - logsumexp_{j != y} z_j``, see :func:`logit_confidence`) and, with
        ``reference``, ``ref_score_0 .. ref_score_{K-1}`` and ``ref_in_0 ..
        ref_in_{K-1}``; ``signals.attrs["reference_fingerprint"]`` then names the bank
        (:meth:`ReferenceModels.fingerprint`). Logits, probabilities and losses keep the
        model's float dtype (float32, as the reference code's); gradient norms and
        scores are float64.

    Notes
    -----
    Threat model: a black-box adversary sees the logits (or probabilities) of any record
    it submits with its label; a white-box adversary also holds the parameters and can
    differentiate the loss. The records' labels are assumed known, as in the reference
    code.

    White-box norms are those of the gradient of each record's own loss, as the
    reference code's loop of one-record backward passes computes them, but here a batch
    at a time: exact per-record identities for ``torch.nn.Linear`` layers (one batched
    backward pass) and ``torch.func`` per-sample gradients for other parameters.

    References
    ----------
    .. [1] D. Chen, N. Yu, M. Fritz. "RelaxLoss: Defending Membership Inference Attacks
       without Losing Utility". ICLR 2022. arXiv:2207.05801.
    .. [2] N. Carlini et al. "Membership Inference Attacks From First Principles".
       IEEE S&P 2022. arXiv:2112.03570.

    Examples
    --------
    >>> import numpy as np, torch
    >>> from skmia.attacks import compute_signals
    >>> from skmia.nn import MLP
    >>> _ = torch.manual_seed(0)
    >>> model = MLP(5, 3, hidden_sizes=(8,))
    >>> X = np.random.default_rng(0).random((4, 5), dtype=np.float32)
    >>> signals = compute_signals(model, X, [0, 2, 1, 2], white_box=True)
    >>> list(signals.columns)  # doctest: +NORMALIZE_WHITESPACE
    ['logit_0', 'logit_1', 'logit_2', 'proba_0', 'proba_1', 'proba_2', 'label', 'loss',
     'grad_x_l1', 'grad_x_l2', 'grad_w_l1', 'grad_w_l2', 'score']
    >>> signals["label"].tolist()
    [0, 2, 1, 2]
    """
    module, model_classes = _resolve_model(model)
    _check_flag("white_box", white_box)
    _check_batch_size(batch_size)
    X_t, y_arr = _check_records(module, X, y)
    _check_input_shape(model, X_t)
    logits, proba, labels, losses, grad_norms = _query(
        module, X_t, y_arr, classes if classes is not None else model_classes,
        classes is not None, white_box, batch_size,
    )
    columns = {}
    for k in range(logits.shape[1]):
        columns[f"logit_{k}"] = logits[:, k]
    for k in range(logits.shape[1]):
        columns[f"proba_{k}"] = proba[:, k]
    columns[LABEL] = labels
    columns[LOSS] = losses
    if white_box:
        for j, name in enumerate(WHITE_BOX_SIGNALS):
            columns[name] = grad_norms[:, j]
    columns[SCORE] = logit_confidence(logits, labels)
    signals = pd.DataFrame(columns)
    if reference is not None:
        signals = _add_reference_columns(
            signals, reference, model, classes if classes is not None else model_classes,
            X_t, pool_index, batch_size,
        )
    elif pool_index is not None:
        raise ValueError("pool_index is given without reference=: pass the bank it indexes.")
    if label_only:
        signals = _add_label_only_columns(signals, module, X_t, batch_size,
                                          label_only_params)
    elif label_only_params is not None:
        raise ValueError("label_only_params is given but label_only is False.")
    return signals


def _add_label_only_columns(signals, module, X_t, batch_size, params):
    """``signals`` with ``label_only_q``: is the q-th perturbed copy classified correctly."""
    import torch

    from ._label_only import label_only_signals

    if params is not None and not isinstance(params, dict):
        raise TypeError(f"label_only_params must be a dict, got {type(params).__name__}.")

    def predict(X):
        return _forward(module, torch.as_tensor(X, dtype=X_t.dtype), batch_size).argmax(1).numpy()

    correct = label_only_signals(predict, X_t.numpy(), signals[LABEL].to_numpy(),
                                 **(params or {}))
    columns = {f"{LABEL_ONLY}_{q}": correct[:, q] for q in range(correct.shape[1])}
    attrs = dict(signals.attrs)
    signals = pd.concat([signals, pd.DataFrame(columns, index=signals.index)], axis=1)
    signals.attrs.update(attrs)
    return signals


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


def _reference_logits(model, X_t, batch_size):
    """Outputs of one reference model on ``X_t``: logits of a net, else log-probabilities."""
    import torch

    try:
        from skorch import NeuralNet
    except ImportError:  # pragma: no cover - skorch is a dependency
        NeuralNet = ()
    if (NeuralNet and isinstance(model, NeuralNet)) or isinstance(model, torch.nn.Module):
        module, _ = _resolve_model(model)
        return _forward(module, X_t, batch_size).double().numpy()
    proba = np.asarray(model.predict_proba(X_t.numpy()), dtype=np.float64)
    return np.log(np.maximum(proba, np.finfo(np.float64).tiny))


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


def _add_reference_columns(signals, reference, model, model_classes, X_t, pool_index,
                           batch_size):
    """``signals`` with ``ref_score_k`` and ``ref_in_k`` for each model k of the bank."""
    n_outputs = count_output_columns(signals.columns, "logit")
    _check_bank(reference, model, model_classes, X_t, n_outputs)
    n = len(signals)
    index = _check_pool_index(pool_index, n, len(reference.in_mask_))
    labels = signals[LABEL].to_numpy()
    columns = {}
    for k, estimator in enumerate(reference.estimators_):
        logits = _reference_logits(estimator, X_t, batch_size)
        columns[f"{REF_SCORE}_{k}"] = logit_confidence(logits, labels)
    for k in range(len(reference.estimators_)):
        columns[f"{REF_IN}_{k}"] = (np.zeros(n, dtype=bool) if index is None
                                    else reference.in_mask_[index, k])
    signals = pd.concat([signals, pd.DataFrame(columns, index=signals.index)], axis=1)
    signals.attrs[FINGERPRINT] = reference.fingerprint()
    return signals
