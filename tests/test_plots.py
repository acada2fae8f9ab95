"""ROC figure: each attack's AUC in its legend label, curves told apart by line style."""

import numpy as np
import pytest

from skmia.metrics import attack_auc
from skmia.report import roc_figure


@pytest.fixture
def scores():
    rng = np.random.default_rng(0)
    membership = np.r_[np.ones(400), np.zeros(400)]
    loss = rng.normal(membership)
    # confidence and loss rank records alike: their curves coincide
    return {"loss": loss, "confidence": 2 * loss + 1, "entropy": rng.normal(size=800),
            "NN": rng.normal(membership * 2), "grad": rng.normal(membership * 0.5)}, membership


def test_legend_gives_each_attacks_auc(scores):
    scores, membership = scores
    fig = roc_figure(scores, membership, confidence_level=0.95)
    labels = [text.get_text() for text in fig.axes[0].get_legend().get_texts()]
    assert labels[:-1] == [f"{name} (AUC {attack_auc(membership, s):.3f})"
                           for name, s in scores.items()]
    assert labels[-1] == "chance"
    assert labels[0] == labels[1].replace("confidence", "loss")  # same curve, same AUC


def test_coinciding_curves_have_different_line_styles(scores):
    scores, membership = scores
    lines = roc_figure(scores, membership).axes[0].get_lines()[:len(scores)]
    styles = [line.get_linestyle() for line in lines]
    assert styles[:4] == ["-", "--", "-.", ":"]
    assert styles[0] != styles[1]  # loss and confidence, on top of each other
    assert np.array_equal(lines[0].get_ydata(), lines[1].get_ydata())


def test_chance_line_looks_like_no_attack(scores):
    scores, membership = scores
    lines = roc_figure(scores, membership).axes[0].get_lines()
    chance = lines[-1]
    assert chance.get_label() == "chance"
    assert all((line.get_color(), line.get_linestyle())
               != (chance.get_color(), chance.get_linestyle()) for line in lines[:-1])
