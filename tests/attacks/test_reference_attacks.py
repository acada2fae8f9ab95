"""LiRA, RMIA and Attack-R (skmia.attacks._reference_attack) and Attack-P
(skmia.attacks._population)
against the papers.

The scores are checked against transcriptions of the papers' algorithms (``reference_arrays.py``:
a loop over records in probabilities, not the library's vectorised log-space code), on
fixed arrays. The defaults, the null and leak tests with real
models and bad input are in the other ``test_reference_attacks_*.py`` files.
"""

import numpy as np
import pandas as pd
import pytest
from reference_arrays import (
    attack_r_flags,
    attack_r_paper,
    audited_arrays,
    lira_offline_code_form,
    lira_offline_paper,
    lira_online_fixed_paper,
    lira_online_paper,
    pooled_std,
    population_arrays,
    rmia_paper,
    table,
)

from skmia.attacks import (
    PLAIN_RMIA,
    LiRAAttack,
    PopulationAttack,
    ReferenceAttack,
    RMIAAttack,
)

audited = pytest.fixture(scope="module", name="audited")(audited_arrays)
population = pytest.fixture(scope="module", name="population")(population_arrays)


# ------------------------------------------------------------------- against the papers
def test_lira_online_equals_the_paper(audited):
    score, ref, inside, _ = audited
    decision = LiRAAttack().fit(table(score, ref, inside)).decision_function(
        table(score, ref, inside)
    )
    assert decision.dtype == np.float64
    np.testing.assert_allclose(decision, np.log(lira_online_paper(score, ref, inside)),
                               rtol=0, atol=1e-9)


def test_lira_offline_is_the_papers_one_sided_test(audited):
    score, ref, inside, _ = audited
    signals = table(score, ref, inside)
    decision = LiRAAttack(online=False).fit(signals).decision_function(signals)
    # decision = -log(1 - Λ): the same ordering, without saturating at Λ = 1
    np.testing.assert_allclose(1 - np.exp(-decision), lira_offline_paper(score, ref, inside),
                               rtol=0, atol=1e-9)


def test_lira_offline_logpdf_is_the_authors_code_form(audited):
    score, ref, inside, _ = audited
    signals = table(score, ref, inside)
    decision = LiRAAttack(online=False, offline_score="logpdf").fit(signals).decision_function(
        signals
    )
    np.testing.assert_allclose(decision, lira_offline_code_form(score, ref, inside),
                               rtol=0, atol=1e-9)


def test_lira_fixed_variance_is_one_pooled_variance_learned_at_fit(audited, population):
    score, ref, inside, _ = audited
    signals = table(score, ref, inside)
    attack = LiRAAttack(fix_variance=True).fit(signals)
    std_in, std_out = pooled_std(ref, inside), pooled_std(ref, ~inside)
    assert attack.std_in_ == pytest.approx(std_in, rel=1e-12)
    assert attack.std_out_ == pytest.approx(std_out, rel=1e-12)
    expected = np.log(lira_online_fixed_paper(score, ref, inside, std_in, std_out))
    np.testing.assert_allclose(attack.decision_function(signals), expected, rtol=0, atol=1e-9)
    # the variances are the fit's: scoring a few records gives the same scores
    np.testing.assert_allclose(attack.decision_function(signals.iloc[:5]), expected[:5],
                               rtol=0, atol=1e-12)

    offline = LiRAAttack(online=False, fix_variance=True).fit(signals)
    assert offline.std_in_ is None
    assert offline.std_out_ == pytest.approx(std_out, rel=1e-12)
    # fitted on other records (the population), scoring the audited ones with that variance
    pop = table(*population)
    offline_pop = LiRAAttack(online=False, fix_variance=True).fit(pop)
    pop_std = pooled_std(population[1], ~population[2])
    assert offline_pop.std_out_ == pytest.approx(pop_std, rel=1e-12)
    np.testing.assert_allclose(
        1 - np.exp(-offline_pop.decision_function(signals)),
        lira_offline_paper(score, ref, inside, std_out=pop_std), rtol=0, atol=1e-9,
    )
    # not the per-record one
    assert not np.allclose(offline_pop.decision_function(signals),
                           LiRAAttack(online=False).fit(signals).decision_function(signals))


