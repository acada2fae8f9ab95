"""The verdict of a defense audit in words: the exact text for a known audit table
(Location30's rows of benchmarks/docs/defense_audit.md, issue 21), and each rule on its own."""

import math

import numpy as np
import pandas as pd
import pytest

from skmia.report._audit import audit_display_table, format_audit_table
from skmia.report._verdict import audit_verdict, epsilon_cell, is_vacuous

COLUMNS = ["method", "threat_model", "test_accuracy", "canary_tpr_at_0.1%fpr",
           "canary_tpr_at_1%fpr", "population_tpr_at_0.1%fpr", "population_tpr_at_1%fpr",
           "epsilon"]
NAN = math.nan
# Location30, 16 models (benchmarks/docs/defense_audit.md)
LOCATION = [
    ("vanilla", "black-box", 0.541, 0.978, 0.998, 0.186, 0.422, NAN),
    ("dpsgd_hu", "black-box", 0.659, 0.191, 0.391, 0.085, 0.261, 288.0),
    ("selena", "black-box", 0.556, 0.267, 0.464, 0.001, 0.026, NAN),
    ("hamp", "black-box (defended outputs)", 0.476, 0.703, 0.926, 0.027, 0.113, NAN),
    ("hamp", "label-only", 0.476, 0.991, 1.000, 0.173, 0.477, NAN),
    ("hamp", "white-box (raw outputs)", 0.476, 0.996, 1.000, 0.274, 0.583, NAN),
]


def _table(rows):
    return pd.DataFrame(rows, columns=COLUMNS)


def test_the_verdict_of_a_known_audit():
    assert audit_verdict(_table(LOCATION)) == [
        "Verdict at 0.1 % FPR (TPR of the strongest attack: the fraction of the canaries, "
        "the records most at risk, and of the population, the other records, found):",
        "- vanilla (test acc. 0.541): 0.978 of canaries; 0.186 of the population.",
        "- dpsgd_hu (test acc. 0.659, vanilla 0.541, DP ε 288, vacuous): 0.191 of canaries "
        "(vanilla 0.978); 0.085 of the population (vanilla 0.186).",
        "- selena (test acc. 0.556, vanilla 0.541): 0.267 of canaries (vanilla 0.978); "
        "0.001 of the population (vanilla 0.186). Against DP-SGD more accurate (dpsgd_hu, "
        "test acc. 0.659): more canaries (0.267 vs 0.191) and fewer of the population "
        "(0.001 vs 0.085).",
        "- hamp (test acc. 0.476, vanilla 0.541): 0.703 of canaries from its released "
        "outputs (vanilla 0.978), 0.991 from its labels alone, 0.996 from its raw network "
        "(white box); 0.027 of the population from its released outputs (vanilla 0.186), "
        "0.173 from its labels alone, 0.274 from its raw network (white box). Against "
        "DP-SGD more accurate (dpsgd_hu, test acc. 0.659): more canaries (0.703 vs 0.191) "
        "and fewer of the population (0.027 vs 0.085). Broken from its released outputs, "
        "from its labels alone and from its raw network (white box): each finds at least "
        "50 % of the canaries that vanilla's outputs give away (0.978).",
    ]


def test_only_the_threat_models_that_find_half_of_vanillas_canaries_break_it():
    rows = [LOCATION[0],
            ("hamp", "black-box (defended outputs)", 0.52, 0.40, 0.6, 0.01, 0.05, NAN),
            ("hamp", "label-only", 0.52, 0.489, 0.9, 0.05, 0.2, NAN),  # exactly half
            ("hamp", "white-box (raw outputs)", 0.52, 0.488, 0.9, 0.05, 0.2, NAN)]
    line = audit_verdict(_table(rows))[-1]
    assert line.endswith("Broken from its labels alone: it finds at least 50 % of the "
                         "canaries that vanilla's outputs give away (0.978).")
    assert "No DP-SGD" not in line and "Against DP-SGD" not in line  # no DP row at all


