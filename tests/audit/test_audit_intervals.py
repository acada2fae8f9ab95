"""The defense audit's intervals and per-record TPR (skmia/audit/_intervals.py): point
values equal the metrics', resampled values equal the metrics on duplicated pairs, the
per-record TPR by hand, and coverage over reruns of a simulated audit with the audit's
dependence (a per-record effect shared across models, a per-model effect, noise, the
audit's masks and leave-one-out LiRA), where Clopper-Pearson over pairs under-covers."""

import numpy as np
import pandas as pd
import pytest

from skmia._rundir import AUDIT_FILES, RunDirectory
from skmia.audit import DefenseAudit, loo_lira_scores
from skmia.audit._intervals import (
    INTERVAL_PROCEDURE,
    _SortedPairs,
    pair_rates,
    record_tpr_at_fpr,
)
from skmia.audit._result import AUDIT_COLUMNS, MAX_FPRS, SUMMARY_COLUMNS, subset_row
from skmia.metrics import attack_auc, tpr_at_fpr
from skmia.model_selection import balanced_masks
from skmia.report._audit import find_audits, format_audit_table

FPRS = list(MAX_FPRS.values())


def _scores(n=300, k=16, seed=0, decimals=None):
    rng = np.random.default_rng(seed)
    mask = balanced_masks(n, k, 0.5, seed)
    score = rng.normal(size=(n, k)) + 1.5 * mask
    return (score if decimals is None else np.round(score, decimals)), mask


@pytest.mark.parametrize("decimals", [None, 1])  # continuous scores, and many ties
def test_point_values_equal_the_metrics_on_pooled_pairs(decimals):
    score, mask = _scores(decimals=decimals)
    rates = pair_rates(score, mask, FPRS, n_resamples=20)
    assert rates["auc"] == pytest.approx(attack_auc(mask.ravel(), score.ravel()), abs=1e-12)
    for tpr, max_fpr in zip(rates["tpr"], FPRS, strict=True):
        assert tpr == tpr_at_fpr(mask.ravel(), score.ravel(), max_fpr=max_fpr).tpr
    for name in ("auc", "tpr"):
        low, high = np.atleast_1d(rates[f"{name}_low"]), np.atleast_1d(rates[f"{name}_high"])
        assert np.all(low <= np.atleast_1d(rates[name])) and np.all(
            np.atleast_1d(rates[name]) <= high) and np.all((low >= 0) & (high <= 1))


def test_a_resample_equals_the_metrics_on_its_duplicated_pairs():
    score, mask = _scores(n=60, k=8, seed=3, decimals=1)
    pairs = _SortedPairs(score, mask)
    rng = np.random.default_rng(1)
    for _ in range(3):
        w, v = rng.multinomial(60, np.full(60, 1 / 60)), rng.multinomial(8, np.full(8, 1 / 8))
        weight = (w[:, None] * v[None, :])
        auc, *tprs = pairs.statistics(weight[pairs.record, pairs.model][None].astype(
            np.float32), FPRS[1:] + [0.05])
        repeats = weight.ravel()
        member, flat = np.repeat(mask.ravel(), repeats), np.repeat(score.ravel(), repeats)
        assert auc[0] == pytest.approx(attack_auc(member, flat), rel=1e-6)
        for tpr, max_fpr in zip(tprs, FPRS[1:] + [0.05], strict=True):
            assert tpr[0] == pytest.approx(tpr_at_fpr(member, flat, max_fpr=max_fpr).tpr)


def test_a_tpr_of_one_gets_an_interval_not_a_point():
    score, mask = _scores(n=100, k=8)
    score = np.where(mask, score + 100, score)  # every member pair above every other
    rates = pair_rates(score, mask, FPRS[1:])
    assert rates["tpr"] == [1.0] and rates["tpr_high"] == [1.0]
    # the resamples never vary: the Clopper-Pearson bound of 400 of 400 member pairs
    assert rates["tpr_low"][0] == pytest.approx(0.025 ** (1 / 400))


