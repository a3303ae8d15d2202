"""Robust statistics for timing samples: median, IQR, bootstrap confidence intervals, noise flags.

Timings are skewed (a step is sometimes slow, never faster than the hardware
allows), so every figure is a median with its interquartile range and a
bootstrap percentile confidence interval of the median, not a mean.

Bootstraps are vectorised (the whole resample index matrix drawn at once; for
long series the resample medians' order statistics drawn directly, with the
same distribution) and deterministic: the same samples and ``seed`` give the
same interval.

Noise rule: a summary is flagged ``noisy`` when

* it has fewer than ``MIN_SAMPLES`` (5) samples, or
* its spread is wide: IQR / median > ``NOISY_IQR`` (0.10), or
* its median is uncertain: CI half-width / median > ``NOISY_CI`` (0.05).

This module uses numpy only and imports no other benchbench module.
"""
from __future__ import annotations

import math
import numbers

import numpy

MIN_SAMPLES = 5
NOISY_IQR = 0.10
NOISY_CI = 0.05

# Largest resample index matrix drawn at once (elements); bigger bootstraps sample order statistics.
_INDEX_MATRIX_LIMIT = 1 << 22

SUMMARY_FIELDS = ("n", "median", "q1", "q3", "iqr", "mean", "std", "min", "max", "ci_low", "ci_high", "noisy")


def _as_samples(samples, func: str, name: str = "samples") -> numpy.ndarray:
    """Validate and convert samples to a 1-D float64 array."""
    if isinstance(samples, (str, bytes)) or isinstance(samples, dict):
        raise TypeError(f"{func}: {name} must be a sequence of numbers, got {type(samples).__name__}")
    try:
        x = numpy.asarray(samples, dtype=numpy.float64)
    except (TypeError, ValueError) as e:
        raise TypeError(f"{func}: {name} must be a sequence of numbers ({e})") from None
    if x.ndim == 0:
        x = x.reshape(1)
    if x.ndim != 1:
        raise ValueError(f"{func}: {name} must be one-dimensional, got shape {x.shape}")
    if x.size == 0:
        raise ValueError(f"{func}: {name} is empty; at least one sample is needed")
    if not numpy.all(numpy.isfinite(x)):
        bad = float(x[~numpy.isfinite(x)][0])
        raise ValueError(f"{func}: {name} must be finite, got {bad!r} among {x.size} samples")
    return x


def _check_options(func: str, confidence, n_boot, seed) -> None:
    if isinstance(confidence, bool) or not isinstance(confidence, numbers.Real) or not 0.0 < confidence < 1.0:
        raise ValueError(f"{func}: confidence must be a number in (0, 1), got {confidence!r}")
    if isinstance(n_boot, bool) or not isinstance(n_boot, numbers.Integral) or n_boot < 1:
        raise ValueError(f"{func}: n_boot must be a positive integer, got {n_boot!r}")
    if isinstance(seed, bool) or not isinstance(seed, numbers.Integral) or seed < 0:
        raise ValueError(f"{func}: seed must be a non-negative integer, got {seed!r}")


def _bootstrap_medians(x: numpy.ndarray, n_boot: int, rng: numpy.random.Generator) -> numpy.ndarray:
    """Medians of ``n_boot`` resamples (with replacement) of ``x``.

    Small problems draw the whole resample index matrix at once. Large ones draw the
    resample medians' order statistics directly, with the same distribution: the k-th
    smallest of n uniform indices is ``floor(n * U)`` with ``U ~ Beta(k, n + 1 - k)``, and
    the next one lies ``Beta(1, n - k)`` of the way from it to the end.
    """
    n = x.size
    if n * n_boot <= _INDEX_MATRIX_LIMIT:
        idx = rng.integers(0, n, size=(n_boot, n))
        return numpy.median(x[idx], axis=1, overwrite_input=True)
    xs = numpy.sort(x)
    k = (n + 1) // 2 if n % 2 else n // 2
    u = rng.beta(k, n + 1 - k, size=n_boot)
    lower = xs[numpy.minimum((u * n).astype(numpy.int64), n - 1)]
    if n % 2:
        return lower
    u_next = u + (1.0 - u) * rng.beta(1, n - k, size=n_boot)
    upper = xs[numpy.minimum((u_next * n).astype(numpy.int64), n - 1)]
    return (lower + upper) / 2.0


