"""save_estimator and load_estimator: one fitted defense, or one bank of them, in a folder.

The layout of a defense is :mod:`._codec`'s, that of a bank :mod:`._bank_codec`'s (which saves
each model as the codec does); this module only picks one, so that neither of them
imports the other's caller (no circle in ``skmia.io``).
"""

import hashlib

from safetensors import SafetensorError
from safetensors.torch import load, save

from .. import __version__
from .._rundir import MODEL_JSON, MODEL_WEIGHTS, PARAMS
from ._bank_codec import bank_state, restore_bank
from ._codec import FORMAT, _defense_state, _folder, _restore_defense, file_sha256
from ._values import _digest, _Where

__all__ = ["load_estimator", "save_estimator"]


def save_estimator(clf, folder):
    """Save a fitted skmia defense, or a bank of them, to ``folder``.

    Writes ``model.safetensors`` (tensors) and ``model.json`` (everything else, with a
    digest of both). A :class:`~skmia.model_selection.ReferenceModels` bank is saved
    whole: each model's weights under ``bank.<k>.``, the masks as ``in_mask_``. In a run
    directory, ``model.json`` also records the SHA-256 of the ``params.json`` beside it,
    which :func:`skmia.experiment.load_run` checks.

    Parameters that cannot be stored as data (a teacher estimator, callbacks, a
    validation set) are recorded by name in ``"not_saved"`` and come back as their
    defaults; they are not needed for prediction. The optimizers' state and the history
    are saved, so that ``partial_fit`` continues the loaded model as it would have
    continued this one; DP-SGD's noise seed is not (see the module's notes).
    """
    from ..model_selection import ReferenceModels

    folder = _folder(folder)
    if isinstance(clf, ReferenceModels):
        document, tensors = bank_state(clf)
    else:
        document, tensors = _defense_state(clf)
    weights = save(tensors)
    document = {"skmia_version": __version__, "format": FORMAT, **document,
                "weights_sha256": hashlib.sha256(weights).hexdigest()}
    params_sha256 = file_sha256(folder, PARAMS)
    if params_sha256 is not None:  # in a run directory: what it was trained under
        document["params_sha256"] = params_sha256
    document["digest"] = _digest(document)
    folder.write_bytes(MODEL_WEIGHTS, data=weights)
    folder.write_json(MODEL_JSON, document=document)


def load_estimator(folder, *, device=None):
    """Re-create the fitted defense (or bank) saved in ``folder``, unpickling nothing.

    Parameters
    ----------
    folder : path-like
        A folder written by :func:`save_estimator`.
    device : str or None, default=None
        Override the saved ``device`` (e.g. load a CUDA-trained model on the CPU).

    Returns
    -------
    clf : MIADefenseClassifier or ReferenceModels
        The fitted classifier, or the fitted bank.

    Raises
    ------
    FileNotFoundError
        The folder holds no saved model.
    ValueError
        The files were written by another skmia version, edited, or are corrupt.
    """
    folder = _folder(folder)
    json_path, weights_path = folder.path(MODEL_JSON), folder.path(MODEL_WEIGHTS)
    if not folder.exists(MODEL_JSON) or not folder.exists(MODEL_WEIGHTS):
        raise FileNotFoundError(
            f"{str(folder.root)!r} holds no saved model (expected {MODEL_JSON} and "
            f"{MODEL_WEIGHTS})"
        )
    document = folder.read_json(MODEL_JSON)
    where = str(json_path)
    if not isinstance(document, dict) or document.get("digest") != _digest(document):
        raise ValueError(
            f"{where!r} has been modified or is corrupt (its digest does not match its "
            f"content); refusing to load it. Delete {str(folder.root)!r} (or both "
            f"{MODEL_JSON} and {MODEL_WEIGHTS}) so that it is trained again."
        )
    if document.get("skmia_version") != __version__:
        raise ValueError(
            f"{where!r} was saved by skmia {document.get('skmia_version')}; this is skmia "
            f"{__version__}. Re-run the training with this version."
        )
    if document.get("format") != FORMAT:
        raise ValueError(
            f"{where!r} holds a model in layout {document.get('format')!r}; this skmia "
            f"reads layout {FORMAT}. Re-run the training with this version."
        )
    weights = folder.read_bytes(MODEL_WEIGHTS)
    if hashlib.sha256(weights).hexdigest() != document.get("weights_sha256"):
        raise ValueError(
            f"{str(weights_path)!r} does not match the digest in {MODEL_JSON}: the weights "
            f"were modified or truncated. Delete {str(folder.root)!r} (or both "
            f"{MODEL_JSON} and {MODEL_WEIGHTS}) so that they are trained again."
        )
    try:
        tensors = load(weights)
    except (SafetensorError, ValueError) as exc:
        raise ValueError(
            f"{str(weights_path)!r} is not a safetensors file ({exc}); refusing to load it."
        ) from exc
    where = _Where(json_path, weights_path)
    try:
        if document.get("class") == "ReferenceModels":
            return restore_bank(document, tensors, where, device)
        return _restore_defense(document, tensors, where, device)
    except (KeyError, TypeError, IndexError, AttributeError) as exc:
        # what the checks below do not foresee still names the file, never a traceback
        raise ValueError(
            f"{str(json_path)!r} does not describe a model this skmia can load "
            f"({type(exc).__name__}: {exc}); refusing to load it."
        ) from exc
