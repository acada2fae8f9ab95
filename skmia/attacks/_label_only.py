"""Label-only membership inference: robustness of the predicted label to perturbations.

:func:`label_only_signals` queries any ``predict`` on perturbed copies of each record;
:class:`LabelOnlyAttack` reads the result. numpy only: importing this module (or calling
``label_only_signals`` on a numpy ``predict``) does not import torch.
"""

import numbers

import numpy as np
import pandas as pd
from sklearn.utils import check_random_state

from ._reference import _CalibratedAttack
from ._signals import LABEL_ONLY, count_output_columns, output_columns

__all__ = ["LabelOnlyAttack", "label_only_signals"]


def _perturb_tabular(X, binary, rng, p, noise_scale):
    """One perturbed copy of 2-D ``X``: bits flipped at rate p, Gaussian noise elsewhere."""
    out = X.copy()
    if binary.any():
        bits = X[:, binary]
        flip = rng.random_sample(bits.shape) < p
        out[:, binary] = np.where(flip, 1 - bits, bits)
    if (~binary).any():
        noise = rng.standard_normal((X.shape[0], int((~binary).sum())))
        out[:, ~binary] = X[:, ~binary] + (noise_scale * noise).astype(X.dtype, copy=False)
    return out


def _perturb_images(X, rng, max_shift):
    """One perturbed copy of ``(n, C, H, W)`` images: random horizontal flips and shifts.

    Each image is mirrored with probability 1/2, then translated by ``(dy, dx)`` drawn
    uniformly from ``[-max_shift, max_shift]`` each, the uncovered border filled with 0.
    """
    n, _, height, width = X.shape
    flip = rng.random_sample(n) < 0.5
    dy = rng.randint(-max_shift, max_shift + 1, n)
    dx = rng.randint(-max_shift, max_shift + 1, n)
    X = np.where(flip[:, None, None, None], X[..., ::-1], X)
    d = max_shift
    padded = np.pad(X, ((0, 0), (0, 0), (d, d), (d, d)))
    rows = np.arange(height)[None, :] + d - dy[:, None]  # (n, H)
    cols = np.arange(width)[None, :] + d - dx[:, None]  # (n, W)
    return padded[
        np.arange(n)[:, None, None, None],
        np.arange(X.shape[1])[None, :, None, None],
        rows[:, None, :, None],
        cols[:, None, None, :],
    ]


