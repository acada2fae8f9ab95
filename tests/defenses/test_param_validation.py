"""Every hyperparameter of every defense is checked at fit, declaratively.

One table per class (``_parameter_constraints``), extended by subclasses, checked by
``skmia._validation.validate_params`` with scikit-learn's ``InvalidParameterError``
(a ValueError and a TypeError) in its wording. Each row below is an estimator, the bad
parameters and the message the fit must fail with (the attacks':
tests/attacks/test_param_validation_attacks.py). The ``criterion`` tests check that
the loss given is the one trained on where the method allows it, and refused elsewhere.
"""

import math

import numpy as np
import pytest
import torch
from param_checks import INF, INT_1, NAN, POSITIVE, case_id, message, missing_constraints
from sklearn.datasets import make_classification
from sklearn.utils._param_validation import InvalidParameterError

from skmia.defenses import (
    AdvRegClassifier,
    ConfidencePenaltyClassifier,
    DistillationClassifier,
    DPSGDClassifier,
    DropoutClassifier,
    EarlyStoppingClassifier,
    HAMPClassifier,
    LabelSmoothingClassifier,
    MemGuardClassifier,
    MIADefenseClassifier,
    RelaxLossClassifier,
    SELENAClassifier,
    ValidationData,
    VanillaClassifier,
)

DEFENSES = [
    VanillaClassifier,
    RelaxLossClassifier,
    ConfidencePenaltyClassifier,
    LabelSmoothingClassifier,
    DropoutClassifier,
    EarlyStoppingClassifier,
    DistillationClassifier,
    DPSGDClassifier,
    AdvRegClassifier,
    HAMPClassifier,
    SELENAClassifier,
    MemGuardClassifier,
]
# defenses whose training objective is their own, built on cross-entropy
FIXED_OBJECTIVE = [
    RelaxLossClassifier,
    ConfidencePenaltyClassifier,
    LabelSmoothingClassifier,
    DistillationClassifier,
    DPSGDClassifier,
    AdvRegClassifier,
    HAMPClassifier,
    SELENAClassifier,
]
SMALL = {"max_epochs": 3, "module__hidden_sizes": (16,), "lr": 0.05, "random_state": 0}


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(120, n_features=8, n_informative=6, n_classes=3,
                               random_state=0)
    return X.astype(np.float32), y


def fit(estimator, X, y):
    if isinstance(estimator, (AdvRegClassifier, MemGuardClassifier)):
        return estimator.fit(X, y, X_reference=X, y_reference=y)
    return estimator.fit(X, y)




# ------------------------------------------------------------------- defenses, shared
_BATCH = rf"{INT_1} or -1 \(all rows\)"
SHARED_CASES = [
    # the cases: no training, zero batches, a crash in range(), NaN outputs
    ({"max_epochs": 0}, "max_epochs", INT_1, "0"),
    ({"max_epochs": -3}, "max_epochs", INT_1, "-3"),
    ({"max_epochs": 2.5}, "max_epochs", INT_1, "2.5"),
    ({"batch_size": -5}, "batch_size", _BATCH, "-5"),
    ({"batch_size": 0}, "batch_size", _BATCH, "0"),
    ({"batch_size": 1.5}, "batch_size", _BATCH, "1.5"),
    ({"lr": NAN}, "lr", POSITIVE, "nan"),
    ({"lr": INF}, "lr", POSITIVE, "inf"),
    ({"lr": 0.0}, "lr", POSITIVE, r"0\.0"),
    ({"lr": -0.1}, "lr", POSITIVE, r"-0\.1"),
    ({"gamma": 0.0}, "gamma", POSITIVE, r"0\.0"),
    ({"milestones": (10, -1)}, "milestones",
     r"a sequence of ints in the range \[0, inf\) or None", r"\(10, -1\)"),
    ({"milestones": "50"}, "milestones",
     r"a sequence of ints in the range \[0, inf\) or None", "'50'"),
    ({"random_state": "seed"}, "random_state",
     r"an int in the range \[0, 4294967295\], an instance of 'numpy.random.mtrand."
     r"RandomState' or None", "'seed'"),
    ({"train_split": 0.2}, "train_split",
     r"None, an instance of 'skmia\.defenses\._data\.ValidationData' or a callable",
     r"0\.2"),
    ({"warm_start": "yes"}, "warm_start",
     r"an instance of 'bool' or an instance of 'numpy.bool'", "'yes'"),
    ({"device": 3}, "device",
     r"an instance of 'str', an instance of 'torch.device' or None", "3"),
    ({"optimizer": "sgd"}, "optimizer", "a callable", "'sgd'"),
]


