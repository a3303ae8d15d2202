"""The run, as one function: plan the cells, launch each in its worker, write every finished one.

``plan_cells`` turns a plan into its cell descriptions (the CPU dtype rule, node spreading, the
split filter and the batch expansion all happen here, once); ``run`` checks the inputs, takes the
results file's lock, launches the cells and writes each finished record. The command line only
parses options, calls :func:`run` and maps what comes back (or what it raises) to an exit status.
"""
from __future__ import annotations

import dataclasses
import os
import signal
import sys
from pathlib import Path

from benchbench.errors import PlanError, UserError
from benchbench.executor.protocol import CellDesc

# Command-line spellings of plan keys, for messages.
_OPTION = {"devices": "--device", "workloads": "--workload", "timeout_s": "--timeout", "data_dir": "--data-dir",
           "batch_size": "--batch-size", "memory_limit": "--memory-limit", "gpu_graphs": "--gpu-graphs"}


@dataclasses.dataclass
class RunRequest:
    """What the user asked for.

    Attributes:
        overrides: plan key -> value given on the command line (None: not given).
        config: the plan file named with ``--config`` (None: ``./bench.yaml`` when there is one).
        resume: a run id or results file to complete (``--resume``), or None.
        argv: the command line, recorded in the results.
        label: the machine's name in reports (``--label``), or None for the default (its models).
    """

    overrides: dict
    config: str | None = None
    resume: str | None = None
    argv: list = dataclasses.field(default_factory=list)
    label: str | None = None


@dataclasses.dataclass
class RunOutcome:
    """How a run ended: ``complete`` or ``interrupted``, every cell of its results file, and that file."""

    status: str
    cells: list
    path: Path
    finished_now: int
    planned_now: int
    write_error: str | None = None  # the results file could not be written (a full disk): the run stopped

    @property
    def all_ok(self) -> bool:
        return all(c["status"] == "ok" for c in self.cells)


def resolve_workloads(plan, reg, from_cli: bool) -> list:
    """(Workload, params, label) for every workload spec of the plan."""
    from benchbench import registry
    from benchbench.executor.planning.plan import check_workload_names

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


def describe_cell(plan, workload, params: dict, label: str, dspec, repeat: int, seed: int | None = None) -> CellDesc:
    """The description of one cell at the workload's own batch (the CPU runs float32 only).

    Args:
        plan: the ``Plan``.
        workload: the registry Workload; ``params`` its resolved parameters and ``label`` the spec
            that names them (``Workload.label``).
        dspec: a ``DeviceSpec``.
        repeat: the repeat index (from 0).
        seed: the cell's seed (default: the plan's ``seed``); in a plan of several seeds the id
            names it (``mlp_mnist/cpu/s1/r0``).
    """
    from benchbench.results import cell_id

    settings = plan.settings(workload.name)
    timeout = float(settings.get("timeout_s") or plan.timeout_s)
    several = len(getattr(plan, "seeds", None) or [plan.seed]) > 1
    seed = plan.seed if seed is None else int(seed)
    return CellDesc(
        id=cell_id(label, dspec.spec, repeat, seed if several else None), workload=label,
        workload_name=workload.name, params=params,
        dataset=workload.dataset, device=dspec.spec, device_kind=dspec.kind, indices=list(dspec.indices or []),
        n_ranks=int(dspec.n_ranks), communicator=dspec.communicator, scaling=plan.scaling, repeat=repeat,
        profile=plan.profile, settings=settings, seed=seed, data=plan.data, data_dir=plan.data_dir,
        # The data (synthetic stand-in, quick-profile sample) is the plan's first seed's for every seed:
        # seeds differ in initial weights and data order, never in the problem they train on.
        data_seed=plan.seed,
        dtype="float32" if dspec.kind == "cpu" else plan.dtype, deterministic=plan.deterministic,
        timeout_s=timeout, collective_timeout_s=min(300.0, timeout), batch_size=workload.batch_size,
    )


