"""Attacking a finished target run with a finished shadow run: ``<run>/attack/``.

The results are rows of :data:`skmia._rundir.RESULT_COLUMNS`, written as
``attack/results.{csv,json}`` with ``roc.png`` and ``loss_hist.png``, then
``complete.json``. They are written to a staging folder first and put in place of the
previous ``attack/`` only once complete, so an interrupted or failed attack keeps the
previous results.
"""

import signal
from pathlib import Path

import numpy as np

from .._parallel import torch_threads
from .._rundir import (
    ATTACK,
    ATTACK_STAGING,
    INTERVAL_SUFFIXES,
    LOSS_HIST_PNG,
    MODEL_JSON,
    PARAMS,
    REFERENCE,
    ROC_PNG,
    SHADOW,
    RunDirectory,
    result_fprs,
    tpr_column,
)
from .._settings import (
    check_calibrated,
    check_device,
    check_n_jobs,
    check_threads,
    refuse_removed,
)
from ._checkpoint import RunInterrupted, _Stop, stopping_on_signals
from ._run_bank import reference_bank
from ._run_lock import run_lock
from ._train import _note, load_run

__all__ = ["attack"]



def attack(target_dir, shadow_dir, *, white_box=True, data_home=None, device=None,
           verbose=1, shadow_method=None, attacks=(), reference_models=None, n_jobs=1,
           threads=None, **removed):
    """Attack a finished target run with a finished shadow run; write ``attack/``.

    Parameters
    ----------
    target_dir, shadow_dir : path-like
        Finished run directories of the target and of the shadow model.
    white_box : bool, default=True
        Also run the gradient-norm attacks.
    data_home : path-like, default=None
        Where the dataset is (default: the run's).
    device : str, default=None
        Torch device to load the models on (default: the one they trained on).
    verbose : int, default=1
        0: no progress bars.
    shadow_method : str, default=None
        How the results name the shadow's method (default: the shadow run's).
    attacks : sequence of str, default=()
        Attacks calibrated without the shadow, by the names of
        :data:`skmia.attacks.CALIBRATED_ATTACKS` (``lira``, ``rmia``, ...), run after the
        reference code's ones, on the target's members and non-members.
    reference_models : int, default=None
        Size of the bank of reference models that ``lira``, ``rmia`` and ``attack_r``
        calibrate against: trained like the target, on the target's members and
        non-members, saved in ``TARGET/reference/``, and reused (or grown) by later
        calls. Required by those attacks.
    n_jobs : int, default=1
        Reference models trained at the same time (one torch thread each).
    threads : int, default=None
        Torch threads of the signals and attacks in this process; None leaves torch's
        setting as it is.

    Returns
    -------
    results : pandas.DataFrame
        One row per attack (and per snapshot for early stopping), columns
        :data:`skmia._rundir.RESULT_COLUMNS`. The previous results of the run stay in
        place until these are complete.
    """
    refuse_removed("attack", removed)  # jobs=, quiet=: skmia 0.3 removed them
    attacks = tuple(attacks)
    needs_bank = check_calibrated(attacks, reference_models)
    check_n_jobs(n_jobs)
    if threads is not None:
        check_threads(threads)  # before the lock: a bad value leaves no folder behind
    if device is not None:
        check_device(device)
    # the target's folder is locked while attack/ (and reference/) are written
    with run_lock(target_dir, "attack"), stopping_on_signals(), torch_threads(threads):
        try:
            return _attack(target_dir, shadow_dir, white_box, data_home, device,
                           not verbose, shadow_method, attacks,
                           needs_bank and reference_models, n_jobs)
        except RunInterrupted:
            raise
        except (_Stop, KeyboardInterrupt) as stop:
            raise RunInterrupted(
                f"interrupted while attacking {str(target_dir)!r}: its previous attack/ "
                "results are kept as they were; reference/ keeps the reference models of "
                "the rounds that finished (its complete.json says how many). Run the same "
                "command again to attack it (the trained models are kept, the bank grows "
                "from there)",
                getattr(stop, "signum", signal.SIGINT)) from None


