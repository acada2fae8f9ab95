"""The bank of reference models: balanced seeded masks, fitting, warm start, saving, bad
input."""

import json

import numpy as np
import pytest
import ref_bank_fixtures
import torch
from ref_bank_fixtures import SMALL, _close_models, _same_models, _weights
from sklearn.base import clone
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.utils._param_validation import InvalidParameterError

from skmia.defenses import VanillaClassifier
from skmia.experiment import load_estimator, save_estimator
from skmia.model_selection import ReferenceModels, balanced_masks

# fixtures shared with the other files split from test_reference_models.py, bound here by name
# (a nested conftest.py would break --doctest-modules)
bank = ref_bank_fixtures.bank
per_model_bank = ref_bank_fixtures.per_model_bank  # asked for by name (getfixturevalue)
pool = ref_bank_fixtures.pool


# ------------------------------------------------------------------------- masks
@pytest.mark.parametrize(("keep", "n_estimators"), [(0.5, 16), (0.25, 8), (0.3, 10), (0.5, 2)])
def test_masks_are_balanced(keep, n_estimators):
    masks = balanced_masks(1000, n_estimators, keep, seed=3)
    assert masks.shape == (1000, n_estimators) and masks.dtype == bool
    np.testing.assert_array_equal(masks.sum(axis=1), round(keep * n_estimators))
    # each model gets about keep of the pool, and the masks are not all the same
    np.testing.assert_allclose(masks.mean(axis=0), keep, atol=0.06)
    assert len({m.tobytes() for m in masks.T}) == n_estimators


def test_masks_are_seeded_and_do_not_depend_on_the_bank_size():
    np.testing.assert_array_equal(balanced_masks(50, 8, 0.5, 1), balanced_masks(50, 8, 0.5, 1))
    assert not np.array_equal(balanced_masks(50, 8, 0.5, 1), balanced_masks(50, 8, 0.5, 2))
    np.testing.assert_array_equal(balanced_masks(50, 8, 0.5, 1)[:, :4],
                                  balanced_masks(50, 4, 0.5, 1))
    np.testing.assert_array_equal(balanced_masks(50, 8, 0.5, 1)[:, 4:],
                                  balanced_masks(50, 8, 0.5, 1, start=4))


@pytest.mark.parametrize("which", ["bank", "per_model_bank"])
def test_fit_trains_each_model_on_its_mask(which, pool, request):
    bank = request.getfixturevalue(which)
    X, y = pool
    assert len(bank.estimators_) == 4 and bank.in_mask_.shape == (160, 4)
    np.testing.assert_array_equal(bank.in_mask_.sum(axis=1), 2)
    np.testing.assert_array_equal(bank.classes_, [0, 1, 2])
    assert bank.n_features_in_ == 8
    for k, model in enumerate(bank.estimators_):
        np.testing.assert_array_equal(model.classes_, bank.classes_)
        assert len(model.train_indices_) == bank.in_mask_[:, k].sum()
        # a fresh fit on the model's own rows with its own seed gives the same weights:
        # bit for bit model by model, to float32 rounding from the batched network
        again = clone(bank.estimator).set_params(random_state=int(bank.seeds_[k]))
        again.fit(X[bank.in_mask_[:, k]], y[bank.in_mask_[:, k]])
        assert (_same_models if which == "per_model_bank" else _close_models)(again, model)
    assert len(set(bank.seeds_.tolist())) == 4


def test_same_random_state_same_bank(pool, bank):
    X, y = pool
    again = ReferenceModels(VanillaClassifier(**SMALL), n_estimators=4, random_state=0)
    again.fit(X, y)
    np.testing.assert_array_equal(again.in_mask_, bank.in_mask_)
    assert all(_same_models(a, b) for a, b in zip(again.estimators_, bank.estimators_,
                                                  strict=True))
    other = ReferenceModels(VanillaClassifier(**SMALL), n_estimators=4, random_state=1)
    assert not np.array_equal(other.fit(X, y).in_mask_, bank.in_mask_)


def test_estimator_is_cloned_not_modified(pool):
    X, y = pool
    estimator = LogisticRegression(max_iter=200)
    bank = ReferenceModels(estimator, n_estimators=2, random_state=0).fit(X, y)
    assert not hasattr(estimator, "coef_")
    assert all(m is not estimator for m in bank.estimators_)


def test_every_model_must_see_every_class(pool):
    X, y = pool
    y = y.copy()
    y[0] = 3  # one record of class 3: out of half of the models
    with pytest.raises(ValueError, match=r"lacks class\(es\) \[3\].*every reference model"):
        ReferenceModels(LogisticRegression(), n_estimators=2, random_state=0).fit(X, y)


def test_a_recipe_told_every_class_may_miss_one_in_its_part(pool):
    X, y = pool
    y = y.copy()
    y[0] = 3
    X = X.astype(np.float32)
    recipe = VanillaClassifier(module__hidden_sizes=(8,), max_epochs=1,
                               classes=np.unique(y), random_state=0)
    bank = ReferenceModels(recipe, n_estimators=2, random_state=0).fit(X, y)
    missing = [k for k in range(2) if 3 not in y[bank.in_mask_[:, k]]]
    assert missing  # one model never saw class 3, and still outputs it
    assert bank.estimators_[missing[0]].predict_proba(X[:5]).shape == (5, 4)


