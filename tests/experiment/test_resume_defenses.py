"""Each defense, interrupted twice and continued, ends as an uninterrupted one.

The second half of the defenses of test_resume.py's
``test_continued_defense_ends_as_an_uninterrupted_one``: one test
(``resume_helpers.continue_twice_and_compare``), its methods shared between the two files
so that ``--dist loadfile`` balances.
"""


import pytest
import resume_helpers
from resume_helpers import continue_twice_and_compare

# fixtures shared with the other files split from test_resume.py, bound here by name
# (a nested conftest.py would break --doctest-modules)
interrupt = resume_helpers.interrupt
uninterrupted = resume_helpers.uninterrupted
_same_fresh_dp_seed = resume_helpers._same_fresh_dp_seed


# the other defenses are in test_resume.py (one test, its methods split for balance)
@pytest.mark.parametrize("method", ["advreg", "distillation", "selena", "memguard"])
def test_continued_defense_ends_as_an_uninterrupted_one(
        method, interrupt, uninterrupted, tmp_path, location_data_home):
    continue_twice_and_compare(method, interrupt, uninterrupted, tmp_path, location_data_home)
