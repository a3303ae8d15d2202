"""The ``benchbench`` command: run, info, list, data, profile, report, plot, compare, bandwidth.

The command line only parses (``cli_args``), calls the verb (a run is ``executor.run.run``) and maps
what comes back to an exit status.

Every user error (bad bench.yaml, unknown device or workload, unreadable results...)
is one line on stderr, ``benchbench: error: ...``, and exit status 2; ``--debug``
shows the traceback. ``run`` exits 0 when every cell is ok, 1 when the run
completed with failed cells, 130 when interrupted (Ctrl-C, SIGTERM or SIGHUP;
finished cells are kept). A bug is ``benchbench: internal error: ...``, exit status 3.
"""
from __future__ import annotations

import errno
import math
import os
import sys
from pathlib import Path

from benchbench.errors import UserError

from benchbench.cli_args import EXIT_CELLS_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, build_parser


class UsageError(UserError):
    """A command-line problem reported as one line with exit status 2."""


# --------------------------------------------------------------------------- verbs
def _cmd_info(args) -> int:
    from benchbench import system

    from benchbench.core import backend

    print(system.format_fingerprint(system.fingerprint()))
    if not backend.cuda_available():
        print(f"GPUs: none usable: {backend.cuda_unavailable_reason()}")
    for warning in backend.cupy_import_warnings():
        print(f"cupy import warning: {warning}")
    return EXIT_OK


def _cmd_list(args) -> int:
    from rich.table import Table

    from benchbench import registry
    from benchbench.executor.launch.progress import make_console

    reg = registry.discover(args.suites, builtins=True)  # a user's folder adds to the built-in workloads
    table = Table(title="workloads", title_justify="left")
    rows = registry.list_rows(reg)
    for col in ("spec", "dataset", "batch", "epochs", "optimizer", "target", "GFLOP/step/sample", "description"):
        # The spec is what users type: never cut or wrapped, whatever the terminal's width.
        whole = {"no_wrap": True, "min_width": max([len(r["spec"]) for r in rows] + [4])} if col == "spec" else {}
        table.add_column(col, justify="right" if col in ("batch", "epochs", "GFLOP/step/sample") else "left", **whole)
    for row in rows:
        target = f"{'≥' if row['higher_is_better'] else '≤'} {row['target']:g} {row['metric']}"
        table.add_row(row["spec"], row["dataset"], str(row["batch_size"]), str(row["epochs"]), row["optimizer"],
                      target, f"{row['flops_train_step'] / 1e9:.4g}", row["description"])
    console = make_console()
    console.print(table)
    for where, err in reg.errors:
        print(f"benchbench: warning: {where}: {err}", file=sys.stderr)
    if not rows:
        print("no workloads found; add suite files to ./suites", file=sys.stderr)
    return EXIT_OK


def _cmd_data(args) -> int:
    from benchbench import data

    if args.data_verb == "fetch":
        from benchbench.data import cache
        from benchbench.data.sources import DATASETS

        for name in args.names:
            try:
                cache.check_dataset_name("fetch", name, DATASETS + ("sine",))
            except ValueError as e:
                raise UsageError(str(e)) from None
        got = data.fetch(args.names, args.data_dir)
        for name, paths in got.items():
            for path in paths:
                print(f"{name}: {path}")
        return EXIT_OK
    if args.data_verb == "path":
        print(data.describe_layout(args.data_dir))
        return EXIT_OK
    raise UsageError("data: say what to do: `benchbench data fetch NAMES...` or `benchbench data path`")


def _check_output_files(*options) -> None:
    """Each ``(option, path)`` given must be writable, checked before any work."""
    from benchbench.executor.planning import preflight

    for option, path in options:
        if path:
            preflight.check_output_file(path, option)


def _cmd_report(args) -> int:
    from benchbench.reporting import verbs

    _check_output_files(("--output", args.output))

    text = verbs.report([Path(p) for p in args.results] or None, Path(args.results_dir), args.format,
                         Path(args.output) if args.output else None, args.log, baseline=args.baseline,
                         prices=_parse_prices(args.price) or None)
    print(text)
    return EXIT_OK


