"""Fit wall time of skmia's defenses against a plain PyTorch training loop.

Same network (the paper's MLP, Purchase-shaped: 600 inputs, 100 classes), same data
(synthetic Purchase-shaped records), same optimiser (SGD lr 0.1, momentum 0.9, weight
decay 1e-4), batch size and epochs. The three trainers run alternately, ``--repeats``
times, and the table shows the median fit time and its ratio to the plain loop.
Target: skmia <= 1.10x the plain loop.

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


def plain_loop(X, y, epochs, batch_size, seed):
    """What a user would write by hand: the reference code's loop over tensors."""
    torch.manual_seed(seed)
    net = MLP(X.shape[1], 100)
    opt = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    Xt, yt = torch.as_tensor(X), torch.as_tensor(y)
    loader = torch.utils.data.DataLoader(
        torch.utils.data.TensorDataset(Xt, yt), batch_size=batch_size, shuffle=True
    )
    net.train()
    for _ in range(epochs):
        for xb, yb in loader:
            opt.zero_grad()
            F.cross_entropy(net(xb), yb).backward()
            opt.step()
    return net


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
