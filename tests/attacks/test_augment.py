"""Augmented queries (skmia.attacks._augment): the views, compute_signals(augment=...)
and LiRA's average over views against a loop transcription of the authors' rule."""

import numpy as np
import pandas as pd
import pytest
import torch
from scipy.stats import norm
from torch import nn

from skmia.attacks import AUGMENTS, LiRAAttack, augmented_views, compute_signals
from skmia.defenses import VanillaClassifier
from skmia.model_selection import ReferenceModels


# ----------------------------------------------------------------------------- views
def test_views_by_hand():
    X = np.arange(2 * 1 * 4 * 4, dtype=np.float32).reshape(2, 1, 4, 4)
    flip = augmented_views(X, "flip")
    assert len(flip) == 2 and flip[0] is X
    np.testing.assert_array_equal(flip[1], X[:, :, :, ::-1])
    views = augmented_views(X, "flip_shift")
    assert len(views) == 18 and views[0] is X
    assert all(v.shape == X.shape and v.dtype == X.dtype for v in views)
    # view 1 is (dy, dx) = (0, -2): the image moved 2 pixels left, the right border
    # filled by reflection: row 0, 1, 2, 3 -> 2, 3, 2, 1
    np.testing.assert_array_equal(views[1][0, 0, 0], [2, 3, 2, 1])
    # view 3 is (dy, dx) = (-2, 0): moved 2 pixels up
    np.testing.assert_array_equal(views[3][0, 0, :, 0], [8, 12, 8, 4])
    # views 9.. are the mirror's: view 9 is the mirror itself
    np.testing.assert_array_equal(views[9], X[..., ::-1])
    assert len({v.tobytes() for v in views}) == 18
    assert set(AUGMENTS) == {"flip", "flip_shift"}
    assert augmented_views(X, None) == [X]


@pytest.mark.parametrize(
    ("X", "augment", "match"),
    [(np.zeros((3, 5)), "flip", r"tabular records have no such views"),
     (np.zeros((3, 1, 4, 4)), "mirror", r"augment must be None or one of 'flip'"),
     (np.zeros((3, 1, 2, 8)), "flip_shift", r"images must be larger than 2 x 2")],
)
def test_views_refuse_what_has_no_views(X, augment, match):
    with pytest.raises(ValueError, match=match):
        augmented_views(X, augment)


# ------------------------------------------------------------------ compute_signals
class TinyConv(nn.Module):
    def __init__(self, n_classes=3):
        super().__init__()
        self.conv = nn.Conv2d(1, 3, 3, padding=1)
        self.fc = nn.Linear(3 * 6 * 6, n_classes)

    def forward(self, x):
        return self.fc(torch.relu(self.conv(x)).flatten(1))


@pytest.fixture(scope="module")
def images():
    rng = np.random.default_rng(0)
    X = rng.random((24, 1, 6, 6), dtype=np.float32)
    y = rng.integers(0, 3, 24)
    return X, y


@pytest.fixture(scope="module")
def bank(images):
    X, y = images
    recipe = VanillaClassifier(module=TinyConv, max_epochs=1, batch_size=8)
    return ReferenceModels(recipe, n_estimators=2, random_state=0).fit(X, y)


def test_compute_signals_scores_every_view_under_target_and_bank(images, bank):
    X, y = images
    target = bank.estimators_[0]
    signals = compute_signals(target, X, y, reference=bank, pool_index=np.arange(24),
                              augment="flip")
    views = augmented_views(X, "flip")
    assert [c for c in signals if "aug" in c] == [
        "score_aug_0", "score_aug_1", "ref_score_aug_0_0", "ref_score_aug_0_1",
        "ref_score_aug_1_0", "ref_score_aug_1_1"]
    np.testing.assert_array_equal(signals["score_aug_0"], signals["score"])
    mirror = compute_signals(target, views[1].copy(), y, reference=bank)
    np.testing.assert_allclose(signals["score_aug_1"], mirror["score"], rtol=1e-6)
    for k in range(2):
        np.testing.assert_array_equal(signals[f"ref_score_aug_0_{k}"], signals[f"ref_score_{k}"])
        np.testing.assert_allclose(signals[f"ref_score_aug_1_{k}"], mirror[f"ref_score_{k}"],
                                   rtol=1e-6)
    assert not np.allclose(signals["score_aug_1"], signals["score"])
    # None leaves the output as it was
    plain = compute_signals(target, X, y, reference=bank, pool_index=np.arange(24))
    pd.testing.assert_frame_equal(plain, signals[plain.columns])
    assert not any("aug" in c for c in plain)


