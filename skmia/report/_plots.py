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


def roc_figure(scores, membership, *, title=None, confidence_level=None):
    """Log-log ROC curves of several attacks on the same records.

    Parameters
    ----------
    scores : dict of str to array-like
        Attack name -> decision scores (higher for members).
    membership : array-like of {0, 1}
        1 for members.
    title : str, default=None
        Figure title.
    confidence_level : float in (0, 1), default=None
        When given, each curve is drawn with a shaded band: at every point, the
        Clopper-Pearson interval of its true-positive rate at that coverage (pointwise,
        for the binomial noise of the members given the threshold; not a simultaneous
        band, and blind to the noise of the false-positive rate).

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skmia.report import roc_figure
    >>> rng = np.random.default_rng(0)
    >>> y = np.r_[np.ones(500), np.zeros(500)]
    >>> fig = roc_figure({"loss": rng.normal(y)}, y, confidence_level=0.95)
    >>> len(fig.axes[0].collections)   # the band
    1
    """
    plt = _pyplot()
    membership = np.asarray(membership)
    if confidence_level is not None and not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level!r}.")
    floor = 1.0 / max(int(np.sum(membership == 0)), 1)
    n_pos = int(np.sum(membership == 1))
    fig, ax = plt.subplots(figsize=(5, 5))
    for name, score in scores.items():
        fpr, tpr, _ = attack_roc_curve(membership, np.asarray(score))
        (line,) = ax.plot(np.maximum(fpr, floor), np.maximum(tpr, floor), label=name,
                          linewidth=1.2)
        if confidence_level is not None:
            low, high = _tpr_band(np.rint(tpr * n_pos), n_pos, 1 - confidence_level)
            ax.fill_between(np.maximum(fpr, floor), np.maximum(low, floor),
                            np.maximum(high, floor), color=line.get_color(), alpha=0.2,
                            linewidth=0)
    ax.plot([floor, 1], [floor, 1], color="grey", linestyle=":", linewidth=1, label="chance")
    ax.set(xscale="log", yscale="log", xlim=(floor, 1), ylim=(floor, 1),
           xlabel="false-positive rate", ylabel="true-positive rate", title=title)
    ax.legend(fontsize=7, loc="lower right")
    fig.tight_layout()
    return fig


def _tpr_band(k, n, alpha):
    """Two-sided Clopper-Pearson interval of ``k / n`` for each ``k``."""
    from scipy.stats import beta

    low = np.where(k > 0, beta.ppf(alpha / 2, np.maximum(k, 1), n - k + 1), 0.0)
    high = np.where(k < n, beta.ppf(1 - alpha / 2, k + 1, np.maximum(n - k, 1)), 1.0)
    return low, high


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
