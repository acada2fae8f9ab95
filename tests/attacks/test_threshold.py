import subprocess
import sys

import numpy as np
import pandas as pd
import pytest
from sklearn.exceptions import NotFittedError
from sklearn.metrics import roc_auc_score

from skmia.attacks import (
    ConfidenceAttack,
    EntropyAttack,
    GradientNormAttack,
    LossAttack,
    ModifiedEntropyAttack,
)
from skmia.metrics import tpr_at_fpr

N_CLASSES = 6


# ------------------------------------------------------- the reference rule, written out
def reference_threshold(tr_values, te_values):
    """The reference code's O(n^2) scan, as in its ``_thre_setting``."""
    value_list = np.concatenate((tr_values, te_values))
    thre, max_acc = 0, 0
    for value in value_list:
        tr_ratio = np.sum(tr_values >= value) / (len(tr_values) + 0.0)
        te_ratio = np.sum(te_values < value) / (len(te_values) + 0.0)
        acc = 0.5 * (tr_ratio + te_ratio)
        if acc > max_acc:
            thre, max_acc = value, acc
    return thre


def reference_attack(s_tr, s_te, t_tr, t_te, per_class):
    """Reference ACC and AUC of scores (already signed) with labels, shadow -> target.

    Each argument is ``(scores, labels)``; returns ``(acc, auc, thresholds)``.
    """
    if per_class:
        t_tr_mem, t_te_non_mem, thresholds = 0, 0, {}
        for c in range(N_CLASSES):
            thre = reference_threshold(s_tr[0][s_tr[1] == c], s_te[0][s_te[1] == c])
            thresholds[c] = thre
            t_tr_mem += np.sum(t_tr[0][t_tr[1] == c] >= thre)
            t_te_non_mem += np.sum(t_te[0][t_te[1] == c] < thre)
    else:
        thre = reference_threshold(s_tr[0], s_te[0])
        thresholds = thre
        t_tr_mem = np.sum(t_tr[0] >= thre)
        t_te_non_mem = np.sum(t_te[0] < thre)
    acc = 0.5 * (t_tr_mem / (len(t_tr[0]) + 0.0) + t_te_non_mem / (len(t_te[0]) + 0.0))
    labels = np.concatenate((np.zeros(len(t_te[0])), np.ones(len(t_tr[0]))))
    auc = roc_auc_score(labels, np.concatenate((t_te[0], t_tr[0])))
    return acc, auc, thresholds


def reference_scores(signals, kind):
    """The reference code's signed scores, computed its way (float32 in, float32 out)."""
    proba = signals[[f"proba_{k}" for k in range(N_CLASSES)]].to_numpy()
    labels = signals["label"].to_numpy()
    rows = range(labels.size)
    log_value = lambda p: -np.log(np.maximum(p, 1e-30))  # noqa: E731
    if kind == "confidence":
        return np.array([proba[i, labels[i]] for i in rows])
    if kind == "entropy":
        return -np.sum(np.multiply(proba, log_value(proba)), axis=1)
    if kind == "modified entropy":
        log_probs, reverse = log_value(proba), 1 - proba
        log_reverse = log_value(reverse)
        modified_probs = np.copy(proba)
        modified_probs[rows, labels] = reverse[rows, labels]
        modified_log_probs = np.copy(log_reverse)
        modified_log_probs[rows, labels] = log_probs[rows, labels]
        return -np.sum(np.multiply(modified_probs, modified_log_probs), axis=1)
    if kind == "loss":
        return -signals["loss"].to_numpy()
    return -signals[kind].to_numpy()


def random_signals(n, rng):
    """float32 signals with many exact ties: a few distinct logit rows, few distinct norms.

    Members draw their logit rows mostly from the first prototypes, non-members mostly
    from the last, so that there is something to find.
    """
    labels = rng.integers(0, N_CLASSES, n)
    member = rng.random(n) < 0.5
    prototypes = np.random.default_rng(42).integers(-2, 3, size=(8, N_CLASSES))
    pick = np.where(member, rng.integers(0, 6, n), rng.integers(2, 8, n))
    logits = prototypes[pick].astype(np.float32)
    proba = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    table = {f"logit_{k}": logits[:, k] for k in range(N_CLASSES)}
    table.update({f"proba_{k}": proba[:, k] for k in range(N_CLASSES)})
    table["label"] = labels
    table["loss"] = -np.log(proba[np.arange(n), labels])
    table["grad_w_l2"] = rng.integers(0, 12, n).astype(np.float32) + np.where(member, 0, 2)
    return pd.DataFrame(table)


