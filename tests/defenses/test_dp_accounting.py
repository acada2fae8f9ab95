"""The DP-SGD accounting (skmia/defenses/_dp_rdp.py, _dp_prv.py, _dp_accounting.py) is
opacus', bit for bit, however much of opacus' work it skips."""

import functools
import warnings

import numpy as np
import pytest
from opacus.accountants import PRVAccountant
from opacus.accountants.analysis import rdp as rdp_analysis
from opacus.accountants.utils import get_noise_multiplier

from skmia.defenses import _dp_accounting, _dp_prv, _dp_rdp

ORDERS = _dp_rdp.ORDERS
# (σ, q): the audit's DP-SGD (q = 128 / 2003), dpsgd_hu's, edges of the grid and the RDP
# sum's special cases (q = 1; σ so small that the numpy grid is skipped)
STEPS = [(1.1102294921875, 128 / 2003), (0.3, 0.25), (20.0, 0.064), (0.5, 1e-3),
         (5.0, 0.9), (0.8, 0.5), (0.1, 0.01), (2.0, 1e-4), (0.002, 0.064), (1.0, 1.0),
         (100.0, 0.5)]
_rng = np.random.default_rng(0)
STEPS += [(float(np.exp(_rng.uniform(np.log(0.05), np.log(50)))),
           float(np.exp(_rng.uniform(np.log(1e-4), np.log(0.99))))) for _ in range(8)]


@pytest.fixture(autouse=True)
def _cold_memos():
    for memo in (_dp_accounting._privacy_epsilon, _dp_rdp.one_step_rdp,
                 _dp_prv._prv_epsilon, _dp_prv.noise_for_epsilon):
        memo.cache_clear()
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # opacus' note on its largest RDP order
        yield


@functools.cache
def _opacus_rdp(sigma, q):
    return rdp_analysis.compute_rdp(q=q, noise_multiplier=sigma, steps=1, orders=ORDERS)


def _opacus_rdp_epsilon(parts, delta):
    rdp = sum([_opacus_rdp(sigma, q) * steps for sigma, q, steps in parts])
    return float(rdp_analysis.get_privacy_spent(orders=ORDERS, rdp=rdp, delta=delta)[0])


def test_numpy_rdp_estimate_is_within_rounding_of_opacus_at_every_order():
    for sigma, q in STEPS:
        if q == 1.0 or sigma < 0.01:
            continue  # opacus' values throughout (the next test)
        estimate = _dp_rdp._estimate(q, sigma)
        exact = _opacus_rdp(sigma, q)
        np.testing.assert_allclose(estimate, exact, rtol=1e-10, atol=1e-10)


def test_rdp_epsilon_is_opacus_bit_for_bit():
    """Over 19 steps x 5 deltas x 5 step counts, and compositions of two steps."""
    computed = []
    for sigma, q in STEPS:
        rdp = _dp_rdp.one_step_rdp(sigma, q)
        for delta in (1e-5, 1e-8 / 4, 1e-8 / (8 * 480), 1e-3, 0.1):
            for steps in (1, 16, 160, 480, 10_000):
                assert _dp_rdp.rdp_epsilon([(rdp, steps)], delta) == _opacus_rdp_epsilon(
                    [(sigma, q, steps)], delta), (sigma, q, delta, steps)
        other = _dp_rdp.one_step_rdp(sigma * 1.3, q / 2)
        assert _dp_rdp.rdp_epsilon([(rdp, 10), (other, 30)], 1e-5) == _opacus_rdp_epsilon(
            [(sigma, q, 10), (sigma * 1.3, q / 2, 30)], 1e-5)
        computed.append(len(rdp._exact))
    # opacus' scalar RDP ran at few of the 151 orders (that is the point), except in
    # the special cases computed throughout
    assert np.median(computed) <= 25 and max(computed) == len(ORDERS)


