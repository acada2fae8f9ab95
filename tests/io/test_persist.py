"""Saving and loading fitted defenses: safetensors + JSON, nothing unpickled."""

import hashlib
import json

import numpy as np
import pytest
import torch
from safetensors.torch import load as load_tensors
from safetensors.torch import save as save_tensors
from sklearn.datasets import make_classification

from skmia import __version__
from skmia.defenses import (
    AdvRegClassifier,
    ConfidencePenaltyClassifier,
    DistillationClassifier,
    DPSGDClassifier,
    DropoutClassifier,
    EarlyStoppingClassifier,
    LabelSmoothingClassifier,
    RelaxLossClassifier,
    VanillaClassifier,
)
from skmia.experiment import load_estimator, save_estimator
from skmia.io._codec import _digest
from skmia.model_selection import ReferenceModels

SMALL = {"max_epochs": 2, "module__hidden_sizes": (8,), "random_state": 0}
CLASSES = [
    VanillaClassifier, RelaxLossClassifier, ConfidencePenaltyClassifier,
    LabelSmoothingClassifier, DropoutClassifier, EarlyStoppingClassifier,
    DistillationClassifier, AdvRegClassifier, DPSGDClassifier,
]
# the classes whose partial_fit, after loading, gives what it would have given unsaved
# (DP-SGD draws fresh noise instead: tests/defenses/test_dpsgd.py)
REPLAYED = [cls for cls in CLASSES if cls is not DPSGDClassifier]


def fit_small(cls, X, y, **params):
    """``(clf, X_train, y_train, fit_kwargs)``: ``cls`` fitted on a few rows, 2 epochs."""
    extra, fit_kwargs = {}, {}
    if cls is EarlyStoppingClassifier:
        extra = {"snapshot_epochs": (1, 2)}
    if cls is DPSGDClassifier:  # a guarantee worth the name, so no WeakPrivacyWarning
        extra = {"noise_multiplier": 2.0, "batch_size": 30}
    if cls is AdvRegClassifier:
        fit_kwargs = {"X_reference": X[80:], "y_reference": y[80:]}
        X, y = X[:80], y[:80]
    clf = cls(**SMALL, **extra, **params).fit(X, y, **fit_kwargs)
    return clf, X, y, fit_kwargs


def rewrite(folder, document=None, tensors=None, weights=None):
    """Replace model.json and/or model.safetensors, with digests that match again: what
    someone who edits the files on purpose writes."""
    doc = json.loads((folder / "model.json").read_text())
    if document is not None:
        doc = document
    if tensors is not None:
        weights = save_tensors(tensors)
    if weights is not None:
        (folder / "model.safetensors").write_bytes(weights)
        doc["weights_sha256"] = hashlib.sha256(weights).hexdigest()
    doc["digest"] = _digest(doc)
    (folder / "model.json").write_text(json.dumps(doc))


def saved_tensors(folder):
    return load_tensors((folder / "model.safetensors").read_bytes())


def saved_document(folder):
    return json.loads((folder / "model.json").read_text())


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(120, n_features=6, n_informative=4, n_classes=3,
                               random_state=0)
    return X.astype(np.float32), np.array(["ant", "bee", "cat"])[y]


@pytest.fixture
def saved(tmp_path, data):
    X, y = data
    clf = RelaxLossClassifier(alpha=0.5, **SMALL).fit(X, y)
    save_estimator(clf, tmp_path)
    return tmp_path, clf


@pytest.mark.parametrize("cls", CLASSES, ids=lambda c: c.__name__)
def test_round_trip(tmp_path, data, cls):
    X, _ = data
    clf, *_ = fit_small(cls, *data)
    save_estimator(clf, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.safetensors"]
    loaded = load_estimator(tmp_path)
    assert type(loaded) is cls
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), rtol=1e-6)
    np.testing.assert_array_equal(loaded.train_indices_, clf.train_indices_)
    assert loaded.get_params()["max_epochs"] == 2
    assert loaded.history[:, "train_loss"] == clf.history[:, "train_loss"]
    if cls is EarlyStoppingClassifier:
        np.testing.assert_allclose(loaded.snapshot(1).predict_proba(X),
                                   clf.snapshot(1).predict_proba(X), rtol=1e-6)
    if cls is DistillationClassifier:
        np.testing.assert_array_equal(loaded.teacher_.predict_proba(X),
                                      clf.teacher_.predict_proba(X))


