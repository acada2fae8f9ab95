"""For the parameter-validation tests of the defenses and the attacks: the wording of
scikit-learn's ``InvalidParameterError``, which skmia's checks raise
(``skmia._validation.validate_params``), and the constructor parameters a class declares."""

import inspect

NAN, INF = float("nan"), float("inf")
INT_1 = r"an int in the range \[1, inf\)"
POSITIVE = r"a float in the range \(0\.0, inf\)"


def case_id(params):
    """A test id for a dict of parameters."""
    return ",".join(f"{k}={getattr(v, '__name__', repr(v))}" for k, v in params.items())


def message(name, param, allowed, got):
    """The whole message for ``param`` of class ``name``: ``allowed`` and ``got`` are regexes."""
    return (
        rf"^The '{param}' parameter of {name} must be {allowed}\. "
        rf"Got {got} instead\.$"
    )


def missing_constraints(cls, *bases):
    """Parameters of ``cls``'s (and ``bases``') skmia constructors without a constraint."""
    declared = set()
    for klass in {k for top in (*bases, cls) for k in top.__mro__ if "__init__" in vars(k)}:
        if not klass.__module__.startswith("skmia"):
            continue
        declared |= {
            name for name, p in inspect.signature(klass.__init__).parameters.items()
            if name != "self" and p.kind is not inspect.Parameter.VAR_KEYWORD
        }
    return sorted(declared - set(cls._parameter_constraints))