def label_only_signals(predict, X, y, *, n_queries=32, p=0.05, noise_scale=0.1, max_shift=2,
                       random_state=None):
    """Whether perturbed copies of each record are still classified correctly: labels only.

    For each of ``n_queries`` rounds, every record is perturbed once and the copies are
    classified with ``predict``; entry ``(i, q)`` is 1 when copy ``q`` of record ``i``
    gets the label ``y[i]``. Members of an overfit model tend to keep their label under
    perturbation more often than non-members. Only predicted labels are used, so any
    model works, down to one that only answers ``predict``.

    Perturbations:

    - 2-D ``X`` (tabular): each feature whose values in ``X`` are all 0 or 1 is flipped
      with probability ``p``; every other feature gets Gaussian noise of standard deviation
      ``noise_scale`` (in the units of ``X``: standardise first where scales differ).
    - 4-D ``X`` of shape ``(n, C, H, W)`` (images): a random horizontal flip (probability
      1/2) and a random translation by up to ``max_shift`` pixels in each direction,
      borders filled with 0.

    Parameters
    ----------
    predict : callable or estimator
        ``predict(X) -> labels``, or an object with such a ``predict`` method.
    X : array-like of shape (n_samples, n_features) or (n_samples, C, H, W)
        The records; kept in their float dtype (float32 stays float32).
    y : array-like of shape (n_samples,)
        The records' labels, as ``predict`` returns them.
    n_queries : int, default=32
        Number of perturbed copies per record (``predict`` is called once per copy round,
        on all records).
    p : float in [0, 1], default=0.05
        Flip probability of each binary feature (tabular).
    noise_scale : float, default=0.1
        Standard deviation of the Gaussian noise on non-binary features (tabular).
    max_shift : int, default=2
        Largest translation, in pixels (images).
    random_state : int, RandomState instance or None, default=None
        Seeds the perturbations.

    Returns
    -------
    correct : ndarray of uint8 of shape (n_samples, n_queries)
        1 where the perturbed copy is still classified as ``y``; the ``label_only_*``
        columns of :func:`~skmia.attacks.compute_signals`.

    See Also
    --------
    LabelOnlyAttack : the attack that reads these signals.

    References
    ----------
    .. [1] C. A. Choquette-Choo, F. Tramer, N. Carlini, N. Papernot. "Label-Only
       Membership Inference Attacks". ICML 2021. arXiv:2007.14321.

    Examples
    --------
    >>> import numpy as np
    >>> from skmia.attacks import label_only_signals
    >>> X = np.array([[0.0, 1.0, 3.0], [1.0, 1.0, -0.1]])   # two binary features, one real
    >>> predict = lambda X: (X[:, 2] > 0).astype(int)      # a model that only predicts
    >>> correct = label_only_signals(predict, X, [1, 1], n_queries=8, random_state=0)
    >>> correct.shape, correct.dtype.name
    ((2, 8), 'uint8')
    >>> correct.mean(axis=1).tolist()   # robust far from the boundary, not near it
    [1.0, 0.25]
    """
    if hasattr(predict, "predict"):
        predict = predict.predict
    if not callable(predict):
        raise TypeError(
            f"predict must be a callable X -> labels or an object with a predict method, got "
            f"{type(predict).__name__}."
        )
    if isinstance(n_queries, bool) or not isinstance(n_queries, numbers.Integral):
        raise TypeError(f"n_queries must be an int, got {n_queries!r}.")
    if n_queries < 1:
        raise ValueError(f"n_queries must be >= 1, got {n_queries}.")
    if not (isinstance(p, numbers.Real) and 0 <= p <= 1):
        raise ValueError(f"p must be a probability in [0, 1], got {p!r}.")
    if not (isinstance(noise_scale, numbers.Real) and np.isfinite(noise_scale)
            and noise_scale >= 0):
        raise ValueError(f"noise_scale must be a finite number >= 0, got {noise_scale!r}.")
    if isinstance(max_shift, bool) or not isinstance(max_shift, numbers.Integral) or max_shift < 0:
        raise ValueError(f"max_shift must be an int >= 0, got {max_shift!r}.")
    X = np.asarray(X)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must be numeric, got dtype {X.dtype}.")
    if X.dtype.kind != "f":
        X = X.astype(np.float64)
    if X.ndim not in (2, 4):
        raise ValueError(
            f"X must be 2-D (records x features) or 4-D images (n, C, H, W), got {X.ndim}-D "
            f"of shape {X.shape}."
        )
    if not np.isfinite(X).all():
        raise ValueError("X contains NaN or infinite values.")
    y = np.asarray(y)
    if y.ndim != 1 or len(y) != len(X):
        raise ValueError(
            f"y must be 1-D with one label per record ({len(X)}), got shape {y.shape}."
        )
    rng = check_random_state(random_state)
    binary = np.all((X == 0) | (X == 1), axis=0) if X.ndim == 2 else None
    correct = np.empty((len(X), n_queries), dtype=np.uint8)
    for q in range(n_queries):
        if X.ndim == 2:
            copy = _perturb_tabular(X, binary, rng, p, noise_scale)
        else:
            copy = _perturb_images(X, rng, max_shift)
        labels = np.asarray(predict(copy))
        if labels.shape != y.shape:
            raise ValueError(
                f"predict returned labels of shape {labels.shape} for {len(X)} records; "
                "it must return one label per record."
            )
        correct[:, q] = labels == y
    return correct


