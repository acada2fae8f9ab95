"""Shared docstring text, written once and filled into each docstring that uses it."""

__all__ = ["Substitution"]


class Substitution:
    """Decorator that fills ``%(name)s`` placeholders of a docstring.

    As imbalanced-learn's and pandas' ``Substitution``: text shared by several
    estimators (parameters, attributes) lives in one place. The text of a placeholder
    starts at the placeholder's indentation; its further lines carry their own.

    Parameters
    ----------
    **texts : str
        ``name -> text`` for each placeholder.

    Examples
    --------
    >>> from skmia._docstrings import Substitution
    >>> @Substitution(seed="random_state : int, default=None")
    ... def f():
    ...     '''Parameters: %(seed)s.'''
    >>> f.__doc__
    'Parameters: random_state : int, default=None.'
    """

    def __init__(self, **texts):
        self.texts = texts

    def __call__(self, obj):
        if obj.__doc__:
            obj.__doc__ = obj.__doc__ % self.texts
        return obj
