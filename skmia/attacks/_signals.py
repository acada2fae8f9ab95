"""compute_signals: what an adversary learns by querying a model on labelled records.

torch is imported inside the functions that need it, so that the threshold attacks,
which only read a signals table, stay usable without it.
"""

import warnings

import numpy as np
import pandas as pd
from scipy.special import logsumexp

from ._augment import augmented_views
from ._models import DECISION_NOTE, estimator_logits, resolve_target
from ._perturb import label_only_signals
from ._query import (
    FEATURE,
    FINGERPRINT,
    LABEL,
    LABEL_ONLY,
    LOSS,
    REF_IN,
    REF_LOGIT,
    REF_SCORE,
    REF_SCORE_AUG,
    SCORE,
    SCORE_AUG,
    WHITE_BOX_SIGNALS,
    _check_batch_size,
    _check_flag,
    _check_input_shape,
    _check_records,
    _forward,
    _label_indices,
    _query,
    count_output_columns,
    logit_confidence,
    output_columns,
)
from ._reference_signals import add_reference_columns

#: The key of ``signals.attrs`` that says what the logit columns hold: ``"logits"`` (a
#: torch model's), ``"predict_proba"`` (log-probabilities) or ``"decision_function"``.
OUTPUTS_ATTR = "outputs"

__all__ = [
    "FEATURE",
    "FINGERPRINT",
    "LABEL",
    "LABEL_ONLY",
    "LOSS",
    "OUTPUTS_ATTR",
    "REF_IN",
    "REF_LOGIT",
    "REF_SCORE",
    "REF_SCORE_AUG",
    "SCORE",
    "SCORE_AUG",
    "WHITE_BOX_SIGNALS",
    "compute_signals",
    "count_output_columns",
    "logit_confidence",
    "output_columns",
]


