"""audit_model audits any fitted model: leaks are found, unseen records look alike, the
folder it writes reads back as a run, and the README's section runs as written."""

import re
import shutil
from pathlib import Path

import numpy as np
import pandas as pd
import pytest
import torch
from sklearn.datasets import make_classification
from sklearn.exceptions import NotFittedError
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler
from sklearn.svm import LinearSVC

from skmia._rundir import RESULT_COLUMNS, RunDirectory, read_scores
from skmia.audit import MODEL_AUDIT_COLUMNS, audit_model
from skmia.audit._bottom_line import BOTTOM_LINE
from skmia.defenses import VanillaClassifier
from skmia.nn import MLP

N = 150  # members, non-members, population, and the rows a null model trains on
# The null bound: a score that knows nothing of membership has an AUC of standard
# deviation sqrt((n1 + n2 + 1) / (12 n1 n2)) = 0.033 on 150 + 150 records; 0.15 is 4.5 of
# them, so that no row of a null audit (about a dozen attacks) strays past it by chance.
NULL_BOUND = 0.15
THRESHOLD_ATTACKS = ["NN", "confidence", "entropy", "modified entropy", "loss"]
GRADIENT_ATTACKS = ["grad_wrt_x_l1", "grad_wrt_x_l2", "grad_wrt_w_l1", "grad_wrt_w_l2"]


@pytest.fixture(scope="module")
def data():
    """Members, non-members, population and other rows of one distribution (20 % of the
    labels flipped, so that a model that memorises its members shows it)."""
    X, y = make_classification(4 * N, n_features=20, n_informative=10, n_classes=4,
                               flip_y=0.2, random_state=0)
    X = X.astype(np.float32)
    parts = [(X[i * N:(i + 1) * N], y[i * N:(i + 1) * N]) for i in range(4)]
    return dict(zip(("members", "nonmembers", "population", "other"), parts, strict=True))


def _audit(model, data, **kwargs):
    return audit_model(model, *data["members"], *data["nonmembers"], random_state=0,
                       **kwargs)


def _mlp():
    return MLPClassifier((64,), learning_rate_init=0.01, max_iter=300, random_state=0)


def _by_attack(table):
    return table.set_index("attack")


def _check_null(table):
    auc = _by_attack(table)["auc"]
    assert (auc - 0.5).abs().max() < NULL_BOUND, auc


def _torch_mlp(X, y, steps=300):
    """A plain torch module trained by hand (no skorch, no skmia estimator)."""
    torch.manual_seed(0)
    module = MLP(X.shape[1], 4, hidden_sizes=(64,))
    optimizer = torch.optim.Adam(module.parameters(), lr=1e-2)
    X_t, y_t = torch.as_tensor(X), torch.as_tensor(y)
    for _ in range(steps):
        optimizer.zero_grad()
        torch.nn.functional.cross_entropy(module(X_t), y_t).backward()
        optimizer.step()
    return module


# ------------------------------------------------------------- a scikit-learn model


@pytest.fixture(scope="module")
def mlp_audit(data, tmp_path_factory):
    """An overfit MLPClassifier, audited with a population and a bank of its clones."""
    model = _mlp().fit(*data["members"])
    out = tmp_path_factory.mktemp("audit") / "mlp"
    return model, out, _audit(model, data, population=data["population"], n_reference=4,
                              out=out)


def test_an_overfit_scikit_learn_model_leaks(mlp_audit):
    _, _, table = mlp_audit
    assert list(table.columns) == list(MODEL_AUDIT_COLUMNS)
    rows = _by_attack(table)
    # every attack the inputs allow: thresholds, population, reference models
    assert list(rows.index) == [*THRESHOLD_ATTACKS, "Attack-P", "QMIA", "RMIA online, T=2",
                                "LiRA online", "Attack-R", BOTTOM_LINE]
    assert (rows["train_accuracy"] == 1.0).all() and (rows["test_accuracy"] < 0.7).all()
    assert rows.loc["loss", "auc"] > 0.8
    assert rows.loc["LiRA online", "auc"] > 0.85
    assert rows.loc["LiRA online", "tpr_at_1%fpr_low"] > 0.05  # far above the 1 % FPR
    assert "empirical_epsilon" not in rows  # one model's records prove no ε
    # 150 non-members measure 1 % FPR, not 0.1 %: unresolved, not 0
    assert rows["tpr_at_0.1%fpr"].isna().all() and rows["tpr_at_1%fpr"].notna().all()
    low, high = rows["tpr_at_1%fpr_low"], rows["tpr_at_1%fpr_high"]
    assert ((low <= rows["tpr_at_1%fpr"]) & (rows["tpr_at_1%fpr"] <= high)).all()
    assert rows.loc["loss", "fitted_on"].endswith("(2-fold)")
    assert rows.loc["LiRA online", "fitted_on"] == "reference models"
    notes = table.attrs["notes"]
    assert notes[:2] == [  # 150 non-members resolve 1 % FPR only
        "TPR at 0.01 % FPR unresolved: 150 non-members, it needs at least 10,000 (1/FPR: "
        "one false positive; 100,000 for an interval of use)",
        "TPR at 0.1 % FPR unresolved: 150 non-members, it needs at least 1,000 (1/FPR: "
        "one false positive; 10,000 for an interval of use)"]
    assert all(note.startswith("at 1 % FPR ") for note in notes[2:])  # disagreements