@pytest.mark.parametrize("params, param, allowed, got", SHARED_CASES,
                         ids=[case_id(c[0]) for c in SHARED_CASES])
@pytest.mark.parametrize("cls", DEFENSES, ids=lambda c: c.__name__)
def test_shared_defense_parameters(cls, params, param, allowed, got, data):
    X, y = data
    with pytest.raises(InvalidParameterError, match=message(cls.__name__, param, allowed, got)):
        fit(cls(**{**SMALL, **params}), X, y)


# ------------------------------------------------------------- defenses, their own
_CE_ONLY = r"torch\.nn\.CrossEntropyLoss \(its training objective is built on cross-entropy\)"
_MSE = r"<class 'torch\.nn\.modules\.loss\.MSELoss'>"
OWN_CASES = [
    (RelaxLossClassifier, {"alpha": 0.0}, "alpha", POSITIVE, r"0\.0"),
    (RelaxLossClassifier, {"alpha": -1.0}, "alpha", POSITIVE, r"-1\.0"),
    (RelaxLossClassifier, {"upper": 0.0}, "upper", r"a float in the range \(0\.0, 1\.0\]",
     r"0\.0"),
    (RelaxLossClassifier, {"upper": 1.5}, "upper", r"a float in the range \(0\.0, 1\.0\]",
     r"1\.5"),
    (RelaxLossClassifier, {"flatten_mode": "text"}, "flatten_mode",
     r"a str among \{('auto'|'image'|'tabular'|, )+\}", "'text'"),
    (ConfidencePenaltyClassifier, {"penalty": -0.1}, "penalty",
     r"a float in the range \[0\.0, inf\)", r"-0\.1"),
    (ConfidencePenaltyClassifier, {"penalty": NAN}, "penalty",
     r"a float in the range \[0\.0, inf\)", "nan"),
    (LabelSmoothingClassifier, {"smoothing": 1.0}, "smoothing",
     r"a float in the range \[0\.0, 1\.0\)", r"1\.0"),
    (LabelSmoothingClassifier, {"smoothing": -0.1}, "smoothing",
     r"a float in the range \[0\.0, 1\.0\)", r"-0\.1"),
    (DropoutClassifier, {"dropout": 1.0}, "dropout",
     r"a float in the range \[0\.0, 1\.0\)", r"1\.0"),
    (DropoutClassifier, {"dropout": -0.1}, "dropout",
     r"a float in the range \[0\.0, 1\.0\)", r"-0\.1"),
    (EarlyStoppingClassifier, {"snapshot_epochs": (0, 2)}, "snapshot_epochs",
     r"a sequence of ints in the range \[1, inf\) or None", r"\(0, 2\)"),
    (EarlyStoppingClassifier, {"snapshot_epochs": 5}, "snapshot_epochs",
     r"a sequence of ints in the range \[1, inf\) or None", "5"),
    (EarlyStoppingClassifier, {"snapshot_epochs": (2.5,)}, "snapshot_epochs",
     r"a sequence of ints in the range \[1, inf\) or None", r"\(2\.5,\)"),
    (EarlyStoppingClassifier, {"patience": 0}, "patience", rf"{INT_1} or None", "0"),
    (EarlyStoppingClassifier, {"patience": 1.5}, "patience", rf"{INT_1} or None", r"1\.5"),
    (DistillationClassifier, {"temperature": 0.0}, "temperature", POSITIVE, r"0\.0"),
    (DistillationClassifier, {"alpha": 1.5}, "alpha",
     r"a float in the range \[0\.0, 1\.0\]", r"1\.5"),
    (DistillationClassifier, {"teacher": "vanilla"}, "teacher",
     r"an object implementing 'fit' and 'predict_proba' or None", "'vanilla'"),
    (DPSGDClassifier, {"noise_multiplier": -1.0}, "noise_multiplier",
     r"a float in the range \[0\.0, inf\)", r"-1\.0"),
    (DPSGDClassifier, {"noise_multiplier": INF}, "noise_multiplier",
     r"a float in the range \[0\.0, inf\)", "inf"),
    (DPSGDClassifier, {"noise_multiplier": NAN}, "noise_multiplier",
     r"a float in the range \[0\.0, inf\)", "nan"),
    (DPSGDClassifier, {"max_grad_norm": 0.0}, "max_grad_norm", POSITIVE, r"0\.0"),
    (DPSGDClassifier, {"max_grad_norm": INF}, "max_grad_norm", POSITIVE, "inf"),
    (DPSGDClassifier, {"delta": 0.0}, "delta", r"a float in the range \(0\.0, 1\.0\)",
     r"0\.0"),
    (DPSGDClassifier, {"delta": 1.0}, "delta", r"a float in the range \(0\.0, 1\.0\)",
     r"1\.0"),
    (DPSGDClassifier, {"target_epsilon": 0.0}, "target_epsilon", rf"{POSITIVE} or None",
     r"0\.0"),
    (DPSGDClassifier, {"target_epsilon": INF}, "target_epsilon", rf"{POSITIVE} or None",
     "inf"),
    (DPSGDClassifier, {"accountant": "gdp"}, "accountant", r"a str among \{.*'prv'.*\}",
     "'gdp'"),
    (DPSGDClassifier, {"grad_sample_mode": "fast"}, "grad_sample_mode",
     r"a str among \{.*'ghost'.*\}", "'fast'"),
    (AdvRegClassifier, {"alpha": -1.0}, "alpha", r"a float in the range \[0\.0, inf\)",
     r"-1\.0"),
    (AdvRegClassifier, {"inference_lr": 0.0}, "inference_lr", POSITIVE, r"0\.0"),
    (AdvRegClassifier, {"warmup_epochs": -1}, "warmup_epochs",
     r"an int in the range \[0, inf\)", "-1"),
    (AdvRegClassifier, {"warmup_passes": 1.5}, "warmup_passes",
     r"an int in the range \[0, inf\)", r"1\.5"),
    (AdvRegClassifier, {"inference_batches": 0}, "inference_batches",
     rf"{INT_1} or None", "0"),
    (AdvRegClassifier, {"classifier_batches": 0}, "classifier_batches",
     rf"{INT_1} or None", "0"),
    (HAMPClassifier, {"entropy_percentile": 0.0}, "entropy_percentile",
     r"a float in the range \(0\.0, 1\.0\]", r"0\.0"),
    (HAMPClassifier, {"entropy_percentile": 1.2}, "entropy_percentile",
     r"a float in the range \(0\.0, 1\.0\]", r"1\.2"),
    (HAMPClassifier, {"entropy_percentile": NAN}, "entropy_percentile",
     r"a float in the range \(0\.0, 1\.0\]", "nan"),
    (HAMPClassifier, {"entropy_penalty": -0.1}, "entropy_penalty",
     r"a float in the range \[0\.0, inf\)", r"-0\.1"),
    (SELENAClassifier, {"n_models": 1}, "n_models", r"an int in the range \[2, inf\)", "1"),
    (SELENAClassifier, {"n_excluded": 0}, "n_excluded", INT_1, "0"),
    (SELENAClassifier, {"n_excluded": 2.5}, "n_excluded", INT_1, r"2\.5"),
    (SELENAClassifier, {"estimator": "vanilla"}, "estimator",
     r"an object implementing 'fit' and 'predict_proba' or None", "'vanilla'"),
    (MemGuardClassifier, {"distortion_budget": 0.0}, "distortion_budget", POSITIVE,
     r"0\.0"),
    (MemGuardClassifier, {"distortion_budget": INF}, "distortion_budget", POSITIVE, "inf"),
    (MemGuardClassifier, {"max_steps": 0}, "max_steps", INT_1, "0"),
    (MemGuardClassifier, {"defender_epochs": 0}, "defender_epochs", INT_1, "0"),
    # a defense with its own objective takes no other loss ...
    *[(cls, {"criterion": torch.nn.MSELoss}, "criterion", _CE_ONLY, _MSE)
      for cls in FIXED_OBJECTIVE],
]


