"""DP-SGD in the vectorised bank (skmia.model_selection._vectorized_dp): each model equals
DPSGDClassifier trained alone, its clipping and noise are real, the bank does not depend
on threads or on Dask, and what cannot be batched is refused with its reason."""

import warnings

import joblib
import numpy as np
import pytest
import torch
from bank_fixtures import _alone, _weights
from sklearn.base import clone
from sklearn.datasets import make_classification

from skmia._parallel import parallel_map
from skmia.defenses import DPSGDClassifier, WeakPrivacyWarning
from skmia.model_selection import ReferenceModels, _vectorized
from skmia.model_selection._memory import training_bytes
from skmia.model_selection._vectorized_dp import poisson_width
from skmia.nn import MLP
from skmia.nn._batched import StackedMLP
from skmia.nn._batched_dp import clipped_gradients

#: a recipe whose clipping bites (C below most records' norms) and whose noise is
#: meaningful (σ = 1), with momentum, weight decay and a decay of the rate at epoch 2;
#: the RDP accountant, whose per-step cost is cached (PRV takes ~1 s an epoch)
DP = {"noise_multiplier": 1.0, "max_grad_norm": 0.5, "max_epochs": 3, "batch_size": 24,
      "lr": 0.2, "milestones": (2,), "optimizer__momentum": 0.9,
      "optimizer__weight_decay": 1e-3, "module__hidden_sizes": (12,), "accountant": "rdp"}
#: float32 rounding, measured: the bank sums each model's clipped gradients as
#: Aᵀ diag(c) Δ after one backward pass to the layers' outputs, opacus as a second
#: backward pass of Σ c_i loss_i; the noise (σ·C/B ≈ 0.02 a step) is drawn identically
#: and cancels. Largest weight difference after 3 epochs, 16 models of 4 banks of this
#: recipe (random_state 0-3, weights up to 0.59): 6.0e-8, one float32 ulp at 0.5; the
#: bound is the vanilla bank's (tests/model_selection/test_vectorized_bank.py), for other BLAS
#: blockings.
ROUNDING = {"rtol": 0, "atol": 2e-6}


@pytest.fixture(scope="module")
def pool():
    X, y = make_classification(160, n_features=6, n_informative=4, n_classes=3,
                               random_state=1)
    return X.astype(np.float32), y


@pytest.fixture(scope="module")
def bank(pool):
    X, y = pool
    return ReferenceModels(DPSGDClassifier(**DP), n_estimators=4, random_state=3,
                           vectorize=True).fit(X, y)


# ------------------------------------------------------------------ equivalence
@pytest.mark.parametrize("extra", [
    {},
    # each model's noise chosen for a target ε (each its own: its own sample rate), and
    # dropout masks drawn between its rows and its noise
    {"target_epsilon": 4.0, "module__dropout": 0.2, "milestones": ()},
], ids=["noise", "target-epsilon-dropout"])
def test_each_model_equals_dpsgd_trained_alone(extra, pool, bank):
    X, y = pool
    if extra:
        # 2 models: each model's noise search takes a few seconds
        bank = ReferenceModels(DPSGDClassifier(**{**DP, **extra}), n_estimators=2,
                               random_state=5, vectorize=True).fit(X, y)
    assert len(set(bank.in_mask_.sum(axis=0).tolist())) > 1  # sample rates differ
    for k, model in enumerate(bank.estimators_):
        alone = _alone(bank, k, X, y)
        torch.testing.assert_close(_weights(model), _weights(alone), **ROUNDING)
        # the same Poisson batches, the same accounting
        for mine, theirs in zip(model.history, alone.history, strict=True):
            assert set(mine) == set(theirs)
            assert [b["train_batch_size"] for b in mine["batches"]] == [
                b["train_batch_size"] for b in theirs["batches"]]
            assert mine["epsilon"] == theirs["epsilon"]
            assert mine["train_loss"] == pytest.approx(theirs["train_loss"], abs=1e-5)
        assert model.epsilon_ == alone.epsilon_ and np.isfinite(model.epsilon_)
        assert model.accountant_.history == alone.accountant_.history
        for name in ("n_steps_", "sample_rate_", "noise_multiplier_", "grad_sample_mode_"):
            assert getattr(model, name) == getattr(alone, name), name
        mine, theirs = model.optimizer_.state_dict(), alone.optimizer_.state_dict()
        assert mine["param_groups"] == theirs["param_groups"]
        for i, state in theirs["state"].items():
            torch.testing.assert_close(mine["state"][i]["momentum_buffer"],
                                       state["momentum_buffer"], **ROUNDING)
        assert model._training_finished()
        assert getattr(model, "_private", None) is None


