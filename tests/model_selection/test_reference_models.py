"""The bank of reference models: balanced seeded masks, warm start, n_jobs, Dask, saving,
and the ``score`` / ``ref_*`` signals computed from it."""

import json

import joblib
import numpy as np
import pandas as pd
import pytest
import torch
from scipy.special import logsumexp
from sklearn.base import clone
from sklearn.datasets import make_classification
from sklearn.linear_model import LinearRegression, LogisticRegression
from sklearn.utils._param_validation import InvalidParameterError

from skmia.attacks import compute_signals
from skmia.defenses import RelaxLossClassifier, VanillaClassifier
from skmia.experiment import load_estimator, save_estimator
from skmia.model_selection import ReferenceModels
from skmia.model_selection._reference_models import balanced_masks

SMALL = {"max_epochs": 3, "module__hidden_sizes": (16,), "batch_size": 32}


@pytest.fixture(scope="module")
def pool():
    X, y = make_classification(160, n_features=8, n_informative=5, n_classes=3,
                               random_state=0)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def bank(pool):
    X, y = pool
    return ReferenceModels(VanillaClassifier(**SMALL), n_estimators=4,
                           random_state=0).fit(X, y)


@pytest.fixture(scope="module")
def target(pool):
    X, y = pool
    return VanillaClassifier(**SMALL, random_state=7).fit(X[:80], y[:80])


def _weights(model):
    return [p.detach().clone() for p in model.module_.parameters()]


def _same_models(a, b):
    return all(torch.equal(p, q) for p, q in zip(_weights(a), _weights(b), strict=True))


def _close_models(a, b, atol=1e-6):
    """Equal to float32 rounding: what a batched bank promises against a model trained
    alone."""
    return all(torch.allclose(p, q, rtol=0, atol=atol)
               for p, q in zip(_weights(a), _weights(b), strict=True))


@pytest.fixture(scope="module")
def per_model_bank(pool):
    X, y = pool
    return ReferenceModels(VanillaClassifier(**SMALL), n_estimators=4, random_state=0,
                           vectorize=False).fit(X, y)


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


# ------------------------------------------------------------------------- parallel
def _assert_same_bank(a, b):
    np.testing.assert_array_equal(a.in_mask_, b.in_mask_)
    assert all(_same_models(m, n) for m, n in zip(a.estimators_, b.estimators_, strict=True))


@pytest.mark.parametrize("vectorize", ["auto", False])
def test_n_jobs_2_gives_the_same_bank(pool, bank, per_model_bank, vectorize):
    X, y = pool
    parallel = ReferenceModels(VanillaClassifier(**SMALL), n_estimators=4, n_jobs=2,
                               random_state=0, vectorize=vectorize).fit(X, y)
    _assert_same_bank(parallel, bank if vectorize else per_model_bank)
    assert torch.get_num_threads() >= 1


def test_sequential_fit_leaves_the_thread_count_alone(pool):
    X, y = pool
    before = torch.get_num_threads()
    ReferenceModels(VanillaClassifier(**SMALL), n_estimators=2, random_state=0).fit(X, y)
    assert torch.get_num_threads() == before


def test_dask_local_cluster_gives_the_same_bank(pool, per_model_bank):
    distributed = pytest.importorskip("dask.distributed")
    X, y = pool
    with distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster), joblib.parallel_config(backend="dask"):
            on_dask = ReferenceModels(VanillaClassifier(**SMALL), n_estimators=4,
                                      random_state=0, vectorize=False).fit(X, y)
    _assert_same_bank(on_dask, per_model_bank)


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


# ------------------------------------------------------------------------- signals
def _phi(logits, labels):
    """z_y - logsumexp_{j != y} z_j, written out record by record."""
    out = []
    for z, label in zip(np.asarray(logits, dtype=np.float64), labels, strict=True):
        out.append(z[label] - logsumexp(np.delete(z, label)))
    return np.array(out)


