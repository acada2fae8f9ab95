"""A self-contained HTML page of run directories: settings, results and figures.

The page needs nothing beyond itself: the CSS is inline and every image is a PNG in a
``data:`` URI. The ROC curves and loss histograms are the run's own ``attack/roc.png``
and ``attack/loss_hist.png`` (a run keeps no per-record scores to draw them again); the
privacy-utility plot and the training curves are drawn from ``results.json`` and
``history.json``. Every file is read through :class:`skmia._rundir.RunDirectory`: no
link is followed and only regular files are read, so the page never embeds a file from
outside the runs.
"""

import base64
import html
import math
import os
from dataclasses import dataclass, field
from numbers import Integral, Real
from pathlib import Path

import numpy as np
import pandas as pd

from .. import __version__
from .._rundir import (
    ATTACK,
    COMPLETE,
    CONTEXT_COLUMNS,
    HISTORY,
    HISTORY_SCHEMA,
    LOSS_HIST_PNG,
    PARAMS,
    REFERENCE,
    RESULT_COLUMNS,
    ROC_PNG,
    SCORES_NPZ,
    Int,
    Opt,
    RunDirectory,
    atomic_write_text,
    escape_text,
    find_folders,
    read_scores,
)
from ._audit import audit_sections, find_audits
from ._audit_page import audit_header
from ._dp import dp_audit_sections, find_dp_audits
from ._plots import (
    _point_labels,
    _strongest_attacks,
    figure_png,
    loss_histogram_figure,
    privacy_utility_figure,
    roc_figure,
    training_curves_figure,
)
from ._tables import shown_table, unresolved_note

__all__ = ["html_report", "write_html_report"]

_PNG_MAGIC = b"\x89PNG\r\n\x1a\n"
# columns of the results that the run's settings table already shows
_CONTEXT_COLUMNS = ("method", *CONTEXT_COLUMNS)
_INTEGER_COLUMNS = tuple(
    name for name, c in RESULT_COLUMNS.items()
    if isinstance(c.spec.spec if isinstance(c.spec, Opt) else c.spec, Int)
)
_MISSING = "\N{EM DASH}"
_CSS = """
body { font-family: sans-serif; margin: 2em auto; max-width: 75em; color: #222;
       padding: 0 1em; }
h1 { font-size: 1.6em; } h2 { font-size: 1.3em; border-bottom: 1px solid #ccc;
     margin-top: 2em; } h3 { font-size: 1.05em; }
table { border-collapse: collapse; margin: 0.5em 0 1em; font-size: 0.9em; }
th, td { border: 1px solid #ccc; padding: 0.2em 0.6em; text-align: left; }
th { background: #f3f3f3; } td.num { text-align: right; font-variant-numeric: tabular-nums; }
table.settings th { width: 12em; }
figure { display: inline-block; margin: 0.5em 1em 0.5em 0; vertical-align: top; }
figure img { max-width: 36em; border: 1px solid #eee; }
figcaption { font-size: 0.85em; color: #555; max-width: 36em; }
.status-attacked { color: #1a6; } .status-not-attacked, .status-unfinished { color: #b50; }
p.path, code { font-family: monospace; font-size: 0.9em; color: #555; }
details { margin: 0.5em 0 1em; }
"""


@dataclass
class _Run:
    folder: Path
    params: dict
    trained: bool
    training: dict = field(default_factory=dict)
    history: list | None = None
    results: pd.DataFrame | None = None
    attack: dict = field(default_factory=dict)
    bank: dict | None = None
    files: RunDirectory | None = None  # the folder, walked from the report's root

    @property
    def status(self):
        if not self.trained:
            return "unfinished"
        return "attacked" if self.results is not None else "not attacked"

    @property
    def title(self):
        p = self.params
        parts = [p.get("dataset"), p.get("model"), p.get("method")]
        name = " / ".join(str(x) for x in parts if x is not None)
        return f"{name} / seed {p.get('seed')}"


