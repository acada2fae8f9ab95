"""Plots of runs: ROC curves (log-log, marked at 1 % and 0.1 % FPR), member/non-member
loss histograms (log-scaled loss), the privacy-utility trade-off of several methods and
training curves (losses per objective, accuracies where measured)."""

import io

import numpy as np

from .._rundir import escape_text

__all__ = [
    "roc_figure",
    "loss_histogram_figure",
    "privacy_utility_figure",
    "training_curves_figure",
    "figure_png",
]


def _pyplot():
    import matplotlib

    matplotlib.use("Agg", force=False)
    import matplotlib.pyplot as plt

    return plt


def _literal(fig):
    """Show every title, axis label, legend entry and annotation of ``fig`` as the text
    it is: a name holding ``$`` (``$\\foo$``, an unbalanced ``$``) is never parsed as
    matplotlib mathtext, which would fail or draw something else. Tick labels (numbers,
    log-scale ticks drawn as mathtext) are left as they are; control characters are shown
    as escapes (``\\x1b``). Returns ``fig``."""
    texts = [fig._suptitle] if getattr(fig, "_suptitle", None) is not None else []
    for ax in fig.axes:
        texts += [ax.title, ax._left_title, ax._right_title, ax.xaxis.label,
                  ax.yaxis.label, *ax.texts]
        legend = ax.get_legend()
        if legend is not None:
            texts += [legend.get_title(), *legend.get_texts()]
    for text in texts:
        text.set_parse_math(False)
        text.set_text(escape_text(text.get_text()))  # a control character has no glyph
    return fig


# solid, dashed, dash-dot, dotted: curves that coincide stay visible
_LINE_STYLES = ("-", "--", "-.", ":")


def roc_figure(scores, membership, *, title=None, confidence_level=None, bands="all",
               fpr_markers=(0.01, 0.001)):
    """Log-log ROC curves of several attacks on the same records.

    Each curve's legend label gives its attack's AUC (``"loss (AUC 0.901)"``), and the
    curves cycle through solid, dashed, dash-dot and dotted lines (besides colours), so
    that attacks whose curves coincide (confidence and loss rank records alike) stay
    visible. Each curve carries a marker at each false-positive rate of
    ``fpr_markers`` (a circle at 1 %, a square at 0.1 %), at its true-positive rate
    there, and a faint vertical guide marks those rates.

    Parameters
    ----------
    scores : dict of str to array-like
        Attack name -> decision scores (higher for members).
    membership : array-like of {0, 1}
        1 for members.
    title : str, default=None
        Figure title.
    confidence_level : float in (0, 1), default=None
        When given, curves are drawn with a shaded band: at every point, the
        Clopper-Pearson interval of its true-positive rate at that coverage (pointwise,
        for the binomial noise of the members given the threshold; not a simultaneous
        band, and blind to the noise of the false-positive rate). The more bands, the
        lighter each (opacity ``min(0.2, 0.4 / n_bands)``), so that nine stay readable.
    bands : "all" or str or list of str, default="all"
        The curves given a band (by name in ``scores``), when ``confidence_level`` is
        set: one band on demand keeps a crowded figure clear.
    fpr_markers : sequence of float in (0, 1), default=(0.01, 0.001)
        False-positive rates marked on every curve (the TPR at FPR <= that rate, as
        :func:`skmia.metrics.tpr_at_fpr` reads it). A rate below ``1 / n_nonmembers``,
        which the records cannot resolve, is not marked.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skmia.report import roc_figure
    >>> rng = np.random.default_rng(0)
    >>> y = np.r_[np.ones(1000), np.zeros(1000)]
    >>> fig = roc_figure({"loss": rng.normal(y)}, y, confidence_level=0.95)
    >>> len(fig.axes[0].collections)   # the band
    1
    >>> [t.get_text() for t in fig.axes[0].get_legend().get_texts()]
    ['loss (AUC 0.751)', 'TPR at 1 % FPR', 'TPR at 0.1 % FPR', 'chance']
    """
    from ..metrics import attack_auc, attack_roc_curve  # scikit-learn: only for the plot

    plt = _pyplot()
    membership = np.asarray(membership)
    if confidence_level is not None and not 0 < confidence_level < 1:
        raise ValueError(f"confidence_level must be in (0, 1), got {confidence_level!r}.")
    banded = _banded_curves(bands, scores)
    markers = _check_fpr_markers(fpr_markers)
    floor = 1.0 / max(int(np.sum(membership == 0)), 1)
    markers = [(rate, shape) for rate, shape in markers if rate >= floor]
    n_pos = int(np.sum(membership == 1))
    band_alpha = min(0.2, 0.4 / max(len(banded), 1))
    fig, ax = plt.subplots(figsize=(5, 5))
    curves = []
    for i, (name, score) in enumerate(scores.items()):
        score = np.asarray(score)
        fpr, tpr, _ = attack_roc_curve(membership, score)
        (line,) = ax.plot(np.maximum(fpr, floor), np.maximum(tpr, floor),
                          label=f"{name} (AUC {attack_auc(membership, score):.3f})",
                          linewidth=1.2, linestyle=_LINE_STYLES[i % len(_LINE_STYLES)])
        curves.append((fpr, tpr, line.get_color()))
        if confidence_level is not None and name in banded:
            low, high = _tpr_band(np.rint(tpr * n_pos), n_pos, 1 - confidence_level)
            ax.fill_between(np.maximum(fpr, floor), np.maximum(low, floor),
                            np.maximum(high, floor), color=line.get_color(),
                            alpha=band_alpha, linewidth=0)
    for rate, shape in markers:
        ax.axvline(rate, color="grey", linestyle=":", linewidth=0.6, alpha=0.6)
        for fpr, tpr, color in curves:
            ax.plot([rate], [max(tpr[fpr <= rate].max(), floor)], marker=shape,
                    color=color, markersize=5, linestyle="none", gid="fpr_marker")
        ax.plot([], [], marker=shape, color="grey", linestyle="none",
                label=f"TPR at {rate * 100:g} % FPR")
    # thin solid black: told apart from every attack's dotted or grey curve
    ax.plot([floor, 1], [floor, 1], color="black", linestyle="-", linewidth=0.6,
            label="chance")
    ax.set(xscale="log", yscale="log", xlim=(floor, 1), ylim=(floor, 1),
           xlabel="false-positive rate", ylabel="true-positive rate", title=title)
    ax.legend(fontsize=7, loc="lower right")
    _literal(fig).tight_layout()
    return fig