ATTACKS = {
    "confidence": ConfidenceAttack,
    "entropy": EntropyAttack,
    "modified entropy": ModifiedEntropyAttack,
    "loss": LossAttack,
    "grad_w_l2": lambda per_class: GradientNormAttack("grad_w_l2", per_class=per_class),
}


@pytest.mark.parametrize("per_class", [True, False], ids=["per-class", "global"])
@pytest.mark.parametrize("kind", list(ATTACKS))
@pytest.mark.parametrize("seed", [0, 1, 2])
def test_equals_the_reference_on_random_signals_with_ties(kind, per_class, seed):
    rng = np.random.default_rng(seed)
    s_tr, s_te, t_tr, t_te = (random_signals(n, rng) for n in (300, 260, 280, 310))
    scores = [reference_scores(s, kind) for s in (s_tr, s_te, t_tr, t_te)]
    assert len(np.unique(scores[0])) < len(scores[0]) / 3  # ties, plenty of them
    parts = [
        (sc, s["label"].to_numpy()) for sc, s in zip(scores, (s_tr, s_te, t_tr, t_te), strict=True)
    ]
    ref_acc, ref_auc, ref_thresholds = reference_attack(*parts, per_class=per_class)

    shadow = pd.concat([s_tr, s_te], ignore_index=True)  # members first, as the reference
    target = pd.concat([t_tr, t_te], ignore_index=True)
    y_shadow = np.r_[np.ones(len(s_tr)), np.zeros(len(s_te))].astype(int)
    y_target = np.r_[np.ones(len(t_tr)), np.zeros(len(t_te))].astype(int)
    attack = ATTACKS[kind](per_class=per_class).fit(shadow, y_shadow)

    if per_class:
        assert attack.class_thresholds_.tolist() == [ref_thresholds[c] for c in range(N_CLASSES)]
    else:
        assert attack.threshold_ == ref_thresholds
    np.testing.assert_array_equal(attack.decision_function(target), np.concatenate(scores[2:]))
    assert attack.score(target, y_target) == pytest.approx(ref_acc, abs=1e-6)
    attack.set_params(scoring="roc_auc")
    assert attack.score(target, y_target) == pytest.approx(ref_auc, abs=1e-6)


@pytest.mark.parametrize("per_class", [True, False], ids=["per-class", "global"])
def test_interleaved_rows_scan_members_first_each_in_row_order(per_class):
    rng = np.random.default_rng(3)
    signals = random_signals(600, rng)
    y = rng.integers(0, 2, 600)  # members and non-members interleaved
    score = reference_scores(signals, "loss")
    labels = signals["label"].to_numpy()
    attack = LossAttack(per_class=per_class).fit(signals, y)
    if per_class:
        expected = [
            reference_threshold(score[(y == 1) & (labels == c)], score[(y == 0) & (labels == c)])
            for c in range(N_CLASSES)
        ]
        assert attack.class_thresholds_.tolist() == expected
    else:
        assert attack.threshold_ == reference_threshold(score[y == 1], score[y == 0])


def test_many_sparse_labels_give_the_same_thresholds():
    # more labels than a 16-bit radix sort takes: the other sorting path
    rng = np.random.default_rng(4)
    signals = random_signals(800, rng)[["loss", "label"]]  # no outputs: labels unbounded
    y = rng.integers(0, 2, 800)
    small = LossAttack().fit(signals, y).class_thresholds_
    sparse = LossAttack().fit(signals.assign(label=signals["label"] * 7000), y)
    assert len(sparse.class_thresholds_) == 7000 * (N_CLASSES - 1) + 1
    assert sparse.class_thresholds_[::7000].tolist() == small.tolist()
    unseen = np.setdiff1d(np.arange(len(sparse.class_thresholds_)), np.arange(N_CLASSES) * 7000)
    assert np.all(sparse.class_thresholds_[unseen] == sparse.threshold_)


def test_first_strict_improvement_breaks_ties_in_scan_order():
    # members [1, 3], non-members [0, 2]: thresholds 1 and 3 both reach 0.75;
    # the scan meets 1 first (members first), so 1 it is
    signals = pd.DataFrame({"grad_w_l2": [-1.0, -3.0, 0.0, -2.0]})  # scores 1, 3, 0, 2
    attack = GradientNormAttack().fit(signals, [1, 1, 0, 0])
    assert attack.threshold_ == 1.0
    assert reference_threshold(np.array([1.0, 3.0]), np.array([0.0, 2.0])) == 1.0
    # listing the members the other way round changes nothing: both tie at 0.75, 3 is
    # now met first
    attack = GradientNormAttack().fit(signals.iloc[[1, 0, 2, 3]], [1, 1, 0, 0])
    assert attack.threshold_ == 3.0