def html_report(paths):
    """The HTML page of every run directory below ``paths``, as a string.

    Parameters
    ----------
    paths : path-like or iterable of path-like
        Run directories, or folders holding them at any depth. A run directory is a
        folder with a ``params.json`` of a target model (shadow models and banks of
        reference models are shown with the run they belong to).

    Returns
    -------
    page : str
        One self-contained HTML document (inline CSS, PNG images in ``data:`` URIs, no
        link to anything outside it): a summary of the runs; the privacy-utility plot of
        each dataset where several methods were attacked (test accuracy against the AUC
        of the strongest attack); then per run its settings (``params.json``), its
        results (``attack/results.csv`` as :func:`shown_table` shows it: numbers to 4
        decimals, each TPR with its 95 % Clopper-Pearson interval, ``—`` where there is
        none), its log-log ROC curves with 95 % Clopper-Pearson bands and its loss
        histograms (``attack/roc.png``, ``attack/loss_hist.png``) and its training
        curves (``history.json``). A run without finished attack results is listed as
        "not attacked", one whose training did not finish as "unfinished".
        Each finished DP audit (``skmia audit-dp``) below ``paths`` gets a section: what
        it audited, the claimed ε against each lower bound with its verdict, and the plot
        of both over the noise multipliers.

    Raises
    ------
    FileNotFoundError
        A path does not exist.
    ValueError
        No run directory is below ``paths``, or one of their JSON files is corrupt.

    See Also
    --------
    write_html_report : write the page to a file.
    collect_results : the same results as one table.
    """
    return _report(paths)[0]


def _report(paths):
    """``(page, missing)``: the page, and why each figure it lacks is missing."""
    paths = [paths] if isinstance(paths, (str, os.PathLike)) else list(paths)
    runs = _find_runs(paths)
    audits = find_audits(paths)
    dp_audits = find_dp_audits(paths)
    if not runs and not audits and not dp_audits:
        raise ValueError(
            "no run directories (folders with the params.json of a target model) or "
            "finished audit directories below " + ", ".join(repr(str(p)) for p in paths)
        )
    missing = []
    return _page(runs, paths, audits, missing, dp_audits), missing


def write_html_report(paths, out_file):
    """Write :func:`html_report` of ``paths`` to ``out_file`` (atomically, UTF-8).

    Returns
    -------
    out_file : pathlib.Path
    """
    return _write_report(paths, out_file)[0]


def _write_report(paths, out_file):
    """Write the page; ``(out_file, missing)``: why each figure it lacks is missing (a
    damaged or refused file: ``skmia report --html`` then exits with status 1)."""
    text, missing = _report(paths)
    out_file = Path(out_file)
    atomic_write_text(out_file, text)
    return out_file, missing


# ------------------------------------------------------------------------ reading runs


def _find_runs(paths):
    runs, seen = [], set()
    for root in paths:
        root = Path(root)
        if not root.exists():
            raise FileNotFoundError(f"{str(root)!r} does not exist")
        for folder in find_folders(root, PARAMS):
            if folder.resolve() in seen:
                continue
            files = RunDirectory.below(root, folder)
            params = files.read_params()
            if params["partition"] != "target":
                continue
            seen.add(folder.resolve())
            runs.append(_read_run(folder, params, files))
    return runs


def _read_run(folder, params, files):
    trained = files.is_complete()
    run = _Run(folder=folder, params=params, trained=trained, files=files)
    if trained:
        run.training = files.read_json(COMPLETE, spec=dict)
    if files.exists(HISTORY):
        run.history = files.read_json(HISTORY, spec=HISTORY_SCHEMA)
    if files.is_complete(ATTACK):
        run.attack = files.read_json(ATTACK, COMPLETE, spec=dict)
        run.results = files.read_results()
    if files.is_complete(REFERENCE):
        run.bank = files.read_json(REFERENCE, COMPLETE, spec=dict)
    return run


def _png(run, name):
    """``(bytes, None)`` of the run's ``attack/<name>``, or ``(None, why not)`` when it is
    missing, not a regular file, or not a PNG."""
    try:
        data = run.files.read_bytes(ATTACK, name)
    except FileNotFoundError:
        return None, f"{ATTACK}/{name} is missing"
    except (OSError, ValueError) as exc:
        return None, f"{ATTACK}/{name} is missing or unreadable ({exc})"
    if not data.startswith(_PNG_MAGIC):
        return None, f"{ATTACK}/{name} is missing or not a PNG"
    return data, None


