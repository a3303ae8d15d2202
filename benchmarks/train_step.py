"""Time a full training step (forward, backward, optimizer update; float32) of each workload on the CPU.

For every workload the benchbench step and, when PyTorch is installed, the same model in
PyTorch are measured in the same run, in alternating blocks of about 0.1 s of steps
(benchbench, PyTorch, benchbench, PyTorch ...; one step per block when a step is longer)
so that machine noise affects both alike, on the same synthetic batch (see :func:`measure`).
PyTorch starts from benchbench's initial parameters, so the first losses agree.
Printed: ms/step (median and IQR after warm-up), samples/s, achieved GFLOP/s (from the
workload's ``flops_per_sample``), PyTorch's ms/step and the ratio benchbench / PyTorch;
a plain float32 GEMM (numpy's, and PyTorch's) timed at the start and again at the end of the
run, whose best rate is this run's ceiling: each framework's achieved GFLOP/s is also given
as a fraction of it (``ceiling`` columns: how near the GEMM rate a whole step gets); the BLAS
kernel and threads; the per-op framework overhead (a chain of 100 small ops with backward).

Usage:
    python benchmarks/train_step.py [--workload NAME ...] [--steps N] [--warmup N] [--json OUT]
        [--settle S] [--no-torch] [--profile] [--threads N[,N...]]

NAME is a key of :data:`WORKLOADS` (``mlp``, ``cnn``, ``lenet5``, ``lstm``, ``lstm_fused``,
``resnet18``) or any workload spec (``"mlp_mnist:small"``). PyTorch is optional and never a
dependency of benchbench: ``pip install torch==2.13.0`` in a separate environment and run
this script with that environment's Python.

``--threads 1,2`` runs the whole measurement once per thread count, each in a fresh process with
the BLAS, OpenMP and numba threads set to that count (PyTorch follows the BLAS threads), prints
each run's table, then each framework's speed-up from the added threads, per workload, and
whether benchbench's is within :data:`SPEEDUP_TOLERANCE` of PyTorch's.
"""
from __future__ import annotations

import argparse
import cProfile
import gc
import io
import json
import os
import pstats
import sys
import time
from pathlib import Path

import benchbench  # noqa: F401 - before numpy: it sets OpenBLAS's thread timeout, read when OpenBLAS loads
import numpy

# key: (label, workload spec, target ratio benchbench / PyTorch, default steps). The frameworks
# alternate a step (or a block of short steps) at a time and each ratio is of medians: on a
# shared machine a burst from another process lands on one framework's step, so every workload
# gets at least 10 timed steps each (ResNet-18 had 4, and one burst moved its ratio by 0.1).
WORKLOADS = {
    "mlp": ("MLP/MNIST", "mlp_mnist", 1.0, 60),
    "cnn": ("CNN/MNIST", "cnn_mnist", 1.2, 16),
    "lenet5": ("LeNet5/CIFAR-10", "lenet5_cifar10", 1.2, 60),
    "lstm": ("LSTM/sine per-step", "lstm_sine", 1.5, 40),
    "lstm_fused": ("LSTM/sine fused", "lstm_sine:fused=true", 2.0, 100),
    # Augmentation is switched off so that both frameworks time the same model.
    "resnet18": ("ResNet-18/CIFAR-10", "resnet_cifar10:depth=18,augment=false", 1.2, 10),
}
OVERHEAD_TARGET_US = 10.0
SPEEDUP_TOLERANCE = 0.10  # benchbench's speed-up from more threads within 10% of PyTorch's
THREAD_VARIABLES = ("OPENBLAS_NUM_THREADS", "OMP_NUM_THREADS", "MKL_NUM_THREADS", "NUMBA_NUM_THREADS")
SETTLE_S = 0.2
BLOCK_S = 0.1
SUITES = Path(__file__).resolve().parent.parent / "benchbench" / "suites"


# --------------------------------------------------------------------------- statistics
def summarize(step_s, batch_size=None, flops_per_sample=None):
    """Median and IQR (ms) of step times in seconds, with samples/s and GFLOP/s at the median."""
    ms = numpy.asarray(step_s, dtype=numpy.float64) * 1e3
    q25, med, q75 = numpy.percentile(ms, [25, 50, 75])
    out = {"ms_median": float(med), "ms_iqr": float(q75 - q25), "ms_min": float(ms.min()),
           "step_ms": [float(v) for v in ms]}
    if batch_size:
        out["samples_per_s"] = batch_size / (med / 1e3)
        if flops_per_sample:
            out["gflops"] = flops_per_sample * batch_size / (med / 1e3) / 1e9
    return out


