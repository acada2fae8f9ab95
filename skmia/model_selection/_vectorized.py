"""The vectorised bank: K clones of one recipe trained as one batched network (DESIGN §10).

Each model keeps what it has when trained alone: its rows (its mask), its initial
weights and its training seed (hence its batch order and dropout masks, drawn from a
generator of its own exactly as ``fit`` draws them from torch's global one), its SGD
momentum and its learning-rate schedule. A step runs the forward and backward of all K
models at once (``skmia.nn._batched.StackedMLP``); a model whose epoch has fewer batches
than another's sits the extra steps out (no update, no momentum, no weight decay).
The objective is the recipe's own ``training_objective`` (written for K models, the one
skorch's loop calls with K = 1), and each epoch fires skorch's epoch events on every
model (:func:`run_epochs`), so history, learning-rate schedule and callbacks are the
ones ``fit`` runs. The result is K ordinary fitted estimators, so saving, loading and
signals see no difference. What is batched, on how many threads and in what memory:
:mod:`skmia.model_selection._batching`.
"""

import math

import numpy as np

from ._memory import check_bank_memory, chunk_size, training_bytes

__all__ = ["fit_batched"]


# ---------------------------------------------------------------------- training


# On a CPU models train in groups of at most this many, fixed whatever the number of
# threads, so that the threads only run the groups at once and change no model. Faster in
# cache with oneDNN's product per model, as fast with baddbmm on one thread, and a core's
# work for each of two threads (timings: benchmarks/docs/reference_bank.md).
CPU_GROUP = 8


def fit_batched(estimator, X, y, masks, seeds, *, n_threads=1, verbose=0):
    """Fit clones of ``estimator`` (one per column of ``masks``) as batched networks.

    Parameters
    ----------
    estimator : skmia defense
        The recipe; :func:`batching_refusal` must accept it.
    X, y : ndarray
        The pool.
    masks : ndarray of bool of shape (n_samples, K)
        Each model's rows.
    seeds : sequence of int
        Each model's ``random_state``.
    n_threads : int, default=1
        Groups of models trained at once, each in its own thread (on a CPU, where the
        models train in groups of :data:`CPU_GROUP`; the groups and so the models are
        the same whatever ``n_threads``). With more than one, a
        Ctrl-C ends every group at the end of its current epoch.
    verbose : int, default=0
        A progress bar when > 0, over the models' epochs (so that it estimates the time
        left while a group of models trains).

    Returns
    -------
    models : list
        K fitted estimators, each as ``fit`` on its rows with its seed would leave it
        (to float32 rounding).
    """
    import torch
    from tqdm.auto import tqdm

    X = np.ascontiguousarray(X, dtype=np.float32)
    device = torch.device(estimator.device or "cpu")
    X_pool = torch.as_tensor(X).to(device)
    rows = [np.flatnonzero(mask) for mask in masks.T]
    teacher = getattr(estimator, "_batched_teacher", None)
    teacher = teacher() if teacher else None
    teachers = [None] * len(rows)
    if teacher is not None:  # a distilled student's teacher: trained first, batched too
        teachers = fit_batched(teacher, X, y, masks, seeds, verbose=verbose)
    first = _prepared(estimator, X, y, rows[0], seeds[0], teachers[0])
    y_pool = torch.as_tensor(first.label_encoder_.transform(y).astype(np.int64)).to(device)
    # the bank's one estimate, now that a model's size is known: its weights and momentum
    kept = 8 * sum(p.numel() for p in first.module_.parameters())
    check_bank_memory(len(X), len(rows), kept, subject=(
        f"{len(rows):,} models of {kept // 8:,} parameters (weights and momentum)"))
    chunk = chunk_size(len(rows), _model_bytes(first, len(rows[0])), device)
    group = min(chunk, CPU_GROUP) if device.type == "cpu" else chunk
    models = []
    with tqdm(total=len(rows) * estimator.max_epochs, desc="reference models (batched)",
              unit="model-epoch", disable=not verbose, leave=True) as bar:
        for start in range(0, len(rows), chunk):
            stop = min(start + chunk, len(rows))
            prepared = [first if k == 0 else _prepared(estimator, X, y, rows[k], seeds[k],
                                                       teachers[k])
                        for k in range(start, stop)]
            parts = [(prepared[i:i + group], rows[start + i:start + i + group])
                     for i in range(0, len(prepared), group)]
            _train_parts(parts, X_pool, y_pool, n_threads, bar)
            models.extend(prepared)
            if not all(m._training_finished() for m in prepared):
                break  # a Ctrl-C ended them: no later chunk starts (the caller raises)
    finish = getattr(estimator, "_batched_finish", None)
    if finish is not None:  # once per bank (DP-SGD: its privacy warning)
        finish(models)
    return models


