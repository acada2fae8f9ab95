"""The ``skmia`` console command: the reference code's ``main.py`` and ``run_attacks.py``.

``skmia run`` trains defenses and attacks them in the reference's four modes,
``skmia attack`` evaluates saved runs, ``skmia report`` tabulates finished runs and
``skmia split`` prints a dataset's membership split. Usage errors exit with status 2
and list the valid choices; failures (missing data, an unfinished run, ...) exit with
status 1; neither prints a traceback.
"""

import contextlib
import re
import signal
import sys
import threading
import time
import warnings

from . import _registry
from ._cli_dp import cmd_audit_dp
from ._rundir import escape_text

__all__ = ["main"]

from ._cli_parser import (  # the parser; re-exported names: tests and docs read them
    _build_parser,
    _model_option,
)

#: options named otherwise than the setting they give (``skmia._settings``)
_OPTIONS = {"n_jobs": "--jobs", "verbose": "--quiet"}


def _option(setting):
    """The option that gives ``setting``: ``--`` and its name with dashes, or
    :data:`_OPTIONS`'."""
    return _OPTIONS.get(setting, "--" + setting.replace("_", "-"))


def _setting_names():
    """Names of settings with an underscore (never a word of prose): the usage errors
    name them as options."""
    from dataclasses import fields

    from . import _settings

    classes = (_settings.RunConfig, _settings.AuditConfig, _settings.DPAuditConfig)
    return sorted({f.name for c in classes for f in fields(c) if "_" in f.name.strip("_")},
                  key=len, reverse=True)


def _usage_message(error):
    """A library error about the setting ``error.field``, in the command's words: the
    setting it starts with, and each other one it names, as their options."""
    text = _printable(error)
    if text.startswith(error.field):
        text = _option(error.field) + text[len(error.field):]
    for name in _setting_names():
        text = re.sub(rf"(?<![\w-]){name}\b", _option(name), text)
    return text


def _method_options(parser, args, methods, label):
    """``method -> {name: value}``: each method option given (``--alpha`` and the like)
    for each of ``methods`` it applies to; a usage error naming the option where it
    applies to none of them (``label``: the option that gave ``methods``)."""
    options = {}
    for name, option in _registry.METHOD_OPTIONS.items():
        value = getattr(args, name)
        if value is None:
            continue
        applies = [m for m in methods if m in option.methods]
        if not applies:
            parser.error(f"--{name.replace('_', '-')} applies to "
                         f"{', '.join(option.methods)}, not to {label} {','.join(methods)}")
        for method in applies:
            options.setdefault(method, {})[name] = value
    return options


def _run_config(parser, args):
    """The :class:`~skmia.experiment.RunConfig` of ``skmia run``, checked."""
    from ._settings import RunConfig

    options = _method_options(parser, args, (args.method,), "--method")
    config = RunConfig(
        dataset=args.dataset, method=args.method, seed=args.seed,
        model=_model_option(args), epochs=args.epochs,
        overrides=options.get(args.method, {}), out=args.out, data_home=args.data_home,
        device=args.device, white_box=args.white_box, shadow_method=args.shadow_method,
        verbose=int(not args.quiet), n_jobs=args.jobs, threads=args.threads,
        attacks=args.attacks, reference_models=args.reference_models,
    ).check()
    _check_method_options(parser, config)
    return config


def _check_method_options(parser, config):
    """Refuse (exit status 2) a method option the method's estimator refuses, before
    any folder is made."""
    from .experiment._config import estimator

    if not config.overrides:
        return
    try:
        clf = estimator(config, config.method)
        if hasattr(clf, "_check_params"):  # a skmia defense
            clf._check_params()
    except ValueError as exc:
        named = [f"--{name.replace('_', '-')}" for name in config.overrides
                 if f"'{name}'" in str(exc)]
        parser.error(f"argument {', '.join(named) or 'of --method ' + config.method}: "
                     f"{escape_text(exc)}")


def _print_results(results):
    """The run's results, without the columns that repeat its settings (the method is
    kept: it names the row's model)."""
    from ._rundir import CONTEXT_COLUMNS, RESULT_COLUMNS
    from .report import format_table

    columns = ["method", *(c for c in RESULT_COLUMNS if c not in (*CONTEXT_COLUMNS, "method"))]
    print(format_table(results.reindex(columns=columns)), end="")


def _cmd_run(parser, args):
    config = _run_config(parser, args)
    from .experiment import run

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

    start = time.perf_counter()
    results = attack(args.target, args.shadow, white_box=args.white_box,
                     data_home=args.data_home, device=args.device,
                     verbose=int(not args.quiet),
                     attacks=args.attacks, reference_models=args.reference_models,
                     n_jobs=args.jobs, threads=args.threads)
    _print_results(results)
    print(f"\nresults in {results.attrs['folder']} [{time.perf_counter() - start:.0f} s]")
    return 0


def _cmd_compare(parser, args):
    from ._settings import RunConfig

    options = _method_options(parser, args, args.methods, "--methods")
    for method, name, value in args.method_option:
        if method not in args.methods:
            parser.error(f"--method-option {method}:{name}=... names {method}, which is not "
                         f"in --methods {','.join(args.methods)}")
        options.setdefault(method, {})[name] = value
    config = RunConfig(
        dataset=args.dataset, method=args.methods[0], seed=args.seed,
        model=_model_option(args), epochs=args.epochs, out=args.out,
        data_home=args.data_home, device=args.device, white_box=args.white_box,
        verbose=int(not args.quiet), n_jobs=args.jobs, threads=args.threads,
        attacks=args.attacks, reference_models=args.reference_models,
    ).check()
    from .experiment import compare
    from .report import format_table

    start = time.perf_counter()
    table = compare(config, args.methods, attacks=args.attacks,
                    reference_models=args.reference_models, method_options=options)
    seconds = time.perf_counter() - start
    print(format_table(table), end="")
    print("\nruns in " + ", ".join(str(table.attrs["folders"][m]) for m in args.methods)
          + f" [{seconds:.0f} s]")
    return 0