def _folder_says(run):
    """What the run's folder says the scores hold: ``(n_records, attack names)``, each
    None where it says nothing (a model audit's ``params.json`` gives the records, its
    results the attacks)."""
    p = run.params
    counts = [p.get("n_members"), p.get("n_nonmembers")]
    n_records = (sum(counts) if all(isinstance(c, int) and not isinstance(c, bool)
                                    and c >= 0 for c in counts) else None)
    names = None
    if run.results is not None and "attack" in run.results:
        names = [str(a) for a in run.results["attack"]]
    return n_records, names


def _figures_from_scores(run, title):
    """``({file name: PNG bytes}, why not)`` drawn from the run's ``attack/scores.npz``
    (what a model audit writes instead of figures): read within the bounds its folder
    gives (:func:`skmia._rundir.read_scores`); empty, and why, when it cannot be."""
    try:
        data = run.files.read_bytes(ATTACK, SCORES_NPZ)
    except FileNotFoundError:
        return {}, None
    except (OSError, ValueError) as exc:
        return {}, f"{ATTACK}/{SCORES_NPZ} cannot be read ({exc})"
    n_records, names = _folder_says(run)
    try:
        scores, membership, loss = read_scores(data, n_records=n_records, names=names)
    except ValueError as exc:
        return {}, f"{ATTACK}/{SCORES_NPZ} was refused ({exc})"
    return {ROC_PNG: figure_png(roc_figure(scores, membership, title=title,
                                           confidence_level=0.95)),
            LOSS_HIST_PNG: figure_png(loss_histogram_figure(loss, membership, title=title))
            }, None


# ---------------------------------------------------------------------------- writing


def _e(value):
    return html.escape(escape_text(value), quote=True)


def _missing(value):
    if value is None:
        return True
    try:
        return math.isnan(value)
    except TypeError:
        return False


def _cell(value, column=None):
    """``(text, is_number)`` of a table cell."""
    if _missing(value):
        return _MISSING, False
    if isinstance(value, (bool, np.bool_)):
        return str(bool(value)), False
    if isinstance(value, Integral):
        return str(int(value)), True
    if isinstance(value, Real):
        if column in _INTEGER_COLUMNS and float(value).is_integer():
            return str(int(value)), True
        return f"{float(value):.4f}", True
    return str(value), False


def _table(columns, rows, css_class, attrs=""):
    head = "".join(f"<th>{_e(c)}</th>" for c in columns)
    body = []
    for row in rows:
        cells = []
        for value, column in zip(row, columns, strict=True):
            if isinstance(value, _Html):
                cells.append(f"<td>{value}</td>")
                continue
            text, number = _cell(value, column)
            cells.append(f'<td class="num">{_e(text)}</td>' if number else f"<td>{_e(text)}</td>")
        body.append("<tr>" + "".join(cells) + "</tr>")
    return (f'<table class="{_e(css_class)}"{attrs}>\n<thead><tr>{head}</tr></thead>\n<tbody>\n'
            + "\n".join(body) + "\n</tbody>\n</table>\n")


class _Html(str):
    """Markup already escaped, put in a table cell as it is."""


def _figure(png, alt, caption, css_class):
    data = base64.b64encode(png).decode("ascii")
    return (f'<figure class="{_e(css_class)}"><img src="data:image/png;base64,{data}" '
            f'alt="{_e(alt)}"><figcaption>{_e(caption)}</figcaption></figure>\n')


