"""The bottom line of a model audit (the strongest attack at each FPR, why attacks
disagree, what unresolved rates need), its per-record risk, and the progress that
audit_model, audit_defense and ReferenceModels.fit show (silenced by verbose=0)."""

import math
import re

import numpy as np
import pandas as pd
import pytest
from sklearn.datasets import make_classification
from sklearn.linear_model import LogisticRegression

from skmia.audit import audit_defense, audit_model
from skmia.audit._bottom_line import (
    BOTTOM_LINE,
    ModelAudit,
    bottom_line,
    per_record,
    signal_diagnostics,
    unresolved_notes,
)
from skmia.defenses import VanillaClassifier
from skmia.model_selection import ReferenceModels

NAN = math.nan
FPRS = {"0.1%": 1e-3, "1%": 1e-2}


def _table(rows):
    """Attack rows: (attack, auc, tpr@0.1%, low, high, tpr@1%, low, high)."""
    columns = ["attack", "auc"] + [f"tpr_at_{n}fpr{e}" for n in FPRS for e in ("", "_low",
                                                                                "_high")]
    table = pd.DataFrame(rows, columns=columns)
    return table.assign(method="RandomForestClassifier", accuracy=0.9,
                        empirical_epsilon=1.0, fitted_on="x")


# a random forest as the issue measured it: LiRA 0.031 at 1 % FPR, Attack-R 0.478
FOREST = [("loss", 0.80, NAN, NAN, NAN, 0.020, 0.008, 0.041),
          ("LiRA online", 0.85, NAN, NAN, NAN, 0.031, 0.016, 0.054),
          ("Attack-R", 0.93, NAN, NAN, NAN, 0.478, 0.430, 0.527),
          ("RMIA online, T=2", 0.92, NAN, NAN, NAN, 0.410, 0.362, 0.459)]
FLAT = {"flat_reference": 0.42, "distinct_scores": 21, "n_records": 800, "n_reference": 8}


def test_the_bottom_line_takes_the_strongest_attack_at_each_fpr_and_says_why_others_fall():
    row, notes = bottom_line(_table(FOREST), FPRS, FLAT)
    assert row["attack"] == BOTTOM_LINE
    assert (row["tpr_at_1%fpr"], row["tpr_at_1%fpr_low"], row["tpr_at_1%fpr_high"]) == (
        0.478, 0.430, 0.527)
    assert row["auc"] == 0.93 and math.isnan(row["tpr_at_0.1%fpr"])
    assert math.isnan(row["accuracy"]) and math.isnan(row["empirical_epsilon"])
    assert row["fitted_on"] == ("the strongest attack at each FPR: 0.1 %: unresolved, "
                                "1 %: Attack-R")
    assert notes == [
        "at 1 % FPR Attack-R finds 0.478 [0.430, 0.527] of the members and loss 0.020 "
        "[0.008, 0.041]: loss sets one threshold for every record (per class at most), "
        "which misses members that are confident only relative to their own reference "
        "scores; Attack-R calibrates each record against the reference models",
        "at 1 % FPR Attack-R finds 0.478 [0.430, 0.527] of the members and LiRA online "
        "0.031 [0.016, 0.054]: for 42% of the records the reference models' scores do not "
        "spread (the model's 21 distinct scores on 800 records: votes or probabilities "
        "that saturate), so LiRA's per-record Gaussians have no width; Attack-R compares "
        "ranks against the reference scores and needs none",
    ]


def test_attacks_whose_intervals_overlap_the_strongest_do_not_disagree():
    rows = [(*r[:5], r[5], r[6], 0.5) for r in FOREST]  # every interval reaches 0.5
    assert bottom_line(_table(rows), FPRS, FLAT)[1] == []
    # without flat reference scores the LiRA note names the Gaussian assumption
    notes = bottom_line(_table(FOREST), FPRS, {**FLAT, "flat_reference": 0.0})[1]
    assert "LiRA fits a Gaussian to each record's scores under 8 reference models" in notes[1]


def test_unresolved_rates_say_how_many_non_members_they_need():
    table = _table(FOREST)
    assert unresolved_notes(FPRS, 400, table) == [
        "TPR at 0.1 % FPR unresolved: 400 non-members, it needs at least 1,000 (1/FPR: one "
        "false positive; 10,000 for an interval of use)"]
    table["tpr_at_0.1%fpr"] = NAN
    assert unresolved_notes(FPRS, 2000, table)[0].startswith(
        "TPR at 0.1 % FPR unresolved: more than 2 of the 2,000 non-members tie at the top")


def test_per_record_risk_is_the_fpr_at_which_a_record_is_flagged():
    # members score 5, 1, 3; non-members 4, 2, 0, 1 (hand-computed: the fraction of the
    # 4 non-members scoring at least as high)
    membership = np.array([1, 1, 1, 0, 0, 0, 0])
    risk = per_record({"LiRA": [5, 1, 3, 4, 2, 0, 1]}, membership, "LiRA")
    assert risk[["record", "member", "fpr_flagged"]].values.tolist() == [
        [0, True, 0.0], [0, False, 0.25], [2, True, 0.25], [1, False, 0.5],
        [1, True, 0.75], [3, False, 0.75], [2, False, 1.0]]
    assert (risk["attack"] == "LiRA").all()