def _attack(target_dir, shadow_dir, white_box, data_home, device, quiet, shadow_method,
            attacks, reference_models, jobs):
    """The steps of :func:`attack`: load and check, signals, attacks, rows, files."""
    # a run's saved split, read as the split module wrote it (not public API)
    from ..model_selection._split import load_split
    from ..report import figure_png

    run = RunDirectory(target_dir)
    for name in (ATTACK, REFERENCE):  # refuse a link before any work
        run.path(name)
    run.remove_tree(ATTACK_STAGING)  # left by an interrupted attack
    target, params, shadow, shadow_params = _load_pair(target_dir, shadow_dir, device)
    split = load_split(params["dataset"], params["seed"],
                       data_home if data_home is not None else params.get("data_home"))
    _check_model_fits_split(target, params, split, target_dir)
    _check_model_fits_split(shadow, shadow_params, split, shadow_dir)
    bank = None
    if reference_models:
        bank = reference_bank(target_dir, target, split, reference_models, n_jobs=jobs,
                              verbose=int(not quiet))
    context = {
        "dataset": params["dataset"], "model": params["model"], "method": params["method"],
        "seed": params["seed"], "shadow_method": shadow_method or shadow_params["method"],
    }
    rows, figures = _attack_rows(target, shadow, split, white_box, params, context, attacks,
                                 bank, quiet)
    kept = _rows_not_recomputed(run, rows, context)
    if kept and not quiet:
        _note(f"{str(run.path(ATTACK))!r}: kept {len(kept)} row(s) of its previous results "
              "that this call did not recompute ("
              + "; ".join(dict.fromkeys(row["attack"] for row in kept)) + ")")
    results = run.write_results(rows + kept, folder=ATTACK_STAGING)
    for name, fig in figures.items():
        run.write_bytes(ATTACK_STAGING, name, data=figure_png(fig))
    run.mark_complete(ATTACK_STAGING, document={"target": str(target_dir),
                                          "shadow": str(shadow_dir)})
    run.replace_folder(ATTACK_STAGING, ATTACK)
    results.attrs["folder"] = str(run.path(ATTACK))
    results.attrs["kept"] = len(kept)
    return results


def _rows_not_recomputed(run, rows, context):
    """The rows of the run's previous ``attack/`` results whose attack (on the same
    model or snapshot) ``rows`` do not hold: a call with fewer attacks (``skmia compare``
    after ``skmia attack --attacks all``) keeps them instead of dropping them. A training
    clears ``attack/``, so previous results are of the model attacked now."""
    if not run.is_complete(ATTACK):
        return []
    try:
        previous = run.read_results()
    except ValueError as exc:  # written by an older skmia: nothing readable to keep
        _note(f"the previous results are replaced, they cannot be read: {exc}")
        return []
    done = {(row["attack"], _epoch_key(row["snapshot_epoch"])) for row in rows}
    same_run = np.ones(len(previous), dtype=bool)
    for key in ("dataset", "method", "seed"):
        same_run &= previous[key].to_numpy() == context[key]
    kept = previous[same_run].astype(object).where(previous[same_run].notna(), None)
    return [row for row in kept.to_dict("records")
            if (row["attack"], _epoch_key(row["snapshot_epoch"])) not in done]


def _epoch_key(epoch):
    return None if epoch is None or epoch != epoch else int(epoch)


