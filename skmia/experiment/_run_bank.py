"""The bank of reference models of a target run: trained, reused, grown, and checked.

The bank lives in ``<run>/reference/`` (``model.json``, ``model.safetensors``,
``complete.json``). A bank found there is used only when it is the bank this target
would train, every time (not only when it grows): trained on the target's pool (its
digest), with the target's settings and epochs (the bank's own ``model.json``, each of
its models, and its ``complete.json``), with the masks and seeds its base seed gives.
"""

import time

from .. import _registry
from .._rundir import COMPLETE, REFERENCE, Int, MapOf, RunDirectory
from ..io import load_estimator, save_estimator
from ..model_selection import (
    ReferenceModels,
    bank_bytes,
    batching_refusal,
    check_bank_draws,
    check_bank_memory,
    mask_block,
    unfinished_models,
)
from ._checkpoint import RunInterrupted
from ._config import settings

__all__ = ["reference_bank"]

_COMPLETE_SPEC = {"n_models": Int(0), "seconds": float, "estimator_params": MapOf(str)}


def reference_bank(target_dir, target, split, n_models, *, n_jobs=1, verbose=0):
    """The bank of reference models of a target run: trained, reused or grown.

    The bank clones the target (its method and settings, a fresh seed per model from
    the run's seed) and trains on the target's members and non-members
    (:meth:`~skmia.model_selection.MembershipSplit.audit_pool`), so that every audited
    record is IN half of the models. It is saved in ``TARGET/reference/`` with the run.
    A finished bank of at least ``n_models`` models is reused (its first ``n_models``
    when larger); a smaller one is grown with ``warm_start``, keeping its models. The
    models train a few at a time (``n_jobs`` at once, at most eight rounds), and the bank
    is saved after each round: an interrupted bank keeps the models of its finished
    rounds, and the next call grows it from there (a bank grown in rounds is the bank
    trained at once, bit for bit).

    Raises
    ------
    ValueError
        ``n_models`` models would not fit in memory (the message gives the estimate), or
        the saved bank is not this target's (another pool, other settings or epochs,
        masks or seeds that its seed does not give, a truncated file): the message
        says what to delete.

    Returns
    -------
    bank : ReferenceModels
    """
    run = RunDirectory(target_dir)
    folder = run.child(REFERENCE)
    params = run.read_params()
    X_pool, y_pool, _, _ = split.audit_pool()
    check_bank_size(target, n_models, len(y_pool), folder.root)
    bank = _saved_bank(folder, target, params["estimator_params"], X_pool, y_pool)
    if bank is not None and len(bank.estimators_) >= n_models:
        return _head(bank, n_models)
    if bank is None:
        bank = _new_bank(target, n_models, n_jobs, params["seed"])
    fit_params = {}
    if _registry.METHODS[params["method"]].needs_reference:  # AdvReg, MemGuard
        fit_params = {"X_reference": split.reference.X, "y_reference": split.reference.y}
    have = len(getattr(bank, "estimators_", ()))
    seconds = folder.read_json(COMPLETE, spec=_COMPLETE_SPEC)["seconds"] if have else 0.0
    step = _bank_round(n_models, n_jobs, bank.keep,
                       batched=batching_refusal(bank.estimator, X_pool, fit_params) is None)
    with _models_bar(n_models, have, not verbose) as bar:
        while have < n_models:
            size = min(n_models, have + step)
            bank.set_params(n_estimators=size, warm_start=have > 0, n_jobs=n_jobs, verbose=0)
            start = time.perf_counter()
            bank.fit(X_pool, y_pool, **fit_params)
            _check_bank_finished(bank, folder.root, have, n_models)
            seconds += time.perf_counter() - start
            _save_bank(bank, folder, params["estimator_params"], seconds)
            bar.update(size - have)
            have = size
    return bank