# marker shapes of the marked false-positive rates, in order
_MARKER_SHAPES = ("o", "s", "^", "D")


def _banded_curves(bands, scores):
    """The names of the curves that get a confidence band."""
    if isinstance(bands, str):
        bands = list(scores) if bands == "all" else [bands]
    bands = list(bands)
    unknown = [b for b in bands if b not in scores]
    if unknown:
        raise ValueError(f"bands names curves that are not in scores: {unknown}; "
                         f"the curves are {list(scores)} (or bands='all')")
    return set(bands)


def _check_fpr_markers(fpr_markers):
    rates = [float(r) for r in fpr_markers]
    if len(rates) > len(_MARKER_SHAPES) or not all(0 < r < 1 for r in rates):
        raise ValueError(f"fpr_markers must hold at most {len(_MARKER_SHAPES)} rates in "
                         f"(0, 1), got {list(fpr_markers)!r}")
    return list(zip(rates, _MARKER_SHAPES[:len(rates)], strict=True))


def _tpr_band(k, n, alpha):
    """Two-sided Clopper-Pearson interval of ``k / n`` for each ``k``."""
    from scipy.stats import beta

    low = np.where(k > 0, beta.ppf(alpha / 2, np.maximum(k, 1), n - k + 1), 0.0)
    high = np.where(k < n, beta.ppf(1 - alpha / 2, k + 1, np.maximum(n - k, 1)), 1.0)
    return low, high


