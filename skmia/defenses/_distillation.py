"""Knowledge distillation: a student trained on a teacher's softened outputs."""

from numbers import Real

import numpy as np
import torch
from sklearn.base import clone
from sklearn.exceptions import NotFittedError
from sklearn.utils.validation import check_is_fitted

from .._sklearn_compat import HasMethods, Interval
from ..nn import MLP
from ._base import CROSS_ENTROPY, MIADefenseClassifier, VanillaClassifier
from ._losses import distillation_per_record

__all__ = ["DistillationClassifier"]


class DistillationClassifier(MIADefenseClassifier):
    """A student trained on ``alpha·T²·KL(teacher_T ‖ student_T) + (1 − alpha)·CE``.

    The student learns the teacher's temperature-softened posteriors, which are less
    peaked on members than hard labels. With ``teacher=None`` a
    :class:`VanillaClassifier` of the same architecture and training settings is first
    trained on the same rows (the reference trains it in a separate run). A teacher
    given already fitted is used as is, never refit or modified; an unfitted one is
    cloned and fitted on the rows.

    Parameters
    ----------
    module : torch.nn.Module class or instance, default=skmia.nn.MLP
        The student network; see :class:`MIADefenseClassifier`.
    teacher : classifier or None, default=None
        A skmia defense or skorch classifier with the same classes, fitted or not.
    temperature : float, default=10
        Softmax temperature ``T`` of both teacher and student in the KL term, > 0.
    alpha : float, default=0.5
        Weight of the KL term, in [0, 1].
    **kwargs
        Every other parameter of :class:`MIADefenseClassifier`.

    Attributes
    ----------
    teacher_ : classifier
        The teacher used.

    Notes
    -----
    Threat model: a black-box adversary reading the student's outputs. The KL term is
    summed over classes and averaged over records (``batchmean``). The reference code
    averages it over records *and* classes, which weakens the KL term by a factor of the
    number of classes; the reference has distillation for CIFAR only, skmia for any data.

    References
    ----------
    .. [1] G. Hinton, O. Vinyals, J. Dean. "Distilling the Knowledge in a Neural
       Network". NIPS 2014 Deep Learning Workshop. arXiv:1503.02531.

    Examples
    --------
    >>> from sklearn.datasets import make_classification
    >>> from skmia.defenses import DistillationClassifier
    >>> X, y = make_classification(200, n_features=10, random_state=0)
    >>> clf = DistillationClassifier(max_epochs=3, module__hidden_sizes=(16,),
    ...                              random_state=0).fit(X, y)
    >>> type(clf.teacher_).__name__
    'VanillaClassifier'
    """

    _parameter_constraints = {
        **MIADefenseClassifier._parameter_constraints,
        "criterion": [CROSS_ENTROPY],
        "teacher": [HasMethods(["fit", "predict_proba"]), None],
        "temperature": [Interval(Real, 0, None, closed="neither")],
        "alpha": [Interval(Real, 0, 1, closed="both")],
    }

    def __init__(self, module=MLP, *, teacher=None, temperature=10.0, alpha=0.5, **kwargs):
        super().__init__(module, **kwargs)
        self.teacher = teacher
        self.temperature = temperature
        self.alpha = alpha

    def _setup(self, X, y, classes=None, teacher=None):
        """``teacher``: the teacher already trained on these rows (the vectorised bank
        trains the teachers of its students together first)."""
        X, y = super()._setup(X, y, classes=classes)
        self.teacher_ = self._fit_teacher(X, y) if teacher is None else teacher
        return X, y

    def _teacher_short(self):
        """Whether the teacher trained here stopped short of its epochs (skorch's fit
        swallows a KeyboardInterrupt, and the student then trains on it)."""
        teacher = getattr(self, "teacher_", None)
        trained_here = teacher is not self.teacher and hasattr(teacher, "_training_finished")
        return trained_here and not teacher._training_finished()

    def _training_finished(self, epochs_ended=None):
        return super()._training_finished(epochs_ended) and not self._teacher_short()

    def _checkpoint_state(self):
        return None if self._teacher_short() else super()._checkpoint_state()

    # saving (skmia.io): the teacher is saved whole, as a model of its own
    _state_attributes = ("teacher_",)

    def _saved_state(self):
        teacher = getattr(self, "teacher_", None)
        return {}, {}, ({} if teacher is None else {"teacher": teacher})

    def _restore_saved_state(self, values, tensors, estimators):
        unknown = sorted({*values, *tensors, *estimators} - {"teacher"})
        if unknown:
            raise ValueError(f"{unknown[0]!r} is not what a DistillationClassifier saves")
        if "teacher" in estimators:
            self.teacher_ = estimators["teacher"]
        elif not self.resume_refusal_:  # training further needs the teacher
            raise KeyError("teacher")

    def _fit_teacher(self, X, y):
        teacher = self.teacher
        if teacher is None:
            return self._teacher_recipe().fit(X, y)
        if _is_fitted(teacher):
            teacher_classes = np.asarray(teacher.classes_)
            if not np.array_equal(np.sort(teacher_classes), self.label_encoder_.classes_):
                raise ValueError(
                    f"the teacher was fitted on classes {teacher_classes.tolist()}, the "
                    f"student's data has {self.label_encoder_.classes_.tolist()}"
                )
            return teacher
        return clone(teacher).fit(X, y)

    def _teacher_recipe(self):
        """The teacher trained with ``teacher=None``: vanilla, with the student's settings."""
        params = {
            k: v for k, v in self.get_params(deep=False).items()
            if k not in ("teacher", "temperature", "alpha", "callbacks")
        }
        return VanillaClassifier(**params)

    # the vectorised bank (skmia.model_selection.ReferenceModels): teachers first, batched
    def _batched_teacher(self):
        return self._teacher_recipe() if self.teacher is None else None

    def _batch_refusal(self, X, fit_params):
        if self.teacher is not None:  # a bank's clones hold unfitted clones of it
            reason = "a teacher is given, and each model fits its own clone of it"
            return super()._batch_refusal(X, fit_params) or self._refusal([reason])
        teacher = self._teacher_recipe()._batch_refusal(X, {})
        return (super()._batch_refusal(X, fit_params)
                or self._refusal([teacher and f"its teacher: {teacher}"]))

    def training_objective(self, logits, targets, batches):
        """Each student's mean over its rows of
        :func:`~skmia.defenses._losses.distillation_per_record`, against its own
        teacher's logits on its batch."""
        with torch.no_grad():
            teacher_logits = self._teachers_logits(batches)
        n_classes = logits.shape[-1]
        values = distillation_per_record(
            logits.reshape(-1, n_classes), targets.reshape(-1),
            teacher_logits.reshape(-1, n_classes), temperature=self.temperature,
            alpha=self.alpha)
        return batches.mean(values.reshape(targets.shape))

    def _teachers_logits(self, batches):
        """``(K, B, C)``: each student's teacher on its batch; stacked students' teachers
        are stacked once per group (kept in ``batches.cache``)."""
        if not batches.stacked:
            return self._teacher_logits(batches.inputs)[None]
        # the batched engine's stacked network (internal to the engine, not public)
        from ..nn._batched import StackedMLP

        if "teachers" not in batches.cache:
            batches.cache["teachers"] = StackedMLP(
                [m.teacher_.module_ for m in batches.models], device=batches.inputs.device)
        return batches.cache["teachers"].forward(batches.inputs)

    def _teacher_logits(self, X):
        teacher = self.teacher_
        module = teacher.module_
        was_training = module.training
        module.eval()
        try:
            param = next(module.parameters(), None)
            device = param.device if param is not None else X.device
            logits = module(X.to(device)).to(X.device)
        finally:
            module.train(was_training)
        # a teacher whose classes_ are in another order gets its columns reordered
        order = _class_order(teacher, self.label_encoder_.classes_)
        return logits if order is None else logits[:, order]


def _is_fitted(estimator):
    try:
        check_is_fitted(estimator)
    except (NotFittedError, AttributeError, TypeError):
        return False
    return hasattr(estimator, "module_")


def _class_order(teacher, classes):
    teacher_classes = np.asarray(teacher.classes_)
    if np.array_equal(teacher_classes, classes):
        return None
    position = {c: i for i, c in enumerate(teacher_classes.tolist())}
    return torch.as_tensor([position[c] for c in classes.tolist()])