def _cmd_plot(args) -> int:
    from benchbench.executor.planning import preflight
    from benchbench.reporting import plots

    preflight.check_output_dir(args.output, "--output")
    written = plots.plot([Path(p) for p in args.results] or None, Path(args.results_dir), args.kind, Path(args.output))
    for path in written:
        print(f"wrote {path}")
    if not written:
        print("no plot written (see the notes above)", file=sys.stderr)
    return EXIT_OK


def _parse_prices(items) -> dict:
    prices = {}
    for item in items:
        machine, sep, value = item.rpartition("=")  # a label may hold "=", a price never does
        try:
            price = float(value)
        except ValueError:
            price = None
        if not sep or not machine or price is None or not (math.isfinite(price) and price > 0):
            raise UsageError(f"--price must be MACHINE=PRICE, MACHINE a machine id or label and PRICE above 0 "
                             f"(e.g. myhost-1a2b3c4d=12000), got {item!r}")
        prices[machine] = price
    return prices


def _cmd_bandwidth(args) -> int:
    from benchbench.executor import bandwidth
    from benchbench.executor.launch import processes, signals
    from benchbench.results import to_jsonable

    sizes = bandwidth.DEFAULT_SIZES if args.sizes is None else bandwidth.parse_sizes(args.sizes)
    _check_output_files(("--json", args.json))  # before the sweep, as profile does
    processes.sweep_stale_scratch()
    with signals.terminate_as_interrupt():
        result = bandwidth.run_sweep(args.device, sizes, reps=args.reps, timeout_s=args.timeout)
    print(bandwidth.format_sweep(result, result["device"]))
    if args.json:
        _write_json_output(args.json, "--json", to_jsonable(result))
        print(f"wrote {args.json}")
    return EXIT_OK


def _write_json_output(path, option: str, obj, default=None) -> None:
    """Write a ``--json`` file; a disk that filled or went read-only since the check is one line."""
    from benchbench.json_files import atomic_write_json

    try:
        atomic_write_json(path, obj, default=default)
    except OSError as e:
        raise UsageError(f"{option} {path}: cannot write the file ({e.strerror or e}); nothing was written") from None


def _cmd_compare(args) -> int:
    from benchbench.reporting import verbs

    prices = _parse_prices(args.price)
    _check_output_files(("--output", args.output))
    threshold = None
    if args.fail_if_slower is not None:
        from benchbench.reporting.compare_gate import parse_percent

        try:
            threshold = parse_percent(args.fail_if_slower)
        except ValueError as exc:
            raise UsageError(f"--fail-if-slower: {exc}") from None
    text, regressions = verbs.compare_and_gate(
        [Path(p) for p in args.results], prices or None, args.format, Path(args.output) if args.output else None,
        Path(args.results_dir), baseline=args.baseline, fail_if_slower=threshold)
    print(text)
    if regressions:
        for line in regressions:
            print(f"benchbench: slower: {line}", file=sys.stderr)
        return EXIT_CELLS_FAILED
    return EXIT_OK


def _check_switches() -> None:
    """Stop with one line when a ``BENCHBENCH_*`` switch holds a value it does not allow (before any work)."""
    from benchbench.core.config import check_switches

    try:
        check_switches()
    except ValueError as exc:
        raise UsageError(str(exc)) from None


def _cmd_profile(args) -> int:
    from benchbench.core import backend
    from benchbench.executor.planning import devices
    from benchbench.executor import profile

    _check_switches()

    specs, _ = devices.parse_specs(args.device, backend.gpu_count(), hint=devices.gpu_hint(cuda_count=backend.gpu_count()))
    if len(specs) != 1 or specs[0].n_ranks != 1:
        raise UsageError(f"profile --device: one device (cpu or gpu:N), got {args.device!r}")
    _check_output_files(("--json", args.json), ("--chart", args.chart))
    from benchbench import registry

    try:
        registry.resolve(args.workload, registry.discover())
    except ValueError as e:
        raise UsageError(f"profile: {str(e).removeprefix('resolve: ')}") from None
    result = profile.profile_workload(args.workload, device=specs[0].spec, steps=args.steps, warmup=args.warmup,
                                      data=args.data, data_dir=args.data_dir, seed=args.seed)
    print(profile.format_profile(result, top=args.top))
    if args.json:
        _write_json_output(args.json, "--json", result, default=str)
        print(f"wrote {args.json}")
    if args.chart:
        from benchbench.reporting.profile_chart import save_profile_chart

        for path in save_profile_chart(result, args.chart, top=args.top or 25):
            print(f"wrote {path}")
    return EXIT_OK