def test_record_norms_are_opacus_per_sample_norms():
    from opacus import GradSampleModule

    gen = torch.Generator().manual_seed(0)
    modules = []
    for seed in (1, 2):
        torch.manual_seed(seed)
        modules.append(MLP(7, 4, hidden_sizes=(9, 5)))
    net = StackedMLP(modules)
    x = torch.randn(2, 6, 7, generator=gen)
    targets = torch.randint(0, 4, (2, 6), generator=gen)
    mask = torch.ones(2, 6)
    mask[1, 4:] = 0  # model 1's batch has 4 rows, padded to 6

    def losses_of(logits):
        ce = torch.nn.functional.cross_entropy(logits.reshape(-1, 4), targets.reshape(-1),
                                               reduction="none")
        return ce.reshape(2, 6) * mask

    _, _, norms = clipped_gradients(net, x, losses_of, max_grad_norm=1.0)
    for k, module in enumerate(modules):
        rows = int(mask[k].sum())
        sampled = GradSampleModule(module, loss_reduction="sum")
        loss = torch.nn.functional.cross_entropy(sampled(x[k, :rows]), targets[k, :rows],
                                                 reduction="sum")
        with warnings.catch_warnings():  # torch notes opacus' hook on the first layer
            warnings.simplefilter("ignore", UserWarning)
            loss.backward()
        per_sample = torch.stack([p.grad_sample.reshape(rows, -1).norm(dim=1)
                                  for p in module.parameters()]).norm(dim=0)
        sampled._close()
        torch.testing.assert_close(norms[k, :rows], per_sample, rtol=0, atol=1e-5)
        assert torch.all(norms[k, rows:] == 0)  # padding moves nothing


# ------------------------------------------------------------------ clipping and noise
def _one_step(X, y, masks, **params):
    """Two models (one linear layer unless told), one private step over every row
    (q = 1)."""
    recipe = DPSGDClassifier(**{"module__hidden_sizes": (), "max_epochs": 1,
                                "batch_size": -1, "lr": 1.0, "accountant": "rdp",
                                "optimizer__weight_decay": 0.0, **params})
    return _vectorized.fit_batched(recipe, X, y, masks, seeds=[11, 12])


def test_clipping_bounds_each_records_share_by_hand():
    rng = np.random.default_rng(0)
    X = (10 * rng.standard_normal((10, 3))).astype(np.float32)  # norms far above C
    y = np.array([0, 1, 0, 1, 1, 0, 1, 0, 0, 1])
    masks = np.zeros((10, 2), dtype=bool)
    masks[:5, 0] = masks[5:, 1] = True  # 2 models, 5 records each
    C = 1e-3
    with pytest.warns(WeakPrivacyWarning, match="of the 2 models of the bank"):
        models = _one_step(X, y, masks, noise_multiplier=0.0, max_grad_norm=C)
    for k, model in enumerate(models):
        torch.manual_seed(0)  # the initial weights, by hand: the clone's own init seed
        before = clone(model).set_params(max_epochs=0)
        before._setup(X[masks[:, k]], y[masks[:, k]])
        before.initialize()
        W = before.module_.classifier.weight.detach().double().numpy()
        b = before.module_.classifier.bias.detach().double().numpy()
        shares = []
        for x_i, y_i in zip(X[masks[:, k]].astype(np.float64), y[masks[:, k]], strict=True):
            p = np.exp(W @ x_i + b - (W @ x_i + b).max())
            delta = p / p.sum() - np.eye(2)[y_i]  # d loss / d logits
            g = np.concatenate([np.outer(delta, x_i).ravel(), delta])
            norm = np.linalg.norm(g)
            assert norm > 100 * C  # the clipping bites
            shares.append(g * min(1.0, C / (norm + 1e-6)))
        shares = np.array(shares)
        assert np.all(np.linalg.norm(shares, axis=1) <= C * (1 + 1e-6))
        moved = _weights(model).double().numpy() - np.concatenate([W.ravel(), b])
        # lr 1, the clipped sum over the expected batch size q n = 5
        # to float32 resolution: the weights (~0.5) are float32, moved a difference of them
        np.testing.assert_allclose(moved, -shares.sum(axis=0) / 5, rtol=1e-4, atol=1e-7)
        assert np.linalg.norm(moved) <= C * (1 + 1e-6)