@pytest.mark.parametrize("cls", REPLAYED, ids=lambda c: c.__name__)
def test_partial_fit_continues_a_loaded_model_as_the_saved_one(tmp_path, data, cls):
    # the learning rate decays at the 4th epoch: a loaded model must know it trained 2
    clf, X, y, fit_kwargs = fit_small(cls, *data, milestones=(3,))
    save_estimator(clf, tmp_path)
    loaded = load_estimator(tmp_path)
    clf.partial_fit(X, y, **fit_kwargs)
    loaded.partial_fit(X, y, **fit_kwargs)
    assert loaded.history[:, "lr"] == clf.history[:, "lr"]
    assert clf.history[:, "lr"] == pytest.approx([0.1, 0.1, 0.1, 0.01])
    # same optimizer state (momentum, Adam's moments), same seeds: the same weights
    np.testing.assert_array_equal(loaded.predict_proba(data[0]), clf.predict_proba(data[0]))
    if cls is AdvRegClassifier:
        for a, b in zip(loaded.inference_module_.parameters(),
                        clf.inference_module_.parameters(), strict=True):
            torch.testing.assert_close(a, b, rtol=0, atol=0)


def test_saved_tensors_are_named_by_what_they_belong_to(tmp_path, data):
    clf, *_ = fit_small(AdvRegClassifier, *data)
    save_estimator(clf, tmp_path)
    groups = {key.partition(".")[0] for key in saved_tensors(tmp_path)}
    assert groups == {"module", "inference_module", "optimizer", "fitted"}
    optimizers = saved_document(tmp_path)["optimizers"]
    assert sorted(optimizers) == ["inference_optimizer", "optimizer"]
    assert optimizers["inference_optimizer"]["param_groups"][0]["settings"]["betas"] == {
        "tuple": [{"value": 0.9}, {"value": 0.999}]}


def test_json_records_class_params_and_fitted_attributes(saved):
    folder, clf = saved
    doc = json.loads((folder / "model.json").read_text())
    assert doc["class"] == "RelaxLossClassifier" and doc["skmia_version"] == __version__
    assert doc["params"]["alpha"] == {"value": 0.5}
    assert doc["params"]["module"] == {"class": "skmia.nn._mlp.MLP"}
    assert doc["fitted"]["flatten_mode_"] == {"value": "tabular"}
    assert doc["classes"] == ["ant", "bee", "cat"]
    weights = (folder / "model.safetensors").read_bytes()
    assert doc["weights_sha256"] == hashlib.sha256(weights).hexdigest()


def test_edited_json_is_refused(saved):
    folder, _ = saved
    path = folder / "model.json"
    doc = json.loads(path.read_text())
    doc["params"]["alpha"] = {"value": 9.0}
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="has been modified or is corrupt"):
        load_estimator(folder)


def test_disallowed_class_is_refused_even_with_a_valid_digest(saved):
    folder, _ = saved
    path = folder / "model.json"
    doc = json.loads(path.read_text())
    doc["params"]["module"] = {"class": "subprocess.Popen"}
    doc["digest"] = _digest(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="'subprocess.Popen' is not allowed"):
        load_estimator(folder)
    doc["class"] = "Popen"
    doc["digest"] = _digest(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match="not a skmia defense"):
        load_estimator(folder)


def test_other_version_is_refused(saved):
    folder, _ = saved
    path = folder / "model.json"
    doc = json.loads(path.read_text())
    doc["skmia_version"] = "0.0.1"
    doc["digest"] = _digest(doc)
    path.write_text(json.dumps(doc))
    with pytest.raises(ValueError, match=f"saved by skmia 0.0.1; this is skmia {__version__}"):
        load_estimator(folder)


def test_edited_or_truncated_weights_are_refused(saved):
    folder, _ = saved
    path = folder / "model.safetensors"
    path.write_bytes(path.read_bytes()[:-10])
    with pytest.raises(ValueError, match="weights were modified or truncated"):
        load_estimator(folder)


def test_missing_files(tmp_path):
    with pytest.raises(FileNotFoundError, match="holds no saved model"):
        load_estimator(tmp_path)


def test_only_defenses_are_saved(tmp_path):
    from sklearn.linear_model import LogisticRegression

    with pytest.raises(TypeError, match="only skmia defenses"):
        save_estimator(LogisticRegression(), tmp_path)


# ------------------------------------------------------------------ refused files
def test_unknown_fitted_attribute_is_refused(saved):
    folder, _ = saved
    doc = saved_document(folder)
    doc["fitted"]["callbacks_"] = {"value": "anything"}
    rewrite(folder, doc)
    with pytest.raises(ValueError, match=r"model.json': key 'fitted.callbacks_' is not a "
                                         r"fitted attribute of RelaxLossClassifier"):
        load_estimator(folder)