def _cmd_run(args) -> int:
    from benchbench.executor.run import RunRequest, run

    overrides = {
        "devices": args.device, "workloads": args.workload, "profile": args.profile, "repeat": args.repeat,
        "seeds": args.seeds, "data": args.data, "data_dir": args.data_dir, "output": args.output, "seed": args.seed,
        "timeout_s": args.timeout, "scaling": args.scaling, "hostfile": args.hostfile,
        "deterministic": args.deterministic, "dtype": args.dtype, "until": args.until,
        "batch_size": args.batch_size, "memory_limit": args.memory_limit, "gpu_graphs": args.gpu_graphs,
    }
    if args.seed is not None and args.seeds is not None and "," in args.seeds:
        raise UsageError("--seed with a list of --seeds: give the seeds in the list, or --seed S --seeds N")
    _check_switches()
    held = []  # the lock of the results file, released however the run ends
    try:
        outcome = run(RunRequest(overrides, args.config, args.resume, ["benchbench", *sys.argv[1:]], args.label), held)
    finally:
        for lock in held:
            lock.release()
    _print_summary(outcome)
    if outcome.write_error:
        print(f"benchbench: error: {outcome.write_error}", file=sys.stderr)
        return EXIT_USAGE
    if outcome.status == "interrupted":
        print(f"benchbench: interrupted; {outcome.finished_now} of {outcome.planned_now} cells finished and kept in "
              f"{outcome.path}; complete the run with `benchbench run --resume {outcome.path}`", file=sys.stderr)
        return EXIT_INTERRUPTED
    return EXIT_OK if outcome.all_ok else EXIT_CELLS_FAILED


def _print_summary(outcome) -> None:
    """The end-of-run table (reporting's), the data notes and where the results are."""
    from benchbench.reporting.run_summary import print_summary

    print_summary(outcome.cells, outcome.path)


_VERBS = {"run": "_cmd_run", "info": "_cmd_info", "list": "_cmd_list", "data": "_cmd_data",
          "profile": "_cmd_profile", "report": "_cmd_report", "plot": "_cmd_plot", "compare": "_cmd_compare",
          "bandwidth": "_cmd_bandwidth"}


_USER_OS_ERRORS = frozenset(getattr(errno, name) for name in (
    "ENAMETOOLONG", "ENOSPC", "EDQUOT", "EROFS", "EACCES", "EPERM", "ELOOP", "EFBIG", "ENOTDIR", "EISDIR")
    if hasattr(errno, name))


def main(argv=None) -> int:
    """Run the command line ``argv`` (default: ``sys.argv[1:]``); returns the exit status."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if args.verb is None:
        parser.print_help()
        return EXIT_USAGE
    try:
        return globals()[_VERBS[args.verb]](args)
    except KeyboardInterrupt:
        print("benchbench: interrupted", file=sys.stderr)
        return EXIT_INTERRUPTED
    except BrokenPipeError:  # the reader went away (`benchbench report | head`)
        os.dup2(os.open(os.devnull, os.O_WRONLY), sys.stdout.fileno())
        return EXIT_OK
    except Exception as e:
        if args.debug:
            raise
        if isinstance(e, OSError) and e.errno in _USER_OS_ERRORS:  # a path, a disk or a permission of the user's
            where = f"{e.filename}: " if isinstance(e.filename, str) and e.filename else ""
            print(f"benchbench: error: {where}{e.strerror or e}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(e, UserError):
            msg = " ".join(str(e).split()) or type(e).__name__
            print(f"benchbench: error: {msg}", file=sys.stderr)
            return EXIT_USAGE
        print(f"benchbench: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
