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

This module uses numpy only; the repeats' intervals are in ``repeats``.
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