def test_lira_hand_computed():
    # IN scores 2.8, 3.2: mu 3, sigma 0.2; OUT 0.4, 0.6: mu 0.5, sigma 0.1; s = 3
    # log N(3; 3, 0.2) - log N(3; 0.5, 0.1) = -log 0.2 + log 0.1 + 2.5^2 / (2 * 0.01)
    signals = table(np.array([3.0]), np.array([[2.8, 3.2, 0.4, 0.6]]),
                    np.array([[True, True, False, False]]))
    decision = LiRAAttack().fit(signals).decision_function(signals)
    assert decision[0] == pytest.approx(np.log(0.5) + 312.5, rel=1e-12)


@pytest.mark.parametrize("gamma", [1.0, 2.5, 0.5])
@pytest.mark.parametrize("a", [None, 0.0, 0.3, 1.0], ids=["online", "a=0", "a=0.3", "a=1"])
def test_rmia_equals_the_paper(audited, population, gamma, a):
    score, ref, inside, _ = audited
    attack = RMIAAttack(gamma=gamma, offline_a=a, temperature=1.0).fit(table(*population))
    decision = attack.decision_function(table(score, ref, inside))
    expected = rmia_paper((score, ref, inside), population, gamma, a)
    np.testing.assert_allclose(decision, expected, rtol=0, atol=1e-9)
    assert 0.05 < expected.mean() < 0.95  # the arrays do not make the comparison trivial
    assert attack.population_log_ratio_.shape == (80,)


def test_rmia_online_and_offline_differ_and_gamma_orders(audited, population):
    score, ref, inside, _ = audited
    signals = table(score, ref, inside)
    online = RMIAAttack(**PLAIN_RMIA).fit(table(*population)).decision_function(signals)
    offline = RMIAAttack(offline_a=0.3, **PLAIN_RMIA).fit(table(*population))
    offline = offline.decision_function(signals)
    assert not np.allclose(online, offline)
    strict = RMIAAttack(gamma=3.0, temperature=1.0).fit(table(*population))
    strict = strict.decision_function(signals)
    assert np.all(strict <= online) and np.any(strict < online)


def test_attack_r_equals_ye_et_al(audited):
    score, ref, inside, _ = audited
    signals = table(score, ref, inside)
    decision = ReferenceAttack().fit(signals).decision_function(signals)
    np.testing.assert_allclose(decision, attack_r_paper(score, ref, inside), rtol=0, atol=1e-9)
    # continuous: as many values as records (the old binned score had K / 2 + 1)
    assert len(np.unique(decision)) == len(decision)
    # the rule at every level is the authors' loss <= quantile
    for alpha in (0.01, 0.1, 0.3, 0.5):
        flagged = ReferenceAttack(fpr=alpha).fit(signals).predict(signals) == 1
        np.testing.assert_array_equal(flagged, attack_r_flags(score, ref, inside, alpha))


def test_attack_r_end_points_and_ties_by_hand():
    # OUT losses 1, 1, 3 (+ end points 0, 1000): v = 0, 1, 1, 3, 1000, N = 5
    phi = lambda loss: -loss - np.log(-np.expm1(-loss))  # noqa: E731  (-log sigmoid(phi))
    ref = phi(np.array([[1.0, 1.0, 3.0, 9.0]] * 4))
    inside = np.array([[False, False, False, True]] * 4)
    score = phi(np.array([0.5, 1.0, 2.0, 2000.0]))
    decision = ReferenceAttack().fit(table(score, ref, inside)).decision_function(
        table(score, ref, inside))
    # 0.5: (0 + 0.5 / 1) / 4; 1.0: the first 1 is reached at 1 / 4; 2.0: (2 + 1 / 2) / 4;
    # beyond the upper end point: never flagged
    np.testing.assert_allclose(decision, 1 - np.array([0.125, 0.25, 0.625, 1.0]),
                               rtol=0, atol=1e-12)


def test_population_attack_flags_the_fpr_share_of_the_population():
    rng = np.random.default_rng(2)
    pop = pd.DataFrame({"loss": rng.exponential(size=1000)})
    attack = PopulationAttack(fpr=0.05).fit(pop)
    assert attack.threshold_ == -np.sort(pop["loss"])[49]
    assert attack.predict(pop).sum() == 50  # exactly 5 % of the population
    audited = pd.DataFrame({"loss": [0.0, 0.01, 5.0]})
    np.testing.assert_array_equal(attack.decision_function(audited), [-0.0, -0.01, -5.0])
    assert attack.predict(audited).tolist() == [1, 1, 0]
    # fpr below 1 / n_population measures nothing
    with pytest.raises(ValueError, match=r"fpr=0.0005 is below 1/n_population = 1/1000"):
        PopulationAttack(fpr=0.0005).fit(pop)