def _page(runs, paths, audits=(), missing=None, dp_audits=()):
    n_attacked = sum(r.status == "attacked" for r in runs)
    missing = [] if missing is None else missing
    below = _e(", ".join(str(p) for p in paths))
    parts = [
        "<!DOCTYPE html>\n<html lang=\"en\">\n<head>\n<meta charset=\"utf-8\">\n",
        f'<meta name="generator" content="skmia {_e(__version__)}">\n',
        "<title>skmia report</title>\n<style>", _CSS, "</style>\n</head>\n<body>\n",
        "<h1>skmia report</h1>\n",
        f"<p>{len(runs)} run(s) below {below}, "
        f"{n_attacked} attacked; made by skmia {_e(__version__)}.</p>\n" if runs else
        f"<p>Made by skmia {_e(__version__)}.</p>\n",
        f"<p>{len(dp_audits)} DP audit(s) below {below}.</p>\n" if dp_audits else "",
        audit_header(audits, escape=_e),
        _summary(runs) if runs else "",
        _privacy_utility(runs) if runs else "",
        audit_sections(audits, table_html=_table, figure_html=_figure, escape=_e),
        dp_audit_sections(dp_audits, table_html=_table, figure_html=_figure, escape=_e,
                          missing=missing),
        *(_run_section(i, run, missing)
          for i, run in enumerate(runs, start=1)),
        "</body>\n</html>\n",
    ]
    return "".join(parts)


def _final_rows(results):
    """The rows of the trained model itself (not of an early-stopping snapshot)."""
    if "snapshot_epoch" not in results:
        return results
    final = results[results["snapshot_epoch"].isna()]
    return final if not final.empty else results


def _differing_settings(runs):
    """Per run, the estimator parameters whose values differ between the runs."""
    settings = [r.params.get("estimator_params") or {} for r in runs]
    keys = sorted({k for s in settings for k in s})
    differ = [k for k in keys if len({s.get(k) for s in settings}) > 1]
    return [", ".join(f"{k}={s[k]}" for k in differ if k in s) for s in settings]


def _summary(runs):
    columns = ["run", "dataset", "model", "method", "seed", "status", "test_accuracy",
               "strongest attack", "auc", "settings that differ"]
    rows = []
    for i, (run, differ) in enumerate(zip(runs, _differing_settings(runs), strict=True),
                                      start=1):
        accuracy = attack = auc = None
        if run.results is not None and "auc" in run.results:
            try:
                best = _strongest_attacks(_final_rows(run.results)).iloc[0]
                accuracy, attack, auc = best["test_accuracy"], best["attack"], best["auc"]
            except ValueError:
                pass
        p = run.params
        rows.append([
            _Html(f'<a href="#run-{i}">{i}</a>'), p.get("dataset"), p.get("model"),
            p.get("method"), p.get("seed"),
            _Html(f'<span class="status-{_e(run.status.replace(" ", "-"))}">'
                  f"{_e(run.status)}</span>"),
            accuracy, attack, auc, differ or None,
        ])
    return "<h2>Runs</h2>\n" + _table(columns, rows, "runs")


def _privacy_utility(runs):
    attacked = [(r, d) for r, d in zip(runs, _differing_settings(runs), strict=True)
                if r.results is not None and not r.results.empty]
    if not attacked:
        return ""
    # the run directory and its differing settings tell apart runs whose results agree
    # on dataset, method and seed (two --out roots, two epsilons of DP-SGD)
    results = pd.concat([r.results.assign(run=str(r.folder), settings=d)
                         for r, d in attacked], ignore_index=True)
    if "model" not in results:
        results["model"] = None
    out = []
    for (dataset, model), group in results.groupby(["dataset", "model"], dropna=False,
                                                   sort=False):
        if group["run"].nunique() < 2:
            continue
        name = str(dataset) if _missing(model) else f"{dataset} / {model}"
        try:
            points = _strongest_attacks(group)
            points["label"] = _point_labels(points)
            png = figure_png(privacy_utility_figure(group, title=name))
        except ValueError:
            continue
        out.append(f"<h3>{_e(name)}</h3>\n")
        out.append(_figure(
            png, f"privacy-utility plot of {name}",
            "Test accuracy against the AUC of the strongest attack on each model: one point "
            "per run (or per early-stopping snapshot, labelled e<epoch>), labelled by what "
            "differs between the runs of a method.",
            "privacy-utility"))
        columns = [c for c in ("method", "label", "seed", "snapshot_epoch", "attack",
                               "test_accuracy", "auc", "run")
                   if c in points and points[c].map(lambda v: not _missing(v) and v != "").any()]
        out.append(_table(columns, points[columns].itertuples(index=False),
                          "privacy-utility", f' data-dataset="{_e(name)}"'))
    if not out:
        return ""
    return "<h2>Privacy\N{EN DASH}utility</h2>\n" + "".join(out)


