"""Defenses trained against a reference set of non-members (AdvReg, MemGuard)."""

from contextlib import contextmanager

__all__ = ["ReferenceSetMixin"]


class ReferenceSetMixin:
    """Holds ``fit(X, y, X_reference=..., y_reference=...)``'s non-members while the fit
    runs (``_reference_input``), never longer: they are not stored in the model.

    A subclass says what the reference set trains in ``_reference_role`` (for the error
    when it is missing) and may release more state in :meth:`_release_reference`.
    """

    _reference_role = "trains against non-members"

    def fit(self, X, y, *, X_reference=None, y_reference=None, **fit_params):
        with self._reference_set(X_reference, y_reference):
            return super().fit(X, y, **fit_params)

    def partial_fit(self, X, y, classes=None, *, X_reference=None, y_reference=None,
                    **fit_params):
        if getattr(self, "_reference_input", None) is not None and X_reference is None:
            # skorch's fit calls partial_fit; fit holds the reference set
            return super().partial_fit(X, y, classes=classes, **fit_params)
        with self._reference_set(X_reference, y_reference):
            return super().partial_fit(X, y, classes=classes, **fit_params)

    @contextmanager
    def _reference_set(self, X_reference, y_reference):
        if X_reference is None or y_reference is None:
            raise ValueError(
                f"{type(self).__name__} {self._reference_role} to tell the training rows "
                "from non-members: pass a reference set, fit(X, y, X_reference=..., "
                "y_reference=...), for example membership_split(...).reference. The "
                "training rows are never split to make one."
            )
        self._reference_input = (X_reference, y_reference)
        try:
            yield
        finally:
            self._reference_input = None
            self._release_reference()

    def _release_reference(self):
        """Drop what was built from the reference set during the fit (nothing here)."""
