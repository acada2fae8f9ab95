"""The base class of every defense: a skorch classifier with the reference defaults."""

import inspect
from numbers import Integral, Real

import numpy as np
import torch
from sklearn.base import clone
from sklearn.preprocessing import LabelEncoder
from sklearn.utils import check_random_state
from sklearn.utils.validation import check_is_fitted
from skorch import NeuralNetClassifier
from skorch.dataset import Dataset
from skorch.utils import is_dataset

from .._sklearn_compat import Interval, InvalidParameterError
from .._threads import with_thread_policy
from .._validation import Is, SequenceOf, validate_params
from ..nn import MLP
from ._batchable import BatchableTraining
from ._batches import _ArrayBatches
from ._callbacks import _SeededTraining, _StepDecay
from ._data import (
    CheckedInputs,
    ValidationData,
    _check_y,
    _valid_accuracy,
    check_device,
    in_memory_arrays,
)
from ._saving import SavedDefense
from ._training_rows import RecordsTrainingRows

__all__ = ["MIADefenseClassifier", "VanillaClassifier", "ValidationData", "check_device",
           "in_memory_arrays"]


#: The ``criterion`` constraint of a defense whose training objective is its own,
#: built on plain cross-entropy (RelaxLoss, label smoothing, DP-SGD, ...).
CROSS_ENTROPY = Is(
    torch.nn.CrossEntropyLoss,
    "torch.nn.CrossEntropyLoss (its training objective is built on cross-entropy)",
)

_REFERENCE_KWARGS = {
    "optimizer__momentum": 0.9,
    "optimizer__weight_decay": 1e-4,
    "iterator_train__shuffle": True,
    "verbose": 0,
}


def insert_callback(callbacks, name, callback):
    """``callbacks`` with ``(name, callback)`` added before skorch's ``print_log``, so that
    what it records each epoch is printed with the epoch."""
    names = [n for n, _ in callbacks]
    at = names.index("print_log") if "print_log" in names else len(callbacks)
    return [*callbacks[:at], (name, callback), *callbacks[at:]]


