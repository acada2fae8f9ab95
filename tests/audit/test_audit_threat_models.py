"""Defense audits of defenses that release modified outputs (HAMP, MemGuard): every row
says its threat model, and the attacks output modification does not stop (labels only,
the raw network) are run. MemGuard is the control that the label-only rows must break."""

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from skmia.attacks import label_only_signals
from skmia.audit import DefenseAudit, audit_defense
from skmia.audit._defense import LABEL_ONLY_QUERIES, _threat_signals, plan_audit
from skmia.audit._result import (
    BLACK_BOX,
    DEFENDED,
    LABEL_ONLY,
    WHITE_BOX,
    label_only_phi,
)
from skmia.defenses import HAMPClassifier, MemGuardClassifier
from skmia.experiment._audit_dir import method_rows
from skmia.report._audit import format_audit_table

SMALL = {"module__hidden_sizes": (64,), "max_epochs": 20, "milestones": (), "lr": 0.05,
         "batch_size": 32}


@pytest.fixture(scope="module")
def location_small(location_data_home):
    """400 Location30 records of its 8 largest classes (binary features, as the
    label-only queries flip them), the last 100 the test part."""
    from skmia.datasets import load_dataset

    X, y = load_dataset("location", return_X_y=True, data_home=location_data_home)
    top = np.sort(np.argsort(np.bincount(y))[-8:])
    rows = np.random.default_rng(0).choice(np.flatnonzero(np.isin(y, top)), 400,
                                           replace=False)
    return X[rows], np.searchsorted(top, y[rows])


@pytest.fixture(scope="module")
def memguard_audit(location_small):
    X, y = location_small
    test = np.arange(300, 400)
    recipe = MemGuardClassifier(**SMALL, max_steps=40, defender_epochs=100)
    return audit_defense(recipe, X, y, n_models=4, test_size=test, random_state=1,
                         fit_params={"X_reference": X[test], "y_reference": y[test]})


def test_memguard_rows_say_their_threat_model(memguard_audit):
    assert list(memguard_audit.threat_models_) == [DEFENDED, LABEL_ONLY, WHITE_BOX]
    assert memguard_audit.primary_threat_model == DEFENDED
    summary = memguard_audit.summary_
    assert summary["threat_model"].unique().tolist() == [DEFENDED, LABEL_ONLY, WHITE_BOX]
    # each threat model has every subset and attack: 3 x (others, all) x 2 attacks
    assert len(summary) == 12
    rows = method_rows("memguard", memguard_audit)
    assert [r["threat_model"] for r in rows] == [DEFENDED, LABEL_ONLY, WHITE_BOX]
    text = format_audit_table(pd.DataFrame(rows))
    assert text.startswith("| method | threat model |")
    for threat in (DEFENDED, LABEL_ONLY, WHITE_BOX):
        assert f"| memguard | {threat} |" in text


def test_the_label_only_attack_breaks_memguard(memguard_audit):
    # the "should break" control: MemGuard keeps every label, so the label-only
    # attack finds far more members at a low FPR than the attack on its released
    # confidences, and the raw network (white box) more still
    black = memguard_audit.summary_row("all", DEFENDED)
    labels = memguard_audit.summary_row("all", LABEL_ONLY)
    white = memguard_audit.summary_row("all", WHITE_BOX)
    assert memguard_audit.train_accuracy.mean() > 0.95  # overfit: something to find
    assert labels["tpr_at_1%fpr"] > 2 * black["tpr_at_1%fpr"], (labels, black)
    assert labels["auc"] > black["auc"], (labels["auc"], black["auc"])
    assert white["tpr_at_1%fpr"] > black["tpr_at_1%fpr"]