def test_a_scikit_learn_model_on_unseen_records_shows_no_leak(data):
    model = _mlp().fit(*data["other"])  # members and non-members both unseen
    table = _audit(model, data, population=data["population"], n_reference=4)
    assert "LiRA online" in set(table["attack"])
    _check_null(table)


def test_the_folder_reads_back_as_a_run(mlp_audit, capsys):
    from skmia.cli import main
    from skmia.report import collect_results, html_report

    _, out, audit = mlp_audit
    assert audit.attrs["folder"] == str(out)
    table = audit[audit["attack"] != BOTTOM_LINE]  # the folder holds the attacks' rows
    assert sorted(p.name for p in out.iterdir()) == ["attack", "complete.json", "params.json"]
    assert not [p for p in out.parent.iterdir() if p.name.startswith(".")]  # no staging
    pd.testing.assert_frame_equal(collect_results([out]), table[list(RESULT_COLUMNS)])
    pd.testing.assert_frame_equal(RunDirectory(out).read_results(),
                                  table[list(RESULT_COLUMNS)])
    assert main(["report", str(out)]) == 0
    printed = capsys.readouterr().out
    lines = [line for line in printed.splitlines() if line.startswith("| custom |")]
    assert [line.split(" | ")[3] for line in lines] == list(table["attack"])
    page = html_report([out])
    assert 'class="status-attacked">attacked' in page
    for attack in table["attack"]:
        assert f"<td>{attack}</td>" in page
    assert "roc.png is missing" not in page and "loss_hist.png is missing" not in page
    # the audit keeps scores, the report draws them: the figures match the table's attacks
    scores, membership, loss = read_scores(RunDirectory(out).read_bytes("attack",
                                                                        "scores.npz"))
    assert list(scores) == list(table["attack"])
    assert membership.sum() == (membership == 0).sum() == len(loss) // 2


def test_a_damaged_scores_file_leaves_the_figures_missing(mlp_audit, tmp_path):
    from skmia.report import html_report

    _, out, _ = mlp_audit
    copy = tmp_path / "damaged"
    shutil.copytree(out, copy)
    (copy / "attack" / "scores.npz").write_bytes(b"PK not a zip")
    with pytest.raises(ValueError, match="scores.npz is not a scores file"):
        read_scores((copy / "attack" / "scores.npz").read_bytes())
    page = html_report([copy])
    assert "roc.png is missing" in page and "loss_hist.png is missing" in page


def test_an_earlier_audit_is_replaced_other_folders_are_refused(data, tmp_path):
    model = _mlp().fit(*data["members"])
    out = tmp_path / "audit"
    first = _audit(model, data, n_reference=0, out=out)
    second = _audit(model, data, n_reference=0, attacks=["loss"], out=out)  # replaces it
    assert list(second["attack"]) == ["loss", BOTTOM_LINE] and len(first) == 5 + 1
    assert list(RunDirectory(out).read_results()["attack"]) == ["loss"]
    other = tmp_path / "other"
    other.mkdir()
    (other / "notes.txt").write_text("mine")
    with pytest.raises(ValueError, match=r"holds files that are not a model audit \(notes"):
        _audit(model, data, n_reference=0, out=other)
    assert [p.name for p in other.iterdir()] == ["notes.txt"]
    with pytest.raises(ValueError, match="exists and is not a folder"):
        _audit(model, data, n_reference=0, out=other / "notes.txt")


# ------------------------------------------------------------------- a pipeline


def _pipeline():
    return make_pipeline(StandardScaler(), VanillaClassifier(
        max_epochs=40, milestones=(), module__hidden_sizes=(64,), random_state=0))


def test_a_pipeline_ending_in_a_defense_leaks_black_and_white_box(data):
    model = _pipeline().fit(*data["members"])
    table = _audit(model, data, population=data["population"], n_reference=4)
    rows = _by_attack(table)
    assert set(GRADIENT_ATTACKS) <= set(rows.index)  # white-box through the pipeline
    assert {"LiRA online", "RMIA online, T=2"} <= set(rows.index)  # a bank of pipelines
    assert rows["method"].iloc[0] == "Pipeline[StandardScaler, VanillaClassifier]"
    assert rows.loc["loss", "auc"] > 0.65
    assert rows.loc["grad_wrt_w_l2", "auc"] > 0.65
    assert rows.loc["LiRA online", "auc"] > 0.75


def test_a_pipeline_on_unseen_records_shows_no_leak(data):
    model = _pipeline().fit(*data["other"])
    table = _audit(model, data, n_reference=0)
    assert set(GRADIENT_ATTACKS) <= set(table["attack"])
    _check_null(table)


