"""End-to-end runs of the ``skmia`` command, tiny settings, real Location30 data."""

import json
import os
import signal
import subprocess
import sys
import time

import numpy as np
import pandas as pd
import pytest
import torch

from skmia.cli import main
from skmia.experiment import load_run, method_classes
from skmia.io._codec import _digest
from skmia.model_selection._split import load_split

METHODS = tuple(method_classes())
BLACK_BOX = ["NN", "confidence", "entropy", "modified entropy", "loss"]


def skmia(*args):
    return main([str(a) for a in args])


@pytest.fixture(scope="module")
def runs(tmp_path_factory, location_data_home):
    """Every method trained and attacked (defense_attack), 2 epochs, one output root."""
    out = tmp_path_factory.mktemp("results")
    for method in METHODS:
        # the paper's sigma = 0.01 warns that it guarantees nothing: use a real one here
        extra = ("--noise-multiplier", {"dpsgd": 1.0, "dpsgd_hu": 2.0}[method]) if (
            method in ("dpsgd", "dpsgd_hu")) else ()
        status = skmia("run", "--dataset", "location", "--method", method, "--mode",
                       "defense_attack", "--epochs", 2, "--out", out, "--no-white-box",
                       "-q", "--data-home", location_data_home, *extra)
        assert status == 0, method
    return out


def run_dir(out, method):
    return out / "location" / method / "seed1000"


@pytest.mark.parametrize("method", METHODS)
def test_defense_attack_writes_a_complete_run(runs, method):
    folder = run_dir(runs, method)
    for name in ("params.json", "history.json", "model.safetensors", "model.json",
                 "complete.json"):
        assert (folder / name).is_file(), name
    for name in ("results.csv", "results.json", "roc.png", "loss_hist.png", "complete.json"):
        assert (folder / "attack" / name).is_file(), name
    assert (folder / "attack" / "roc.png").read_bytes()[:4] == b"\x89PNG"
    results = pd.read_csv(folder / "attack" / "results.csv")
    final = results[results["snapshot_epoch"].isna()]
    assert final["attack"].tolist() == BLACK_BOX
    assert final["auc"].between(0, 1).all() and final["accuracy"].between(0, 1).all()
    assert (final["shadow_method"] == "vanilla").all()
    history = json.loads((folder / "history.json").read_text())
    assert len(history) == 2 and "train_loss" in history[0]
    # the shadow was trained once, by vanilla, and reused by every method
    assert (runs / "location" / "vanilla" / "seed1000" / "shadow" / "complete.json").is_file()


def test_early_stopping_attacks_every_snapshot(runs):
    results = pd.read_csv(run_dir(runs, "early_stopping") / "attack" / "results.csv")
    assert sorted(results["snapshot_epoch"].dropna().unique()) == [2.0]
    assert len(results) == 2 * len(BLACK_BOX)


def test_snapshots_share_the_attacks_fitted_once_on_the_shadow(runs, monkeypatch):
    from skmia.attacks import NNAttack

    folder = run_dir(runs, "early_stopping")
    before = (folder / "attack" / "results.csv").read_bytes()
    real_fit, fits = NNAttack.fit, []

    def counted(self, *args, **kwargs):
        fits.append(self)
        return real_fit(self, *args, **kwargs)

    monkeypatch.setattr(NNAttack, "fit", counted)
    shadow = runs / "location" / "vanilla" / "seed1000" / "shadow"
    assert skmia("attack", "--target", folder, "--shadow", shadow, "--no-white-box",
                 "-q") == 0
    assert len(fits) == 1  # not once per snapshot
    # the same rows as when each snapshot refitted its own (identically seeded) attacks
    assert (folder / "attack" / "results.csv").read_bytes() == before


def test_reloaded_run_predicts_what_the_attacks_saw(runs, location_data_home):
    model, params = load_run(run_dir(runs, "relaxloss"))
    again, _ = load_run(run_dir(runs, "relaxloss"))
    split = load_split("location", 1000, location_data_home)
    X, y = split.target_train
    np.testing.assert_array_equal(model.predict_proba(X), again.predict_proba(X))
    results = pd.read_csv(run_dir(runs, "relaxloss") / "attack" / "results.csv")
    assert results["train_accuracy"].iloc[0] == pytest.approx(model.score(X, y))
    assert params["method"] == "relaxloss" and params["seed"] == 1000
    np.testing.assert_array_equal(model.train_indices_, np.arange(len(y)))


