"""Plots of an attack run: ROC curves (log-log) and member/non-member loss histograms."""

import io

import numpy as np

from ..metrics import attack_roc_curve

__all__ = ["roc_figure", "loss_histogram_figure", "figure_png"]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def roc_figure(scores, membership, *, title=None):
    """Log-log ROC curves of several attacks on the same records.

    Parameters
    ----------
    scores : dict of str to array-like
        Attack name -> decision scores (higher for members).
    membership : array-like of {0, 1}
        1 for members.
    title : str, default=None
        Figure title.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    plt = _pyplot()
    membership = np.asarray(membership)
    floor = 1.0 / max(int(np.sum(membership == 0)), 1)
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, score in scores.items():
        fpr, tpr, _ = attack_roc_curve(membership, np.asarray(score))
        ax.plot(np.maximum(fpr, floor), np.maximum(tpr, floor), label=name, linewidth=1.2)
    ax.plot([floor, 1], [floor, 1], color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set(xscale="log", yscale="log", xlim=(floor, 1), ylim=(floor, 1),
           xlabel="false-positive rate", ylabel="true-positive rate", title=title)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def loss_histogram_figure(loss, membership, *, title=None, bins=50):
    """Histograms of the per-record loss of members and non-members.

    Returns
    -------
    fig : matplotlib.figure.Figure
    """
    plt = _pyplot()
    loss, membership = np.asarray(loss, dtype=float), np.asarray(membership)
    edges = np.histogram_bin_edges(loss, bins=bins)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(loss[membership == 1], bins=edges, alpha=0.5, label="members")
    ax.hist(loss[membership == 0], bins=edges, alpha=0.5, label="non-members")
    ax.set(xlabel="cross-entropy loss", ylabel="records", title=title)
    ax.legend()
    fig.tight_layout()
    return fig


def figure_png(fig):
    """The figure as PNG bytes (the figure is closed)."""
    plt = _pyplot()
    buffer = io.BytesIO()
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()
