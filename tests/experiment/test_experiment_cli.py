"""The ``skmia`` command's modes, white-box attacks, console script and usage errors."""

import os
import signal
import subprocess
import sys
import time

import pandas as pd
import pytest
from experiment_helpers import BLACK_BOX, skmia

from skmia.cli import main
from skmia.experiment import load_run


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