def loss_histogram_figure(loss, membership, *, title=None, bins=50, log_scale=True,
                          floor=1e-6):
    """Histograms of the per-record loss of members and non-members.

    Parameters
    ----------
    loss : array-like of shape (n_records,)
        Per-record cross-entropy, >= 0.
    membership : array-like of {0, 1}
        1 for members.
    title : str, default=None
        Figure title.
    bins : int, default=50
        Number of bins.
    log_scale : bool, default=True
        A log-scaled loss axis with log-spaced bins, so that the members of an overfit
        model, whose losses span decades near 0, are not all in one linear bin.
    floor : float, default=1e-6
        With ``log_scale``, losses below it (zero included: float32 rounds the loss of
        a confident prediction to 0) are counted in the first bin, at ``floor``; the
        axis label then says so. Below about 1e-7, a float32 loss is rounding noise.

    Returns
    -------
    fig : matplotlib.figure.Figure

    Examples
    --------
    >>> import numpy as np
    >>> from skmia.report import loss_histogram_figure
    >>> loss = np.r_[np.zeros(10), np.logspace(-5, 1, 90)]
    >>> ax = loss_histogram_figure(loss, np.r_[np.ones(50), np.zeros(50)]).axes[0]
    >>> ax.get_xscale(), ax.get_xlabel()
    ('log', 'cross-entropy loss (log scale; losses below 1e-06 counted at 1e-06)')
    """
    plt = _pyplot()
    loss, membership = np.asarray(loss, dtype=float), np.asarray(membership)
    if not np.isfinite(loss).all() or (loss < 0).any():
        raise ValueError("loss must hold finite values >= 0")
    if not (isinstance(floor, (int, float)) and floor > 0):
        raise ValueError(f"floor must be a number > 0, got {floor!r}")
    label = "cross-entropy loss"
    if log_scale:
        clipped = loss < floor
        loss = np.maximum(loss, floor)
        low = loss.min() if len(loss) else floor
        high = max(loss.max() if len(loss) else floor, low * 10)
        edges = np.geomspace(low, high, bins + 1)
        label += (f" (log scale; losses below {floor:g} counted at {floor:g})"
                  if clipped.any() else " (log scale)")
    else:
        edges = np.histogram_bin_edges(loss, bins=bins)
    fig, ax = plt.subplots(figsize=(6, 4))
    ax.hist(loss[membership == 1], bins=edges, alpha=0.5, label="members")
    ax.hist(loss[membership == 0], bins=edges, alpha=0.5, label="non-members")
    if log_scale:
        ax.set_xscale("log")
    ax.set(xlabel=label, ylabel="records", title=title)
    ax.legend()
    _literal(fig).tight_layout()
    return fig


def privacy_utility_figure(results, *, title=None):
    """Test accuracy against the strongest attack's AUC, one point per model.

    Parameters
    ----------
    results : pandas.DataFrame
        Rows of attack results, as :func:`collect_results` returns them: columns
        ``method``, ``test_accuracy`` and ``auc``, and where present ``run`` (the run
        directory: two runs are two points even where nothing else tells them apart),
        ``dataset``, ``model``, ``seed``, ``epsilon``, ``settings`` (the settings of the
        run that differ from the others', as text) and ``snapshot_epoch``, which tell the
        models apart.
    title : str, default=None
        Figure title.

    Returns
    -------
    fig : matplotlib.figure.Figure
        One marker per method; each point is one model (a run, or one snapshot of an
        early-stopping run): x the highest AUC of any attack on it, y its test accuracy.
        Up and to the left is better. Where a method has several points, each is
        labelled by what differs between them (``ε=8``, the seed, the differing
        settings, the run directory's differing part, ``e<epoch>`` for a snapshot).

    Examples
    --------
    >>> import pandas as pd
    >>> from skmia.report import privacy_utility_figure
    >>> results = pd.DataFrame({"method": ["vanilla", "vanilla", "relaxloss"],
    ...                         "attack": ["loss", "NN", "loss"],
    ...                         "test_accuracy": [0.55, 0.55, 0.57],
    ...                         "auc": [0.81, 0.78, 0.52]})
    >>> fig = privacy_utility_figure(results)
    >>> [len(line.get_xdata()) for line in fig.axes[0].lines[:2]]   # one point per model
    [1, 1]
    """
    points = _strongest_attacks(results)
    points["label"] = _point_labels(points)
    plt = _pyplot()
    fig, ax = plt.subplots(figsize=(6, 4.5))
    colors = {}
    for method, group in points.groupby("method", sort=False):
        (line,) = ax.plot(group["auc"], group["test_accuracy"], marker="o", linestyle="none",
                          label=str(method))
        colors[method] = line.get_color()
    ax.axvline(0.5, color="grey", linestyle=":", linewidth=1, label="chance AUC")
    middle = sum(ax.get_xlim()) / 2
    for _, point in points[points["label"] != ""].iterrows():
        right = point["auc"] <= middle  # each label points inwards, away from the edges
        text = ax.annotate(point["label"], (point["auc"], point["test_accuracy"]),
                           textcoords="offset points", xytext=(4 if right else -4, 4),
                           ha="left" if right else "right", fontsize=7,
                           color=colors[point["method"]])
        text.set_in_layout(False)  # a long label must not squeeze the axes
    ax.set(xlabel="AUC of the strongest attack", ylabel="test accuracy", title=title)
    ax.legend(fontsize=7, loc="best")
    _literal(fig).tight_layout()
    return fig