class LabelOnlyAttack(_CalibratedAttack):
    """Membership by robustness of the predicted label: the fraction of copies still right.

    Reads the ``label_only_0 .. label_only_{Q-1}`` columns (see
    :func:`label_only_signals`): ``decision_function`` is the fraction of a record's
    ``Q`` perturbed copies that the model still classifies correctly.

    Parameters
    ----------
    scoring : {"accuracy", "roc_auc"}, default="accuracy"
        What :meth:`score` returns: the attack accuracy ``0.5 * (TPR + TNR)`` of
        ``predict``, or the AUC of ``decision_function``.

    Attributes
    ----------
    threshold_ : float
        ``predict`` flags ``decision_function >= threshold_``: with labels at ``fit`` (a
        shadow model's members and non-members, as in the paper), the threshold that
        maximises the attack accuracy on them; without, 0.5 (most copies still right).
    supervised_ : bool
        Whether ``fit`` had membership labels.
    n_queries_ : int
        Number ``Q`` of perturbed copies per record.
    scale_ : float
        Standard deviation of the fit decisions, the scale of ``predict_proba``.
    n_model_classes_ : int or None
        Number of classes of the target model (from ``proba_*`` / ``logit_*``), if any.
    classes_ : ndarray of shape (2,)
        ``[0, 1]``: non-member, member.
    n_features_in_ : int
        Number of signal columns read (``Q``).
    feature_names_in_ : ndarray of str
        Their names.

    See Also
    --------
    label_only_signals : the signals it reads.

    Notes
    -----
    Threat model: an adversary that only sees the predicted label of the records it
    queries (and of perturbed copies of them) — the weakest interface a model can have;
    a defense that only alters confidences (e.g. output rounding, MemGuard) does not
    hide this signal. The paper thresholds the score on a shadow model; the default
    without labels is a plain majority rule.

    References
    ----------
    .. [1] C. A. Choquette-Choo, F. Tramer, N. Carlini, N. Papernot. "Label-Only
       Membership Inference Attacks". ICML 2021. arXiv:2007.14321.

    Examples
    --------
    >>> import pandas as pd
    >>> from skmia.attacks import LabelOnlyAttack
    >>> signals = pd.DataFrame({"label_only_0": [1, 1, 0], "label_only_1": [1, 0, 0],
    ...                         "label_only_2": [1, 1, 1]})
    >>> attack = LabelOnlyAttack().fit(signals)
    >>> attack.decision_function(signals).round(3).tolist()
    [1.0, 0.667, 0.333]
    >>> attack.predict(signals).tolist()
    [1, 1, 0]
    """

    def __init__(self, *, scoring="accuracy"):
        self.scoring = scoring

    def _columns(self, n_classes):
        return output_columns(LABEL_ONLY, self.n_queries_)

    def _validate_signals(self, X, *, reset):
        if isinstance(X, pd.DataFrame):
            n_queries = count_output_columns(X.columns, LABEL_ONLY)
            if n_queries == 0:
                raise ValueError(
                    f"X has no '{LABEL_ONLY}_*' columns, which LabelOnlyAttack reads; compute "
                    "the signals with skmia.attacks.compute_signals(..., label_only=True) or "
                    "skmia.attacks.label_only_signals."
                )
            if reset:
                self.n_queries_ = n_queries
            elif n_queries != self.n_queries_:
                raise ValueError(
                    f"X holds {n_queries} label-only queries per record, but LabelOnlyAttack "
                    f"was fitted on {self.n_queries_}."
                )
        return super()._validate_signals(X, reset=reset)

    def _calibrate(self, signals, y):
        pass

    def _decision(self, signals, *, fitting=False):
        values = signals.to_numpy(dtype=np.float64)
        bad = (values != 0) & (values != 1)
        if bad.any():
            raise ValueError(
                f"The '{LABEL_ONLY}_*' columns must hold 0 or 1 (copy misclassified or still "
                f"right), got {np.unique(values[bad])[:5].tolist()}."
            )
        return values.mean(axis=1)

    def _default_threshold(self):
        return 0.5