def _train_parts(parts, X_pool, y_pool, n_threads, bar):
    """Train each ``(models, rows)`` part, ``n_threads`` parts at once (in threads: torch
    releases the GIL in its kernels). A Ctrl-C ends the training quietly, as skorch's
    ``fit`` ends: in one thread it ends the part in training and no other part starts;
    in threads it sets a flag that ends every part at the end of its epoch (a part not
    started yet then trains no epoch)."""
    if n_threads <= 1 or len(parts) == 1:
        for models, rows in parts:
            if _train(models, rows, X_pool, y_pool, progress=bar.update):
                return  # a Ctrl-C: the parts not started stay untrained
        return
    import threading
    from concurrent.futures import FIRST_COMPLETED, ThreadPoolExecutor, wait

    stop = threading.Event()
    with ThreadPoolExecutor(min(n_threads, len(parts))) as pool:
        pending = {pool.submit(_train, models, rows, X_pool, y_pool, stop, bar.update)
                   for models, rows in parts}
        try:
            while pending:
                try:  # a Ctrl-C reaches this thread only: it tells the parts to end
                    done, _ = wait(pending, timeout=0.2, return_when=FIRST_COMPLETED)
                    for future in done:
                        future.result()  # a part's error propagates
                        pending.remove(future)
                except KeyboardInterrupt:
                    stop.set()
        finally:  # an error: the other parts end at their epoch's end, not their last
            stop.set()


def _model_bytes(model, n_rows):
    """:func:`training_bytes` of one prepared model."""
    state = model.module_.state_dict()
    n_parameters = sum(p.numel() for p in state.values())
    widths = [model.n_features_in_, *(p.shape[0] for n, p in state.items() if n.endswith("bias"))]
    batch = min(_batch_size(model, n_rows), n_rows)
    if callable(getattr(model, "_batched_private", None)):  # DP-SGD: a padded Poisson batch
        from ._vectorized_dp import poisson_width

        return training_bytes(n_parameters, poisson_width(n_rows, batch / n_rows), widths,
                              private=True)
    return training_bytes(n_parameters, batch, widths)


def _prepared(estimator, X, y, rows, seed, teacher=None):
    """A clone set up as its ``fit`` would set it up: checked, seeded, its module and
    optimizer built with its initial weights, its history empty (``teacher``: its
    teacher, trained already)."""
    from sklearn.base import clone

    model = clone(estimator)
    model.set_params(random_state=seed)
    model._check_params()
    extra = {} if teacher is None else {"teacher": teacher}
    X_rows, y_rows = model._setup(X[rows], y[rows], **extra)
    model.initialize()
    X_rows, y_rows = model._check_training_data(X_rows, y_rows)
    model.get_split_datasets(X_rows, y_rows)  # records train_indices_
    return model


def _batch_size(model, n_rows):
    size = model.get_params_for("iterator_train").get("batch_size", model.batch_size)
    return n_rows if size == -1 else int(size)


def _epoch_batches(rows, generators, sizes, shuffle):
    """Each model's batches of one epoch, padded to a common shape.

    Returns ``index`` (S, K, W) pool rows, ``counts`` (S, K) real rows per batch (0 when
    the model has no batch left at that step)."""
    import torch

    orders = [
        rows_k[torch.randperm(len(rows_k), generator=g).numpy()] if shuffle else rows_k
        for rows_k, g in zip(rows, generators, strict=True)
    ]
    n_steps = max(math.ceil(len(o) / b) for o, b in zip(orders, sizes, strict=True))
    width = max(min(b, len(o)) for o, b in zip(orders, sizes, strict=True))
    index = np.empty((n_steps, len(rows), width), dtype=np.int64)
    counts = np.zeros((n_steps, len(rows)), dtype=np.int64)
    for k, (order, size) in enumerate(zip(orders, sizes, strict=True)):
        index[:, k, :] = order[0]
        for t, begin in enumerate(range(0, len(order), size)):
            batch = order[begin:begin + size]
            index[t, k, :len(batch)] = batch
            counts[t, k] = len(batch)
    return index, counts


