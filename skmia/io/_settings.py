"""What defines a model: its class's parameters, written so that two runs compare."""

__all__ = ["estimator_settings"]


def estimator_settings(estimator, *, exclude=()):
    """The parameters that define ``estimator`` as comparable strings.

    Each parameter of ``get_params(deep=False)`` as its ``repr``, sorted by name, without
    private names, ``callbacks`` and ``device`` (neither changes what is learned) nor the
    names in ``exclude``. A run compares these to refuse a saved model trained otherwise;
    an audit (without ``random_state``: each of its rounds draws its own) records them.

    Parameters
    ----------
    estimator : estimator
        Any scikit-learn-style estimator.
    exclude : iterable of str, default=()
        More parameter names to leave out.

    Returns
    -------
    settings : dict of str to str

    Examples
    --------
    >>> from sklearn.linear_model import LogisticRegression
    >>> from skmia.io import estimator_settings
    >>> estimator_settings(LogisticRegression(C=2.0), exclude=("random_state",))["C"]
    '2.0'
    """
    left_out = {"callbacks", "device", *exclude}
    return {k: repr(v) for k, v in sorted(estimator.get_params(deep=False).items())
            if not k.startswith("_") and k not in left_out}