# ------------------------------------------------------------------------- warm start
def test_warm_start_grows_the_bank_and_equals_a_cold_fit(pool, bank):
    X, y = pool
    grown = ReferenceModels(VanillaClassifier(**SMALL), n_estimators=4, warm_start=True,
                            random_state=0).fit(X, y)
    first = list(grown.estimators_)
    first_weights = [_weights(m) for m in first]
    grown.set_params(n_estimators=6).fit(X, y)
    assert len(grown.estimators_) == 6
    for k in range(4):  # the first four are kept, untouched
        assert grown.estimators_[k] is first[k]
        assert all(torch.equal(p, q) for p, q in zip(_weights(grown.estimators_[k]),
                                                     first_weights[k], strict=True))
    np.testing.assert_array_equal(grown.in_mask_[:, :4], bank.in_mask_)
    np.testing.assert_array_equal(grown.in_mask_.sum(axis=1), 3)
    cold = ReferenceModels(VanillaClassifier(**SMALL), n_estimators=6, random_state=0)
    cold.fit(X, y)
    np.testing.assert_array_equal(cold.in_mask_, grown.in_mask_)
    np.testing.assert_array_equal(cold.seeds_, grown.seeds_)
    # batched in other groups (4 then 2, against 6): the same to float32 rounding
    assert all(_close_models(a, b) for a, b in zip(cold.estimators_, grown.estimators_,
                                                   strict=True))


def test_warm_start_refuses_another_pool_or_fewer_models(pool):
    X, y = pool
    bank = ReferenceModels(LogisticRegression(), n_estimators=4, warm_start=True,
                           random_state=0).fit(X, y)
    with pytest.raises(ValueError, match="differ from that pool"):
        bank.set_params(n_estimators=6).fit(X[:150], y[:150])
    with pytest.raises(ValueError, match="must be larger or equal to len"):
        bank.set_params(n_estimators=2).fit(X, y)
    with pytest.warns(UserWarning, match="without increasing n_estimators"):
        bank.set_params(n_estimators=4).fit(X, y)


# ------------------------------------------------------------------------- saving
def test_save_and_load_round_trip(tmp_path, bank, pool):
    X, _ = pool
    save_estimator(bank, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.safetensors"]
    document = json.loads((tmp_path / "model.json").read_text())
    assert document["class"] == "ReferenceModels" and len(document["models"]) == 4
    assert b"pickle" not in (tmp_path / "model.json").read_bytes()
    loaded = load_estimator(tmp_path)
    assert isinstance(loaded, ReferenceModels)
    np.testing.assert_array_equal(loaded.in_mask_, bank.in_mask_)
    np.testing.assert_array_equal(loaded.seeds_, bank.seeds_)
    np.testing.assert_array_equal(loaded.classes_, bank.classes_)
    assert loaded.fingerprint() == bank.fingerprint()
    assert loaded.get_params()["n_estimators"] == 4
    assert type(loaded.estimator) is VanillaClassifier
    for a, b in zip(loaded.estimators_, bank.estimators_, strict=True):
        np.testing.assert_array_equal(a.predict_proba(X), b.predict_proba(X))


def test_a_loaded_bank_can_grow(tmp_path, bank, pool):
    X, y = pool
    save_estimator(bank, tmp_path)
    loaded = load_estimator(tmp_path).set_params(warm_start=True, n_estimators=6)
    loaded.fit(X, y)
    assert len(loaded.estimators_) == 6
    np.testing.assert_array_equal(loaded.in_mask_.sum(axis=1), 3)


def test_a_bank_of_other_classifiers_is_not_saved(tmp_path, pool):
    X, y = pool
    bank = ReferenceModels(LogisticRegression(), n_estimators=2, random_state=0).fit(X, y)
    with pytest.raises(TypeError, match="only banks of skmia defenses can be saved"):
        save_estimator(bank, tmp_path)


# ------------------------------------------------------------------------- bad input
@pytest.mark.parametrize("keep", [0.0, 1.0, -0.5, 1.5])
def test_keep_outside_0_1_is_refused(pool, keep):
    X, y = pool
    with pytest.raises(InvalidParameterError, match=r"'keep' parameter .* range \(0.0, 1.0\). Got"):
        ReferenceModels(LogisticRegression(), n_estimators=4, keep=keep).fit(X, y)


def test_keep_times_n_estimators_must_be_whole(pool):
    X, y = pool
    with pytest.raises(ValueError, match=r"keep \* n_estimators must be a whole number.*= 2.5"):
        ReferenceModels(LogisticRegression(), n_estimators=5).fit(X, y)


def test_an_estimator_that_is_not_a_classifier_is_refused(pool):
    X, y = pool
    with pytest.raises(TypeError, match="must be a scikit-learn classifier.*LinearRegression"):
        ReferenceModels(LinearRegression(), n_estimators=2).fit(X, y)
