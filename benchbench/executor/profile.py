"""``benchbench profile``: where one training step's time goes, function by function.

Every Function call of a training step is timed forward and backward (device-synchronised,
median over several steps) with ``core.profiler.Profiler``; the optimizer update is timed
apart, and what remains of the step (graph bookkeeping, Python) is shown as "framework
overhead", so the rows add up to the measured step. The step is also measured without the
profiler, to show what profiling costs. Under the simulated GPUs, the kernel launches and host
synchronisations (transfers back to the host) of the step, of its update and of every row are
counted too (``launches`` in the result; None where nothing counts them).
"""
from __future__ import annotations

import contextlib
import statistics

from benchbench.executor.step import build_step
from benchbench.phases import UPDATE


def profile_workload(spec: str, device: str = "cpu", steps: int = 5, warmup: int = 2,
                     data: str = "synthetic", data_dir=None, seed: int = 0, suites_dir=None) -> dict:
    """Profile ``steps`` training steps of the workload ``spec`` on ``device``.

    Args:
        spec: a workload spec (``"resnet_cifar10:depth=18"``).
        device: ``"cpu"`` or ``"gpu:N"``.
        steps: profiled steps (the median is reported); also the number of unprofiled steps.
        warmup: steps run first and not measured.
        data: ``"synthetic"``, ``"real"`` or ``"auto"``.

    Returns:
        A dict: workload, params, device, batch_size, step_s (unprofiled median),
        profiled_step_s, update_s, overhead_s, rows (one per function call with forward_s,
        backward_s, total_s, share, flops and gflops), data (source and note), host_allocator
        (what :func:`benchbench.core.host_allocator.tune` did), launches (``{"step", "syncs",
        "update", "update_syncs"}`` per step, or None where launches are not counted).
    """
    from benchbench import registry
    from benchbench.core import backend

    if steps < 1 or warmup < 0:
        raise ValueError(f"profile: steps must be >= 1 and warmup >= 0, got steps={steps}, warmup={warmup}")
    from benchbench.core import host_allocator

    wl, params = registry.resolve(spec, registry.discover(suites_dir))
    dev = backend.Device(device)
    allocator = host_allocator.tune()  # as in a benchmark cell: no page faults from fresh arrays
    # gpu:N with N >= 1: every array the step creates (gradients, optimizer state, the loss
    # seed) must land on that GPU, so it is the current device for the whole profile.
    with dev.scope():
        result = _profile_on(wl, params, spec, dev, steps, warmup, data, data_dir, seed)
    result["host_allocator"] = allocator
    return result


class _SyncedPhases:
    """The phases of one step, each timed with ``backend.synced_timer`` (seconds by phase name) and,
    given a ``counter`` (the simulated GPUs' ``backend.sim_counts``), its kernel launches and host
    syncs (``counts``: phase name -> (launches, syncs))."""

    def __init__(self, device, counter=None):
        self.device, self.counter, self.seconds, self.counts = device, counter, {}, {}

    @contextlib.contextmanager
    def phase(self, name):
        from benchbench.core import backend

        with backend.synced_timer(self.device) as span:
            c0 = self.counter() if self.counter is not None else None
            yield
        self.seconds[name] = span.seconds
        if c0 is not None:
            c1 = self.counter()
            self.counts[name] = (c1["launches"] - c0["launches"], c1["syncs"] - c0["syncs"])

    def total_counts(self) -> tuple[int, int]:
        return tuple(sum(c[i] for c in self.counts.values()) for i in (0, 1))