def test_hand_computed_confidence():
    signals = pd.DataFrame(
        {
            "proba_0": [0.9, 0.2, 0.6, 0.5, 0.7, 0.1],
            "proba_1": [0.1, 0.8, 0.4, 0.5, 0.3, 0.9],
            "label": [0, 1, 0, 1, 0, 1],
        }
    )
    y = [1, 1, 0, 0, 0, 1]
    attack = ConfidenceAttack().fit(signals, y)
    # scores p_y: class 0 -> members [0.9], non-members [0.6, 0.7]: threshold 0.9;
    # class 1 -> members [0.8, 0.9], non-members [0.5]: threshold 0.8
    np.testing.assert_allclose(attack.decision_function(signals), [0.9, 0.8, 0.6, 0.5, 0.7, 0.9])
    np.testing.assert_allclose(attack.class_thresholds_, [0.9, 0.8])
    assert attack.predict(signals).tolist() == y
    assert attack.score(signals, y) == 1.0
    # globally: members [0.9, 0.8, 0.9], non-members [0.6, 0.5, 0.7] -> 0.8
    assert ConfidenceAttack(per_class=False).fit(signals, y).threshold_ == pytest.approx(0.8)


def test_hand_computed_loss_accuracy_and_auc():
    shadow = pd.DataFrame({"loss": [0.1, 0.3, 0.2, 0.5], "label": [0, 0, 0, 0]})
    attack = LossAttack(per_class=False).fit(shadow, [1, 0, 1, 0])
    assert attack.threshold_ == pytest.approx(-0.2)  # member iff loss <= 0.2
    target = pd.DataFrame({"loss": [0.15, 0.25, 0.05, 0.4, 0.2], "label": [0] * 5})
    y = [1, 1, 0, 0, 0]
    # members: 0.15 yes, 0.25 no -> TPR 1/2; non-members: 0.05 no (flagged), 0.4 yes,
    # 0.2 no (flagged: 0.2 <= 0.2) -> TNR 1/3
    assert attack.predict(target).tolist() == [1, 0, 1, 0, 1]
    assert attack.score(target, y) == pytest.approx(0.5 * (1 / 2 + 1 / 3))
    # AUC of -loss: pairs (member, non-member) won: 0.15 beats 0.4, 0.2; 0.25 beats 0.4
    attack.set_params(scoring="roc_auc")
    assert attack.score(target, y) == pytest.approx(3 / 6)


def test_hand_computed_entropy():
    p = np.array([[1.0, 0.0, 0.0], [0.5, 0.5, 0.0], [1 / 3, 1 / 3, 1 / 3]])
    signals = pd.DataFrame({f"proba_{k}": p[:, k] for k in range(3)}).assign(label=[0, 1, 2])
    score = EntropyAttack().fit(signals, [1, 0, 0]).decision_function(signals)
    np.testing.assert_allclose(score, [0.0, -np.log(2), -np.log(3)], atol=1e-12)


def test_modified_entropy_formula():
    rng = np.random.default_rng(0)
    logits = rng.normal(size=(50, 4)) * 3
    p = np.exp(logits) / np.exp(logits).sum(axis=1, keepdims=True)
    labels = rng.integers(0, 4, 50)
    signals = pd.DataFrame({f"proba_{k}": p[:, k] for k in range(4)}).assign(label=labels)
    score = ModifiedEntropyAttack().fit(signals, np.arange(50) % 2).decision_function(signals)
    for i in range(50):
        y = labels[i]
        mentr = -(1 - p[i, y]) * np.log(p[i, y]) - sum(
            p[i, c] * np.log(1 - p[i, c]) for c in range(4) if c != y
        )
        assert score[i] == pytest.approx(-mentr, rel=1e-12)
    # a one-hot right prediction: Mentr = 0 (the 1e-30 clip keeps 0 * log 0 finite);
    # a one-hot wrong one: -log(1e-30) per wrong-side term
    hard = pd.DataFrame({"proba_0": [1.0, 1.0], "proba_1": [0.0, 0.0], "label": [0, 1]})
    score = ModifiedEntropyAttack().fit(hard, [1, 0]).decision_function(hard)
    np.testing.assert_allclose(score, [0.0, 2 * np.log(1e-30)])


