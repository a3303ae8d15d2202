"""Intervals over repeats: each repeat's median, then a t-interval on the log repeat medians below
``T_INTERVAL_BELOW`` repeats (Welch's across two sides), a hierarchical bootstrap above."""
from __future__ import annotations

import math

import numpy

from benchbench.stats.samples import NOISY_CI, _as_samples, _check_options, _percentile_interval, _relative, _summarize_array, ratio_ci, summarize


RUN_TO_RUN_CV = 0.05  # run-to-run variation assumed where only one repeat was measured
MAX_REPEATS_ADVICE = 50
# Below this many repeats the interval is a t-interval on the log repeat medians (Welch's across two
# sides): a percentile bootstrap of 2-3 repeat medians is about [min, max] of them and covers the true
# median about half the time (tests/test_stats_coverage.py holds the coverage to its nominal level).
T_INTERVAL_BELOW = 10


def _t_cdf(t: float, df: float) -> float:
    """Student's t CDF: with u = sqrt(df) tan(th) the density becomes c cos(th)^(df-1), smooth for df >= 1."""
    th = numpy.linspace(0.0, math.atan(abs(t) / math.sqrt(df)), 401)
    y = numpy.cos(th) ** (df - 1.0)
    c = math.exp(math.lgamma((df + 1.0) / 2.0) - math.lgamma(df / 2.0)) / math.sqrt(math.pi)
    return 0.5 + math.copysign(c * float((y[:-1] + y[1:]).sum()) * (th[1] - th[0]) / 2.0, t)


def t_quantile(p: float, df: float) -> float:
    """The ``p`` quantile of Student's t with ``df`` (>= 1, may be fractional) degrees of freedom.

    Example:
        >>> round(t_quantile(0.975, 1), 3), round(t_quantile(0.975, 4), 3)
        (12.706, 2.776)
    """
    if not 0.0 < p < 1.0 or not df >= 1:
        raise ValueError(f"t_quantile: need 0 < p < 1 and df >= 1, got p={p!r}, df={df!r}")
    if p < 0.5:
        return -t_quantile(1.0 - p, df)
    # Newton from 0: the CDF is concave for t > 0, so the steps approach the root from below.
    c = math.exp(math.lgamma((df + 1.0) / 2.0) - math.lgamma(df / 2.0)) / math.sqrt(math.pi * df)
    t = 0.0
    for _ in range(200):
        step = (p - _t_cdf(t, df)) / (c * (1.0 + t * t / df) ** (-(df + 1.0) / 2.0))
        t += step
        if step < 1e-10 * max(1.0, t):
            break
    return t


def welch_log_ratio(a_medians, b_medians, confidence: float = 0.95) -> tuple[float, float]:
    """Welch's t-interval of ``geomean(a) / geomean(b)`` from repeat medians (>= 2 per side): log medians
    taken as normal, each side with its own variance (Welch-Satterthwaite degrees of freedom)."""
    la, lb = numpy.log(numpy.asarray(a_medians, float)), numpy.log(numpy.asarray(b_medians, float))
    if la.size < 2 or lb.size < 2:
        raise ValueError("welch_log_ratio: at least two repeat medians per side are needed")
    va, vb = float(numpy.var(la, ddof=1)) / la.size, float(numpy.var(lb, ddof=1)) / lb.size
    diff = float(la.mean() - lb.mean())
    se = math.sqrt(va + vb)
    if se == 0.0:
        return math.exp(diff), math.exp(diff)
    df = (va + vb) ** 2 / (va ** 2 / (la.size - 1) + vb ** 2 / (lb.size - 1))
    half = t_quantile(0.5 + confidence / 2.0, max(df, 1.0)) * se
    return math.exp(diff - half), math.exp(diff + half)


def _as_groups(groups, func: str) -> list[numpy.ndarray]:
    if isinstance(groups, (str, bytes, dict)) or not hasattr(groups, "__len__") or len(groups) == 0:
        raise ValueError(f"{func}: groups must be a non-empty list of sample sequences (one per repeat)")
    return [_as_samples(g, func, f"groups[{i}]") for i, g in enumerate(groups)]


def _hierarchical_medians(groups: list[numpy.ndarray], n_boot: int, rng) -> numpy.ndarray:
    """Medians of ``n_boot`` two-level resamples: repeats with replacement, then steps within each."""
    r = len(groups)
    out = numpy.empty(n_boot)
    for b in range(n_boot):
        picked = rng.integers(0, r, size=r)
        parts = [groups[k][rng.integers(0, groups[k].size, size=groups[k].size)] for k in picked]
        out[b] = numpy.median(numpy.concatenate(parts))
    return out