def test_compute_signals_refuses_augmenting_tabular_records():
    model = nn.Linear(5, 3)
    with pytest.raises(ValueError, match=r"augment='flip' mirrors and shifts images"):
        compute_signals(model, np.zeros((4, 5), dtype=np.float32), [0, 1, 2, 0],
                        augment="flip")


# ------------------------------------------------------------------ LiRA over views
def augmented_table(rng, n=50, k=8, views=3):
    inside = np.zeros((n, k), dtype=bool)
    for i in range(n):
        inside[i, rng.choice(k, k // 2, replace=False)] = True
    level = rng.uniform(-2, 3, (n, 1, 1)) + rng.normal(0, 0.3, (n, views, 1))
    ref = level + np.where(inside[:, None, :], 1.5, 0.0) + rng.normal(0, 1, (n, views, k))
    member = np.arange(n) % 2 == 0
    score = level[:, :, 0] + np.where(member, 1.5, 0.0)[:, None] + rng.normal(0, 1, (n, views))
    columns = {"score": score[:, 0]}
    columns.update({f"ref_score_{m}": ref[:, 0, m] for m in range(k)})
    columns.update({f"ref_in_{m}": inside[:, m] for m in range(k)})
    columns.update({f"score_aug_{a}": score[:, a] for a in range(views)})
    columns.update({f"ref_score_aug_{a}_{m}": ref[:, a, m] for a in range(views)
                    for m in range(k)})
    return pd.DataFrame(columns), score, ref, inside


def lira_views_loop(score, ref, inside, *, online, std_in=None, std_out=None):
    """Carlini et al.'s code: a Gaussian test per view, averaged over the views."""
    out = []
    for s_row, r_row, m in zip(score, ref, inside, strict=True):
        per_view = []
        for s, r in zip(s_row, r_row, strict=True):
            s_out = np.std(r[~m]) if std_out is None else std_out
            if online:
                s_in = np.std(r[m]) if std_in is None else std_in
                per_view.append(norm.logpdf(s, np.mean(r[m]), s_in)
                                - norm.logpdf(s, np.mean(r[~m]), s_out))
            else:
                per_view.append(-np.log(norm.sf(s, np.mean(r[~m]), s_out)))
        out.append(np.mean(per_view))
    return np.array(out)


def pooled(ref, mask):
    squares = count = 0
    for r_row, m in zip(ref, mask, strict=True):
        for r in r_row:
            squares += np.sum((r[m] - r[m].mean()) ** 2)
            count += m.sum()
    return np.sqrt(squares / count)


@pytest.mark.parametrize("online", [True, False], ids=["online", "offline"])
def test_lira_averages_its_test_over_the_views(online):
    signals, score, ref, inside = augmented_table(np.random.default_rng(1))
    attack = LiRAAttack(online=online).fit(signals)
    assert attack.n_augmentations_ == 3
    np.testing.assert_allclose(attack.decision_function(signals),
                               lira_views_loop(score, ref, inside, online=online),
                               rtol=0, atol=1e-9)
    fixed = LiRAAttack(online=online, fix_variance=True).fit(signals)
    std_in = pooled(ref, inside) if online else None
    std_out = pooled(ref, ~inside)
    assert fixed.std_out_ == pytest.approx(std_out, rel=1e-12)
    np.testing.assert_allclose(
        fixed.decision_function(signals),
        lira_views_loop(score, ref, inside, online=online, std_in=std_in, std_out=std_out),
        rtol=0, atol=1e-9)
    # use_augmentations=False: view 0 only, the plain LiRA
    plain = LiRAAttack(online=online, use_augmentations=False).fit(signals)
    no_views = signals[[c for c in signals if "aug" not in c]]
    np.testing.assert_array_equal(plain.decision_function(signals),
                                  LiRAAttack(online=online).fit(no_views).decision_function(
                                      no_views))
    assert plain.n_augmentations_ == 0


def test_lira_fitted_on_views_needs_them_to_score():
    signals, *_ = augmented_table(np.random.default_rng(2))
    attack = LiRAAttack().fit(signals)
    with pytest.raises(ValueError, match=r"lacks the signal columns 'score_aug_0'"):
        attack.decision_function(signals[[c for c in signals if "aug" not in c]])