def _load_pair(target_dir, shadow_dir, device):
    """The target and shadow models and their ``params.json``, checked to belong together."""
    target_dir, shadow_dir = Path(target_dir), Path(shadow_dir)
    if target_dir.resolve() == shadow_dir.resolve():
        raise ValueError(
            f"the target and the shadow are the same folder, {str(target_dir)!r}: the shadow "
            f"run of a target is its {SHADOW}/ folder ({str(target_dir / SHADOW)!r})"
        )
    target, params = load_run(target_dir, device=device)
    shadow, shadow_params = load_run(shadow_dir, device=device)
    files = f"{str(target_dir / PARAMS)!r} and {str(shadow_dir / PARAMS)!r}"
    if params["partition"] != "target":
        raise ValueError(
            f"{str(target_dir)!r} holds a shadow run ({str(target_dir / PARAMS)!r} "
            "says partition 'shadow'): give the target's folder as --target (a run trained "
            "with --mode defense)"
        )
    if shadow_params["partition"] != "shadow":
        raise ValueError(
            f"{str(shadow_dir)!r} holds a target run ({str(shadow_dir / PARAMS)!r} "
            "says partition 'target'): give a shadow run as --shadow, the shadow/ folder of "
            "a run trained with --mode shadow"
        )
    for key in ("dataset", "seed", "model"):
        if params[key] != shadow_params[key]:
            raise ValueError(
                f"target and shadow runs differ in {key}: {params[key]!r} vs "
                f"{shadow_params[key]!r} ({files})"
            )
    if not np.array_equal(np.sort(target.classes_), np.sort(shadow.classes_)):
        raise ValueError(f"target and shadow models were trained on different classes "
                         f"({files})")
    return target, params, shadow, shadow_params


def _check_model_fits_split(model, params, split, folder):
    """Refuse a model of another number of features or classes than its dataset's."""
    X, y = split.target_train.X, split.target_train.y
    where = f"{str(Path(folder) / MODEL_JSON)!r} and {str(Path(folder) / PARAMS)!r}"
    shape = tuple(X.shape[1:])
    if tuple(getattr(model, "input_shape_", shape)) != shape:
        raise ValueError(
            f"{where} disagree: the model takes records of shape {model.input_shape_}, but "
            f"{params['dataset']!r} has records of shape {shape}"
        )
    classes = np.unique(np.concatenate([y, split.target_test.y]))
    if len(model.classes_) != len(classes) or not np.array_equal(np.sort(model.classes_),
                                                                 classes):
        raise ValueError(
            f"{where} disagree: the model has {len(model.classes_)} classes, but "
            f"{params['dataset']!r} has {len(classes)}"
        )


def _attack_rows(target, shadow, split, white_box, params, context, attacks, bank, quiet):
    """Result rows of every attack on the target (and each snapshot), and the figures.

    The reference code's attacks are fitted once, on the shadow's signals, and then
    evaluated on the target and on each of its snapshots.
    """
    from tqdm.auto import tqdm

    from ..attacks import default_attacks, evaluate_fitted_attacks, membership_signals

    models = {None: target}
    if getattr(target, "snapshots_", None):
        models.update({epoch: target.snapshot(epoch) for epoch in target.snapshots_})
    estimators = default_attacks(white_box=white_box, random_state=params["seed"])
    # one bar for every step: the shadow's signals, each fit, each model's evaluations
    steps = 1 + len(estimators) + len(models) * (2 if attacks else 1)
    progress = tqdm(total=steps, desc="attack", disable=quiet, leave=False)
    fitted = _fit_on_shadow(shadow, split, white_box, estimators, progress)
    rows, figures = [], {}
    for epoch, model in models.items():
        progress.set_postfix_str("target signals" if epoch is None else f"epoch {epoch}")
        target_signals = membership_signals(
            model, split.target_train, split.target_test, white_box=white_box
        )
        parts = [evaluate_fitted_attacks(fitted, *target_signals)]
        progress.update(1)
        if attacks:
            progress.set_postfix_str(", ".join(attacks))
            parts.append(_calibrated_results(model, split, attacks, bank, params["seed"]))
            progress.update(1)
        membership = target_signals[1]
        for part, scores in parts:
            for name, row in part.iterrows():
                rows.append(_result_row(context, epoch, model, name, row, membership,
                                        scores[name]))
        if epoch is None:
            figures = _attack_figures({k: v for _, s in parts for k, v in s.items()},
                                      target_signals, params)
    progress.close()
    return rows, figures


