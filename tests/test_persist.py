"""Saving and loading fitted defenses: safetensors + JSON, nothing unpickled."""

import hashlib
import json

import numpy as np
import pytest
from sklearn.datasets import make_classification

from skmia import __version__
from skmia.defenses import (
    ConfidencePenaltyClassifier,
    DistillationClassifier,
    DropoutClassifier,
    EarlyStoppingClassifier,
    LabelSmoothingClassifier,
    RelaxLossClassifier,
    VanillaClassifier,
)
from skmia.experiment import load_estimator, save_estimator
from skmia.experiment._persist import _digest

SMALL = {"max_epochs": 2, "module__hidden_sizes": (8,), "random_state": 0}
CLASSES = [
    VanillaClassifier, RelaxLossClassifier, ConfidencePenaltyClassifier,
    LabelSmoothingClassifier, DropoutClassifier, EarlyStoppingClassifier,
    DistillationClassifier,
]


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
    X, y = data
    extra = {"snapshot_epochs": (1, 2)} if cls is EarlyStoppingClassifier else {}
    clf = cls(**SMALL, **extra).fit(X, y)
    save_estimator(clf, tmp_path)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["model.json", "model.safetensors"]
    loaded = load_estimator(tmp_path)
    assert type(loaded) is cls
    np.testing.assert_array_equal(loaded.classes_, clf.classes_)
    np.testing.assert_allclose(loaded.predict_proba(X), clf.predict_proba(X), rtol=1e-6)
    np.testing.assert_array_equal(loaded.train_indices_, clf.train_indices_)
    assert loaded.get_params()["max_epochs"] == 2
    if extra:
        np.testing.assert_allclose(loaded.snapshot(1).predict_proba(X),
                                   clf.snapshot(1).predict_proba(X), rtol=1e-6)


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
