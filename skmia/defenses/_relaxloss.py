"""RelaxLoss (Chen, Yu & Fritz, ICLR 2022)."""

import math
import warnings
from numbers import Real

from .._sklearn_compat import Interval, StrOptions
from ..nn import MLP
from ._base import CROSS_ENTROPY, MIADefenseClassifier, insert_callback
from ._callbacks import _ObjectiveLog
from ._losses import FLATTEN_MODES, relaxloss

__all__ = ["RelaxLossClassifier"]

#: What ``train_loss`` holds on even and on odd epochs (the history's ``train_objective``,
#: recorded at each epoch's start by a callback, in skorch's loop as in a batched bank).
RELAXLOSS_OBJECTIVES = ("|CE - alpha|", "CE, or flattening below alpha")


class RelaxLossClassifier(MIADefenseClassifier):
    """RelaxLoss: train to a target loss level instead of to zero loss.

    Members of an overfit model have much lower loss than non-members; RelaxLoss keeps
    the mean training loss near ``alpha`` so that the two loss distributions overlap,
    and flattens the posteriors of records already fitted well, with little cost in
    accuracy. Per mini-batch, with ``L`` the batch-mean cross-entropy and epochs counted
    from 0:

    - even epoch: minimise ``|L - alpha|`` (gradient descent above ``alpha``, ascent
      below);
    - odd epoch: minimise ``L`` while ``L > alpha``; otherwise *posterior flattening*:
      the soft target keeps ``t_y = min(p_y, upper)`` on the true class and spreads
      ``1 - t_y`` evenly over the ``C - 1`` others (built from the softmax without
      detaching it, as the reference does).

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=skmia.nn.MLP
        The network; see :class:`MIADefenseClassifier`.
    alpha : float, default=1.0
        Target level of the mean cross-entropy, > 0. Paper values: Texas100 2.5, Purchase100
        0.8, CIFAR-10 1 (resnet20) / 0.4 (vgg11_bn), CIFAR-100 3 / 0.5.
    upper : float, default=1.0
        Cap on the true-class probability of the flattened target, in (0, 1]. Paper values: Texas100
        0.1, Purchase100 0.3, CIFAR 1.
    flatten_mode : {"auto", "tabular", "image"}, default="auto"
        The flattening loss. ``"tabular"`` (the reference's Texas/Purchase code): mean
        soft-label cross-entropy. ``"image"`` (its CIFAR code): mean of
        ``(1 - correct_i) * softCE_i - CE_i``. ``"auto"`` picks ``"image"`` for 4-D
        inputs and ``"tabular"`` otherwise.
    **kwargs
        Every other parameter of :class:`MIADefenseClassifier` (``max_epochs``,
        ``lr``, ``milestones``, ``random_state``, ``module__*``, ...).

    Attributes
    ----------
    flatten_mode_ : str
        The flattening loss used.
    history : skorch.callbacks.History
        Per epoch, besides skorch's keys, ``train_objective``: which objective
        ``train_loss`` holds that epoch, ``"|CE - alpha|"`` (even epochs) or
        ``"CE, or flattening below alpha"`` (odd epochs); the two are not on one scale,
        and :func:`skmia.report.training_curves_figure` draws them apart.

    Notes
    -----
    Threat model: a black-box adversary who queries the model with labelled records and
    sees its outputs (logits or probabilities, hence the loss). RelaxLoss narrows the gap
    between member and non-member losses, which all score-based attacks exploit.

    Utility of the default: ``alpha=1.0`` holds the mean training loss at one nat, the
    loss of a true-class probability of ``e^-1 ≈ 0.37`` on every record; the paper
    tunes ``alpha`` per dataset (0.8 to 3, above) on its full training sets. On 1,000
    members, 30 epochs, one hidden layer of 256, the default ends 18 points below an
    undefended network on Location30 (0.449 against 0.629) and 12 points below on
    synthetic purchase-like data (0.768 against 0.889;
    ``benchmarks/defense_defaults.py --recipes small``, benchmarks/docs/defense_defaults.md);
    smaller
    ``alpha`` trades privacy back for accuracy (``benchmarks/location_relaxloss_grid.py``).
    ``fit`` warns only when ``alpha`` is at least ``ln C`` for ``C`` classes, the loss
    of predicting every class alike: the target then asks for no better than chance
    confidence. Below that the accuracy lost depends on the data, which ``fit`` cannot
    see without held-out rows.

    References
    ----------
    .. [1] D. Chen, N. Yu, M. Fritz. "RelaxLoss: Defending Membership Inference Attacks
       without Losing Utility". ICLR 2022. arXiv:2207.05801.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skmia.defenses import RelaxLossClassifier
    >>> X, y = make_classification(300, n_features=20, n_informative=10, n_classes=3,
    ...                            random_state=0)
    >>> clf = RelaxLossClassifier(alpha=0.5, max_epochs=4, module__hidden_sizes=(64,),
    ...                           random_state=0).fit(X, y)
    >>> clf.predict(X[:3]).shape
    (3,)
    """

    _fitted_attributes = {**MIADefenseClassifier._fitted_attributes, "flatten_mode_": str}

    _parameter_constraints = {
        **MIADefenseClassifier._parameter_constraints,
        "criterion": [CROSS_ENTROPY],
        "alpha": [Interval(Real, 0, None, closed="neither")],
        "upper": [Interval(Real, 0, 1, closed="right")],
        "flatten_mode": [StrOptions({"auto", *FLATTEN_MODES})],
    }

    def __init__(self, module=MLP, *, alpha=1.0, upper=1.0, flatten_mode="auto", **kwargs):
        super().__init__(module, **kwargs)
        self.alpha = alpha
        self.upper = upper
        self.flatten_mode = flatten_mode

    def _setup(self, X, y, classes=None):
        X, y = super()._setup(X, y, classes=classes)
        if self.flatten_mode == "auto":
            self.flatten_mode_ = "image" if len(self.input_shape_) == 3 else "tabular"
        else:
            self.flatten_mode_ = self.flatten_mode
        n_classes = len(self.classes_)
        if self.alpha >= math.log(n_classes):
            warnings.warn(
                f"alpha={self.alpha:g} is not below ln({n_classes}) = "
                f"{math.log(n_classes):.3g}, the cross-entropy of predicting all "
                f"{n_classes} classes alike: RelaxLoss would hold the training loss no "
                "lower than chance does. Choose alpha well below it.", UserWarning,
                stacklevel=3)
        return X, y

    @property
    def _default_callbacks(self):
        return insert_callback(super()._default_callbacks, "objective", _ObjectiveLog())

    def _objective_name(self, epoch):
        """What ``train_loss`` holds at ``epoch`` (from 0), for the history."""
        return RELAXLOSS_OBJECTIVES[epoch % 2]

    def training_objective(self, logits, targets, batches):
        """RelaxLoss's objective on each model's mini-batch (Chen et al.,
        arXiv:2207.05801, Alg. 1).

        With ``L`` a batch's mean cross-entropy and epochs counted from 0: on even epochs
        ``|L - alpha|`` (gradient descent while the loss is above ``alpha``, ascent
        below, so it hovers at ``alpha``); on odd epochs ``L`` while ``L > alpha``, else
        posterior flattening: the cross-entropy against soft targets
        ``t_y = min(p_y, upper)``, the rest of the mass spread evenly over the other
        classes, as :func:`skmia.defenses._losses.relaxloss` computes it
        (``flatten_mode`` picks the reference's tabular or CIFAR variant). Each of K
        models takes the branch of its own ``L``.
        """
        return relaxloss(logits, targets, epoch=batches.epoch, alpha=self.alpha,
                         upper=self.upper, flatten_mode=self.flatten_mode_,
                         mean=batches.mean)