def _settings_rows(run):
    p = run.params
    rows = [(key, p.get(key)) for key in ("dataset", "model", "method", "seed", "partition",
                                           "estimator")]
    if run.history:
        rows.append(("epochs trained", len(run.history)))
    if run.training:
        rows.append(("training rows", run.training.get("rows")))
        rows.append(("training seconds", run.training.get("seconds")))
    if run.results is not None and "shadow_method" in run.results:
        methods = run.results["shadow_method"].dropna().unique()
        rows.append(("shadow method", ", ".join(str(m) for m in methods) or None))
    if run.attack.get("shadow"):
        rows.append(("shadow run", run.attack["shadow"]))
    if run.bank is not None:
        rows.append(("reference models", run.bank.get("n_models")))
    rows.append(("data home", p.get("data_home")))
    rows.append(("skmia version", p.get("skmia_version")))
    return rows


def _attack_figures(run, missing):
    """The run's ROC curves and loss histograms, or a line saying why each is missing
    (also added to ``missing``)."""
    title = run.title
    (roc, roc_why), (hist, hist_why) = _png(run, ROC_PNG), _png(run, LOSS_HIST_PNG)
    drawn, why = ({}, None) if roc is not None and hist is not None else (
        _figures_from_scores(run, title))
    out = []
    for name, png, own, alt, caption, css in (
            (ROC_PNG, roc, roc_why, f"ROC curves of {title}",
             "ROC curves of every attack on the target model (log-log), with pointwise "
             "95 % Clopper\N{EN DASH}Pearson bands of the true-positive rate.", "roc"),
            (LOSS_HIST_PNG, hist, hist_why, f"loss histograms of {title}",
             "Cross-entropy loss of the target model on its members and non-members.",
             "loss-hist")):
        png = png or drawn.get(name)
        if png is not None:
            out.append(_figure(png, alt, caption, css))
            continue
        reason = "; ".join(r for r in (own, why) if r)
        missing.append(f"{run.folder}: {reason}")
        out.append(f'<p class="missing">{_e(reason)}: this figure is not shown</p>\n')
    return out


def _run_section(i, run, missing):
    p = run.params
    attrs = f' data-run="{_e(run.folder)}"'
    out = [f'<section class="run" id="run-{i}"{attrs}>\n<h2>{i}. {_e(run.title)} '
           f'<span class="status-{_e(run.status.replace(" ", "-"))}">({_e(run.status)})'
           f"</span></h2>\n<p class=\"path\">{_e(run.folder)}</p>\n<h3>Settings</h3>\n"]
    body = "".join(
        f"<tr><th>{_e(k)}</th><td>{_e(_cell(v)[0])}</td></tr>\n" for k, v in _settings_rows(run)
    )
    out.append(f'<table class="settings"{attrs}>\n<tbody>\n{body}</tbody>\n</table>\n')
    estimator_params = p.get("estimator_params") or {}
    if estimator_params:
        out.append("<details><summary>estimator parameters</summary>\n")
        out.append(_table(["parameter", "value"], sorted(estimator_params.items()),
                          "estimator-params", attrs))
        out.append("</details>\n")

    out.append("<h3>Results</h3>\n")
    if run.results is None:
        out.append(f'<p class="not-attacked">{_e(run.status)}: no finished attack results '
                   "(attack/complete.json)</p>\n")
    else:
        shown = shown_table(run.results, exclude=_CONTEXT_COLUMNS)
        columns = list(shown.columns)
        out.append(_table(columns, shown.itertuples(index=False), "results", attrs))
        note = unresolved_note(shown)
        if note:
            out.append(f'<p class="note">{_e(note)}</p>\n')
        out.extend(_attack_figures(run, missing))

    out.append("<h3>Training</h3>\n")
    png = None
    if run.history:
        try:
            png = figure_png(training_curves_figure(run.history, title=run.title))
        except ValueError:
            png = None
    if png is not None:
        out.append(_figure(png, f"training curves of {run.title}",
                           "Loss per epoch (history.json), and accuracy where measured.",
                           "training-curves"))
    else:
        out.append('<p class="missing">no training history with a loss (history.json)</p>\n')
    out.append("</section>\n")
    return "".join(out)