# ----------------------------------------------------------------- a torch module


def test_a_plain_torch_module_leaks_black_and_white_box(data):
    module = _torch_mlp(*data["members"])
    recipe = VanillaClassifier(module=MLP, module__hidden_sizes=(64,), max_epochs=40,
                               milestones=())
    table = _audit(module, data, population=data["population"], recipe=recipe,
                   n_reference=4)
    rows = _by_attack(table)
    assert set(GRADIENT_ATTACKS) <= set(rows.index)
    assert (rows["train_accuracy"] == 1.0).all()
    assert rows.loc["loss", "auc"] > 0.8 and rows.loc["grad_wrt_x_l2", "auc"] > 0.8
    assert rows.loc["LiRA online", "auc"] > 0.75  # with a recipe, reference models too


def test_a_torch_module_on_unseen_records_shows_no_leak_and_says_why_no_bank(data):
    table = _audit(_torch_mlp(*data["other"]), data, population=data["population"])
    _check_null(table)
    assert "LiRA online" not in set(table["attack"])
    assert any("torch module, which holds no training recipe" in note
               for note in table.attrs["notes"])


# ------------------------------------------------- decision_function, white-box, input


def test_a_decision_function_model_is_audited_and_says_what_it_lacks(data):
    model = LinearSVC().fit(*data["members"])
    with pytest.warns(UserWarning, match="LinearSVC has no predict_proba") as record:
        table = _audit(model, data, population=data["population"], n_reference=4)
    assert len(record) == 1  # once per audit, not once per query
    assert any("not the model's probabilities nor its training loss" in note
               for note in table.attrs["notes"])
    rows = _by_attack(table)
    assert "RMIA online, softmax" in rows.index  # γ = 1: decisions are no probabilities
    assert rows[["auc", "tpr_at_1%fpr"]].notna().all().all()
    assert rows.loc["loss", "train_accuracy"] == pytest.approx(
        model.score(*data["members"]))


def test_white_box_on_a_scikit_learn_model_is_refused(data):
    model = _mlp().fit(*data["members"])
    with pytest.raises(ValueError, match="white_box=True needs the gradients of a torch "
                                         "model, but MLPClassifier is not one"):
        _audit(model, data, white_box=True, n_reference=0)
    with pytest.raises(ValueError, match="'grad_wrt_w_l2' is a white-box attack"):
        _audit(model, data, attacks=["grad_wrt_w_l2"], n_reference=0)


def test_bad_input_is_refused(data):
    model = _mlp().fit(*data["members"])
    (X_in, y_in), (X_out, y_out) = data["members"], data["nonmembers"]
    with pytest.raises(ValueError, match="X_members and y_members must have one record per "
                                         "label: got X of shape"):
        audit_model(model, X_in, y_in[:-1], X_out, y_out)
    with pytest.raises(ValueError, match=r"records of shape \(20,\) but X_nonmembers of "
                                         r"shape \(19,\)"):
        audit_model(model, X_in, y_in, X_out[:, 1:], y_out)
    with pytest.raises(ValueError, match="at least 2 nonmembers"):
        audit_model(model, X_in, y_in, X_out[:1], y_out[:1])
    with pytest.raises(NotFittedError, match="MLPClassifier is not fitted yet"):
        audit_model(_mlp(), X_in, y_in, X_out, y_out)
    with pytest.raises(TypeError, match="model must be a fitted skorch net"):
        audit_model(object(), X_in, y_in, X_out, y_out)
    with pytest.raises(ValueError, match="unknown attack\\(s\\) 'lyra'"):
        audit_model(model, X_in, y_in, X_out, y_out, attacks=["lyra"])
    with pytest.raises(ValueError, match="'qmia' \\(QMIA\\) calibrates on population"):
        audit_model(model, X_in, y_in, X_out, y_out, attacks=["qmia"])
    with pytest.raises(ValueError, match="'lira' \\(LiRA online\\) needs reference models"):
        audit_model(model, X_in, y_in, X_out, y_out, attacks=["lira"], n_reference=0)
    with pytest.raises(ValueError, match="n_reference must be 0 \\(no bank\\) or an even"):
        audit_model(model, X_in, y_in, X_out, y_out, n_reference=3)


# ---------------------------------------------------------------------- the README


def test_the_readme_section_runs_as_written(tmp_path, monkeypatch, capsys):
    text = (Path(__file__).resolve().parents[2] / "README.md").read_text()
    section = text.split("## Audit your own model", 1)[1].split("\n## ", 1)[0]
    blocks = re.findall(r"```python\n(.*?)```", section, flags=re.DOTALL)
    assert len(blocks) == 1, "the section has one Python block"
    monkeypatch.chdir(tmp_path)  # it writes results/own-model
    exec(compile(blocks[0], "README.md", "exec"), {})  # noqa: S102 - our own README
    printed = capsys.readouterr().out
    assert printed.strip() and printed in section  # the README quotes what it prints
    assert RunDirectory(tmp_path / "results" / "own-model").is_complete()
