"""Early stopping: vanilla training, kept at several epochs."""

from numbers import Integral

from skorch.callbacks import EarlyStopping

from .. import _registry
from .._rundir import Int, ListOf, check_json
from .._sklearn_compat import Interval
from .._validation import SequenceOf
from ..nn import MLP
from ._base import MIADefenseClassifier, ValidationData
from ._callbacks import _Snapshots

__all__ = ["EarlyStoppingClassifier"]

_PAPER_VALUES = _registry.METHODS["early_stopping"].paper_values
#: The reference code's Texas100 / Purchase100 snapshot epochs.
_REFERENCE_SNAPSHOTS = _PAPER_VALUES["tabular"]["snapshot_epochs"]


def _silent(*args, **kwargs):
    """A message sink that drops skorch's early-stopping notice (picklable)."""


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
    snapshot_epochs : sequence of int or None, default=None
        Numbers of completed epochs after which to keep the weights. Each must be
        reached by the training call: at most ``max_epochs`` (plus the epochs already
        trained, when ``warm_start`` continues them); one beyond raises a ValueError
        rather than keep no snapshot. None: those of the reference's Texas/Purchase
        epochs (5, 10, 20, 30, 40, 50, 60, 70, 100) that training reaches (CIFAR's
        are 5, 10, 15, 20, 30, 40, 50, 75, 100, 150, 200, 250; see
        :func:`~skmia.defenses.paper_defaults`).
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

    _parameter_constraints = {
        **MIADefenseClassifier._parameter_constraints,
        "snapshot_epochs": [SequenceOf(Interval(Integral, 1, None, closed="left")), None],
        "patience": [Interval(Integral, 1, None, closed="left"), None],
    }

    def __init__(
        self,
        module=MLP,
        *,
        snapshot_epochs=None,
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
        continuing = self.warm_start and self.initialized_ and hasattr(self, "label_encoder_")
        trained = len(self.history) if continuing else 0
        X, y = super()._setup(X, y, classes=classes)
        reached = trained + self.max_epochs
        if self.snapshot_epochs is None:
            epochs = [e for e in _REFERENCE_SNAPSHOTS if e <= reached]
        else:
            epochs = sorted({int(e) for e in self.snapshot_epochs})
        beyond = [e for e in epochs if e > reached]
        if beyond:
            raise ValueError(
                f"snapshot_epochs {tuple(beyond)} lie beyond the {reached} epochs this fit "
                f"reaches (max_epochs={self.max_epochs}"
                + (f" after {trained} trained" if trained else "")
                + "): no snapshot would be kept there. Lower snapshot_epochs or raise "
                "max_epochs."
            )
        if self.patience is not None and not isinstance(self.train_split, ValidationData):
            raise ValueError(
                "patience needs an explicit validation set: pass "
                "train_split=ValidationData(X_val, y_val). Rows given to fit are all "
                "trained on and never split off silently."
            )
        self.snapshot_epochs_ = epochs
        self.snapshots_ = {}
        return X, y

    def _checkpoint_state(self):
        # skorch's EarlyStopping keeps its best weights and its count of epochs without
        # improvement in the callback, which a checkpoint does not hold
        return None if self.patience is not None else super()._checkpoint_state()

    # ------------------------------------------------------------------ saving (skmia.io)

    _fitted_attributes = {**MIADefenseClassifier._fitted_attributes,
                          "snapshot_epochs_": ListOf(Int(0)), "snapshot_epoch_": Int(0)}
    _optional_attributes = (*MIADefenseClassifier._optional_attributes,
                            "snapshot_epoch_")  # only a snapshot has it
    _state_attributes = ("snapshots_",)

    def _saved_state(self):
        snapshots = getattr(self, "snapshots_", {})
        tensors = {f"{epoch}.{key}": value for epoch, state in snapshots.items()
                   for key, value in state.items()}
        return {"snapshots": sorted(int(e) for e in snapshots)}, tensors, {}

    def _restore_saved_state(self, values, tensors, estimators):
        if estimators:
            raise ValueError("an EarlyStoppingClassifier saves no estimators of its own")
        epochs = check_json(values, {"snapshots": ListOf(Int(0))}, "model.json")["snapshots"]
        expected = self.module_.state_dict()
        snapshots = {int(epoch): {} for epoch in epochs}
        for name, value in tensors.items():
            epoch, _, key = name.partition(".")
            if not epoch.isdigit() or int(epoch) not in snapshots or key not in expected:
                raise ValueError(f"tensor {name!r} is not of a saved snapshot")
            want = expected[key]
            if value.shape != want.shape or value.dtype != want.dtype:
                raise ValueError(f"tensor {name!r} is {value.dtype} of shape "
                                 f"{tuple(value.shape)}; the network has {want.dtype} of "
                                 f"shape {tuple(want.shape)}")
            snapshots[int(epoch)][key] = value
        for epoch, state in snapshots.items():
            missing = sorted(set(expected) - set(state))
            if missing:
                raise ValueError(f"tensor '{epoch}.{missing[0]}' of snapshot {epoch} is "
                                 "missing")
        self.snapshots_ = dict(sorted(snapshots.items()))

    def _training_finished(self, epochs_ended=None):
        stopper = dict(getattr(self, "callbacks_", [])).get("early_stopping")
        stopped = stopper is not None and stopper.misses_ >= stopper.patience
        return stopped or super()._training_finished(epochs_ended)

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