def test_noise_has_the_spread_sigma_c_over_b(pool):
    X, y = pool
    masks = np.zeros((len(y), 2), dtype=bool)
    masks[::2, 0] = masks[1::2, 1] = True
    sigma, C = 50.0, 0.5
    with pytest.warns(WeakPrivacyWarning):
        quiet = _one_step(X, y, masks, noise_multiplier=0.0, max_grad_norm=C,
                          module__hidden_sizes=(32,))
    noisy = _one_step(X, y, masks, noise_multiplier=sigma, max_grad_norm=C,
                      module__hidden_sizes=(32,))
    differences = []
    for k, (a, b) in enumerate(zip(noisy, quiet, strict=True)):
        diff = (_weights(a) - _weights(b)).double().numpy()  # -lr · noise / (q n)
        expected = sigma * C / masks[:, k].sum()  # q = 1: B = n
        n = len(diff)
        # the sample std of n normal draws: relative standard error 1 / sqrt(2n)
        assert abs(diff.std() / expected - 1) < 4 / np.sqrt(2 * n)
        assert abs(diff.mean()) < 4 * expected / np.sqrt(n)
        differences.append(diff / expected)
    # each model its own stream: the two models' noises are uncorrelated
    assert abs(np.corrcoef(*differences)[0, 1]) < 4 / np.sqrt(len(differences[0]))


# ------------------------------------------------------------------ threads, Dask
def test_threads_and_dask_give_the_same_bank_bit_for_bit(pool, monkeypatch):
    X, y = pool
    monkeypatch.setattr(_vectorized, "CPU_GROUP", 2)  # 4 models: 2 groups
    masks = np.random.default_rng(0).random((len(y), 4)) < 0.5
    recipe, seeds = DPSGDClassifier(**{**DP, "max_epochs": 2}), [1, 2, 3, 4]
    one = _vectorized.fit_batched(recipe, X, y, masks, seeds, n_threads=1)
    two = _vectorized.fit_batched(recipe, X, y, masks, seeds, n_threads=2)
    distributed = pytest.importorskip("dask.distributed")
    # one worker process (each start imports torch and skmia: seconds), which trains
    # both halves; workers in this process would race for torch's global generator,
    # which seeds each clone's initial weights
    with distributed.LocalCluster(n_workers=1, threads_per_worker=1, processes=True,
                                  dashboard_address=None) as cluster:
        with distributed.Client(cluster), joblib.parallel_config(backend="dask"):
            # as the audit ships its batched rounds: halves of the bank on the workers
            tasks = [(recipe, X, y, masks[:, half], seeds[half])
                     for half in (slice(0, 2), slice(2, 4))]
            on_dask = [m for part in parallel_map(_vectorized.fit_batched, tasks,
                                                  n_jobs=2) for m in part]
    for a, b, c in zip(one, two, on_dask, strict=True):
        assert torch.equal(_weights(a), _weights(b))
        assert torch.equal(_weights(a), _weights(c))
        assert a.epsilon_ == b.epsilon_ == c.epsilon_


