"""benchmarks/reference_attacks.py: the tiny preset end to end."""


import numpy as np
import pandas as pd
import pytest


@pytest.fixture(scope="module")
def bench(benchmark_script):
    return benchmark_script("reference_attacks")


def test_tiny_preset_writes_a_row_per_attack_and_bank_size(bench, tmp_path, location_data_home,
                                                          capsys):
    results = bench.main(["--tiny", "--k", "2", "4", "--out", str(tmp_path),
                          "--data-home", str(location_data_home)])
    assert sorted(p.name for p in tmp_path.iterdir()) == ["results.csv", "summary.md"]
    on_disk = pd.read_csv(tmp_path / "results.csv")
    assert len(on_disk) == len(results) == 4 + 2 * len(bench.reference_attacks())
    assert set(on_disk["k"]) == {0, 2, 4}
    # online LiRA needs 2 IN and 2 OUT models per record: with K=2 it says why not
    lira = on_disk[on_disk["attack"] == "LiRA online"].set_index("k")
    assert np.isnan(lira.loc[2, "auc"]) and "fewer than 2 IN" in lira.loc[2, "notes"]
    assert 0.0 <= lira.loc[4, "auc"] <= 1.0
    assert "empirical_epsilon" in on_disk and on_disk["empirical_epsilon"].notna().sum() == 1
    printed = capsys.readouterr().out
    assert "| vanilla |" in printed and "K=4" in printed
    assert (tmp_path / "summary.md").read_text() in printed