def test_attack_command_reproduces_the_results(runs, capsys):
    folder = run_dir(runs, "label_smoothing")
    before = pd.read_csv(folder / "attack" / "results.csv")
    shadow = runs / "location" / "vanilla" / "seed1000" / "shadow"
    assert skmia("attack", "--target", folder, "--shadow", shadow, "--no-white-box", "-q") == 0
    after = pd.read_csv(folder / "attack" / "results.csv")
    pd.testing.assert_frame_equal(before, after)
    assert "| label_smoothing |" in capsys.readouterr().out


def test_report(runs, capsys):
    assert skmia("report", runs) == 0
    out = capsys.readouterr().out
    lines = out.strip().splitlines()
    assert lines[0].startswith("| dataset | method | seed |")
    for method in ("vanilla", "relaxloss", "distillation"):
        assert any(f"| {method} |" in line for line in lines)
    assert skmia("report", runs, "--format", "csv") == 0
    table = pd.read_csv(pd.io.common.StringIO(capsys.readouterr().out))
    assert set(table["attack"]) == set(BLACK_BOX)
    assert len(table) == (len(METHODS) + 1) * len(BLACK_BOX)  # + early stopping's snapshot
    epsilon = table.loc[table["method"] == "dpsgd", "epsilon"]
    assert (epsilon > 0).all() and np.isfinite(epsilon).all()
    assert table.loc[table["method"] == "vanilla", "epsilon"].isna().all()


def test_modes_one_by_one(tmp_path, location_data_home, capsys):
    common = ("--dataset", "location", "--method", "dropout", "--epochs", 1, "--out",
              tmp_path, "-q", "--data-home", location_data_home, "--no-white-box")
    assert skmia("run", *common, "--mode", "defense") == 0
    assert "trained dropout (defense)" in capsys.readouterr().out
    assert skmia("run", *common, "--mode", "shadow") == 0
    folder = tmp_path / "location" / "dropout" / "seed1000"
    assert (folder / "shadow" / "complete.json").is_file()
    stamp = (folder / "complete.json").stat().st_mtime_ns
    assert skmia("run", *common, "--mode", "attack", "--shadow-method", "same") == 0
    results = pd.read_csv(folder / "attack" / "results.csv")
    # the column names the shadow's training method, not the option that chose it
    assert (results["shadow_method"] == "dropout").all()
    assert (folder / "complete.json").stat().st_mtime_ns == stamp, "finished runs are reused"
    assert not (tmp_path / "location" / "vanilla").exists()
    # ... but never one trained with other settings
    capsys.readouterr()
    assert skmia("run", *common, "--mode", "defense", "--dropout", "0.2") == 1
    err = capsys.readouterr().err
    assert "finished run trained with other settings (dropout differ)" in err


def test_white_box_attacks(tmp_path, location_data_home):
    assert skmia("run", "--dataset", "location", "--method", "vanilla", "--mode",
                 "defense_attack", "--epochs", 1, "--out", tmp_path, "-q",
                 "--data-home", location_data_home) == 0
    results = pd.read_csv(tmp_path / "location" / "vanilla" / "seed1000" / "attack" /
                          "results.csv")
    assert results["attack"].tolist() == BLACK_BOX + [
        "grad_wrt_x_l1", "grad_wrt_x_l2", "grad_wrt_w_l1", "grad_wrt_w_l2"]


