"""Runs with several jobs, threads or a dask cluster give the one-job results."""

import json

import pytest
import torch
from experiment_helpers import _assert_same_runs, _config, run_dir


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