def repeats_summary(groups, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> dict:
    """:func:`summarize` of samples from one or more repeats, with the interval the repeats allow.

    With two to nine repeats the interval is a t-interval on the log repeat medians (``t-log-medians``);
    with ten or more it comes from a hierarchical bootstrap (resample the repeats, then the steps
    within each); both carry the run-to-run variation. With one repeat it is the
    ordinary bootstrap of that run's steps, labelled ``within-run``: steps of one process are
    autocorrelated and share its conditions, so that interval says nothing about another run.

    Args:
        groups: one sequence of samples per repeat (each non-empty, finite).
        confidence, n_boot, seed: as in :func:`summarize`.

    Returns:
        The :func:`summarize` dict of all samples pooled, its ``ci_low``/``ci_high`` replaced as
        described, plus ``interval`` (``"t-log-medians"``, ``"hierarchical"`` or ``"within-run"``), ``repeats`` and
        ``repeat_medians``.

    Example:
        >>> s = repeats_summary([[1.0, 1.1, 0.9], [1.2, 1.3, 1.1]])
        >>> s["interval"], s["repeats"]
        ('t-log-medians', 2)
    """
    _check_options("repeats_summary", confidence, n_boot, seed)
    parts = _as_groups(groups, "repeats_summary")
    out = _summarize_array(numpy.concatenate(parts), float(confidence), int(n_boot), int(seed))
    out["repeats"] = len(parts)
    out["repeat_medians"] = [float(numpy.median(p)) for p in parts]
    if len(parts) < 2:
        out["interval"] = "within-run"
        return out
    if len(parts) < T_INTERVAL_BELOW:
        logs = numpy.log(numpy.maximum(out["repeat_medians"], 1e-300))
        half = t_quantile(0.5 + confidence / 2.0, len(logs) - 1) * float(numpy.std(logs, ddof=1)) / math.sqrt(len(logs))
        lo, hi = math.exp(float(numpy.mean(logs)) - half), math.exp(float(numpy.mean(logs)) + half)
        out["interval"] = "t-log-medians"
    else:
        meds = _hierarchical_medians(parts, int(n_boot), numpy.random.default_rng(seed))
        lo, hi = _percentile_interval(meds, float(confidence))
        out["interval"] = "hierarchical"
    out["ci_low"], out["ci_high"] = min(lo, out["median"]), max(hi, out["median"])
    out["noisy"] = bool(out["noisy"] or _relative((out["ci_high"] - out["ci_low"]) / 2.0, out["median"]) > NOISY_CI)
    return out


def repeats_ratio(a_groups, b_groups, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> dict:
    """Ratio of medians ``median(a) / median(b)`` of two repeated measurements, and whether it is settled.

    With at least two repeats on both sides the interval is Welch's t-interval on the log repeat
    medians (``welch-log-medians``; a hierarchical bootstrap from ten repeats a side, see
    :func:`repeats_summary`) and ``significant`` says whether it excludes 1. With one repeat on
    either side the interval is within-run only and ``significant`` is False: a second run need not
    reproduce a difference that steps of one run call significant. ``repeats_needed`` then says how
    many repeats per side would decide a difference of this size, from the measured run-to-run
    variation of the repeat medians (or ``RUN_TO_RUN_CV`` where it was not measured).

    Args:
        a_groups, b_groups: one sequence of samples per repeat on each side.
        confidence, n_boot, seed: as in :func:`summarize`.

    Returns:
        ``{ratio, ci_low, ci_high, significant, interval, repeats_a, repeats_b, repeats_needed,
        run_to_run_cv, cv_source}``; ``repeats_needed`` is None when the interval is hierarchical
        and significant, and ``MAX_REPEATS_ADVICE + 1`` stands for "more than that".
    """
    _check_options("repeats_ratio", confidence, n_boot, seed)
    a = _as_groups(a_groups, "repeats_ratio")
    b = _as_groups(b_groups, "repeats_ratio")
    pa, pb = numpy.concatenate(a), numpy.concatenate(b)
    med_b = float(numpy.median(pb))
    if med_b == 0.0:
        raise ValueError("repeats_ratio: b_groups has median 0; the ratio is undefined")
    ratio = float(numpy.median(pa)) / med_b
    hierarchical = len(a) >= 2 and len(b) >= 2
    kind = "within-run"
    if hierarchical and min(len(a), len(b)) < T_INTERVAL_BELOW:
        lo, hi = welch_log_ratio([numpy.median(g) for g in a], [numpy.median(g) for g in b], confidence)
        significant = bool(lo > 1.0 or hi < 1.0)
        lo, hi = min(lo, ratio), max(hi, ratio)
        kind = "welch-log-medians"
    elif hierarchical:
        kind = "hierarchical"
        rng = numpy.random.default_rng(seed)
        boots = _hierarchical_medians(a, int(n_boot), rng) / _hierarchical_medians(b, int(n_boot), rng)
        lo, hi = _percentile_interval(boots[numpy.isfinite(boots)], float(confidence))
        lo, hi = min(lo, ratio), max(hi, ratio)
        significant = bool(lo > 1.0 or hi < 1.0)
    else:
        r = ratio_ci(pa, pb, confidence=confidence, n_boot=n_boot, seed=seed)
        lo, hi, significant = r["ci_low"], r["ci_high"], False
    meds = [[float(numpy.median(g)) for g in side] for side in (a, b)]
    logs = [math.log(m) for side in meds for m in side if m > 0]
    dof = sum(len(side) - 1 for side in (a, b))
    if dof >= 1:
        centred = [numpy.log(side) - numpy.mean(numpy.log(side)) for side in meds]
        cv, source = float(numpy.sqrt(sum(float(numpy.sum(numpy.square(c))) for c in centred) / dof)), "measured"
    else:
        cv, source = RUN_TO_RUN_CV, "assumed"
    needed = None
    if not significant:
        effect = abs(numpy.log(ratio)) if ratio > 0 else 0.0
        z = 1.96
        if effect == 0.0 or not logs:
            needed = MAX_REPEATS_ADVICE + 1
        else:
            n = math.ceil(2.0 * (z * max(cv, 1e-9) / effect) ** 2)
            needed = min(max(n, 2), MAX_REPEATS_ADVICE + 1)
    return {"ratio": ratio, "ci_low": float(lo), "ci_high": float(hi), "significant": significant,
            "interval": kind, "repeats_a": len(a), "repeats_b": len(b),
            "repeats_needed": needed, "run_to_run_cv": cv, "cv_source": source}
