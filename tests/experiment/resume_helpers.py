"""What the tests of interrupted and continued runs share (test_resume*.py).

A Ctrl-C is simulated deterministically, in the middle of an epoch, by a callback added
to the run's own (a KeyboardInterrupt, which skorch's fit swallows, or a real SIGINT to
this process); the console script is interrupted with real signals.
"""

import json
import os
import signal
import sys
import time
from pathlib import Path

import pytest
import torch
from safetensors.torch import load_file
from skorch.callbacks import Callback

import skmia.experiment._train as runs
from skmia.experiment import RunConfig, train
from skmia.experiment._checkpoint import CHECKPOINT_DIR

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

def continue_twice_and_compare(method, interrupt, uninterrupted, out, data_home):
    """Interrupt ``method``'s run twice (in epochs 4 and then 2 of the continuation:
    RelaxLoss alternates its objective on odd and even epochs, AdvReg warms up for its
    first epoch), continue it, and assert it ends as the uninterrupted run: weights,
    fitted attributes, the class's own state (early stopping's snapshot epochs, DP-SGD's
    accountant). The test of every defense, split over two files for balance."""
    from skmia.experiment import load_run
    from skmia.experiment._checkpoint import RunInterrupted

    config = _config(out, data_home, method)
    folder = runs.run_directory(out, "location", method, 1000)
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
    assert got["state"]["values"] == want["state"]["values"]
    if method == "dpsgd":
        assert got["state"]["values"]["accountant"]["history"]
        assert got["fitted"]["epsilon_"] == want["fitted"]["epsilon_"]
        assert got["fitted"]["n_steps_"] == want["fitted"]["n_steps_"]
        model, _ = load_run(folder)
        reference, _ = load_run(expected)
        assert model.epsilon_ == reference.epsilon_


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
