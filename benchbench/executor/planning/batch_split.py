"""Which data-parallel cells can run: under strong scaling the global batch must split evenly.

Strong scaling gives each of N ranks ``batch / N`` samples, so a workload with batch 100 cannot
run on 3, 6 or 8 ranks. ``--device all`` expands to what runs (such cells are left out, with a
notice saying which and why); a device spec the user named that cannot run is a usage error,
raised before anything starts.
"""
from __future__ import annotations

from benchbench.executor.planning.devices import DeviceSpecError, _tokens, parse_specs


def named_specs(text_or_list, n_gpus: int) -> set[str]:
    """The canonical specs named explicitly, i.e. not through ``all``.

    Args:
        text_or_list: the device specs as given (string or list of strings).
        n_gpus: the number of GPUs (as for :func:`devices.parse_specs`).

    Example:
        >>> sorted(named_specs("all gpu:0,1", 4))
        ['gpu:0,1']
    """
    items = [text_or_list] if isinstance(text_or_list, str) else list(text_or_list)
    named = []
    for item in items:
        if not isinstance(item, str):
            raise TypeError(f"named_specs: device specs must be strings, got {item!r}")
        named += [t for t in _tokens(item) if t != "all"]
    if not named:
        return set()
    return {s.spec for s in parse_specs(named, n_gpus)[0]}


def unsplittable(desc: dict) -> bool:
    """True when a cell description's global batch does not split over its ranks (strong scaling)."""
    n = int(desc.get("n_ranks", 1))
    batch = desc.get("batch_size")
    if n <= 1 or batch is None or (desc.get("scaling") or "strong") != "strong":
        return False
    return int(batch) % n != 0


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
            divisors = [k for k in range(2, n + 1) if batch % k == 0]
            raise DeviceSpecError(
                f"{d['device']}: strong scaling splits the global batch over {n} ranks, and {label}'s batch of "
                f"{batch} does not divide by {n}; use --scaling weak, or {_counts(divisors)}"
            )
        dropped.setdefault((d["device"], n), {})[label] = batch
    notices = [
        f"--device all: {spec} left out for {', '.join(f'{w} (batch {b})' for w, b in sorted(why.items()))}: "
        f"the batch does not split over {n} ranks under strong scaling (--scaling weak runs it)"
        for (spec, n), why in dropped.items()
    ]
    return kept, notices


def _counts(divisors: list[int]) -> str:
    if not divisors:
        return "one device"
    return "a device count that divides it (" + ", ".join(map(str, divisors)) + ")"
