"""The workload registry: what a workload is, and where workloads are found.

A workload is one file in ``suites/`` (or a third-party package's entry point
in group ``benchbench.workloads``). It subclasses :class:`Workload`, writes the
model, the optimizer and the FLOP count, and describes itself through the
:func:`workload` decorator::

    from benchbench.core import functions as F, links as L, optimizers
    from benchbench.registry import FlopCount, Workload, workload

    @workload(name="mlp_mnist", description="784-1000-1000-10 ReLU MLP", dataset="mnist",
              batch_size=100, epochs=20, metric="accuracy", higher_is_better=True,
              target=0.98, target_source="Chainer MNIST example", params={"units": 1000})
    class MLP(Workload):
        def build_model(self, params): ...
        def build_optimizer(self, params): return optimizers.Adam()
        def flops_per_sample(self, params): ...

The decorator returns the Workload instance; :func:`discover` collects every
instance a suite file defines.

The parts live in submodules: ``flops`` (FLOP counting), ``description`` (the
Workload class and decorator) and ``discovery`` (finding workloads); this
module re-exports their public names and resolves specs (``resolve``,
``list_rows``).
"""
from __future__ import annotations

import difflib

from benchbench.registry.description import Workload, workload
from benchbench.registry.discovery import (ENTRY_POINT_GROUP, Registry, builtin_suites_dir, default_suites_dir,
                                           discover)
from benchbench.registry.flops import FlopCount, conv_out_size

__all__ = ["ENTRY_POINT_GROUP", "FlopCount", "Registry", "Workload", "builtin_suites_dir", "conv_out_size",
           "default_suites_dir", "discover", "list_rows", "resolve", "workload"]


def resolve(spec, registry):
    """The workload and parameters a spec names.

    Args:
        spec: ``"NAME"``, ``"NAME:VARIANT"``, ``"NAME:key=value,key=value"`` or
            ``"NAME:VARIANT,key=value"`` (the variant first, then overrides).
        registry: a :class:`Registry`.

    Returns:
        ``(Workload, params)``.

    Raises:
        ValueError: an unknown workload, variant or parameter, or a bad value.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"resolve: spec must be a non-empty string like 'NAME' or 'NAME:VARIANT', got {spec!r}")
    name, _, rest = spec.partition(":")
    name = name.strip()
    wl = registry.workloads.get(name)
    if wl is None:
        known = sorted(registry.workloads)
        near = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"resolve: unknown workload {name!r}{hint} Known: {', '.join(known) or 'none'}")
    overrides = {}
    items = [s.strip() for s in rest.split(",")] if rest.strip() else []
    for i, item in enumerate(items):
        if "=" in item:
            key, _, value = item.partition("=")
            key = key.strip()
            if not key:
                raise ValueError(f"resolve: empty parameter name in {spec!r}")
            overrides[key] = value.strip()
        elif i == 0:
            if item not in wl.variants:
                valid = ", ".join(sorted(wl.variants)) or "none"
                raise ValueError(f"resolve: workload {name!r} has no variant {item!r}; variants: {valid}")
            overrides.update({k: v for k, v in wl.variants[item].items()})
        else:
            raise ValueError(f"resolve: {item!r} in {spec!r} is neither the variant (first) nor key=value")
    return wl, wl.resolve_params(overrides)


def list_rows(registry):
    """One row per workload and per variant, for ``benchbench list``.

    Returns:
        A list of dicts: workload, variant ("" for the defaults), spec, params,
        dataset, batch_size, epochs, optimizer, loss, metric, higher_is_better,
        target, target_source, flops_forward, flops_train_step, description, source.
    """
    rows = []
    for name in sorted(registry.workloads):
        wl = registry.workloads[name]
        for variant, overrides in [("", {}), *wl.variants.items()]:
            params = wl.resolve_params(overrides)
            flops = wl.flops_per_sample(params)
            rows.append({
                "workload": name,
                "variant": variant,
                "spec": f"{name}:{variant}" if variant else name,
                "params": params,
                "dataset": wl.dataset,
                "batch_size": wl.batch_size,
                "epochs": wl.epochs,
                "optimizer": wl.optimizer,
                "loss": wl.loss,
                "metric": wl.metric,
                "higher_is_better": wl.higher_is_better,
                "target": wl.target_for(params),
                "target_source": wl.target_source,
                "flops_forward": float(flops["forward"]),
                "flops_train_step": float(flops["train_step"]),
                "description": wl.description,
                "source": wl.source,
            })
    return rows