# --------------------------------------------------------------------------- steps
class BenchbenchStep:
    """One workload's model, optimizer and a fixed synthetic batch; ``step()`` trains on it once."""

    def __init__(self, spec, seed=0, device="cpu"):
        from benchbench import core, registry
        from benchbench.core import backend
        from benchbench.executor.step import build_step

        reg = registry.discover(SUITES if SUITES.is_dir() else None)
        self.workload, self.params = registry.resolve(spec, reg)
        wl = self.workload
        core.seed(seed)
        data = wl.load_data("synthetic", seed=seed, n_train=wl.batch_size, n_val=wl.batch_size)
        self.x, self.t = (numpy.ascontiguousarray(a[: wl.batch_size]) for a in data.train)
        self.device = backend.Device(device)
        self.x_dev, self.t_dev = (backend.to_device(a, self.device) for a in (self.x, self.t))
        self.train = build_step(wl, self.params, self.device)  # the step a benchmark cell times
        self.model, self.optimizer = self.train.model, self.train.optimizer
        self.batch_size = wl.batch_size
        self.flops_per_sample = wl.flops_per_sample(self.params)["train_step"]

    def step(self):
        """Forward, backward and update; returns the loss as a float (which waits for the device)."""
        loss, _ = self.train(self.x_dev, self.t_dev)
        return float(loss.array)


class TorchStep:
    """The PyTorch equivalent of a :class:`BenchbenchStep`, starting from the same parameters and batch."""

    def __init__(self, bb, torch_models):
        import torch

        self.torch = torch
        self.model, self.optimizer, self.forward = torch_models.build(bb.workload.name, bb.params)
        torch_models.load_benchbench_params(self.model, bb.model)
        dev = "cpu" if bb.device.kind == "cpu" else f"cuda:{bb.device.index}"
        self.model.to(dev)
        self.model.train()  # .to() moves parameters in place: the optimizer built above still holds them
        self.x, self.t = torch_models.as_tensor(bb.x).to(dev), torch_models.as_tensor(bb.t).to(dev)

    def step(self):
        self.optimizer.zero_grad(set_to_none=True)
        loss, _ = self.forward(self.model, self.x, self.t)
        loss.backward()
        self.optimizer.step()
        return float(loss.detach())


def _timed(step):
    t0 = time.perf_counter()
    loss = step()
    return time.perf_counter() - t0, loss


def measure(spec, steps, warmup, torch_models=None, settle=SETTLE_S, block_s=BLOCK_S, device="cpu"):
    """Time ``steps`` training steps of a workload after ``warmup`` ones, PyTorch interleaved if given.

    The frameworks take turns in blocks of about ``block_s`` seconds of steps (one step per
    block when a step is longer): benchbench, PyTorch, benchbench, PyTorch ... Before each
    block the script pauses ``settle`` seconds, long enough for the idle worker threads of
    the library just used to stop spinning (OpenBLAS's keep a core busy for about 0.1 s after
    a GEMM), so that neither framework runs beside the other's spinning threads; a block of
    more than one step starts with one untimed step that warms the caches again.

    Args:
        spec: a workload spec (``"mlp_mnist"``, ``"resnet_cifar10:depth=18,augment=false"``).
        steps: timed steps (>= 1).
        warmup: untimed steps before them (>= 0; at least one is run, to estimate the step time).
        torch_models: the ``torch_models`` module, or None for the benchbench half only.
        settle: seconds of pause before every block (>= 0).
        block_s: the length of a block in seconds.
        device: ``"cpu"`` or ``"gpu:N"`` (PyTorch then runs on ``cuda:N``).

    Returns:
        A dict with ``spec``, ``batch_size``, ``flops_per_sample``, ``block`` (steps per block),
        ``benchbench`` (see :func:`summarize`, plus ``first_loss``) and, with PyTorch, ``torch``,
        ``ratio`` (of the medians) and ``ratio_min`` (of the fastest steps).
    """
    if steps < 1 or warmup < 0 or settle < 0:
        raise ValueError(f"measure: steps must be >= 1, warmup and settle >= 0, got steps={steps}, "
                         f"warmup={warmup}, settle={settle}")
    from benchbench.core import backend

    # gpu:N with N >= 1: the arrays each step creates must land on that GPU (it is made current).
    with backend.Device(device).scope():
        return _measure(spec, steps, warmup, torch_models, settle, block_s, device)