#: the columns that tell models apart, in the order their labels name them
_MODEL_KEYS = ("run", "dataset", "model", "method", "seed", "epsilon", "settings",
               "snapshot_epoch")


def _strongest_attacks(results):
    """One row per model: its test accuracy and the highest AUC of any attack on it.

    Models are told apart by the columns of :data:`_MODEL_KEYS` that are present
    (``run``, ``dataset``, ``model``, ``method``, ``seed``, ``epsilon``, ``settings``,
    ``snapshot_epoch``); ``attack`` names the strongest.
    """
    missing = [c for c in ("method", "test_accuracy", "auc") if c not in results]
    if missing:
        raise ValueError(f"results lack the column(s) {', '.join(missing)}")
    rows = results.dropna(subset=["auc"]).reset_index(drop=True)
    if rows.empty:
        raise ValueError("results hold no attack with an AUC")
    keys = [c for c in _MODEL_KEYS if c in rows]
    best = rows.loc[rows.groupby(keys, dropna=False, sort=False)["auc"].idxmax()]
    columns = [*keys, *(["attack"] if "attack" in best else []), "test_accuracy", "auc"]
    return best[columns].reset_index(drop=True)


def _point_labels(points):
    """Per point, what tells it apart from the other points of its method: ``ε=…``, the
    seed, the differing settings, the differing part of the run directory, ``e<epoch>``
    (empty where a method has one point)."""
    labels = [[] for _ in range(len(points))]
    for _, group in points.groupby("method", sort=False):
        if len(group) < 2:
            continue
        for key in ("epsilon", "seed", "settings", "run", "snapshot_epoch"):
            if key not in group or group[key].astype(str).nunique(dropna=False) < 2:
                continue
            if key == "settings" and len({tuple(labels[i]) for i in group.index}) == len(group):
                continue  # told apart already: the settings' text would only crowd the plot
            texts = (_distinct_parts(group[key].astype(str).tolist()) if key == "run"
                     else [_key_text(key, v) for v in group[key]])
            for i, text in zip(group.index, texts, strict=True):
                if text:
                    short = text if len(text) <= 40 else text[:39] + "\N{HORIZONTAL ELLIPSIS}"
                    labels[i].append(short)
    return [", ".join(parts) for parts in labels]


def _key_text(key, value):
    if value is None or _isnan(value) or value == "":
        return ""
    if key == "epsilon":
        return f"\N{GREEK SMALL LETTER EPSILON}={value:.3g}"
    if key == "seed":
        return f"seed {int(value)}"
    if key == "snapshot_epoch":
        return f"e{int(value)}"
    return str(value)


def _distinct_parts(paths):
    """The paths without the folders they all share at the start and at the end
    (``a/x/location/dpsgd/seed1000`` and ``b/location/dpsgd/seed1000`` -> ``a/x``, ``b``)."""
    from pathlib import PurePath

    parts = [PurePath(p).parts for p in paths]
    head = 0
    while all(len(p) > head + 1 for p in parts) and len({p[head] for p in parts}) == 1:
        head += 1
    tail = 0
    while (all(len(p) > head + tail + 1 for p in parts)
           and len({p[len(p) - 1 - tail] for p in parts}) == 1):
        tail += 1
    return [str(PurePath(*p[head:len(p) - tail])) for p in parts]


def _isnan(value):
    try:
        return bool(np.isnan(value))
    except TypeError:
        return False


