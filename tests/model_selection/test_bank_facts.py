"""The bank owns its facts: what every bank draws, its memory, how a saved bank is
recognised, and saving it without a circle in skmia.io (issue 32)."""

import ast
from pathlib import Path

import numpy as np
import pytest
from sklearn.linear_model import LogisticRegression

import skmia
from skmia.model_selection import (
    ReferenceModels,
    _memory,
    balanced_masks,
    bank_bytes,
    bank_draws,
    base_seed,
    check_bank_draws,
    check_bank_memory,
    fit_models,
    mask_block,
    model_seeds,
    pool_digest,
)


@pytest.fixture(scope="module")
def pool():
    rng = np.random.default_rng(0)
    X = rng.normal(size=(60, 3))
    return X, (X[:, 0] > 0).astype(int)


@pytest.fixture(scope="module")
def bank(pool):
    return ReferenceModels(LogisticRegression(), n_estimators=6, random_state=7).fit(*pool)


def test_a_bank_holds_the_draws_of_its_seed(bank, pool):
    X, y = pool
    assert bank.base_seed_ == base_seed(7)
    masks, seeds = bank_draws(len(y), 6, 0.5, bank.base_seed_)
    np.testing.assert_array_equal(bank.in_mask_, masks)
    np.testing.assert_array_equal(bank.seeds_, seeds)
    assert seeds.dtype == np.int64 and bank.pool_digest_ == pool_digest(X, y)
    # later models do not change the first ones; a part drawn from start is the tail
    np.testing.assert_array_equal(balanced_masks(len(y), 10, 0.5, 3)[:, :4],
                                  balanced_masks(len(y), 4, 0.5, 3))
    np.testing.assert_array_equal(model_seeds(3, 10, start=4), model_seeds(3, 10)[4:])
    tail = bank_draws(len(y), 6, 0.5, bank.base_seed_, start=2)
    np.testing.assert_array_equal(tail[0], masks[:, 2:])
    # balanced: every record IN exactly keep * n models
    assert (balanced_masks(len(y), 9, 1 / 3, 5).sum(axis=1) == 3).all()


@pytest.mark.parametrize(("keep", "block"), [(0.5, 2), (0.25, 4), (1 / 3, 3), (0.4, 5)])
def test_the_mask_block_is_the_denominator_of_keep(keep, block):
    assert mask_block(keep) == block


def test_a_round_of_the_defense_audit_draws_what_its_bank_draws(pool):
    from skmia.audit._plan import plan_audit

    X, y = pool
    plan = plan_audit(X, y, test_size=10, random_state=4)
    for r in (0, 3):
        bank = ReferenceModels(LogisticRegression(), n_estimators=plan.block,
                               random_state=plan.round_seed(r)).fit(plan.X_pool, plan.y_pool)
        masks, seeds = plan.round_draws(r)
        np.testing.assert_array_equal(bank.in_mask_, masks)
        np.testing.assert_array_equal(bank.seeds_, seeds)


def test_a_bank_of_other_draws_or_another_pool_is_refused(bank, pool):
    X, y = pool
    check_bank_draws(bank, X, y)  # its own
    with pytest.raises(ValueError, match="trained on another pool"):
        check_bank_draws(bank, X + 1, y)
    edited = bank.head(6)
    edited.in_mask_ = ~edited.in_mask_
    with pytest.raises(ValueError, match="masks or seeds are not those its seed"):
        check_bank_draws(edited, X, y)
    edited = bank.head(6)
    edited.seeds_ = edited.seeds_ + 1
    with pytest.raises(ValueError, match="masks or seeds are not those its seed"):
        check_bank_draws(edited, X, y)


def test_one_memory_estimate_for_every_bank(monkeypatch, pool):
    # masks: 2 bytes per record and model; each new model its weights, at least 28 KiB
    assert bank_bytes(100, 10) == 2 * 100 * 10 + 28 * 1024 * 10
    assert bank_bytes(100, 10, 10**6, start=4) == 2000 + 10**6 * 6
    assert bank_bytes(100, 10, 5) == bank_bytes(100, 10)  # never below the floor
    monkeypatch.setattr(_memory, "available_memory", lambda device: 2**30)
    check_bank_memory(100, 1000, 10**6)  # 0.93 GiB fits in 1 GiB
    with pytest.raises(ValueError, match=r"^2,000 reference models: the masks \(100 records "
                                         r"x 2,000 models\) .* would need 1.9 GiB, more "
                                         r"than the 1.0 GiB"):
        check_bank_memory(100, 2000, 10**6)
    # ReferenceModels and a run's saved bank refuse with the same estimate
    X, y = pool
    with pytest.raises(ValueError, match=r"n_estimators=40,000: the masks"):
        ReferenceModels(LogisticRegression(), n_estimators=40_000).fit(X, y)
    import types

    import torch

    from skmia.experiment._run_bank import check_bank_size

    target = types.SimpleNamespace(module_=torch.nn.Linear(250, 1000))  # 1,004,000 B
    check_bank_size(target, 1000, 100, "x")
    with pytest.raises(ValueError, match="2000 reference models would take about 1.9 GiB"):
        check_bank_size(target, 2000, 100, "x")


def test_fit_models_fits_the_columns_of_the_masks(bank, pool):
    X, y = pool
    models = fit_models(LogisticRegression(), X, y, bank.in_mask_, bank.seeds_)
    for model, reference in zip(models, bank.estimators_, strict=True):
        np.testing.assert_array_equal(model.coef_, reference.coef_)


def _imports(path):
    """Modules of skmia.io a file imports (``from .x import``), lazy imports included."""
    tree = ast.parse(path.read_text())
    return {node.module for node in ast.walk(tree)
            if isinstance(node, ast.ImportFrom) and node.level == 1 and node.module}


def test_saving_a_bank_makes_no_circle_in_io():
    folder = Path(skmia.__file__).parent / "io"
    graph = {p.stem: _imports(p) for p in folder.glob("_*.py")}
    assert "_estimator" in graph
    seen, stack = set(), []

    def visit(module):
        assert module not in stack, f"a circle in skmia.io: {stack + [module]}"
        if module in seen:
            return
        stack.append(module)
        for other in graph.get(module, ()):
            visit(other)
        stack.pop()
        seen.add(module)

    for module in graph:
        visit(module)
