"""Rates the scores cannot resolve are reported as unresolved, never as 0: in an attack's
evaluate, in the benchmark's tables and in the printed results tables."""

import numpy as np
import pandas as pd

from skmia.attacks import ReferenceAttack
from skmia.metrics import tpr_at_fpr
from skmia.report import format_table
from skmia.report._tables import UNRESOLVED_NOTE, unresolved_note


def binned_scores():
    """A score of 5 values, its top value shared by 300 of 1000 non-members."""
    rng = np.random.default_rng(0)
    y = np.r_[np.ones(1000, dtype=int), np.zeros(1000, dtype=int)]
    score = np.r_[rng.choice([3, 4], 1000), rng.choice([0, 1, 2, 3, 4], 1000,
                                                         p=[0.2, 0.2, 0.15, 0.15, 0.3])]
    return y, score.astype(float)


def test_a_binned_score_leaves_low_fprs_unresolved():
    y, score = binned_scores()
    rate = tpr_at_fpr(y, score, max_fpr=0.01)
    assert not rate.resolved and rate.min_fpr > 0.25 and rate.tpr == 0.0


def test_evaluate_of_an_attack_gives_nan_for_an_unresolved_rate():
    # Attack-R with one OUT model per record: few distinct scores, many ties at the top
    n = 2000
    rng = np.random.default_rng(1)
    y = np.r_[np.ones(n // 2, dtype=int), np.zeros(n // 2, dtype=int)]
    signals = pd.DataFrame({"score": np.where(y == 1, 50.0, 40.0),
                            "ref_score_0": rng.choice([10.0, 45.0], n),
                            "ref_in_0": False})
    attack = ReferenceAttack().fit(signals)
    metrics = attack.evaluate(signals, y)
    assert np.isnan(metrics["tpr_at_0.1%fpr"]) and np.isnan(metrics["tpr_at_1%fpr"])
    assert metrics["auc"] > 0.6


def test_printed_tables_leave_the_cell_empty_and_say_why():
    table = pd.DataFrame({"attack": ["LiRA", "Attack-R"], "auc": [0.9, 0.8],
                          "tpr_at_1%fpr": [0.25, np.nan],
                          "tpr_at_0.01%fpr": [np.nan, np.nan]})  # not measured at all
    text = format_table(table)
    assert "| Attack-R | 0.8000 |  |" in text
    assert "tpr_at_0.01%fpr" not in text  # an empty column is left out, no note for it
    assert text.rstrip().endswith(UNRESOLVED_NOTE)
    assert unresolved_note(table.drop(index=1)) == ""
    assert UNRESOLVED_NOTE not in format_table(table.drop(index=1))
    assert UNRESOLVED_NOTE not in format_table(table, "csv")