def test_ref_scores_and_membership_columns(bank, target, pool):
    X, y = pool
    index = np.arange(40, 100)
    signals = compute_signals(target, X[index], y[index], reference=bank, pool_index=index)
    K = 4
    assert list(signals.columns[-(2 * K + 1):]) == [
        "score", *(f"ref_score_{k}" for k in range(K)), *(f"ref_in_{k}" for k in range(K))
    ]
    target_logits = target.forward(X[index]).numpy()
    np.testing.assert_allclose(signals["score"], _phi(target_logits, y[index]), rtol=1e-6)
    for k, model in enumerate(bank.estimators_):
        expected = _phi(model.forward(X[index]).numpy(), y[index])
        np.testing.assert_allclose(signals[f"ref_score_{k}"], expected, rtol=1e-6)
        np.testing.assert_array_equal(signals[f"ref_in_{k}"], bank.in_mask_[index, k])
        assert signals[f"ref_in_{k}"].dtype == bool
    assert signals.attrs["reference_fingerprint"] == bank.fingerprint()


def test_records_outside_the_pool_are_out_of_every_model(bank, target, pool):
    X, y = pool
    signals = compute_signals(target, X[:10], y[:10], reference=bank)
    assert not signals[[f"ref_in_{k}" for k in range(4)]].to_numpy().any()


def test_score_survives_extreme_logits():
    z = np.array([[1e4, -1e4, 0.0], [-1e4, 1e4, 1e4], [3.0, 1.0, -2.0]], dtype=np.float32)
    labels = np.array([0, 1, 2])

    class Fixed(torch.nn.Module):
        def __init__(self):
            super().__init__()
            self.bias = torch.nn.Parameter(torch.zeros(3))

        def forward(self, x):
            return torch.as_tensor(z)[: len(x)] + 0 * self.bias

    signals = compute_signals(Fixed(), np.zeros((3, 2), np.float32), labels)
    expected = _phi(z, labels)
    assert np.isfinite(signals["score"]).all()
    np.testing.assert_allclose(signals["score"], expected, rtol=1e-12)
    # by hand: z_y = 1e4 against 1e4 + log(1 + e^-1e4); p_y = 1/2; -2 - (3 + log(1 + e^-2))
    np.testing.assert_allclose(signals["score"], [1e4, 0.0, -5.0 - np.log1p(np.exp(-2.0))],
                               rtol=1e-9, atol=1e-12)


def test_a_bank_of_sklearn_classifiers_gives_scores_from_probabilities(pool, target):
    X, y = pool
    bank = ReferenceModels(LogisticRegression(max_iter=300), n_estimators=2,
                           random_state=0).fit(X, y)
    signals = compute_signals(target, X[:20], y[:20], reference=bank)
    proba = bank.estimators_[1].predict_proba(X[:20]).astype(np.float64)
    rows = np.arange(20)
    p_y = proba[rows, y[:20]]
    p_rest = np.where(np.eye(3, dtype=bool)[y[:20]], 0.0, proba).sum(axis=1)  # 1 - p_y
    np.testing.assert_allclose(signals["ref_score_1"], np.log(p_y) - np.log(p_rest), rtol=1e-6)


def test_a_bank_of_other_features_is_refused(pool, target):
    X, y = pool
    narrow = ReferenceModels(LogisticRegression(), n_estimators=2, random_state=0)
    narrow.fit(X[:, :6], y)
    with pytest.raises(ValueError, match=r"bank was fitted on records of shape \(6,\)"):
        compute_signals(target, X[:10], y[:10], reference=narrow)


def test_a_bank_of_other_classes_is_refused(pool, target):
    X, y = pool
    other = ReferenceModels(LogisticRegression(), n_estimators=2, random_state=0)
    other.fit(X, np.array(["a", "b", "c"])[y])
    with pytest.raises(ValueError, match=r"bank was fitted on classes \['a', 'b', 'c'\]"):
        compute_signals(target, X[:10], y[:10], reference=other)


def test_an_unfitted_or_foreign_bank_is_refused(pool, target):
    X, y = pool
    from sklearn.exceptions import NotFittedError

    with pytest.raises(NotFittedError):
        compute_signals(target, X[:5], y[:5], reference=ReferenceModels(LogisticRegression()))
    with pytest.raises(TypeError, match="reference must be a fitted"):
        compute_signals(target, X[:5], y[:5], reference=[target])


