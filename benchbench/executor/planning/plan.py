"""The run plan: ``bench.yaml`` loaded, validated (with line numbers) and merged with the command line.

Example:
    >>> plan = load_plan(None, {"devices": ["cpu"], "profile": "quick"})
    >>> plan.devices, plan.profile
    (['cpu'], 'quick')
"""
from __future__ import annotations

import copy
import dataclasses
import difflib
import os

import yaml

from benchbench.errors import PlanError, UserError
from benchbench.executor.planning import batch, graph_modes
from benchbench.executor.planning.seeds import MAX_SEEDS, resolve_seeds  # noqa: F401  (part of the plan's interface)



_STEP_KEYS = {"warmup_steps", "steps", "val_batches", "epochs", "timeout_s", "min_time_s"}
_PROFILE_KEYS = _STEP_KEYS | {"workloads"}
_TOP_KEYS = {
    "workloads", "devices", "profile", "profiles", "repeat", "seed", "seeds", "data", "data_dir",
    "timeout_s", "output", "scaling", "dtype", "deterministic", "hostfile", "until", "batch_size", "memory_limit",
    "gpu_graphs",
}
PROFILES = ("quick", "full")
DATA_SOURCES = ("auto", "real", "synthetic")
SCALINGS = ("strong", "weak")
UNTILS = ("target", "epochs")  # full profile: stop at the quality target, or train every epoch
DTYPES = ("float32", "float16", "bfloat16")

# The plan used when no bench.yaml is found; the shipped bench.yaml says the same (a test checks it).
DEFAULTS = {
    "workloads": ["mlp_mnist", "cnn_mnist", "lenet5_cifar10", "lstm_sine", "resnet_cifar10:depth=18"],
    "devices": "all",
    "profile": "quick",
    "repeat": 1,
    "seed": 0,
    "seeds": None,           # null: one seed (``seed``); N: seeds seed … seed+N-1; a list: exactly those
    "data": "auto",
    "data_dir": None,
    "timeout_s": 1800,
    "output": "results",
    "scaling": "strong",
    "dtype": "float32",
    "deterministic": False,
    "hostfile": None,
    "until": "target",
    "batch_size": None,      # null: each workload's own batch; a list of sizes and/or "max" (executor/batch.py)
    "memory_limit": None,    # null: the CPU budget of a "max" search is a fraction of the available memory
    "gpu_graphs": "auto",    # CUDA graphs on GPU cells: auto (where shapes are fixed), on, off, or a list (executor/planning/graph_modes.py)
    "profiles": {
        "quick": {
            "warmup_steps": 2, "steps": 20, "val_batches": 2, "timeout_s": 600, "min_time_s": 2.0,
            "workloads": {
                "lstm_sine": {"steps": 30, "val_batches": 5},
                "cnn_mnist": {"warmup_steps": 3, "steps": 8, "val_batches": 1},
                "resnet_cifar10": {"warmup_steps": 3, "steps": 5, "val_batches": 1},
            },
        },
        "full": {"warmup_steps": 5, "epochs": None, "val_batches": None},
    },
}


@dataclasses.dataclass
class Plan:
    """A validated plan. ``config`` is the bench.yaml content used (defaults filled in)."""

    config_file: str | None
    config: dict
    workloads: list
    devices: list
    profile: str
    repeat: int
    seed: int
    data: str
    data_dir: str | None
    timeout_s: float
    output: str
    scaling: str
    dtype: str
    deterministic: bool
    hostfile: str | None
    batch_size: list | None = None
    memory_limit: int | None = None
    gpu_graphs: list = dataclasses.field(default_factory=lambda: ["auto"])
    timeout_given: bool = False
    until: str = "target"
    seeds: list = dataclasses.field(default_factory=lambda: [0])
    lines: dict = dataclasses.field(default_factory=dict, repr=False)

    def settings(self, workload_name: str) -> dict:
        """The profile settings for one workload (profile defaults, then its own overrides).

        Returns:
            dict with ``warmup_steps``, ``steps``, ``val_batches``, ``epochs``, ``timeout_s``
            (None where not set).
        """
        prof = self.config["profiles"].get(self.profile, {})
        out = {k: None for k in sorted(_STEP_KEYS)}
        out["timeout_s"] = self.timeout_s
        out.update({k: v for k, v in prof.items() if k != "workloads"})
        out.update((prof.get("workloads") or {}).get(workload_name) or {})
        if self.timeout_given or out["timeout_s"] is None:  # --timeout beats the plan file
            out["timeout_s"] = self.timeout_s
        if self.profile == "full":
            out["until"] = self.until
        return out

    def as_dict(self) -> dict:
        """The resolved plan as the results file records it."""
        d = {f.name: getattr(self, f.name) for f in dataclasses.fields(self) if f.name != "lines"}
        d["config"] = copy.deepcopy(self.config)
        return d

    def where(self, *path) -> str:
        """``file:line: `` for a key path of the config file, or an empty prefix."""
        if self.config_file and path in self.lines:
            return f"{self.config_file}:{self.lines[path]}: "
        return ""