def _measure(spec, steps, warmup, torch_models, settle, block_s, device):
    bb = BenchbenchStep(spec, device=device)
    tq = TorchStep(bb, torch_models) if torch_models is not None else None
    sides = [("benchbench", bb)] + ([("torch", tq)] if tq is not None else [])
    times = {name: [] for name, _ in sides}
    first, slowest = {}, 0.0
    for name, side in sides:
        time.sleep(settle)
        dts = []
        for _ in range(max(warmup, 1)):
            dt, loss = _timed(side.step)
            first.setdefault(name, loss)
            dts.append(dt)
        slowest = max(slowest, min(dts))
    block = max(1, min(steps, int(block_s / max(slowest, 1e-6))))
    while len(times[sides[0][0]]) < steps:
        for name, side in sides:
            time.sleep(settle)
            if block > 1:
                side.step()
            for _ in range(min(block, steps - len(times[name]))):
                times[name].append(_timed(side.step)[0])
    out = {"spec": spec, "batch_size": bb.batch_size, "flops_per_sample": bb.flops_per_sample,
           "steps": steps, "warmup": warmup, "settle_s": settle, "block": block}
    for name, _ in sides:
        out[name] = summarize(times[name], bb.batch_size, bb.flops_per_sample)
        out[name]["first_loss"] = first[name]
    if tq is not None:
        out["ratio"] = out["benchbench"]["ms_median"] / out["torch"]["ms_median"]
        out["ratio_min"] = out["benchbench"]["ms_min"] / out["torch"]["ms_min"]
    return out


# --------------------------------------------------------------------------- references
def measure_gemm(n=1024, repeats=10, torch=None):
    """GFLOP/s of an ``n x n x n`` float32 matmul in numpy (and in torch when given), median of ``repeats``."""
    rng = numpy.random.default_rng(0)
    a, b = (rng.standard_normal((n, n)).astype(numpy.float32) for _ in range(2))
    out = {"n": n, "numpy_gflops": _gemm_gflops(lambda: a @ b, n, repeats)}
    if torch is not None:
        ta, tb = torch.from_numpy(a), torch.from_numpy(b)
        out["torch_gflops"] = _gemm_gflops(lambda: ta @ tb, n, repeats)
    return out


def gemm_ceiling(*gemms):
    """The best float32 GEMM rate (GFLOP/s) among :func:`measure_gemm` results (numpy's or torch's)."""
    rates = [g[k] for g in gemms if g for k in ("numpy_gflops", "torch_gflops") if g.get(k)]
    if not rates:
        raise ValueError("gemm_ceiling: no GEMM rate was measured")
    return max(rates)


def add_ceiling_fractions(row, ceiling):
    """Add ``ceiling_fraction`` (achieved GFLOP/s / ``ceiling``) to each framework's half of ``row``."""
    if not ceiling > 0:
        raise ValueError(f"add_ceiling_fractions: ceiling must be a positive GFLOP/s, got {ceiling!r}")
    for name in ("benchbench", "torch"):
        if name in row and row[name].get("gflops") is not None:
            row[name]["ceiling_fraction"] = row[name]["gflops"] / ceiling
    return row


def _gemm_gflops(fn, n, repeats):
    fn()
    time.sleep(SETTLE_S)
    times = [_timed(fn)[0] for _ in range(repeats)]
    return 2.0 * n ** 3 / float(numpy.median(times)) / 1e9


