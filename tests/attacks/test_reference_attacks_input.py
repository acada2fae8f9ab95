"""The reference-model attacks on extreme scores and bad input, and without torch.
"""

import subprocess
import sys

import numpy as np
import pytest
from reference_arrays import N_REF, audited_arrays, population_arrays, table

from skmia.attacks import (
    PLAIN_RMIA,
    LiRAAttack,
    PopulationAttack,
    ReferenceAttack,
    RMIAAttack,
)

audited = pytest.fixture(scope="module", name="audited")(audited_arrays)
population = pytest.fixture(scope="module", name="population")(population_arrays)


# ------------------------------------------------------------------------ numerics
def test_extreme_scores_stay_finite_and_ordered():
    ref = np.array([[30.0, 31.0, -2.0, -1.0, 0.0, 1.0]] * 4)
    inside = np.array([[True, True, False, False, False, False]] * 4)
    score = np.array([800.0, 400.0, -800.0, 0.5])
    signals = table(score, ref, inside)
    for attack in (LiRAAttack(), LiRAAttack(online=False),
                   LiRAAttack(online=False, offline_score="logpdf"), ReferenceAttack()):
        decision = attack.fit(signals).decision_function(signals)
        assert np.isfinite(decision).all(), attack
    cdf = LiRAAttack(online=False).fit(signals).decision_function(signals)
    assert cdf[0] > cdf[1] > cdf[3] > cdf[2]  # no saturation far in the member tail
    rmia = RMIAAttack(offline_a=1.0, **PLAIN_RMIA).fit(signals).decision_function(signals)
    assert np.isfinite(rmia).all() and rmia[0] >= rmia[1] >= rmia[3] >= rmia[2]
    # equal reference scores: the zero spread is floored, the scores stay finite
    flat = table(np.array([1.0, 2.0]), np.ones((2, 4)), np.array([[True, True, False, False]] * 2))
    assert np.isfinite(LiRAAttack().fit(flat).decision_function(flat)).all()


# ------------------------------------------------------------------------ bad input
def test_missing_reference_columns(audited):
    signals = table(*audited[:3])
    with pytest.raises(ValueError, match="'ref_score_3' is missing"):
        LiRAAttack().fit(signals.drop(columns="ref_score_3"))
    with pytest.raises(ValueError, match=r"7 'ref_score_\*' columns but 8 'ref_in_\*' columns: "
                                         "'ref_score_7' is missing"):
        RMIAAttack(**PLAIN_RMIA).fit(signals.drop(columns="ref_score_7"))
    with pytest.raises(ValueError, match="'ref_in_7' is missing"):
        ReferenceAttack().fit(signals.drop(columns="ref_in_7"))
    no_ref = signals[["score"]]
    with pytest.raises(ValueError, match=r"no 'ref_score_\*' or 'ref_in_\*' columns.*"
                                         r"reference=bank"):
        LiRAAttack().fit(no_ref)
    with pytest.raises(ValueError, match="lacks the signal column 'score'"):
        LiRAAttack().fit(signals.drop(columns="score"))
    attack = LiRAAttack().fit(signals)
    with pytest.raises(ValueError, match="'ref_score_2' is missing"):
        attack.decision_function(signals.drop(columns="ref_score_2"))
    with pytest.raises(TypeError, match="reads a pandas DataFrame of signals"):
        LiRAAttack().fit(signals.to_numpy())


def test_too_few_in_or_out_models(audited):
    score, ref, inside, _ = audited
    inside = inside.copy()
    inside[[3, 7, 11]] = False
    inside[[3, 7, 11], 0] = True  # 1 IN model for three records
    signals = table(score, ref, inside)
    with pytest.raises(ValueError, match=r"3 of 60 records have fewer than 2 IN reference "
                                         r"models \(the fewest: 1 of 8\)"):
        LiRAAttack().fit(signals)
    LiRAAttack(online=False).fit(signals)  # offline needs OUT models only
    LiRAAttack(fix_variance=True).fit(signals)  # one each is enough with a shared variance
    fitted = LiRAAttack().fit(table(*audited[:3]))
    with pytest.raises(ValueError, match="3 of 60 records have fewer than 2 IN"):
        fitted.predict(signals)  # checked when scoring too

    all_in = inside.copy()
    all_in[[0, 1]] = True
    all_in[[0, 1], 0] = False  # 1 OUT model for two records
    with pytest.raises(ValueError, match="2 of 60 records have fewer than 2 OUT reference"):
        LiRAAttack(online=False).fit(table(score, ref, all_in))
    never_in = audited[2].copy()
    never_in[5] = False
    with pytest.raises(ValueError, match="1 of 60 records have fewer than 1 IN .*use offline_a"):
        RMIAAttack(**PLAIN_RMIA).fit(table(*audited[:2], audited[2])).decision_function(
            table(score, ref, never_in)
        )
    with pytest.raises(ValueError, match="fewer than 1 OUT reference models"):
        ReferenceAttack().fit(table(score, ref, np.ones_like(inside)))


