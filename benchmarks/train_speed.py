"""Fit wall time of skmia's defenses against a plain PyTorch training loop.

Same network (the paper's MLP, Purchase-shaped: 600 inputs, 100 classes), same data
(synthetic Purchase-shaped records), same optimiser (SGD lr 0.1, momentum 0.9, weight
decay 1e-4), batch size and epochs. The plain loop is what a user writes by hand
(``DataLoader`` over tensors, collating one record at a time); the row-gather loop
indexes each shuffled batch out of the tensors, as skmia does; the fixed-batch loop takes
the same steps on one batch, the floor that no data pipeline can beat. The trainers run
alternately, ``--repeats`` times, and the table shows the median fit time and its ratio
to the plain loop. Target: skmia <= 1.10x the plain loop.

    python benchmarks/train_speed.py            # 40,000 rows, 2 epochs, 5 repeats
    python benchmarks/train_speed.py --rows 5000 --epochs 1 --repeats 2   # quick
"""

import argparse
import platform
import statistics
import time

import numpy as np
import torch
import torch.nn.functional as F

from skmia.datasets import make_purchase_like
from skmia.defenses import RelaxLossClassifier, VanillaClassifier
from skmia.nn import MLP


def _tensor_loop(X, y, epochs, batch_size, seed, batches):
    torch.manual_seed(seed)
    net = MLP(X.shape[1], 100)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    net.train()
    for _ in range(epochs):
        for xb, yb in batches(Xt, yt, batch_size):
            opt.zero_grad()
            F.cross_entropy(net(xb), yb).backward()
            opt.step()
    return net


def _data_loader(Xt, yt, batch_size):
    """The reference code's batches: a shuffling DataLoader that collates record by record."""
    dataset = torch.utils.data.TensorDataset(Xt, yt)
    return torch.utils.data.DataLoader(dataset, batch_size=batch_size, shuffle=True)


def _gathered(Xt, yt, batch_size):
    """Shuffled batches, each gathered from the rows of a fresh permutation."""
    order = torch.randperm(len(Xt))
    for start in range(0, len(Xt), batch_size):
        rows = order[start : start + batch_size]
        yield Xt[rows], yt[rows]


def _fixed(Xt, yt, batch_size):
    """The first batch over and over: the same number of steps, no data movement."""
    xb, yb = Xt[:batch_size], yt[:batch_size]
    for _ in range(0, len(Xt), batch_size):
        yield xb, yb


def plain_loop(X, y, epochs, batch_size, seed):
    """What a user would write by hand: the reference code's loop over tensors."""
    return _tensor_loop(X, y, epochs, batch_size, seed, _data_loader)


def gather_loop(X, y, epochs, batch_size, seed):
    """A hand-written loop that gathers each shuffled batch (what skmia does)."""
    return _tensor_loop(X, y, epochs, batch_size, seed, _gathered)


def fixed_batch_loop(X, y, epochs, batch_size, seed):
    """The floor: the same steps on one fixed batch (no shuffling, no gather)."""
    return _tensor_loop(X, y, epochs, batch_size, seed, _fixed)


def skmia_fit(cls, **extra):
    def fit(X, y, epochs, batch_size, seed):
        return cls(max_epochs=epochs, batch_size=batch_size, random_state=seed, **extra).fit(X, y)

    return fit


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--rows", type=int, default=40_000)
    parser.add_argument("--epochs", type=int, default=2)
    parser.add_argument("--batch-size", type=int, default=128)
    parser.add_argument("--repeats", type=int, default=5)
    parser.add_argument("--threads", type=int, default=None, help="torch threads")
    args = parser.parse_args(argv)
    if args.threads:
        torch.set_num_threads(args.threads)

    X, y = make_purchase_like(n_samples=args.rows, random_state=0, return_X_y=True)
    # all 100 classes must be present so that every trainer builds the same 100-way MLP
    assert len(np.unique(y)) == 100
    trainers = {
        "plain PyTorch loop": plain_loop,
        "fixed-batch loop (no gather)": fixed_batch_loop,
        "row-gather loop": gather_loop,
        "VanillaClassifier": skmia_fit(VanillaClassifier),
        "RelaxLossClassifier": skmia_fit(RelaxLossClassifier, alpha=0.8, upper=0.3),
    }
    plain_loop(X[:512], y[:512], 1, args.batch_size, 0)  # warm up torch
    times = {name: [] for name in trainers}
    for repeat in range(args.repeats):
        for name, fit in trainers.items():  # alternated, so drift hits all alike
            start = time.perf_counter()
            fit(X, y, args.epochs, args.batch_size, repeat)
            times[name].append(time.perf_counter() - start)

    base = statistics.median(times["plain PyTorch loop"])
    print(
        f"{args.rows:,} rows x {X.shape[1]} features, MLP 1024-512-256-128, "
        f"{args.epochs} epochs, batch {args.batch_size}, median of {args.repeats}; "
        f"torch {torch.__version__}, {torch.get_num_threads()} threads, "
        f"{platform.processor() or platform.machine()}"
    )
    print()
    print("| trainer | fit time (s) | vs plain loop |")
    print("|---|---:|---:|")
    for name, values in times.items():
        med = statistics.median(values)
        print(f"| {name} | {med:.2f} | {med / base:.2f}x |")


if __name__ == "__main__":
    main()
