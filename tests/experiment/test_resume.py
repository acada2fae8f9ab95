"""Interrupted trainings of run directories: never marked complete, and continued.

A Ctrl-C is simulated deterministically, in the middle of an epoch, by a callback added
to the run's own (a KeyboardInterrupt, which skorch's fit swallows, or a real SIGINT to
this process); the console script is interrupted with real signals. A continued run
must end with the bytes of an uninterrupted one: weights, optimizer state, DP-SGD's
accountant.
"""

import json
import os
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from skorch.callbacks import Callback

import skmia.experiment._train as runs
from skmia.cli import main
from skmia.experiment import RunConfig, load_run, run, train
from skmia.experiment._checkpoint import CHECKPOINT_DIR, RunInterrupted

EPOCHS = 5


def _config(out, data_home, method="vanilla", epochs=EPOCHS, **kwargs):
    overrides = {"dpsgd": {"noise_multiplier": 1.0},
                 # few sub-models and a short Phase I: the resume is what is tested
                 "selena": {"n_models": 3, "n_excluded": 1},
                 "memguard": {"max_steps": 5, "defender_epochs": 20}}.get(method, {})
    return RunConfig(dataset="location", method=method, epochs=epochs, out=str(out),
                     data_home=str(data_home), verbose=0, white_box=False,
                     overrides=overrides, **kwargs)


class _Interrupt(Callback):
    """Stop the training in the first batch of epoch ``after + 1`` (counted from 1)."""

    def __init__(self, after, how):
        self.after, self.how = after, how

    def on_batch_end(self, net, training=False, **kwargs):
        if training and len(net.history) == self.after + 1:
            if self.how == "signal":
                os.kill(os.getpid(), signal.SIGINT)
            raise KeyboardInterrupt  # what a Ctrl-C does without skmia's handler


@pytest.fixture
def interrupt(monkeypatch):
    """``interrupt(after, how)``: the next training stops during epoch ``after + 1``."""
    real = runs._progress_callbacks

    def arm(after, how="keyboard"):
        def with_interrupt(*args, **kwargs):
            monkeypatch.setattr(runs, "_progress_callbacks", real)  # this training only
            return [*real(*args, **kwargs), ("interrupt", _Interrupt(after, how))]

        monkeypatch.setattr(runs, "_progress_callbacks", with_interrupt)

    return arm


def _weights(folder):
    return load_file(Path(folder) / "model.safetensors")


def _assert_same_model(folder, expected):
    got, want = _weights(folder), _weights(expected)
    assert got.keys() == want.keys()
    for key in want:  # the network, the optimizer's state, the training rows
        assert torch.equal(got[key], want[key]), key
    history = json.loads((Path(folder) / "history.json").read_text())
    reference = json.loads((Path(expected) / "history.json").read_text())
    assert [e["train_loss"] for e in history] == [e["train_loss"] for e in reference]


@pytest.fixture(autouse=True)
def _same_fresh_dp_seed(monkeypatch):
    """Runs seed DP-SGD's noise from the operating system (``secure_noise``): for a
    bit-for-bit comparison of two runs, both draw the same "fresh" seed here."""
    monkeypatch.setattr("skmia.defenses._dpsgd.fresh_seed", lambda: 123_456_789)


@pytest.fixture(scope="module")
def uninterrupted(tmp_path_factory, location_data_home):
    """``method -> run folder`` trained without interruption (cached per method)."""
    out = tmp_path_factory.mktemp("uninterrupted")
    cache = {}

    def get(method):
        if method not in cache:
            cache[method] = train(_config(out, location_data_home, method))
        return cache[method]

    return get


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


@pytest.mark.parametrize("method", ["relaxloss", "dpsgd", "advreg", "early_stopping",
                                    "distillation", "hamp", "selena", "memguard"])
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


# ---------------------------------------------------------------- the console script

_SLOW_EPOCHS = '''
import os
if os.environ.get("SKMIA_TEST_EPOCH_SECONDS"):
    import time

    from skorch.callbacks import Callback

    import skmia.experiment._train as runs

    class _Slow(Callback):
        def on_epoch_end(self, net, **kwargs):
            time.sleep(float(os.environ["SKMIA_TEST_EPOCH_SECONDS"]))

    _real = runs._progress_callbacks
    runs._progress_callbacks = lambda *a, **k: [*_real(*a, **k), ("slow", _Slow())]
'''