def _line_map(node, path=(), out=None) -> dict:
    """Key path (tuple) -> 1-based line, from a composed yaml node tree."""
    if out is None:
        out = {}
    if isinstance(node, yaml.MappingNode):
        for k, v in node.value:
            key = k.value if isinstance(k, yaml.ScalarNode) else None
            out[path + (key,)] = k.start_mark.line + 1
            _line_map(v, path + (key,), out)
    elif isinstance(node, yaml.SequenceNode):
        for i, v in enumerate(node.value):
            out[path + (i,)] = v.start_mark.line + 1
            _line_map(v, path + (i,), out)
    return out


MAX_REPEAT = 1000  # repeats of every cell: more is a typo, refused before cells are listed
MAX_SECONDS = 7 * 24 * 3600.0


class _Checker:
    def __init__(self, fname, lines):
        self.fname, self.lines = fname, lines

    def fail(self, path, msg):
        where = ""
        if self.fname is not None:
            line = self.lines.get(tuple(path))
            where = f"{self.fname}:{line}: " if line else f"{self.fname}: "
        raise PlanError(where + msg)

    def keys(self, mapping, allowed, path):
        if not isinstance(mapping, dict):
            self.fail(path, f"'{_dotted(path) or 'the file'}' must be a mapping, got {_show(mapping)}")
        for key in mapping:
            if key not in allowed:
                near = difflib.get_close_matches(str(key), sorted(allowed), n=1, cutoff=0.6)
                hint = f"; did you mean '{near[0]}'?" if near else f"; valid keys: {', '.join(sorted(allowed))}"
                self.fail(path + [key], f"unknown key '{key}'{hint}")

    def int_(self, value, path, low, allow_none=False, high=1_000_000_000):
        if value is None and allow_none:
            return
        if isinstance(value, bool) or not isinstance(value, int) or not low <= value <= high:
            what = "null or " if allow_none else ""
            self.fail(path, f"'{_dotted(path)}' must be {what}an integer from {low} to {high:,}, got {_show(value)}")

    def number(self, value, path, allow_none=False):
        if value is None and allow_none:
            return
        if isinstance(value, bool) or not isinstance(value, (int, float)) or not 0 < value <= MAX_SECONDS:
            self.fail(path, f"'{_dotted(path)}' must be a number of seconds above 0 and at most {MAX_SECONDS:.0f} "
                            f"(7 days), got {_show(value)}")

    def choice(self, value, choices, path):
        if value not in choices:
            self.fail(path, f"'{_dotted(path)}' must be one of {', '.join(choices)}, got {_show(value)}")

    def string(self, value, path, allow_none=False):
        if value is None and allow_none:
            return
        if not isinstance(value, str) or not value.strip():
            self.fail(path, f"'{_dotted(path)}' must be a non-empty string, got {_show(value)}")

    def batch(self, cfg, key, parse):
        """Parse ``cfg[key]`` in place with ``parse`` (None stays None)."""
        if cfg.get(key) is not None:
            try:
                cfg[key] = parse(cfg[key])
            except ValueError as e:
                self.fail([key], f"'{key}': {e}")

    def steps(self, block, path, with_workloads):
        self.keys(block, _PROFILE_KEYS if with_workloads else _STEP_KEYS, path)
        for key in ("warmup_steps", "val_batches"):
            if key in block:
                self.int_(block[key], path + [key], 0, allow_none=key == "val_batches")
        if "steps" in block:
            self.int_(block["steps"], path + ["steps"], 1)
        if "epochs" in block:
            self.int_(block["epochs"], path + ["epochs"], 1, allow_none=True)
        if "timeout_s" in block:
            self.number(block["timeout_s"], path + ["timeout_s"], allow_none=True)
        if "min_time_s" in block:
            v = block["min_time_s"]
            if isinstance(v, bool) or not isinstance(v, (int, float)) or not 0 <= v <= 3600:
                self.fail(path + ["min_time_s"], f"'{_dotted(path + ['min_time_s'])}' must be a number of seconds "
                                                 f"from 0 to 3600, got {_show(v)}")
        if with_workloads and block.get("workloads") is not None:
            wl = block["workloads"]
            if not isinstance(wl, dict):
                self.fail(path + ["workloads"], f"'{_dotted(path + ['workloads'])}' must map workload names to settings, got {_show(wl)}")
            for name, sub in wl.items():
                self.steps(sub or {}, path + ["workloads", name], with_workloads=False)

    def plan(self, cfg):
        self.keys(cfg, _TOP_KEYS, [])
        wl = cfg["workloads"]
        if isinstance(wl, str):
            wl = cfg["workloads"] = [wl]
        if not isinstance(wl, list) or not wl:
            self.fail(["workloads"], f"'workloads' must be a non-empty list of workload names, got {_show(wl)}")
        for i, w in enumerate(wl):
            self.string(w, ["workloads", i])
        dev = cfg["devices"]
        if isinstance(dev, str):
            dev = cfg["devices"] = [dev]
        if not isinstance(dev, list) or not dev:
            self.fail(["devices"], f"'devices' must be a device spec or a list of them, got {_show(dev)}")
        for i, d in enumerate(dev):
            self.string(d, ["devices", i])
        self.choice(cfg["profile"], PROFILES, ["profile"])
        self.int_(cfg["repeat"], ["repeat"], 1, high=MAX_REPEAT)
        self.int_(cfg["seed"], ["seed"], 0, high=2 ** 32 - 1)
        try:
            resolve_seeds(cfg["seed"], cfg["seeds"])
        except ValueError as e:
            self.fail(["seeds"], f"'seeds' {e}")
        self.choice(cfg["data"], DATA_SOURCES, ["data"])
        self.choice(cfg["scaling"], SCALINGS, ["scaling"])
        self.choice(cfg["dtype"], DTYPES, ["dtype"])
        self.choice(cfg["until"], UNTILS, ["until"])
        if not isinstance(cfg["deterministic"], bool):
            self.fail(["deterministic"], f"'deterministic' must be true or false, got {_show(cfg['deterministic'])}")
        self.number(cfg["timeout_s"], ["timeout_s"])
        self.string(cfg["output"], ["output"])
        self.string(cfg["data_dir"], ["data_dir"], allow_none=True)
        self.string(cfg["hostfile"], ["hostfile"], allow_none=True)
        self.batch(cfg, "batch_size", batch.parse_batch_sizes)
        self.batch(cfg, "memory_limit", batch.parse_bytes)
        self.batch(cfg, "gpu_graphs", graph_modes.parse_modes)
        self.keys(cfg["profiles"], set(PROFILES), ["profiles"])
        for name in PROFILES:
            self.steps(cfg["profiles"].get(name) or {}, ["profiles", name], with_workloads=True)
        for name, block in cfg["profiles"].items():
            cfg["profiles"][name] = block or {}


