"""The grammar of the ``benchbench`` command: every verb's options, and the exit statuses.

Every option has a help line; "where to write" is ``--output`` in every verb; a list-valued
option takes several values after one flag or the flag repeated. A usage error is one line and
exit status 2.
"""
from __future__ import annotations

import argparse
import math

from benchbench import __version__

EXIT_OK, EXIT_CELLS_FAILED, EXIT_USAGE, EXIT_INTERNAL, EXIT_INTERRUPTED = 0, 1, 2, 3, 130


class _Parser(argparse.ArgumentParser):
    def error(self, message):
        self.exit(EXIT_USAGE, f"benchbench: error: {message} (see `{self.prog} --help`)\n")


# --------------------------------------------------------------------------- parser
def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every verb."""
    p = _Parser(prog="benchbench", description="How fast, how well and at what cost this machine trains "
                                               "the classic deep-learning workloads.")
    p.add_argument("--version", action="version", version=f"benchbench {__version__}")
    p.add_argument("--debug", action="store_true", help="show tracebacks of errors")
    sub = p.add_subparsers(dest="verb", metavar="VERB", parser_class=_Parser)

    r = sub.add_parser("run", help="train and time the workloads on the devices of the plan")
    r.add_argument("--device", action="extend", nargs="+", metavar="SPEC",
                   help="cpu, cpu:dpN, gpu:N, gpu:N,M, gpu:all or all; several after one flag, or the flag repeated")
    r.add_argument("--workload", action="extend", nargs="+", metavar="NAME",
                   help="NAME, NAME:VARIANT or NAME:key=v; several after one flag, or the flag repeated")
    r.add_argument("--profile", choices=("quick", "full"), help="quick: a few timed steps per cell; full: train to the target")
    r.add_argument("--repeat", type=_repeat, metavar="N", help="run every cell N times (3 or more for run-to-run CIs)")
    r.add_argument("--data", choices=("auto", "real", "synthetic"), help="the datasets: real files, synthetic, or real where present")
    r.add_argument("--data-dir", metavar="DIR", help="where the datasets are (default: see `benchbench data path`)")
    r.add_argument("--config", metavar="FILE", help="the plan (default: ./bench.yaml when present)")
    r.add_argument("--output", metavar="DIR", help="results directory (default from the plan: results)")
    r.add_argument("--resume", metavar="RUN", help="a run id or results file to complete")
    r.add_argument("--seed", type=_seed, metavar="N", help="random seed of every cell (the first seed of --seeds N)")
    r.add_argument("--seeds", metavar="N|S,S,...",
                   help="a cell per seed: N seeds from --seed on, or a list such as 1,2,3 (time-to-accuracy "
                        "over seeds, as MLPerf reports it)")
    r.add_argument("--timeout", type=_seconds, metavar="S", help="time-out per cell in seconds")
    r.add_argument("--scaling", choices=("strong", "weak"), help="data parallel: global batch fixed (strong) or per device (weak)")
    r.add_argument("--hostfile", metavar="F", help="MPI hostfile for data parallel across nodes")
    r.add_argument("--deterministic", action="store_true", default=None, help="deterministic kernels where the backend has them")
    r.add_argument("--dtype", choices=("float32", "float16", "bfloat16"), help="compute precision (float16, bfloat16: mixed precision)")
    r.add_argument("--until", choices=("target", "epochs"),
                   help="full profile: stop at the quality target (time-to-accuracy) or train every epoch")
    r.add_argument("--batch-size", metavar="B,...|max",
                   help="a cell per batch size (global; per device under --scaling weak), or max: "
                        "the largest batch that trains on each device")
    r.add_argument("--gpu-graphs", metavar="on|off|auto",
                   help="capture each GPU cell's training step as a CUDA graph and replay it: auto (default: where "
                        "the workload's shapes are fixed), on, off; a list such as on,off makes a cell each")
    r.add_argument("--label", metavar="TEXT",
                   help='a human name for the machine in reports, e.g. "lab box A" (default: its CPU/GPU models)')
    r.add_argument("--memory-limit", metavar="SIZE",
                   help="CPU memory budget of --batch-size max, e.g. 2GiB (default: half the available memory)")

    sub.add_parser("info", help="print the machine fingerprint that results record")
    lst = sub.add_parser("list", help="list the workloads and their variants")
    lst.add_argument("--suites", metavar="DIR", help="folder of suite files (default: ./suites)")

    d = sub.add_parser("data", help="datasets: fetch the official files, show where they go")
    dsub = d.add_subparsers(dest="data_verb", metavar="ACTION", parser_class=_Parser)
    f = dsub.add_parser("fetch", help="download datasets (mnist, cifar10) with a checksum check")
    f.add_argument("names", nargs="+", metavar="NAME", help="datasets to download: mnist, cifar10")
    f.add_argument("--data-dir", metavar="DIR", help="where to put the files (default: see `benchbench data path`)")
    dp = dsub.add_parser("path", help="print the data directory and the files expected there")
    dp.add_argument("--data-dir", metavar="DIR", help="the data directory to describe instead of the default")

    prof = sub.add_parser("profile", help="time every layer and function of one training step")
    prof.add_argument("workload", metavar="WORKLOAD", help="NAME, NAME:VARIANT or NAME:key=v")
    prof.add_argument("--device", default="cpu", metavar="D", help="cpu or gpu:N")
    prof.add_argument("--steps", type=_steps, default=5, metavar="N", help="profiled steps (median shown)")
    prof.add_argument("--warmup", type=_warmup, default=2, metavar="N", help="untimed steps before profiling")
    prof.add_argument("--data", choices=("auto", "real", "synthetic"), default="synthetic", help="the dataset (default synthetic)")
    prof.add_argument("--data-dir", metavar="DIR", help="where the datasets are")
    prof.add_argument("--seed", type=_seed, default=0, metavar="N", help="random seed")
    prof.add_argument("--top", type=_steps, metavar="N", help="only the N slowest calls")
    prof.add_argument("--json", metavar="F", help="also write the raw profile as JSON")
    prof.add_argument("--chart", metavar="F", help="also draw the bar chart (F.png, F.svg, or both for another name)")

    bw = sub.add_parser("bandwidth", help="measure a data-parallel group's interconnect: an all-reduce sweep")
    bw.add_argument("--device", required=True, metavar="SPEC", help="cpu:dpN or gpu:I,J,...")
    bw.add_argument("--sizes", metavar="BYTES,...", help="message sizes in bytes (default 1 KiB to 16 MiB)")
    bw.add_argument("--reps", type=_steps, default=10, metavar="N", help="timed all-reduces per size")
    bw.add_argument("--timeout", type=_seconds, default=600.0, metavar="S",
                    help="end the sweep (every rank) after S seconds (default 600)")
    bw.add_argument("--json", metavar="F", help="also write the sweep as JSON")

    fmts = ("terminal", "markdown", "csv", "html")
    rep = sub.add_parser("report", help="tables of results files")
    rep.add_argument("results", nargs="*", metavar="RESULTS", help="results files or folders (default: the newest run)")
    rep.add_argument("--format", choices=fmts, default="terminal", help="the medium (default terminal)")
    rep.add_argument("--output", metavar="F", help="the file to write (default: print; html goes to RESULTS-DIR/reports)")
    rep.add_argument("--log", metavar="CELL", help="show the epoch log of one cell")
    rep.add_argument("--results-dir", default="results", metavar="DIR", help="where runs are looked for (default results)")
    rep.add_argument("--baseline", metavar="DEVICE|RUN", help="normalise the summary to a device (cpu, gpu:0) or a run")
    rep.add_argument("--price", action="extend", nargs="+", default=[], metavar="MACHINE=PRICE",
                     help="a machine's price (MACHINE: its id or label) for samples/s per price")

    pl = sub.add_parser("plot", help="plots of results files")
    pl.add_argument("results", nargs="*", metavar="RESULTS", help="results files or folders (default: the newest run)")
    pl.add_argument("--kind", choices=("throughput", "scaling", "tta", "phases", "batch", "summary", "all"), default="all",
                    help="which plots (default all)")
    pl.add_argument("--output", default="plots", metavar="DIR", help="the folder to write the plots to (default plots)")
    pl.add_argument("--outdir", dest="output", default=argparse.SUPPRESS, help=argparse.SUPPRESS)  # former name
    pl.add_argument("--results-dir", default="results", metavar="DIR", help="where runs are looked for (default results)")

    cmp_ = sub.add_parser("compare", help="compare machines: speed-ups with CIs, per watt, per price")
    cmp_.add_argument("results", nargs="+", metavar="RESULTS", help="two or more results files or folders; the first is the baseline")
    cmp_.add_argument("--price", action="extend", nargs="+", default=[], metavar="MACHINE=PRICE",
                      help="a machine's price (MACHINE: its id or label) for samples/s per price; several after "
                           "one flag, or the flag repeated")
    cmp_.add_argument("--baseline", metavar="DEVICE|RUN", help="normalise the summary to a device (cpu, gpu:0) or a run")
    cmp_.add_argument("--fail-if-slower", metavar="PCT",
                      help="exit 1 when a run is slower than the first by more than PCT percent on some workload x "
                           "device (the whole 95%% CI of the ratio, where there is one), e.g. 5%%")
    cmp_.add_argument("--format", choices=fmts, default="terminal", help="the medium (default terminal)")
    cmp_.add_argument("--output", metavar="F", help="the file to write (default: print; html goes to RESULTS-DIR/reports)")
    cmp_.add_argument("--results-dir", default="results", metavar="DIR", help="where the html page goes (default results)")
    return p


def _number_type(convert, ok, what):
    """An argparse type: ``convert(text)`` that must satisfy ``ok``, else an error naming ``what``."""
    def parse(text):
        try:
            v = convert(text)
        except (ValueError, OverflowError):
            v = None
        if v is None or not ok(v):
            raise argparse.ArgumentTypeError(f"expected {what}, got {text!r}")
        return v

    return parse


def _int_in(low: int, high: int):
    """Integers from ``low`` to ``high``: a count past any sane run is a typo, refused at once."""
    return _number_type(int, lambda v: low <= v <= high, f"an integer from {low} to {high:,}")


MAX_REPEAT = 1000
MAX_STEPS = 100_000
MAX_SEED = 2 ** 32 - 1
MAX_TIMEOUT_S = 7 * 24 * 3600.0

_repeat = _int_in(1, MAX_REPEAT)
_seed = _int_in(0, MAX_SEED)
_steps = _int_in(1, MAX_STEPS)
_warmup = _int_in(0, MAX_STEPS)
_seconds = _number_type(float, lambda v: math.isfinite(v) and 0 < v <= MAX_TIMEOUT_S,
                        f"a number of seconds above 0 and at most {MAX_TIMEOUT_S:.0f} (7 days)")