def measure_overhead(n_ops=100, repeats=200, torch=None):
    """Per-op framework cost (µs, forward and backward): a chain of ``n_ops`` add/mul on (10,) float32."""
    from benchbench.core import Variable

    def bb_chain():
        x = Variable(numpy.ones(10, numpy.float32))
        w = Variable(numpy.full(10, 1.0001, numpy.float32))
        b = Variable(numpy.full(10, 1e-4, numpy.float32))
        h = x
        for _ in range(n_ops // 2):
            h = h * w
            h = h + b
        h.grad = numpy.ones(10, numpy.float32)
        h.backward()

    out = {"n_ops": n_ops, "benchbench_us_per_op": _per_op_us(bb_chain, n_ops, repeats)}
    if torch is not None:
        def torch_chain():
            x, w, b = (torch.full((10,), v, requires_grad=True) for v in (1.0, 1.0001, 1e-4))
            h = x
            for _ in range(n_ops // 2):
                h = h * w
                h = h + b
            h.backward(torch.ones(10))

        out["torch_us_per_op"] = _per_op_us(torch_chain, n_ops, repeats)
    return out


def _per_op_us(fn, n_ops, repeats):
    time.sleep(SETTLE_S)
    for _ in range(3):
        fn()
    times = [_timed(fn)[0] for _ in range(repeats)]
    return float(numpy.median(times)) / n_ops * 1e6


def machine_info():
    """BLAS library, kernel and threads of numpy (threadpoolctl), OPENBLAS_CORETYPE, CPU count, load."""
    from threadpoolctl import threadpool_info

    from benchbench.core import host_allocator

    blas = [{k: lib.get(k) for k in ("internal_api", "version", "architecture", "num_threads", "threading_layer")}
            for lib in threadpool_info() if lib.get("user_api") == "blas"]
    return {
        # as in a benchmark cell, and for both frameworks alike: they share this process
        "host_allocator": host_allocator.tune(),
        "numpy": numpy.__version__,
        "blas": blas,
        "OPENBLAS_CORETYPE": os.environ.get("OPENBLAS_CORETYPE"),
        "OPENBLAS_THREAD_TIMEOUT": os.environ.get("OPENBLAS_THREAD_TIMEOUT"),
        "cpu_count": os.cpu_count(),
        "loadavg_start": list(os.getloadavg()) if hasattr(os, "getloadavg") else None,
    }


def tf32_off(device, torch=None, environ=None):
    """Set TF32 off on both sides of a GPU comparison and say what was set.

    benchbench computes in float32; PyTorch on an Ampere-or-later GPU would run its convolutions
    (cuDNN's default) in TF32, with a 10-bit mantissa, and win by a precision it does not keep.
    cupy reads ``CUPY_TF32`` when it is imported (so this runs before benchbench's first cupy
    import); ``NVIDIA_TF32_OVERRIDE=0`` turns it off in the CUDA libraries under both.

    Args:
        device: ``"cpu"`` or ``"gpu:N"``; nothing is set for the CPU.
        torch: the imported torch module, or None.
        environ: the environment to change (default ``os.environ``).

    Returns:
        The record ``run`` keeps under ``machine.tf32``.
    """
    environ = os.environ if environ is None else environ
    if not str(device).startswith("gpu"):
        return {"applies": False, "note": "CPU: TF32 is a GPU tensor-core format; nothing to set"}
    environ["CUPY_TF32"] = "0"
    environ["NVIDIA_TF32_OVERRIDE"] = "0"
    record = {"applies": True, "CUPY_TF32": "0", "NVIDIA_TF32_OVERRIDE": "0",
              "cupy_imported_before": "cupy" in sys.modules}
    if torch is not None:
        torch.backends.cuda.matmul.allow_tf32 = False
        torch.backends.cudnn.allow_tf32 = False
        record["torch.backends.cuda.matmul.allow_tf32"] = bool(torch.backends.cuda.matmul.allow_tf32)
        record["torch.backends.cudnn.allow_tf32"] = bool(torch.backends.cudnn.allow_tf32)
    return record


def import_torch(threads):
    """``(torch, torch_models)`` with torch set to ``threads`` threads and TF32 off, or ``(None, None)``."""
    try:
        import torch
    except ImportError:
        return None, None
    torch.set_num_threads(threads)
    torch.backends.cuda.matmul.allow_tf32 = False
    torch.backends.cudnn.allow_tf32 = False
    torch.set_float32_matmul_precision("highest")
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import torch_models

    return torch, torch_models


# --------------------------------------------------------------------------- running
def run(names, steps=None, warmup=3, use_torch=True, overhead_repeats=200, settle=SETTLE_S, log=print,
        device="cpu"):
    """Measure the named workloads, the GEMM reference and the per-op overhead.

    Args:
        names: keys of :data:`WORKLOADS` or workload specs.
        steps: timed steps per workload (None: each workload's default).
        warmup: untimed steps first.
        use_torch: also time PyTorch when it is installed.
        overhead_repeats: chains timed for the overhead line.
        settle: seconds of pause after every training step (see :func:`measure`).
        log: called with a line of progress.
        device: ``"cpu"`` or ``"gpu:N"``.

    Returns:
        The dict ``--json`` writes: ``machine``, ``gemm``, ``overhead``, ``workloads``.
    """
    info = machine_info()  # before torch loads its own libraries
    threads = max([b["num_threads"] or 1 for b in info["blas"]] or [1])
    info["tf32"] = tf32_off(device)  # before benchbench imports cupy
    torch, torch_models = import_torch(threads) if use_torch else (None, None)
    if torch is not None:
        info["tf32"] = tf32_off(device, torch)
    if torch is None:
        info["torch_skipped"] = "not installed" if use_torch else "not asked for"
    if torch is not None:
        info["torch"] = {"version": torch.__version__, "num_threads": torch.get_num_threads(),
                         "set_to_blas_threads": threads,
                         "allow_tf32_matmul": bool(torch.backends.cuda.matmul.allow_tf32),
                         "allow_tf32_cudnn": bool(torch.backends.cudnn.allow_tf32)}
    info["device"] = device
    # Both frameworks' imports leave many long-lived objects that the cyclic garbage collector
    # would scan again and again during the small-op steps; benchbench's runner freezes them too.
    gc.collect()
    gc.freeze()
    result = {"machine": info, "gemm": measure_gemm(torch=torch),
              "overhead": measure_overhead(repeats=overhead_repeats, torch=torch), "workloads": []}
    for name in names:
        label, spec, target, default_steps = WORKLOADS.get(name, (name, name, None, 20))
        n = steps if steps is not None else default_steps
        log(f"  timing {label} ({spec}): {warmup} warm-up + {n} steps ...")
        row = measure(spec, n, warmup, torch_models, settle, device=device)
        row.update(key=name, label=label, target=target)
        result["workloads"].append(row)
        log("  " + format_row(row))
    result["gemm_end"] = measure_gemm(torch=torch)
    result["gemm_ceiling_gflops"] = gemm_ceiling(result["gemm"], result["gemm_end"])
    for row in result["workloads"]:
        add_ceiling_fractions(row, result["gemm_ceiling_gflops"])
    info["loadavg_end"] = list(os.getloadavg()) if hasattr(os, "getloadavg") else None
    return result


def format_report(result):
    """The result of :func:`run` as text lines."""
    m, g, o = result["machine"], result["gemm"], result["overhead"]
    lines = []
    if (m.get("tf32") or {}).get("applies"):
        lines.append("TF32: off on both sides (CUPY_TF32=0, NVIDIA_TF32_OVERRIDE=0, torch allow_tf32 = False): "
                     "float32 against float32")
    for b in m["blas"]:
        lines.append(f"BLAS: {b['internal_api']} {b['version']}, kernel {b['architecture']}, "
                     f"{b['num_threads']} threads ({b['threading_layer']}); numpy {m['numpy']}")
    if m.get("host_allocator"):
        from benchbench.core import host_allocator

        line = host_allocator.describe(m["host_allocator"])
        if m["host_allocator"].get("applied"):
            line += " (no page faults from fresh arrays; both frameworks, one process)"
        lines.append(line)
    lines.append(f"OPENBLAS_CORETYPE: {m['OPENBLAS_CORETYPE'] or 'not set'}; "
                 f"OPENBLAS_THREAD_TIMEOUT: {m.get('OPENBLAS_THREAD_TIMEOUT') or 'not set'}; CPUs: {m['cpu_count']}; "
                 f"load average at start {_load(m['loadavg_start'])}, at end {_load(m.get('loadavg_end'))}")
    if "torch" in m:
        t = m["torch"]
        lines.append(f"PyTorch {t['version']}: {t['num_threads']} threads (set equal to the BLAS threads); "
                     f"TF32 matmul {t.get('allow_tf32_matmul')}, cuDNN {t.get('allow_tf32_cudnn')}")
    else:
        lines.append(f"PyTorch: {m['torch_skipped']} (benchbench half only)")
    for when, gm in (("start", g), ("end", result.get("gemm_end"))):
        if gm:
            ref = f"GEMM {gm['n']}^3 float32 at the {when}: numpy {gm['numpy_gflops']:.1f} GFLOP/s"
            lines.append(ref + (f", torch {gm['torch_gflops']:.1f} GFLOP/s" if "torch_gflops" in gm else ""))
    if "gemm_ceiling_gflops" in result:
        lines.append(f"ceiling (best GEMM rate of this run): {result['gemm_ceiling_gflops']:.1f} GFLOP/s")
    over = f"per-op overhead ({o['n_ops']} add/mul on (10,) + backward): {o['benchbench_us_per_op']:.2f} µs/op"
    over += f" (target <= {OVERHEAD_TARGET_US:g})"
    lines.append(over + (f"; torch {o['torch_us_per_op']:.2f} µs/op" if "torch_us_per_op" in o else ""))
    lines.append("")
    head = HEADER
    lines += [head, "-" * len(head)]
    lines += [format_row(w) for w in result["workloads"]]
    return lines


HEADER = (f"{'workload':<20}{'batch':>6}{'ms/step (IQR)':>20}{'samples/s':>11}{'GFLOP/s':>9}{'ceiling':>8}"
          f"{'torch ms (IQR)':>20}{'GFLOP/s':>9}{'ceiling':>8}{'ratio':>7}{'target':>8}{'':5}{'min-ratio':>10}"
          f"  first loss bb/torch")


def format_row(w):
    """One workload of :func:`run`'s result as a line of the table (columns of :data:`HEADER`)."""
    b = w["benchbench"]
    line = (f"{w['label']:<20}{w['batch_size']:>6}{_ms(b):>20}{b['samples_per_s']:>11.0f}{b['gflops']:>9.2f}"
            f"{_fraction(b):>8}")
    if "torch" in w:
        t = w["torch"]
        ok = "" if w["target"] is None else (" ok" if w["ratio"] <= w["target"] else " MISS")
        target = "" if w["target"] is None else f"<={w['target']:g}"
        line += (f"{_ms(t):>20}{t['gflops']:>9.2f}{_fraction(t):>8}{w['ratio']:>7.2f}{target:>8}{ok:<5}"
                 f"{w['ratio_min']:>10.2f}"
                 f"  {b['first_loss']:.5f}/{w['torch']['first_loss']:.5f}")
    return line


def _fraction(s):
    """The share of the GEMM ceiling as a percentage, or '-' before it is known."""
    return f"{100 * s['ceiling_fraction']:.0f}%" if "ceiling_fraction" in s else "-"


def _ms(s):
    return f"{s['ms_median']:.2f} ({s['ms_iqr']:.2f})"


def _load(la):
    return "?" if la is None else " ".join(f"{v:.1f}" for v in la)


def profile(spec, steps=3, top=25, device="cpu"):
    """cProfile of ``steps`` benchbench training steps (after one warm-up), sorted by cumulative time."""
    from benchbench.core import backend

    with backend.Device(device).scope():
        bb = BenchbenchStep(spec, device=device)
        bb.step()
        prof = cProfile.Profile()
        prof.enable()
        for _ in range(steps):
            bb.step()
        prof.disable()
    buf = io.StringIO()
    pstats.Stats(prof, stream=buf).sort_stats("cumulative").print_stats(top)
    buf.write("\n")
    pstats.Stats(prof, stream=buf).sort_stats("tottime").print_stats(top)
    return buf.getvalue()


def main(argv=None):
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--workload", nargs="+", action="extend", metavar="NAME",
                        help=f"keys ({', '.join(WORKLOADS)}) or workload specs (default: all keys)")
    parser.add_argument("--steps", type=int, default=None, help="timed steps per workload (default: per workload)")
    parser.add_argument("--warmup", type=int, default=3, help="untimed steps first (default 3)")
    parser.add_argument("--json", metavar="OUT", help="write every figure (and the raw step times) to OUT")
    parser.add_argument("--settle", type=float, default=SETTLE_S,
                        help=f"seconds of pause after every step (default {SETTLE_S})")
    parser.add_argument("--no-torch", action="store_true", help="time benchbench only")
    parser.add_argument("--profile", action="store_true", help="print a cProfile of the benchbench steps too")
    parser.add_argument("--device", default="cpu", help="cpu or gpu:N (PyTorch then runs on cuda:N)")
    parser.add_argument("--threads", type=_thread_list, metavar="N[,N...]",
                        help="run once per thread count, each in its own process, then compare the speed-ups")
    args = parser.parse_args(argv)
    if args.threads:
        return run_thread_counts(args.threads, _without_threads(sys.argv[1:] if argv is None else argv),
                                 json_out=args.json)
    tf32_off(args.device)  # before cupy or torch load their libraries
    if (args.steps is not None and args.steps < 1) or args.warmup < 0 or args.settle < 0:
        parser.error(f"--steps must be >= 1, --warmup and --settle >= 0, got {args.steps}, {args.warmup}, "
                     f"{args.settle}")
    names = args.workload or list(WORKLOADS)
    result = run(names, args.steps, args.warmup, use_torch=not args.no_torch, settle=args.settle, device=args.device)
    print("\n".join(format_report(result)))
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))
        print(f"\nwrote {args.json}")
    if args.profile:
        for name in names:
            spec = WORKLOADS.get(name, (name, name))[1]
            print(f"\n===== cProfile: {spec} =====")
            print(profile(spec, device=args.device))
    return 0