def _dotted(path) -> str:
    return ".".join(str(p) if not isinstance(p, int) else f"[{p}]" for p in path).replace(".[", "[")


def _show(value) -> str:
    return "nothing" if value is None else repr(value)


def _merge(defaults: dict, given: dict) -> dict:
    out = copy.deepcopy(defaults)
    for key, value in given.items():
        if key == "profiles" and isinstance(value, dict):
            profiles = out["profiles"]
            for name, block in value.items():
                if isinstance(block, dict) and isinstance(profiles.get(name), dict):
                    profiles[name] = {**profiles[name], **block}
                else:
                    profiles[name] = block
        else:
            out[key] = value
    return out


def read_config(path) -> tuple[dict, dict, str]:
    """Read and parse a plan file.

    Args:
        path: path of the yaml file.

    Returns:
        (content, line map, display name). The content is {} for an empty file.

    Raises:
        PlanError: the file is missing, unreadable, not a regular file, over 1 MiB, not UTF-8
            (naming the line), not valid yaml, or uses an alias or a duplicate key.
    """
    from benchbench import bounded_io

    from benchbench.executor.planning import plan_yaml

    fname = os.fspath(path)
    if not os.path.lexists(fname):
        raise PlanError(f"{fname}: no such plan file; pass --config FILE or create bench.yaml")
    raw = bounded_io.read_limited(fname, plan_yaml.MAX_PLAN_BYTES, "plan file", PlanError)
    text = bounded_io.decode_utf8(raw, fname, "plan file", PlanError)
    data, node = plan_yaml.load_text(text, fname, PlanError)
    if data is None:
        return {}, {}, fname
    if not isinstance(data, dict):
        raise PlanError(f"{fname}:1: the plan must be a mapping of keys such as 'workloads' and 'devices', got {type(data).__name__}")
    return data, _line_map(node), fname