@pytest.mark.parametrize(
    "cls, params, param, allowed, got", OWN_CASES,
    ids=[f"{c[0].__name__}-{case_id(c[1])}" for c in OWN_CASES],
)
def test_own_defense_parameters(cls, params, param, allowed, got, data):
    X, y = data
    with pytest.raises(InvalidParameterError, match=message(cls.__name__, param, allowed, got)):
        fit(cls(**{**SMALL, **params}), X, y)


@pytest.mark.parametrize("cls", FIXED_OBJECTIVE, ids=lambda c: c.__name__)
def test_fixed_objectives_refuse_criterion_options(cls, data):
    # ... and no option of cross-entropy that its objective would ignore
    X, y = data
    clf = cls(**SMALL, criterion__label_smoothing=0.2)
    with pytest.raises(InvalidParameterError, match=(
        rf"^{cls.__name__} trains on its own objective, built on plain cross-entropy: "
        r"criterion__label_smoothing would not change it\."
    )):
        fit(clf, X, y)


@pytest.mark.parametrize("n_models, n_excluded", [(5, 5), (5, 7), (2, 2)])
def test_selena_excludes_fewer_records_than_it_has_models(n_models, n_excluded, data):
    X, y = data
    clf = SELENAClassifier(n_models=n_models, n_excluded=n_excluded, **SMALL)
    with pytest.raises(ValueError, match=rf"^n_excluded={n_excluded} must be below "
                                         rf"n_models={n_models}: each training record"):
        clf.fit(X, y)


