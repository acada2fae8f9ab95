"""audit_dp: one-run audits of a DP claim (white box with gradient canaries, black box
with input canaries): they catch a broken DP-SGD, rarely flag a correct one, and refuse
bad input before training."""

import warnings

import numpy as np
import pytest
from opacus.accountants.utils import get_noise_multiplier
from scipy import stats
from sklearn.datasets import make_classification

from skmia.audit import DPAudit, UnreachableClaimWarning, audit_dp, last_iterate_epsilon
from skmia.defenses import DPSGDClassifier, VanillaClassifier, WeakPrivacyWarning
from skmia.defenses._dp_canaries import GradientCanaries, inserted_canaries

# 160 rows, batch 40: sample rate 0.25, 4 steps per epoch; 418 parameters (10-32-2)
N_ROWS, BATCH, EPOCHS = 160, 40, 2
TINY = {"batch_size": BATCH, "max_epochs": EPOCHS, "accountant": "rdp",
        "module__hidden_sizes": (32,), "milestones": ()}
CANARIES = 400


@pytest.fixture(scope="module")
def data():
    X, y = make_classification(N_ROWS, n_features=10, random_state=0)
    return X.astype(np.float32), y


def noise_for(epsilon):
    """The noise multiplier that spends ``epsilon`` in this file's tiny training."""
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # opacus' note on its grid of RDP orders
        return float(get_noise_multiplier(target_epsilon=epsilon, target_delta=1e-5,
                                          sample_rate=BATCH / N_ROWS,
                                          steps=EPOCHS * N_ROWS // BATCH, accountant="rdp"))


class TooLittleNoiseDPSGD(DPSGDClassifier):
    """Deliberately broken: accounts for ``noise_multiplier_`` but adds a tenth of it."""

    def _start_private_training(self, n_rows, fast_norms=True):
        super()._start_private_training(n_rows, fast_norms)
        self._private.optimizer.noise_multiplier = self.noise_multiplier_ / 10


class NeverTrained(DPSGDClassifier):
    """Fails if trained: bad input must be refused before any training."""

    def fit(self, X, y, **fit_params):
        raise AssertionError("trained despite bad input")


# ------------------------------------------------------------------ gradient canaries


def test_gradient_canaries_without_noise_score_their_draws(data):
    """σ = 0: the released sum minus the real records' is exactly C per draw of an IN
    canary and nothing for an OUT one, whose draws are at the training's sample rate."""
    X, y = data
    member = np.random.default_rng(0).random(CANARIES) < 0.5
    canaries = GradientCanaries(member, np.random.default_rng(1))
    net = DPSGDClassifier(noise_multiplier=0.0, max_grad_norm=2.5, random_state=0, **TINY)
    with pytest.warns(WeakPrivacyWarning, match="epsilon = inf"), \
            inserted_canaries(net, canaries):
        net.fit(X, y)
    scores = canaries.scores()
    assert canaries.n_steps_ == net.n_steps_ == 8
    np.testing.assert_allclose(scores["step"], canaries.draws_, atol=1e-5)
    assert np.all(canaries.draws_[~member] == 0)
    mean_draws = canaries.draws_[member].mean()
    sd = np.sqrt(8 * 0.25 * 0.75 / member.sum())
    assert abs(mean_draws - 8 * 0.25) < 4 * sd
    assert len(np.unique(canaries.coordinates_)) == CANARIES  # one coordinate each
    assert not hasattr(net, "_gradient_canaries")


def test_gradient_canary_noise_has_the_accounted_scale(data):
    """An OUT canary's score is the noise alone: N(0, σ² T), the scale the accountant
    assumes (a chi-square test of its variance at 0.1 %, both sides)."""
    X, y = data
    member = np.zeros(CANARIES, dtype=bool)
    member[:2] = True
    canaries = GradientCanaries(member, np.random.default_rng(2))
    net = DPSGDClassifier(noise_multiplier=1.5, random_state=0, **TINY)
    with inserted_canaries(net, canaries):
        net.fit(X, y)
    out = canaries.scores()["step"][~member]
    statistic = np.sum(out**2) / (1.5**2 * net.n_steps_)
    low, high = stats.chi2.ppf([0.0005, 0.9995], len(out))
    assert low < statistic < high


# ------------------------------------------------------------------ white-box audits


def test_broken_dpsgd_is_caught(data):
    X, y = data
    broken = TooLittleNoiseDPSGD(target_epsilon=1.0, random_state=0, **TINY)
    audit = audit_dp(broken, X, y, canaries=CANARIES, white_box=True, random_state=0)
    assert isinstance(audit, DPAudit)
    assert audit.claimed_epsilon_ == pytest.approx(1.0, abs=0.05)  # its accountant's claim
    assert audit.settings_["claim_source"] == "accountant"
    assert audit.violated_
    assert audit.bounds_["epsilon"].max() > 1.5
    assert set(audit.bounds_.index) == {"one_run", "one_run_fdp"}
    assert (audit.bounds_["confidence"] == 0.975).all()  # Bonferroni over two methods
    assert audit.scores_["member"].sum() == audit.bounds_["counts"].iloc[0]["n_members"]


# ε = 8 needs 5,000 canaries for a perfect attack to exceed it (max_epsilon 8.9), hence
# a wider network (6,658 parameters with 512 hidden units)
@pytest.mark.parametrize("epsilon, canaries, hidden", [(1.0, 400, 32), (4.0, 400, 32),
                                                       (8.0, 5000, 512)])
def test_correct_dpsgd_is_rarely_flagged(data, epsilon, canaries, hidden):
    """Ten independent audits of a correct DP-SGD: a 95 % verdict may wrongly say
    "violated" in each with probability <= 5 %, so 3 or more of 10 (p = 1.2 %) fails;
    and the audit has power (bounds above 0 on average at ε = 4 and 8). Each audit
    could show the claim violated (a perfect attack's bound exceeds it: no warning)."""
    X, y = data
    sigma = noise_for(epsilon)
    flagged, bounds = 0, []
    for seed in range(10):
        net = DPSGDClassifier(noise_multiplier=sigma, **{**TINY, "module__hidden_sizes":
                                                         (hidden,)})
        audit = audit_dp(net, X, y, canaries=canaries, white_box=True, random_state=seed)
        assert audit.claimed_epsilon_ == pytest.approx(epsilon, rel=0.05)
        flagged += audit.violated_
        bounds.append(audit.epsilon_)
    assert flagged <= 2
    if epsilon > 1:
        assert np.mean(bounds) > 0.1


def test_white_box_scores_are_recorded(data):
    X, y = data
    net = DPSGDClassifier(noise_multiplier=2.0, random_state=0, **TINY)
    audit = audit_dp(net, X, y, canaries=CANARIES, white_box=True, white_box_score="weights",
                     methods=["one_run"], claimed_epsilon=3.0, random_state=0)
    assert list(audit.scores_.columns) == ["member", "score", "step", "update", "weights",
                                           "draws"]
    np.testing.assert_array_equal(audit.scores_["score"], audit.scores_["weights"])
    assert audit.settings_["claim_source"] == "given" and audit.claimed_epsilon_ == 3.0
    assert list(audit.bounds_.index) == ["one_run"]
    assert "claim not violated" in audit.summary()


# ------------------------------------------------------------------ black-box audits


def test_black_box_audit_catches_a_memorising_model():
    """A plain MLP memorises mislabeled canaries: a claim of ε = 0.5 is violated."""
    X, y = make_classification(600, n_features=10, random_state=1)
    model = VanillaClassifier(module__hidden_sizes=(64,), max_epochs=40, batch_size=64,
                              milestones=(), random_state=0)
    audit = audit_dp(model, X.astype(np.float32), y, canaries=200, claimed_epsilon=0.5,
                     random_state=0)
    assert list(audit.bounds_.index) == ["one_run"]  # not a Gaussian mechanism
    assert audit.violated_ and audit.epsilon_ > 0.5
    member = audit.scores_["member"].to_numpy()
    trained = audit.estimator_.train_indices_
    assert len(trained) == 600 - 200 + member.sum()  # OUT canaries never trained on


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize("options, error, match", [
    ({"canaries": 6}, ValueError, "too few for any one-run bound"),
    ({"canaries": 1}, ValueError, "too few for any one-run bound"),
    ({"delta": 0.0}, ValueError, "'delta' parameter of audit_dp"),
    ({"delta": 1.0}, ValueError, "'delta' parameter of audit_dp"),
    ({"confidence": 0.5}, ValueError, "'confidence' parameter of audit_dp"),
    ({"confidence": 1.0}, ValueError, "'confidence' parameter of audit_dp"),
    ({"canaries": N_ROWS}, ValueError, "need a larger pool: X has 160 records"),
    ({"canary_kind": "duplicate_mislabel"}, ValueError, "'canary_kind' parameter"),
    ({"methods": ["gdp"]}, ValueError, "methods must be distinct names"),
])
def test_bad_input_is_refused_before_training(data, options, error, match):
    X, y = data
    with pytest.raises(error, match=match):
        audit_dp(NeverTrained(), X, y, **{"canaries": 100, **options})


def test_white_box_needs_dpsgd(data):
    X, y = data
    with pytest.raises(TypeError, match="must be a DPSGDClassifier, got VanillaClassifier"):
        audit_dp(VanillaClassifier(), X, y, canaries=100, white_box=True,
                 claimed_epsilon=1.0)


def test_claim_needed_without_accountant(data):
    X, y = data
    with pytest.raises(TypeError, match="has no privacy accountant: give the ε"):
        audit_dp(VanillaClassifier(), X, y, canaries=100)


def test_more_gradient_canaries_than_parameters(data):
    X, y = data
    net = DPSGDClassifier(noise_multiplier=1.0, **TINY)
    with pytest.raises(ValueError, match="500 gradient canaries needs as many trainable "
                                         "parameters .* the network has 418"):
        audit_dp(net, X, y, canaries=500, white_box=True, random_state=0)


def test_unreachable_claim_warns(data):
    X, y = data
    with pytest.warns(UnreachableClaimWarning, match="cannot find the claim violated"), \
            pytest.raises(AssertionError, match="trained despite bad input"):
        audit_dp(NeverTrained(), X, y, canaries=20, claimed_epsilon=50.0)


# ------------------------------------------------------------------ heuristic ε


def test_last_iterate_epsilon_of_the_gaussian_mechanism():
    """q = 1, one step: N(1, σ²) vs N(0, σ²), μ = 1/σ-GDP, whose exact δ(ε) is
    Φ(−ε/μ + μ/2) − e^ε Φ(−ε/μ − μ/2) (Balle & Wang 2018)."""
    for sigma in (0.5, 1.0, 2.0):
        mu = 1 / sigma
        epsilon = last_iterate_epsilon(sigma, 1.0, 1, delta=1e-5)
        exact = (stats.norm.cdf(-epsilon / mu + mu / 2)
                 - np.exp(epsilon) * stats.norm.cdf(-epsilon / mu - mu / 2))
        assert exact == pytest.approx(1e-5, rel=1e-3)
    assert last_iterate_epsilon(1.0, 1.0, 1) == pytest.approx(4.38, abs=0.005)


def test_last_iterate_epsilon_is_below_the_accountant():
    from skmia.defenses._dp_accounting import privacy_epsilon

    for sigma, q, steps in ((1.0, 0.05, 100), (0.7, 0.1, 40)):
        heuristic = last_iterate_epsilon(sigma, q, steps)
        assert 0 < heuristic < privacy_epsilon([(sigma, q, steps)], 1e-5)
    assert last_iterate_epsilon(1.0, 0.05, 200) > last_iterate_epsilon(1.0, 0.05, 100)
    with pytest.raises(ValueError, match="sample_rate must be in"):
        last_iterate_epsilon(1.0, 0.0, 10)