def load_plan(path=None, overrides: dict | None = None) -> Plan:
    """Load bench.yaml (or the built-in defaults), apply command-line overrides and validate.

    Args:
        path: the plan file, or None for the built-in defaults.
        overrides: option -> value from the command line; None values are ignored.

    Returns:
        A ``Plan``.

    Raises:
        PlanError: unknown key (with its line and the nearest valid key) or bad value.
    """
    if overrides is not None and not isinstance(overrides, dict):
        raise TypeError(f"load_plan: overrides must be a dict, got {type(overrides).__name__}")
    given, lines, fname = ({}, {}, None) if path is None else read_config(path)
    checker = _Checker(fname, lines)
    checker.keys(given, _TOP_KEYS, [])
    cfg = _merge(DEFAULTS, given)
    checker.plan(cfg)
    merged = copy.deepcopy(cfg)
    cli = _Checker(None, {})
    for key, value in (overrides or {}).items():
        if value is None:
            continue
        if key not in _TOP_KEYS - {"profiles"}:
            raise PlanError(f"unknown plan option {key!r}")
        merged[key] = value
    cli.plan(merged)
    seeds = resolve_seeds(merged["seed"], merged["seeds"])
    return Plan(
        config_file=fname,
        config=cfg,
        workloads=list(merged["workloads"]),
        devices=list(merged["devices"]),
        profile=merged["profile"],
        repeat=merged["repeat"],
        seed=seeds[0],
        data=merged["data"],
        data_dir=merged["data_dir"],
        timeout_s=float(merged["timeout_s"]),
        output=merged["output"],
        scaling=merged["scaling"],
        dtype=merged["dtype"],
        deterministic=merged["deterministic"],
        hostfile=merged["hostfile"],
        batch_size=merged.get("batch_size"),
        memory_limit=merged.get("memory_limit"),
        gpu_graphs=list(merged.get("gpu_graphs") or graph_modes.DEFAULT),
        timeout_given=(overrides or {}).get("timeout_s") is not None,
        until=merged["until"],
        seeds=seeds,
        lines=lines,
    )


def check_workload_names(plan: Plan, known: list) -> None:
    """Check that per-workload profile settings name known workloads.

    Args:
        plan: the plan.
        known: the registry's workload names.

    Raises:
        PlanError: an unknown name, with its line and the known names.
    """
    for prof in PROFILES:
        built_in = DEFAULTS["profiles"].get(prof, {}).get("workloads") or {}
        for name in (plan.config["profiles"].get(prof, {}).get("workloads") or {}):
            if name in built_in and ("profiles", prof, "workloads", name) not in plan.lines:
                continue  # a built-in setting for a shipped workload this registry may not have
            if name not in known:
                near = difflib.get_close_matches(str(name), known, n=1)
                hint = f"did you mean '{near[0]}'? " if near else ""
                raise PlanError(
                    f"{plan.where('profiles', prof, 'workloads', name)}unknown workload '{name}'; "
                    f"{hint}known: {', '.join(sorted(known))}"
                )


def plan_from_dict(d: dict) -> Plan:
    """Rebuild a Plan from the ``plan`` block of a results file (for ``--resume``).

    Raises:
        PlanError: the block does not hold a usable plan.
    """
    if not isinstance(d, dict):
        raise PlanError(f"the plan block of the results file: expected a mapping, got {type(d).__name__}")
    config = d.get("config") if isinstance(d.get("config"), dict) else DEFAULTS
    overrides = {k: d[k] for k in _TOP_KEYS - {"profiles"} if d.get(k) is not None}
    checker = _Checker(None, {})
    merged = _merge(DEFAULTS, config)
    checker.plan(merged)
    plan = load_plan(None, overrides)
    plan.config = merged
    plan.config_file = d.get("config_file")
    plan.timeout_given = bool(d.get("timeout_given", False))
    return plan