def compute_signals(model, X, y, *, white_box=False, batch_size=256, classes=None,
                    reference=None, pool_index=None, augment=None, reference_logits=False,
                    features=False, label_only=False, label_only_params=None):
    """Query a trained classifier on labelled records and tabulate what an attacker sees.

    Parameters
    ----------
    model : fitted classifier, skorch net or torch.nn.Module
        The model under attack, one of

        - a fitted skmia defense, any fitted :class:`skorch.NeuralNetClassifier` whose
          module returns logits (trained with :class:`torch.nn.CrossEntropyLoss`), or a
          :class:`torch.nn.Module` returning logits: queried in eval mode (its mode is
          restored afterwards, its parameters and ``.grad`` are left untouched);
        - a fitted :class:`~sklearn.pipeline.Pipeline` whose last step is one of those:
          the records go through the earlier steps' ``transform`` and the last step is
          queried on the result (its white-box gradient is then with respect to the
          *transformed* input, what the network sees);
        - any other fitted classifier (scikit-learn's, a pipeline ending in one): read
          through ``predict_proba``, whose log-probabilities stand for the logits; a
          classifier without ``predict_proba`` through ``decision_function`` (see Notes).
          Such a model has no gradients: ``white_box=True`` is refused.
    X : array-like of shape (n_samples, ...)
        Records, in the model's input format (rows of a table, images; for a pipeline,
        what its first step takes).
    y : array-like of shape (n_samples,)
        Their labels.
    white_box : bool, default=False
        Also compute the norms of the per-record loss gradient with respect to the input
        and to all parameters that require gradients (columns ``grad_x_l1``,
        ``grad_x_l2``, ``grad_w_l1``, ``grad_w_l2``). Torch models only (a ``ValueError``
        otherwise).
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
    augment : {"flip", "flip_shift"} or None, default=None
        Also query each record under the views of
        :func:`~skmia.attacks.augmented_views` (images only: ``"flip"``, the image and
        its mirror; ``"flip_shift"``, 18 views, mirrors and 2-pixel shifts): adds
        ``score_aug_0 .. score_aug_{A-1}`` (the target's ``score`` on view ``a``; view 0
        is the record, so ``score_aug_0`` equals ``score``) and, with ``reference``,
        ``ref_score_aug_{a}_{k}`` (the score of view ``a`` under reference model ``k``).
        :class:`LiRAAttack` averages its test over the views. Tabular records have no
        such views: a ``ValueError`` says so.
    reference_logits : bool, default=False
        With ``reference``: also add ``ref_logit_{k}_{c}``, logit ``c`` of reference
        model ``k`` (``K * C`` columns), which RMIA's tuned signal reads
        (``RMIAAttack(signal="taylor_soft_margin")``). A reference model that is not a
        net gives its log-probabilities instead (the same softmax, not the same Taylor
        softmax).
    features : bool, default=False
        Add ``feature_0 .. feature_{d-1}``: the record itself, flattened (what
        :class:`QuantileAttack` regresses on).
    label_only : bool, default=False
        Add ``label_only_0 .. label_only_{Q-1}``: 1 where the ``q``-th randomly perturbed
        copy of the record is still classified correctly (the model's predicted labels
        only; see :func:`label_only_signals`).
    label_only_params : dict, default=None
        Keyword arguments of :func:`label_only_signals` (``n_queries``, ``p``,
        ``noise_scale``, ``max_shift``, ``random_state``).

    Returns
    -------
    signals : pandas.DataFrame of shape (n_samples, 2 * C + 3 [+ 4] [+ A] [+ 2 * K] ...)
        One row per record: ``logit_0 .. logit_{C-1}``, ``proba_0 .. proba_{C-1}``
        (softmax), ``label`` (the output index of the record's class), ``loss`` (its
        cross-entropy), with ``white_box=True`` ``grad_x_l1``, ``grad_x_l2``,
        ``grad_w_l1``, ``grad_w_l2``, then ``score`` (the logit-scaled confidence
        ``phi = z_y - logsumexp_{j != y} z_j``, see :func:`logit_confidence`), with
        ``augment`` ``score_aug_0 .. score_aug_{A-1}``, with ``features``
        ``feature_0 .. feature_{d-1}``, with ``reference``
        ``ref_score_0 .. ref_score_{K-1}`` and ``ref_in_0 .. ref_in_{K-1}`` (then
        ``ref_score_aug_{a}_{k}`` with ``augment``, ``ref_logit_{k}_{c}`` with
        ``reference_logits``), and ``label_only_*`` last; with ``reference``,
        ``signals.attrs["reference_fingerprint"]`` names the bank
        (:meth:`ReferenceModels.fingerprint`); ``signals.attrs["outputs"]`` says what the
        logit columns hold: ``"logits"`` (a torch model's), ``"predict_proba"`` (the
        log-probabilities) or ``"decision_function"`` (the decisions). Logits,
        probabilities and losses keep a torch model's float dtype (float32, as the
        reference code's) and are float64 for other classifiers; gradient norms and
        scores are float64.

    Warns
    -----
    UserWarning
        When the model is read through ``decision_function``: which signals then are not
        what they are for a model with probabilities (see Notes).

    Notes
    -----
    Threat model: a black-box adversary sees the logits (or probabilities) of any record
    it submits with its label; a white-box adversary also holds the parameters and can
    differentiate the loss. The records' labels are assumed known, as in the reference
    code.

    A classifier without ``predict_proba`` (:class:`~sklearn.svm.LinearSVC`,
    :class:`~sklearn.linear_model.RidgeClassifier`, ...) is read through its
    ``decision_function``: the decisions are the logits (for two classes ``(0, d)``,
    whose softmax is the sigmoid of the decision ``d``). ``proba_*`` are then the
    softmax of the decisions, ``loss`` its cross-entropy and ``score`` its log-odds:
    monotone in the decisions, so attacks that rank records by them (AUC, TPR at low
    FPR) still measure the leak, but they are not calibrated probabilities, ``loss`` is
    not the model's training loss (a hinge loss for an SVM), and what cannot be computed
    is said in the warning: the model's own probabilities and cross-entropy, and any
    white-box signal.

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

    Any fitted classifier, read through its probabilities:

    >>> from sklearn.linear_model import LogisticRegression
    >>> X = np.random.default_rng(1).normal(size=(30, 4))
    >>> y = (X[:, 0] > 0).astype(int)
    >>> clf = LogisticRegression().fit(X, y)
    >>> signals = compute_signals(clf, X, y)
    >>> signals.attrs["outputs"]
    'predict_proba'
    >>> p_y = clf.predict_proba(X)[np.arange(30), y]
    >>> bool(np.allclose(signals["loss"], -np.log(p_y)))
    True
    """
    target = resolve_target(model)
    _check_flag("white_box", white_box)
    _check_flag("reference_logits", reference_logits)
    _check_flag("features", features)
    _check_batch_size(batch_size)
    if white_box and target.module is None:
        raise ValueError(
            f"white_box=True needs the gradients of a torch model, but {target.name} is "
            "not one (a skmia defense, a skorch net, a torch.nn.Module, or a Pipeline "
            "ending in one): compute its black-box signals (white_box=False)."
        )
    if reference is None and reference_logits:
        raise ValueError("reference_logits=True is given without reference=: pass the bank.")
    model_classes = classes if classes is not None else target.classes
    query = _query_target(target, X, y, model_classes, classes is not None, white_box,
                          batch_size)
    logits, proba, labels, losses, grad_norms, X_t, forward = query
    views = _views(X_t, augment)
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
    for a, view in enumerate(views if augment is not None else ()):
        columns[f"{SCORE_AUG}_{a}"] = (columns[SCORE] if a == 0 else
                                       logit_confidence(forward(view), labels))
    if features:
        flat = X_t.reshape(len(X_t), -1).numpy()
        columns.update({f"{FEATURE}_{j}": flat[:, j] for j in range(flat.shape[1])})
    signals = pd.DataFrame(columns)
    if reference is not None:
        signals = add_reference_columns(
            signals, reference, model, model_classes, views, pool_index, batch_size,
            augmented=augment is not None, logits=reference_logits,
        )
    elif pool_index is not None:
        raise ValueError("pool_index is given without reference=: pass the bank it indexes.")
    if label_only:
        signals = _add_label_only_columns(signals, forward, X_t, label_only_params)
    elif label_only_params is not None:
        raise ValueError("label_only_params is given but label_only is False.")
    signals.attrs[OUTPUTS_ATTR] = target.outputs
    if target.method == "decision_function":
        warnings.warn(DECISION_NOTE.format(name=target.name) + ".", UserWarning,
                      stacklevel=2)
    return signals