def _thread_list(text):
    try:
        counts = [int(v) for v in text.split(",")]
    except ValueError:
        counts = []
    if not counts or min(counts) < 1 or len(set(counts)) != len(counts):
        raise argparse.ArgumentTypeError(f"expected distinct thread counts >= 1 such as 1,2, got {text!r}")
    return counts


def _without_threads(argv):
    """``argv`` less its ``--threads`` and ``--json`` options (each run writes its own JSON)."""
    out, skip = [], False
    for a in argv:
        if skip:
            skip = False
        elif a in ("--threads", "--json"):
            skip = True
        elif not a.startswith(("--threads=", "--json=")):
            out.append(a)
    return out


def run_thread_counts(counts, argv, json_out=None, runner=None):
    """Run this script once per thread count (a fresh process each, the thread variables set), print
    each table, then the speed-ups; returns 0, or 1 when a run failed."""
    import subprocess
    import tempfile

    results = {}
    with tempfile.TemporaryDirectory() as tmp:
        for n in counts:
            out = Path(tmp) / f"threads-{n}.json"
            env = {**os.environ, **{v: str(n) for v in THREAD_VARIABLES}}
            cmd = [sys.executable, str(Path(__file__).resolve()), *argv, "--json", str(out)]
            print(f"===== {n} thread{'s' if n > 1 else ''} =====", flush=True)
            rc = (runner or subprocess.call)(cmd, env=env)
            if rc != 0 or not out.exists():
                print(f"the run at {n} threads failed (exit status {rc})")
                return 1
            results[n] = json.loads(out.read_text())
    print()
    print("\n".join(format_speedups(results)))
    if json_out:
        Path(json_out).write_text(json.dumps({str(n): r for n, r in results.items()}, indent=1))
        print(f"\nwrote {json_out}")
    return 0