def test_intervals_are_reproducible_and_the_seed_matters():
    score, mask = _scores()
    assert pair_rates(score, mask, FPRS) == pair_rates(score, mask, FPRS)
    assert pair_rates(score, mask, FPRS)["auc_low"] != pair_rates(
        score, mask, FPRS, random_state=1)["auc_low"]


def test_per_record_tpr_by_hand():
    # 3 records, 10 models: OUT scores 0..4 (+ offsets), IN scores around them
    mask = np.array([[True] * 5 + [False] * 5] * 3)
    score = np.array([[5, 6, 1, 2, 3, 0, 1, 2, 3, 4],        # cut 3 (2nd OUT): IN 5, 6 -> 2/5
                      [9, 9, 9, 9, 0, 0, 1, 2, 3, 4],        # 4 of 5 above 3
                      [9, 9, 9, 9, 9, 4, 4, 2, 3, 1]], float)  # top OUT scores tie
    tpr, resolved, note = record_tpr_at_fpr(score, mask, 0.2)  # one OUT score allowed
    assert resolved == 2 and tpr == pytest.approx((2 / 5 + 4 / 5) / 2)
    assert note == ("per-record TPR at 20 % FPR over 2 of 3 records: 1 records have tied "
                    "top OUT scores")
    tpr, resolved, note = record_tpr_at_fpr(score, mask, 0.1)  # 5 OUT scores < 1/FPR
    assert np.isnan(tpr) and resolved == 0  # unresolved, never 0
    assert "unresolved: 3 records have fewer than 1/FPR = 10 OUT scores (5 at most)" in note
    tpr, resolved, note = record_tpr_at_fpr(score[:2], mask[:2], 0.4)  # two: cut at 2
    assert resolved == 2 and note == "" and tpr == pytest.approx((3 / 5 + 4 / 5) / 2)


def test_summary_names_the_interval_and_prints_no_empirical_epsilon():
    score, mask = _scores(n=200, k=8, seed=2)
    row = subset_row(mask, score)
    assert row["interval"] == INTERVAL_PROCEDURE and "empirical_epsilon" not in row
    assert "empirical_epsilon" not in SUMMARY_COLUMNS + AUDIT_COLUMNS
    assert np.isnan(row["record_tpr_at_0.1%fpr"])  # 4 OUT scores per record
    assert "per-record TPR at 0.1 % FPR unresolved" in row["note"]


# ----------------------------------------------------------------- coverage over reruns
N_RERUNS = 200


def _rerun(seed, n_records=150, n_models=16):
    """One audit of a simulated training algorithm: the audit's balanced masks; φ with a
    per-record level and vulnerability shared by every model, a per-model shift and
    memorisation, and noise; leave-one-out LiRA (fixed variance) on every pair. Each
    rerun draws records and models afresh, as a rerun of audit_defense with a new seed."""
    rng = np.random.default_rng([seed, 28])
    mask = balanced_masks(n_records, n_models, 0.5, int(rng.integers(2**31)))
    level = rng.normal(0, 1, (n_records, 1))
    vulnerability = np.abs(rng.normal(1.5, 1.5, (n_records, 1)))
    shift, memorisation = rng.normal(0, 0.5, (1, n_models)), rng.normal(0, 0.7, (1, n_models))
    phi = (level + shift + mask * (vulnerability + memorisation)
           + rng.normal(0, 1, (n_records, n_models)))
    return loo_lira_scores(phi, mask, fix_variance=True), mask


@pytest.fixture(scope="module")
def reruns():
    rows, pair_cp = [], []
    for seed in range(N_RERUNS):
        score, mask = _rerun(seed)
        rows.append(subset_row(mask, score))  # what DefenseAudit.summary_ computes
        pair_cp.append([tpr_at_fpr(mask.ravel(), score.ravel(), max_fpr=f)[1:3] for f in FPRS])
    return pd.DataFrame(rows), np.array(pair_cp)


