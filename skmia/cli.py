"""The ``skmia`` console command: the reference code's ``main.py`` and ``run_attacks.py``.

``skmia run`` trains defenses and attacks them in the reference's four modes,
``skmia attack`` evaluates saved runs, ``skmia report`` tabulates finished runs and
``skmia split`` prints a dataset's membership split. Usage errors exit with status 2
and list the valid choices; failures (missing data, an unfinished run, ...) exit with
status 1; neither prints a traceback.
"""

import argparse
import contextlib
import signal
import sys
import threading
import time

from . import __version__, _registry
from ._rundir import escape_text

__all__ = ["main"]

class _DefaultsFormatter(argparse.ArgumentDefaultsHelpFormatter):
    """Say a default only where it is a value: an option left unset takes the paper's
    value (or another one its help names), which "(default: None)" would misstate."""

    def _get_help_string(self, action):
        if action.default in (None, False, ()) or "%(default)" in (action.help or ""):
            return action.help
        return super()._get_help_string(action)


def _add_training_options(parser):
    """The options ``run`` and ``compare`` share: what a run trains and where it goes."""
    from .experiment import IMAGE_MODELS

    parser.add_argument("--model", choices=IMAGE_MODELS, default=None,
                        help=f"network, CIFAR only (default there: {IMAGE_MODELS[0]})")
    parser.add_argument("--seed", type=int, default=1000,
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


def _check_parallel_options(parser, args):
    if args.jobs < 1 and args.jobs != -1:
        parser.error(f"--jobs must be a positive integer or -1 (all cores), got {args.jobs}")
    if args.threads < 1:
        parser.error(f"--threads must be a positive integer, got {args.threads}")


def _build_parser():
    from .datasets import DATASETS
    from .experiment import MODES, method_classes
    from .model_selection import PROTOCOLS

    parser = argparse.ArgumentParser(
        prog="skmia",
        description="Membership-inference defenses and attacks (scikit-learn style).",
    )
    parser.add_argument("--version", action="version", version=f"skmia {__version__}")
    sub = parser.add_subparsers(dest="command", required=True, metavar="COMMAND")
    methods = tuple(method_classes())

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
    run.add_argument("-q", "--quiet", action="store_true", help="no progress bars")
    group = run.add_argument_group("method options (default: the paper's value)")
    for name, option in _registry.METHOD_OPTIONS.items():
        group.add_argument(f"--{name.replace('_', '-')}", type=option.type, default=None,
                           help=option.help)

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
    att.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

    # --------------------------------------------------------------- skmia compare
    cmp = sub.add_parser(
        "compare",
        help="train several methods on one split, attack them alike, print them side by side",
        description=(
            "Run defense_attack for each method (reusing finished runs and their attack "
            "results) and print one row per method: train and test accuracy, the strongest "
            "attack's AUC, the best TPR at 1 % FPR, LiRA's where it ran, DP-SGD's epsilon "
            "and the strongest attack's empirical epsilon. Each method keeps its own run "
            "directory, OUT/<dataset>[/<model>]/<method>/seed<seed>/, with the paper's "
            "settings."
        ),
        formatter_class=_DefaultsFormatter,
    )
    cmp.add_argument("--dataset", required=True, choices=DATASETS, help="dataset")
    cmp.add_argument("--methods", required=True, type=_method_names, metavar="M,N,...",
                     help=f"training methods to compare: {', '.join(methods)}")
    _add_training_options(cmp)
    _add_parallel_options(cmp, "models trained at the same time (each run's target and "
                               "shadow, the reference models), -1 for all cores; the "
                               "results do not depend on N")
    _add_calibrated_options(cmp)
    cmp.add_argument("-q", "--quiet", action="store_true", help="no progress bars")

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
    split.add_argument("--seed", type=int, default=1000,
                       help="seed of the split (default: %(default)s)")
    split.add_argument("--data-home", default=None,
                       help="dataset folder (default: $SKMIA_DATA_HOME, else ~/skmia_data)")
    split.add_argument("--no-download", action="store_true",
                       help="fail instead of downloading a missing file")
    for subparser in sub.choices.values():  # errors in a command's options: its parser
        subparser.set_defaults(command_parser=subparser)
    return parser


def _attack_names(text):
    from .attacks import CALIBRATED_ATTACKS

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
    from .experiment import method_classes

    valid = tuple(method_classes())
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
    from .attacks import CALIBRATED_ATTACKS

    parser.add_argument(
        "--attacks", type=_attack_names, default=(), metavar="A,B,...",
        help="attacks calibrated without the shadow, run after the reference code's nine: "
             f"{', '.join(CALIBRATED_ATTACKS)}, or all (none by default)")
    parser.add_argument(
        "--reference-models", type=int, default=None, metavar="K",
        help="size of the bank of reference models that lira, rmia and attack_r need (an "
             "even number; each costs one training of the target); saved in the run's "
             "reference/ folder and reused or grown by later calls")


def _check_calibrated_options(parser, args):
    from .attacks import CALIBRATED_ATTACKS

    needs = [n for n in args.attacks if CALIBRATED_ATTACKS[n][1]]
    if needs and args.reference_models is None:
        parser.error(f"--attacks {','.join(needs)} needs --reference-models K (the number of "
                     "reference models to calibrate against, e.g. 16)")
    k = args.reference_models
    if k is not None and (k < 2 or k % 2):
        parser.error(f"--reference-models must be an even number >= 2, got {k}")


def _checked_run_options(parser, args):
    """Check the options ``run`` and ``compare`` share; the network (None: the MLP)."""
    from .experiment import IMAGE_DATASETS

    if args.dataset in IMAGE_DATASETS:
        model = args.model or _registry.DATASETS[args.dataset].models[0]
    elif args.model is not None:
        parser.error(
            f"--model {args.model} applies to CIFAR only; {args.dataset} uses the paper's "
            f"MLP (valid datasets for --model: {', '.join(IMAGE_DATASETS)})"
        )
    else:
        model = None
    if args.epochs is not None and args.epochs < 1:
        parser.error(f"--epochs must be a positive integer, got {args.epochs}")
    _check_parallel_options(parser, args)
    _check_calibrated_options(parser, args)
    return model


def _run_config(parser, args):
    from .experiment import RunConfig

    model = _checked_run_options(parser, args)
    overrides = {}
    for name, option in _registry.METHOD_OPTIONS.items():
        value = getattr(args, name)
        if value is None:
            continue
        if args.method not in option.methods:
            parser.error(
                f"--{name.replace('_', '-')} applies to {', '.join(option.methods)}, "
                f"not to --method {args.method}"
            )
        overrides[name] = value
    return RunConfig(
        dataset=args.dataset, method=args.method, seed=args.seed, model=model,
        epochs=args.epochs, overrides=overrides, out=args.out, data_home=args.data_home,
        device=args.device, white_box=args.white_box, shadow_method=args.shadow_method,
        verbose=int(not args.quiet), n_jobs=args.jobs, threads=args.threads,
        attacks=args.attacks,
        reference_models=args.reference_models,
    )


def _print_results(results):
    """The run's results, without the columns that repeat its settings (the method is
    kept: it names the row's model)."""
    from ._rundir import CONTEXT_COLUMNS, RESULT_COLUMNS
    from .report import format_table

    columns = ["method", *(c for c in RESULT_COLUMNS if c not in (*CONTEXT_COLUMNS, "method"))]
    print(format_table(results.reindex(columns=columns)), end="")


def _cmd_run(parser, args):
    from .experiment import run

    config = _run_config(parser, args)
    start = time.perf_counter()
    result = run(config, args.mode)
    seconds = time.perf_counter() - start
    if args.mode in ("defense", "shadow"):
        print(f"trained {args.method} ({args.mode}) in {result} [{seconds:.0f} s]")
    else:
        _print_results(result)
        print(f"\nresults in {result.attrs.get('folder', config.out)} [{seconds:.0f} s]")
    return 0


def _cmd_attack(parser, args):
    from .experiment import attack

    _check_parallel_options(parser, args)
    _check_calibrated_options(parser, args)
    start = time.perf_counter()
    results = attack(args.target, args.shadow, white_box=args.white_box,
                     data_home=args.data_home, device=args.device,
                     verbose=int(not args.quiet),
                     attacks=args.attacks, reference_models=args.reference_models,
                     n_jobs=args.jobs, threads=args.threads)
    _print_results(results)
    print(f"\nresults in {args.target}/attack [{time.perf_counter() - start:.0f} s]")
    return 0


def _cmd_compare(parser, args):
    from .experiment import RunConfig, compare
    from .report import format_table

    model = _checked_run_options(parser, args)
    config = RunConfig(
        dataset=args.dataset, method=args.methods[0], seed=args.seed, model=model,
        epochs=args.epochs, out=args.out, data_home=args.data_home, device=args.device,
        white_box=args.white_box, verbose=int(not args.quiet), n_jobs=args.jobs,
        threads=args.threads,
    )
    start = time.perf_counter()
    table = compare(config, args.methods, attacks=args.attacks,
                    reference_models=args.reference_models)
    seconds = time.perf_counter() - start
    print(format_table(table), end="")
    print("\nruns in " + ", ".join(str(table.attrs["folders"][m]) for m in args.methods)
          + f" [{seconds:.0f} s]")
    return 0


def _cmd_report(parser, args):
    from .report import collect_results, format_table, write_html_report

    if args.html is not None:
        out = write_html_report(args.paths, args.html)
        print(f"report of the runs below {', '.join(args.paths)} written to {out}")
        return 0
    table = collect_results(args.paths)
    if table.empty:
        print("no finished attack results below " + ", ".join(args.paths), file=sys.stderr)
        return 1
    print(format_table(table, args.format), end="")
    return 0


def _cmd_split(parser, args):
    from .datasets import load_dataset
    from .model_selection import membership_split

    record = _registry.DATASETS[args.dataset]
    kwargs = {"return_X_y": True}
    if record.synthetic:
        kwargs["random_state"] = _registry.SYNTHETIC_DATA_SEED
    else:
        kwargs["data_home"] = args.data_home
        kwargs["download_if_missing"] = not args.no_download
    X, y = load_dataset(args.dataset, **kwargs)
    protocol = args.protocol or record.protocol
    split = membership_split(X, y, protocol=protocol, random_state=args.seed)
    n_classes = len(set(y.tolist()))
    n_features = X.shape[1] if X.ndim == 2 else "x".join(map(str, X.shape[1:]))
    print(f"{args.dataset}: {X.shape[0]:,} rows x {n_features:,} features, {n_classes} classes"
          if X.ndim == 2 else
          f"{args.dataset}: {X.shape[0]:,} images of {n_features}, {n_classes} classes")
    print(f"membership_split(protocol={protocol!r}, random_state={args.seed})")
    print()
    print("| part         |   rows |")
    print("|--------------|-------:|")
    for name, size in split.sizes().items():
        print(f"| {name:<12} | {size:>6,} |")
    return 0


_COMMANDS = {"run": _cmd_run, "attack": _cmd_attack, "compare": _cmd_compare,
             "report": _cmd_report, "split": _cmd_split}


def main(argv=None):
    """Run the ``skmia`` command with ``argv`` (default: ``sys.argv[1:]``).

    Returns
    -------
    status : int
        0 on success, 1 when the work failed (missing or corrupt data, an unfinished
        run, a run directory another process is writing, ...), 130 when Ctrl-C
        (SIGINT) interrupted it, 143 for SIGTERM; usage errors exit with status 2
        through argparse.
    """
    parser = _build_parser()
    args = parser.parse_args(argv)
    with _terminate_as_interrupt():
        try:
            return _COMMANDS[args.command](args.command_parser, args)
        except (OSError, ValueError, RuntimeError, KeyError) as exc:
            print(f"skmia {args.command}: error: {escape_text(exc)}", file=sys.stderr)
            return 1
        except KeyboardInterrupt as exc:
            # a run's RunInterrupted says what it kept; a bare Ctrl-C elsewhere does not
            message = str(exc) or ("interrupted; nothing unfinished was marked complete, "
                                   "and the next call continues or redoes it")
            print(f"skmia {args.command}: {escape_text(message)}", file=sys.stderr)
            return 128 + getattr(exc, "signum", signal.SIGINT)


def _raise_terminated(signum, frame):
    from .experiment._checkpoint import RunInterrupted

    raise RunInterrupted("", signal.SIGTERM)  # handled as a Ctrl-C, exit status 143


@contextlib.contextmanager
def _terminate_as_interrupt():
    """SIGTERM stops the command as Ctrl-C does (trainings install their own handlers,
    which skorch's fit cannot swallow); the previous handler is restored after."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    previous = signal.signal(signal.SIGTERM, _raise_terminated)
    try:
        yield
    finally:
        signal.signal(signal.SIGTERM, signal.SIG_DFL if previous is None else previous)


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