def _fit_on_shadow(shadow, split, white_box, estimators, progress):
    """The reference code's attacks (``estimators``), each fitted on the shadow's signals."""
    from ..attacks import membership_signals

    progress.set_postfix_str("shadow signals")
    signals, membership = membership_signals(
        shadow, split.shadow_train, split.shadow_test, white_box=white_box
    )
    progress.update(1)
    fitted = {}
    for name, estimator in estimators.items():
        progress.set_postfix_str(f"fit {name}")
        fitted[name] = estimator.fit(signals, membership)
        progress.update(1)
    return fitted


def _attack_figures(scores, target_signals, params):
    from ..report import loss_histogram_figure, roc_figure

    signals, membership = target_signals
    title = f"{params['dataset']} {params['method']} seed {params['seed']}"
    return {
        ROC_PNG: roc_figure(scores, membership, title=title, confidence_level=0.95),
        LOSS_HIST_PNG: loss_histogram_figure(signals["loss"].to_numpy(), membership,
                                             title=title),
    }


def _calibrated_results(model, split, attacks, bank, seed):
    """Results and scores of the attacks calibrated without a shadow model, on
    :meth:`~skmia.model_selection.MembershipSplit.audit_pool` (the bank's pool); the
    population is the split's ``reference`` part."""
    from ..attacks import (
        calibrated_attacks,
        compute_signals,
        evaluate_calibrated_attacks,
        signal_options,
    )

    X_pool, y_pool, membership, pool_index = split.audit_pool()
    wanted = signal_options(attacks)  # the columns the attacks read
    shared = {"features": wanted["features"]}
    if bank is not None:
        shared.update(reference=bank, reference_logits=wanted["reference_logits"])
    label_only = wanted["label_only"]
    audited = compute_signals(
        model, X_pool, y_pool, label_only=label_only,
        label_only_params={"random_state": seed} if label_only else None,
        **({"pool_index": pool_index} if bank is not None else {}), **shared)
    population = compute_signals(model, split.reference.X, split.reference.y, **shared)
    return evaluate_calibrated_attacks(calibrated_attacks(attacks), audited, membership,
                                       population)




def _rates(membership, score):
    """The TPR columns of a result row with their 95 % Clopper-Pearson intervals
    (``<rate>_low``, ``<rate>_high``); NaN where the scores cannot resolve the
    rate (too few non-members, ties at the top): an unresolved rate is never printed as a
    number."""
    from ..metrics import tpr_at_fpr

    n_out = int(np.sum(membership == 0))
    columns = {}
    for fpr, max_fpr in result_fprs().items():
        name = tpr_column(fpr)
        result = tpr_at_fpr(membership, score, max_fpr=max_fpr) if n_out * max_fpr >= 1 \
            else None
        values = ((result.tpr, result.ci_low, result.ci_high)
                  if result is not None and result.resolved else (np.nan,) * 3)
        columns.update(zip((name, *(name + s for s in INTERVAL_SUFFIXES)), values,
                           strict=True))
    return columns


def _result_row(context, epoch, model, name, row, membership, score):
    """One row of :data:`~skmia._rundir.RESULT_COLUMNS`."""
    return {
        **{k: context[k] for k in ("dataset", "model", "method", "seed")},
        "snapshot_epoch": epoch,
        "epsilon": getattr(model, "epsilon_", None),
        "attack": name,
        "train_accuracy": row["target_train_accuracy"],
        "test_accuracy": row["target_test_accuracy"],
        "accuracy": row["accuracy"],
        "auc": row["auc"],
        **_rates(membership, score),
        "shadow_method": context["shadow_method"],
    }
