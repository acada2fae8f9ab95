"""The ``skmia`` command's parser and its checks of the options (see :mod:`skmia.cli`).

It imports :mod:`skmia._registry` only, so that ``skmia --help`` answers at once.
"""

import argparse

from . import __version__, _registry
from ._cli_dp import add_audit_dp_parser

# The parser reads skmia._registry only: `skmia --help` (and a usage error) answers at
# once, without importing torch, scikit-learn or pandas; each command imports what it runs.
DATASETS = tuple(_registry.DATASETS)
METHODS = tuple(_registry.METHODS)
MODES = _registry.MODES
PROTOCOLS = _registry.PROTOCOLS
IMAGE_MODELS = _registry.IMAGE_MODELS
IMAGE_DATASETS = tuple(n for n, d in _registry.DATASETS.items() if d.kind == "image")
CALIBRATED_ATTACKS = _registry.CALIBRATED_ATTACKS

_SEED_MAX = 2**32 - 1


def _seed(text):
    """``--seed``: an integer in 0 .. 2**32 - 1 (argparse names the option)."""
    try:
        value = int(text)
    except ValueError:
        value = None
    if value is None or not 0 <= value <= _SEED_MAX:
        raise argparse.ArgumentTypeError(f"must be an integer in 0 .. {_SEED_MAX}, got "
                                         f"{text!r}")
    return value