def test_a_dp_baseline_as_accurate_that_leaks_less_of_both_dominates():
    rows = [LOCATION[0],
            ("dpsgd", "black-box", 0.525, 0.10, 0.3, 0.01, 0.05, 7.99),  # 0.015 less: comparable
            ("dpsgd", "black-box", 0.60, 0.30, 0.5, 0.02, 0.08, 50.0),
            ("relaxloss", "black-box", 0.54, 0.30, 0.5, 0.02, 0.10, NAN)]
    lines = audit_verdict(_table(rows))
    assert lines[2].startswith("- dpsgd (test acc. 0.525, vanilla 0.541, DP ε 7.99): ")
    assert lines[3] == (
        "- relaxloss (test acc. 0.540, vanilla 0.541): 0.300 of canaries (vanilla 0.978); "
        "0.020 of the population (vanilla 0.186). Against DP-SGD at comparable accuracy "
        "(dpsgd, test acc. 0.525): more canaries (0.300 vs 0.100) and more of the "
        "population (0.020 vs 0.010); dpsgd is as accurate and leaks less of both.")


def test_no_dp_baseline_at_comparable_accuracy_is_said():
    rows = [LOCATION[0], ("dpsgd", "black-box", 0.40, 0.01, 0.05, 0.01, 0.02, 3.0),
            ("selena", "black-box", 0.556, 0.267, 0.464, 0.001, 0.026, NAN)]
    assert audit_verdict(_table(rows))[-1].endswith(
        "No DP-SGD baseline at comparable accuracy: the most accurate, dpsgd, reaches 0.400 "
        "(0.156 less).")


def test_unresolved_rates_fall_back_to_1_percent_and_are_compared_with_nothing():
    rows = [(m, t, a, NAN, c1, NAN, p1, e) for m, t, a, _, c1, _, p1, e in LOCATION[:3]]
    rows[2] = (*rows[2][:4], NAN, *rows[2][5:])  # selena: no canary rate at 1 % either
    lines = audit_verdict(_table(rows))
    assert lines[0].startswith("Verdict at 1 % FPR") and "0.1 % FPR is unresolved" in lines[0]
    assert lines[1] == "- vanilla (test acc. 0.541): 0.998 of canaries; 0.422 of the population."
    assert "unresolved of canaries (vanilla 0.998)" in lines[3]
    assert "canaries unresolved vs 0.391 and fewer of the population (0.026 vs 0.261)" in lines[3]
    assert "Broken" not in lines[3]


def test_without_vanilla_nothing_is_held_against_it():
    lines = audit_verdict(_table(LOCATION[1:3]))
    assert "vanilla" not in "".join(lines[1:-1])
    assert lines[-1] == "(no vanilla row in this audit: nothing to hold the methods against)"


@pytest.mark.parametrize(("epsilon", "cell", "vacuous"), [
    (NAN, "", False), (None, "", False), (7.99, "7.99", False), (10.0, "10.00", False),
    (288.0, "288 (vacuous)", True), (2.6e6, "2.6e+06 (vacuous)", True),
    (math.inf, "inf (vacuous)", True)])
def test_dp_epsilon_above_10_is_vacuous(epsilon, cell, vacuous):
    assert epsilon_cell(epsilon) == cell
    assert is_vacuous(epsilon) is vacuous


def test_the_audit_table_prints_the_verdict_below_it():
    table = _table(LOCATION).assign(n_models=16, attack="LiRA (fixed variance)",
                                    test_accuracy_std=0.01, canary_auc=0.9,
                                    population_auc=0.8, empirical_epsilon=1.0, note="")
    for name in ("0.1%", "1%"):
        key = f"canary_tpr_at_{name}fpr"
        table[f"{key}_low"], table[f"{key}_high"] = table[key] - 0.01, table[key] + 0.01
    text = format_audit_table(table)
    assert text.endswith("\n\n" + "\n".join(audit_verdict(table)) + "\n")
    assert list(audit_display_table(table)["DP ε"]) == ["", "288 (vacuous)", "", "", "", ""]
    assert np.all(table["epsilon"].iloc[[0, 2]].isna())