def _cmd_report(parser, args):
    from .report import collect_results, format_table
    from .report._audit import find_audits, format_audit_table
    from .report._dp import find_dp_audits, format_dp_audit_table
    from .report._html import _write_report

    if args.html is not None:
        out, missing = _write_report(args.paths, args.html)
        print(f"report of the runs below {', '.join(args.paths)} written to {out}")
        for why in missing:  # the page says it too, beside each missing figure
            print(f"skmia report: figure missing: {escape_text(why)}", file=sys.stderr)
        return 1 if missing else 0
    table = collect_results(args.paths)
    audits = find_audits(args.paths)
    dp_audits = find_dp_audits(args.paths)
    if table.empty and not audits and not dp_audits:
        print("no finished attack results below " + ", ".join(args.paths), file=sys.stderr)
        return 1
    if not table.empty:
        print(format_table(table, args.format), end="")
    for folder, audit_table, _ in audits:  # defense audits: their per-method tables
        print(f"\ndefense audit {folder}\n" + (audit_table.to_csv(index=False)
              if args.format == "csv" else format_audit_table(audit_table)), end="")
    for folder, dp_table in dp_audits:  # DP audits: claimed vs lower-bound ε
        print(f"\nDP audit {folder}\n" + (dp_table.to_csv(index=False)
              if args.format == "csv" else format_dp_audit_table(dp_table)), end="")
    return 0


def _cmd_audit(parser, args):
    from ._settings import AuditConfig

    overrides = {}  # one value per option: AuditConfig checks each applies to every method
    for options in _method_options(parser, args, args.methods, "--methods").values():
        overrides.update(options)
    config = AuditConfig(
        dataset=args.dataset, methods=args.methods, models=args.models,
        canaries=args.canaries, canary_kind=args.canary_kind, poisons=args.poisons,
        records=args.records, test_size=args.test_size, seed=args.seed, epochs=args.epochs,
        hidden=args.hidden, overrides=overrides, model=_model_option(args), out=args.out,
        data_home=args.data_home, device=args.device, n_jobs=args.jobs,
        scheduler=args.scheduler, verbose=int(not args.quiet),
    ).check()
    from .experiment._audit_dir import run_audit  # after the usage checks
    from .report._audit import format_audit_table

    start = time.perf_counter()
    table = run_audit(config)
    print(format_audit_table(table), end="")
    print(f"\naudit in {table.attrs['folder']} [{time.perf_counter() - start:.0f} s]")
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
             "report": _cmd_report, "split": _cmd_split, "audit": _cmd_audit,
             "audit-dp": cmd_audit_dp}


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
    with _terminate_as_interrupt(), _weak_privacy_once(getattr(args, "quiet", False)):
        try:
            return _COMMANDS[args.command](args.command_parser, args)
        except (OSError, ValueError, RuntimeError, KeyError, TypeError) as exc:
            if getattr(exc, "field", None):  # a setting the library refused: the option's
                args.command_parser.error(_usage_message(exc))  # usage error, status 2
            if isinstance(exc, TypeError):
                raise
            # the library names its parameter; here the user gave an option
            message = _printable(exc).replace("`data_home=`", "`--data-home`")
            option = getattr(exc, "option", None)
            if option:  # a value of an option the library refused: a usage error
                print(f"skmia {args.command}: error: argument {option}: {message}",
                      file=sys.stderr)
                return 2
            print(f"skmia {args.command}: error: {message}", file=sys.stderr)
            return 1
        except KeyboardInterrupt as exc:
            # a run's RunInterrupted says what it kept; a bare Ctrl-C elsewhere does not
            message = str(exc) or ("interrupted; nothing unfinished was marked complete, "
                                   "and the next call continues or redoes it")
            print(f"skmia {args.command}: {_printable(message)}", file=sys.stderr)
            return 128 + getattr(exc, "signum", signal.SIGINT)


_NUMBER = re.compile(r"[-+]?(?:inf|nan|\d[\d.]*(?:e[-+]?\d+)?)")


@contextlib.contextmanager
def _weak_privacy_once(quiet):
    """Show each kind of :class:`~skmia.defenses.WeakPrivacyWarning` once in the
    command, not once per model or bank (they differ in their numbers only, and a
    bank's says how many of its models have it); none with ``-q``."""
    shown = set()
    with warnings.catch_warnings():
        show = warnings.showwarning

        def show_once(message, category, *args, **kwargs):
            if category.__name__ == "WeakPrivacyWarning":
                kind = _NUMBER.sub("#", str(message).split("the worst: ")[-1])
                if quiet or kind in shown:
                    return
                shown.add(kind)
            show(message, category, *args, **kwargs)

        warnings.showwarning = show_once
        yield


def _printable(text):
    """``text`` with its control characters escaped (:func:`escape_text`), except the
    newlines and tabs that lay out a multi-line message."""
    return "\n".join("\t".join(escape_text(part) for part in line.split("\t"))
                     for line in str(text).split("\n"))


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
