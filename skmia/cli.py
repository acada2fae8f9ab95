"""The ``skmia`` console command.

For now it has one subcommand, ``skmia split``, which loads a dataset and prints the
sizes of its membership split; training and attack runs come with their own commands.
Usage errors exit with status 2, failures (a missing or corrupt data file) with 1; both
print a message, never a traceback.
"""

import argparse
import sys

from . import __version__

__all__ = ["main"]


def _build_parser():
    from .datasets import DATASETS
    from .model_selection import PROTOCOLS

    parser = argparse.ArgumentParser(
        prog="skmia",
        description="Membership-inference defenses and attacks (scikit-learn style).",
    )
    parser.add_argument("--version", action="version", version=f"skmia {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")

    split = sub.add_parser(
        "split",
        help="load a dataset and print the sizes of its membership split",
        description=(
            "Load a dataset from the data home (downloading it if missing) and print the "
            "sizes of the target/shadow membership split of the RelaxLoss reference code."
        ),
    )
    split.add_argument(
        "--dataset", required=True, choices=DATASETS, help="dataset name (required)"
    )
    split.add_argument(
        "--protocol",
        choices=PROTOCOLS,
        default=None,
        help="membership protocol (default: cifar for CIFAR, relaxloss otherwise)",
    )
    split.add_argument(
        "--seed", type=int, default=1000, help="seed of the split (default: %(default)s)"
    )
    split.add_argument(
        "--data-home",
        default=None,
        help="dataset folder (default: $SKMIA_DATA_HOME, else ~/skmia_data)",
    )
    split.add_argument(
        "--no-download",
        action="store_true",
        help="fail instead of downloading a missing file",
    )
    return parser


def _run_split(args):
    from .datasets import load_dataset
    from .model_selection import membership_split

    kwargs = {"return_X_y": True}
    if args.dataset.endswith("-like"):
        kwargs["random_state"] = args.seed
    else:
        kwargs["data_home"] = args.data_home
        kwargs["download_if_missing"] = not args.no_download
    X, y = load_dataset(args.dataset, **kwargs)
    protocol = args.protocol or ("cifar" if args.dataset.startswith("cifar") else "relaxloss")
    split = membership_split(X, y, protocol=protocol, random_state=args.seed)
    n_classes = len(set(y.tolist()))
    print(
        f"{args.dataset}: {X.shape[0]:,} rows x {X.shape[1]:,} features, {n_classes} classes"
    )
    print(f"membership_split(protocol={protocol!r}, random_state={args.seed})")
    print()
    print("| part         |   rows |")
    print("|--------------|-------:|")
    for name, size in split.sizes().items():
        print(f"| {name:<12} | {size:>6,} |")
    return 0


def main(argv=None):
    """Run the ``skmia`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success, 1 when the work failed (missing or corrupt data, …); usage
        errors exit with status 2 through argparse.
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    try:
        return _run_split(args)
    except (OSError, ValueError) as exc:
        print(f"skmia {args.command}: error: {exc}", file=sys.stderr)
        return 1


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
