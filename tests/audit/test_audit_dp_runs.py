"""audit_dp_runs: a DP audit over many trainings, calibrated on disjoint reference runs."""

import numpy as np
import pytest
from sklearn.datasets import make_classification

from skmia.audit import audit_dp_runs
from skmia.audit._dp_runs import _calibrated
from skmia.defenses import DPSGDClassifier, VanillaClassifier

TINY = {"batch_size": 40, "max_epochs": 1, "accountant": "rdp", "milestones": (),
        "module__hidden_sizes": (32,)}


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(160, n_features=10, random_state=0)
    return X.astype(np.float32), y


class TooLittleNoiseDPSGD(DPSGDClassifier):
    """Deliberately broken: accounts for ``noise_multiplier_`` but adds a tenth of it."""

    def _start_private_training(self, n_rows, fast_norms=True):
        super()._start_private_training(n_rows, fast_norms)
        self._private.optimizer.noise_multiplier = self.noise_multiplier_ / 10


def test_calibration_uses_reference_runs_only():
    """The audited scores' ratio depends on the reference runs' coins and scores, and
    on the audited score itself; hand-computed for two canaries."""
    ref_scores = np.array([[3.0, 1.0, 5.0, -1.0], [0.0, 0.0, 2.0, 2.0]])
    ref_coins = np.array([[True, False, True, False], [False, True, False, True]])
    llr, separation = _calibrated(ref_scores, ref_coins, np.array([[4.0], [1.0]]))
    # own means IN (4, 1), OUT (0, 1); residuals ±1: variance 8 / (8 - 4) = 2. IN means
    # vary between canaries by 4.5 - 2/2 = 3.5 beyond noise: weight 3.5 / 4.5 toward
    # the common 2.5 -> (11/3, 4/3); OUT means (0, 1) vary less than noise: common 0.5
    mu_in, mu_out = np.array([11 / 3, 4 / 3]), 0.5
    gap = mu_in - mu_out
    expected = gap * (np.array([4.0, 1.0]) - (mu_in + mu_out) / 2) / 2
    np.testing.assert_allclose(llr[:, 0], expected)
    np.testing.assert_allclose(llr[:, 0], [437 / 144, 5 / 144])
    np.testing.assert_allclose(separation, gap / np.sqrt(2))


def test_canaries_alike_share_their_means():
    """Canaries with one distribution (gradient canaries) get the common means: the
    calibrated score is then increasing in the raw score, the same for every canary."""
    rng = np.random.default_rng(0)
    coins = rng.random((500, 2)) < 0.5
    ref = rng.normal(3.0 * coins, 1.0)
    llr, _ = _calibrated(ref, coins, np.array([[0.0], [1.0], [2.0]]).repeat(167, axis=0)[:500])
    order = np.argsort(np.array([0.0, 1.0, 2.0]).repeat(167)[:500], kind="stable")
    assert np.all(np.diff(llr[order, 0]) >= -1e-12)
    assert len(np.unique(np.round(llr[:, 0], 9))) == 3


def test_broken_dpsgd_caught_over_runs_with_every_method(data):
    """32 audited runs (32 steps each): the pair bounds exceed the claim of ε ≈ 1.6; the
    two-group bounds, on the one canary the reference runs find most exposed, see the
    leak too (above 0) though 32 runs cap them (clopper_pearson near 0.57, gdp 2.8)."""
    X, y = data
    broken = TooLittleNoiseDPSGD(noise_multiplier=4.0, **{**TINY, "max_epochs": 8})
    audit = audit_dp_runs(broken, X, y, canaries=100, n_runs=32, n_reference=2,
                          white_box=True, random_state=0)
    assert set(audit.bounds_.index) == {"one_run", "one_run_fdp", "clopper_pearson", "gdp"}
    assert audit.claimed_epsilon_ < 1.7
    assert audit.violated_
    assert audit.bounds_.loc["one_run_fdp", "epsilon"] > 2 * audit.claimed_epsilon_
    assert (audit.bounds_["confidence"] == 1 - 0.05 / 4).all()
    assert (audit.bounds_.loc[["clopper_pearson", "gdp"], "epsilon"] > 0).all()
    assert len(audit.scores_) == 100 * 32
    assert audit.bounds_.loc["clopper_pearson", "counts"]["n_members"] \
        + audit.bounds_.loc["clopper_pearson", "counts"]["n_nonmembers"] <= 32


def test_correct_dpsgd_holds_over_runs(data):
    X, y = data
    audit = audit_dp_runs(DPSGDClassifier(noise_multiplier=3.0, **TINY), X, y, canaries=100,
                          n_runs=8, n_reference=4, white_box=True, random_state=1)
    assert list(audit.bounds_.index) == ["one_run", "one_run_fdp"]  # 8 runs: no two-group
    assert not audit.violated_


def test_black_box_runs_catch_a_memorising_model():
    X, y = make_classification(300, n_features=10, random_state=1)
    model = VanillaClassifier(module__hidden_sizes=(64,), max_epochs=20, batch_size=64,
                              milestones=(), random_state=0)
    audit = audit_dp_runs(model, X.astype(np.float32), y, canaries=50, n_runs=4,
                          n_reference=4, claimed_epsilon=0.5, random_state=0)
    assert list(audit.bounds_.index) == ["one_run"]
    assert audit.violated_


def test_too_few_for_any_bound(data):
    X, y = data
    with pytest.raises(ValueError, match="too few for any bound"):
        audit_dp_runs(DPSGDClassifier(), X, y, canaries=2, n_runs=2)