class _Step:
    """What one step of the batched network reads, built for a whole epoch before its
    first step (no work per step beyond the network's): ``rows`` the flat pool rows
    (K x ``width``, the step's batch trimmed to its longest real batch), ``mask``
    ``(K, width)`` 1 on real rows, ``counts`` ``(K,)`` real rows (at least 1),
    ``sizes`` the same as ints, ``active`` None when every model steps, else the index
    of those that do."""

    __slots__ = ("rows", "width", "mask", "counts", "sizes", "active")

    @classmethod
    def epoch(cls, index, counts, device):
        import torch

        steps = []
        for index_t, counts_t in zip(index, counts, strict=True):
            step = cls()
            step.width = int(counts_t.max())
            step.rows = torch.as_tensor(
                np.ascontiguousarray(index_t[:, :step.width]).reshape(-1), device=device)
            step.sizes = counts_t.tolist()
            columns = np.arange(step.width)
            step.mask = torch.as_tensor((columns < counts_t[:, None]).astype(np.float32),
                                        device=device)
            step.counts = torch.as_tensor(np.maximum(counts_t, 1).astype(np.float32),
                                          device=device)
            moving = np.flatnonzero(counts_t)
            step.active = (None if len(moving) == len(counts_t)
                           else torch.as_tensor(moving, device=device))
            steps.append(step)
        return steps


def _train(models, rows, X_pool, y_pool, stop=None, progress=None):
    """Train ``models`` (prepared clones) together on their ``rows`` of the pool.

    A KeyboardInterrupt ends the training of these models quietly, the interrupted
    epoch in their history, as skorch's ``fit`` ends; so does ``stop`` (a
    ``threading.Event``) once set, at the start of an epoch. Every other exception
    propagates. ``progress(len(models))`` is called after each epoch. Returns whether
    the training ended so, short of its epochs.
    """
    import torch

    from ..nn import ModelBatches

    first = models[0]
    if callable(getattr(first, "_batched_private", None)):  # DP-SGD's private step
        from ._vectorized_dp import train_private

        return train_private(models, rows, X_pool, y_pool, stop, progress)
    device = X_pool.device
    net, optimizer = stacked_training(models, device)
    order_generators = [torch.Generator().manual_seed(m.training_seed_) for m in models]
    if device.type == "cpu":
        dropout_generators = order_generators
    else:
        dropout_generators = [torch.Generator(device).manual_seed(m.training_seed_)
                              for m in models]
    sizes = [_batch_size(m, len(r)) for m, r in zip(models, rows, strict=True)]
    shuffle = bool(first.get_params_for("iterator_train").get("shuffle", False))
    batches = ModelBatches(models, None, 0)

    def one_epoch(lr):
        batches.epoch = first.current_epoch
        index, counts = _epoch_batches(rows, order_generators, sizes, shuffle)
        losses = _run_epoch(batches, net, optimizer, X_pool, y_pool, index, counts, lr,
                            dropout_generators)
        return losses, counts, counts > 0

    return run_epochs(models, net, optimizer, one_epoch, stop, progress)


def stacked_training(models, device):
    """The K ``models``' network and SGD stacked (:class:`~skmia.nn._batched.StackedMLP`,
    :class:`~skmia.nn._batched.StackedSGD`) on ``device``."""
    # the batched engine's stacked network and SGD (internal to the engine, not public)
    from ..nn._batched import StackedMLP, StackedSGD

    net = StackedMLP([m.module_ for m in models], device=device)
    group = models[0].optimizer_.param_groups[0]
    if group.get("maximize") or group.get("differentiable"):
        raise ValueError("the batched bank trains with plain SGD (maximize=False)")
    return net, StackedSGD(net.params, group)


