"""benchmarks/location_relaxloss_grid.py: a two-candidate grid, two epochs."""


import pytest


@pytest.fixture(scope="module")
def bench(benchmark_script):
    return benchmark_script("location_relaxloss_grid")


def test_tiny_grid_prints_a_row_per_candidate_and_a_choice(bench, tmp_path, location_data_home,
                                                          capsys):
    out = tmp_path / "grid.md"
    result = bench.main(["--alpha", "1.0", "2.0", "--upper", "0.3", "--epochs", "2",
                         "--budget", "1.0", "--data-home", str(location_data_home),
                         "--out", str(out)])
    rows = result["rows"]
    assert [(r["alpha"], r["upper"]) for r in rows] == [(1.0, 0.3), (2.0, 0.3)]
    for r in [result["vanilla"], *rows]:
        assert 0.0 <= r["accuracy"] <= 1.0
        assert set(r["aucs"]) == {"loss", "confidence", "modified_entropy"}
        assert r["best_auc"] == max(r["aucs"].values())
    # a budget of 1.0 admits every candidate: the choice is the lowest best AUC
    chosen = result["chosen"]
    assert chosen == min(range(len(rows)), key=lambda i: rows[i]["best_auc"])
    printed = capsys.readouterr().out
    assert printed.count("| relaxloss |") == 2 and "**chosen**" in printed
    assert out.read_text() in printed


def test_validation_halves_are_disjoint_and_cover_reference(bench, location_data_home):
    import numpy as np

    from skmia.model_selection._split import load_split

    split = load_split("location", 1000, location_data_home)
    (X_in, _), (X_out, _) = bench.validation_halves(split, 0)
    assert len(X_in) + len(X_out) == len(split.reference)
    rows = {r.tobytes() for r in np.asarray(split.reference.X)}
    assert {r.tobytes() for r in X_in} | {r.tobytes() for r in X_out} <= rows


def test_choose_respects_the_budget(bench):
    rows = [{"accuracy": 0.40, "best_auc": 0.9}, {"accuracy": 0.30, "best_auc": 0.6},
            {"accuracy": 0.38, "best_auc": 0.8}]
    assert bench.choose(rows, 0.40, 0.03) == 2
    assert bench.choose(rows, 0.40, 0.2) == 1
    assert bench.choose(rows, 0.50, 0.03) is None
