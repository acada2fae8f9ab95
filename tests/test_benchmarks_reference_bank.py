"""benchmarks/reference_bank.py: a tiny run end to end, and its presets."""


import pytest


@pytest.fixture(scope="module")
def bench(benchmark_script):
    return benchmark_script("reference_bank")


def test_tiny_run_prints_both_tables(bench, capsys):
    rows = bench.main(["--datasets", "purchase-like", "--models", "mlp256", "--ks", "2",
                       "--epochs", "1", "--purchase-rows", "4000", "--jobs", "2",
                       "--repeats", "1"])
    assert [(r["dataset"], r["model"], r["K"]) for r in rows] == [("purchase-like", "MLP 256", 2)]
    row = rows[0]
    assert min(row["plain"], row["serial"], row["parallel"]) > 0
    assert row["serial_ratio"] == pytest.approx(row["serial"] / row["plain"])
    out = capsys.readouterr().out
    assert "| dataset | model | K | (a) plain PyTorch, " in out
    assert "| (b)/(a) | (c)/(a) |" in out and "| purchase-like | MLP 256 | 2 |" in out
    assert "purchase-like (SYNTHETIC), 4,000 rows x 600, 100 classes" in out
    assert "1 epoch(s), batch 128" in out and "best of 1 timing(s)" in out
    assert "--ks 2" in out and "load average" in out


def test_plain_loop_and_bank_train_the_same_network(bench):
    import numpy as np

    from skmia.datasets import make_purchase_like

    X, y = make_purchase_like(n_samples=4000, random_state=0, return_X_y=True)
    (net,) = bench.plain_fits(X, y, (256,), 1, 1)
    bank = bench.bank_fit(X, y, (256,), 2, 1, 1)
    assert len(bank.estimators_) == 2
    assert (bank.in_mask_.sum(axis=1) == 1).all()
    shapes = [tuple(p.shape) for p in net.parameters()]
    assert shapes == [tuple(p.shape) for p in bank.estimators_[0].module_.parameters()]
    assert np.isclose(bank.estimators_[0].lr, 0.1)


def test_presets(bench):
    full = bench.parse_args([])
    assert full.ks == (4, 16) and full.datasets == ["location", "purchase-like"]
    assert full.models == ["paper", "mlp256"] and full.jobs == 2
    quick = bench.parse_args(["--quick"])
    assert quick.ks == (4,) and quick.epochs < full.epochs
    assert bench.parse_args(["--quick", "--epochs", "3"]).epochs == 3
    assert full.repeats == 2 and quick.repeats == 1
    for bad in (["--ks", "3"], ["--jobs", "1"], ["--epochs", "0"], ["--repeats", "0"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)
