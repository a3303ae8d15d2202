"""The command line's conventions: help on every option, one name per meaning, lists alike, --version."""
import argparse

import pytest

from benchbench import __version__
from benchbench.cli import build_parser, main


def _parsers(parser: argparse.ArgumentParser, path=("benchbench",)):
    """Every (path, parser) reachable from ``parser`` through its subcommands."""
    yield path, parser
    for action in parser._actions:
        if isinstance(action, argparse._SubParsersAction):
            for name, sub in action.choices.items():
                yield from _parsers(sub, path + (name,))


def _undocumented(parser: argparse.ArgumentParser) -> list[str]:
    missing = []
    for path, p in _parsers(parser):
        for action in p._actions:
            if isinstance(action, argparse._SubParsersAction) or action.help == argparse.SUPPRESS:
                continue  # the verbs have their own help; a suppressed option is a kept former name
            if not (action.help or "").strip():
                missing.append(" ".join(path) + " " + (action.option_strings[0] if action.option_strings else action.dest))
    return missing


def test_every_option_of_every_verb_has_help():
    parser = build_parser()
    verbs = {path[1] for path, _ in _parsers(parser) if len(path) > 1}
    assert {"run", "report", "plot", "compare", "profile", "bandwidth", "data", "list", "info"} <= verbs
    assert _undocumented(parser) == []


def test_the_help_walker_finds_an_undocumented_option():
    parser = build_parser()
    sub = next(a for a in parser._actions if isinstance(a, argparse._SubParsersAction))
    sub.choices["report"].add_argument("--no-help-here")
    sub.choices["data"]._actions[-1].choices["path"].add_argument("--deep")
    assert sorted(_undocumented(parser)) == ["benchbench data path --deep", "benchbench report --no-help-here"]


def test_where_to_write_is_output_everywhere():
    parser = build_parser()
    for verb in ("run", "report", "plot", "compare"):
        args = parser.parse_args([verb, "--output", "somewhere"] + (["a", "b"] if verb == "compare" else []))
        assert args.output == "somewhere", verb
    assert parser.parse_args(["plot"]).output == "plots"
    assert parser.parse_args(["plot", "--outdir", "old"]).output == "old"  # the former name still works
    plot_help = next(p for path, p in _parsers(parser) if path[-1] == "plot").format_help()
    assert "--output" in plot_help and "--outdir" not in plot_help


@pytest.mark.parametrize("option, values", [("--device", ["cpu", "cpu:dp2"]),
                                            ("--workload", ["mlp_mnist", "cnn_mnist:small"])])
def test_run_list_options_take_several_values_after_one_flag_or_repeated(option, values):
    parser = build_parser()
    together = parser.parse_args(["run", option, *values])
    repeated = parser.parse_args(["run"] + [x for v in values for x in (option, v)])
    dest = option.lstrip("-")
    assert getattr(together, dest) == getattr(repeated, dest) == values
    assert getattr(parser.parse_args(["run"]), dest) is None  # the plan decides


def test_compare_prices_take_several_values_after_one_flag():
    parser = build_parser()
    args = parser.parse_args(["compare", "a", "b", "--price", "m1=10", "m2=20"])
    assert args.price == ["m1=10", "m2=20"] and args.results == ["a", "b"]
    assert parser.parse_args(["compare", "a", "b", "--price", "m1=10", "--price", "m2=20"]).price == ["m1=10", "m2=20"]


def test_version(capsys):
    with pytest.raises(SystemExit) as exc:
        main(["--version"])
    assert exc.value.code == 0
    assert capsys.readouterr().out.strip() == f"benchbench {__version__}"