def test_fitted_attribute_of_the_wrong_type_is_refused(saved):
    folder, _ = saved
    doc = saved_document(folder)
    doc["fitted"]["n_features_in_"] = {"value": "six"}
    rewrite(folder, doc)
    with pytest.raises(ValueError, match="'fitted.n_features_in_' has a value of the wrong"):
        load_estimator(folder)
    doc["fitted"].pop("n_features_in_")
    rewrite(folder, doc)
    with pytest.raises(ValueError, match="'fitted.n_features_in_' is missing"):
        load_estimator(folder)


@pytest.mark.parametrize("key, path, problem", [
    ("module", "torch.optim.sgd.SGD", "is not a torch.nn.Module subclass nor a network"),
    ("module", "torch.nn.functional.relu", "is not a torch.nn.Module subclass nor a network"),
    ("module", "torch.nn.init.zeros_", "is not a torch.nn.Module subclass nor a network"),
    ("criterion", "torch.optim.adam.Adam", "is not a torch.nn.Module subclass"),
    ("optimizer", "torch.nn.modules.linear.Linear", "is not a torch.optim.Optimizer subclass"),
    ("module", "torch.nn.no_such_module.Net", "is not a class or function"),
    ("module", "builtins.eval", "is not allowed"),
])
def test_module_classes_outside_the_allow_list_are_refused(saved, key, path, problem):
    folder, _ = saved
    doc = saved_document(folder)
    doc["params"][key] = {"class": path}
    rewrite(folder, doc)
    with pytest.raises(ValueError, match=problem) as info:
        load_estimator(folder)
    assert f"'params.{key}'" in str(info.value) or "is not allowed" in str(info.value)


def test_skmia_network_functions_are_allowed(tmp_path):
    from skmia.nn import resnet20

    images = np.random.default_rng(0).normal(size=(8, 3, 32, 32)).astype(np.float32)
    clf = VanillaClassifier(module=resnet20, max_epochs=1, batch_size=8,
                            random_state=0).fit(images, np.arange(8) % 2)
    save_estimator(clf, tmp_path)
    assert saved_document(tmp_path)["params"]["module"] == {"class": "skmia.nn._resnet.resnet20"}
    np.testing.assert_allclose(load_estimator(tmp_path).predict_proba(images),
                               clf.predict_proba(images), rtol=1e-5)


@pytest.mark.parametrize("change, match", [
    (lambda d: d.pop("history"), "key 'history' is missing"),
    (lambda d: d.update(pickle="gASV"), "key 'pickle' is not a key of a saved model"),
    (lambda d: d.update(classes="ant"), "key 'classes' has a value of the wrong type"),
    (lambda d: d.update(classes_dtype="O"), "key 'classes_dtype' is not a dtype of labels"),
    (lambda d: d["params"].update(colour={"value": 1}), "'params.colour' is not a parameter"),
    (lambda d: d["params"].update(lr={"pickle": "gASV"}), "unknown kind of value 'pickle'"),
    (lambda d: d.update(format=1), "holds a model in layout 1"),
    (lambda d: d["state"]["values"].update(accountant={"mechanism": "rdp", "history": []}),
     "key 'state' does not hold what a RelaxLossClassifier saves"),
])
def test_malformed_model_json_is_refused_naming_the_key(saved, change, match):
    folder, _ = saved
    doc = saved_document(folder)
    change(doc)
    rewrite(folder, doc)
    with pytest.raises(ValueError, match=match) as info:
        load_estimator(folder)
    assert "model.json" in str(info.value)


