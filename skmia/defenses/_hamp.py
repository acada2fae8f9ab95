"""HAMP (Chen & Pattabiraman, NDSS 2024): high-entropy soft labels, then output modification."""

import math
import warnings
from numbers import Real

import numpy as np
import torch
import torch.nn.functional as F
from skorch.callbacks import Callback

from .._registry import SOFT_LABEL_SCHEDULE
from .._rundir import Int
from .._sklearn_compat import Interval
from ..nn import MLP
from ._base import CROSS_ENTROPY, MIADefenseClassifier
from ._batches import _ArrayBatches
from ._outputs import ReleasedOutputs, ReleasingClassifierMixin, as_logits

__all__ = ["HAMPClassifier", "hamp_target_confidence", "soft_label_kl"]

#: the optimiser of HAMP's and SELENA's code (the classes' defaults), besides the schedule
SOFT_LABEL_OPTIMIZER = {k: v for k, v in SOFT_LABEL_SCHEDULE.items()
                        if k.startswith("optimizer__")}


def soft_label_kl(logits, soft):
    """``KL(soft ‖ softmax(logits))`` averaged over records *and* classes, as
    ``torch.nn.functional.kl_div(..., reduction="mean")`` in the HAMP and SELENA code
    computes it (so that their learning rates carry over)."""
    log_proba = F.log_softmax(logits, dim=1)
    log_soft = torch.log(soft.clamp_min(1e-38))
    return (soft * (log_soft - log_proba)).sum(dim=1).mean() / logits.shape[1]


def _soft_label_entropy(p, n_classes):
    """Entropy (nats) of the label ``p`` on one class, ``(1 - p) / (C - 1)`` on the others."""
    rest = (1.0 - p) / (n_classes - 1)
    terms = [-p * math.log(p) if p > 0 else 0.0,
             -(1.0 - p) * math.log(rest) if rest > 0 else 0.0]
    return sum(terms)


def hamp_target_confidence(entropy_percentile, n_classes):
    """The true-class probability of HAMP's soft label for ``C`` classes.

    The soft label puts ``p`` on the true class and ``(1 - p) / (C - 1)`` on each other
    class; ``p`` in ``[1/C, 1]`` is the one whose entropy is ``entropy_percentile ·
    log C`` (a fraction of the largest entropy, that of the uniform label). The entropy
    decreases in ``p`` on that interval, so bisection finds it to float64 precision
    (the paper's code steps ``p`` down by 0.01 until the entropy reaches the threshold).

    Parameters
    ----------
    entropy_percentile : float
        γ, in (0, 1].
    n_classes : int
        C, at least 2.

    Returns
    -------
    p : float

    Examples
    --------
    >>> from skmia.defenses._hamp import hamp_target_confidence
    >>> hamp_target_confidence(1.0, 4)
    0.25
    >>> round(hamp_target_confidence(0.5, 30), 4)
    0.6809
    """
    if not 0 < entropy_percentile <= 1:
        raise ValueError(f"entropy_percentile must be in (0, 1], got {entropy_percentile!r}")
    if n_classes < 2:
        raise ValueError(f"HAMP needs at least 2 classes, got {n_classes}")
    target = entropy_percentile * math.log(n_classes)
    low, high = 1.0 / n_classes, 1.0  # entropy(low) = log C >= target >= 0 = entropy(high)
    if entropy_percentile == 1:
        return low
    for _ in range(200):
        mid = 0.5 * (low + high)
        if _soft_label_entropy(mid, n_classes) > target:
            low = mid
        else:
            high = mid
        if high - low <= 1e-15:
            break
    return 0.5 * (low + high)


class _FixedOrderBatches(_ArrayBatches):
    """Batches of in-memory arrays in one given row order, the same at every epoch."""

    def __init__(self, X, y, batch_size, order):
        super().__init__(X, y, batch_size, shuffle=False)
        self.order = torch.as_tensor(order)

    def __iter__(self):
        for start in range(0, len(self.X), self.batch_size):
            rows = self.order[start : start + self.batch_size]
            yield self.X[rows], (None if self.y is None else self.y[rows])