def test_population_from_another_bank(audited, population):
    audited_signals = table(*audited[:3])
    attack = RMIAAttack(**PLAIN_RMIA).fit(table(*population))
    fewer = table(audited[0], audited[1][:, :6], audited[2][:, :6])
    with pytest.raises(ValueError, match="scores of 6 reference models, but RMIAAttack was "
                                         "fitted on signals of 8"):
        attack.decision_function(fewer)
    pop = table(*population)
    pop.attrs["reference_fingerprint"] = "bank-A"
    fitted = RMIAAttack(**PLAIN_RMIA).fit(pop)
    assert fitted.reference_fingerprint_ == "bank-A"
    other = audited_signals.copy()
    other.attrs["reference_fingerprint"] = "bank-B"
    with pytest.raises(ValueError, match="bank of reference models 'bank-B', but RMIAAttack "
                                         "was fitted on signals of the bank 'bank-A'"):
        fitted.decision_function(other)
    same = audited_signals.copy()
    same.attrs["reference_fingerprint"] = "bank-A"
    np.testing.assert_array_equal(fitted.decision_function(same),
                                  fitted.decision_function(audited_signals))  # unknown: allowed


@pytest.mark.parametrize(
    "attack, error, message",
    [
        (RMIAAttack(gamma=0), ValueError,
         r"'gamma' parameter of RMIAAttack must be a float in the range \(0.0, inf\). Got 0 "),
        (RMIAAttack(gamma=-1.5), ValueError, r"'gamma' parameter .* Got -1.5 instead"),
        (RMIAAttack(gamma=float("nan")), ValueError, r"'gamma' parameter .* Got nan instead"),
        (RMIAAttack(gamma="1"), TypeError, r"'gamma' parameter .* Got '1' instead"),
        (RMIAAttack(offline_a=1.5), ValueError,
         r"'offline_a' parameter of RMIAAttack must be a float in the range \[0.0, 1.0\] or "
         r"None. Got 1.5"),
        (RMIAAttack(offline_a=True), TypeError, r"'offline_a' parameter .* Got True instead"),
        (LiRAAttack(offline_score="two-sided"), ValueError,
         r"'offline_score' parameter of LiRAAttack must be a str among"),
        (LiRAAttack(online="yes"), TypeError,
         r"'online' parameter of LiRAAttack must be an instance of 'bool'"),
        (LiRAAttack(fix_variance=1), TypeError, r"'fix_variance' parameter .* Got 1 instead"),
        (ReferenceAttack(fpr=0), ValueError,
         r"'fpr' parameter of ReferenceAttack must be a float in the range \(0.0, 1.0\). Got 0 "),
        (ReferenceAttack(fpr=1.0), ValueError, r"'fpr' parameter .* Got 1.0 instead"),
        (PopulationAttack(fpr=-0.1), ValueError,
         r"'fpr' parameter of PopulationAttack must be a float in the range \(0.0, 1.0\)"),
        (LiRAAttack(scoring="f1"), ValueError, r"'scoring' parameter of LiRAAttack must be a str"),
    ],
    ids=repr,
)
def test_bad_parameters(attack, error, message, audited):
    signals = table(*audited[:3], loss=np.ones(60))
    with pytest.raises(error, match=message):
        attack.fit(signals)


def test_bad_membership_flags(audited):
    signals = table(*audited[:3])
    with pytest.raises(TypeError, match=r"'ref_in_2' must hold booleans .* reference model 2\)"
                                        r", but it holds int64 values other than 0 and 1"):
        LiRAAttack().fit(signals.assign(ref_in_2=2))
    with pytest.raises(TypeError, match=r"'ref_in_0' must hold booleans.*dtype is (object|str)"):
        LiRAAttack().fit(signals.assign(ref_in_0="yes"))
    as_ints = signals.astype({f"ref_in_{k}": np.int64 for k in range(N_REF)})  # e.g. from CSV
    np.testing.assert_array_equal(LiRAAttack().fit(as_ints).decision_function(as_ints),
                                  LiRAAttack().fit(signals).decision_function(signals))
    with pytest.raises(ValueError, match=r"'ref_score_1' contains NaN"):
        LiRAAttack().fit(signals.assign(ref_score_1=np.nan))
    with pytest.raises(ValueError, match="X has 60 rows but y has 59"):
        LiRAAttack().fit(signals, np.arange(59) % 2)


def test_without_torch():
    code = """
import sys
import numpy as np, pandas as pd
from skmia.attacks import (LabelOnlyAttack, LiRAAttack, PopulationAttack, ReferenceAttack,
                           RMIAAttack, label_only_signals)
from skmia.metrics import empirical_epsilon
t = pd.DataFrame({"score": [2.0, 0.0], "loss": [0.1, 1.0], "label_only_0": [1, 0],
                  "ref_score_0": [0.0, 0.0], "ref_score_1": [1.0, 0.5], "ref_score_2": [0.2, 0.1],
                  "ref_in_0": [True, True], "ref_in_1": [False, False], "ref_in_2": [False, False]})
for attack in (LiRAAttack(online=False), RMIAAttack(gamma=1.0, temperature=1.0),
               ReferenceAttack(), PopulationAttack(fpr=0.5),
               LabelOnlyAttack()):
    attack.fit(t).predict(t)
label_only_signals(lambda X: X[:, 0] > 0, np.ones((3, 2)), [True] * 3, n_queries=2)
empirical_epsilon([1, 1, 0, 0], [2, 1, 0, -1])
assert "torch" not in sys.modules, "torch was imported"
"""
    subprocess.run([sys.executable, "-c", code], check=True)
