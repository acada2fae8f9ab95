"""scikit-learn's estimator checks with expected failures that must fail for their reason.

``run_check`` runs one check of ``parametrize_with_checks``; an expected failure is an
``Expected(reason, match)``: the reason it fails and a regex of the message it must fail
with (searched in the exception and the exceptions it was raised from). A check that
fails with any other message fails the test, and so does one that passes. Used by
tests/attacks/test_common_attacks.py and tests/defenses/test_common_defenses.py.
"""

import functools
import re
from typing import NamedTuple

import pytest


class Expected(NamedTuple):
    """An expected failure: why the check fails, and a regex of the message it fails with."""

    reason: str
    match: str


def check_name(check):
    while isinstance(check, functools.partial):
        check = check.func
    return check.__name__


def run_check(estimator, check, expected_failures):
    """Run ``check``; if it is among ``expected_failures``, require its own failure.

    Strict both ways: an expected failure that passes fails the test, so the lists stay
    accurate, and so does one that fails with another message than its own, so that a
    check failing for a new reason is not hidden behind the old one.
    """
    name = check_name(check)
    expected = expected_failures.get(name)
    if expected is None:
        check(estimator)
        return
    try:
        check(estimator)
    except Exception as exc:  # noqa: BLE001 - compared with the expected message below
        messages = _messages(exc)
        if not any(re.search(expected.match, m) for m in messages):
            raise AssertionError(
                f"{name} fails for {estimator!r}, but not with the expected message "
                f"{expected.match!r}; it fails with: {messages}"
            ) from exc
    else:
        pytest.fail(f"{name} passes for {estimator!r}: remove it from EXPECTED_FAILED_CHECKS.")
    pytest.xfail(expected.reason)  # outside the except block: no chained traceback


def _messages(exc):
    """The messages of ``exc`` and of the exceptions it was raised from or during."""
    messages, seen = [], set()
    while exc is not None and id(exc) not in seen:
        seen.add(id(exc))
        messages.append(str(exc))
        exc = exc.__cause__ or exc.__context__
    return messages


def check_expected_failures(table):
    """Every expected failure of ``table`` (class name -> check -> Expected) is well made."""
    for name, failures in table.items():
        for check, expected in failures.items():
            assert isinstance(expected, Expected), (name, check)
            assert expected.reason and expected.match, (name, check)
            re.compile(expected.match)
