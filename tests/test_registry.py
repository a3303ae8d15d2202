"""The workload registry: description, parameters, discovery, specs, list rows."""
import importlib.metadata
import sys
import textwrap
import types

import pytest

from benchbench import registry
from benchbench.registry import FlopCount, Workload, conv_out_size, discover, list_rows, resolve, workload

SUITE = textwrap.dedent('''
    from benchbench.registry import FlopCount, Workload, workload

    @workload(name={name!r}, description="toy", dataset="mnist", batch_size=10, epochs=1,
              metric="accuracy", higher_is_better=True, target=0.5, target_source="test",
              params={{"units": 8}}, variants={{"big": {{"units": 64}}}})
    class Toy(Workload):
        def flops_per_sample(self, params):
            c = FlopCount()
            c.linear(784, params["units"], first=True)
            return c.result()
''')


def _describe(**over):
    d = dict(name="toy", description="toy", dataset="mnist", batch_size=10, epochs=1, metric="accuracy",
             higher_is_better=True, target=0.5, target_source="test",
             params={"units": 8, "rate": 0.5, "fused": False, "mode": "a"},
             variants={"big": {"units": 64}}, choices={"mode": ("a", "b")})
    d.update(over)
    return d


class Toy(Workload):
    def flops_per_sample(self, params):
        c = FlopCount()
        c.linear(784, params["units"], first=True)
        return c.result()


def _write(folder, name, text):
    path = folder / name
    path.write_text(text)
    return path


# ---------------------------------------------------------------- Workload and parameters
def test_workload_decorator_returns_an_instance_with_the_description():
    wl = workload(**_describe())(Toy)
    assert isinstance(wl, Toy)
    assert wl.name == "toy" and wl.batch_size == 10 and wl.params["units"] == 8


def test_workload_decorator_rejects_unknown_fields_and_non_workload_classes():
    with pytest.raises(TypeError, match="colour"):
        workload(colour="red")
    with pytest.raises(TypeError, match="subclass"):
        workload(**_describe())(object)


@pytest.mark.parametrize("over, match", [
    ({"name": "Bad Name"}, "name"),
    ({"batch_size": 0}, "batch_size"),
    ({"epochs": 1.5}, "epochs"),
    ({"variants": {"huge": {"width": 3}}}, "width"),
    ({"choices": {"depth": (1, 2)}}, "depth"),
])
def test_workload_rejects_a_bad_description(over, match):
    with pytest.raises(ValueError, match=match):
        Toy(**_describe(**over))


def test_resolve_params_fills_defaults_and_converts_strings():
    wl = Toy(**_describe())
    p = wl.resolve_params({"units": "50", "rate": "0.25", "fused": "true", "mode": "b"})
    assert p == {"units": 50, "rate": 0.25, "fused": True, "mode": "b"}
    assert wl.resolve_params({}) == wl.params
    assert wl.resolve_params({"fused": "no", "rate": 1})["fused"] is False


@pytest.mark.parametrize("over, words", [
    ({"width": 3}, ["width", "valid", "units"]),
    ({"units": "many"}, ["units", "many"]),
    ({"units": True}, ["units"]),
    ({"fused": "maybe"}, ["fused", "maybe"]),
    ({"mode": "c"}, ["mode", "valid: a, b"]),
])
def test_resolve_params_rejects_unknown_keys_and_bad_values(over, words):
    wl = Toy(**_describe())
    with pytest.raises(ValueError) as e:
        wl.resolve_params(over)
    for w in words:
        assert w in str(e.value)


def test_label_maps_back_through_resolve(tmp_path):
    reg = registry.Registry()
    reg.add(Toy(**_describe()), "here")
    wl = reg.workloads["toy"]
    for spec in ("toy", "toy:big", "toy:mode=b,units=3"):
        params = resolve(spec, reg)[1]
        assert wl.label(params) == spec
        assert resolve(wl.label(params), reg)[1] == params