class _OptimizerRestart(Callback):
    """A fresh optimiser state (SGD's momentum buffers emptied) at each epoch's start,
    as a new ``torch.optim.SGD`` built every epoch has; the learning rate is the
    schedule's, set by the ``lr_schedule`` callback."""

    def on_epoch_begin(self, net, **kwargs):
        if net.paper_loop:
            net.optimizer_.state.clear()


class PaperLoopMixin:
    """``paper_loop``: train as the HAMP paper's code does (HAMP and SELENA).

    That code walks the training rows, shuffled once, in the same order at every epoch,
    and builds a new SGD optimiser at every epoch (its momentum starts again from
    zero). With ``paper_loop=True`` the class does both: the order is a permutation
    drawn once from ``random_state``, and the optimiser's state is emptied at each
    epoch's start. ``paper_loop=False`` trains as every other skmia defense does (a
    fresh shuffle per epoch, momentum carried across epochs); on Location30 that raw
    network leaks more to a loss attack (see the class's Notes).
    """

    @property
    def _default_callbacks(self):
        return [*super()._default_callbacks, ("optimizer_restart", _OptimizerRestart())]

    def get_iterator(self, dataset, training=False):
        """Under ``paper_loop``, training batches of in-memory arrays in the fixed order."""
        iterator = super().get_iterator(dataset, training=training)
        if training and self.paper_loop and type(iterator) is _ArrayBatches:
            return self._training_batches(iterator.X, iterator.y, iterator.batch_size)
        return iterator

    def training_order(self, n_rows):
        """The row order of every training epoch under ``paper_loop``: one permutation
        of ``range(n_rows)``, fixed by the training seed."""
        return np.random.default_rng([self.training_seed_, n_rows]).permutation(n_rows)

    def _training_batches(self, X, y, batch_size):
        """Training batches of in-memory ``X, y``: the fixed order under ``paper_loop``,
        a fresh shuffle per epoch otherwise."""
        batch_size = len(X) if batch_size == -1 else batch_size
        if self.paper_loop:
            return _FixedOrderBatches(X, y, batch_size, self.training_order(len(X)))
        return _ArrayBatches(X, y, batch_size, shuffle=True)


class _HAMPOutputs(ReleasedOutputs):
    """HAMP's released output: the network's output on a random record, re-ranked.

    For each query, a random record is drawn (features uniform over the training
    range; features that took two values in training take one of the two), and its
    probability vector is re-ordered so that its ``k``-th largest probability lands on
    the query's ``k``-th most probable class. The predicted class is kept; the
    confidence values are those of a record no one trained on.
    """

    def __init__(self, network, n_features, seed=0):
        super().__init__(network, seed)
        self.register_buffer("feature_low", torch.zeros(n_features))
        self.register_buffer("feature_high", torch.zeros(n_features))
        self.register_buffer("feature_binary", torch.zeros(n_features, dtype=torch.bool))

    def set_feature_range(self, X):
        """Record the range of each feature of the training rows ``X``."""
        flat = np.asarray(X, dtype=np.float32).reshape(len(X), -1)
        low, high = flat.min(axis=0), flat.max(axis=0)
        binary = ((flat == low) | (flat == high)).all(axis=0)
        self.feature_low.copy_(torch.as_tensor(low))
        self.feature_high.copy_(torch.as_tensor(high))
        self.feature_binary.copy_(torch.as_tensor(binary))

    def random_records(self, X):
        """One random record per query, drawn with the query's own generator."""
        low, high = self.feature_low.cpu().numpy(), self.feature_high.cpu().numpy()
        binary = self.feature_binary.cpu().numpy()
        draws = np.stack([rng.random(len(low), dtype=np.float32)
                          for rng in self.query_generators(X)]) if len(X) else (
            np.zeros((0, len(low)), np.float32))
        values = np.where(binary, np.where(draws < 0.5, low, high), low + draws * (high - low))
        return torch.as_tensor(values.astype(np.float32)).reshape(X.shape).to(X.device)

    def release(self, X):
        proba = torch.softmax(self.network(X), dim=1)
        random_proba = torch.softmax(self.network(self.random_records(X)), dim=1)
        return as_logits(rerank(proba, random_proba))