def run_epochs(models, net, optimizer, run_epoch, stop=None, progress=None):
    """skorch's ``fit_loop`` for K models trained as one network (vanilla and private).

    Each epoch fires skorch's own epoch events on every model (``notify``), so that its
    history row, its learning rate (its ``lr_schedule``) and its callbacks (RelaxLoss's
    objective, DP-SGD's ε, early stopping's snapshots, ...) come from where they come
    from in ``fit``. Between them ``run_epoch(lr)`` takes the epoch's steps and returns
    ``(losses, counts, taken)``, each ``(S, K)``: the batch losses, the batch sizes and
    whether model ``k`` took step ``t``; each model's history gets its batches as
    skorch's ``run_single_epoch`` records them, and, where a callback reads them
    (``_epoch_end_reads_network``), its weights and momentum before ``on_epoch_end``
    (else at the end). ``stop`` and a KeyboardInterrupt end the training as in
    :func:`_train`, whose value this returns.
    """
    interrupted = False
    reads_network = models[0]._epoch_end_reads_network()  # one recipe
    try:
        for _ in range(models[0].max_epochs):
            if stop is not None and stop.is_set():
                interrupted = True
                break
            _notify(models, "on_epoch_begin")
            losses, counts, taken = run_epoch(_learning_rate(models))
            _record_batches(models, losses, counts, taken)
            if reads_network:
                _write_back(models, net, optimizer)
            _notify(models, "on_epoch_end")
            if progress is not None:
                progress(len(models))
    except KeyboardInterrupt:
        interrupted = True
    _write_back(models, net, optimizer)
    return interrupted


def _notify(models, event):
    """skorch's epoch ``event`` on each model (no dataset: the bank holds the pool)."""
    for model in models:
        model.notify(event, dataset_train=None, dataset_valid=None)


def _learning_rate(models):
    """The learning rate the models' schedules set for this epoch (one recipe: one)."""
    rates = {group["lr"] for m in models for group in m.optimizer_.param_groups}
    if len(rates) != 1:
        raise ValueError(f"the models of a batched group need one learning rate, got "
                         f"{sorted(rates)}")
    return rates.pop()


def _run_epoch(batches, net, optimizer, X_pool, y_pool, index, counts, lr, generators):
    """One epoch of steps; returns the ``(S, K)`` batch losses. ``batches``: the K
    models' :class:`~skmia.nn._batched_objective.ModelBatches`, filled step by step."""
    import torch

    steps = _Step.epoch(index, counts, X_pool.device)
    n_models = len(batches.models)
    objective = batches.models[0].training_objective
    with_dropout = generators if net.dropout else None
    losses = []
    with torch.enable_grad():
        for step in steps:
            inputs = X_pool.index_select(0, step.rows)
            batches.inputs = inputs.view(n_models, step.width, *X_pool.shape[1:])
            batches.mask, batches.counts = step.mask, step.counts
            targets = y_pool.index_select(0, step.rows).view(n_models, step.width)
            logits = net.forward(batches.inputs, with_dropout, step.sizes)
            loss = objective(logits, targets, batches)
            grads = torch.autograd.grad(loss.sum(), net.params)
            optimizer.step(grads, lr, step.active)
            losses.append(loss.detach())
    return torch.stack(losses).cpu().numpy()


def _record_batches(models, losses, counts, taken):
    """Each model's batches of the epoch in its history, as skorch's
    ``run_single_epoch`` records them: a loss and a size per step it took."""
    for k, model in enumerate(models):
        steps = np.flatnonzero(taken[:, k])
        for t in steps:
            model.history.new_batch()
            model.history.record_batch("train_loss", float(losses[t, k]))
            model.history.record_batch("train_batch_size", int(counts[t, k]))
        model.history.record("train_batch_count", len(steps))


def _write_back(models, net, optimizer):
    """Each model's weights and momentum from the batched network."""
    states = net.state_dicts()
    for k, (model, state) in enumerate(zip(models, states, strict=True)):
        model.module_.load_state_dict(state)
        if optimizer.buffers is None:
            continue
        opt = model.optimizer_
        params = dict(model.module_.named_parameters())
        for name, buf in zip(net.names, optimizer.buffers, strict=True):
            param = params[name]
            opt.state[param]["momentum_buffer"] = net.module_layout(name, buf[k]).to(
                param.device)