def _percentile_interval(values: numpy.ndarray, confidence: float) -> tuple[float, float]:
    alpha = (1.0 - confidence) / 2.0
    lo, hi = numpy.quantile(values, [alpha, 1.0 - alpha])
    return float(lo), float(hi)


def _relative(width: float, centre: float) -> float:
    if centre == 0.0:
        return 0.0 if width == 0.0 else math.inf
    return abs(width / centre)


def _summarize_array(x: numpy.ndarray, confidence: float, n_boot: int, seed: int) -> dict:
    n = int(x.size)
    q1, median, q3 = (float(v) for v in numpy.percentile(x, [25.0, 50.0, 75.0]))
    if n >= 2:
        meds = _bootstrap_medians(x, n_boot, numpy.random.default_rng(seed))
        ci_low, ci_high = _percentile_interval(meds, confidence)
        # The percentile interval of a median almost always holds the sample median; make it certain.
        ci_low, ci_high = min(ci_low, median), max(ci_high, median)
        std = float(numpy.std(x, ddof=1))
    else:
        ci_low = ci_high = median
        std = 0.0
    iqr = q3 - q1
    noisy = (
        n < MIN_SAMPLES
        or _relative(iqr, median) > NOISY_IQR
        or _relative((ci_high - ci_low) / 2.0, median) > NOISY_CI
    )
    return {
        "n": n,
        "median": median,
        "q1": q1,
        "q3": q3,
        "iqr": iqr,
        "mean": float(numpy.mean(x)),
        "std": std,
        "min": float(numpy.min(x)),
        "max": float(numpy.max(x)),
        "ci_low": ci_low,
        "ci_high": ci_high,
        "noisy": bool(noisy),
    }