# ------------------------------------------------------------------ the bank's rules
def test_the_weak_privacy_warning_comes_once_per_bank(pool):
    X, y = pool
    weak = DPSGDClassifier(**{**DP, "noise_multiplier": 0.05, "max_epochs": 1})
    with warnings.catch_warnings(record=True) as caught:
        warnings.simplefilter("always")
        bank = ReferenceModels(weak, n_estimators=4, random_state=0, vectorize=True)
        bank.fit(X, y)
    weak_ones = [w for w in caught if issubclass(w.category, WeakPrivacyWarning)]
    assert len(weak_ones) == 1
    worst = max(m.epsilon_ for m in bank.estimators_)
    assert f"4 of the 4 models of the bank, the worst: DP-SGD reached epsilon = {worst:.3g}" \
        in str(weak_ones[0].message)


def test_secure_noise_draws_each_models_seed_afresh(pool):
    X, y = pool
    recipe = DPSGDClassifier(**{**DP, "max_epochs": 1, "secure_noise": True})
    banks = [ReferenceModels(recipe, n_estimators=2, random_state=0, vectorize=True).fit(X, y)
             for _ in range(2)]
    seeds = [m.training_seed_ for b in banks for m in b.estimators_]
    assert len(set(seeds)) == 4  # not derived from random_state
    assert not torch.equal(_weights(banks[0].estimators_[0]), _weights(banks[1].estimators_[0]))
    # the initial weights still come from random_state
    model = banks[0].estimators_[0]
    assert model.init_seed_ == banks[1].estimators_[0].init_seed_


def test_the_chunk_rule_counts_the_private_step(pool, monkeypatch):
    X, y = pool
    seen = []

    def recording(n_models, per_model_bytes, device):
        seen.append(per_model_bytes)
        return n_models

    monkeypatch.setattr(_vectorized, "chunk_size", recording)
    masks = np.zeros((len(y), 2), dtype=bool)
    masks[:80, 0] = masks[80:, 1] = True
    _vectorized.fit_batched(DPSGDClassifier(**{**DP, "max_epochs": 1}), X, y, masks, [0, 1])
    # 6*12+12 + 12*3+3 = 123 parameters; Poisson batches of q n = 24 of 80 rows, padded
    # to their mean and 6 standard deviations
    width = poisson_width(80, 24 / 80)
    assert width == int(np.ceil(24 + 6 * np.sqrt(24 * (1 - 0.3)) + 1)) == 50
    assert seen == [4 * (5 * 123 + 6 * width * (6 + 12 + 3))]
    assert seen[0] > training_bytes(123, 24, [6, 12, 3])


@pytest.mark.parametrize(("params", "reason"), [
    ({"grad_sample_mode": "hooks"}, "grad_sample_mode='hooks' asks for opacus' per-record"),
    ({"module": torch.nn.Linear}, "module is not the class skmia.nn.MLP"),
])
def test_vectorize_true_refuses_what_it_cannot_batch(params, reason, pool):
    X, y = pool
    recipe = DPSGDClassifier(**{**DP, **params})
    with pytest.raises(ValueError, match=f"vectorize=True, but .*{reason}"):
        ReferenceModels(recipe, n_estimators=2, vectorize=True).fit(X, y)


def test_a_subclass_with_its_own_step_is_not_batched(pool):
    class Louder(DPSGDClassifier):
        def train_step(self, batch, **fit_params):
            return super().train_step(batch, **fit_params)

    X, y = pool
    with pytest.raises(ValueError, match=r"changes skorch's training loop \(train_step\)"):
        ReferenceModels(Louder(**DP), n_estimators=2, vectorize=True).fit(X, y)


def test_auto_batches_dpsgd_and_falls_back_for_hooks(pool):
    X, y = pool
    assert ReferenceModels(DPSGDClassifier(**DP))._batching_refusal(X, {}) is None
    hooks = DPSGDClassifier(**{**DP, "grad_sample_mode": "hooks", "max_epochs": 1})
    bank = ReferenceModels(hooks, n_estimators=2, random_state=0).fit(X, y)
    for k, model in enumerate(bank.estimators_):  # model by model: bit for bit
        assert model.grad_sample_mode_ == "hooks"
        assert torch.equal(_weights(model), _weights(_alone(bank, k, X, y)))