def plan_cells(plan, workloads: list, gpus: int, given_memory_limit: bool = True) -> tuple[list[CellDesc], list[str]]:
    """Every cell of a plan, and the notices to print about it.

    Args:
        plan: the ``Plan``.
        workloads: ``(Workload, params, label)`` from :func:`resolve_workloads`.
        gpus: the number of GPUs of this machine.
        given_memory_limit: whether ``--memory-limit`` was asked for (not only recorded in a plan).

    Returns:
        ``(cells, notices)``: one description per workload x device spec x seed x repeat (x batch size),
        spread over the hostfile's nodes, the cells that ``all`` brought in but cannot split their
        batch left out (each said in a notice).

    Raises:
        UserError: a device spec, dtype, batch or hostfile the plan cannot run.
    """
    from benchbench.core import mixed_precision
    from benchbench.executor.planning import batch as batch_mod
    from benchbench.executor.planning import batch_split, devices, graph_modes, nodes, preflight

    specs, notices = devices.parse_specs(plan.devices, gpus, hint=devices.gpu_hint(cuda_count=gpus))
    try:
        mixed_precision.compute_dtype(plan.dtype)
    except ValueError as e:
        raise UserError(f"--dtype {plan.dtype}: {e}") from None
    if plan.dtype != "float32" and not any(s.kind == "gpu" for s in specs):
        raise UserError(f"--dtype {plan.dtype} needs a GPU; the CPU runs float32 only "
                        f"(devices: {', '.join(s.spec for s in specs)})")
    if plan.dtype != "float32" and any(s.kind == "cpu" for s in specs):
        notices.append(f"benchbench: the CPU cells run in float32 (--dtype {plan.dtype} applies to the GPU cells)")
    cells, sources = [], []
    for i, (wl, params, label) in enumerate(workloads):  # seeds outer, repeats inner
        name = plan.workloads[i] if i < len(plan.workloads) else label
        for spec in specs:
            for seed in getattr(plan, "seeds", None) or [plan.seed]:
                for r in range(plan.repeat):
                    desc = describe_cell(plan, wl, params, label, spec, r, seed=seed)
                    cells.append(desc)
                    sources.append((desc.id, f"workload {name!r} on device {spec.spec!r}"))
    preflight.check_unique_cells(sources)
    if plan.hostfile:
        cells = nodes.spread_over_nodes(cells, len(nodes.read_hostfile(plan.hostfile)))
    cells, left_out = batch_split.keep_splittable(cells, batch_split.named_specs(specs))
    notices += left_out
    if plan.batch_size or plan.memory_limit is not None:
        cells = batch_mod.expand(plan, workloads, specs, cells, given_limit=given_memory_limit)
    cells = graph_modes.expand(list(getattr(plan, "gpu_graphs", None) or graph_modes.DEFAULT), cells, specs)
    return cells, notices


def _find_run(ref: str, results_dir) -> Path:
    from benchbench import results

    path = Path(ref)
    if os.path.lexists(path):
        from benchbench import runlock

        try:
            runlock.refuse_symlink(path)
        except UserError as e:
            raise UserError(f"--resume: {e}") from None
        if not path.is_file():
            raise UserError(f"--resume {ref}: not a regular file; give a results file or a run id")
        return path
    for candidate in results.find_runs(results_dir):
        if candidate.stem == ref:
            return candidate
    raise UserError(f"--resume: no run {ref!r} (neither a results file nor a run id under {results_dir}/)")


def _check_data(plan, workloads) -> None:
    """The official files must be there (real), and files that are there must be intact (auto: a
    corrupt file is an error to fix, never a silent fall-back), before anything runs."""
    import psutil

    from benchbench.executor.planning import preflight

    preflight.check_data_dir(plan.data_dir)
    if plan.data_dir is None and os.environ.get("BENCHBENCH_DATA"):  # checked as --data-dir is, never ignored
        preflight.check_data_dir(os.environ["BENCHBENCH_DATA"], "BENCHBENCH_DATA=")
    total = psutil.virtual_memory().total
    if plan.memory_limit is not None and plan.memory_limit > total:
        _say(f"benchbench: warning: --memory-limit {plan.memory_limit / 2**30:,.1f} GiB is more than this machine's "
             f"memory ({total / 2**30:,.1f} GiB); the largest batch found is bounded by the memory there is")
    if plan.data in ("real", "auto"):
        checked = set()
        for wl, _, _ in workloads:
            if wl.dataset not in checked:
                checked.add(wl.dataset)
                wl.load_data(plan.data, data_dir=plan.data_dir, seed=plan.seed, n_train=1, n_val=1)
    if plan.hostfile and not Path(plan.hostfile).is_file():
        what = "not a regular file" if os.path.lexists(plan.hostfile) else "no such file"
        raise UserError(f"--hostfile {plan.hostfile}: {what}")


class _ResultsNotWritten(Exception):
    """The results file could not be rewritten after a cell (a full disk, say); stops the run."""

    def __init__(self, error: OSError):
        super().__init__(str(error))
        self.error = error


def _say(line: str) -> None:
    print(line, file=sys.stderr)


