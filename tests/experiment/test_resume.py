"""Interrupted trainings of run directories: never marked complete, and continued.

A Ctrl-C is simulated deterministically, in the middle of an epoch, by a callback added
to the run's own (a KeyboardInterrupt, which skorch's fit swallows, or a real SIGINT to
this process); the console script is interrupted with real signals. A continued run
must end with the bytes of an uninterrupted one: weights, optimizer state, DP-SGD's
accountant.
"""

import json
import signal
from pathlib import Path

import pytest
import resume_helpers
import torch
from resume_helpers import _assert_same_model, _config, _Interrupt, continue_twice_and_compare
from safetensors.torch import load_file

import skmia.experiment._train as runs
from skmia.experiment import load_run, run, train
from skmia.experiment._checkpoint import CHECKPOINT_DIR, RunInterrupted

# fixtures shared with the other files split from test_resume.py, bound here by name
# (a nested conftest.py would break --doctest-modules)
interrupt = resume_helpers.interrupt
uninterrupted = resume_helpers.uninterrupted
_same_fresh_dp_seed = resume_helpers._same_fresh_dp_seed


@pytest.mark.parametrize("how", ["keyboard", "signal"])
def test_interrupted_training_is_not_complete_and_continues(
        interrupt, uninterrupted, tmp_path, location_data_home, how):
    config = _config(tmp_path, location_data_home)
    interrupt(after=2, how=how)
    with pytest.raises(RunInterrupted, match=r"stopped after 2 of 5 epochs") as info:
        train(config)
    assert isinstance(info.value, KeyboardInterrupt) and info.value.signum == signal.SIGINT
    assert "no unfinished run was marked complete" in str(info.value)
    folder = runs.run_directory(tmp_path, "location", "vanilla", 1000)
    assert not (folder / "complete.json").exists()
    assert not (folder / "model.json").exists(), "a partly trained model is not saved"
    assert json.loads((folder / CHECKPOINT_DIR / "latest.json").read_text())["epoch"] == 2
    assert not (folder / ".lock").exists()
    with pytest.raises(RuntimeError, match="did not finish"):
        load_run(folder)

    assert train(config) == folder
    assert json.loads((folder / "complete.json").read_text())["resumed_at_epoch"] == 2
    assert not (folder / CHECKPOINT_DIR).exists(), "deleted once the run is complete"
    _assert_same_model(folder, uninterrupted("vanilla"))


# the other defenses are in test_resume_defenses.py (one test, its methods split for balance)
@pytest.mark.parametrize("method", ["relaxloss", "dpsgd", "early_stopping", "hamp"])
def test_continued_defense_ends_as_an_uninterrupted_one(
        method, interrupt, uninterrupted, tmp_path, location_data_home):
    continue_twice_and_compare(method, interrupt, uninterrupted, tmp_path, location_data_home)


def test_dpsgd_noise_seed_is_kept_until_the_run_completes(
        interrupt, tmp_path, location_data_home):
    config = _config(tmp_path, location_data_home, "dpsgd")
    folder = runs.run_directory(tmp_path, "location", "dpsgd", 1000)
    interrupt(after=2)
    with pytest.raises(RunInterrupted):
        train(config)
    latest = json.loads((folder / CHECKPOINT_DIR / "latest.json").read_text())
    assert isinstance(latest["extra"]["training_seed_"], int)
    state = load_file(folder / CHECKPOINT_DIR / latest["folder"] / "state.safetensors")
    assert state["rng.cpu"].dtype == torch.uint8  # the generator that draws the noise
    train(config)
    files = [p for p in folder.rglob("*") if p.is_file()]
    assert {p.name for p in files} == {"params.json", "history.json", "model.json",
                                       "model.safetensors", "complete.json"}
    seed = str(latest["extra"]["training_seed_"])
    for path in files:
        if path.suffix == ".json":
            assert "training_seed_" not in path.read_text() and seed not in path.read_text()
    assert "rng.cpu" not in load_file(folder / "model.safetensors")


def test_checkpoint_of_other_settings_is_not_continued(
        interrupt, tmp_path, location_data_home, capsys):
    interrupt(after=2)
    with pytest.raises(RunInterrupted):
        train(_config(tmp_path, location_data_home, epochs=4))
    config = _config(tmp_path, location_data_home, epochs=3)
    config.verbose = 1
    folder = train(config)
    assert "not continuing its checkpoint, it was written for other settings" in \
        capsys.readouterr().err
    assert "resumed_at_epoch" not in json.loads((folder / "complete.json").read_text())
    assert len(json.loads((folder / "history.json").read_text())) == 3


def test_corrupt_checkpoint_trains_again(interrupt, uninterrupted, tmp_path,
                                         location_data_home):
    config = _config(tmp_path, location_data_home)
    interrupt(after=2)
    with pytest.raises(RunInterrupted):
        train(config)
    folder = runs.run_directory(tmp_path, "location", "vanilla", 1000)
    weights = folder / CHECKPOINT_DIR / "epoch2" / "model.safetensors"
    weights.write_bytes(weights.read_bytes()[:-10])
    train(config)
    assert "resumed_at_epoch" not in json.loads((folder / "complete.json").read_text())
    _assert_same_model(folder, uninterrupted("vanilla"))


def test_interrupted_teacher_is_not_a_finished_distillation(
        monkeypatch, tmp_path, location_data_home):
    # skorch swallows the KeyboardInterrupt in the teacher's fit; the student then
    # trains in full on a half-trained teacher
    from skmia.defenses import VanillaClassifier

    real_fit = VanillaClassifier.fit

    def interrupted_fit(self, X, y, **kwargs):
        self.set_params(callbacks=[("interrupt", _Interrupt(1, "keyboard"))])
        return real_fit(self, X, y, **kwargs)

    monkeypatch.setattr(VanillaClassifier, "fit", interrupted_fit)
    with pytest.raises(RunInterrupted):
        train(_config(tmp_path, location_data_home, "distillation", epochs=3))
    folder = runs.run_directory(tmp_path, "location", "distillation", 1000)
    assert not (folder / "complete.json").exists()


def test_interrupted_defense_attack_marks_nothing_complete(
        interrupt, tmp_path, location_data_home):
    config = _config(tmp_path, location_data_home, epochs=3)
    interrupt(after=1)  # the target's training; the shadow's does not start
    with pytest.raises(RunInterrupted, match="stopped after 1 of 3 epochs"):
        run(config, "defense_attack")
    assert not list(tmp_path.rglob("complete.json"))
    results = run(config, "defense_attack")
    assert len(results) and (Path(results.attrs["folder"]) / "complete.json").is_file()
