"""``skmia audit-dp``: audit DP-SGD's privacy claim with canaries (its parser and command).

The parser part imports :mod:`skmia._registry` only (``skmia --help`` stays fast); the
command imports what it runs.
"""

import argparse
import time

from . import _registry

__all__ = []

_TABULAR = tuple(n for n, d in _registry.DATASETS.items() if d.kind != "image")


def _floats(text):
    try:
        values = tuple(float(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected numbers such as 0.5,1,2, got {text!r}") from None
    if not values or min(values) <= 0:
        raise argparse.ArgumentTypeError(f"expected positive numbers, got {text!r}")
    return values


def add_audit_dp_parser(sub, formatter_class, int_list):
    """Add ``skmia audit-dp`` to the subcommands ``sub``."""
    parser = sub.add_parser(
        "audit-dp", formatter_class=formatter_class,
        help="audit DP-SGD's claimed epsilon with canaries (one run or many)",
        description=(
            "Train DP-SGD at each noise multiplier (or target epsilon) with canaries, each "
            "included by a fair coin, and bound epsilon from below (one-run bounds of "
            "Steinke et al. and Mahloujifar et al.; with --runs, also Clopper-Pearson and "
            "Gaussian-DP bounds over runs). Prints the claimed epsilon against each lower "
            "bound with the verdict; writes a table and a plot to "
            "OUT/<dataset>/audit_dp/seed<seed>/, whose finished settings a later call keeps."
        ),
    )
    parser.add_argument("--dataset", required=True, choices=_TABULAR, help="dataset")
    parser.add_argument("--noise-multipliers", type=_floats, default=(), metavar="S,S,...",
                        help="noise multipliers to audit")
    parser.add_argument("--target-epsilons", type=_floats, default=(), metavar="E,E,...",
                        help="target epsilons to audit (the noise chosen to reach each)")
    parser.add_argument("--canaries", type=int, default=1000, metavar="N",
                        help="canaries per training")
    parser.add_argument("--canary-kind", default="mislabel",
                        choices=[k for k in _registry.CANARY_KINDS
                                 if k not in ("duplicate_mislabel", "blank")],
                        help="input canaries (black box)")
    parser.add_argument("--white-box", action="store_true",
                        help="gradient canaries in DP-SGD's noisy steps instead of records")
    parser.add_argument("--runs", type=int, default=1, metavar="R",
                        help="audited trainings; more than 1: a many-run audit")
    parser.add_argument("--reference", type=int, default=16, metavar="K",
                        help="many-run audit: calibration trainings, never audited")
    parser.add_argument("--records", type=int, default=None, metavar="N",
                        help="a seeded random subset of N records (default: all)")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: the paper's)")
    parser.add_argument("--hidden", type=int_list, default=None, metavar="H,H,...",
                        help="hidden layer sizes of the MLP (default: the paper's)")
    parser.add_argument("--batch-size", type=int, default=128, help="expected batch size")
    parser.add_argument("--delta", type=float, default=1e-5, help="the claim's delta")
    parser.add_argument("--confidence", type=float, default=0.95,
                        help="confidence of the verdict")
    parser.add_argument("--seed", type=int, default=1000,
                        help="seed of the canaries, their coins and the models")
    parser.add_argument("--data-home", default=None,
                        help="dataset folder (default: $SKMIA_DATA_HOME, else ~/skmia_data)")
    parser.add_argument("--out", default="results", help="root folder of the audits")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="torch device")
    parser.add_argument("--jobs", type=int, default=1, metavar="N",
                        help="many-run audit: trainings at once")
    return parser


def cmd_audit_dp(parser, args):
    """Run ``skmia audit-dp``; print the table. The settings check the options
    (:class:`skmia._settings.DPAuditConfig`); :func:`skmia.cli.main` turns a refused one
    into a usage error."""
    from ._settings import DPAuditConfig

    config = DPAuditConfig(
        dataset=args.dataset, noise_multipliers=args.noise_multipliers,
        target_epsilons=args.target_epsilons, canaries=args.canaries,
        canary_kind=args.canary_kind, white_box=args.white_box, runs=args.runs,
        reference=args.reference, records=args.records, epochs=args.epochs,
        hidden=args.hidden, batch_size=args.batch_size, delta=args.delta,
        confidence=args.confidence, seed=args.seed, out=args.out, data_home=args.data_home,
        device=args.device, n_jobs=args.jobs).check()
    from .experiment._dp_audit import run_dp_audit
    from .report._dp import format_dp_audit_table

    start = time.perf_counter()
    table = run_dp_audit(config)
    print(format_dp_audit_table(table), end="")
    print(f"\nDP audit in {table.attrs['folder']} [{time.perf_counter() - start:.0f} s]")
    return 0