def _profile_on(wl, params, spec, dev, steps, warmup, data, data_dir, seed) -> dict:
    from benchbench.core import backend, profiler, seed as core_seed
    from benchbench.data import BatchIterator

    core_seed(seed)
    batch = wl.batch_size
    n_steps = warmup + 2 * steps
    ds = wl.load_data(data, data_dir=data_dir, seed=seed, n_train=batch * n_steps, n_val=batch)
    it = BatchIterator(ds.train, batch, shuffle=True, seed=seed)
    train = build_step(wl, params, dev)  # the step a cell times
    counter = backend.sim_counts if dev.kind == "gpu" and backend.sim_counts() is not None else None
    counts = []  # per plain step: (launches, syncs, update launches, update syncs)

    def step(count=False):
        x, t = (backend.to_device(a, dev) for a in it.next())
        phases = _SyncedPhases(dev, counter if count else None)
        train(x, t, phases)
        if count:
            (la, sa), (lu, su) = phases.total_counts(), phases.counts[UPDATE]
            counts.append((la, sa, lu, su))
        return sum(phases.seconds.values()), phases.seconds[UPDATE]

    for _ in range(warmup):
        step()
    # Plain and profiled steps alternate, so that drift in the machine's speed hits both alike.
    plain, profiled, updates = [], [], []
    prof = profiler.Profiler(dev, counter=counter)
    for _ in range(steps):
        plain.append(step(count=counter is not None)[0])
        with prof:
            prof.begin_step()
            total, upd = step()
        profiled.append(total)
        updates.append(upd)
    rows = prof.rows()
    step_s = statistics.median(plain)
    prof_s = statistics.median(profiled)
    update_s = statistics.median(updates)
    fn_s = sum(r["forward_s"] + r["backward_s"] for r in rows)
    overhead_s = max(prof_s - update_s - fn_s, 0.0)
    for r in rows:
        r["total_s"] = r["forward_s"] + r["backward_s"]
        r["share"] = r["total_s"] / prof_s if prof_s > 0 else 0.0
        flops = r["flops_forward"] + r["flops_backward"]
        r["gflops"] = flops / r["total_s"] / 1e9 if r["total_s"] > 0 else 0.0
    return {
        "workload": wl.name, "spec": spec, "params": params, "device": str(dev), "batch_size": batch,
        "steps": steps, "warmup": warmup, "step_s": step_s, "profiled_step_s": prof_s,
        "update_s": update_s, "functions_s": fn_s, "overhead_s": overhead_s, "rows": rows,
        "data": {"dataset": wl.dataset, "source": ds.source, "note": ds.note},
        "launches": None if not counts else dict(zip(
            ("step", "syncs", "update", "update_syncs"), (int(statistics.median(c)) for c in zip(*counts)))),
    }


def format_profile(result: dict, top: int | None = None) -> str:
    """The profile as a text table, slowest rows first when ``top`` is given (call order otherwise)."""
    rows = list(result["rows"])
    if top is not None:
        rows = sorted(rows, key=lambda r: -r["total_s"])[:top]
    head = (f"{result['spec']} on {result['device']}, batch {result['batch_size']}: step "
            f"{result['step_s'] * 1e3:.2f} ms unprofiled, {result['profiled_step_s'] * 1e3:.2f} ms profiled "
            f"(median of {result['steps']}); data: {result['data']['source']}")
    counted = result.get("launches")
    extra = f" {'launches':>8} {'syncs':>5}" if counted else ""
    lines = [head]
    if counted:
        lines.append(f"per step: {counted['step']} kernel launches, {counted['syncs']} host syncs "
                     f"(optimizer update: {counted['update']} launches, {counted['update_syncs']} syncs)")
    lines.append(f"{'#':>4} {'layer':<28} {'function':<26} {'fwd ms':>9} {'bwd ms':>9} {'share':>7} {'GFLOP/s':>9}"
                 + extra)
    for r in rows:
        lines.append(
            f"{r['index']:>4} {r['scope'][-28:]:<28} {r['function'][:26]:<26} {r['forward_s'] * 1e3:>9.3f} "
            f"{r['backward_s'] * 1e3:>9.3f} {r['share'] * 100:>6.1f}% {r['gflops']:>9.2f}"
            + (f" {r.get('launches', 0):>8} {r.get('syncs', 0):>5}" if counted else "")
        )
    p = result["profiled_step_s"] or 1.0
    lines.append(f"{'':>4} {'optimizer update':<55} {result['update_s'] * 1e3:>9.3f} {'':>9} "
                 f"{result['update_s'] / p * 100:>6.1f}%")
    lines.append(f"{'':>4} {'framework overhead (graph, Python)':<55} {result['overhead_s'] * 1e3:>9.3f} {'':>9} "
                 f"{result['overhead_s'] / p * 100:>6.1f}%")
    if result.get("host_allocator"):
        from benchbench.core import host_allocator

        lines.append(host_allocator.describe(result["host_allocator"]))
    return "\n".join(lines)
