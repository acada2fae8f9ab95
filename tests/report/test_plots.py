"""Figures: the ROC figure (each attack's AUC in its legend label, curves told apart by
line style, bands that stay readable, markers at 1 % and 0.1 % FPR), the loss histogram
on a log-scaled loss axis, and training curves (accuracies where measured, RelaxLoss's
two objectives apart)."""

import numpy as np
import pytest
from sklearn.datasets import make_classification

from skmia.defenses import RelaxLossClassifier, ValidationData
from skmia.defenses._relaxloss import RELAXLOSS_OBJECTIVES
from skmia.metrics import attack_auc, tpr_at_fpr
from skmia.report import loss_histogram_figure, roc_figure, training_curves_figure


@pytest.fixture(autouse=True)
def close_figures():
    """Close this test's figures: more than 20 open ones make matplotlib warn, and the
    warning points at skmia's code (an error in tests)."""
    yield
    import matplotlib.pyplot as plt

    plt.close("all")


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
    assert labels[:len(scores)] == [f"{name} (AUC {attack_auc(membership, s):.3f})"
                                    for name, s in scores.items()]
    # 400 non-members resolve 1 % FPR, not 0.1 %: one marker legend entry
    assert labels[len(scores):] == ["TPR at 1 % FPR", "chance"]
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


def nine_curves(n=2000):
    rng = np.random.default_rng(1)
    membership = np.r_[np.ones(n), np.zeros(n)]
    return {f"attack {k}": rng.normal(membership * (0.2 * k + 0.1)) for k in range(9)}, membership


def test_markers_at_one_and_a_tenth_percent_fpr():
    scores, membership = nine_curves()
    ax = roc_figure(scores, membership).axes[0]
    markers = [line for line in ax.get_lines() if line.get_gid() == "fpr_marker"]
    assert len(markers) == 2 * len(scores)
    by_rate = {}
    for line in markers:
        by_rate.setdefault(float(line.get_xdata()[0]), []).append(line)
    assert sorted(by_rate) == [0.001, 0.01]
    for rate, shape in ((0.01, "o"), (0.001, "s")):
        for line, score in zip(by_rate[rate], scores.values(), strict=True):
            assert line.get_marker() == shape
            expected = tpr_at_fpr(membership, score, max_fpr=rate).tpr
            assert line.get_ydata()[0] == pytest.approx(max(expected, 1 / 2000))
    labels = [t.get_text() for t in ax.get_legend().get_texts()]
    assert labels[-3:] == ["TPR at 1 % FPR", "TPR at 0.1 % FPR", "chance"]
    assert roc_figure(scores, membership, fpr_markers=()).axes[0].get_legend() is not None
    assert not [line for line in roc_figure(scores, membership, fpr_markers=()).axes[0]
                .get_lines() if line.get_gid() == "fpr_marker"]
    with pytest.raises(ValueError, match="fpr_markers must hold"):
        roc_figure(scores, membership, fpr_markers=(1.5,))


def test_nine_bands_are_lighter_and_one_band_on_demand():
    scores, membership = nine_curves()
    every = roc_figure(scores, membership, confidence_level=0.95).axes[0].collections
    assert len(every) == 9
    assert all(band.get_alpha() == pytest.approx(0.4 / 9) for band in every)
    one = roc_figure(scores, membership, confidence_level=0.95, bands="attack 8")
    assert len(one.axes[0].collections) == 1
    assert one.axes[0].collections[0].get_alpha() == pytest.approx(0.2)
    two = roc_figure(scores, membership, confidence_level=0.95, bands=["attack 0", "attack 8"])
    assert len(two.axes[0].collections) == 2
    assert len(roc_figure(scores, membership, bands="attack 8").axes[0].collections) == 0
    with pytest.raises(ValueError, match="bands names curves that are not in scores"):
        roc_figure(scores, membership, confidence_level=0.95, bands=["NN"])


