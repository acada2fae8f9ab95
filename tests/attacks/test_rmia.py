"""RMIA at the authors' strength (skmia.attacks._rmia): no self-comparison, the
soft-margin Taylor signal at a temperature and the trimmed mean of the reference
probabilities, each against a transcription of the paper's formulas written here."""

from math import factorial

import numpy as np
import pandas as pd
import pytest
from scipy.stats import trim_mean

from skmia.attacks import RMIAAttack
from skmia.attacks._query import logit_confidence


def table(logits, ref_logits, labels, inside):
    """Signals as compute_signals(..., reference=bank, reference_logits=True) lays them out."""
    n, k, c = ref_logits.shape
    columns = {f"logit_{j}": logits[:, j] for j in range(c)}
    columns["label"] = labels
    columns["score"] = logit_confidence(logits, labels)
    for m in range(k):
        columns[f"ref_score_{m}"] = logit_confidence(ref_logits[:, m], labels)
    for m in range(k):
        columns[f"ref_in_{m}"] = inside[:, m]
    for m in range(k):
        for j in range(c):
            columns[f"ref_logit_{m}_{j}"] = ref_logits[:, m, j]
    return pd.DataFrame(columns)


def random_outputs(n, rng, *, k=8, c=4, member=None):
    """Logits in [-1, 3] (the Taylor series stays positive at temperature 2)."""
    labels = rng.integers(0, c, n)
    inside = np.zeros((n, k), dtype=bool)
    for i in range(n):
        inside[i, rng.choice(k, k // 2, replace=False)] = True
    ref_logits = rng.uniform(-1, 2, (n, k, c))
    rows = np.arange(n)
    ref_logits[rows, :, labels] += np.where(inside, 1.0, 0.0) * rng.uniform(0, 1, (n, k))
    logits = rng.uniform(-1, 2, (n, c))
    member = np.zeros(n, dtype=bool) if member is None else member
    logits[rows, labels] += np.where(member, 1.0, 0.0)
    return logits, ref_logits, labels, inside


# ------------------------------------------------------------ the paper, transcribed
def taylor_soft_margin_paper(z, y, temperature, margin, n_terms):
    """Zarifzadeh et al.'s soft-margin Taylor softmax of class y, one model's logits z."""
    def taylor(u):
        return sum(u ** i / factorial(i) for i in range(n_terms))

    x = [v / temperature for v in z]
    true = taylor(x[y] - margin)
    return true / (true + sum(taylor(v) for j, v in enumerate(x) if j != y))


def rmia_tuned_paper(x, population, gamma, a, temperature, margin, n_terms, trim):
    """Score_MIA(x) = Pr_z(LR(x, z) >= gamma), Pr(x) a trimmed mean of the models' p."""
    def ratio(logits, ref_logits, label, in_row):
        p = taylor_soft_margin_paper(logits, label, temperature, margin, n_terms)
        refs = [taylor_soft_margin_paper(r, label, temperature, margin, n_terms)
                for r in ref_logits]
        if a is None:
            prior = trim_mean(refs, trim)
        else:
            out = [v for v, m in zip(refs, in_row, strict=True) if not m]
            prior = 0.5 * ((1 + a) * trim_mean(out, trim) + (1 - a))
        return p / prior

    ratio_z = [ratio(*row) for row in zip(*population, strict=True)]
    return np.array([np.mean([ratio(*row) / rz >= gamma for rz in ratio_z])
                     for row in zip(*x, strict=True)])


@pytest.mark.parametrize("a", [None, 0.3], ids=["online", "offline"])
@pytest.mark.parametrize(("temperature", "margin", "n_terms", "trim", "gamma"),
                         [(2.0, 0.6, 4, 0.25, 2.0), (1.5, 0.0, 6, 0.0, 1.0)])
def test_taylor_soft_margin_rmia_equals_the_paper(a, temperature, margin, n_terms, trim,
                                                  gamma):
    rng = np.random.default_rng(0)
    member = np.arange(40) % 2 == 0
    audited = random_outputs(40, rng, member=member)
    population = list(random_outputs(50, rng))
    population[3] = np.zeros_like(population[3])  # in no model
    attack = RMIAAttack(gamma=gamma, offline_a=a, signal="taylor_soft_margin",
                        temperature=temperature, margin=margin, taylor_terms=n_terms,
                        trim=trim).fit(table(*population))
    decision = attack.decision_function(table(*audited))
    expected = rmia_tuned_paper(audited, population, gamma, a, temperature, margin,
                                n_terms, trim)
    np.testing.assert_allclose(decision, expected, rtol=0, atol=1e-9)
    assert 0.1 < expected.mean() < 0.9  # the comparison is not trivial


def test_taylor_signal_equals_the_formula_and_differs_from_the_softmax():
    from skmia.attacks._rmia import taylor_soft_margin

    rng = np.random.default_rng(1)
    logits, labels = rng.uniform(-1, 3, (30, 5)), rng.integers(0, 5, 30)
    ours = taylor_soft_margin(logits / 2.0, labels, margin=0.6, n_terms=4)
    paper = [taylor_soft_margin_paper(z, y, 2.0, 0.6, 4)
             for z, y in zip(logits, labels, strict=True)]
    np.testing.assert_allclose(ours, paper, rtol=1e-12, atol=0)
    softmax = np.exp(logits)[np.arange(30), labels] / np.exp(logits).sum(axis=1)
    assert not np.allclose(ours, softmax, atol=1e-3)


def test_softmax_at_a_temperature_reads_the_logits():
    rng = np.random.default_rng(2)
    audited, population = random_outputs(20, rng), random_outputs(30, rng)
    population = (*population[:3], np.zeros_like(population[3]))
    attack = RMIAAttack(gamma=1.0, temperature=2.0).fit(table(*population))

    def log_ratio(logits, ref_logits, label, in_row):
        soft = lambda z: np.exp(z / 2)[label] / np.exp(z / 2).sum()  # noqa: E731
        return soft(logits) / np.mean([soft(r) for r in ref_logits])

    ratio_z = [log_ratio(*row) for row in zip(*population, strict=True)]
    expected = [np.mean([log_ratio(*row) / rz >= 1.0 for rz in ratio_z])
                for row in zip(*audited, strict=True)]
    np.testing.assert_allclose(attack.decision_function(table(*audited)), expected,
                               rtol=0, atol=1e-9)


# ------------------------------------------------------------ no self-comparison
def three_records():
    # reference scores 0: Pr(x) = 1/2 for every record; target scores 3, 1, -1
    return pd.DataFrame({
        "score": [3.0, 1.0, -1.0],
        "ref_score_0": [0.0, 0.0, 0.0], "ref_score_1": [0.0, 0.0, 0.0],
        "ref_in_0": [True, False, True], "ref_in_1": [False, True, False],
    })


def test_a_record_is_never_compared_with_itself_by_hand():
    signals, membership = three_records(), [1, 0, 0]
    # the population is the two non-members; ratios r = sigmoid(s) / (1/2) decrease
    # record 0 (member) dominates both: 2/2; record 1 is compared with record 2 only
    # (1/1, not 2/2); record 2 with record 1 only: 0/1 (not 1/2, itself at LR = 1 >= 1)
    attack = RMIAAttack(gamma=1.0, temperature=1.0).fit(signals, membership)
    np.testing.assert_array_equal(attack.decision_function(signals), [1.0, 1.0, 0.0])
    # a record outside the population is compared with all of it
    other = pd.DataFrame({"score": [-0.5], "ref_score_0": [0.0], "ref_score_1": [0.0],
                          "ref_in_0": [True], "ref_in_1": [False]})
    np.testing.assert_array_equal(attack.decision_function(other), [0.5])
    # unsupervised on the same three: each is compared with the two others
    population = three_records().assign(ref_in_0=False, ref_in_1=False)
    fitted = RMIAAttack(offline_a=1.0, gamma=1.0, temperature=1.0).fit(population)
    np.testing.assert_array_equal(fitted.decision_function(population), [1.0, 0.5, 0.0])


def test_tuned_signal_without_the_reference_logits_says_how_to_get_them():
    signals = three_records()
    with pytest.raises(ValueError, match=r"reference_logits=True"):
        RMIAAttack(signal="taylor_soft_margin").fit(signals)
    with pytest.raises(ValueError, match=r"'trim' parameter"):
        RMIAAttack(trim=0.5, gamma=1.0, temperature=1.0).fit(signals)
    with pytest.raises(ValueError, match=r"'signal' parameter"):
        RMIAAttack(signal="taylor").fit(signals)