class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Say a default only where it is a value: an option left unset takes the paper's
    value (or another one its help names), which "(default: None)" would misstate."""

    def _get_help_string(self, action):
        if action.default in (None, False, ()) or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _add_training_options(parser):
    """The options ``run`` and ``compare`` share: what a run trains and where it goes."""
    parser.add_argument("--model", choices=IMAGE_MODELS, default=None,
                        help=f"network, CIFAR only (default there: {IMAGE_MODELS[0]})")
    parser.add_argument("--seed", type=_seed, default=1000,
                        help="seed of the split and training")
    parser.add_argument("--epochs", type=int, default=None,
                        help="training epochs (default: the paper's, 120 tabular / 300 CIFAR)")
    parser.add_argument("--data-home", default=None,
                        help="dataset folder (default: $SKMIA_DATA_HOME, else ~/skmia_data)")
    parser.add_argument("--out", default="results", help="root folder of the run directories")
    parser.add_argument("--device", choices=("cpu", "cuda"), default="cpu",
                        help="torch device")
    parser.add_argument("--white-box", action=argparse.BooleanOptionalAction, default=True,
                        help="also run the gradient-norm (white-box) attacks")


_THREADS_HELP = ("; one keeps the weights the same on any machine and a busy machine from "
                 "slowing the run by more than its share of the cores (reference models "
                 "always train on one thread each)")


def _add_parallel_options(parser, jobs_help, threads_what="the target's and the shadow's "
                          "training and of the attacks"):
    """``--jobs`` (models trained at once) and ``--threads`` (torch threads of each)."""
    parser.add_argument("--jobs", type=int, default=1, metavar="N", help=jobs_help)
    parser.add_argument("--threads", type=int, default=1, metavar="N",
                        help=f"torch threads of {threads_what}{_THREADS_HELP}")


def _build_parser():
    parser = argparse.ArgumentParser(
        prog="skmia",
        description="Membership-inference defenses and attacks (scikit-learn style).",
    )
    parser.add_argument("--version", action="version", version=f"skmia {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    methods = METHODS

    # ------------------------------------------------------------------ skmia run
    run = sub.add_parser(
        "run",
        help="train a defense and/or attack it (the reference code's main.py)",
        description=(
            "Train a defense and attack it, as the RelaxLoss reference code does. Modes: "
            "defense (train the target on target_train), shadow (train the same method on "
            "shadow_train), attack (attack a trained target with a shadow model, by "
            "default a vanilla one, trained if missing), defense_attack (both). Results "
            "go to OUT/<dataset>[/<model>]/<method>/seed<seed>/. Unset options take the "
            "paper's value for the dataset (skmia.defenses.paper_defaults)."
        ),
        formatter_class=_DefaultsFormatter,
    )
    run.add_argument("--dataset", required=True, choices=DATASETS, help="dataset")
    run.add_argument("--method", required=True, choices=methods, help="training method")
    run.add_argument("--mode", required=True, choices=MODES, help="what to do")
    _add_training_options(run)
    run.add_argument("--shadow-method", choices=("vanilla", "same"), default="vanilla",
                     help="attack modes: train the shadow with vanilla or the target's method")
    _add_parallel_options(run, "models trained at the same time (target and shadow, the "
                               "reference models), -1 for all cores; the results do not "
                               "depend on N")
    _add_calibrated_options(run)
    run.add_argument("-q", "--quiet", action="store_true",
                     help="no progress bars, no weak-privacy warnings")
    _add_method_options(run, "method options (default: the paper's value)")

    _add_audit_parser(sub, methods, DATASETS)

    # ---------------------------------------------------------------- skmia attack
    att = sub.add_parser(
        "attack",
        help="attack saved runs (the reference code's run_attacks.py)",
        description="Fit every attack on a shadow run's signals and evaluate it on a "
                    "target run's; writes TARGET/attack/.",
        formatter_class=_DefaultsFormatter,
    )
    att.add_argument("--target", required=True, help="run directory of the target model")
    att.add_argument("--shadow", required=True, help="run directory of the shadow model")
    att.add_argument("--white-box", action=argparse.BooleanOptionalAction, default=True,
                     help="also run the gradient-norm (white-box) attacks")
    att.add_argument("--data-home", default=None, help="dataset folder (default: the run's)")
    att.add_argument("--device", choices=("cpu", "cuda"), default=None,
                     help="torch device (default: the one the run was trained on)")
    _add_parallel_options(att, "reference models trained at the same time (one torch thread "
                               "each), -1 for all cores", threads_what="the attacks")
    _add_calibrated_options(att)
    att.add_argument("-q", "--quiet", action="store_true",
                     help="no progress bars, no weak-privacy warnings")

    # --------------------------------------------------------------- skmia compare
    cmp = _add_methods_command(
        sub, "compare", DATASETS, methods, "compare",
        help="train several methods on one split, attack them alike, print them side by side",
        description=(
            "Run defense_attack for each method (reusing finished runs and their attack "
            "results) and print one row per method: train and test accuracy, the strongest "
            "attack's AUC, the best TPR at 1 % FPR, LiRA's where it ran, and DP-SGD's "
            "accounted epsilon (no empirical epsilon: one model's records prove none). "
            "Each method keeps its own run "
            "directory, OUT/<dataset>[/<model>]/<method>/seed<seed>/, with the paper's "
            "settings."
        ),
    )
    _add_training_options(cmp)
    _add_parallel_options(cmp, "models trained at the same time (each run's target and "
                               "shadow, the reference models), -1 for all cores; the "
                               "results do not depend on N")
    _add_calibrated_options(cmp)
    cmp.add_argument("-q", "--quiet", action="store_true",
                     help="no progress bars, no weak-privacy warnings")
    group = _add_method_options(cmp, "method options, for every compared method they "
                                     "apply to (default: the paper's value)")
    group.add_argument(
        "--method-option", action="append", type=_method_option, default=[],
        metavar="METHOD:NAME=VALUE", dest="method_option",
        help="a constructor argument of one method, e.g. dpsgd:target_epsilon=8 or "
             "vanilla:module__hidden_sizes=(256,) (a Python literal; repeatable; wins over "
             "the options above)")

    # ---------------------------------------------------------------- skmia report
    rep = sub.add_parser(
        "report",
        help="one table of the results of finished runs, or an HTML page of the runs",
        description="Gather attack results of finished runs below the given folders and "
                    "print them as one table; with --html, write one self-contained page "
                    "of every run instead (settings, results, ROC curves, loss histograms, "
                    "privacy-utility plot, training curves).",
    )
    rep.add_argument("paths", nargs="+", metavar="DIR", help="run directories or their roots")
    rep.add_argument("--format", choices=("markdown", "csv"), default="markdown",
                     help="output format of the table (default: %(default)s)")
    rep.add_argument("--html", default=None, metavar="FILE",
                     help="write an HTML report of the runs to FILE (images embedded, no "
                          "network needed to view it) instead of printing the table")

    # ----------------------------------------------------------------- skmia split
    split = sub.add_parser(
        "split",
        help="load a dataset and print the sizes of its membership split",
        description="Load a dataset from the data home (downloading it if missing) and "
                    "print the sizes of the reference code's membership split.",
    )
    split.add_argument("--dataset", required=True, choices=DATASETS, help="dataset name")
    split.add_argument("--protocol", choices=PROTOCOLS, default=None,
                       help="membership protocol (default: cifar for CIFAR, else relaxloss)")
    split.add_argument("--seed", type=_seed, default=1000,
                       help="seed of the split (default: %(default)s)")
    split.add_argument("--data-home", default=None,
                       help="dataset folder (default: $SKMIA_DATA_HOME, else ~/skmia_data)")
    split.add_argument("--no-download", action="store_true",
                       help="fail instead of downloading a missing file")
    add_audit_dp_parser(sub, _DefaultsFormatter, _int_list)  # skmia audit-dp (_cli_dp)
    for subparser in sub.choices.values():  # errors in a command's options: its parser
        subparser.set_defaults(command_parser=subparser)
    return parser


def _add_methods_command(sub, name, datasets, methods, verb, *, help, description):
    """A subcommand over several methods of one dataset: its ``--dataset`` and
    ``--methods`` options, defaults shown in its help."""
    parser = sub.add_parser(name, help=help, description=description,
                            formatter_class=_DefaultsFormatter)
    parser.add_argument("--dataset", required=True, choices=datasets, help="dataset")
    parser.add_argument("--methods", required=True, type=_method_names, metavar="M,N,...",
                        help=f"training methods to {verb}: {', '.join(methods)}")
    return parser


def _add_audit_parser(sub, methods, datasets):
    """``skmia audit``: defense audits with canaries (skmia.audit, arXiv:2404.17399)."""
    aud = _add_methods_command(
        sub, "audit", datasets, methods, "audit",
        help="audit defenses with canaries and leave-one-out LiRA over many models",
        description=(
            "Train --models models of each method on random halves of one pool with "
            "--canaries canaries in it (the same pool, canaries, test part and masks for "
            "every method), attack every (record, model) pair with leave-one-out LiRA and "
            "print, per method, the test accuracy and the TPR at 0.1 %% and 1 %% FPR on the "
            "canaries and on the other records (Aerni, Zhang & Tramer, CCS 2024). Results "
            "go to OUT/<dataset>[/<model>]/audit/seed<seed>/, which a later call continues "
            "(after Ctrl-C) or grows (more --models)."
        ),
    )
    aud.add_argument("--models", type=int, default=64, metavar="K",
                     help="models per method (an even number >= 4)")
    aud.add_argument("--canaries", type=int, default=500, metavar="N", help="canaries")
    aud.add_argument("--canary-kind", choices=tuple(_registry.CANARY_KINDS), default="mislabel",
                     help="what a canary is")
    aud.add_argument("--poisons", type=int, default=0, metavar="N",
                     help="random records in every model's training set, never audited")
    aud.add_argument("--records", type=int, default=None, metavar="N",
                     help="audit a seeded random subset of N records (default: all)")
    aud.add_argument("--test-size", type=float, default=0.2, metavar="F",
                     help="fraction held out as the test part no model trains on")
    aud.add_argument("--hidden", type=_int_list, default=None, metavar="H,H,...",
                     help="hidden layer sizes of the MLP (tabular; default: the paper's)")
    aud.add_argument("--model", choices=IMAGE_MODELS, default=None,
                     help=f"network, CIFAR only (default there: {IMAGE_MODELS[0]})")
    aud.add_argument("--seed", type=_seed, default=1000,
                     help="seed of the canaries, the test part, the masks and the models")
    aud.add_argument("--epochs", type=int, default=None,
                     help="training epochs (default: the paper's, 120 tabular / 300 CIFAR)")
    aud.add_argument("--data-home", default=None,
                     help="dataset folder (default: $SKMIA_DATA_HOME, else ~/skmia_data)")
    aud.add_argument("--out", default="results", help="root folder of the audit directories")
    aud.add_argument("--device", choices=("cpu", "cuda"), default="cpu", help="torch device")
    aud.add_argument("--jobs", type=int, default=1, metavar="N",
                     help="rounds of models trained at once, -1 for all cores; the "
                          "results do not depend on N")
    aud.add_argument("--scheduler", default=None, metavar="ADDRESS",
                     help="train on the Dask cluster whose scheduler is at ADDRESS")
    aud.add_argument("-q", "--quiet", action="store_true",
                     help="no progress bars, no weak-privacy warnings")
    _add_method_options(aud, "method options (default: the paper's value)")


def _add_method_options(parser, title):
    """``--alpha``, ``--target-epsilon``, ...: :data:`skmia._registry.METHOD_OPTIONS`."""
    group = parser.add_argument_group(title)
    for name, option in _registry.METHOD_OPTIONS.items():
        group.add_argument(f"--{name.replace('_', '-')}", type=option.type, default=None,
                           help=option.help)
    return group


def _method_option(text):
    """``METHOD:NAME=VALUE`` as ``(method, name, value)``; the value a Python literal
    (``8``, ``0.5``, ``(256,)``, ``'adam'``), else the text itself."""
    import ast

    method, colon, assignment = text.partition(":")
    name, equals, value = assignment.partition("=")
    method, name = method.strip(), name.strip()
    if not (colon and equals and method and name.isidentifier()):
        raise argparse.ArgumentTypeError(
            f"expected METHOD:NAME=VALUE such as dpsgd:target_epsilon=8, got {text!r}")
    if method not in METHODS:
        raise argparse.ArgumentTypeError(
            f"unknown method {method!r} in {text!r} (choose from {', '.join(METHODS)})")
    try:
        value = ast.literal_eval(value.strip())
    except (ValueError, SyntaxError):
        value = value.strip()
    return method, name, value


def _int_list(text):
    try:
        values = tuple(int(v) for v in text.split(",") if v.strip())
    except ValueError:
        raise argparse.ArgumentTypeError(
            f"expected integers such as 256,128, got {text!r}") from None
    if not values or min(values) < 1:
        raise argparse.ArgumentTypeError(f"expected positive integers, got {text!r}")
    return values


def _attack_names(text):
    names = tuple(n.strip() for n in text.split(",") if n.strip())
    if "all" in names:
        return tuple(CALIBRATED_ATTACKS)
    unknown = [n for n in names if n not in CALIBRATED_ATTACKS]
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown attack(s) {', '.join(unknown)} (choose from "
            f"{', '.join(CALIBRATED_ATTACKS)}, or all)"
        )
    return names


def _method_names(text):
    valid = METHODS
    names = [n.strip() for n in text.split(",") if n.strip()]
    unknown = [n for n in names if n not in valid]
    if unknown or not names:
        raise argparse.ArgumentTypeError(
            f"unknown method(s) {', '.join(unknown) or repr(text)} (choose from "
            f"{', '.join(valid)})"
        )
    if len(set(names)) < len(names):
        raise argparse.ArgumentTypeError(f"a method is given twice in {text!r}")
    return tuple(names)


def _add_calibrated_options(parser):
    parser.add_argument(
        "--attacks", type=_attack_names, default=(), metavar="A,B,...",
        help="attacks calibrated without the shadow, run after the reference code's nine: "
             f"{', '.join(CALIBRATED_ATTACKS)}, or all (none by default)")
    parser.add_argument(
        "--reference-models", type=int, default=None, metavar="K",
        help="size of the bank of reference models that lira, rmia and attack_r need (an "
             "even number; each costs one training of the target); saved in the run's "
             "reference/ folder and reused or grown by later calls")


def _model_option(args):
    """The network: ``--model``, else the dataset's first for CIFAR (None: the MLP).
    The settings refuse a network for tabular data (:mod:`skmia._settings`)."""
    if args.model is None and args.dataset in IMAGE_DATASETS:
        return _registry.DATASETS[args.dataset].models[0]
    return args.model
