"""The expected-failure machinery of the estimator checks (tests/estimator_checks.py):
strict both ways, so that the lists of expected failures stay accurate."""

import pytest
from estimator_checks import Expected, run_check


def _fails_with(message, cause=None):
    def check_something(estimator):
        raise ValueError(message) from (None if cause is None else TypeError(cause))

    return check_something


def test_an_expected_failure_must_fail_with_its_own_message():
    expected = {"check_something": Expected("why", r"^the known reason: \d+$")}
    with pytest.raises(pytest.xfail.Exception, match="why"):
        run_check(None, _fails_with("the known reason: 42"), expected)
    # searched in the exceptions it was raised from, too
    with pytest.raises(pytest.xfail.Exception, match="why"):
        run_check(None, _fails_with("sklearn's wrapper", cause="the known reason: 7"), expected)
    with pytest.raises(AssertionError, match="not with the expected message .*a new bug"):
        run_check(None, _fails_with("a new bug"), expected)
    def check_something(estimator):
        pass

    with pytest.raises(pytest.fail.Exception, match="check_something passes"):
        run_check(None, check_something, expected)