def test_truncated_or_foreign_safetensors_is_refused_naming_the_file(saved):
    folder, _ = saved
    weights = (folder / "model.safetensors").read_bytes()
    rewrite(folder, weights=weights[: len(weights) // 2])  # digests updated to match
    with pytest.raises(ValueError, match="model.safetensors' is not a safetensors file"):
        load_estimator(folder)
    rewrite(folder, weights=b"\x00" * 64)
    with pytest.raises(ValueError, match="model.safetensors' is not a safetensors file"):
        load_estimator(folder)
    # a real safetensors file of another model
    rewrite(folder, tensors={"module.encoder.weight": torch.zeros(3, 3)})
    with pytest.raises(ValueError, match=r"model.safetensors': tensor 'module\..*' "
                                         r"is missing"):
        load_estimator(folder)


@pytest.mark.parametrize("change, match", [
    (lambda t: t.update({"module.extra.weight": torch.zeros(2)}),
     "tensor 'module.extra.weight' is not a tensor of the network module"),
    (lambda t: t.update({"evil": torch.zeros(2)}), "tensor 'evil' is not a tensor of a saved"),
    (lambda t: t.update({"optics.lens": torch.zeros(2)}),
     "tensor 'optics.lens' is not a tensor of the model"),
    (lambda t: t.update({"fitted.secret_": torch.zeros(2)}),
     "tensor 'fitted.secret_' is not a tensor"),
    (lambda t: t.update({"optimizer.optimizer.99.momentum_buffer": torch.zeros(2)}),
     "tensor 'optimizer.optimizer.99.momentum_buffer' is not a tensor of the optimizer"),
    (lambda t: t.update({"optimizer.adam.0.step": torch.zeros(())}),
     "tensor 'optimizer.adam.0.step' is not of a saved optimizer"),
])
def test_wrong_tensor_names_are_refused_naming_the_key(saved, change, match):
    folder, _ = saved
    tensors = saved_tensors(folder)
    change(tensors)
    rewrite(folder, tensors=tensors)
    with pytest.raises(ValueError, match=match) as info:
        load_estimator(folder)
    assert "model.safetensors" in str(info.value)


def test_renamed_or_reshaped_tensors_are_refused_naming_the_key(saved):
    folder, _ = saved
    tensors = saved_tensors(folder)
    name = next(k for k in tensors if k.startswith("module.") and k.endswith("weight"))
    renamed = {("module.renamed" if k == name else k): v for k, v in tensors.items()}
    rewrite(folder, tensors=renamed)
    with pytest.raises(ValueError, match=f"tensor '{name}' is missing"):
        load_estimator(folder)
    reshaped = {**tensors, name: tensors[name].reshape(-1)}
    rewrite(folder, tensors=reshaped)
    with pytest.raises(ValueError, match=f"tensor '{name}' is torch.float32 of shape"):
        load_estimator(folder)
    momentum = next(k for k in tensors if k.startswith("optimizer."))
    rewrite(folder, tensors={**tensors, momentum: torch.zeros(7, 7)})
    with pytest.raises(ValueError, match=f"tensor '{momentum}' has shape \\(7, 7\\)"):
        load_estimator(folder)


def test_a_bank_refuses_unknown_keys_and_tensors(tmp_path, data):
    X, y = data
    bank = ReferenceModels(VanillaClassifier(**SMALL), n_estimators=2, random_state=0).fit(X, y)
    save_estimator(bank, tmp_path)
    loaded = load_estimator(tmp_path)
    np.testing.assert_array_equal(loaded.estimators_[1].predict_proba(X),
                                  bank.estimators_[1].predict_proba(X))
    # a model of a bank is saved without its optimizer: it predicts, and says why it
    # cannot be trained further
    with pytest.raises(ValueError, match="cannot continue this loaded model: it was saved as "
                                         "one model of a bank"):
        loaded.estimators_[0].partial_fit(X, y)
    loaded.estimators_[0].fit(X, y)  # a fit from scratch needs nothing more
    doc = saved_document(tmp_path)
    doc["fitted"]["evil_"] = {"value": 1}
    rewrite(tmp_path, doc)
    with pytest.raises(ValueError, match="key 'fitted.evil_' is not a fitted attribute of "
                                         "ReferenceModels"):
        load_estimator(tmp_path)
    doc["fitted"].pop("evil_")
    doc["models"][1]["fitted"]["evil_"] = {"value": 1}
    rewrite(tmp_path, doc)
    with pytest.raises(ValueError, match="key 'models.1.fitted.evil_' is not a fitted"):
        load_estimator(tmp_path)
    doc["models"][1]["fitted"].pop("evil_")
    tensors = saved_tensors(tmp_path)
    rewrite(tmp_path, doc, tensors={k: v for k, v in tensors.items() if k != "in_mask_"})
    with pytest.raises(ValueError, match="tensor 'in_mask_' is missing"):
        load_estimator(tmp_path)
    rewrite(tmp_path, tensors={**tensors, "bank.7.module.x": torch.zeros(1)})
    with pytest.raises(ValueError, match="tensor 'bank.7.module.x' is not a tensor of a saved"):
        load_estimator(tmp_path)
    name = next(k for k in tensors if k.startswith("bank.1.module."))
    rewrite(tmp_path, tensors={k: v for k, v in tensors.items() if k != name})
    with pytest.raises(ValueError, match=f"tensor '{name}' is missing"):
        load_estimator(tmp_path)


def test_a_model_that_is_not_whole_refuses_partial_fit(tmp_path, data):
    X, y = data
    clf, *_ = fit_small(VanillaClassifier, X, y)
    save_estimator(clf, tmp_path)
    doc = saved_document(tmp_path)
    assert doc["resume"] is None
    doc["optimizers"] = {}
    rewrite(tmp_path, doc, tensors={k: v for k, v in saved_tensors(tmp_path).items()
                                    if not k.startswith("optimizer.")})
    with pytest.raises(ValueError, match="key 'optimizers.optimizer' is missing"):
        load_estimator(tmp_path)