def test_console_script_and_interrupted_run(tmp_path, location_data_home):
    env = {**os.environ, "SKMIA_DATA_HOME": str(location_data_home)}
    command = [sys.executable, "-m", "skmia.cli", "run", "--dataset", "location", "--method",
               "vanilla", "--mode", "defense", "--out", str(tmp_path), "-q"]
    folder = tmp_path / "location" / "vanilla" / "seed1000"
    proc = subprocess.Popen([*command, "--epochs", "500"], env=env,
                            stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    try:
        deadline = time.monotonic() + 60
        while not (folder / "params.json").exists() and time.monotonic() < deadline:
            time.sleep(0.05)
        time.sleep(0.5)
        proc.send_signal(signal.SIGKILL)
    finally:
        proc.wait()
    assert (folder / "params.json").is_file()
    assert not (folder / "complete.json").exists(), "a killed run is not marked complete"
    assert not list(folder.glob("*.part"))
    # an unfinished run is not loadable, attackable or reported
    with pytest.raises(RuntimeError, match="did not finish"):
        load_run(folder)
    assert main(["attack", "--target", str(folder), "--shadow", str(folder)]) == 1
    assert main(["report", str(tmp_path)]) == 1
    # running it again redoes it cleanly, through the console script
    done = subprocess.run([*command, "--epochs", "1"], env=env, capture_output=True,
                          text=True, check=False)
    assert done.returncode == 0, done.stderr
    assert "trained vanilla (defense)" in done.stdout
    assert (folder / "complete.json").is_file()


@pytest.mark.parametrize(
    "args, message",
    [
        (["run", "--dataset", "mnist", "--method", "vanilla", "--mode", "defense"],
         ("invalid choice: 'mnist'", "texas", "purchase-like", "cifar100")),
        (["run", "--dataset", "location", "--method", "magic", "--mode", "defense"],
         ("invalid choice: 'magic'", "vanilla", "relaxloss", "label_smoothing")),
        (["run", "--dataset", "location", "--method", "vanilla", "--mode", "train"],
         ("invalid choice: 'train'", "defense", "shadow", "defense_attack")),
        (["run", "--dataset", "texas", "--method", "vanilla", "--mode", "defense",
          "--model", "resnet20"], "--model resnet20 applies to CIFAR only"),
        (["run", "--dataset", "texas", "--method", "vanilla", "--mode", "defense",
          "--model", "alexnet"], ("invalid choice: 'alexnet'", "resnet20", "vgg11_bn")),
        (["run", "--dataset", "location", "--method", "vanilla", "--mode", "defense",
          "--upper", "0.3"], "--upper applies to relaxloss, not to --method vanilla"),
        (["run", "--dataset", "location", "--method", "vanilla", "--mode", "defense",
          "--epochs", "0"], "--epochs must be a positive integer"),
    ],
)
def test_usage_errors(args, message, capsys):
    with pytest.raises(SystemExit) as info:
        main(args)
    assert info.value.code == 2
    err = capsys.readouterr().err
    for part in (message,) if isinstance(message, str) else message:
        assert part in err
    assert "Traceback" not in err


def test_failures_are_clear(tmp_path, capsys, location_data_home):
    status = main(["run", "--dataset", "texas", "--method", "vanilla", "--mode", "defense",
                   "--data-home", str(tmp_path / "empty"), "--out", str(tmp_path), "-q"])
    err = capsys.readouterr().err
    assert status == 1 and "dataset_texas.tgz" in err and "Traceback" not in err
    status = main(["attack", "--target", str(tmp_path), "--shadow", str(tmp_path / "other")])
    assert status == 1
    assert "is not a run directory (no params.json)" in capsys.readouterr().err


def test_tampered_model_is_refused(runs, capsys):
    source = run_dir(runs, "vanilla")
    target = runs / "tampered"
    target.mkdir()
    for name in ("params.json", "complete.json", "model.safetensors"):
        (target / name).write_bytes((source / name).read_bytes())
    doc = json.loads((source / "model.json").read_text())
    doc["params"]["lr"] = {"value": 1.0}
    (target / "model.json").write_text(json.dumps(doc))
    assert main(["attack", "--target", str(target), "--shadow", str(source / "shadow")]) == 1
    assert "has been modified" in capsys.readouterr().err
    doc["skmia_version"] = "0.0.0"
    doc["digest"] = _digest(doc)
    (target / "model.json").write_text(json.dumps(doc))
    assert main(["attack", "--target", str(target), "--shadow", str(source / "shadow")]) == 1
    assert "saved by skmia 0.0.0" in capsys.readouterr().err


def _tensors(folder):
    from safetensors.numpy import load_file

    return load_file(folder / "model.safetensors")


def _assert_same_runs(first, second, results_first, results_second):
    pd.testing.assert_frame_equal(results_first, results_second)
    for name in ("", "shadow"):
        one = _tensors(run_dir(first, "relaxloss") / name)
        two = _tensors(run_dir(second, "relaxloss") / name)
        assert one.keys() == two.keys() and one
        for key in one:
            np.testing.assert_array_equal(one[key], two[key], err_msg=f"{name} {key}")


def _config(out, data_home, jobs, quiet=True):
    from skmia.experiment import RunConfig

    return RunConfig(dataset="location", method="relaxloss", epochs=2, out=str(out),
                     data_home=str(data_home), white_box=False, verbose=int(not quiet),
                     shadow_method="same", n_jobs=jobs)


@pytest.fixture(scope="module")
def one_job_run(tmp_path_factory, location_data_home):
    """A tiny defense_attack run (2 epochs), trained one model at a time."""
    from skmia.experiment import run

    out = tmp_path_factory.mktemp("jobs1")
    return out, run(_config(out, location_data_home, jobs=1), "defense_attack")


def test_jobs_train_target_and_shadow_at_once_with_the_same_results(
        one_job_run, tmp_path, location_data_home):
    from skmia.experiment import run

    # two loky workers, progress bars on (one line per model)
    results = run(_config(tmp_path, location_data_home, jobs=2, quiet=False),
                  "defense_attack")
    out, expected = one_job_run
    _assert_same_runs(out, tmp_path, expected, results)
    for name in ("", "shadow"):
        done = json.loads((run_dir(tmp_path, "relaxloss") / name / "complete.json").read_text())
        assert done["rows"] == 1002 and done["seconds"] > 0


def test_runs_on_a_dask_cluster_give_the_same_results(one_job_run, tmp_path,
                                                      location_data_home):
    distributed = pytest.importorskip("distributed")
    from joblib import parallel_config

    from skmia.experiment import run

    # worker processes, not threads: the defenses seed torch's generator, which threads
    # would share; two of them, or joblib runs the calls here, one after the other
    with (distributed.LocalCluster(n_workers=2, threads_per_worker=1, processes=True,
                                   dashboard_address=":0") as cluster,
          distributed.Client(cluster) as client, parallel_config(backend="dask"),
          distributed.get_task_stream(client) as stream):
        results = run(_config(tmp_path, location_data_home, jobs=2), "defense_attack")
    assert stream.data, "the trainings ran on the cluster"
    out, expected = one_job_run
    _assert_same_runs(out, tmp_path, expected, results)


@pytest.mark.parametrize("jobs", [0, -2, 1.5, True])
def test_jobs_must_be_positive_or_minus_one(jobs, tmp_path):
    from skmia.experiment import RunConfig, run, train

    config = RunConfig(dataset="purchase-like", method="vanilla", out=str(tmp_path),
                       n_jobs=jobs)
    for call in (lambda: run(config, "defense_attack"), lambda: train(config)):
        with pytest.raises(ValueError, match="n_jobs must be a positive integer or -1"):
            call()
    assert not list(tmp_path.iterdir())


@pytest.mark.parametrize("threads", [0, 1.5, True])
def test_threads_must_be_a_positive_integer(threads, tmp_path):
    from skmia.experiment import RunConfig, attack, run, train

    config = RunConfig(dataset="purchase-like", method="vanilla", out=str(tmp_path),
                       threads=threads)
    for call in (lambda: run(config, "defense_attack"), lambda: train(config),
                 lambda: attack(tmp_path / "t", tmp_path / "s", threads=threads)):
        with pytest.raises(ValueError, match="threads must be a positive integer"):
            call()
    assert not list(tmp_path.iterdir())


def test_two_threads_train_and_attack(tmp_path, location_data_home):
    from skmia.experiment import run

    config = _config(tmp_path, location_data_home, jobs=1)
    config.threads, config.epochs = 2, 1
    before = torch.get_num_threads()
    results = run(config, "defense_attack")
    assert torch.get_num_threads() == before
    assert set(results["attack"]) >= {"loss", "confidence"}
    assert json.loads((run_dir(tmp_path, "relaxloss") / "complete.json").read_text())[
        "rows"] == 1002


def test_a_single_training_runs_in_this_process(monkeypatch, tmp_path, location_data_home):
    import skmia._parallel
    from skmia.experiment import run

    calls = []
    real = skmia._parallel.parallel_map

    def recording(function, tasks, **kwargs):
        calls.append((len(tasks), kwargs["n_jobs"]))
        return real(function, tasks, **kwargs)

    monkeypatch.setattr(skmia._parallel, "parallel_map", recording)
    config = _config(tmp_path, location_data_home, jobs=2)
    config.epochs = 1
    assert run(config, "defense") == run_dir(tmp_path, "relaxloss")
    assert calls == [(1, 1)]


def test_the_former_names_quiet_and_jobs_are_gone(tmp_path):
    from skmia.experiment import RunConfig, attack
    from skmia.experiment._audit_dir import AuditConfig

    with pytest.raises(TypeError, match=r"RunConfig\(\) got quiet=, .* use verbose=0"):
        RunConfig(dataset="location", method="vanilla", quiet=True)
    with pytest.raises(TypeError, match=r"RunConfig\(\) got jobs=, .* use n_jobs"):
        RunConfig(dataset="location", method="vanilla", jobs=2)
    with pytest.raises(TypeError, match=r"AuditConfig\(\) got jobs=, .* use n_jobs"):
        AuditConfig("location", ("vanilla",), jobs=2)
    with pytest.raises(TypeError, match=r"attack\(\) got quiet=, .* use verbose=0"):
        attack(tmp_path, tmp_path, quiet=True)
    with pytest.raises(TypeError, match="unexpected keyword argument 'bogus'"):
        attack(tmp_path, tmp_path, bogus=1)
    assert list(tmp_path.iterdir()) == []  # refused before any folder is touched
