"""The private scikit-learn names skmia uses, imported here only.

scikit-learn keeps its parameter validation (``_param_validation``), ``_fit_context``
and ``_safe_indexing`` private, and may move them between releases. Every skmia module
imports them from here, so that a change of scikit-learn is met in this one file (as
imbalanced-learn's ``sklearn-compat`` shim does). Tested with scikit-learn >= 1.6.
"""

from sklearn.base import _fit_context
from sklearn.utils import _safe_indexing
from sklearn.utils._param_validation import (
    HasMethods,
    Interval,
    InvalidParameterError,
    Options,
    StrOptions,
    _Constraint,
    make_constraint,
    validate_params,
)

__all__ = [
    "HasMethods",
    "Interval",
    "InvalidParameterError",
    "Options",
    "StrOptions",
    "_Constraint",
    "_fit_context",
    "_safe_indexing",
    "make_constraint",
    "validate_params",
]