def training_curves_figure(history, *, title=None):
    """The losses of a training per epoch, and its accuracies where they were measured,
    from a skorch history (``history.json``).

    Parameters
    ----------
    history : list of dict
        One dict per epoch, as skorch's ``net.history`` and a run's ``history.json``
        hold it. Every numeric key ending in ``_loss`` (``train_loss``, ``valid_loss``
        when the net had a validation set, AdvReg's ``inference_loss``) is drawn on the
        left axis. Where an epoch records ``train_objective`` (RelaxLoss alternates
        ``|CE - alpha|`` and ``CE, or flattening below alpha``, two objectives not on
        one scale), ``train_loss`` is drawn as one series per objective instead of one
        sawtooth. Every numeric key ending in ``_acc`` or ``_accuracy`` (``valid_acc``:
        the accuracy per epoch on the validation rows of
        :class:`~skmia.defenses.ValidationData`, a test accuracy when those are held-out
        test rows) is drawn dashed on a right axis from 0 to 1, at the epochs where it
        was measured.
    title : str, default=None
        Figure title.

    Returns
    -------
    fig : matplotlib.figure.Figure
        ``fig.axes[0]`` the losses; ``fig.axes[1]`` the accuracies, when there are any.

    Examples
    --------
    >>> from skmia.report import training_curves_figure
    >>> history = [{"epoch": 1, "train_loss": 0.2, "train_objective": "|CE - alpha|"},
    ...            {"epoch": 2, "train_loss": 0.9, "train_objective": "CE"},
    ...            {"epoch": 3, "train_loss": 0.1, "train_objective": "|CE - alpha|",
    ...             "valid_acc": 0.5}]
    >>> fig = training_curves_figure(history)
    >>> [line.get_label() for line in fig.axes[0].lines]
    ['train_loss (|CE - alpha|)', 'train_loss (CE)']
    >>> [line.get_label() for line in fig.axes[1].lines]
    ['valid_acc']
    """
    history = list(history)
    losses = _numeric_keys(history, ("_loss",))
    if not losses:
        raise ValueError("the history holds no loss (no numeric key ending in '_loss')")
    losses.sort(key=lambda k: (k != "train_loss", k != "valid_loss", k))
    accuracies = _numeric_keys(history, ("_acc", "_accuracy"))
    plt = _pyplot()
    from matplotlib.ticker import MaxNLocator

    fig, ax = plt.subplots(figsize=(6, 4))
    for label, epochs, values in _loss_series(history, losses):
        ax.plot(epochs, values, marker="." if len(values) < 30 else None, label=label)
    handles = ax.get_legend_handles_labels()
    if accuracies:
        right = ax.twinx()
        for key in accuracies:
            epochs, values = _series(history, key)
            right.plot(epochs, values, linestyle="--", marker="." if len(values) < 30 else None,
                       label=key, color=f"C{(len(ax.lines) + accuracies.index(key)) % 10}")
        right.set(ylabel="accuracy", ylim=(0, 1))
        more = right.get_legend_handles_labels()
        handles = (handles[0] + more[0], handles[1] + more[1])
    ax.xaxis.set_major_locator(MaxNLocator(integer=True))
    ax.set(xlabel="epoch", ylabel="loss", title=title)
    ax.legend(*handles, fontsize=7)
    _literal(fig).tight_layout()
    return fig


def _numeric_keys(history, endings):
    """The keys, in order of appearance, ending in one of ``endings`` with a number."""
    keys = []
    for epoch in history:
        for key, value in epoch.items():
            if (key.endswith(endings) and key not in keys and _is_number(value)):
                keys.append(key)
    return keys


def _is_number(value):
    return isinstance(value, (int, float, np.number)) and not isinstance(value, bool)


def _series(history, key, objective=None):
    """The epochs and values of ``key`` (where ``train_objective`` is ``objective``,
    when given)."""
    rows = [(row.get("epoch", i + 1), row[key]) for i, row in enumerate(history)
            if _is_number(row.get(key))
            and (objective is None or row.get("train_objective") == objective)]
    return [e for e, _ in rows], [v for _, v in rows]


def _loss_series(history, losses):
    """``(label, epochs, values)`` of each loss; ``train_loss`` split by objective."""
    objectives = []
    for row in history:
        objective = row.get("train_objective")
        if isinstance(objective, str) and objective not in objectives:
            objectives.append(objective)
    for key in losses:
        if key == "train_loss" and objectives:
            for objective in objectives:
                yield (f"train_loss ({objective})", *_series(history, key, objective))
        else:
            yield (key, *_series(history, key))


def figure_png(fig):
    """The figure as PNG bytes (the figure is closed)."""
    plt = _pyplot()
    buffer = io.BytesIO()
    _literal(fig)
    fig.savefig(buffer, format="png", dpi=120)
    plt.close(fig)
    return buffer.getvalue()