def test_a_class_without_non_members_uses_the_global_threshold():
    signals = pd.DataFrame({"loss": [0.1, 0.2, 0.9, 0.8, 0.05, 0.3], "label": [0, 0, 0, 0, 1, 1]})
    attack = LossAttack().fit(signals, [1, 1, 0, 0, 1, 1])  # class 1: members only
    assert attack.class_thresholds_[0] == pytest.approx(-0.2)
    assert attack.class_thresholds_[1] == attack.threshold_
    # a class never seen at all (label 4) also uses the global threshold
    target = pd.DataFrame({"loss": [0.25, 0.25], "label": [0, 4]})
    global_says = -0.25 >= attack.threshold_
    assert attack.predict(target).tolist() == [0, int(global_says)]


def test_predict_proba_is_monotone_in_the_decision_and_centred_on_the_threshold():
    rng = np.random.default_rng(4)
    signals = random_signals(400, rng)
    y = (signals["loss"] < signals["loss"].median()).astype(int).to_numpy()
    attack = LossAttack(per_class=False).fit(signals, y)
    decision = attack.decision_function(signals)
    proba = attack.predict_proba(signals)[:, 1]
    order = np.argsort(decision)
    assert np.all(np.diff(proba[order]) >= 0)
    # with one global threshold, predict agrees with predict_proba >= 0.5
    assert np.array_equal(attack.predict(signals), (decision >= attack.threshold_).astype(int))
    at_threshold = decision == attack.threshold_
    assert np.allclose(proba[at_threshold], 0.5)


def test_evaluate_reports_every_metric():
    rng = np.random.default_rng(5)
    signals = random_signals(2400, rng)
    y = np.r_[np.ones(1200, dtype=int), np.zeros(1200, dtype=int)]
    signals["loss"] = np.where(y == 1, 0.3, 1.0) * rng.exponential(size=2400)
    metrics = LossAttack().fit(signals, y).evaluate(signals, y)
    assert list(metrics) == ["accuracy", "auc", "tpr_at_0.1%fpr", "tpr_at_1%fpr"]
    assert 0.5 < metrics["accuracy"] <= 1
    assert 0.5 < metrics["auc"] <= 1
    assert 0 <= metrics["tpr_at_0.1%fpr"] <= metrics["tpr_at_1%fpr"] <= 1


def test_evaluate_warns_when_there_are_too_few_non_members():
    rng = np.random.default_rng(6)
    signals = random_signals(400, rng)
    signals["loss"] = rng.exponential(size=400)  # no ties: only the count limits the FPR
    y = np.arange(400) % 2
    attack = LossAttack().fit(signals, y)
    with pytest.warns(UserWarning, match=r"tpr_at_0.1%fpr is NaN: 200 non-members"):
        metrics = attack.evaluate(signals, y)
    assert np.isnan(metrics["tpr_at_0.1%fpr"])
    assert not np.isnan(metrics["tpr_at_1%fpr"])  # 200 non-members measure 1 % FPR


def test_evaluate_gives_nan_not_zero_for_a_rate_the_ties_leave_unresolved():
    # 1000 non-members, 30 of them tied at the top loss with 100 members: every threshold
    # flags 0 or >= 30 non-members, so no FPR in (0, 1 %] is reachable
    y = np.r_[np.ones(1000, dtype=int), np.zeros(1000, dtype=int)]
    loss = np.r_[np.full(100, 0.01), np.linspace(0.5, 3, 900),
                 np.full(30, 0.01), np.linspace(0.6, 4, 970)]
    signals = pd.DataFrame({"loss": loss})
    attack = LossAttack(per_class=False).fit(signals, y)
    metrics = attack.evaluate(signals, y)
    assert np.isnan(metrics["tpr_at_0.1%fpr"]) and np.isnan(metrics["tpr_at_1%fpr"])
    # at 5 % the 30 tied non-members (3 %) fit under the limit: resolved, a number
    rate = tpr_at_fpr(y, attack.decision_function(signals), max_fpr=0.05)
    assert rate.resolved and rate.tpr >= 0.1 and rate.min_fpr == 0.03


# ------------------------------------------------------------------------ bad input
@pytest.fixture(scope="module")
def shadow():
    rng = np.random.default_rng(7)
    signals = random_signals(200, rng)
    return signals, np.arange(200) % 2


