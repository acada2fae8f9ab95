"""DP-SGD's accounting against independent values: opacus' accountants, the analytic
Gaussian mechanism, a target epsilon, partial_fit."""

import dpsgd_fixtures
import numpy as np
import pytest
from dpsgd_fixtures import DELTA, NET, SMALL
from opacus.accountants import PRVAccountant, RDPAccountant
from scipy.optimize import brentq
from scipy.stats import norm

from skmia.defenses._dpsgd import DPSGDClassifier

# fixtures shared with the other files split from test_dpsgd.py, bound here by name
# (a nested conftest.py would break --doctest-modules)
data = dpsgd_fixtures.data


def accountant_epsilon(accountant_class, history, delta=DELTA):
    accountant = accountant_class()
    accountant.history = list(history)
    with np.errstate(all="ignore"):
        return accountant.get_epsilon(delta)


def test_epsilon_equals_opacus_prv_accountant(data):
    X, y = data
    clf = DPSGDClassifier(**NET, **{**SMALL, "accountant": "prv", "noise_multiplier": 1.0},
                          max_epochs=2).fit(X, y)
    assert (clf.noise_multiplier_, clf.sample_rate_, clf.n_steps_) == (1.0, 0.1, 20)
    assert clf.delta_ == DELTA
    assert clf.epsilon_ == pytest.approx(
        accountant_epsilon(PRVAccountant, [(1.0, 0.1, 20)]), rel=1e-9
    )
    assert clf.accountant_.history == [(1.0, 0.1, 20)]


def test_epsilon_after_each_epoch_equals_opacus_rdp_accountant(data):
    X, y = data
    clf = DPSGDClassifier(**NET, **SMALL, max_epochs=3).fit(X, y)
    expected = [accountant_epsilon(RDPAccountant, [(2.0, 0.1, 10 * e)]) for e in (1, 2, 3)]
    np.testing.assert_allclose(clf.history[:, "epsilon"], expected, rtol=1e-12)
    assert clf.epsilon_ == clf.history[-1, "epsilon"]


def test_full_batch_epsilon_matches_the_analytic_gaussian_mechanism(data):
    # q = 1: T Gaussian steps of noise sigma compose to one Gaussian mechanism with
    # mu = sqrt(T) / sigma, whose exact (eps, delta) curve is (Balle & Wang, 2018)
    # delta(eps) = Phi(-eps / mu + mu / 2) - e^eps Phi(-eps / mu - mu / 2)
    X, y = data
    sigma, steps = 2.0, 10
    clf = DPSGDClassifier(**NET, **{**SMALL, "accountant": "prv", "noise_multiplier": sigma,
                                    "batch_size": 1000}, max_epochs=steps).fit(X, y)
    assert (clf.sample_rate_, clf.n_steps_) == (1.0, steps)
    mu = np.sqrt(steps) / sigma

    def delta_of(eps):
        return norm.cdf(-eps / mu + mu / 2) - np.exp(eps) * norm.cdf(-eps / mu - mu / 2)

    exact = brentq(lambda eps: delta_of(eps) - DELTA, 0.0, 100.0)  # 7.511
    assert exact <= clf.epsilon_ <= exact + 0.02  # PRV's upper bound, eps_error 0.01
    rdp = accountant_epsilon(RDPAccountant, [(sigma, 1.0, steps)])
    assert clf.epsilon_ < rdp  # RDP is the looser bound


# the PRV search costs a few seconds per accountant call at q = 0.1: full batches there
@pytest.mark.parametrize("accountant, batch_size, q", [("rdp", 24, 0.1), ("prv", 1000, 1.0)])
def test_target_epsilon_is_reached_from_below(data, accountant, batch_size, q):
    X, y = data
    clf = DPSGDClassifier(**NET, **{**SMALL, "accountant": accountant, "batch_size": batch_size},
                          target_epsilon=3.0, max_epochs=2).fit(X, y)
    assert 2.95 <= clf.epsilon_ <= 3.0, clf.epsilon_
    assert clf.noise_multiplier_ != SMALL["noise_multiplier"]
    # the noise was chosen for these steps: the same accountant on the same steps agrees
    steps = clf.n_steps_
    assert steps == (20 if q < 1 else 2)
    accountant_class = PRVAccountant if accountant == "prv" else RDPAccountant
    expected = accountant_epsilon(accountant_class, [(clf.noise_multiplier_, q, steps)])
    assert clf.epsilon_ == pytest.approx(expected, rel=1e-9)


def test_partial_fit_continues_the_accountant_and_fit_restarts_it(data):
    X, y = data
    clf = DPSGDClassifier(**NET, **SMALL, max_epochs=2)
    clf.partial_fit(X, y)
    first = clf.epsilon_
    clf.partial_fit(X, y)
    assert clf.n_steps_ == 40 and len(clf.history) == 4
    assert clf.epsilon_ > first
    assert clf.epsilon_ == pytest.approx(
        accountant_epsilon(RDPAccountant, [(2.0, 0.1, 40)]), rel=1e-12
    )
    clf.fit(X, y)
    assert clf.n_steps_ == 20 and clf.epsilon_ == pytest.approx(first, rel=1e-12)
    clf.set_params(warm_start=True).fit(X, y)  # keeps the weights: keeps the accountant
    assert clf.n_steps_ == 40 and len(clf.history) == 4
