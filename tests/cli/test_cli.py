import subprocess
import sys

import pytest

from skmia.cli import main


def test_split_location(location_data_home, capsys):
    assert main(["split", "--dataset", "location", "--data-home", str(location_data_home)]) == 0
    out = capsys.readouterr().out
    assert "5,010 rows x 446 features, 30 classes" in out
    for part in ("target_train", "target_test", "shadow_train", "shadow_test", "reference"):
        assert f"| {part:<12} |  1,002 |" in out


def test_split_synthetic_needs_no_data(capsys):
    # purchase-like at its default size, protocol relaxloss: 40 % / 20 % / 40 %
    assert main(["split", "--dataset", "purchase-like", "--seed", "3"]) == 0
    out = capsys.readouterr().out
    assert "600 features, 100 classes" in out and "random_state=3" in out


def test_unknown_dataset_is_a_usage_error(capsys):
    with pytest.raises(SystemExit) as info:
        main(["split", "--dataset", "mnist"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "invalid choice: 'mnist'" in err and "location" in err and "purchase-like" in err


def test_missing_data_is_a_clear_failure(tmp_path, capsys):
    status = main(["split", "--dataset", "texas", "--data-home", str(tmp_path), "--no-download"])
    assert status == 1
    err = capsys.readouterr().err
    assert err.startswith("skmia split: error:")
    assert "dataset_texas.tgz" in err and str(tmp_path) in err
    assert "Traceback" not in err


def test_missing_cifar_archive_is_named(tmp_path, capsys):
    assert main(["split", "--dataset", "cifar10", "--data-home", str(tmp_path),
                 "--no-download"]) == 1
    assert "cifar-10-python.tar.gz" in capsys.readouterr().err


def test_console_entry_point_runs():
    result = subprocess.run(
        [sys.executable, "-m", "skmia.cli", "--version"], capture_output=True, text=True,
        check=False,
    )
    assert result.returncode == 0
    assert result.stdout.startswith("skmia ")


def _run_config(*extra):
    from skmia.cli import _build_parser, _run_config

    parser = _build_parser()
    args = parser.parse_args(["run", "--dataset", "location", "--method", "vanilla", "--mode",
                              "defense_attack", *extra])
    return _run_config(parser, args)


def test_jobs_reach_the_run_config():
    assert _run_config().n_jobs == 1
    assert _run_config("--jobs", "2").n_jobs == 2
    assert _run_config("--jobs", "-1").n_jobs == -1


@pytest.mark.parametrize("jobs", ["0", "-2"])
def test_jobs_below_one_are_a_usage_error(jobs, capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--dataset", "location", "--method", "vanilla", "--mode", "defense",
              "--jobs", jobs])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert f"--jobs must be a positive integer or -1 (all cores), got {jobs}" in err
    assert "Traceback" not in err


def test_jobs_in_help(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    assert "--jobs N" in capsys.readouterr().out


def test_help_says_defaults_only_where_they_are_values(capsys):
    with pytest.raises(SystemExit):
        main(["run", "--help"])
    text = capsys.readouterr().out
    assert "(default: None)" not in text and "(default: False)" not in text
    assert "(default: 1000)" in text  # --seed has a real default


def test_a_mistake_in_run_options_is_reported_by_run_s_parser(capsys):
    with pytest.raises(SystemExit) as info:
        main(["run", "--dataset", "location", "--method", "vanilla", "--mode", "defense",
              "--epochs", "0"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert err.startswith("usage: skmia run") and "--epochs must be a positive" in err


def test_threads_reach_the_run_config():
    assert _run_config().threads == 1
    assert _run_config("--threads", "2").threads == 2


@pytest.mark.parametrize("command", ["run", "attack", "compare"])
def test_threads_below_one_are_a_usage_error(command, capsys):
    argv = {"run": ["run", "--dataset", "location", "--method", "vanilla", "--mode",
                    "defense"],
            "attack": ["attack", "--target", "t", "--shadow", "s"],
            "compare": ["compare", "--dataset", "location", "--methods", "vanilla"]}[command]
    with pytest.raises(SystemExit) as info:
        main([*argv, "--threads", "0"])
    assert info.value.code == 2
    err = capsys.readouterr().err
    assert "--threads must be a positive integer, got 0" in err
    assert "Traceback" not in err