def test_memguard_needs_a_reference_set(data):
    X, y = data
    with pytest.raises(ValueError, match=r"^MemGuardClassifier trains its defender's attack "
                                         r"classifier .* X_reference=\.\.\."):
        MemGuardClassifier(**SMALL).fit(X, y)


def test_snapshot_epochs_beyond_max_epochs(data):
    X, y = data
    # the case: it used to train and keep no snapshot at all
    clf = EarlyStoppingClassifier(**{**SMALL, "snapshot_epochs": (50,), "max_epochs": 2})
    with pytest.raises(ValueError, match=(
        r"^snapshot_epochs \(50,\) lie beyond the 2 epochs this fit reaches "
        r"\(max_epochs=2\): no snapshot would be kept there\."
    )):
        clf.fit(X, y)
    with pytest.raises(ValueError, match=r"snapshot_epochs \(4,\) lie beyond the 3 epochs"):
        EarlyStoppingClassifier(**{**SMALL, "snapshot_epochs": (1, 3, 4)}).fit(X, y)
    # continuing with warm_start counts the epochs already trained
    clf = EarlyStoppingClassifier(**{**SMALL, "snapshot_epochs": (2,), "warm_start": True})
    clf.fit(X, y).set_params(snapshot_epochs=(5,))
    assert sorted(clf.fit(X, y).snapshots_) == [5]
    with pytest.raises(ValueError, match=r"\(10,\) lie beyond the 9 epochs .*after 6 trained"):
        clf.set_params(snapshot_epochs=(10,)).fit(X, y)
    # the default keeps the reference epochs that training reaches
    clf = EarlyStoppingClassifier(**{**SMALL, "max_epochs": 12}).fit(X, y)
    assert sorted(clf.snapshots_) == [5, 10]


def test_partial_fit_is_checked_too(data):
    X, y = data
    clf = VanillaClassifier(**SMALL).partial_fit(X, y)
    clf.set_params(max_epochs=0)
    with pytest.raises(InvalidParameterError, match="'max_epochs' parameter of Vanilla"):
        clf.partial_fit(X, y)