def rerank(proba, replacement):
    """``replacement``'s values placed in the rank order of ``proba``, row by row: the
    ``k``-th largest of ``replacement`` goes where ``proba`` has its ``k``-th largest."""
    order = torch.argsort(proba, dim=1)
    return torch.zeros_like(proba).scatter(1, order, torch.sort(replacement, dim=1).values)


class HAMPClassifier(PaperLoopMixin, ReleasingClassifierMixin, MIADefenseClassifier):
    """HAMP: high-entropy soft labels and an entropy regulariser, then output modification.

    *Training.* Each hard label becomes a soft label with ``p`` on the true class and
    ``(1 - p) / (C - 1)`` on each other class, ``p`` chosen so that the label's entropy is
    exactly ``entropy_percentile · log C`` (:func:`hamp_target_confidence`). The network
    minimises the KL divergence to the soft labels minus ``entropy_penalty`` times the
    entropy of its own output (rewarding high-entropy, less confident outputs)::

        loss = KL(soft ‖ softmax(z)) / C  −  α · H(softmax(z))      (batch means)

    the KL divided by ``C`` as the paper's code computes it (``F.kl_div``, mean over
    records and classes), so that its α and learning rates carry over.

    *Inference.* ``predict_proba`` (and every query of the module in evaluation mode,
    which is what :func:`skmia.attacks.compute_signals` reads) returns, for each query,
    the network's output on a random record re-ordered so that its top class is the
    query's predicted class, and every rank matches the query's: the label is kept, the
    confidence carries nothing about the query. The random record is drawn by a
    generator seeded with a hash of the query and of ``output_seed_``: a record asked
    twice gets the same answer, and a saved and loaded model answers identically.
    ``predict`` gives the raw network's label, which is the same.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=skmia.nn.MLP
        The network; see :class:`MIADefenseClassifier`.
    entropy_percentile : float, default=0.8
        γ in (0, 1]: the soft labels' entropy as a fraction of ``log C``. 1 gives uniform
        labels. Paper code: Purchase100 0.8, Texas100 0.6, Location30 0.5.
    entropy_penalty : float, default=0.01
        α ≥ 0, weight of the entropy regulariser. Paper code: Purchase100 and Texas100
        0.01, Location30 0.001.
    lr : float, default=0.5
        Initial learning rate of SGD (the paper's code; with momentum 0.99 and weight
        decay 1e-5, the defaults of ``optimizer__momentum`` and
        ``optimizer__weight_decay`` here).
    max_epochs : int, default=100
        Epochs of ``fit`` (the paper's code).
    batch_size : int, default=64
        Mini-batch size (the paper's code).
    milestones : sequence of int, default=(60, 90)
        Epochs at whose start the learning rate is multiplied by ``gamma`` (0.1).
    paper_loop : bool, default=False
        True trains as the paper's code does: one fixed row order for every epoch and
        the optimiser's momentum reset at each epoch (:class:`PaperLoopMixin`; the
        Location30 preset of :func:`~skmia.defenses.paper_defaults`'s registry sets it).
        False: a fresh shuffle per epoch and momentum carried over, as skmia's other
        defenses train (see Notes for why this is the default).
    **kwargs
        Every other parameter of :class:`MIADefenseClassifier`.

    Attributes
    ----------
    target_confidence_ : float
        ``p``, the soft labels' true-class probability.
    output_seed_ : int
        Key of the per-query hash of the output modification (also in the module's
        buffers).
    raw_module_ : torch.nn.Module
        The trained network itself (``module_.network``): its logits are the *raw*
        outputs, what a white-box adversary reads.

    Notes
    -----
    Threat model: a black-box adversary who sees the probability vectors (or logits)
    that ``predict_proba`` releases. HAMP promises that those say nothing about
    membership beyond the label. It does not stop attacks on labels alone (the
    label-only attack, arXiv:2007.14321), nor a white-box adversary holding the
    weights, who reads the raw outputs: audit ``raw_module_`` for that (its outputs
    still carry the high-entropy training's protection, not the output modification's).

    The defaults are the paper's code's optimiser and schedule: 100 epochs of SGD (lr
    0.5, momentum 0.99, weight decay 1e-5, batch 64, ×0.1 at epochs 60 and 90). The soft
    labels' KL divided by ``C`` has gradients far smaller than cross-entropy's: at
    vanilla's lr 0.1 and momentum 0.9 HAMP barely trains (test accuracy 0.21 against
    vanilla's 0.63 on Location30's 1,002 members with 30 epochs of a 256-unit MLP).
    :func:`skmia.defenses.paper_defaults` gives the per-dataset values (γ and α). The
    paper's code draws random binary vectors for its binary datasets.

    *The loop.* The paper's code keeps one row order and restarts momentum at every
    epoch (``paper_loop=True``). On Location30 in its scripts' setting (1,350 members)
    the raw network then leaks a little less to a white-box loss attack: AUC
    0.871–0.895 against 0.891–0.917 with skmia's loop, three seeds, at the same test
    accuracy as the paper's code (0.54–0.55) and the same released-output AUC (0.71);
    the paper's code reports 0.844 from its best-validation checkpoint, and at its own
    best-validation epoch (an early one) skmia's raw network reads 0.69–0.79
    (``benchmarks/paper_fidelity.py``, benchmarks/docs/paper_fidelity.md). The registry's Location30
    preset uses it. With few batches per epoch (1,000 rows of purchase-like data: 16)
    the restarts leave momentum 0.99 no time to build up, and HAMP stays untrained
    (test accuracy 0.13 against vanilla's 0.57), so the default is skmia's loop.

    *Where the defaults lose accuracy.* Without a learning-rate decay
    (``milestones=()``) at lr 0.5 and momentum 0.99, HAMP overfits small data: on
    Location30 with 30 epochs of a 256-unit MLP it peaks near vanilla after 6 epochs and
    ends at 0.42 against vanilla's 0.63 (purchase-like: 0.89, as vanilla); ``fit`` warns
    in that setting. Keep a decay, or lower ``lr``. ``benchmarks/defense_defaults.py``
    measures every defense's defaults against vanilla (table in
    benchmarks/docs/defense_defaults.md).

    References
    ----------
    .. [1] Z. Chen, K. Pattabiraman. "Overconfidence is a Dangerous Thing: Mitigating
       Membership Inference Attacks by Enforcing Less Confident Prediction".
       NDSS 2024. arXiv:2307.01610.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skmia.defenses import HAMPClassifier
    >>> X, y = make_classification(200, n_features=10, n_classes=3, n_informative=5,
    ...                            random_state=0)
    >>> clf = HAMPClassifier(entropy_percentile=0.5, max_epochs=3,
    ...                      module__hidden_sizes=(16,), random_state=0).fit(X, y)
    >>> bool((clf.predict(X) == clf.raw_module_(torch.as_tensor(X, dtype=torch.float32))
    ...       .argmax(1).numpy()).all())
    True
    """

    _parameter_constraints = {
        **MIADefenseClassifier._parameter_constraints,
        "criterion": [CROSS_ENTROPY],
        "entropy_percentile": [Interval(Real, 0, 1, closed="right")],
        "entropy_penalty": [Interval(Real, 0, None, closed="left")],
        "paper_loop": ["boolean"],
    }

    # saving (skmia.io): the feature range and the seed are also buffers of module_
    _fitted_attributes = {**MIADefenseClassifier._fitted_attributes,
                          "target_confidence_": float, "output_seed_": Int()}

    def __init__(self, module=MLP, *, entropy_percentile=0.8, entropy_penalty=0.01,
                 lr=SOFT_LABEL_SCHEDULE["lr"], max_epochs=SOFT_LABEL_SCHEDULE["max_epochs"],
                 batch_size=SOFT_LABEL_SCHEDULE["batch_size"],
                 milestones=SOFT_LABEL_SCHEDULE["milestones"], paper_loop=False, **kwargs):
        super().__init__(module, lr=lr, max_epochs=max_epochs, batch_size=batch_size,
                         milestones=milestones, **{**SOFT_LABEL_OPTIMIZER, **kwargs})
        self.entropy_percentile = entropy_percentile
        self.entropy_penalty = entropy_penalty
        self.paper_loop = paper_loop

    def _setup(self, X, y, classes=None):
        X, y = super()._setup(X, y, classes=classes)
        self._warn_if_no_decay()
        n_classes = len(self.label_encoder_.classes_)
        self.target_confidence_ = hamp_target_confidence(float(self.entropy_percentile),
                                                         n_classes)
        self.output_seed_ = int(np.random.default_rng(self.init_seed_).integers(2**62))
        self._training_rows = X
        return X, y

    def _warn_if_no_decay(self):
        """Warn where the defaults are known to lose accuracy: SGD at a step size of 10
        or more (``lr / (1 - momentum)``; the defaults' is 50) with no decay."""
        momentum = self.get_params_for("optimizer").get("momentum", 0.0)
        if self.milestones or self.optimizer is not torch.optim.SGD or momentum >= 1:
            return
        if self.lr / (1.0 - momentum) >= 10:
            warnings.warn(
                f"HAMPClassifier at lr={self.lr} with momentum {momentum} and no "
                f"learning-rate decay (milestones={self.milestones!r}) can overfit small "
                f"data: on Location30's 1,002 members it ends 21 points below vanilla. "
                f"Keep a decay (default milestones=(60, 90)) or lower lr.",
                UserWarning, stacklevel=4)

    def initialize_module(self):
        """Build the network and wrap it in HAMP's output modification."""
        super().initialize_module()
        shape = getattr(self, "input_shape_", None)
        if shape is None:
            raise ValueError("HAMPClassifier sizes its output modification from the "
                             "data: call fit.")
        wrapper = _HAMPOutputs(self.module_, math.prod(shape),
                               getattr(self, "output_seed_", 0))
        rows = getattr(self, "_training_rows", None)
        if rows is not None:
            wrapper.set_feature_range(rows)
            self._training_rows = None
        self.module_ = wrapper.to(self.device)
        return self

    def soft_labels(self, y_encoded, n_classes):
        """HAMP's soft labels of encoded labels: ``target_confidence_`` on the class,
        the rest spread evenly."""
        p = self.target_confidence_
        soft = torch.full((len(y_encoded), n_classes), (1.0 - p) / (n_classes - 1))
        return soft.scatter(1, torch.as_tensor(y_encoded).long().view(-1, 1), p)

    def _batch_refusal(self, X, fit_params):
        """Not batched in a bank of reference models: its network is wrapped in the
        output modification, and its objective is written for skorch's loop only."""
        return (f"{type(self).__name__} trains with a step of its own (soft labels, "
                "its output modification, the paper's loop)")

    def training_loss(self, logits, targets, X):
        """KL to the soft labels (mean over records and classes) − α · mean entropy."""
        n_classes = logits.shape[1]
        soft = self.soft_labels(targets.cpu(), n_classes).to(logits)
        log_proba = F.log_softmax(logits, dim=1)
        entropy = -(log_proba.exp() * log_proba).sum(dim=1).mean()
        return soft_label_kl(logits, soft) - self.entropy_penalty * entropy

    def __getstate__(self):
        state = super().__getstate__()
        state.pop("_training_rows", None)
        return state
