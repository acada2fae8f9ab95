"""Saving and loading fitted estimators without pickle: ``model.safetensors`` + ``model.json``.

:func:`save_estimator` writes a fitted skmia defense, or a
:class:`~skmia.model_selection.ReferenceModels` bank of them, to a folder;
:func:`load_estimator` re-creates it from allow-lists, so that no saved byte is ever
executed or unpickled (see :mod:`skmia.io._codec` for the layout of a defense,
:mod:`skmia.io._bank_codec` for a bank's). What a defense saves beyond its networks,
optimizers and history is declared by its class.

Examples
--------
>>> from skmia.io import load_estimator, save_estimator  # doctest: +SKIP
>>> save_estimator(clf, "my_model")                     # doctest: +SKIP
>>> clf = load_estimator("my_model")                    # doctest: +SKIP
"""

from ._estimator import load_estimator, save_estimator
from ._settings import estimator_settings

__all__ = ["estimator_settings", "load_estimator", "save_estimator"]