class MIADefenseClassifier(SavedDefense, RecordsTrainingRows, CheckedInputs,
                           BatchableTraining, NeuralNetClassifier):
    """Base class of skmia's defenses: a skorch classifier trained as the reference does.

    A subclass changes the training objective by overriding :meth:`training_objective`
    (written for K models at once, so that a bank of reference models trains it as one
    batched network), or adds training behaviour through skorch callbacks; ``fit``
    itself is skorch's.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=skmia.nn.MLP
        The network. When it is a class whose constructor takes ``n_features`` and/or
        ``n_classes``, those are filled in from the data at fit time unless set through
        ``module__n_features`` / ``module__n_classes``.
    criterion : torch loss class or instance, default=torch.nn.CrossEntropyLoss
        A loss on the module's logits and the encoded labels (options through
        ``criterion__*``). Plain training (:class:`VanillaClassifier`,
        :class:`~skmia.defenses.DropoutClassifier`,
        :class:`~skmia.defenses.EarlyStoppingClassifier`) minimises it, and every
        defense reports it on validation data (``valid_loss``). Defenses whose objective
        is their own, built on cross-entropy (RelaxLoss, confidence penalty, label
        smoothing, distillation, DP-SGD, AdvReg), accept only
        ``torch.nn.CrossEntropyLoss`` and no ``criterion__*`` option, rather than ignore
        another loss. ``predict_proba`` is the softmax of the logits whatever the loss.
    optimizer : torch optimizer class, default=torch.optim.SGD
        With ``optimizer__momentum=0.9`` and ``optimizer__weight_decay=1e-4`` by default.
    lr : float, default=0.1
        Initial learning rate, finite and > 0.
    max_epochs : int, default=120
        Number of epochs of ``fit``, at least 1.
    batch_size : int, default=128
        Mini-batch size, at least 1; -1 for one batch of all the rows.
    milestones : sequence of int, default=(50, 100)
        Epochs (counted from 0) at whose start the learning rate is multiplied by
        ``gamma``; ``()`` keeps it constant.
    gamma : float, default=0.1
        Learning-rate decay factor, > 0.
    train_split : None or ValidationData, default=None
        None trains on every row given to ``fit``. A :class:`ValidationData` adds an
        explicit validation set; rows are never split off silently.
    random_state : int, RandomState instance or None, default=None
        Seeds weight initialisation, shuffling and dropout. Two fits with the same int
        give identical weights on CPU. The global torch generator is left as it was.
    **kwargs
        Any other skorch parameter (``device``, ``callbacks``, ``verbose``,
        ``module__*``, ``optimizer__*``, ``iterator_train__*``, ...).

    Attributes
    ----------
    classes_ : ndarray of shape (n_classes,)
        The labels seen in ``fit``, sorted; predictions are drawn from them.
    n_features_in_ : int
        Number of features (for images, values per image) seen in ``fit``.
    input_shape_ : tuple of int
        Shape of one record.
    train_indices_ : ndarray of int64
        Positions, in the ``X`` of the last training call, of the rows trained on.
    train_digest_ : str
        BLAKE2b digest of the rows of the last training call (``X`` as float32,
        the encoded labels), as :meth:`training_rows` checks them; saved with the model.
    module_ : torch.nn.Module
        The trained network.
    history : skorch.callbacks.History
        Per-epoch training record.

    Notes
    -----
    Threat model: these are the models whose training rows an adversary tries to
    recognise from queries. Every row given to ``fit`` is a member.

    A fitted defense keeps weak references to the ``X`` and ``y`` it was trained on
    (not copies, and nothing that is saved), so that :meth:`training_rows` gives its
    members back to a privacy scorer
    (:func:`skmia.audit.make_privacy_scorer`) while those arrays are alive.

    Parameters are checked at ``fit`` and ``partial_fit`` against the class's
    ``_parameter_constraints`` table (scikit-learn's, extended by each subclass); a bad
    value raises ``InvalidParameterError`` (a ``ValueError``) naming it. skorch's
    own infrastructure parameters (``iterator_*``, ``dataset``, ``callbacks``, ...) are
    left to skorch.
    """

    _parameter_constraints = {
        "module": [callable],
        "criterion": [callable],
        "optimizer": [callable],
        "lr": [Interval(Real, 0, None, closed="neither")],
        "max_epochs": [Interval(Integral, 1, None, closed="left")],
        "batch_size": [Interval(Integral, 1, None, closed="left"), Is(-1, "-1 (all rows)")],
        "milestones": [SequenceOf(Interval(Integral, 0, None, closed="left")), None],
        "gamma": [Interval(Real, 0, None, closed="neither")],
        "train_split": [None, ValidationData, callable],
        "random_state": ["random_state"],
        "warm_start": ["boolean"],
        "verbose": ["verbose"],
        "classes": [None, "array-like"],
        "device": [str, torch.device, None],
    }

    def __init__(
        self,
        module=MLP,
        *,
        criterion=torch.nn.CrossEntropyLoss,
        optimizer=torch.optim.SGD,
        lr=0.1,
        max_epochs=120,
        batch_size=128,
        milestones=(50, 100),
        gamma=0.1,
        train_split=None,
        random_state=None,
        **kwargs,
    ):
        super().__init__(
            module,
            criterion=criterion,
            optimizer=optimizer,
            lr=lr,
            max_epochs=max_epochs,
            batch_size=batch_size,
            train_split=train_split,
            **{**_REFERENCE_KWARGS, **kwargs},
        )
        self.milestones = milestones
        self.gamma = gamma
        self.random_state = random_state

    # ------------------------------------------------------------------ skorch hooks

    @property
    def _default_callbacks(self):
        callbacks = [
            (name, _valid_accuracy() if name == "valid_acc" else cb)
            for name, cb in super()._default_callbacks
        ]
        return [*callbacks, ("lr_schedule", _StepDecay()), ("random_state", _SeededTraining())]

    def initialize_module(self):
        """Build the module, filling ``n_features``/``n_classes`` in from the data."""
        kwargs = self.get_params_for("module")
        if not isinstance(self.module, torch.nn.Module):
            kwargs = {**self._module_defaults(_accepted_parameters(self.module)), **kwargs}
        seed = getattr(self, "init_seed_", None)
        with torch.random.fork_rng(devices=[]):
            if seed is not None:
                torch.manual_seed(seed)
            self.module_ = self.initialized_instance(self.module, kwargs)
        return self

    def _module_defaults(self, accepted):
        """Module arguments derived from the data, for a module accepting ``accepted``."""
        defaults = {}
        if "n_features" in accepted:
            if not hasattr(self, "n_features_in_"):
                raise ValueError(
                    f"{type(self).__name__} sizes its module from the data: call fit, or "
                    f"set module__n_features and module__n_classes."
                )
            defaults["n_features"] = self.n_features_in_
        if "n_classes" in accepted and hasattr(self, "label_encoder_"):
            defaults["n_classes"] = len(self.label_encoder_.classes_)
        return defaults

    def get_split_datasets(self, X, y=None, **fit_params):
        if isinstance(self.train_split, ValidationData):
            X_valid, y_valid = self._check_training_data(
                self.train_split.X, self.train_split.y, what="validation data"
            )
            dataset_train = self.get_dataset(X, y)
            dataset_valid = Dataset(X_valid, y_valid)
        else:
            dataset_train, dataset_valid = super().get_split_datasets(X, y, **fit_params)
        indices = getattr(dataset_train, "indices", None)
        self.train_indices_ = np.asarray(
            indices if indices is not None else np.arange(len(dataset_train)), dtype=np.int64
        )
        return dataset_train, dataset_valid

    def get_iterator(self, dataset, training=False):
        """Mini-batches by slicing whole tensors when the data are plain arrays.

        skorch's default ``DataLoader`` fetches and collates one record at a time; with
        the default iterator and in-memory arrays, skmia slices a permutation of the
        rows instead (shuffled with torch's generator, which ``random_state`` seeds).
        Any other iterator or ``iterator_*`` option goes through skorch unchanged.
        """
        prefix = "iterator_train" if training else "iterator_valid"
        kwargs = self.get_params_for(prefix)
        if (
            getattr(self, prefix) is not torch.utils.data.DataLoader
            or type(dataset) is not Dataset
            or not set(kwargs) <= {"shuffle", "batch_size"}
            or not isinstance(dataset.X, (np.ndarray, torch.Tensor))
            or not (dataset.y is None or isinstance(dataset.y, (np.ndarray, torch.Tensor)))
        ):
            return super().get_iterator(dataset, training=training)
        batch_size = kwargs.get("batch_size", self.batch_size)
        if batch_size == -1:
            batch_size = len(dataset)
        return _ArrayBatches(dataset.X, dataset.y, batch_size, bool(kwargs.get("shuffle")))

    def get_loss(self, y_pred, y_true, X=None, training=False):
        """The training objective during training, ``criterion`` otherwise."""
        y_true = y_true.to(y_pred.device)
        if training:
            return self.training_loss(y_pred, y_true, X)
        return self.criterion_(y_pred, y_true)

    def _training_finished(self, epochs_ended=None):
        """Whether the training from scratch (or its continuation from a checkpoint to
        ``max_epochs``) ran in full. skorch ends ``fit`` quietly when a
        ``KeyboardInterrupt`` stops it, the interrupted epoch in the history.

        ``epochs_ended`` counts the epochs that every callback ended; None counts those
        whose ``train_loss`` was recorded, at the start of an epoch's end.
        """
        if epochs_ended is None:
            last = self.history[-1] if len(self.history) else {}
            epochs_ended = len(self.history) - (0 if "train_loss" in last else 1)
        return epochs_ended >= self.max_epochs

    @property
    def current_epoch(self):
        """Index, from 0, of the epoch being trained (or last trained)."""
        return max(len(self.history) - 1, 0)

    # ------------------------------------------------------------------ data handling

    @with_thread_policy
    def fit(self, X, y, **fit_params):
        """Train from scratch on every row of ``X`` (all of them members).

        Parameters
        ----------
        X : array-like of shape (n_samples, n_features) or (n_samples, C, H, W)
            Training records: a 2-D table or a batch of images.
        y : array-like of shape (n_samples,)
            Labels of any type; ``classes_`` keeps them.
        **fit_params
            Passed to skorch's ``fit``.

        Returns
        -------
        self : object
            The fitted classifier.
        """
        self._check_params()
        check_device(self.device)
        given = X, y
        continuing = self.warm_start and self.initialized_ and len(self.history) > 0
        X, y = self._setup(X, y)
        super().fit(X, y, **fit_params)
        return self._record_training_call(given, X, self.label_encoder_.transform(y),
                                          continuing)

    @with_thread_policy
    def partial_fit(self, X, y, classes=None, **fit_params):
        """Continue training for ``max_epochs`` more epochs (initialising if needed).

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Training records.
        y : array-like of shape (n_samples,)
            Labels, from the classes seen so far (or from ``classes``).
        classes : array-like, default=None
            All labels, when the first call does not show them all.
        **fit_params
            Passed to skorch's ``partial_fit``.

        Returns
        -------
        self : object
            The fitted classifier.
        """
        self._check_params()
        check_device(self.device)
        given = X, y
        continuing = self.initialized_ and len(self.history) > 0
        if not self.initialized_ or not hasattr(self, "label_encoder_"):
            X, y = self._setup(X, y, classes=classes)
            self.initialize()
        refused = self.resume_refusal_
        if refused:  # a model loaded without the state its training needs
            raise ValueError(
                f"{type(self).__name__}.partial_fit cannot continue this loaded model: "
                f"{refused}. It predicts as saved; fit trains it again from scratch."
            )
        X, y = self._check_training_data(X, y)
        super().partial_fit(X, y, **fit_params)
        return self._record_training_call(given, X, y, continuing)

    def _check_params(self):
        """Check the parameters against ``_parameter_constraints``, at fit.

        A defense whose ``criterion`` must be :data:`CROSS_ENTROPY` trains on its own
        objective, so ``criterion__*`` options, which would not change it, are refused.
        (skorch's own ``_validate_params``, run by ``initialize`` and ``set_params``,
        checks the names of routed parameters only.)
        """
        validate_params(self)
        if self._parameter_constraints["criterion"] == [CROSS_ENTROPY]:
            routed = sorted(self.get_params_for("criterion"))
            if routed:
                raise InvalidParameterError(
                    f"{type(self).__name__} trains on its own objective, built on plain "
                    f"cross-entropy: criterion__{routed[0]} would not change it. Remove "
                    f"the criterion__* parameters "
                    f"({', '.join('criterion__' + k for k in routed)})."
                )

    def _setup(self, X, y, classes=None):
        """Learn what ``fit`` needs from the data: shapes, classes, seeds."""
        X = self._check_X(X, reset=True)
        y = _check_y(y, len(X))
        if classes is None:
            classes = self.classes
        encoder = LabelEncoder().fit(y if classes is None else np.asarray(classes))
        if len(encoder.classes_) < 2:
            raise ValueError(
                f"{type(self).__name__} needs samples of at least 2 classes in the data, "
                f"but the data contains only one class: {encoder.classes_[0]!r}."
            )
        unknown = np.setdiff1d(np.unique(y), encoder.classes_)
        if len(unknown):
            raise ValueError(f"y has labels not in classes: {unknown.tolist()}")
        self.label_encoder_ = encoder
        self._resume_refused = None  # a fit from scratch needs nothing a loaded model lacks
        self._resume_rng_state = None
        seeds = check_random_state(self.random_state).randint(np.iinfo(np.int32).max, size=2)
        self.init_seed_, self.training_seed_ = (int(s) for s in seeds)
        return X, y

    # ------------------------------------------------------------------ prediction

    @property
    def classes_(self):
        check_is_fitted(self, "label_encoder_")
        return self.label_encoder_.classes_

    def predict_proba(self, X):
        """Softmax probabilities, one column per class of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Records shaped as in ``fit``.

        Returns
        -------
        proba : ndarray of shape (n_samples, n_classes)
            Rows sum to 1.
        """
        check_is_fitted(self, ["label_encoder_", "module_"])
        if is_dataset(X):  # skorch's own callbacks pass validation datasets as they are
            return super().predict_proba(X)
        return super().predict_proba(self._check_X(X, reset=False))

    def predict(self, X):
        """The most probable class of each record, as a label of ``classes_``.

        Parameters
        ----------
        X : array-like of shape (n_samples, ...)
            Records shaped as in ``fit``.

        Returns
        -------
        y_pred : ndarray of shape (n_samples,)
            Predicted labels.
        """
        return self.classes_[self.predict_proba(X).argmax(axis=1)]

    def __sklearn_tags__(self):
        tags = super().__sklearn_tags__()
        tags.non_deterministic = self.random_state is None
        return tags

    def _fitted_copy(self, state_dict):
        """A fitted classifier like ``self`` (same parameters, classes, shapes) with the
        module weights ``state_dict``, sharing nothing mutable with ``self``."""
        other = clone(self)
        for name in ("label_encoder_", "input_shape_", "n_features_in_", "init_seed_",
                     "training_seed_", "train_indices_", "train_digest_",
                     "_training_rows"):
            if hasattr(self, name):
                setattr(other, name, getattr(self, name))
        other.initialize()
        other.module_.load_state_dict(state_dict)
        return other


# the batched bank reproduces this class's training loop (see BatchableTraining)
MIADefenseClassifier._batched_loop = MIADefenseClassifier


def _accepted_parameters(factory):
    try:
        return set(inspect.signature(factory).parameters)
    except (TypeError, ValueError):
        return set()


class VanillaClassifier(MIADefenseClassifier):
    """No defense: plain cross-entropy training, the reference code's ``vanilla``.

    The baseline every defense is measured against. See :class:`MIADefenseClassifier`
    for the parameters, which follow the reference code (SGD, lr 0.1, momentum 0.9,
    weight decay 1e-4, batch 128, learning rate ×0.1 at epochs 50 and 100 of 120).

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skmia.defenses import VanillaClassifier
    >>> X, y = make_classification(200, n_features=10, n_informative=6, random_state=0)
    >>> clf = VanillaClassifier(max_epochs=5, module__hidden_sizes=(32,), random_state=0)
    >>> clf.fit(X, y).predict_proba(X[:2]).shape
    (2, 2)
    """

