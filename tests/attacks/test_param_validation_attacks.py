"""Every hyperparameter of every attack is checked at fit, declaratively.

One table per class (``_parameter_constraints``), checked by
``skmia._validation.validate_params`` with scikit-learn's ``InvalidParameterError``
in its wording. Each row below is an attack, the bad parameters and the message the fit
must fail with (the defenses': tests/defenses/test_param_validation.py).
"""

import numpy as np
import pandas as pd
import pytest
from param_checks import INF, INT_1, NAN, POSITIVE, case_id, message, missing_constraints
from sklearn.utils._param_validation import InvalidParameterError

from skmia.attacks import (
    ConfidenceAttack,
    EntropyAttack,
    GradientNormAttack,
    LabelOnlyAttack,
    LiRAAttack,
    LossAttack,
    ModifiedEntropyAttack,
    NNAttack,
    PopulationAttack,
    QuantileAttack,
    ReferenceAttack,
    RMIAAttack,
)

THRESHOLD_ATTACKS = [
    ConfidenceAttack,
    EntropyAttack,
    ModifiedEntropyAttack,
    LossAttack,
    GradientNormAttack,
]
CALIBRATED_ATTACKS = [LiRAAttack, RMIAAttack, ReferenceAttack, PopulationAttack, QuantileAttack,
                      LabelOnlyAttack]
ATTACKS = [NNAttack, *THRESHOLD_ATTACKS, *CALIBRATED_ATTACKS]


@pytest.fixture(scope="module")
def signals():
    rng = np.random.default_rng(0)
    n = 60
    proba = rng.dirichlet(np.ones(3), n)
    label = rng.integers(0, 3, n)
    table = {f"proba_{k}": proba[:, k] for k in range(3)}
    table.update({f"logit_{k}": np.log(proba[:, k]) for k in range(3)})
    table.update(label=label, loss=-np.log(proba[np.arange(n), label]))
    for name in ("grad_x_l1", "grad_x_l2", "grad_w_l1", "grad_w_l2"):
        table[name] = rng.uniform(size=n)
    return pd.DataFrame(table), np.arange(n) % 2


ATTACK_CASES = [
    *[(cls, {"scoring": "f1"}, "scoring", r"a str among \{('accuracy'|'roc_auc'|, )+\}",
       "'f1'") for cls in ATTACKS],
    *[(cls, {"per_class": "yes"}, "per_class",
       r"an instance of 'bool' or an instance of 'numpy.bool'", "'yes'")
      for cls in THRESHOLD_ATTACKS],
    *[(cls, {"per_class": 1}, "per_class",
       r"an instance of 'bool' or an instance of 'numpy.bool'", "1")
      for cls in THRESHOLD_ATTACKS],
    (GradientNormAttack, {"signal": "grad_z"}, "signal", r"a str among \{.*'grad_w_l2'.*\}",
     "'grad_z'"),
    (NNAttack, {"output": "softmax"}, "output", r"a str among \{('logit'|'proba'|, )+\}",
     "'softmax'"),
    (NNAttack, {"max_iter": 0}, "max_iter", INT_1, "0"),
    (NNAttack, {"max_iter": True}, "max_iter", INT_1, "True"),  # a bool is no number
    (NNAttack, {"batch_size": -5}, "batch_size", INT_1, "-5"),
    (NNAttack, {"learning_rate_init": NAN}, "learning_rate_init", POSITIVE, "nan"),
    (NNAttack, {"hidden_layer_sizes": 0}, "hidden_layer_sizes",
     rf"an array-like or {INT_1}", "0"),
    (NNAttack, {"random_state": "seed"}, "random_state", r"an int in the range .* or None",
     "'seed'"),
    (LiRAAttack, {"online": "yes"}, "online",
     r"an instance of 'bool' or an instance of 'numpy.bool'", "'yes'"),
    (LiRAAttack, {"fix_variance": 1}, "fix_variance",
     r"an instance of 'bool' or an instance of 'numpy.bool'", "1"),
    (LiRAAttack, {"offline_score": "two-sided"}, "offline_score",
     r"a str among \{('cdf'|'logpdf'|, )+\}", "'two-sided'"),
    (RMIAAttack, {"gamma": 0}, "gamma", POSITIVE, "0"),
    (RMIAAttack, {"gamma": INF}, "gamma", POSITIVE, "inf"),
    (RMIAAttack, {"offline_a": 1.5}, "offline_a",
     r"a float in the range \[0\.0, 1\.0\] or None", r"1\.5"),
    (RMIAAttack, {"offline_a": True}, "offline_a",
     r"a float in the range \[0\.0, 1\.0\] or None", "True"),
    *[(cls, {"fpr": fpr}, "fpr", r"a float in the range \(0\.0, 1\.0\)", got)
      for cls in (ReferenceAttack, PopulationAttack)
      for fpr, got in ((0, "0"), (1.0, r"1\.0"), (NAN, "nan"))],
]


@pytest.mark.parametrize(
    "cls, params, param, allowed, got", ATTACK_CASES,
    ids=[f"{c[0].__name__}-{case_id(c[1])}" for c in ATTACK_CASES],
)
def test_attack_parameters(cls, params, param, allowed, got, signals):
    X, y = signals
    with pytest.raises(InvalidParameterError, match=message(cls.__name__, param, allowed, got)):
        cls(**params).fit(X, y)


def test_scoring_set_after_fit_is_checked_by_score(signals):
    X, y = signals
    attack = LossAttack().fit(X, y).set_params(scoring="f1")
    with pytest.raises(InvalidParameterError, match="'scoring' parameter of LossAttack"):
        attack.score(X, y)


@pytest.mark.parametrize("cls", ATTACKS, ids=lambda c: c.__name__)
def test_every_constructor_parameter_has_a_constraint(cls):
    missing = missing_constraints(cls)
    assert not missing, f"{cls.__name__} has no constraint for {missing}"
    assert set(cls._parameter_constraints) == set(cls().get_params())  # exactly these
