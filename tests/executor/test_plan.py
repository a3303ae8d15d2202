"""bench.yaml: loading, validation with line numbers and suggestions, overrides, per-workload settings."""
from pathlib import Path

import pytest

from benchbench.executor.planning.plan import DEFAULTS, PlanError, check_workload_names, load_plan, plan_from_dict

ROOT = Path(__file__).resolve().parents[2]


def write(tmp_path, text):
    path = tmp_path / "bench.yaml"
    path.write_text(text)
    return path


def test_defaults_without_a_file():
    plan = load_plan(None)
    assert plan.devices == ["all"] and plan.profile == "quick" and plan.repeat == 1
    assert plan.workloads == DEFAULTS["workloads"] and plan.config_file is None


def test_the_shipped_plan_is_valid_and_covers_every_workload():
    plan = load_plan(ROOT / "bench.yaml")
    names = {w.partition(":")[0] for w in plan.workloads}
    assert names == {"mlp_mnist", "cnn_mnist", "lenet5_cifar10", "lstm_sine", "resnet_cifar10"}
    assert "resnet_cifar10:depth=18" in plan.workloads
    for name in names:
        s = plan.settings(name)
        assert s["steps"] >= 5 and s["warmup_steps"] >= 1 and s["timeout_s"] > 0
    check_workload_names(plan, sorted(names))
    assert plan.config == load_plan(None).config  # the built-in defaults are the shipped plan


def test_unknown_key_names_line_and_nearest_key(tmp_path):
    path = write(tmp_path, "devices: cpu\nworklods:\n  - mlp_mnist\n")
    with pytest.raises(PlanError) as e:
        load_plan(path)
    assert str(e.value) == f"{path}:2: unknown key 'worklods'; did you mean 'workloads'?"


def test_unknown_nested_key(tmp_path):
    path = write(tmp_path, "profiles:\n  quick:\n    workloads:\n      mlp_mnist:\n        stepz: 3\n")
    with pytest.raises(PlanError, match=r":5: unknown key 'stepz'; did you mean 'steps'\?"):
        load_plan(path)
    path = write(tmp_path, "profiles:\n  quik: {}\n")
    with pytest.raises(PlanError, match=r":2: unknown key 'quik'; did you mean 'quick'\?"):
        load_plan(path)


def test_key_without_a_near_match_lists_the_valid_ones(tmp_path):
    with pytest.raises(PlanError, match=r":1: unknown key 'zzz'; valid keys: .*workloads"):
        load_plan(write(tmp_path, "zzz: 1\n"))


@pytest.mark.parametrize("text, needle", [
    ("repeat: 0\n", ":1: 'repeat' must be an integer from 1 to 1,000, got 0"),
    ("devices: cpu\nprofile: fast\n", ":2: 'profile' must be one of quick, full, got 'fast'"),
    ("data: web\n", "'data' must be one of auto, real, synthetic"),
    ("timeout_s: -1\n", "'timeout_s' must be a number of seconds above 0"),
    ("deterministic: maybe\n", "'deterministic' must be true or false"),
    ("workloads: []\n", "'workloads' must be a non-empty list"),
    ("profiles:\n  quick:\n    steps: 0\n", ":3: 'profiles.quick.steps' must be an integer from 1 to 1,000,000,000, got 0"),
    ("seed: 1.5\n", "'seed' must be an integer from 0 to"),
    ("- a\n- b\n", ":1: the plan must be a mapping"),
    ("devices: [cpu\n", "invalid yaml"),
])
def test_bad_values(tmp_path, text, needle):
    with pytest.raises(PlanError) as e:
        load_plan(write(tmp_path, text))
    assert needle in str(e.value)
    assert "\n" not in str(e.value)


def test_missing_file(tmp_path):
    with pytest.raises(PlanError, match="no such plan file"):
        load_plan(tmp_path / "nope.yaml")


def test_empty_file_is_the_defaults(tmp_path):
    assert load_plan(write(tmp_path, "")).workloads == DEFAULTS["workloads"]


def test_command_line_overrides_the_file(tmp_path):
    path = write(tmp_path, "devices: all\nrepeat: 3\nprofiles:\n  quick:\n    timeout_s: 50\n")
    plan = load_plan(path, {"devices": ["cpu"], "repeat": None, "seed": 7})
    assert plan.devices == ["cpu"] and plan.repeat == 3 and plan.seed == 7
    assert plan.settings("x")["timeout_s"] == 50
    assert load_plan(path, {"timeout_s": 9}).settings("x")["timeout_s"] == 9
    with pytest.raises(PlanError, match="'repeat' must be an integer from 1 to"):
        load_plan(path, {"repeat": 0})
    with pytest.raises(PlanError, match="unknown plan option"):
        load_plan(path, {"worklods": ["x"]})


def test_per_workload_settings(tmp_path):
    path = write(tmp_path, "profiles:\n  quick:\n    steps: 7\n    workloads:\n      slow: {steps: 2}\n")
    plan = load_plan(path)
    assert plan.settings("fast")["steps"] == 7 and plan.settings("slow")["steps"] == 2
    assert plan.settings("slow")["warmup_steps"] == DEFAULTS["profiles"]["quick"]["warmup_steps"]
    with pytest.raises(PlanError, match=r":5: unknown workload 'slow'.*known: fast"):
        check_workload_names(plan, ["fast"])


def test_round_trip_through_the_results_file(tmp_path):
    path = write(tmp_path, "devices: cpu\nprofiles:\n  quick:\n    steps: 4\n")
    plan = load_plan(path, {"repeat": 2})
    again = plan_from_dict(plan.as_dict())
    assert again.as_dict() == plan.as_dict()
    assert again.settings("x")["steps"] == 4


def test_built_in_settings_do_not_require_the_shipped_workloads(tmp_path):
    plan = load_plan(write(tmp_path, "workloads: [tiny]\nprofiles:\n  quick:\n    steps: 3\n"))
    check_workload_names(plan, ["tiny"])
    assert plan.settings("tiny")["steps"] == 3


def test_until_reaches_the_full_profile_settings():
    plan = load_plan(None, {"profile": "full", "until": "epochs"})
    assert plan.until == "epochs" and plan.settings("mlp_mnist")["until"] == "epochs"
    assert load_plan(None, {"profile": "full"}).settings("mlp_mnist")["until"] == "target"
    assert "until" not in load_plan(None, {"profile": "quick"}).settings("mlp_mnist")
    with pytest.raises(PlanError, match="until"):
        load_plan(None, {"until": "forever"})