def test_a_wrong_estimate_falls_back_to_opacus_at_every_order(monkeypatch):
    real = _dp_rdp._estimate
    monkeypatch.setattr(_dp_rdp, "_estimate", lambda q, sigma: real(q, sigma) + 1e-7)
    sigma, q = STEPS[0]
    rdp = _dp_rdp.one_step_rdp(sigma, q)
    assert _dp_rdp.rdp_epsilon([(rdp, 480)], 1e-5) == _opacus_rdp_epsilon([(sigma, q, 480)],
                                                                          1e-5)
    assert len(rdp._exact) == len(ORDERS)  # it noticed, and computed every order


@pytest.mark.parametrize("history", [
    [(1.1102294921875, 128 / 2003, 16)], [(1.1102294921875, 128 / 2003, 480)],
    [(2.0, 0.01, 100), (1.0, 0.02, 30)], [(0.5, 0.25, 120)], [(3.7, 0.003, 1500)],
    [(0.9, 0.1, 7)],
])
def test_prv_epsilon_is_opacus_bit_for_bit(history):
    prv = PRVAccountant()
    prv.history = list(history)
    assert _dp_prv.prv_epsilon(history, 1e-5) == prv.get_epsilon(1e-5)
    assert _dp_accounting.privacy_epsilon(history, 1e-5) == prv.get_epsilon(1e-5)


@pytest.mark.parametrize("accountant,target,delta,q,steps", [
    ("prv", 8.0, 1e-5, 128 / 2003, 48),  # the audit's DP-SGD at ε = 8, 3 epochs
    ("prv", 2.0, 1e-5, 0.05, 10),
    ("prv", 1.0, 1e-6, 0.01, 100),
    ("rdp", 8.0, 1e-5, 128 / 2003, 480),
    ("rdp", 2.0, 1e-5, 0.05, 10),
    ("rdp", 0.5, 1e-3, 0.2, 50),
    ("rdp", 30.0, 1e-5, 0.25, 120),
])
def test_noise_search_is_opacus_bit_for_bit(accountant, target, delta, q, steps):
    expected = get_noise_multiplier(target_epsilon=target, target_delta=delta,
                                    sample_rate=q, steps=steps, accountant=accountant)
    assert _dp_prv.noise_for_epsilon(target, delta, q, steps, accountant) == expected


def test_bounds_of_the_noise_search_hold_the_prv_epsilon():
    """The interval of each noise multiplier (RDP bound, then the coarse PRV) holds
    opacus' PRV ε, over the σ of a search and around them."""
    q, steps, delta = 128 / 2003, 160, 1e-5
    for sigma in (0.7, 0.9, 1.0, 1.1, 1.3, 2.0):
        bracket = _dp_prv._Bracket(sigma, q, steps, delta)
        low, high = bracket.low, bracket.high
        bracket._narrow()
        assert low <= bracket.low and bracket.high <= high
        assert bracket.high - bracket.low <= 0.35  # narrowed to ~3 coarse errors
        assert bracket.low <= bracket.value() <= bracket.high


def test_a_failed_bound_redoes_the_search_with_every_epsilon(monkeypatch):
    """Bounds that lie (every ε said below the target) end at a noise whose computed ε
    misses the search's condition, and the search is redone: opacus' noise still."""
    def lying(self, *args, **kwargs):
        real_init(self, *args, **kwargs)
        self.low, self.high, self._coarse = 0.0, 0.0, None

    real_init = _dp_prv._Bracket.__init__
    monkeypatch.setattr(_dp_prv._Bracket, "__init__", lying)
    expected = get_noise_multiplier(target_epsilon=4.0, target_delta=1e-5, sample_rate=0.1,
                                    steps=3, accountant="prv")
    assert _dp_prv.noise_for_epsilon(4.0, 1e-5, 0.1, 3, "prv") == expected


def test_noise_search_refuses_an_unreachable_budget():
    with pytest.raises(ValueError, match="privacy budget is too low"):
        _dp_prv.noise_for_epsilon(1e-6, 1e-5, 0.5, 10_000, "rdp")
