"""benchmarks/reference_bank.py: a tiny run end to end, its fresh-process child, the
tolerance mode and the presets."""

import json

import pytest


@pytest.fixture(scope="module")
def bench(benchmark_script):
    return benchmark_script("reference_bank")


def test_tiny_run_prints_the_table(bench, capsys):
    rows = bench.main(["--datasets", "purchase-like", "--models", "mlp256", "--ks", "2",
                       "--epochs", "1", "--rows", "2000", "--threads", "1", "--repeats", "1",
                       "--no-fresh"])
    assert [(r["dataset"], r["network"], r["K"], r["threads"]) for r in rows] == [
        ("purchase-like", "MLP 256", 2, 1)]
    row = rows[0]
    assert min(row["plain"], row["per_model"], row["vectorised"], row["flop_limit"]) > 0
    out = capsys.readouterr().out
    assert "| dataset | network | K | threads | (a) plain loop | (b) model by model | " in out
    assert "| (c)/(a) | (b)/(c) | (b, 1 thread)/(c) | (c)/limit | (d)/limit |" in out
    assert f"| purchase-like | MLP 256 | 2 | 1 | {row['plain']:.2f} |" in out
    assert f"{row['vectorised'] / row['plain']:.2f}x" in out
    ratio = f"{row['per_model'] / row['vectorised']:.2f}x"
    assert f"| {ratio} | {ratio} |" in out  # (b)/(c), and its one-thread (b) the same
    assert out.rstrip().endswith("| - |")  # no fresh timing: no (d)/limit
    assert "purchase-like (SYNTHETIC), 2,000 rows x 600, 100 classes" in out
    assert "--ks 2" in out and "load average" in out and "MLP 256 1;" in out


def test_the_fresh_process_child_times_one_fit(bench, capsys):
    spec = {"dataset": "purchase-like", "rows": 2000, "data_home": None, "hidden": [8],
            "K": 2, "epochs": 1, "threads": 1, "vectorize": "auto"}
    bench.main(["--child", json.dumps(spec)])
    timed = json.loads(capsys.readouterr().out.strip())
    assert timed["seconds"] >= timed["dynamo"] >= 0 and timed["seconds"] > 0


def test_flops_by_hand(bench):
    import numpy as np

    X, y = np.zeros((10, 4)), np.array([0, 1, 2] * 3 + [0])
    # 4 -> 5 -> 3: 4*5+5 + 5*3+3 = 43 parameters, 5 rows per model, 2 epochs, 3 models
    assert bench.flops(X, y, (5,), 3, 2) == 6 * 43 * 5 * 2 * 3


def test_tolerance_mode(bench, capsys):
    bench.main(["--tolerance", "--datasets", "purchase-like", "--rows", "2000", "--ks", "2",
                "--epochs", "2"])
    out = capsys.readouterr().out
    for name in ("VanillaClassifier", "RelaxLossClassifier"):
        line = next(line for line in out.splitlines() if line.startswith(name))
        weights = float(line.split("max |weight difference| ")[1].split(",")[0])
        assert 0 <= weights < 1e-5


def test_plain_loop_and_bank_train_the_same_network(bench):
    from skmia.datasets import make_purchase_like

    X, y = make_purchase_like(n_samples=2000, random_state=0, return_X_y=True)
    (net,) = bench.plain_fits(X, y, (16,), 1, 1)
    bank = bench.make_bank((16,), 2, 1, 1, "auto").fit(X, y)
    assert len(bank.estimators_) == 2 and (bank.in_mask_.sum(axis=1) == 1).all()
    shapes = [tuple(p.shape) for p in net.parameters()]
    assert shapes == [tuple(p.shape) for p in bank.estimators_[0].module_.parameters()]
    assert bank.estimators_[0].lr == 0.1 and bank.estimators_[0].batch_size == 128


def test_presets(bench):
    full = bench.parse_args([])
    assert full.ks == (16, 64) and full.datasets == ["location", "purchase-like"]
    assert full.models == ["mlp256", "paper"] and full.threads == (1, 2)
    quick = bench.parse_args(["--quick"])
    assert quick.ks == (16,) and quick.models == ["mlp256"] and quick.repeats == 1
    assert bench.parse_args(["--quick", "--ks", "4"]).ks == [4]
    for bad in (["--ks", "3"], ["--threads", "0"], ["--epochs", "0"], ["--repeats", "0"],
                ["--rows", "10"]):
        with pytest.raises(SystemExit):
            bench.parse_args(bad)


def test_dpsgd_rows_time_each_path_and_compare_with_vanilla(bench, capsys, monkeypatch):
    import numpy as np
    from sklearn.datasets import make_classification

    from skmia.defenses import DPSGDClassifier, VanillaClassifier

    X, y = make_classification(200, n_features=6, n_informative=4, n_classes=3,
                               random_state=0)
    small = {"max_epochs": 1, "module__hidden_sizes": (4,), "batch_size": 40}
    recipes = {"vanilla": VanillaClassifier(**small),
               "dpsgd (ε=8)": DPSGDClassifier(noise_multiplier=1.0, accountant="rdp", **small),
               "dpsgd_hu": DPSGDClassifier(noise_multiplier=0.3, accountant="rdp", **small)}
    monkeypatch.setattr(bench, "audit_recipes",  # the audit's pool needs Location30
                        lambda data_home, epochs: (X.astype(np.float32), y, recipes))
    rows = bench.main(["--dpsgd", "--ks", "2", "--threads", "1", "--dp-per-model-ks", "2"])
    (row,) = rows
    assert set(row) == {"K", "threads", *(f"{label}, batched{cpu}" for label in recipes
                                          for cpu in ("", " (CPU)")),
                        "dpsgd (ε=8), model by model", "dpsgd_hu, model by model"}
    out = capsys.readouterr().out
    ratio = row["dpsgd_hu, batched"] / row["vanilla, batched"]
    assert f"| 2 | 1 | {row['vanilla, batched']:.2f} |" in out
    assert f"| {ratio:.2f}x |" in out