def summarize(samples, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> dict:
    """Median, quartiles, mean, spread and a bootstrap CI of the median of timing samples.

    Args:
        samples: a non-empty 1-D sequence of finite numbers (e.g. per-step seconds).
        confidence: confidence level of the interval, in (0, 1).
        n_boot: number of bootstrap resamples.
        seed: seed of the resampling; the same inputs give the same interval.

    Returns:
        A dict with ``n, median, q1, q3, iqr, mean, std, min, max, ci_low, ci_high, noisy``
        (plain Python numbers). With one sample the interval is the sample itself and
        ``noisy`` is True. ``std`` uses ``ddof=1`` (0.0 for one sample).

    Raises:
        ValueError: empty or non-finite samples, or options out of range.
        TypeError: samples are not numbers.

    Example:
        >>> s = summarize([0.010, 0.011, 0.010, 0.012, 0.010])
        >>> s["median"], s["ci_low"] <= s["median"] <= s["ci_high"]
        (0.01, True)
    """
    _check_options("summarize", confidence, n_boot, seed)
    x = _as_samples(samples, "summarize")
    return _summarize_array(x, float(confidence), int(n_boot), int(seed))


def throughput_summary(step_s, batch_size, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> dict:
    """Summary of samples per second, computed per step as ``batch_size / step time``.

    Args:
        step_s: per-step times in seconds, all positive.
        batch_size: samples processed per step (the global batch for data parallel runs).
        confidence, n_boot, seed: as in :func:`summarize`.

    Returns:
        The :func:`summarize` dict of the per-step throughputs (samples/s).

    Raises:
        ValueError: empty, non-finite or non-positive step times, or a non-positive batch size.
    """
    _check_options("throughput_summary", confidence, n_boot, seed)
    if isinstance(batch_size, bool) or not isinstance(batch_size, numbers.Real) or not batch_size > 0:
        raise ValueError(f"throughput_summary: batch_size must be a positive number, got {batch_size!r}")
    t = _as_samples(step_s, "throughput_summary", "step_s")
    if numpy.any(t <= 0.0):
        raise ValueError(f"throughput_summary: step_s must be positive, got {float(t[t <= 0.0][0])!r}")
    return _summarize_array(float(batch_size) / t, float(confidence), int(n_boot), int(seed))


def ratio_ci(a_samples, b_samples, confidence: float = 0.95, n_boot: int = 2000, seed: int = 0) -> dict:
    """Ratio of medians ``median(a) / median(b)`` with a bootstrap percentile CI.

    ``a`` and ``b`` are resampled independently. For a speed-up of machine B over
    machine A from step times, pass ``a = A's step times, b = B's step times``;
    from throughputs pass them the other way round.

    Args:
        a_samples: non-empty 1-D sequence of finite numbers.
        b_samples: non-empty 1-D sequence of finite numbers with a non-zero median.
        confidence, n_boot, seed: as in :func:`summarize`.

    Returns:
        ``{"ratio", "ci_low", "ci_high", "significant", "n_a", "n_b"}``; ``significant``
        is True when the interval excludes 1.

    Raises:
        ValueError: invalid samples, a zero median of ``b``, or options out of range.
    """
    _check_options("ratio_ci", confidence, n_boot, seed)
    a = _as_samples(a_samples, "ratio_ci", "a_samples")
    b = _as_samples(b_samples, "ratio_ci", "b_samples")
    med_a, med_b = float(numpy.median(a)), float(numpy.median(b))
    if med_b == 0.0:
        raise ValueError("ratio_ci: b_samples has median 0; the ratio is undefined")
    ratio = med_a / med_b
    rng = numpy.random.default_rng(seed)
    boot_a = _bootstrap_medians(a, n_boot, rng) if a.size > 1 else numpy.full(n_boot, med_a)
    boot_b = _bootstrap_medians(b, n_boot, rng) if b.size > 1 else numpy.full(n_boot, med_b)
    with numpy.errstate(divide="ignore", invalid="ignore"):
        ratios = boot_a / boot_b
    ratios = ratios[numpy.isfinite(ratios)]
    if ratios.size == 0:
        ci_low = ci_high = ratio
    else:
        ci_low, ci_high = _percentile_interval(ratios, float(confidence))
        ci_low, ci_high = min(ci_low, ratio), max(ci_high, ratio)
    return {
        "ratio": ratio,
        "ci_low": ci_low,
        "ci_high": ci_high,
        "significant": bool(ci_low > 1.0 or ci_high < 1.0),
        "n_a": int(a.size),
        "n_b": int(b.size),
    }


def speedup_efficiency(base_throughput, scaled_throughput, n_devices: int, confidence: float = 0.95,
                       n_boot: int = 2000, seed: int = 0) -> dict:
    """Speed-up and parallel efficiency of a run on ``n_devices`` against a one-device baseline.

    Both inputs are throughput samples (samples/s, e.g. from :func:`throughput_summary`'s
    inputs ``batch / step_s``), which makes the figure valid for strong and weak scaling alike.

    Args:
        base_throughput: samples/s on one device.
        scaled_throughput: samples/s on ``n_devices`` devices.
        n_devices: number of devices of the scaled run (>= 1).
        confidence, n_boot, seed: as in :func:`summarize`.

    Returns:
        ``{"n_devices", "speedup", "speedup_ci_low", "speedup_ci_high", "efficiency",
        "efficiency_ci_low", "efficiency_ci_high", "significant"}`` where
        ``speedup = median(scaled) / median(base)``, ``efficiency = speedup / n_devices``
        (1.0 is ideal) and ``significant`` says the speed-up interval excludes 1.

    Raises:
        ValueError: invalid samples or ``n_devices``.
    """
    if isinstance(n_devices, bool) or not isinstance(n_devices, numbers.Integral) or n_devices < 1:
        raise ValueError(f"speedup_efficiency: n_devices must be a positive integer, got {n_devices!r}")
    _check_options("speedup_efficiency", confidence, n_boot, seed)
    base = _as_samples(base_throughput, "speedup_efficiency", "base_throughput")
    scaled = _as_samples(scaled_throughput, "speedup_efficiency", "scaled_throughput")
    r = ratio_ci(scaled, base, confidence=confidence, n_boot=n_boot, seed=seed)
    n = int(n_devices)
    return {
        "n_devices": n,
        "speedup": r["ratio"],
        "speedup_ci_low": r["ci_low"],
        "speedup_ci_high": r["ci_high"],
        "efficiency": r["ratio"] / n,
        "efficiency_ci_low": r["ci_low"] / n,
        "efficiency_ci_high": r["ci_high"] / n,
        "significant": r["significant"],
    }


# --------------------------------------------------------------------------- repeats
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