def run(request: RunRequest, held: list) -> RunOutcome:
    """Run a plan (or the rest of one, ``request.resume``) and write its results file.

    Args:
        request: what the user asked for.
        held: the results file's lock is appended here; the caller releases it however the run ends.

    Returns:
        The outcome; Ctrl-C, SIGTERM and SIGHUP end the run as ``interrupted`` with every finished
        cell kept.

    Raises:
        UserError: anything the user can fix, found before any cell runs.
    """
    from benchbench import registry, results, runlock, system
    from benchbench.core import backend
    from benchbench.executor import interference, probes
    from benchbench.executor.launch import launcher, processes, signals
    from benchbench.executor.launch import progress as run_progress
    from benchbench.executor.planning import plan as plan_mod
    from benchbench.executor.planning import preflight

    overrides = request.overrides
    launcher.mpiexec_path()  # a BENCHBENCH_MPIEXEC that names no executable stops the run here
    processes.sweep_stale_scratch()  # scratch folders of earlier runs killed with SIGKILL
    done_cells, run_path, old = [], None, None
    if request.resume:
        given = [_OPTION.get(k, f"--{k.replace('_', '-')}") for k, v in overrides.items()
                 if v is not None and k != "output"]
        if request.config:
            given.append("--config")
        if given:
            raise UserError(f"--resume runs the rest of the run's own plan; drop {', '.join(sorted(given))}")
        local = "bench.yaml" if Path("bench.yaml").is_file() else None
        results_dir = overrides.get("output") or plan_mod.load_plan(local).output
        run_path = _find_run(request.resume, results_dir)
        try:
            held.append(runlock.RunLock(run_path).acquire())
        except runlock.LockHeld as e:
            raise UserError(f"--resume: {e}") from None
        old = results.load(run_path, follow_symlinks=False)
        if old["status"] == "complete":
            raise UserError(f"--resume: run {old['run_id']} is already complete ({run_path})")
        plan = plan_mod.plan_from_dict(old["plan"])
        old["cells"] = [c for c in old["cells"] if not c.get("interrupted")]  # cut short: run again
        done_cells = list(old["cells"])
    else:
        config_file = request.config or ("bench.yaml" if Path("bench.yaml").is_file() else None)
        plan = plan_mod.load_plan(config_file, overrides)
    reg = registry.discover()
    for where, err in reg.errors:
        _say(f"benchbench: warning: suite {where}: {err}")
    workloads = resolve_workloads(plan, reg, from_cli=bool(overrides.get("workloads")))
    n_gpus = backend.gpu_count()
    _check_data(plan, workloads)
    descs, notices = plan_cells(plan, workloads, n_gpus, given_memory_limit=overrides.get("memory_limit") is not None)
    for line in notices:
        _say(line)
    preflight.check_output_dir(run_path.parent if request.resume else plan.output)
    machine = system.fingerprint()
    if request.label is not None:
        if not request.label.strip() or len(request.label) > 120 or not request.label.isprintable():
            raise UserError(f"--label must be 1 to 120 printable characters, got {request.label!r}")
        machine["label"] = request.label.strip()
    if machine.get("simulated_gpus"):
        _say(f"benchbench: {backend.SIMULATED_NOTE}")
    for warning in (machine.get("cpu_frequency") or {}).get("warnings") or []:
        if not warning.startswith("no cpufreq"):  # settings that move the figures, as pyperf warns
            _say(f"benchbench: warning: {warning}")
    if request.resume:
        if old["machine"]["id"] != machine["id"]:
            raise UserError(f"--resume: run {old['run_id']} was recorded on machine {old['machine']['id']}, "
                            f"this is {machine['id']}; start a new run here")
        finished = {c["id"] for c in done_cells}
        descs = [d for d in descs if d.id not in finished]
        old["status"] = "running"
        writer = results.RunWriter(run_path.parent.parent, old)
        writer.path = run_path  # exactly the file named, never a path derived from it
    else:
        writer = results.RunWriter(plan.output, results.new_run(machine, plan.as_dict(), request.argv))
        held.append(runlock.RunLock(writer.path).acquire())
        if writer.path.exists():  # never overwrite another results file
            raise RuntimeError(f"{writer.path} already exists; a new run never reuses a run id")
    busy = interference.preflight()  # after every usage check: a busy machine is a warning, not an error
    warning = interference.preflight_warning(busy)
    if warning:
        _say(warning)
    calibration = probes.RunCalibration()
    calibration.run_start()
    writer.run["preflight"] = busy
    writer.run["probes"] = calibration.as_dict()
    writer.write()
    progress = run_progress.RunProgress(len(descs))
    new_cells = []

    def cell_done(i, cell):
        from benchbench.cell_record import failed

        calibration.after_cell(i, cell)
        try:
            try:
                stored = writer.add_cell(cell)
            except results.ResultsError as e:  # a malformed record still leaves a trace
                stored = writer.add_cell(failed(descs[i], "failed", f"invalid cell record: {e}"))
        except OSError as e:  # a full or failing disk: the cell is held in memory, the run stops
            raise _ResultsNotWritten(e) from None
        new_cells.append(stored)
        progress.done(i, stored)

    def outcome(status):
        return RunOutcome(status, done_cells + new_cells, writer.path, len(new_cells), len(descs))

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
        return outcome("interrupted")
    except _ResultsNotWritten as e:
        progress.close()
        kept = len(writer.run["cells"]) - len(done_cells)
        try:
            writer.finish("interrupted")
            where = f"{kept} of {len(descs)} cells finished and kept in {writer.path}"
        except OSError:
            where = f"{writer.path} keeps the cells written before (status still 'running')"
        stopped = outcome("interrupted")
        stopped.write_error = (f"cannot write the results file {writer.path} ({e.error.strerror or e.error}); the run "
                               f"stopped: {where}; free space, then complete the run with "
                               f"`benchbench run --resume {writer.path}`")
        return stopped
    except BaseException:  # a bug: keep what finished, say the run did not complete
        progress.close()
        writer.finish("interrupted")
        raise
    progress.close()
    calibration.run_end()
    writer.run["probes"] = calibration.as_dict()
    writer.finish("complete")
    return outcome("complete")
