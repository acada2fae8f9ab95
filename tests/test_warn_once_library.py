"""A library call warns once per kind of warning, not once per model (issue 30).

:func:`skmia._parallel.parallel_map` (a bank's models, a run's fits) keeps the
warnings of every call, in worker processes and here, and raises each kind (category,
module, text up to its numbers) once through this process's filters, under the module
that raised it, so that a filter on that module (the tests' ``error:::skmia``) applies.
"""

import re
import warnings

import pytest

from skmia._parallel import _call_in_worker, _raise_again, parallel_map
from skmia.defenses import WeakPrivacyWarning


def _weak(epsilon):
    warnings.warn(f"DP-SGD reached epsilon = {epsilon}", WeakPrivacyWarning, stacklevel=1)
    return epsilon


def _two_kinds(epsilon):
    warnings.warn(f"DP-SGD reached epsilon = {epsilon}", WeakPrivacyWarning, stacklevel=1)
    warnings.warn(f"delta = {epsilon} is not below 1/n", UserWarning, stacklevel=1)
    return epsilon


def _messages(record, category):
    return [str(w.message) for w in record if w.category is category]


def test_a_bank_of_models_warns_once_per_kind():
    with pytest.warns(WeakPrivacyWarning) as record:
        assert parallel_map(_weak, [(1.5,), (2.5,), (3.5,)], n_jobs=1) == [1.5, 2.5, 3.5]
    assert _messages(record, WeakPrivacyWarning) == ["DP-SGD reached epsilon = 1.5"]


def test_each_kind_is_shown_once():
    with pytest.warns(UserWarning) as record:
        parallel_map(_two_kinds, [(1.0,), (2.0,), (3.0,)], n_jobs=1)
    assert _messages(record, WeakPrivacyWarning) == ["DP-SGD reached epsilon = 1.0"]
    assert _messages(record, UserWarning) == ["delta = 1.0 is not below 1/n"]


def test_a_kind_is_shown_again_after_the_filters_change():
    for _ in range(2):  # pytest.warns sets new filters each time
        with pytest.warns(WeakPrivacyWarning) as record:
            parallel_map(_weak, [(7.0,), (8.0,)], n_jobs=1)
        assert _messages(record, WeakPrivacyWarning) == ["DP-SGD reached epsilon = 7.0"]


def test_worker_warnings_keep_their_module_for_the_filters():
    # as in a worker process (caller_pid=None: not this one), the warning is kept
    result, caught = _call_in_worker(_weak, (5.0,), 1, caller_pid=None)
    assert result == 5.0 and [c[-1] for c in caught] == [__name__]
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.filterwarnings("error", module=re.escape(__name__))
        with pytest.raises(WeakPrivacyWarning, match="epsilon = 5.0"):
            _raise_again(caught)
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        warnings.filterwarnings("error", module="elsewhere")
        _raise_again(caught)  # another module's filter does not apply