def _query_target(target, X, y, classes, classes_given, white_box, batch_size):
    """Logits, probabilities, label indices, losses, gradient norms (or None), the records
    as a CPU tensor (as given: before a pipeline's transform) and ``forward``, the
    model's logits (float64) on a tensor of such records."""
    import torch

    if target.module is not None and target.transform is None:
        X_t, y_arr = _check_records(target.module, X, y)
        _check_input_shape(target.net, X_t)

        def forward(view):
            return _forward(target.module, view, batch_size).double().numpy()

        return (*_query(target.module, X_t, y_arr, classes, classes_given, white_box,
                        batch_size), X_t, forward)
    X_arr, y_arr = _check_raw_records(X, y)
    X_t = torch.as_tensor(np.ascontiguousarray(X_arr))
    if target.module is not None:  # a pipeline ending in a torch model
        def transformed(records):
            X_in, _ = _check_records(target.module, target.transform(records),
                                     np.zeros(len(records)))
            _check_input_shape(target.net, X_in)
            return X_in

        def forward(view):
            return _forward(target.module, transformed(view.numpy()),
                            batch_size).double().numpy()

        return (*_query(target.module, transformed(X_arr), y_arr, classes, classes_given,
                        white_box, batch_size), X_t, forward)

    def forward(view):
        return estimator_logits(target.estimator, target.method, view.numpy())

    logits = forward(X_t)
    labels = _label_indices(y_arr, classes, logits.shape[1], classes_given)
    log_norm = logsumexp(logits, axis=1)
    proba = np.exp(logits - log_norm[:, None])
    losses = log_norm - logits[np.arange(len(labels)), labels]
    return logits, proba, labels, losses, None, X_t, forward


def _check_raw_records(X, y):
    """X as a numeric array and y as a 1-D array of as many labels (for a model that is
    not queried as a torch module: its own checks see the values)."""
    import torch

    if isinstance(X, torch.Tensor):
        X = X.detach().cpu().numpy()
    X_arr = np.asarray(X)
    if X_arr.dtype.kind not in "biuf":
        raise TypeError(f"X must be numeric, got dtype {X_arr.dtype}.")
    y_arr = np.asarray(y)
    if y_arr.ndim != 1:
        raise ValueError(f"y must be 1-D with one label per record, got shape {y_arr.shape}.")
    if X_arr.ndim < 2:
        raise ValueError(f"X must hold one record per row (2-D or more), got shape "
                         f"{X_arr.shape}.")
    if X_arr.shape[0] != len(y_arr):
        raise ValueError(
            f"X and y must have the same number of rows, got {X_arr.shape[0]} and "
            f"{len(y_arr)}."
        )
    if len(y_arr) == 0:
        raise ValueError("X and y are empty: there is nothing to query.")
    return X_arr, y_arr


def _views(X_t, augment):
    """The query views of ``X_t`` as CPU tensors, ``[X_t]`` alone when ``augment`` is None."""
    import torch

    if augment is None:
        return [X_t]
    views = augmented_views(X_t.numpy(), augment)
    return [X_t] + [torch.as_tensor(np.ascontiguousarray(v)) for v in views[1:]]


def _add_label_only_columns(signals, forward, X_t, params):
    """``signals`` with ``label_only_q``: is the q-th perturbed copy classified correctly."""
    import torch

    if params is not None and not isinstance(params, dict):
        raise TypeError(f"label_only_params must be a dict, got {type(params).__name__}.")

    def predict(X):
        return forward(torch.as_tensor(X, dtype=X_t.dtype)).argmax(1)

    correct = label_only_signals(predict, X_t.numpy(), signals[LABEL].to_numpy(),
                                 **(params or {}))
    columns = {f"{LABEL_ONLY}_{q}": correct[:, q] for q in range(correct.shape[1])}
    attrs = dict(signals.attrs)
    signals = pd.concat([signals, pd.DataFrame(columns, index=signals.index)], axis=1)
    signals.attrs.update(attrs)
    return signals
