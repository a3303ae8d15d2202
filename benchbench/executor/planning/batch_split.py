"""Which data-parallel cells can run: under strong scaling the global batch must split evenly.

Strong scaling gives each of N ranks ``batch / N`` samples, so a workload with batch 100 cannot
run on 3, 6 or 8 ranks. ``--device all`` expands to what runs (such cells are left out, with a
notice saying which and why); a device spec the user named that cannot run is a usage error,
raised before anything starts.
"""
from __future__ import annotations

from benchbench.executor.planning.batch import split_problem
from benchbench.executor.planning.devices import DeviceSpecError, parse_specs  # noqa: F401 (the example)


def named_specs(specs) -> set[str]:
    """The canonical specs of ``specs`` (parsed ``DeviceSpec``) that the user named, i.e. not only through ``all``.

    Example:
        >>> sorted(named_specs(parse_specs("all gpu:0,1", 4)[0]))
        ['gpu:0,1']
    """
    return {s.spec for s in specs if s.named}


def unsplittable(desc: dict) -> bool:
    """True when a cell description's global batch does not split over its ranks (strong scaling)."""
    batch = desc.get("batch_size")
    return batch is not None and split_problem(batch, int(desc.get("n_ranks", 1)), desc.get("scaling")) is not None


def keep_splittable(descs: list[dict], named: set[str]) -> tuple[list[dict], list[str]]:
    """The cells that can run, and one notice per device spec of ``all`` left out.

    Args:
        descs: cell descriptions (``executor.run.describe_cell``).
        named: specs the user named explicitly (:func:`named_specs`); a cell of one of these
            that cannot run is an error, a cell that only ``all`` brought in is left out.

    Returns:
        ``(kept, notices)``.

    Raises:
        DeviceSpecError: a named spec whose ranks do not divide a workload's batch.
    """
    kept, dropped = [], {}
    for d in descs:
        if not unsplittable(d):
            kept.append(d)
            continue
        n, batch, label = int(d["n_ranks"]), int(d["batch_size"]), d.get("workload", "?")
        if d["device"] in named:
            raise DeviceSpecError(f"{d['device']}: {label}: {split_problem(batch, n, d.get('scaling'))}")
        dropped.setdefault((d["device"], n), {})[label] = batch
    notices = [
        f"--device all: {spec} left out for {', '.join(f'{w} (batch {b})' for w, b in sorted(why.items()))}: "
        f"the batch does not split over {n} ranks under strong scaling (--scaling weak runs it)"
        for (spec, n), why in dropped.items()
    ]
    return kept, notices