def test_signal_diagnostics_count_records_whose_reference_scores_do_not_spread():
    signals = pd.DataFrame({"score": [1.0, 1.0, 2.0, 3.0],
                            "ref_score_0": [1.0, 0.0, 0.0, 0.0], "ref_in_0": [1, 1, 0, 0],
                            "ref_score_1": [1.0, 1.0, 0.0, 1.0], "ref_in_1": [1, 1, 1, 1],
                            "ref_score_2": [0.0, 2.0, 0.0, 2.0], "ref_in_2": [0, 0, 0, 0],
                            "ref_score_3": [1.0, 3.0, 0.0, 2.0], "ref_in_3": [0, 0, 1, 1]})
    # record 0: IN (1, 1) flat; 1: IN (0, 1), OUT (2, 3) both spread; 2: everything 0;
    # 3: IN (1, 2), OUT (0, 2)
    assert signal_diagnostics(signals) == {"distinct_scores": 3, "n_records": 4,
                                           "n_reference": 4, "flat_reference": 0.5}


# ------------------------------------------------------------- audit_model end to end


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(600, n_features=10, n_informative=6, n_classes=3,
                               flip_y=0.2, random_state=0)
    return X.astype(np.float32), y


def test_audit_model_ends_with_the_bottom_line_and_ranks_records(data, capsys):
    X, y = data
    X = np.hstack([X, np.random.default_rng(0).normal(size=(len(X), 90))])  # overfits
    model = LogisticRegression(C=100, max_iter=500).fit(X[:200], y[:200])
    table = audit_model(model, X[:200], y[:200], X[200:400], y[200:400], n_reference=4,
                        random_state=0, verbose=0)
    assert capsys.readouterr().err == ""  # verbose=0: silent
    assert isinstance(table, ModelAudit) and table["attack"].iloc[-1] == BOTTOM_LINE
    attacks, bottom = table.iloc[:-1], table.iloc[-1]
    assert attacks["tpr_at_1%fpr"].notna().any()
    strongest = attacks.loc[attacks["tpr_at_1%fpr"].idxmax()]
    assert bottom["auc"] == attacks["auc"].max()
    for end in ("", "_low", "_high"):
        assert bottom[f"tpr_at_1%fpr{end}"] == strongest[f"tpr_at_1%fpr{end}"]
    assert bottom["fitted_on"].endswith(f"1 %: {strongest['attack']}")
    risk = table.per_record_
    assert len(risk) == 400 and risk["member"].sum() == 200
    assert sorted(risk.loc[risk["member"], "record"]) == list(range(200))
    assert risk["fpr_flagged"].is_monotonic_increasing
    assert (risk["attack"] == strongest["attack"]).all()
    # as many members flagged at 1 % FPR as the strongest attack's TPR says
    assert (risk["member"] & (risk["fpr_flagged"] <= 0.01)).sum() / 200 == pytest.approx(
        strongest["tpr_at_1%fpr"])
    assert table.attrs["notes"][1:3] == unresolved_notes(
        {"0.01%": 1e-4, "0.1%": 1e-3}, 200, attacks)


# --------------------------------------------------------------------------- progress


def _bar_done(err, desc, total):
    """Whether stderr shows ``desc``'s bar finished at ``total`` with tqdm's estimate."""
    return re.search(rf"{re.escape(desc)}.*{total}/{total} \[\d\d:\d\d<\d\d:\d\d", err)


def test_audit_model_shows_its_bank_and_attacks_with_the_time_left(data, capsys):
    X, y = data
    model = LogisticRegression(max_iter=200).fit(X[:100], y[:100])
    audit_model(model, X[:100], y[:100], X[100:200], y[100:200], n_reference=4,
                random_state=0)
    err = capsys.readouterr().err
    assert _bar_done(err, "reference models", 4)
    assert _bar_done(err, "audit_model: signals and attacks", 8)  # signals, 5 + 2 attacks


def test_batched_bank_counts_epochs(data, capsys):
    X, y = data
    recipe = VanillaClassifier(module__hidden_sizes=(8,), max_epochs=3, batch_size=64)
    ReferenceModels(recipe, n_estimators=4, random_state=0, verbose=1).fit(X[:200], y[:200])
    assert _bar_done(capsys.readouterr().err, "reference models (batched)", 12)
    ReferenceModels(recipe, n_estimators=4, random_state=0).fit(X[:200], y[:200])
    assert capsys.readouterr().err == ""  # verbose=0, the bank's default


def test_audit_defense_shows_progress_unless_verbose_is_0(data, capsys):
    X, y = data
    recipe = VanillaClassifier(module__hidden_sizes=(8,), max_epochs=2, batch_size=64)
    audit_defense(recipe, X[:300], y[:300], n_models=4, test_size=50, random_state=0)
    assert _bar_done(capsys.readouterr().err, "reference models (batched)", 8)
    audit_defense(LogisticRegression(max_iter=200), X[:300], y[:300], n_models=4,
                  test_size=50, random_state=0, verbose=0)
    assert capsys.readouterr().err == ""
