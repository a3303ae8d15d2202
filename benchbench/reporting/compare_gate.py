"""What ``compare`` decides beyond the ratios: how the machines and runs differ, which pairings
warn, and the regression gate of ``--fail-if-slower PCT``.

The gate fails (exit status 1, see ``cli``) when a run is slower than the baseline by more than PCT
percent on some workload × device both ran: where the ratio has a 95% CI, when even its upper
end is below ``1 - PCT/100`` (the slowdown is beyond PCT with confidence); where it has none,
when the ratio of medians itself is.
"""
from __future__ import annotations

import math

import numpy as np
import pandas as pd

from benchbench.reporting.runs import Run, runs_label


def _gpus(run: Run) -> str:
    names = [str(g.get("name", "?")) for g in run.machine.get("gpus") or []]
    return ", ".join(f"{names.count(n)}× {n}" for n in dict.fromkeys(names)) or "none"


def _facts(run: Run) -> dict[str, str]:
    m, plan = run.machine, run.data.get("plan") or {}
    cpu, blas = m.get("cpu") or {}, m.get("blas") or {}
    sources = sorted({str((c.get("data") or {}).get("source")) for c in run.cells if c.get("data")})
    facts = {
        "label": str(m.get("label") or "—"),
        "CPU": f"{cpu.get('model', '?')} ({cpu.get('cores_physical', '?')} cores)",
        "GPUs": _gpus(run) + (" (SIMULATED)" if m.get("simulated_gpus") else ""),
        "BLAS": f"{blas.get('library') or '?'} {blas.get('version') or ''} {blas.get('kernel') or ''}, "
                f"{blas.get('threads', '?')} threads".replace("  ", " "),
        "profile": str(plan.get("profile", "?")),
        "repeat": str(plan.get("repeat", "?")),
        "data": ", ".join(sources) or "?",
        "dtype": str(plan.get("dtype", "?")),
        "python": str(m.get("python", "?")),
    }
    freq = m.get("cpu_frequency") or {}
    for key, name in (("governor", "CPU governor"), ("turbo", "CPU turbo"), ("smt", "SMT"), ("max_mhz", "CPU max MHz")):
        if freq.get(key) is not None:
            facts[name] = str(freq[key])
    gpus = m.get("gpus") or []
    if gpus:
        facts["GPU persistence"] = ", ".join(sorted({str(g.get("persistence_mode")) for g in gpus}))
        facts["GPU SM clock max"] = ", ".join(sorted({str((g.get("clocks_mhz") or {}).get("sm_max")) for g in gpus}))
    links = sorted({str(p.get("link")) for p in m.get("gpu_topology") or []})
    if links:
        facts["GPU links"] = ", ".join(links)
    for key, value in (m.get("versions") or {}).items():
        facts[key] = str(value) if value else "none"
    return facts


def metadata_diff(runs: list[Run]) -> pd.DataFrame:
    """The facts that differ between the runs' machines and plans: one row per fact, a column per run."""
    labels = runs_label(runs)
    facts = [_facts(r) for r in runs]
    keys = list(dict.fromkeys(k for f in facts for k in f))
    rows = []
    for key in keys:
        values = [f.get(key, "—") for f in facts]
        if len(set(values)) > 1:
            rows.append({"differs": key, **{labels[i]: v for i, v in enumerate(values)}})
    return pd.DataFrame(rows, columns=["differs"] + list(labels.values()))


def pairing_warnings(runs: list[Run]) -> list[str]:
    """Warnings for pairings whose ratios measure more than the hardware: quick vs full, real vs synthetic data."""
    labels = runs_label(runs)
    out = []
    profiles = {labels[i]: (r.data.get("plan") or {}).get("profile") for i, r in enumerate(runs)}
    if len(set(profiles.values())) > 1:
        out.append("warning: the runs used different profiles (" + ", ".join(f"{k} {v}" for k, v in profiles.items())
                   + "); quick throughput over a few steps and full training are not the same measurement")
    sources = {}
    for i, r in enumerate(runs):
        for c in r.cells:
            src = (c.get("data") or {}).get("source")
            if src:
                sources.setdefault(str(c.get("workload")), {}).setdefault(labels[i], set()).add(src)
    mixed = [w for w, by in sources.items()
             if any("real" in s for s in by.values()) and any("synthetic" in s for s in by.values())]
    if mixed:
        out.append(f"warning: real data meets synthetic data on {', '.join(mixed)}; throughput compares, "
                   "quality and time to target do not")
    sim = [labels[i] for i, r in enumerate(runs) if r.machine.get("simulated_gpus")]
    if sim:
        out.append(f"SIMULATED GPUs on {', '.join(sim)}: their GPU figures are no GPU's; the comparison checks the code, "
                   "not the hardware")
    return out


def parse_percent(text: str) -> float:
    """``"5"`` or ``"5%"`` as 5.0; raises ValueError for anything else or a value outside (0, 100)."""
    value = float(str(text).strip().removesuffix("%"))
    if not math.isfinite(value) or not 0 < value < 100:
        raise ValueError(f"expected a percentage in (0, 100), got {text!r}")
    return value


def slower_than(frame: pd.DataFrame, pct: float) -> list[str]:
    """The workload × device pairs where a run is slower than the baseline by more than ``pct`` percent.

    Args:
        frame: ``compare_frame()``.
        pct: the tolerated slowdown in percent.

    Returns:
        One line per regression, saying the ratio and its CI; empty when there is none.
    """
    limit = 1 - pct / 100
    out = []
    for r in frame.itertuples():
        if not np.isfinite(r.ratio):
            continue
        upper = r.ratio_ci_high if np.isfinite(r.ratio_ci_high) else r.ratio
        if upper < limit:
            ci = f" [95% CI {r.ratio_ci_low:.3g}, {r.ratio_ci_high:.3g}]" if np.isfinite(r.ratio_ci_high) else ""
            out.append(f"{r.workload} on {r.device}: {r.machine} runs at {r.ratio:.3g}× the baseline{ci}, "
                       f"slower by more than {pct:g}%")
    return out
