"""``skmia attack`` refuses run folders that do not belong together, naming the files."""

import json
import shutil

import pytest
from sklearn.base import clone

from skmia.cli import main
from skmia.experiment import load_run, save_estimator
from skmia.model_selection._split import load_split


def skmia(*args):
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, location_data_home):
    """Two tiny finished runs of Location30 (seeds 1000 and 1001), with their shadows."""
    out = tmp_path_factory.mktemp("runs")
    for seed in (1000, 1001):
        assert skmia("run", "--dataset", "location", "--method", "vanilla", "--mode",
                     "defense_attack", "--epochs", 1, "--seed", seed, "--out", out,
                     "--no-white-box", "-q", "--data-home", location_data_home) == 0
    return out / "location" / "vanilla"


def _copy(runs, tmp_path, seed=1000):
    folder = tmp_path / f"copy{seed}"
    shutil.copytree(runs / f"seed{seed}", folder)
    return folder


def _attack_fails(target, shadow, capsys, *parts):
    assert skmia("attack", "--target", target, "--shadow", shadow, "--no-white-box",
                 "-q") == 1
    err = capsys.readouterr().err
    for part in parts:
        assert part in err, err
    assert "Traceback" not in err


def test_the_same_folder_twice(runs, capsys):
    _attack_fails(runs / "seed1000", runs / "seed1000", capsys,
                  "the target and the shadow are the same folder")


def test_a_shadow_run_given_as_target(runs, capsys):
    _attack_fails(runs / "seed1000" / "shadow", runs / "seed1001" / "shadow", capsys,
                  "holds a shadow run", str(runs / "seed1000" / "shadow" / "params.json"))


def test_a_target_run_given_as_shadow(runs, capsys):
    _attack_fails(runs / "seed1000", runs / "seed1001", capsys,
                  "holds a target run", str(runs / "seed1001" / "params.json"))


def test_target_and_shadow_of_different_seeds(runs, capsys):
    _attack_fails(runs / "seed1000", runs / "seed1001" / "shadow", capsys,
                  "differ in seed: 1000 vs 1001", str(runs / "seed1001" / "shadow"))


def test_a_model_copied_in_from_another_run(runs, tmp_path, capsys):
    folder = _copy(runs, tmp_path)
    for name in ("model.json", "model.safetensors"):
        shutil.copy(runs / "seed1001" / name, folder / name)
    _attack_fails(folder, runs / "seed1000" / "shadow", capsys,
                  "was saved beside another params.json than",
                  str(folder / "model.json"), str(folder / "params.json"))


def test_an_edited_params_json(runs, tmp_path, capsys):
    folder = _copy(runs, tmp_path)
    params = json.loads((folder / "params.json").read_text())
    params["estimator_params"]["max_epochs"] = "60"
    (folder / "params.json").write_text(json.dumps(params))
    _attack_fails(folder, runs / "seed1000" / "shadow", capsys,
                  "was saved beside another params.json")


def test_a_params_json_without_a_key(runs, tmp_path, capsys):
    folder = _copy(runs, tmp_path)
    params = json.loads((folder / "params.json").read_text())
    del params["partition"]
    (folder / "params.json").write_text(json.dumps(params))
    _attack_fails(folder, runs / "seed1000" / "shadow", capsys,
                  f"{str(folder / 'params.json')!r} lacks the key 'partition'")


def test_a_model_trained_with_other_settings(runs, tmp_path, capsys):
    folder = _copy(runs, tmp_path)
    model, params = load_run(runs / "seed1000")
    split = load_split("location", 1000, params["data_home"])
    other = clone(model).set_params(max_epochs=2).fit(*split.target_train)
    elsewhere = tmp_path / "elsewhere"  # saved outside a run: no params.json digest
    save_estimator(other, elsewhere)
    for name in ("model.json", "model.safetensors"):
        shutil.copy(elsewhere / name, folder / name)
    _attack_fails(folder, runs / "seed1000" / "shadow", capsys,
                  "disagree on max_epochs", str(folder / "model.json"))


def test_a_model_of_other_features_than_its_dataset(runs, tmp_path, capsys):
    folder = _copy(runs, tmp_path)
    model, params = load_run(runs / "seed1000")
    split = load_split("location", 1000, params["data_home"])
    X, y = split.target_train
    narrow = clone(model).fit(X[:, :100], y)
    save_estimator(narrow, folder)  # beside the run's own params.json: the digest agrees
    _attack_fails(folder, runs / "seed1000" / "shadow", capsys,
                  "the model takes records of shape (100,)", "has records of shape (446,)")


def test_a_missing_shadow_run_names_mode_shadow(runs, tmp_path, capsys):
    _attack_fails(runs / "seed1000", tmp_path / "shadow", capsys,
                  "is not a run directory", "--mode shadow")


def test_cuda_without_a_gpu_is_refused_before_any_folder_is_made(tmp_path, capsys,
                                                                 monkeypatch):
    import torch

    monkeypatch.setattr(torch.cuda, "is_available", lambda: False)  # a GPU-less machine
    status = skmia("run", "--dataset", "purchase-like", "--method", "vanilla", "--mode",
                   "defense_attack", "--device", "cuda", "--out", tmp_path / "out", "-q")
    assert status == 1
    assert "torch sees no CUDA GPU" in capsys.readouterr().err
    assert not (tmp_path / "out").exists()


def test_skmia_attack_refuses_a_target_being_written(runs, tmp_path, capsys):
    import os
    import socket

    folder = _copy(runs, tmp_path)
    (folder / ".lock").write_text(json.dumps({
        "pid": os.getpid(), "hostname": socket.gethostname(), "purpose": "training",
        "started": "2026-12-01T09:30:00+00:00", "token": "someone-else"}))
    _attack_fails(folder, runs / "seed1000" / "shadow", capsys,
                  f"is being written by process {os.getpid()}")
    (folder / ".lock").unlink()  # once it is gone, the same command attacks
    assert skmia("attack", "--target", folder, "--shadow", runs / "seed1000" / "shadow",
                 "--no-white-box", "-q") == 0
