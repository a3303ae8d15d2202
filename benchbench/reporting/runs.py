"""Finding and loading the results files that reports, plots and comparisons read.

A report reads only results files (see ``results/README.md`` for the schema), so it works on
results copied from other machines, without cupy or MPI. Every problem with the input is a
:class:`ReportError`: one line that names the file and what is wrong with it.
"""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path

from benchbench import results
from benchbench.errors import UserError


class ReportError(UserError):
    """A results file that cannot be reported: one line naming the file and the problem."""


SIMULATED_BANNER = ("WARNING: this run used SIMULATED GPUs (tests/simgpu): its GPU cells prove that the code "
                    "runs; their timings, energy and memory are not figures of any GPU")


@dataclass(frozen=True)
class Run:
    """One loaded results file.

    Attributes:
        path: where the file was read from.
        data: the validated JSON document.
    """

    path: Path
    data: dict

    @property
    def machine(self) -> dict:
        return self.data.get("machine") or {}

    @property
    def machine_id(self) -> str:
        return str(self.machine.get("id", "unknown-machine"))

    @property
    def label(self) -> str:
        """The machine's human name (``run --label``, or its CPU/GPU models), else its id."""
        return str(self.machine.get("label") or self.machine_id)

    @property
    def run_id(self) -> str:
        return str(self.data.get("run_id", self.path.stem))

    @property
    def created(self) -> str:
        return str(self.data.get("created", ""))

    @property
    def date(self) -> str:
        """The run's UTC start date and time, e.g. ``2026-11-23 10:51 UTC``."""
        created = self.created
        if len(created) >= 16 and created[10] == "T":
            return f"{created[:10]} {created[11:16]} UTC"
        return created or "unknown date"

    @property
    def cells(self) -> list[dict]:
        return list(self.data.get("cells") or [])

    @property
    def caption(self) -> str:
        """The line that identifies a figure or table: machine, run and date."""
        return f"machine {self.machine_id} · run {self.run_id} · {self.date}"


def _run_files(directory: Path) -> list[Path]:
    """The results files in ``directory`` (a results folder or one machine's folder), newest first."""
    files = results.find_runs(directory)
    if not files and any(directory.glob("*.json")):
        files = results.find_runs(directory.parent, machine_id=directory.name)
    return [Path(p) for p in files]


def load_run(path: Path, *, require_cells: bool = True) -> Run:
    """Loads one results file.

    Args:
        path: a results JSON file.
        require_cells: refuse a run that has no cells.

    Returns:
        The loaded :class:`Run`.

    Raises:
        ReportError: the file is missing, malformed, of a later schema version, or has no cells.
    """
    path = Path(path)
    if not os.path.lexists(path):
        raise ReportError(f"{path}: no such results file")
    try:
        doc = results.load(path)
    except results.ResultsError as exc:
        raise ReportError(str(exc).splitlines()[0]) from exc
    run = Run(path=path, data=doc)
    if require_cells and not run.cells:
        raise ReportError(f"{path}: the run has no cells (nothing finished); run `benchbench run` again")
    return run


def resolve_runs(paths: list[Path] | None, results_dir: Path = Path("results")) -> list[Run]:
    """Loads the runs named on a command line.

    Args:
        paths: results files, or folders whose newest run is taken; ``None`` or empty takes the
            newest run under ``results_dir``.
        results_dir: where runs are looked for when no path is given.

    Returns:
        The loaded runs, in the order given.

    Raises:
        ReportError: a path holds no results, or a file cannot be reported.
        TypeError: ``paths`` is not a list of paths.
    """
    if paths is not None and not isinstance(paths, (list, tuple)):
        raise TypeError(f"resolve_runs: paths must be a list of paths or None, got {type(paths).__name__}")
    if not paths:
        paths = [Path(results_dir)]
    runs = []
    for raw in paths:
        if not isinstance(raw, (str, Path)):
            raise TypeError(f"resolve_runs: each path must be a str or Path, got {type(raw).__name__}")
        path = Path(raw)
        if path.is_dir():
            files = _run_files(path)
            if not files:
                raise ReportError(f"no results in {path}/; run `benchbench run` first")
            path = files[0]
        elif not path.exists():
            if Path(raw) == Path(results_dir):
                raise ReportError(f"no results in {path}/; run `benchbench run` first")
            raise ReportError(f"{path}: no such results file or folder")
        runs.append(load_run(path))
    return runs


def resolve_every_run(paths: list[Path] | None, results_dir: Path = Path("results")) -> tuple[list[Run], list[str]]:
    """Like :func:`resolve_runs`, but a folder named in ``paths`` means every run in it (``report FOLDER``).

    Returns:
        ``(runs, skipped)``: the loadable runs, newest first within each folder, and one line per
        file of a folder that could not be reported, saying why.

    Raises:
        ReportError: nothing at all could be loaded, or a file named directly cannot be.
    """
    if not paths:
        return resolve_runs(paths, results_dir), []
    runs, skipped = [], []
    for raw in paths:
        path = Path(raw)
        if not path.is_dir():
            runs += resolve_runs([path], results_dir)
            continue
        files = _run_files(path)
        if not files:
            raise ReportError(f"no results in {path}/; run `benchbench run` first")
        for file in files:
            try:
                runs.append(load_run(file))
            except ReportError as exc:
                skipped.append(f"skipped {exc}")
    if not runs:
        raise ReportError(skipped[0].removeprefix("skipped ") if skipped else "no results")
    return runs, skipped


def runs_label(runs: list[Run]) -> dict[int, str]:
    """Short, unique labels for runs: the machine's label (``run --label``, else its models, else its
    id), with the machine id where two machines share a label, the run id where a machine repeats,
    and the position (``#2``) where the same run is given twice (a run compared with itself or a copy)."""
    labels = [r.label for r in runs]
    labels = [f"{lab} ({r.machine_id})" if labels.count(lab) > 1 and lab != r.machine_id and
              len({x.machine_id for x in runs if x.label == lab}) > 1 else lab for lab, r in zip(labels, runs)]
    labels = [lab if labels.count(lab) == 1 else f"{lab}@{r.run_id}" for lab, r in zip(labels, runs)]
    return {i: (label if labels.count(label) == 1 else f"{label}#{i + 1}") for i, label in enumerate(labels)}


def file_stem(text: str) -> str:
    """``text`` made safe as a file name: runs of other characters than ``A-Za-z0-9._=-`` become ``_``."""
    return re.sub(r"[^A-Za-z0-9._=-]+", "_", text).strip("_.") or "report"


def refuse_simulated_against_real(runs: list[Run]) -> None:
    """Raise ReportError when simulated-GPU runs and real ones are compared: simulated figures are no GPU's."""
    simulated = [r for r in runs if r.machine.get("simulated_gpus")]
    if simulated and len(simulated) < len(runs):
        names = ", ".join(f"{r.machine_id} (run {r.run_id})" for r in simulated)
        raise ReportError(f"compare: {names} used simulated GPUs, whose figures are not a GPU's; "
                          "compare it only with other simulated runs")
