"""The seeds of a plan: a run has one cell per workload × device spec × seed × repeat (``run.plan_cells``).

Seeds and repeats are different axes. A *repeat* runs the same computation again (same seed):
on the CPU it must give the same weights, and its step times measure run-to-run variation. A
*seed* starts from another initialisation and data order: it trains to the target in its own
number of epochs, as MLPerf's runs do, and its cells are never called repeats of another seed's.

Example:
    >>> from benchbench.executor.planning.plan import load_plan
    >>> plan = load_plan(None, {"profile": "full", "seeds": 3, "devices": ["cpu"]})
    >>> plan.seeds
    [0, 1, 2]
"""
from __future__ import annotations

MAX_SEEDS = 1000


def resolve_seeds(seed: int, seeds) -> list[int]:
    """The seeds of a plan: one cell per seed (and per repeat) of every workload × device.

    Args:
        seed: the plan's ``seed`` (the first seed when ``seeds`` is a count).
        seeds: None (just ``seed``), a count N (``seed`` … ``seed + N - 1``), a list of distinct
            seeds, or the command line's text: ``"3"`` is a count, ``"1,2,3"`` (or ``"7,"``) a list.

    Returns:
        The seeds in order, at least one.

    Raises:
        ValueError: a count below 1 or above ``MAX_SEEDS``, a negative, repeated or non-integer seed.

    Example:
        >>> resolve_seeds(0, 3), resolve_seeds(0, "4,2"), resolve_seeds(5, None)
        ([0, 1, 2], [4, 2], [5])
    """
    if seeds is None:
        return [seed]
    if isinstance(seeds, str):
        items = [t.strip() for t in seeds.split(",")]
        if len(items) > 1 and not items[-1]:
            items.pop()  # "7," is the list [7]
        if not all(t.isdigit() for t in items):
            raise ValueError(f"must be a count N or a comma-separated list of seeds >= 0, got {seeds!r}")
        seeds = [int(t) for t in items] if "," in seeds else int(items[0])
    if isinstance(seeds, bool) or not isinstance(seeds, (int, list)):
        raise ValueError(f"must be a count N or a list of seeds, got {('nothing' if seeds is None else repr(seeds))}")
    if isinstance(seeds, int):
        if not 1 <= seeds <= MAX_SEEDS:
            raise ValueError(f"must be a count from 1 to {MAX_SEEDS}, got {seeds}")
        return [seed + i for i in range(seeds)]
    if not seeds or len(seeds) > MAX_SEEDS:
        raise ValueError(f"must list from 1 to {MAX_SEEDS} seeds, got {len(seeds)}")
    for s in seeds:
        if isinstance(s, bool) or not isinstance(s, int) or not 0 <= s <= 2 ** 32 - 1:
            raise ValueError(f"must list integers from 0 to {2 ** 32 - 1}, got {repr(s)}")
    if len(set(seeds)) != len(seeds):
        raise ValueError(f"lists a seed twice: {seeds}; a seed run again is a repeat (--repeat)")
    return list(seeds)