def test_missing_signal_column(shadow):
    signals, y = shadow
    attack = LossAttack()
    with pytest.raises(ValueError, match="lacks the signal column 'loss' that LossAttack reads"):
        attack.fit(signals.drop(columns="loss"), y)
    with pytest.raises(NotFittedError):  # a failed fit leaves nothing behind
        attack.predict(signals)
    with pytest.raises(ValueError, match=r"'grad_x_l1' .*compute_signals \(white_box=True\)"):
        GradientNormAttack("grad_x_l1").fit(signals, y)
    with pytest.raises(ValueError, match="'label'"):
        ConfidenceAttack().fit(signals.drop(columns="label"), y)
    with pytest.raises(ValueError, match="'proba_3' is missing"):
        EntropyAttack().fit(signals.drop(columns="proba_3"), y)
    attack = LossAttack().fit(signals, y)
    with pytest.raises(ValueError, match="lacks the signal column 'label'"):
        attack.predict(signals.drop(columns="label"))


def test_not_a_dataframe(shadow):
    signals, y = shadow
    with pytest.raises(TypeError, match="reads a pandas DataFrame of signals .* got ndarray"):
        LossAttack().fit(signals.to_numpy(), y)


@pytest.mark.parametrize(
    ("y", "match"),
    [
        (lambda n: np.arange(n) % 2 + 1, r"membership labels 0 \(non-member\) and 1 \(member\)"),
        (lambda n: np.arange(n) % 3, "Only binary classification is supported"),
        (lambda n: np.ones(n), r"one class only, members \(1\)"),
        (lambda n: np.zeros(n), r"one class only, non-members \(0\)"),
        (lambda n: np.where(np.arange(n) == 5, np.nan, np.arange(n) % 2), "NaN"),
    ],
    ids=["1-2", "three-values", "members-only", "non-members-only", "nan"],
)
def test_bad_membership_labels(shadow, y, match):
    signals, _ = shadow
    with pytest.raises(ValueError, match=match):
        LossAttack().fit(signals, y(len(signals)))


def test_class_count_differs_between_fit_and_predict(shadow):
    signals, y = shadow
    attack = ConfidenceAttack().fit(signals, y)
    fewer = signals.drop(columns=["proba_5", "logit_5"])
    fewer = fewer.assign(label=fewer["label"] % 5)
    with pytest.raises(
        ValueError,
        match="model of 5 classes, but ConfidenceAttack was fitted on signals of 6 classes",
    ):
        attack.predict(fewer)
    # the loss attack needs no probability, but the check holds whenever they are there
    with pytest.raises(ValueError, match="model of 5 classes"):
        LossAttack().fit(signals, y).decision_function(fewer)


def test_nan_and_bad_labels_in_signals(shadow):
    signals, y = shadow
    with_nan = signals.copy()
    with_nan.loc[[3, 8], "loss"] = np.nan
    with pytest.raises(ValueError, match=r"'loss' contains NaN or infinite values \(2 of 200"):
        LossAttack().fit(with_nan, y)
    attack = LossAttack().fit(signals, y)
    with pytest.raises(ValueError, match="'loss' contains NaN"):
        attack.predict(with_nan)
    out_of_range = signals.assign(label=signals["label"] + 6)
    with pytest.raises(ValueError, match="class index 11, out of range for a model of 6"):
        ConfidenceAttack().fit(out_of_range, y)
    with pytest.raises(ValueError, match="must hold class indices"):
        LossAttack().fit(signals.assign(label=-1), y)
    with pytest.raises(ValueError, match="X has 200 rows but y has 199"):
        LossAttack().fit(signals, y[:-1])


def test_bad_parameters(shadow):
    signals, y = shadow
    with pytest.raises(ValueError, match="'scoring' parameter of LossAttack must be a str among"):
        LossAttack(scoring="f1").fit(signals, y)
    with pytest.raises(TypeError, match="'per_class' parameter of LossAttack must be an instance"):
        LossAttack(per_class="yes").fit(signals, y)
    with pytest.raises(ValueError, match="'signal' parameter of GradientNormAttack must be a str"):
        GradientNormAttack("grad_z").fit(signals, y)


def test_threshold_attacks_and_metrics_work_without_torch():
    code = """
import sys
import pandas as pd
from skmia.attacks import LossAttack
from skmia.metrics import attack_auc, tpr_at_fpr
signals = pd.DataFrame({"loss": [0.1, 0.2, 0.9, 0.8], "label": [0, 1, 0, 1]})
attack = LossAttack().fit(signals, [1, 1, 0, 0])
assert attack.score(signals, [1, 1, 0, 0]) == 1.0
assert attack_auc([1, 1, 0, 0], attack.decision_function(signals)) == 1.0
assert tpr_at_fpr([1, 1, 0, 0], attack.decision_function(signals), max_fpr=0.5).tpr == 1.0
assert "torch" not in sys.modules, "torch was imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True)