# ------------------------------------------------------------------ accounting
def test_the_cached_accounting_is_opacus_bit_for_bit():
    from opacus.accountants import PRVAccountant
    from opacus.accountants.utils import get_noise_multiplier

    from skmia.defenses._dp_prv import noise_for_epsilon, prv_epsilon

    for history in ([(1.1, 0.064, 16)], [(2.0, 0.01, 100), (1.0, 0.02, 30)]):
        prv = PRVAccountant()
        prv.history = list(history)
        assert prv_epsilon(history, 1e-5) == prv.get_epsilon(1e-5)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")  # opacus' note on its largest RDP order
        assert noise_for_epsilon(2.0, 1e-5, 0.05, 10, "rdp") == get_noise_multiplier(
            target_epsilon=2.0, target_delta=1e-5, sample_rate=0.05, steps=10,
            accountant="rdp")


def _clear_accounting_memos():
    from skmia.defenses import _dp_accounting, _dp_prv, _dp_rdp

    for memo in (_dp_accounting._privacy_epsilon, _dp_rdp.one_step_rdp,
                 _dp_prv._prv_epsilon, _dp_prv.noise_for_epsilon):
        memo.cache_clear()


def test_a_bank_accounts_each_distinct_setting_once(pool, monkeypatch):
    """Four models on 80, 80, 80 and 70 rows: two sample rates, so two noise searches
    and each PRV and per-step RDP once; every ε as each model's alone and opacus'."""
    from opacus.accountants import PRVAccountant

    from skmia.defenses import _dp_prv, _dp_rdp

    X, y = pool
    recipe = DPSGDClassifier(**{**DP, "accountant": "prv", "target_epsilon": 4.0,
                                "milestones": (), "max_epochs": 2})
    masks = np.zeros((len(y), 4), bool)
    masks[:80, 0] = masks[80:, 1] = masks[:80, 2] = masks[70:140, 3] = True
    seeds = [11, 12, 13, 14]
    prvs, rdps = [], []  # the accounting computed, each with its inputs

    def domain(history, one_step, eps_error, delta_error):
        prvs.append((tuple(map(tuple, history)), eps_error, delta_error))
        return real_domain(history, one_step, eps_error, delta_error)

    def estimate(q, sigma):  # once per OneStepRDP
        rdps.append((q, sigma))
        return real_estimate(q, sigma)

    real_domain, real_estimate = _dp_prv._domain, _dp_rdp._estimate
    monkeypatch.setattr(_dp_prv, "_domain", domain)
    monkeypatch.setattr(_dp_rdp, "_estimate", estimate)
    _clear_accounting_memos()
    models = _vectorized.fit_batched(recipe, X, y, masks, seeds)
    searches = _dp_prv.noise_for_epsilon.cache_info().misses
    monkeypatch.undo()
    rates = {m.sample_rate_ for m in models}
    assert rates == {24 / 80, 24 / 70} and models[1].sample_rate_ == models[0].sample_rate_
    assert searches == 2  # one noise search per distinct sample rate
    assert prvs and len(prvs) == len(set(prvs))  # each PRV computed once for the bank
    assert len(rdps) == len(set(rdps))  # and each step's RDP
    assert {history[0][1] for history, _, _ in prvs} == rates == {q for q, _ in rdps}
    for k in (0, 3):  # each model alone computes its own accounting afresh
        _clear_accounting_memos()
        alone = clone(recipe).set_params(random_state=seeds[k]).fit(X[masks[:, k]],
                                                                    y[masks[:, k]])
        for model in (models[k], models[2]) if k == 0 else (models[k],):
            assert model.noise_multiplier_ == alone.noise_multiplier_
            assert model.epsilon_ == alone.epsilon_ and np.isfinite(model.epsilon_)
            assert list(model.history[:, "epsilon"]) == list(alone.history[:, "epsilon"])
    prv = PRVAccountant()  # and opacus' own, with no memo
    prv.history = list(models[3].accountant_.history)
    assert models[3].epsilon_ == prv.get_epsilon(models[3].delta_)
