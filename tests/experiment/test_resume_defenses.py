"""Each defense, interrupted twice and continued, ends as an uninterrupted one.

The second half of the defenses of test_resume.py's
``test_continued_defense_ends_as_an_uninterrupted_one`` (same test, other methods): the
methods are shared between the two files so that ``--dist loadfile`` balances. Change both.
"""

import json

import pytest
import resume_helpers
from resume_helpers import _assert_same_model, _config

import skmia.experiment._train as runs
from skmia.experiment import load_run, train
from skmia.experiment._checkpoint import RunInterrupted

# fixtures shared with the other files split from test_resume.py, bound here by name
# (a nested conftest.py would break --doctest-modules)
interrupt = resume_helpers.interrupt
uninterrupted = resume_helpers.uninterrupted
_same_fresh_dp_seed = resume_helpers._same_fresh_dp_seed


# the other defenses are in test_resume.py (the same test, split for balance)
@pytest.mark.parametrize("method", ["advreg", "distillation", "selena", "memguard"])
def test_continued_defense_ends_as_an_uninterrupted_one(
        method, interrupt, uninterrupted, tmp_path, location_data_home):
    # stopped in epochs 4 and then 2 of the continuation: RelaxLoss alternates its
    # objective on odd and even epochs, AdvReg warms up for its first epoch
    config = _config(tmp_path, location_data_home, method)
    folder = runs.run_directory(tmp_path, "location", method, 1000)
    interrupt(after=3)
    with pytest.raises(RunInterrupted, match="stopped after 3 of 5 epochs"):
        train(config)
    interrupt(after=4)
    with pytest.raises(RunInterrupted, match="stopped after 4 of 5 epochs"):
        train(config)
    train(config)
    expected = uninterrupted(method)
    _assert_same_model(folder, expected)
    got, want = (json.loads((f / "model.json").read_text()) for f in (folder, expected))
    assert got["fitted"] == want["fitted"]
    # the class's own state: early stopping's snapshot epochs, DP-SGD's accountant
    assert got["state"]["values"] == want["state"]["values"]
    if method == "dpsgd":
        assert got["state"]["values"]["accountant"]["history"]
        assert got["fitted"]["epsilon_"] == want["fitted"]["epsilon_"]
        assert got["fitted"]["n_steps_"] == want["fitted"]["n_steps_"]
        model, _ = load_run(folder)
        reference, _ = load_run(expected)
        assert model.epsilon_ == reference.epsilon_