def format_speedups(results):
    """Lines: per workload, the ratio at each thread count, and each framework's speed-up from the
    fewest to the most threads (median step time), with benchbench's judged against PyTorch's."""
    counts = sorted(results)
    lo, hi = counts[0], counts[-1]
    lines = [f"speed-up from {lo} to {hi} threads (median ms/step at {lo} / at {hi}); "
             f"benchbench's must be within {SPEEDUP_TOLERANCE:.0%} of PyTorch's"]
    head = (f"{'workload':<20}" + "".join(f"{f'ratio@{n}':>10}" for n in counts)
            + f"{'benchbench':>12}{'PyTorch':>9}{'':>6}")
    lines += [head, "-" * len(head)]
    rows = {n: {w["key"]: w for w in results[n]["workloads"]} for n in counts}
    for key, w_lo in rows[lo].items():
        if key not in rows[hi]:
            continue
        w_hi = rows[hi][key]
        ratios = "".join(f"{rows[n][key]['ratio']:>10.2f}" if "ratio" in rows[n].get(key, {}) else f"{'-':>10}"
                         for n in counts)
        bb = w_lo["benchbench"]["ms_median"] / w_hi["benchbench"]["ms_median"]
        line = f"{w_lo['label']:<20}{ratios}{bb:>11.2f}x"
        if "torch" in w_lo and "torch" in w_hi:
            pt = w_lo["torch"]["ms_median"] / w_hi["torch"]["ms_median"]
            ok = "ok" if bb >= pt * (1 - SPEEDUP_TOLERANCE) else "MISS"
            line += f"{pt:>8.2f}x{ok:>6}"
        lines.append(line)
    for n in counts:
        for b in results[n]["machine"]["blas"]:
            lines.append(f"at {n} threads: BLAS {b['internal_api']} {b['version']}, kernel {b['architecture']}, "
                         f"{b['num_threads']} threads; load average at start "
                         f"{_load(results[n]['machine']['loadavg_start'])}")
    return lines


if __name__ == "__main__":
    sys.exit(main())