def check_bank_size(target, n_models, n_pool, where):
    """Refuse a bank whose masks and models would not fit in this machine's memory
    (the bank's own estimate, :func:`~skmia.model_selection.check_bank_memory`, with
    the target's weights for each model); the message gives the estimate."""
    per_model = sum(t.numel() * t.element_size()
                    for t in target.module_.state_dict().values())
    need = bank_bytes(n_pool, n_models, per_model)
    try:
        check_bank_memory(n_pool, n_models, per_model, subject=(
            f"{n_models} reference models would take about {need / 2**30:,.1f} GiB once "
            "loaded"))
    except ValueError as exc:
        error = ValueError(f"{exc} Nothing was written to {str(where)!r}.")
        error.option = "--reference-models"  # the CLI: a usage error naming the option
        raise error from None


def _saved_bank(folder, target, target_settings, X_pool, y_pool):
    """The finished bank in ``folder`` (None when there is none), checked to be the bank
    this target would train."""
    if not folder.is_complete():
        return None
    where = repr(str(folder.root))
    delete = f"delete {where} to train the bank again"
    done = folder.read_json(COMPLETE, spec=_COMPLETE_SPEC)
    if done["estimator_params"] != target_settings:
        raise ValueError(f"{where} holds a bank trained with other settings than the "
                         f"target's ({folder.path(COMPLETE)}); {delete}")
    try:
        bank = load_estimator(folder, device=target.device)
    except ValueError as exc:
        raise ValueError(f"{exc} ({delete})") from exc
    _check_bank_belongs(bank, done, target_settings, X_pool, y_pool, where, delete)
    return bank


def _check_bank_belongs(bank, done, target_settings, X_pool, y_pool, where, delete):
    if len(bank.estimators_) != done["n_models"]:
        raise ValueError(f"{where}: {COMPLETE} says {done['n_models']} models, the bank "
                         f"holds {len(bank.estimators_)}; {delete}")
    own = {k: v for k, v in target_settings.items() if k != "random_state"}
    for k, model in enumerate([bank.estimator, *bank.estimators_]):
        changed = sorted(key for key, value in settings(model).items()
                         if key != "random_state" and key in own and own[key] != value)
        if changed:
            what = "the bank's estimator" if k == 0 else f"reference model {k - 1}"
            raise ValueError(f"{where}: {what} was trained with other settings than the "
                             f"target ({', '.join(changed)} differ); {delete}")
    try:
        check_bank_draws(bank, X_pool, y_pool)
    except ValueError as exc:  # another pool, or masks and seeds its seed does not give
        raise ValueError(f"{where}: {exc}; {delete}") from None


def _head(bank, k):
    """The first ``k`` models of a fitted bank, as a bank of its own."""
    return bank if k == len(bank.estimators_) else bank.head(k)


def _new_bank(target, n_models, jobs, seed):
    from sklearn.base import clone

    estimator = clone(target).set_params(callbacks=None)
    return ReferenceModels(estimator, n_estimators=n_models, n_jobs=jobs, random_state=seed)


def _bank_round(n_models, jobs, keep, batched=False):
    """Models trained between two saves: ``jobs`` at once, whole blocks of the bank's
    masks (pairs for ``keep=0.5``), at most eight rounds — four when the models train as
    one batched network, where a round of many models costs little more than one."""
    from .._parallel import effective_jobs

    q = mask_block(keep)
    per_round = max(effective_jobs(jobs), -(-n_models // (4 if batched else 8)))
    return q * -(-per_round // q)


def _models_bar(n_models, have, quiet):
    from tqdm.auto import tqdm

    return tqdm(total=n_models, initial=have, desc="reference models", unit="model",
                disable=quiet, leave=True)


def _check_bank_finished(bank, folder, saved, n_models):
    short = unfinished_models(bank.estimators_)
    if short:  # skorch swallows a Ctrl-C that reaches a worker: nothing saved then
        raise RunInterrupted(
            f"reference model(s) {short[:5]} of {str(folder)!r} stopped short of their "
            f"epochs: {saved} of the {n_models} models are saved there; run the same "
            "command again to train the rest")


def _save_bank(bank, folder, target_settings, seconds):
    """Save the bank; ``complete.json`` is removed first and written last, so that an
    interruption in between leaves no finished-looking folder."""
    folder.clear(COMPLETE)
    save_estimator(bank, folder)
    folder.mark_complete(document={
        "n_models": len(bank.estimators_), "seconds": round(seconds, 3),
        "estimator_params": target_settings,
    })
