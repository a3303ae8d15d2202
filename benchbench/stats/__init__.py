"""Robust statistics for timing samples (``samples``: median, IQR, bootstrap intervals, noise flags)
and for repeats of a measurement (``repeats``: t-intervals on log repeat medians, Welch across two
sides). numpy only; the package imports no other benchbench module."""
from benchbench.stats.repeats import (MAX_REPEATS_ADVICE, RUN_TO_RUN_CV, T_INTERVAL_BELOW, repeats_ratio, repeats_summary, t_quantile, welch_log_ratio)  # noqa: F401
from benchbench.stats.samples import (MIN_SAMPLES, NOISY_CI, NOISY_IQR, SUMMARY_FIELDS, ratio_ci, speedup_efficiency, summarize, throughput_summary, _bootstrap_medians)  # noqa: F401
