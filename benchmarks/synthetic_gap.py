"""How much the paper's MLP overfits the synthetic purchase-like and texas-like data.

Generates each dataset (defaults of ``make_purchase_like`` / ``make_texas_like`` unless
``--n-samples``), splits it in half at random into members (trained on) and non-members,
trains ``skmia.nn.MLP`` the reference way (SGD lr 0.1, momentum 0.9, weight decay 1e-4,
batch 128, cross-entropy, constant learning rate) with a plain PyTorch loop, and prints a
markdown table of train / test accuracy and the mean cross-entropy of members and
non-members. ``seconds`` is the time to train and evaluate, without data generation.

    python benchmarks/synthetic_gap.py                      # both datasets, 30 epochs
    python benchmarks/synthetic_gap.py --dataset texas-like --epochs 10

The data is SYNTHETIC: these numbers say nothing about the real Purchase100 / Texas100.
"""

import argparse
import time

import numpy as np
import torch
from torch.nn import functional as F

import skmia.datasets
from skmia import _registry
from skmia.nn import MLP

# the registry's synthetic datasets and their generators (make_purchase_like, ...)
GENERATORS = {name: getattr(skmia.datasets, d.loader)
              for name, d in _registry.DATASETS.items() if d.synthetic}


def evaluate(net, X, y, batch_size=1024):
    """Return (accuracy, mean cross-entropy) of ``net`` on ``(X, y)``."""
    net.eval()
    correct, loss = 0, 0.0
    with torch.no_grad():
        for start in range(0, len(y), batch_size):
            logits = net(X[start : start + batch_size])
            target = y[start : start + batch_size]
            correct += (logits.argmax(1) == target).sum().item()
            loss += F.cross_entropy(logits, target, reduction="sum").item()
    return correct / len(y), loss / len(y)


def run(name, n_samples, epochs, seed, verbose):
    kwargs = {} if n_samples is None else {"n_samples": n_samples}
    X, y = GENERATORS[name](random_state=seed, return_X_y=True, **kwargs)
    perm = np.random.RandomState(seed).permutation(len(y))
    members, non_members = perm[: len(y) // 2], perm[len(y) // 2 :]
    X_train, y_train = torch.from_numpy(X[members]), torch.from_numpy(y[members])
    X_test, y_test = torch.from_numpy(X[non_members]), torch.from_numpy(y[non_members])
    del X

    torch.manual_seed(seed)
    net = MLP(X_train.shape[1], int(y.max()) + 1)
    optimizer = torch.optim.SGD(net.parameters(), lr=0.1, momentum=0.9, weight_decay=1e-4)
    order = torch.Generator().manual_seed(seed)
    start = time.perf_counter()
    for epoch in range(epochs):
        net.train()
        for batch in torch.randperm(len(y_train), generator=order).split(128):
            optimizer.zero_grad()
            F.cross_entropy(net(X_train[batch]), y_train[batch]).backward()
            optimizer.step()
        if verbose:
            train_acc, train_loss = evaluate(net, X_train, y_train)
            test_acc, _ = evaluate(net, X_test, y_test)
            print(
                f"  {name} epoch {epoch + 1}: train loss {train_loss:.4f}, "
                f"train acc {train_acc:.3f}, test acc {test_acc:.3f}",
                flush=True,
            )
    train_acc, member_loss = evaluate(net, X_train, y_train)
    test_acc, non_member_loss = evaluate(net, X_test, y_test)
    seconds = time.perf_counter() - start
    return {
        "dataset": name,
        "n_train": len(y_train),
        "n_test": len(y_test),
        "epochs": epochs,
        "train acc": f"{train_acc:.1%}",
        "test acc": f"{test_acc:.1%}",
        "gap": f"{train_acc - test_acc:.1%}",
        "member loss": f"{member_loss:.4f}",
        "non-member loss": f"{non_member_loss:.4f}",
        "seconds": f"{seconds:.0f}",
    }


def markdown_table(rows):
    header = list(rows[0])
    lines = ["| " + " | ".join(header) + " |", "|" + "---|" * len(header)]
    lines += ["| " + " | ".join(str(row[key]) for key in header) + " |" for row in rows]
    return "\n".join(lines)


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument(
        "--dataset", choices=[*GENERATORS, "both"], default="both", help="default: both"
    )
    parser.add_argument(
        "--n-samples", type=int, default=None, help="records (default: the generator's default)"
    )
    parser.add_argument("--epochs", type=int, default=30, help="default: 30")
    parser.add_argument(
        "--seed", type=int, default=0, help="data, split and training seed (default: 0)"
    )
    parser.add_argument(
        "--threads", type=int, default=None, help="torch CPU threads (default: torch's choice)"
    )
    parser.add_argument("--verbose", action="store_true", help="print accuracy every epoch")
    args = parser.parse_args(argv)
    if args.epochs < 1:
        parser.error("--epochs must be >= 1")
    if args.threads is not None:
        torch.set_num_threads(args.threads)

    names = list(GENERATORS) if args.dataset == "both" else [args.dataset]
    print(f"torch {torch.__version__}, {torch.get_num_threads()} threads; SYNTHETIC data")
    rows = [run(name, args.n_samples, args.epochs, args.seed, args.verbose) for name in names]
    print(markdown_table(rows))


if __name__ == "__main__":
    main()