def test_threat_signals_equal_a_transcription(location_small):
    X, y = location_small
    model = HAMPClassifier(**SMALL, random_state=0).fit(X[:200], y[:200])
    plan = plan_audit(X, y, test_size=50, random_state=3)
    phi_raw, fraction = _threat_signals(model, X[:80], y[:80], plan)
    network = model.raw_module_.eval()
    with torch.no_grad():
        z = network(torch.as_tensor(X[:80])).double().numpy()
    expected = np.empty(80)
    for i in range(80):  # phi = z_y - log sum_{j != y} exp(z_j)
        others = np.delete(z[i], y[i])
        expected[i] = z[i, y[i]] - np.log(np.sum(np.exp(others)))
    np.testing.assert_allclose(phi_raw[:, 0], expected, rtol=1e-5, atol=1e-5)
    # the released confidences differ, the labels do not
    released = model.predict_proba(X[:80])
    assert not np.allclose(released, torch.softmax(torch.as_tensor(z), 1).numpy(), atol=1e-3)
    correct = label_only_signals(model.predict, X[:80], y[:80], n_queries=LABEL_ONLY_QUERIES,
                                 random_state=plan.label_only_seed())
    np.testing.assert_array_equal(fraction, correct.mean(axis=1))


def test_label_only_phi_by_hand():
    q = 4
    got = label_only_phi(np.array([0, 0.25, 0.5, 1.0]), q)
    expected = [np.log(0.5 / 4.5), np.log(1.5 / 3.5), 0.0, np.log(4.5 / 0.5)]
    np.testing.assert_allclose(got, expected)


def test_a_defense_that_releases_its_own_outputs_has_one_black_box_row():
    X, y = make_classification(200, n_features=5, random_state=0)
    audit = audit_defense(LogisticRegression(), X, y, n_models=4, test_size=40,
                          random_state=0)
    assert list(audit.threat_models_) == [BLACK_BOX]
    assert audit.summary_["threat_model"].unique().tolist() == [BLACK_BOX]
    assert audit.phi_raw is None and audit.label_only is None
    assert [r["threat_model"] for r in method_rows("lr", audit)] == [BLACK_BOX]


def test_save_and_load_keep_the_threat_models(memguard_audit, tmp_path):
    memguard_audit.save(tmp_path)
    loaded = DefenseAudit.load(tmp_path)
    np.testing.assert_array_equal(loaded.phi_raw, memguard_audit.phi_raw)
    np.testing.assert_array_equal(loaded.label_only, memguard_audit.label_only)
    pd.testing.assert_frame_equal(loaded.summary_, memguard_audit.summary_)


def test_threat_arrays_come_together(memguard_audit):
    a = memguard_audit
    args = (a.phi, a.in_mask, a.is_canary, a.record_index, a.test_accuracy,
            a.train_accuracy, a.epsilon)
    with pytest.raises(ValueError, match="phi_raw and label_only come together"):
        DefenseAudit(*args, a.settings, phi_raw=a.phi_raw)
    settings = {k: v for k, v in a.settings.items() if k != "label_only_queries"}
    with pytest.raises(ValueError, match="label_only_queries"):
        DefenseAudit(*args, settings, phi_raw=a.phi_raw, label_only=a.label_only)


def test_cli_audit_of_hamp_prints_a_row_per_threat_model(tmp_path, capsys,
                                                           location_data_home):
    from skmia.cli import main
    from skmia.report import html_report

    args = ["audit", "--dataset", "location", "--methods", "hamp", "--records",
            "1500", "--canaries", "40", "--models", "4", "--epochs", "2", "--hidden", "16",
            "-q", "--out", str(tmp_path)]
    assert main(args) == 0
    printed = capsys.readouterr().out
    for threat in (DEFENDED, LABEL_ONLY, WHITE_BOX):
        assert f"| hamp | {threat} |" in printed
    from skmia._rundir import AUDIT_FILES

    (root,) = [p.parent for p in tmp_path.rglob(AUDIT_FILES["plan"])]
    table_csv = root / AUDIT_FILES["table_csv"]
    table = pd.read_csv(table_csv)
    assert table["threat_model"].tolist() == [DEFENDED, LABEL_ONLY, WHITE_BOX]
    assert (table["method"] == "hamp").all()
    page = html_report([root])
    assert "threat model" in page and LABEL_ONLY in page
