"""The ``benchbench`` command: run, info, list, data, profile, report, plot, compare.

Every user error (bad bench.yaml, unknown device or workload, unreadable results...)
is one line on stderr, ``benchbench: error: ...``, and exit status 2; ``--debug``
shows the traceback. ``run`` exits 0 when every cell is ok, 1 when the run
completed with failed cells, 130 when interrupted (Ctrl-C, SIGTERM or SIGHUP;
finished cells are kept). A bug is ``benchbench: internal error: ...``, exit status 3.
"""
from __future__ import annotations

import os
import sys
from pathlib import Path

from benchbench import cli_checks as checks
from benchbench.cli_checks import UsageError
from benchbench.cli_args import EXIT_CELLS_FAILED, EXIT_INTERNAL, EXIT_INTERRUPTED, EXIT_OK, EXIT_USAGE, build_parser


class _ResultsNotWritten(Exception):
    """The results file could not be rewritten after a cell (a full disk, say); stops the run."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


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
    from benchbench.executor.progress import make_console

    reg = registry.discover(args.suites, builtins=True)  # a user's folder adds to the built-in workloads
    table = Table(title="workloads", title_justify="left")
    for col in ("spec", "dataset", "batch", "epochs", "optimizer", "target", "GFLOP/step/sample", "description"):
        table.add_column(col, justify="right" if col in ("batch", "epochs", "GFLOP/step/sample") else "left")
    rows = registry.list_rows(reg)
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


def _cmd_report(args) -> int:
    from benchbench.reporting import verbs

    checks.check_output_files(("--output", args.output))

    text = verbs.report([Path(p) for p in args.results] or None, Path(args.results_dir), args.format,
                         Path(args.output) if args.output else None, args.log)
    print(text)
    return EXIT_OK


def _cmd_plot(args) -> int:
    from benchbench.executor import preflight
    from benchbench.reporting import plots

    preflight.check_output_dir(args.output, "--output")
    written = plots.plot([Path(p) for p in args.results] or None, Path(args.results_dir), args.kind, Path(args.output))
    for path in written:
        print(f"wrote {path}")
    if not written:
        print("no plot written (see the notes above)", file=sys.stderr)
    return EXIT_OK


def _cmd_bandwidth(args) -> int:
    from benchbench.executor import bandwidth, processes, signals
    from benchbench.results import to_jsonable

    sizes = bandwidth.DEFAULT_SIZES if args.sizes is None else bandwidth.parse_sizes(args.sizes)
    checks.check_output_files(("--json", args.json))  # before the sweep, as profile does
    processes.sweep_stale_scratch()
    with signals.terminate_as_interrupt():
        result = bandwidth.run_sweep(args.device, sizes, reps=args.reps, timeout_s=args.timeout)
    print(bandwidth.format_sweep(result, result["device"]))
    if args.json:
        checks.write_json_output(args.json, "--json", to_jsonable(result))
        print(f"wrote {args.json}")
    return EXIT_OK


def _cmd_compare(args) -> int:
    from benchbench.reporting import verbs

    prices = checks.parse_prices(args.price)
    checks.check_output_files(("--output", args.output))
    text = verbs.compare([Path(p) for p in args.results], prices or None, args.format,
                           Path(args.output) if args.output else None, Path(args.results_dir))
    print(text)
    return EXIT_OK


def _resolve_workloads(plan, reg, from_cli: bool):
    """(Workload, params, label) for every workload spec of the plan."""
    from benchbench import registry
    from benchbench.executor.plan import PlanError, check_workload_names

    out = []
    for i, spec in enumerate(plan.workloads):
        try:
            wl, params = registry.resolve(spec, reg)
        except ValueError as e:
            where = "--workload: " if from_cli else plan.where("workloads", i)
            msg = str(e).removeprefix("resolve: ")
            raise PlanError(f"{where}{msg}") from None
        out.append((wl, params, wl.label(params)))
    check_workload_names(plan, sorted(reg.workloads))
    return out


def _cmd_profile(args) -> int:
    from benchbench.core import backend
    from benchbench.executor import devices, profile

    checks.check_conv_algorithm()

    specs, _ = devices.parse_specs(args.device, backend.gpu_count(), hint=devices.gpu_hint(cuda_count=backend.gpu_count()))
    if len(specs) != 1 or specs[0].n_ranks != 1:
        raise UsageError(f"profile --device: one device (cpu or gpu:N), got {args.device!r}")
    checks.check_output_files(("--json", args.json), ("--chart", args.chart))
    from benchbench import registry

    try:
        registry.resolve(args.workload, registry.discover())
    except ValueError as e:
        raise UsageError(f"profile: {str(e).removeprefix('resolve: ')}") from None
    result = profile.profile_workload(args.workload, device=specs[0].spec, steps=args.steps, warmup=args.warmup,
                                      data=args.data, data_dir=args.data_dir, seed=args.seed)
    print(profile.format_profile(result, top=args.top))
    if args.json:
        checks.write_json_output(args.json, "--json", result, default=str)
        print(f"wrote {args.json}")
    if args.chart:
        from benchbench.reporting.profile_chart import save_profile_chart

        for path in save_profile_chart(result, args.chart, top=args.top or 25):
            print(f"wrote {path}")
    return EXIT_OK


def _cmd_run(args) -> int:
    held = []  # the lock of the results file, released however the run ends
    try:
        return _run(args, held)
    finally:
        for lock in held:
            lock.release()


def _run(args, held: list) -> int:
    import signal

    from benchbench import registry, results, runlock, system
    from benchbench.core import backend
    from benchbench.executor import devices, launcher, preflight, signals
    from benchbench.executor import progress as run_progress
    from benchbench.executor import plan as plan_mod

    overrides = {
        "devices": args.device, "workloads": args.workload, "profile": args.profile, "repeat": args.repeat,
        "data": args.data, "data_dir": args.data_dir, "output": args.output, "seed": args.seed,
        "timeout_s": args.timeout, "scaling": args.scaling, "hostfile": args.hostfile,
        "deterministic": args.deterministic, "dtype": args.dtype, "until": args.until,
        "batch_size": args.batch_size, "memory_limit": args.memory_limit,
    }
    launcher.mpiexec_path()  # a BENCHBENCH_MPIEXEC that names no executable stops the run here
    from benchbench.executor import processes

    processes.sweep_stale_scratch()  # folders of earlier runs killed with SIGKILL
    checks.check_conv_algorithm()
    done_cells, run_path = [], None
    if args.resume:
        option = {"devices": "--device", "workloads": "--workload", "timeout_s": "--timeout", "data_dir": "--data-dir",
                  "batch_size": "--batch-size", "memory_limit": "--memory-limit"}
        given = [option.get(k, f"--{k}") for k, v in overrides.items() if v is not None and k != "output"]
        if args.config:
            given.append("--config")
        if given:
            raise UsageError(f"--resume runs the rest of the run's own plan; drop {', '.join(sorted(given))}")
        local = "bench.yaml" if Path("bench.yaml").is_file() else None
        results_dir = args.output or plan_mod.load_plan(local).output
        run_path = checks.find_run(args.resume, results_dir)
        try:
            held.append(runlock.RunLock(run_path).acquire())
        except runlock.LockHeld as e:
            raise UsageError(f"--resume: {e}") from None
        old = results.load(run_path, follow_symlinks=False)
        if old["status"] == "complete":
            raise UsageError(f"--resume: run {old['run_id']} is already complete ({run_path})")
        plan = plan_mod.plan_from_dict(old["plan"])
        old["cells"] = [c for c in old["cells"] if not c.get("interrupted")]  # cut short: run again
        done_cells = list(old["cells"])
    else:
        config = args.config or ("bench.yaml" if Path("bench.yaml").is_file() else None)
        plan = plan_mod.load_plan(config, overrides)
    reg = registry.discover()
    for where, err in reg.errors:
        print(f"benchbench: warning: suite {where}: {err}", file=sys.stderr)
    workloads = _resolve_workloads(plan, reg, from_cli=bool(args.workload))
    n_gpus = backend.gpu_count()
    specs, notices = devices.parse_specs(plan.devices, n_gpus, hint=devices.gpu_hint(cuda_count=n_gpus))
    for line in notices:
        print(line, file=sys.stderr)
    from .core import mixed_precision

    try:
        mixed_precision.compute_dtype(plan.dtype)
    except ValueError as e:
        raise UsageError(f"--dtype {plan.dtype}: {e}") from None
    if plan.dtype != "float32" and not any(s.kind == "gpu" for s in specs):
        raise UsageError(f"--dtype {plan.dtype} needs a GPU; the CPU runs float32 only "
                         f"(devices: {', '.join(s.spec for s in specs)})")
    preflight.check_data_dir(plan.data_dir)
    if plan.data_dir is None and os.environ.get("BENCHBENCH_DATA"):  # checked as --data-dir is, never ignored
        preflight.check_data_dir(os.environ["BENCHBENCH_DATA"], "BENCHBENCH_DATA=")
    checks.warn_memory_limit(plan.memory_limit)
    if plan.data in ("real", "auto"):
        # The official files must be there (real), and files that are there must be intact (auto:
        # a corrupt file is an error to fix, never a silent fall-back), before anything runs.
        checked = set()
        for wl, _, _ in workloads:
            if wl.dataset not in checked:
                checked.add(wl.dataset)
                wl.load_data(plan.data, data_dir=plan.data_dir, seed=plan.seed, n_train=1, n_val=1)
    if plan.hostfile and not Path(plan.hostfile).is_file():
        what = "not a regular file" if os.path.lexists(plan.hostfile) else "no such file"
        raise UsageError(f"--hostfile {plan.hostfile}: {what}")
    if plan.dtype != "float32" and any(s.kind == "cpu" for s in specs):
        print(f"benchbench: the CPU cells run in float32 (--dtype {plan.dtype} applies to the GPU cells)",
              file=sys.stderr)
    descs, sources = [], []
    for i, (wl, params, label) in enumerate(workloads):
        for spec in specs:
            for r in range(plan.repeat):
                desc = launcher.describe_cell(plan, wl, params, label, spec, r)
                if spec.kind == "cpu":
                    desc["dtype"] = "float32"
                descs.append(desc)
                sources.append((desc["id"], f"workload {plan.workloads[i]!r} on device {spec.spec!r}"))
    preflight.check_unique_cells(sources)
    from benchbench.executor import batch_split, nodes

    if plan.hostfile:
        descs = nodes.spread_over_nodes(descs, len(nodes.read_hostfile(plan.hostfile)))
    descs, left_out = batch_split.keep_splittable(descs, batch_split.named_specs(plan.devices, n_gpus))
    for line in left_out:
        print(line, file=sys.stderr)
    preflight.check_output_dir(run_path.parent if args.resume else plan.output)
    if plan.batch_size or plan.memory_limit is not None:
        from .executor import batch as batch_mod

        descs = batch_mod.expand(plan, workloads, specs, descs, given_limit=args.memory_limit is not None)
    machine = system.fingerprint()
    if machine.get("simulated_gpus"):
        print(f"benchbench: {backend.SIMULATED_NOTE}", file=sys.stderr)
    if args.resume:
        if old["machine"]["id"] != machine["id"]:
            raise UsageError(f"--resume: run {old['run_id']} was recorded on machine {old['machine']['id']}, "
                             f"this is {machine['id']}; start a new run here")
        finished = {c["id"] for c in done_cells}
        descs = [d for d in descs if d["id"] not in finished]
        old["status"] = "running"
        writer = results.RunWriter(run_path.parent.parent, old)
        writer.path = run_path  # exactly the file named, never a path derived from it
    else:
        run = results.new_run(machine, plan.as_dict(), ["benchbench", *sys.argv[1:]])
        writer = results.RunWriter(plan.output, run)
        held.append(runlock.RunLock(writer.path).acquire())
        if writer.path.exists():  # never overwrite another results file
            raise RuntimeError(f"{writer.path} already exists; a new run never reuses a run id")
    from benchbench.executor import interference, probes

    busy = interference.preflight()  # after every usage check: a busy machine is a warning, not an error
    warning = interference.preflight_warning(busy)
    if warning:
        print(warning, file=sys.stderr)
    calibration = probes.RunCalibration()
    calibration.run_start()
    writer.run["preflight"] = busy
    writer.run["probes"] = calibration.as_dict()
    writer.write()
    progress = run_progress.RunProgress(len(descs))
    new_cells = []

    def cell_done(i, cell):
        calibration.after_cell(i, cell)
        try:
            try:
                stored = writer.add_cell(cell)
            except results.ResultsError as e:  # a malformed record still leaves a trace
                stored = writer.add_cell(launcher.runner.failed(descs[i], "failed", f"invalid cell record: {e}"))
        except OSError as e:  # a full or failing disk: the cell is held in memory, the run stops
            raise _ResultsNotWritten(e) from None
        new_cells.append(stored)
        progress.done(i, stored)

    try:
        with signals.terminate_as_interrupt():
            launcher.run_cells(descs, on_cell_start=lambda i, d: (calibration.before_cell(i, d), progress.start(i, d)),
                               on_progress=progress.update, on_cell_done=cell_done, hostfile=plan.hostfile)
    except KeyboardInterrupt as e:
        signal.signal(signal.SIGINT, signal.SIG_IGN)
        progress.close()
        if getattr(e, "partial", None) is not None:  # the epochs an interrupted cell finished
            writer.add_cell(e.partial)
        writer.finish("interrupted")
        _print_summary(run_progress, writer, done_cells + new_cells)
        print(f"benchbench: interrupted; {len(new_cells)} of {len(descs)} cells finished and kept in {writer.path}; "
              f"complete the run with `benchbench run --resume {writer.path}`", file=sys.stderr)
        return EXIT_INTERRUPTED
    except _ResultsNotWritten as e:
        progress.close()
        kept = len(writer.run["cells"]) - len(done_cells)
        try:
            writer.finish("interrupted")
            where = f"{kept} of {len(descs)} cells finished and kept in {writer.path}"
        except OSError:
            where = f"{writer.path} keeps the cells written before (status still 'running')"
        print(f"benchbench: error: cannot write the results file {writer.path} ({e.error.strerror or e.error}); "
              f"the run stopped: {where}; free space, then complete the run with "
              f"`benchbench run --resume {writer.path}`", file=sys.stderr)
        return EXIT_USAGE
    except BaseException:  # a bug: keep what finished, say the run did not complete
        progress.close()
        writer.finish("interrupted")
        raise
    progress.close()
    calibration.run_end()
    writer.run["probes"] = calibration.as_dict()
    writer.finish("complete")
    cells = done_cells + new_cells
    _print_summary(run_progress, writer, cells)
    return EXIT_OK if all(c["status"] == "ok" for c in cells) else EXIT_CELLS_FAILED


def _print_summary(summary, writer, cells) -> None:
    console = summary.make_console()
    if cells:
        console.print(summary.summary_table(cells))
    for line in summary.data_notes(cells):
        console.print(line, soft_wrap=True)
    bad = sum(c["status"] != "ok" for c in cells)
    tail = f"; {bad} cell(s) not ok" if bad else ""
    console.print(f"results: {writer.path} ({len(cells)} cells{tail})", soft_wrap=True)


_VERBS = {"run": "_cmd_run", "info": "_cmd_info", "list": "_cmd_list", "data": "_cmd_data",
          "profile": "_cmd_profile", "report": "_cmd_report", "plot": "_cmd_plot", "compare": "_cmd_compare",
          "bandwidth": "_cmd_bandwidth"}


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
        if isinstance(e, OSError) and e.errno in checks.USER_OS_ERRORS:  # a path, a disk or a permission of the user's
            where = f"{e.filename}: " if isinstance(e.filename, str) and e.filename else ""
            print(f"benchbench: error: {where}{e.strerror or e}", file=sys.stderr)
            return EXIT_USAGE
        if isinstance(e, checks.user_errors()):
            msg = " ".join(str(e).split()) or type(e).__name__
            print(f"benchbench: error: {msg}", file=sys.stderr)
            return EXIT_USAGE
        print(f"benchbench: internal error: {type(e).__name__}: {e} (run with --debug for the traceback)",
              file=sys.stderr)
        return EXIT_INTERNAL


if __name__ == "__main__":
    sys.exit(main())
