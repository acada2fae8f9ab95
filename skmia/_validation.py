"""Declarative parameter validation: scikit-learn's ``_parameter_constraints``, plus
the few constraints skmia's estimators need that scikit-learn has no name for.

Each estimator class holds one table, ``_parameter_constraints`` (``name -> list of
constraints``, any one of which a valid value meets), checked at ``fit`` by
:func:`validate_params`; a subclass extends its parent's table
(``{**Parent._parameter_constraints, "alpha": [...]}``). Constraints are those of
``sklearn.utils._param_validation`` (``Interval``, ``StrOptions``, ``Options``,
``HasMethods``, ``"boolean"``, ``"random_state"``, ``None``, a type, ``callable``) or
the :class:`SequenceOf` / :class:`Is` below, and the error is scikit-learn's
``InvalidParameterError`` (a ``ValueError`` and a ``TypeError``) in its wording:
"The 'max_epochs' parameter of VanillaClassifier must be an int in the range [1, inf).
Got 0 instead." Unlike scikit-learn's, an ``Interval`` here takes no bool: ``True`` is
not a learning rate.
"""

from numbers import Integral

import numpy as np

from ._sklearn_compat import (
    Interval,
    InvalidParameterError,
    _Constraint,
    make_constraint,
)

__all__ = ["Is", "SequenceOf", "validate_params"]


class SequenceOf(_Constraint):
    """A list, tuple or 1-D array whose every item meets ``item`` (an ``Interval``).

    Strings, sets and scalars are refused; so is an empty sequence unless
    ``allow_empty``.
    """

    def __init__(self, item, *, allow_empty=True):
        super().__init__()
        if not isinstance(item, Interval):
            raise TypeError(f"SequenceOf needs an Interval, got {item!r}.")
        self.item = item
        self.allow_empty = allow_empty

    def is_satisfied_by(self, val):
        if isinstance(val, np.ndarray):
            if val.ndim != 1:
                return False
            val = val.tolist()
        if not isinstance(val, (list, tuple)):
            return False
        if not val and not self.allow_empty:
            return False
        return all(
            not isinstance(v, bool) and self.item.is_satisfied_by(v) for v in val
        )

    def __str__(self):
        kind = "ints" if self.item.type is Integral else "numbers"
        where = str(self.item).split(" in the range ", 1)[1]
        empty = "" if self.allow_empty else "non-empty "
        return f"a {empty}sequence of {kind} in the range {where}"


class Is(_Constraint):
    """Exactly ``value``, described as ``text`` in errors.

    The same object, or, for an int ``value``, an equal int (numpy's included, bools
    not).
    """

    def __init__(self, value, text):
        super().__init__()
        self.value = value
        self.text = text

    def is_satisfied_by(self, val):
        if val is self.value:
            return True
        return (
            isinstance(self.value, Integral)
            and isinstance(val, Integral)
            and not isinstance(val, (bool, np.bool_))
            and val == self.value
        )

    def __str__(self):
        return self.text


def _constraint(constraint):
    return constraint if isinstance(constraint, _Constraint) else make_constraint(constraint)


def _satisfies(constraint, value):
    if isinstance(constraint, Interval) and isinstance(value, (bool, np.bool_)):
        return False
    return constraint.is_satisfied_by(value)


def validate_params(estimator):
    """Check ``estimator``'s parameters against its class's ``_parameter_constraints``.

    Parameters the table does not list are not checked (skorch's many routed and
    infrastructure parameters among them).

    Raises
    ------
    sklearn.utils._param_validation.InvalidParameterError
        Naming the first parameter that meets none of its constraints, what it must be
        and the value it got.
    """
    params = estimator.get_params(deep=False)
    caller = type(estimator).__name__
    for name, constraints in type(estimator)._parameter_constraints.items():
        if constraints == "no_validation" or name not in params:
            continue
        constraints = [_constraint(c) for c in constraints]
        value = params[name]
        if any(_satisfies(c, value) for c in constraints):
            continue
        shown = [c for c in constraints if not c.hidden]
        if len(shown) == 1:
            allowed = str(shown[0])
        else:
            allowed = f"{', '.join(str(c) for c in shown[:-1])} or {shown[-1]}"
        raise InvalidParameterError(
            f"The {name!r} parameter of {caller} must be {allowed}. Got {value!r} instead."
        )


def check_records(X, y, *, estimator=None):
    """``(X, y)`` as arrays: ``X`` numeric and finite (any number of dimensions), ``y``
    1-D with one label per record; a clear error otherwise."""
    from sklearn.utils.validation import check_array, check_consistent_length

    X = check_array(X, allow_nd=True, ensure_all_finite=True, dtype=None, input_name="X",
                    estimator=estimator)
    if X.dtype.kind not in "biuf":
        raise TypeError(f"X must be numeric, got dtype {X.dtype}.")
    y = np.asarray(y)
    if y.ndim != 1:
        raise ValueError(f"y must be 1-D with one label per record, got shape {y.shape}.")
    check_consistent_length(X, y)
    return X, y