def test_loss_histogram_on_a_log_axis():
    # an overfit model: members' losses span decades near 0 (some exactly 0)
    rng = np.random.default_rng(0)
    members = np.r_[np.zeros(20), 10 ** rng.uniform(-5, -1, 380)]
    nonmembers = 10 ** rng.uniform(-2, 1, 400)
    membership = np.r_[np.ones(400), np.zeros(400)]
    ax = loss_histogram_figure(np.r_[members, nonmembers], membership, bins=30).axes[0]
    assert ax.get_xscale() == "log"
    assert "below 1e-06 counted at 1e-06" in ax.get_xlabel()
    member_bars, nonmember_bars = ax.containers
    heights = np.array([bar.get_height() for bar in member_bars])
    assert heights.sum() == 400  # the zeros are counted, in the first bin
    assert heights[0] >= 20
    assert (heights > 0).sum() > 10  # spread over many bins, not one
    edges = np.array([bar.get_x() for bar in member_bars])
    np.testing.assert_allclose(np.diff(np.log(edges)), np.log(edges[1] / edges[0]))
    linear = loss_histogram_figure(np.r_[members, nonmembers], membership, bins=30,
                                   log_scale=False).axes[0]
    assert linear.get_xscale() == "linear"
    linear_heights = np.array([bar.get_height() for bar in linear.containers[0]])
    assert linear_heights[0] > 0.9 * 400  # what the log axis is for
    clean = loss_histogram_figure(nonmembers + 0.1, np.zeros(400)).axes[0]
    assert clean.get_xlabel() == "cross-entropy loss (log scale)"
    with pytest.raises(ValueError, match="floor must be a number > 0"):
        loss_histogram_figure(members, np.ones(400), floor=0)
    with pytest.raises(ValueError, match="finite values >= 0"):
        loss_histogram_figure(-members - 1, np.ones(400))


@pytest.fixture(scope="module")
def relaxloss_history():
    X, y = make_classification(240, n_features=10, n_informative=6, random_state=0)
    clf = RelaxLossClassifier(alpha=0.5, max_epochs=6, module__hidden_sizes=(32,),
                              train_split=ValidationData(X[200:], y[200:]),
                              random_state=0).fit(X[:200], y[:200])
    return list(clf.history)


def test_relaxloss_objectives_apart_and_accuracy_per_epoch(relaxloss_history):
    history = relaxloss_history
    assert [row["train_objective"] for row in history] == list(RELAXLOSS_OBJECTIVES) * 3
    fig = training_curves_figure(history)
    losses, accuracies = fig.axes
    by_label = {line.get_label(): line for line in losses.lines}
    even = by_label[f"train_loss ({RELAXLOSS_OBJECTIVES[0]})"]
    odd = by_label[f"train_loss ({RELAXLOSS_OBJECTIVES[1]})"]
    assert list(even.get_xdata()) == [1, 3, 5] and list(odd.get_xdata()) == [2, 4, 6]
    assert list(odd.get_ydata()) == [history[i]["train_loss"] for i in (1, 3, 5)]
    assert "train_loss" not in by_label  # no sawtooth series
    assert "valid_loss" in by_label
    (accuracy,) = accuracies.lines
    assert accuracy.get_label() == "valid_acc" and accuracy.get_linestyle() == "--"
    assert list(accuracy.get_ydata()) == [row["valid_acc"] for row in history]
    assert accuracies.get_ylim() == (0, 1)
    legend = [t.get_text() for t in losses.get_legend().get_texts()]
    assert legend[-1] == "valid_acc" and len(legend) == 4


def test_accuracy_only_where_measured():
    history = [{"epoch": 1, "train_loss": 2.0},
               {"epoch": 2, "train_loss": 1.5, "test_accuracy": 0.4},
               {"epoch": 3, "train_loss": 1.0},
               {"epoch": 4, "train_loss": 0.8, "test_accuracy": 0.5}]
    fig = training_curves_figure(history)
    (train,) = fig.axes[0].lines
    assert train.get_label() == "train_loss" and list(train.get_xdata()) == [1, 2, 3, 4]
    (accuracy,) = fig.axes[1].lines
    assert list(accuracy.get_xdata()) == [2, 4] and list(accuracy.get_ydata()) == [0.4, 0.5]
    assert len(training_curves_figure(history[:1]).axes) == 1  # no accuracy, no right axis
