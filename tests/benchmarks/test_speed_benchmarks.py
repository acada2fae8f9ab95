"""benchmarks/end_to_end.py and benchmarks/thread_policy.py on tiny settings."""

import re

import pytest


def _cells(line):
    return [cell.strip() for cell in line.strip().strip("|").split("|")]


def test_end_to_end_prints_each_phase_both_runs_and_their_ratio(capsys, benchmark_script):
    bench = benchmark_script("end_to_end")
    bench.main(["--samples", "10000", "--epochs", "1", "--baseline"])
    printed = capsys.readouterr().out
    lines = printed.splitlines()
    header = next(line for line in lines if line.startswith("| phase"))
    assert _cells(header) == ["phase (wall s)", "data", "--jobs 2 --threads 1",
                              "one after the other, 2 threads", "ratio"]
    rows = {_cells(line)[0]: _cells(line)[1:] for line in lines
            if line.startswith("| ") and not line.startswith(("| phase", "|---", "| attack |"))}
    data = float(rows["data: generate and split"][0])
    phases = ["training: both models, wall",
              "attacks: signals of both models (white-box included)",
              "attacks: fit and evaluate nine attacks"]
    for column in (1, 2):
        values = [float(rows[name][column]) for name in phases]
        total = float(rows["**total** (with data)"][column])
        assert total == pytest.approx(data + sum(values), abs=0.2)
    for name in [*phases, "**total** (with data)"]:
        ours, theirs = float(rows[name][1]), float(rows[name][2])
        ratio = float(rows[name][3].rstrip("x"))
        if theirs >= 0.5:  # seconds are printed to 0.1 s, the ratio to 0.01
            low, high = (ours - 0.05) / (theirs + 0.05), (ours + 0.05) / (theirs - 0.05)
            assert low - 0.005 <= ratio <= high + 0.005, (name, ours, theirs, ratio)
    attacks = [line for line in lines if re.match(r"\| (NN|confidence|loss|grad_)", line)]
    assert len(attacks) >= 7  # the nine attacks' rows
    assert re.search(r"total \d+ s = [\d.]+ min; goal 720 s", printed)


def test_thread_policy_table_divides_busy_by_idle(monkeypatch, capsys, benchmark_script):
    bench = benchmark_script("thread_policy")
    fake = {}
    for i, name in enumerate(bench.POLICIES):
        fake[name, False] = (10.0, 4.0 + i, 4000, 4.0 + i)
        fake[name, True] = (20.0, 8.0 + 4 * i, 4000, 30.0)
    monkeypatch.setattr(bench, "measure", lambda epochs, repeats: fake)
    bench.main(["--epochs", "1"])
    lines = [line for line in capsys.readouterr().out.splitlines()
             if line.startswith("| ") and "policy" not in line]
    assert len(lines) == len(bench.POLICIES)
    for i, line in enumerate(lines):
        cells = _cells(line)
        idle, busy = 4.0 + i, 8.0 + 4 * i
        assert float(cells[1]) == idle and float(cells[2]) == busy
        assert cells[3] == f"{busy / idle:.2f}x" and cells[4] == f"{busy / 4.0:.2f}x"
        assert float(cells[5]) == 30.0 and cells[6] == f"{30.0 / idle:.2f}x"


def test_thread_policy_runs_the_cli_and_reads_its_training_time(tmp_path, benchmark_script):
    bench = benchmark_script("thread_policy")
    wall, seconds, rows = bench.train_seconds(1, {}, 1, tmp_path)
    assert rows == 4000  # purchase-like's target_train
    assert 0 < seconds < wall


def test_thread_policy_takes_the_median_of_repeats(monkeypatch, benchmark_script):
    bench = benchmark_script("thread_policy")
    runs = iter([2.0, 9.0, 4.0])

    def once(epochs):
        value = next(runs)
        return {("p", False): (value + 1, value, 4000)}

    monkeypatch.setattr(bench, "_measure_once", once)
    assert bench.measure(1, repeats=3) == {("p", False): (5.0, 4.0, 4000, 9.0)}