# ---------------------------------------------------------------- FLOP counting
def test_flop_count_counts_multiply_adds_twice_and_skips_the_data_gradient():
    c = FlopCount()
    c.linear(10, 20, first=True)
    c.conv2d(3, 4, 5, 6)
    fwd = 2 * (10 * 20) + 2 * (3 * 5 * 5 * 4 * 6 * 6)
    assert c.result()["forward"] == fwd
    # first layer: forward + weight gradient; others: forward + weight + input gradient
    assert c.result()["train_step"] == 2 * 2 * (10 * 20) + 3 * 2 * (3 * 5 * 5 * 4 * 6 * 6)


def test_conv_out_size_matches_chainer():
    assert conv_out_size(28, 5) == 24
    assert conv_out_size(24, 2, 1, cover_all=True) == 23
    assert conv_out_size(5, 2, 2, cover_all=True) == 3
    assert conv_out_size(5, 2, 2, cover_all=False) == 2
    assert conv_out_size(32, 3, 2, 1) == 16


# ---------------------------------------------------------------- discovery
def test_discover_loads_good_files_and_records_broken_ones(tmp_path):
    _write(tmp_path, "good.py", SUITE.format(name="good"))
    _write(tmp_path, "syntax.py", "def broken(:\n")
    _write(tmp_path, "raises.py", "raise RuntimeError('no data\\nhere')\n")
    _write(tmp_path, "empty.py", "X = 1\n")
    _write(tmp_path, "_helper.py", "raise RuntimeError('never imported')\n")
    reg = discover(tmp_path, entry_points=False)
    assert sorted(reg.workloads) == ["good"]
    assert reg.workloads["good"].source == str(tmp_path / "good.py")
    errors = dict(reg.errors)
    assert set(errors) == {str(tmp_path / n) for n in ("syntax.py", "raises.py", "empty.py")}
    assert errors[str(tmp_path / "syntax.py")].startswith("SyntaxError")
    assert errors[str(tmp_path / "raises.py")] == "RuntimeError: no data here"
    assert "no workload" in errors[str(tmp_path / "empty.py")]


def test_discover_reports_a_duplicate_name_with_both_files(tmp_path):
    _write(tmp_path, "a.py", SUITE.format(name="same"))
    _write(tmp_path, "b.py", SUITE.format(name="same"))
    reg = discover(tmp_path, entry_points=False)
    assert list(reg.workloads) == ["same"]
    (where, msg), = reg.errors
    assert str(tmp_path / "a.py") in msg and str(tmp_path / "b.py") in msg


def test_discover_rejects_a_missing_folder(tmp_path):
    with pytest.raises(ValueError, match="is not a folder"):
        discover(tmp_path / "nowhere")


def test_discover_defaults_to_the_current_directory_then_the_repository(tmp_path, monkeypatch):
    _write(tmp_path, "x.py", "")
    (tmp_path / "suites").mkdir()
    _write(tmp_path / "suites", "mine.py", SUITE.format(name="mine"))
    monkeypatch.chdir(tmp_path)
    assert registry.default_suites_dir() == tmp_path / "suites"
    assert list(discover(entry_points=False).workloads) == ["cnn_mnist", "lenet5_cifar10", "lstm_sine", "mlp_mnist",
                                                            "resnet_cifar10", "mine"]  # ./suites adds to the built-ins
    monkeypatch.chdir(tmp_path / "suites")  # no suites/ here: the one shipped beside the package
    shipped = registry.default_suites_dir()
    assert shipped == registry.builtin_suites_dir() and shipped.parent.name == "benchbench"
    assert (shipped / "mlp_mnist.py").is_file()


class _FakeEntryPoint:
    def __init__(self, name, value, obj):
        self.name, self.value, self._obj = name, value, obj

    def load(self):
        if isinstance(self._obj, Exception):
            raise self._obj
        return self._obj


