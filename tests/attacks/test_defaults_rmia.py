"""``RMIAAttack()`` is the CLI's ``rmia``: the same parameters, the same scores."""

import numpy as np
import pytest
from sklearn.base import clone
from test_rmia import random_outputs, table

from skmia.attacks import CLI_RMIA, PLAIN_RMIA, RMIAAttack, calibrated_attacks


@pytest.fixture(scope="module")
def signals():
    rng = np.random.default_rng(3)
    member = np.arange(60) % 2 == 0
    audited = table(*random_outputs(60, rng, member=member))
    population = table(*random_outputs(80, rng))
    return audited, population


def test_the_default_is_the_clis_rmia(signals):
    audited, population = signals
    (label, (cli, calibration)), = calibrated_attacks(["rmia"]).items()
    assert (label, calibration) == ("RMIA online, T=2", "population")
    assert clone(cli).get_params() == RMIAAttack().get_params()
    assert {k: RMIAAttack().get_params()[k] for k in CLI_RMIA} == CLI_RMIA
    ours = RMIAAttack().fit(population).decision_function(audited)
    np.testing.assert_array_equal(ours, cli.fit(population).decision_function(audited))
    # and it is not the plain softmax rule, which scores these records otherwise
    plain = RMIAAttack(**PLAIN_RMIA).fit(population).decision_function(audited)
    assert not np.allclose(ours, plain)


def test_the_clis_plain_variants_keep_the_plain_rule():
    attacks = calibrated_attacks(["rmia_softmax", "rmia_offline"])
    for attack, _ in attacks.values():
        assert {k: attack.get_params()[k] for k in PLAIN_RMIA} == PLAIN_RMIA


def test_the_default_asks_for_the_logits_it_reads(signals):
    audited, _ = signals
    scores_only = audited.drop(columns=[c for c in audited if "logit" in c])
    with pytest.raises(ValueError, match=r"reference_logits=True"):
        RMIAAttack().fit(scores_only)
    # the plain rule reads the scores alone
    RMIAAttack(**PLAIN_RMIA).fit(scores_only)
