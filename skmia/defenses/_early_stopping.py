"""Early stopping: vanilla training, kept at several epochs."""

import numpy as np
from skorch.callbacks import Callback, EarlyStopping

from ..nn import MLP
from ._base import MIADefenseClassifier, ValidationData

__all__ = ["EarlyStoppingClassifier"]


def _silent(*args, **kwargs):
    """A message sink that drops skorch's early-stopping notice (picklable)."""


class _Snapshots(Callback):
    def on_epoch_end(self, net, **kwargs):
        epoch = len(net.history)  # epochs completed
        if epoch in net.snapshot_epochs_:
            net.snapshots_[epoch] = {
                k: v.detach().to("cpu", copy=True) for k, v in net.module_.state_dict().items()
            }


class EarlyStoppingClassifier(MIADefenseClassifier):
    """Vanilla training that keeps a snapshot of the network at given epochs.

    Stopping early trades accuracy for a smaller generalisation gap. Like the reference
    code, one training run keeps the weights after each epoch in ``snapshot_epochs``;
    :meth:`snapshot` returns each as a fitted classifier, so that every stopping point
    can be attacked. The classifier itself is the network after ``max_epochs`` epochs
    (or after early stopping, see ``patience``).

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=skmia.nn.MLP
        The network; see :class:`MIADefenseClassifier`.
    snapshot_epochs : sequence of int, default=(5, 10, 20, 30, 40, 50, 60, 70, 100)
        Numbers of completed epochs after which to keep the weights (the reference's
        Texas/Purchase values; CIFAR: 5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 250).
        Epochs beyond ``max_epochs`` are never reached and are dropped.
    patience : int or None, default=None
        Stop when the validation loss has not improved for ``patience`` epochs, and keep
        the best weights. Needs an explicit validation set,
        ``train_split=ValidationData(X_val, y_val)``: rows are never split off silently.
    **kwargs
        Every other parameter of :class:`MIADefenseClassifier`.

    Attributes
    ----------
    snapshots_ : dict of int to dict
        Epoch -> module ``state_dict`` (on the CPU).

    Notes
    -----
    Threat model: a black-box adversary reading the model's outputs.

    References
    ----------
    .. [1] D. Chen, N. Yu, M. Fritz. "RelaxLoss: Defending Membership Inference Attacks
       without Losing Utility". ICLR 2022. arXiv:2207.05801 (the early-stopping baseline).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skmia.defenses import EarlyStoppingClassifier
    >>> X, y = make_classification(200, n_features=10, random_state=0)
    >>> clf = EarlyStoppingClassifier(snapshot_epochs=(1, 3), max_epochs=4,
    ...                               module__hidden_sizes=(16,), random_state=0).fit(X, y)
    >>> sorted(clf.snapshots_)
    [1, 3]
    >>> clf.snapshot(1).predict(X[:2]).shape
    (2,)
    """

    def __init__(
        self,
        module=MLP,
        *,
        snapshot_epochs=(5, 10, 20, 30, 40, 50, 60, 70, 100),
        patience=None,
        **kwargs,
    ):
        super().__init__(module, **kwargs)
        self.snapshot_epochs = snapshot_epochs
        self.patience = patience

    @property
    def _default_callbacks(self):
        return [*super()._default_callbacks, ("snapshots", _Snapshots())]

    def initialize_callbacks(self):
        super().initialize_callbacks()
        if self.patience is not None:
            stopper = EarlyStopping(patience=self.patience, load_best=True, sink=_silent)
            stopper.initialize()
            self.callbacks_.append(("early_stopping", stopper))
        return self

    def _setup(self, X, y, classes=None):
        X, y = super()._setup(X, y, classes=classes)
        epochs = np.asarray(self.snapshot_epochs, dtype=float).ravel()
        if np.any(epochs < 1) or np.any(epochs != np.round(epochs)):
            raise ValueError(
                f"snapshot_epochs must be positive integers, got {self.snapshot_epochs!r}"
            )
        if self.patience is not None:
            if not (isinstance(self.patience, int) and self.patience >= 1):
                raise ValueError(f"patience must be a positive int or None, got {self.patience!r}")
            if not isinstance(self.train_split, ValidationData):
                raise ValueError(
                    "patience needs an explicit validation set: pass "
                    "train_split=ValidationData(X_val, y_val). Rows given to fit are all "
                    "trained on and never split off silently."
                )
        self.snapshot_epochs_ = sorted({int(e) for e in epochs})
        self.snapshots_ = {}
        return X, y

    def snapshot(self, epoch):
        """The classifier as it was after ``epoch`` completed epochs.

        Parameters
        ----------
        epoch : int
            One of the epochs in ``snapshots_``.

        Returns
        -------
        clf : EarlyStoppingClassifier
            A fitted classifier with the snapshot's weights, independent of ``self``.
        """
        if epoch not in getattr(self, "snapshots_", {}):
            available = sorted(getattr(self, "snapshots_", {}))
            raise KeyError(f"no snapshot at epoch {epoch}; available: {available}")
        other = self._fitted_copy(self.snapshots_[epoch])
        other.snapshots_ = {}
        other.snapshot_epoch_ = epoch
        return other

