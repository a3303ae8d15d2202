"""Kernel launches and host syncs per training step of each workload, counted by the simulated GPUs.

Run under the simulator (it counts what real cupy would launch; real cupy counts nothing):

    PYTHONPATH=tests/simgpu python benchmarks/launches.py [--batch N] [WORKLOAD ...]

Prints a markdown table: per workload, its batch (the quick and the full profile train at the
workload's own batch), launches per step and host syncs per step (steady state: after one step
that creates the optimizer state). The launch-budget tests (``tests/core/test_launch_budgets.py``)
count with :func:`per_step` too.
"""
from __future__ import annotations

import sys

WORKLOADS = ("mlp_mnist", "cnn_mnist", "lenet5_cifar10", "resnet_cifar10:depth=18", "lstm_sine",
             "lstm_sine:fused=true")


def per_step(spec: str, steps: int = 1, warmup: int = 1, batch_size: int | None = None,
             dtype: str = "float32") -> dict:
    """Launches and syncs of one training step of workload ``spec`` on gpu:0 (the median of ``steps``)."""
    import statistics

    from benchbench import registry
    from benchbench.core import backend, mixed_precision, seed
    from benchbench.data import BatchIterator

    if backend.sim_counts() is None:
        raise SystemExit("launches.py: run under the simulated GPUs (PYTHONPATH=tests/simgpu)")
    wl, params = registry.resolve(spec, registry.discover())
    seed(0)
    dev = backend.Device("gpu:0")
    batch = batch_size or wl.batch_size
    with dev.scope():
        ds = wl.load_data("synthetic", n_train=batch * (steps + warmup), n_val=batch, seed=0)
        it = BatchIterator(ds.train, batch, shuffle=False, seed=0)
        model = wl.build_model(params)
        model.to_device(str(dev))
        opt, fmodel = wl.build_optimizer(params), model
        if dtype != "float32":
            opt = mixed_precision.MixedPrecisionOptimizer(opt, mixed_precision.loss_scaler_for(dtype))
            fmodel = mixed_precision.MixedPrecisionModel(model, dtype)
        opt.setup(model)
        counts = []
        for i in range(warmup + steps):
            x, t = (backend.to_device(a, dev) for a in it.next())
            c0 = backend.sim_counts()
            loss, _ = wl.forward(fmodel, x, t, params)
            model.cleargrads()
            opt.backward(loss) if dtype != "float32" else loss.backward()
            opt.update()
            c1 = backend.sim_counts()
            if i >= warmup:
                counts.append((c1["launches"] - c0["launches"], c1["syncs"] - c0["syncs"]))
    return {"workload": spec, "batch_size": batch, "launches": int(statistics.median(c[0] for c in counts)),
            "syncs": int(statistics.median(c[1] for c in counts))}


def main(argv=None) -> int:
    import argparse

    parser = argparse.ArgumentParser(description="Kernel launches per training step, counted by the simulated GPUs.")
    parser.add_argument("--batch", type=int, default=None,
                        help="batch size (default: each workload's own; the count does not depend on it)")
    parser.add_argument("workloads", nargs="*", default=list(WORKLOADS))
    args = parser.parse_args(argv)
    print("| workload | batch | launches per step | host syncs per step |")
    print("| --- | ---: | ---: | ---: |")
    for spec in args.workloads:
        r = per_step(spec, batch_size=args.batch)
        print(f"| {spec} | {r['batch_size']} | {r['launches']:,} | {r['syncs']} |", flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