def test_discover_loads_entry_points_and_records_their_failures(tmp_path, monkeypatch):
    one = Toy(**_describe(name="ep_one"))
    module = types.ModuleType("third_party")
    module.a = Toy(**_describe(name="ep_two"))
    module.b = Toy(**_describe(name="ep_three"))
    eps = [
        _FakeEntryPoint("one", "pkg:one", one),
        _FakeEntryPoint("mod", "third_party", module),
        _FakeEntryPoint("factory", "pkg:make", lambda: [Toy(**_describe(name="ep_four"))]),
        _FakeEntryPoint("broken", "pkg:broken", ImportError("No module named pkg")),
        _FakeEntryPoint("wrong", "pkg:wrong", 42),
    ]
    seen = {}

    def fake_entry_points(**kw):
        seen.update(kw)
        return eps

    monkeypatch.setattr(importlib.metadata, "entry_points", fake_entry_points)
    reg = discover(tmp_path)
    assert seen == {"group": "benchbench.workloads"}
    assert sorted(reg.workloads) == ["ep_four", "ep_one", "ep_three", "ep_two"]
    assert reg.workloads["ep_one"].source == "entry point one = pkg:one"
    errors = dict(reg.errors)
    assert "ImportError: No module named pkg" == errors["entry point broken = pkg:broken"]
    assert "int" in errors["entry point wrong = pkg:wrong"]


def test_suite_modules_get_unique_names(tmp_path):
    (tmp_path / "one").mkdir()
    (tmp_path / "two").mkdir()
    _write(tmp_path / "one", "s.py", SUITE.format(name="first"))
    _write(tmp_path / "two", "s.py", SUITE.format(name="second"))
    a = discover(tmp_path / "one", entry_points=False).workloads["first"]
    b = discover(tmp_path / "two", entry_points=False).workloads["second"]
    assert type(a).__module__ != type(b).__module__
    assert type(a).__module__ in sys.modules


# ---------------------------------------------------------------- resolve and list_rows
@pytest.fixture
def reg(tmp_path):
    _write(tmp_path, "toy.py", SUITE.format(name="toy_mnist"))
    _write(tmp_path, "other.py", SUITE.format(name="other"))
    return discover(tmp_path, entry_points=False)


@pytest.mark.parametrize("spec, units", [
    ("toy_mnist", 8), ("toy_mnist:big", 64), ("toy_mnist:units=3", 3), ("toy_mnist:big,units=5", 5),
    (" toy_mnist : units = 7 ", 7),
])
def test_resolve_specs(reg, spec, units):
    wl, params = resolve(spec, reg)
    assert wl.name == "toy_mnist" and params == {"units": units}


@pytest.mark.parametrize("spec, words", [
    ("toy_mnsit", ["toy_mnsit", "did you mean 'toy_mnist'", "other"]),
    ("toy_mnist:huge", ["huge", "variants: big"]),
    ("toy_mnist:width=3", ["width", "units"]),
    ("toy_mnist:units=x", ["units", "'x'"]),
    ("toy_mnist:units=3,big", ["big"]),
    ("toy_mnist:=3", ["empty"]),
    ("", ["spec"]),
])
def test_resolve_errors_name_what_was_wrong(reg, spec, words):
    with pytest.raises(ValueError) as e:
        resolve(spec, reg)
    for w in words:
        assert w in str(e.value)


def test_list_rows_has_every_workload_and_variant(reg):
    rows = list_rows(reg)
    assert [r["spec"] for r in rows] == ["other", "other:big", "toy_mnist", "toy_mnist:big"]
    big = rows[3]
    assert big["params"] == {"units": 64} and big["variant"] == "big"
    assert big["flops_forward"] == 2 * 784 * 64
    assert big["flops_train_step"] == 2 * big["flops_forward"]
    assert big["target"] == 0.5 and big["dataset"] == "mnist" and big["batch_size"] == 10


@pytest.mark.parametrize("key, value, expected", [
    ("units", 3.0, 3), ("units", " 4 ", 4), ("rate", 2, 2.0), ("rate", "1e-3", 1e-3),
    ("fused", 1, True), ("fused", "Off", False), ("mode", "b", "b"),
])
def test_resolve_params_conversions(key, value, expected):
    out = Toy(**_describe()).resolve_params({key: value})[key]
    assert out == expected and type(out) is type(expected)


@pytest.mark.parametrize("key, value", [
    ("units", 2.5), ("units", "2.0"), ("units", None), ("rate", "fast"), ("rate", float("nan")),
    ("rate", False), ("fused", 2), ("mode", 3),
])
def test_resolve_params_rejects_values_of_the_wrong_type(key, value):
    with pytest.raises(ValueError, match=key):
        Toy(**_describe()).resolve_params({key: value})