@pytest.mark.parametrize(("index", "message"), [
    (np.arange(9), r"one position in the bank's pool per record: 10 entries, got shape \(9,\)"),
    (np.arange(155, 165), r"outside the bank's pool of 160 records .*\[160, 161"),
    (-np.arange(1, 11), r"outside the bank's pool of 160 records"),
    (np.linspace(0, 9, 10), "must hold integer positions"),
])
def test_bad_pool_index_is_refused(bank, target, pool, index, message):
    X, y = pool
    with pytest.raises((ValueError, TypeError), match=message):
        compute_signals(target, X[:10], y[:10], reference=bank, pool_index=index)


def test_pool_index_without_a_bank_is_refused(target, pool):
    X, y = pool
    with pytest.raises(ValueError, match="pool_index is given without reference="):
        compute_signals(target, X[:5], y[:5], pool_index=np.arange(5))


def test_a_relaxloss_bank_works_like_any_defense(pool):
    X, y = pool
    bank = ReferenceModels(RelaxLossClassifier(alpha=0.5, **SMALL), n_estimators=2,
                           random_state=0).fit(X, y)
    assert all(isinstance(m, RelaxLossClassifier) for m in bank.estimators_)
    signals = compute_signals(bank.estimators_[0], X, y, reference=bank,
                              pool_index=np.arange(len(y)))
    frame = signals[["ref_in_0", "ref_in_1"]]
    assert isinstance(frame, pd.DataFrame)
    np.testing.assert_array_equal(frame.sum(axis=1), 1)


def test_label_only_columns_come_after_the_reference_ones(bank, target, pool):
    X, y = pool
    signals = compute_signals(target, X[:30], y[:30], reference=bank, label_only=True,
                              label_only_params={"n_queries": 5, "random_state": 0})
    assert list(signals.columns[-5:]) == [f"label_only_{q}" for q in range(5)]
    assert signals.columns[-6] == "ref_in_3"
    assert signals.attrs["reference_fingerprint"] == bank.fingerprint()
    # a copy with no perturbation at all is classified as the record is: 1 iff correct
    exact = compute_signals(target, X[:30], y[:30], label_only=True,
                            label_only_params={"n_queries": 2, "p": 0.0, "noise_scale": 0.0})
    correct = (target.predict(X[:30]) == y[:30]).astype(np.uint8)
    np.testing.assert_array_equal(exact["label_only_0"], correct)
    np.testing.assert_array_equal(exact["label_only_1"], correct)
    with pytest.raises(ValueError, match="label_only_params is given but label_only is False"):
        compute_signals(target, X[:5], y[:5], label_only_params={"n_queries": 2})


def test_the_threading_backend_is_warned_about(pool):
    X, y = pool
    bank = ReferenceModels(LogisticRegression(), n_estimators=2, n_jobs=2, random_state=0)
    with joblib.parallel_config(backend="threading"):
        with pytest.warns(UserWarning, match="share torch's random generator"):
            bank.fit(X, y)
    with joblib.parallel_config(backend="threading", n_jobs=1):  # one at a time: fine
        ReferenceModels(LogisticRegression(), n_estimators=2, random_state=0).fit(X, y)


def _threads_inside():
    return torch.get_num_threads()


@pytest.mark.parametrize("n_jobs", [1, 2])
def test_parallel_map_runs_each_call_on_the_threads_asked(n_jobs, monkeypatch):
    from skmia import _parallel
    from skmia._parallel import parallel_map

    monkeypatch.setattr(_parallel, "n_cores", lambda: 4)
    before = torch.get_num_threads()
    assert parallel_map(_threads_inside, [()] * 2, n_jobs=n_jobs) == [1, 1]
    assert parallel_map(_threads_inside, [()] * 2, n_jobs=n_jobs, threads=2) == [2, 2]
    assert torch.get_num_threads() == before


@pytest.mark.parametrize("threads", [0, -1, 1.5, True])
def test_parallel_map_refuses_a_bad_thread_count(threads):
    from skmia._parallel import parallel_map

    with pytest.raises(ValueError, match="threads must be a positive integer"):
        parallel_map(_threads_inside, [()], threads=threads)


def test_torch_threads_none_leaves_the_count_alone():
    from skmia._parallel import torch_threads

    before = torch.get_num_threads()
    with torch_threads(None):
        assert torch.get_num_threads() == before
    with torch_threads(1):
        assert torch.get_num_threads() == 1
    assert torch.get_num_threads() == before