@pytest.fixture
def slow_env(tmp_path, location_data_home):
    """The environment of a console script whose epochs take 0.4 s more (workers too)."""
    site = tmp_path / "site"
    site.mkdir()
    (site / "sitecustomize.py").write_text(_SLOW_EPOCHS)
    path = os.pathsep.join(filter(None, [str(site), os.environ.get("PYTHONPATH")]))
    return {**os.environ, "PYTHONPATH": path, "SKMIA_TEST_EPOCH_SECONDS": "0.4",
            "SKMIA_DATA_HOME": str(location_data_home), "OMP_NUM_THREADS": "1"}


def _command(out, *extra):
    return [sys.executable, "-m", "skmia.cli", "run", "--dataset", "location", "--method",
            "vanilla", "--out", str(out), "--no-white-box", "-q", "--epochs", str(EPOCHS),
            *map(str, extra)]


def _wait_for_checkpoints(proc, folders, epoch=1, timeout=120):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        assert proc.poll() is None, "the run ended before it was interrupted"
        try:
            if all(json.loads((f / CHECKPOINT_DIR / "latest.json").read_text())["epoch"]
                   >= epoch for f in folders):
                return
        except (OSError, ValueError):
            pass
        time.sleep(0.05)
    raise AssertionError("no checkpoint appeared")


@pytest.mark.parametrize("signum, status", [(signal.SIGINT, 130), (signal.SIGTERM, 143)])
def test_console_script_interrupted_exits_with_the_signal_and_continues(
        signum, status, slow_env, uninterrupted, tmp_path):
    out = tmp_path / "out"
    folder = runs.run_directory(out, "location", "vanilla", 1000)
    proc = subprocess.Popen([*_command(out), "--mode", "defense"], env=slow_env,
                            stdout=subprocess.PIPE, stderr=subprocess.PIPE, text=True)
    try:
        _wait_for_checkpoints(proc, [folder], epoch=2)
        proc.send_signal(signum)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        proc.kill()
    assert proc.returncode == status, stderr
    assert "Traceback" not in stderr
    name = "SIGINT" if signum == signal.SIGINT else "SIGTERM"
    assert f"skmia run: interrupted ({name}); no unfinished run was marked complete" in stderr
    assert "its checkpoint is kept in" in stderr and "trained" not in stdout
    assert not (folder / "complete.json").exists() and not (folder / ".lock").exists()

    # the same command again, here (a console script's start-up is slow)
    assert main([*_command(out)[3:], "--mode", "defense"]) == 0
    assert json.loads((folder / "complete.json").read_text())["resumed_at_epoch"] >= 2
    _assert_same_model(folder, uninterrupted("vanilla"))


def test_ctrl_c_reaches_the_workers_and_the_parent_reports_it(slow_env, tmp_path,
                                                              location_data_home):
    # a terminal's Ctrl-C signals the whole process group: the skmia process and its
    # joblib workers, which train the target and the shadow
    out = tmp_path / "out"
    target = runs.run_directory(out, "location", "vanilla", 1000)
    proc = subprocess.Popen([*_command(out), "--mode", "defense_attack", "--jobs", "2"],
                            env=slow_env, stdout=subprocess.PIPE, stderr=subprocess.PIPE,
                            text=True, start_new_session=True)
    try:
        _wait_for_checkpoints(proc, [target, target / "shadow"])
        os.killpg(proc.pid, signal.SIGINT)
        stdout, stderr = proc.communicate(timeout=60)
    finally:
        if proc.poll() is None:
            os.killpg(proc.pid, signal.SIGKILL)
    assert proc.returncode == 130, stderr
    assert "skmia run: interrupted (SIGINT)" in stderr
    assert f"{str(target)!r} stopped after" in stderr
    assert f"{str(target / 'shadow')!r} stopped after" in stderr
    assert not list(out.rglob("complete.json")), "nothing is marked complete"
    assert not list(out.rglob(".lock"))

    # both continue from their checkpoints (trained here, without the attacks' minutes)
    config = _config(out, location_data_home)
    config.data_home = None  # the console script read SKMIA_DATA_HOME
    for partition, folder in (("target", target), ("shadow", target / "shadow")):
        assert train(config, partition) == folder
        assert json.loads((folder / "complete.json").read_text())["resumed_at_epoch"] >= 1