VALID = [
    VanillaClassifier(batch_size=-1, milestones=()),
    VanillaClassifier(batch_size=np.int64(32), max_epochs=np.int64(3), lr=1),
    VanillaClassifier(milestones=np.array([5, 10]), device="cuda", random_state=np.int64(0)),
    VanillaClassifier(milestones=None, criterion=torch.nn.MSELoss,
                      train_split=ValidationData(np.zeros((2, 3)), [0, 1])),
    RelaxLossClassifier(alpha=0.1, upper=1.0, flatten_mode="image"),
    ConfidencePenaltyClassifier(penalty=0.0),
    LabelSmoothingClassifier(smoothing=0.0),
    DropoutClassifier(dropout=0.0),
    EarlyStoppingClassifier(snapshot_epochs=(), patience=None),
    EarlyStoppingClassifier(snapshot_epochs=[1, 2], patience=np.int64(3)),
    DistillationClassifier(alpha=0.0, teacher=VanillaClassifier()),
    DistillationClassifier(alpha=1, temperature=0.5),
    DPSGDClassifier(noise_multiplier=0, target_epsilon=None, accountant="rdp"),
    DPSGDClassifier(delta=0.5, target_epsilon=8, grad_sample_mode="functorch"),
    AdvRegClassifier(alpha=0, warmup_epochs=0, warmup_passes=0, inference_batches=None,
                     classifier_batches=None),
]


@pytest.mark.parametrize("estimator", VALID, ids=repr)
def test_edge_values_are_accepted(estimator):
    estimator._check_params()


@pytest.mark.parametrize("cls", DEFENSES, ids=lambda c: c.__name__)
def test_every_constructor_parameter_has_a_constraint(cls):
    missing = missing_constraints(cls, MIADefenseClassifier)
    assert not missing, f"{cls.__name__} has no constraint for {missing}"


def test_subclasses_extend_their_parents_table():
    base = MIADefenseClassifier._parameter_constraints
    for cls in DEFENSES:
        table = cls._parameter_constraints
        assert set(base) <= set(table)
        assert all(table[k] is base[k] for k in base if k != "criterion"), cls.__name__



# ------------------------------------------------------------------------- criterion
@pytest.mark.parametrize(
    "cls, extra",
    [(VanillaClassifier, {}), (DropoutClassifier, {"dropout": 0.0}),
     (EarlyStoppingClassifier, {"snapshot_epochs": (2,)})],
    ids=["Vanilla", "Dropout", "EarlyStopping"],
)
def test_plain_training_minimises_the_given_criterion(cls, extra, data):
    # torch's label-smoothed cross-entropy is label smoothing's objective exactly: a
    # plain-training defense given it trains as LabelSmoothingClassifier does
    X, y = data
    smoothed = cls(**SMALL, **extra, criterion__label_smoothing=0.3).fit(X, y)
    reference = LabelSmoothingClassifier(**SMALL, smoothing=0.3).fit(X, y)
    plain = cls(**SMALL, **extra).fit(X, y)
    np.testing.assert_allclose(smoothed.predict_proba(X), reference.predict_proba(X),
                               rtol=1e-4, atol=1e-6)
    assert not np.allclose(smoothed.predict_proba(X), plain.predict_proba(X), atol=1e-4)


def test_a_criterion_class_is_trained_on(data):
    X, y = data

    class Halved(torch.nn.CrossEntropyLoss):
        def forward(self, logits, targets):
            return 0.5 * super().forward(logits, targets)

    # half the loss is half the gradient: with plain SGD (no momentum, no weight decay)
    # the same as half the learning rate
    sgd = {"optimizer__momentum": 0.0, "optimizer__weight_decay": 0.0}
    halved = VanillaClassifier(**SMALL, **sgd, criterion=Halved).fit(X, y)
    slower = VanillaClassifier(**{**SMALL, "lr": SMALL["lr"] / 2}, **sgd).fit(X, y)
    np.testing.assert_allclose(halved.predict_proba(X), slower.predict_proba(X), rtol=1e-4,
                               atol=1e-6)


def test_the_validation_loss_is_the_criterion(data):
    X, y = data
    Xv, yv = X[:30], y[:30]
    clf = VanillaClassifier(**SMALL, criterion__label_smoothing=0.3,
                            train_split=ValidationData(Xv, yv)).fit(X, y)
    with torch.no_grad():
        logits = clf.module_(torch.as_tensor(Xv))
    expected = torch.nn.functional.cross_entropy(logits, torch.as_tensor(yv),
                                                 label_smoothing=0.3).item()
    assert math.isclose(clf.history[-1, "valid_loss"], expected, rel_tol=1e-5)