@pytest.mark.parametrize("rate", ["auc", "tpr_at_0.1%fpr", "tpr_at_1%fpr"])
def test_intervals_cover_the_mean_over_reruns_at_their_stated_rate(reruns, rate):
    table, _ = reruns
    assert table[rate].notna().all()
    mean = table[rate].mean()
    covered = np.mean((table[f"{rate}_low"] <= mean) & (mean <= table[f"{rate}_high"]))
    slack = 3 * np.sqrt(0.95 * 0.05 / N_RERUNS)  # 3 binomial standard deviations
    assert covered >= 0.95 - slack, covered
    # not by being vacuous: half as wide as 2.5 standard deviations over reruns at most
    half_width = np.mean(table[f"{rate}_high"] - table[f"{rate}_low"]) / 2
    assert half_width <= 2.5 * 1.96 * table[rate].std(), (half_width, table[rate].std())


def test_clopper_pearson_over_pairs_under_covers_there(reruns):
    table, pair_cp = reruns
    for i, name in enumerate(MAX_FPRS):
        mean = table[f"tpr_at_{name}fpr"].mean()
        covered = np.mean((pair_cp[:, i, 0] <= mean) & (mean <= pair_cp[:, i, 1]))
        assert covered < 0.8, (name, covered)


# ----------------------------------------------------------------- an older audit folder
def test_an_audit_folder_saved_with_the_old_columns_reports_without_them(tmp_path):
    n, k = 120, 8
    rng = np.random.default_rng(5)
    mask = balanced_masks(n, k, 0.5, 5)
    canary = np.arange(n) < 20
    audit = DefenseAudit(rng.normal(size=(n, k)) + mask * (1 + 3 * canary[:, None]), mask,
                         canary, np.arange(n), np.full(k, 0.8), np.full(k, 0.9),
                         np.full(k, np.nan), {})
    folder = RunDirectory(tmp_path / "audit")
    audit.save(folder.path("vanilla", AUDIT_FILES["result"]))
    old_row = {"method": "vanilla", "n_models": k, "attack": "lira_fixed_variance",
               "test_accuracy": 0.8, "test_accuracy_std": 0.0,
               "canary_tpr_at_0.1%fpr": 0.5, "canary_tpr_at_0.1%fpr_low": 0.49,
               "canary_tpr_at_0.1%fpr_high": 0.51, "empirical_epsilon": 4.91,
               "epsilon": None, "note": ""}
    folder.write_json(AUDIT_FILES["table_json"], document={"rows": [old_row]})
    folder.write_json(AUDIT_FILES["plan"], document={})
    folder.mark_complete()
    [(_, table, audits)] = find_audits([tmp_path])
    assert list(table.columns) == AUDIT_COLUMNS and list(audits) == ["vanilla"]
    text = format_audit_table(table)
    assert "ε |" not in text.replace("DP ε |", "") and "4.91" not in text
    assert INTERVAL_PROCEDURE in text and "0.490" not in text
    assert table.loc[0, "canary_auc"] == audit.summary_row("canaries")["auc"]


def test_run_results_written_with_an_empirical_epsilon_still_read(tmp_path):
    from skmia._rundir import ATTACK, RESULT_COLUMNS, RESULTS_JSON

    row = {name: None for name, column in RESULT_COLUMNS.items() if column.required}
    row.update(dataset="location", method="vanilla", seed=1000, attack="loss",
               shadow_method="vanilla", auc=0.7, empirical_epsilon=1.2)
    folder = RunDirectory(tmp_path)
    folder.write_json(ATTACK, RESULTS_JSON, document={"rows": [row]})
    read = folder.read_results()
    assert read.loc[0, "auc"] == 0.7 and "empirical_epsilon" not in read
