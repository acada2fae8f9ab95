"""benchmarks/dpsgd_grid.py: the high-utility DP-SGD search, on a two-candidate grid."""

import pytest

from skmia import _registry


@pytest.fixture(scope="module")
def bench(benchmark_script):
    return benchmark_script("dpsgd_grid")


def test_tiny_grid_reports_epsilon_and_chooses_the_most_accurate(bench, tmp_path,
                                                                 location_data_home, capsys):
    out = tmp_path / "grid.md"
    result = bench.main(["--noise", "0.5", "5.0", "--batch-size", "250", "--lr", "0.1",
                         "--epochs", "1", "--vanilla-epochs", "1", "--data-home",
                         str(location_data_home), "--out", str(out)])
    rows = result["rows"]
    assert [r["noise_multiplier"] for r in rows] == [0.5, 5.0]
    for r in rows:
        assert 0.0 <= r["accuracy"] <= 1.0
    # more noise, same steps: a smaller epsilon, whatever it is
    assert rows[1]["epsilon"] < rows[0]["epsilon"]
    assert rows[result["chosen"]]["accuracy"] == max(r["accuracy"] for r in rows)
    printed = capsys.readouterr().out
    assert "**chosen**" in printed and out.read_text() in printed
    # an epsilon above 10 is flagged as a void guarantee
    assert ("(vacuous)" in printed) == any(r["epsilon"] > 10 for r in rows)


def test_choose_takes_the_most_accurate_and_the_smaller_epsilon_on_ties(bench):
    rows = [{"accuracy": 0.4, "epsilon": 50.0}, {"accuracy": 0.5, "epsilon": 900.0},
            {"accuracy": 0.5, "epsilon": 300.0}]
    assert bench.choose(rows) == 2


def test_the_registry_holds_the_chosen_settings():
    # what the searches chose (benchmarks/docs/dpsgd_grid.md)
    location = _registry.DATASETS["location"].method_values["dpsgd_hu"]
    assert location == {"noise_multiplier": 0.3, "max_grad_norm": 1.0, "batch_size": 500,
                        "lr": 0.5, "max_epochs": 30, "milestones": ()}
    assert _registry.DATASETS["purchase-like"].method_values["dpsgd_hu"]["batch_size"] == 256
