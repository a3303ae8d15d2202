"""The ring all-reduce model of a link, fitted to measured all-reduce times, and refused when it does not fit.

One all-reduce of ``S`` bytes over ``n`` ranks in a ring takes ``t = 2(n-1) x latency + 2(n-1)/n x S /
bandwidth``. At one rank count a sweep over sizes gives a straight line ``t = a + b S``: the bandwidth
(from ``b``) and the fixed cost ``a`` of that rank count; ``a`` splits into a per-hop latency only
with sweeps at two or more rank counts (:func:`fit_link_counts`), otherwise "per hop" would be a
relabelling of one number.

Small messages often follow another protocol (latency-bound, in cache), so the line is fitted above
the knee: the smallest sizes are dropped until the line fits (at least three points kept). A fit whose
largest relative residual exceeds ``MAX_RESIDUAL`` is refused (``accepted`` False, with the reason):
figures and the scaling model take no latency or bandwidth from it.

Used by ``executor.bandwidth`` (the sweeps) and ``reporting.scaling_report`` (the scaling model).
numpy only.
"""
from __future__ import annotations

import numpy

MAX_RESIDUAL = 0.20  # largest relative residual of an accepted fit
MIN_POINTS = 3  # a line through two points always fits: it says nothing about the model
KNEE_RESIDUAL = 0.05  # the line holds "closely" from the knee up


def _weighted_lstsq(columns: numpy.ndarray, t: numpy.ndarray) -> numpy.ndarray:
    w = 1.0 / t  # relative errors matter across sizes that span decades
    coef, *_ = numpy.linalg.lstsq(columns * w[:, None], t * w, rcond=None)
    return coef


def fit_link(points: list[dict], ranks: int, max_residual: float = MAX_RESIDUAL) -> dict:
    """The line ``t = a + b S`` through one rank count's sweep, above its knee, judged.

    Args:
        points: ``{bytes, time_s}`` for two or more distinct sizes.
        ranks: ranks of the all-reduce (>= 2).
        max_residual: the largest relative residual an accepted fit may have.

    Returns:
        ``{accepted, reason, from_bytes, points_fitted, intercept_s, slope_s_per_byte,
        bandwidth_bytes_per_s, fixed_s, latency_s, residuals, max_abs_residual}``: ``residuals``
        (``fit / measured - 1``, every point in the order given; below the knee they show how far
        the small sizes are off the line) and ``max_abs_residual`` (over the fitted points).
        ``latency_s`` (per hop) is always None here (one rank count); ``fixed_s`` is ``a``.
        ``bandwidth_bytes_per_s`` and ``fixed_s`` are None unless accepted.

    Raises:
        ValueError: fewer than two ranks, non-positive times, fewer than two distinct sizes.
    """
    if isinstance(ranks, bool) or not isinstance(ranks, int) or ranks < 2:
        raise ValueError(f"fit_link: ranks must be an integer >= 2, got {ranks!r}")
    s = numpy.array([p["bytes"] for p in points], dtype=numpy.float64)
    t = numpy.array([p["time_s"] for p in points], dtype=numpy.float64)
    if len(set(s.tolist())) < 2 or not numpy.all(t > 0):
        raise ValueError("fit_link: need positive times at two or more distinct sizes")
    order = numpy.argsort(s, kind="stable")
    fits = []
    for k in range(max(1, len(s) - MIN_POINTS + 1)):
        idx = order[k:]
        a, b = _weighted_lstsq(numpy.stack([numpy.ones(idx.size), s[idx]], axis=1), t[idx])
        fits.append((k, a, b, float(numpy.max(numpy.abs((a + b * s[idx]) / t[idx] - 1.0)))))
    # The knee: the smallest size from which one line holds closely (KNEE_RESIDUAL); failing that, the
    # closest line; either is then judged against max_residual.
    sound = [f for f in fits if f[3] <= KNEE_RESIDUAL and f[1] >= 0 and f[2] > 0]
    k, a, b, worst = sound[0] if sound else min(fits, key=lambda f: f[3])
    fitted = order[k:]
    hops = 2 * (ranks - 1)
    reason = None
    if fitted.size < MIN_POINTS:
        reason = f"{fitted.size} message sizes: a line needs {MIN_POINTS} or more to be judged"
    elif worst > max_residual:
        reason = (f"largest residual {worst:.0%} > {max_residual:.0%} even from {int(s[fitted[0]]):,} bytes up: "
                  "the times do not follow one line t = a + S/B (another protocol, or noise)")
    elif b <= 0:
        reason = "the time does not grow with the message size"
    elif a < 0:
        reason = "negative fixed cost: the line does not describe the small messages"
    ok = reason is None
    return {"accepted": ok, "reason": reason, "from_bytes": int(s[fitted[0]]), "points_fitted": int(fitted.size),
            "intercept_s": float(a), "slope_s_per_byte": float(b),
            "bandwidth_bytes_per_s": float(hops / ranks / b) if ok else None,
            "fixed_s": float(a) if ok else None,
            "latency_s": None,
            "latency_note": "per-hop latency needs sweeps at two or more rank counts",
            "residuals": ((a + b * s) / t - 1.0).tolist(), "max_abs_residual": worst}


def fit_link_counts(sweeps: list[dict], max_residual: float = MAX_RESIDUAL) -> dict:
    """Per-hop latency and bandwidth from sweeps at two or more rank counts (each above its knee).

    Args:
        sweeps: ``{ranks, points}`` records (``executor.bandwidth.sweep`` results).

    Returns:
        ``{accepted, reason, rank_counts, latency_s, bandwidth_bytes_per_s, max_abs_residual}``.
    """
    rows = []
    for sw in sweeps:
        n = sw.get("ranks")
        if isinstance(n, bool) or not isinstance(n, int) or n < 2:
            continue
        try:
            one = fit_link(sw["points"], n, max_residual)
        except (ValueError, KeyError, TypeError):
            continue  # a malformed record is no measurement
        if not one["accepted"]:
            continue
        rows += [(n, p["bytes"], p["time_s"]) for p in sw["points"] if p["bytes"] >= one["from_bytes"]]
    counts = sorted({r[0] for r in rows})
    if len(counts) < 2:
        return {"accepted": False, "reason": f"accepted sweeps at rank counts {counts}: two or more are needed to "
                                             "split the fixed cost into per-hop latency",
                "rank_counts": counts, "latency_s": None, "bandwidth_bytes_per_s": None, "max_abs_residual": None}
    n, s, t = (numpy.array(c, dtype=numpy.float64) for c in zip(*rows))
    hops = 2.0 * (n - 1.0)
    alpha, beta = _weighted_lstsq(numpy.stack([hops, hops / n * s], axis=1), t)
    worst = float(numpy.max(numpy.abs((alpha * hops + beta * hops / n * s) / t - 1.0)))
    reason = None
    if worst > max_residual:
        reason = f"largest residual {worst:.0%} > {max_residual:.0%} across rank counts {counts}"
    elif alpha < 0 or beta <= 0:
        reason = "the ring model does not describe these sweeps (negative latency or bandwidth)"
    ok = reason is None
    return {"accepted": ok, "reason": reason, "rank_counts": counts, "latency_s": float(alpha) if ok else None,
            "bandwidth_bytes_per_s": float(1.0 / beta) if ok else None, "max_abs_residual": worst}
