"""The reference-model attacks and Attack-P without and with membership labels: their
default thresholds, the accuracy-maximising threshold, and scikit-learn's scorers.
"""

import numpy as np
import pandas as pd
import pytest
from reference_arrays import (
    attack_r_flags,
    audited_arrays,
    fixed_arrays,
    lira_online_paper,
    population_arrays,
    sigmoid,
    table,
)
from scipy.stats import norm
from sklearn.model_selection import cross_validate

from skmia.attacks import (
    PLAIN_RMIA,
    LiRAAttack,
    PopulationAttack,
    ReferenceAttack,
    RMIAAttack,
)
from skmia.metrics import attack_accuracy, attack_auc
from skmia.model_selection import attack_accuracy_scorer, attack_auc_scorer

audited = pytest.fixture(scope="module", name="audited")(audited_arrays)
population = pytest.fixture(scope="module", name="population")(population_arrays)


# ------------------------------------------------------------ predict with and without labels
def test_defaults_without_labels(audited, population):
    score, ref, inside, _ = audited
    signals = table(score, ref, inside)
    lira = LiRAAttack().fit(signals)
    assert lira.threshold_ == 0.0 and not lira.supervised_
    np.testing.assert_array_equal(lira.predict(signals),
                                  lira_online_paper(score, ref, inside) >= 1)

    mu_out = np.array([r[~m].mean() for r, m in zip(ref, inside, strict=True)])
    sd_out = np.array([r[~m].std() for r, m in zip(ref, inside, strict=True)])
    cdf = LiRAAttack(online=False).fit(signals)
    assert cdf.threshold_ == pytest.approx(np.log(2))
    np.testing.assert_array_equal(cdf.predict(signals), score >= mu_out)
    logpdf = LiRAAttack(online=False, offline_score="logpdf").fit(signals)
    assert np.isnan(logpdf.threshold_)
    two_sided = np.abs(score - mu_out) >= norm.ppf(0.75) * sd_out
    assert 0 < two_sided.sum() < len(score)
    np.testing.assert_array_equal(logpdf.predict(signals), two_sided)
    proba = logpdf.predict_proba(signals)[:, 1]
    assert np.isfinite(proba).all()

    rmia = RMIAAttack(**PLAIN_RMIA).fit(table(*population))
    assert rmia.threshold_ == 0.5
    np.testing.assert_array_equal(rmia.predict(signals), rmia.decision_function(signals) >= 0.5)

    ref_attack = ReferenceAttack(fpr=0.25).fit(signals)
    assert ref_attack.threshold_ == 0.75
    np.testing.assert_array_equal(ref_attack.predict(signals),
                                  attack_r_flags(score, ref, inside, 0.25))


def _best_accuracy(decision, y):
    return max(attack_accuracy(y, (decision >= t).astype(int)) for t in np.unique(decision))


@pytest.mark.parametrize(
    "attack",
    [LiRAAttack(), LiRAAttack(online=False), LiRAAttack(online=False, offline_score="logpdf"),
     RMIAAttack(**PLAIN_RMIA), ReferenceAttack()],
    ids=repr,
)
def test_with_labels_the_threshold_maximises_the_accuracy(attack, audited):
    score, ref, inside, y = audited
    signals = table(score, ref, inside)
    fitted = attack.fit(signals, y)
    assert fitted.supervised_
    decision = fitted.decision_function(signals)
    accuracy = attack_accuracy(y, fitted.predict(signals))
    assert accuracy == pytest.approx(_best_accuracy(decision, y))
    assert accuracy > 0.6  # members' target scores are drawn like IN scores
    np.testing.assert_array_equal(fitted.predict(signals), decision >= fitted.threshold_)


def test_rmia_with_labels_takes_the_non_members_as_population(audited):
    score, ref, inside, y = audited
    signals = table(score, ref, inside)
    supervised = RMIAAttack(**PLAIN_RMIA).fit(signals, y)
    assert supervised.population_log_ratio_.shape == ((y == 0).sum(),)
    non_members = RMIAAttack(**PLAIN_RMIA).fit(signals[y == 0])  # the same population, unsupervised
    np.testing.assert_array_equal(supervised.population_log_ratio_,
                                  non_members.population_log_ratio_)
    np.testing.assert_array_equal(supervised.decision_function(signals),
                                  non_members.decision_function(signals))


def test_population_attack_with_labels_maximises_accuracy():
    rng = np.random.default_rng(3)
    y = np.r_[np.ones(200, dtype=int), np.zeros(200, dtype=int)]
    signals = pd.DataFrame({"loss": rng.exponential(np.where(y == 1, 0.3, 1.0))})
    attack = PopulationAttack().fit(signals, y)
    decision = -signals["loss"].to_numpy()
    assert attack_accuracy(y, attack.predict(signals)) == pytest.approx(_best_accuracy(decision, y))


@pytest.mark.parametrize(
    "attack", [LiRAAttack(), RMIAAttack(offline_a=0.5, **PLAIN_RMIA), ReferenceAttack(),
               PopulationAttack()],
    ids=repr,
)
def test_cross_validate_and_scorers(attack):
    rng = np.random.default_rng(4)
    member = np.arange(600) % 2 == 0
    score, ref, inside = fixed_arrays(600, rng, member=member)
    loss = -np.log(sigmoid(score))
    signals = table(score, ref, inside, loss=loss)
    y = member.astype(int)
    result = cross_validate(attack, signals, y, cv=3,
                            scoring={"auc": attack_auc_scorer, "acc": attack_accuracy_scorer})
    assert np.all(result["test_auc"] > 0.6)
    assert np.all(result["test_acc"] > 0.55)
    fitted = attack.fit(signals, y)
    fitted.set_params(scoring="roc_auc")
    assert fitted.score(signals, y) == attack_auc(y, fitted.decision_function(signals))
