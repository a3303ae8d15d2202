"""Every suite file of the repository loads, describes itself fully and lists its variants."""
import pytest

from benchbench.registry import list_rows

NAMES = ["cnn_mnist", "lenet5_cifar10", "lstm_sine", "mlp_mnist", "resnet_cifar10"]


def test_the_five_workloads_load_without_errors(suites):
    assert suites.errors == []
    assert sorted(suites.workloads) == NAMES


@pytest.mark.parametrize("name", NAMES)
def test_a_workload_describes_itself(suites, name):
    wl = suites.workloads[name]
    assert wl.source.endswith(f"{name}.py")
    assert wl.dataset in ("mnist", "cifar10", "sine")
    assert wl.metric in ("accuracy", "mse")
    assert wl.higher_is_better == (wl.metric == "accuracy")
    assert wl.optimizer and wl.loss and wl.target_source and wl.description


def test_list_rows_shows_every_variant_with_flops_and_target(suites):
    rows = {r["spec"]: r for r in list_rows(suites)}
    for spec in ("mlp_mnist", "cnn_mnist", "lenet5_cifar10", "lstm_sine:small", "lstm_sine:wide",
                 *(f"resnet_cifar10:resnet{d}" for d in (18, 34, 50, 101, 152))):
        assert spec in rows
        r = rows[spec]
        assert 0 < r["flops_forward"] < r["flops_train_step"] <= 3 * r["flops_forward"]
        assert r["target"] > 0
    assert rows["resnet_cifar10:resnet50"]["params"]["depth"] == 50
    assert rows["lstm_sine:wide"]["params"]["hidden"] == 128
    # deeper networks cost more
    flops = [rows[f"resnet_cifar10:resnet{d}"]["flops_forward"] for d in (18, 34, 50, 101, 152)]
    assert flops == sorted(flops)


@pytest.mark.gpu
@pytest.mark.parametrize("spec, batch", [
    ("mlp_mnist", 8), ("cnn_mnist", 4), ("lenet5_cifar10", 4), ("lstm_sine", 4), ("lstm_sine:fused=true", 4),
    ("resnet_cifar10", 4)])
def test_a_training_step_runs_on_the_gpu(get, trainer, spec, batch):
    from benchbench.core import backend

    wl, params, _ = get(spec)
    model = wl.build_model(params).to_device("gpu:0")
    opt = wl.build_optimizer(params)
    opt.setup(model)
    x, t = wl.load_data("synthetic", n_train=batch, n_val=0).train
    x, t = backend.to_device(x, "gpu:0"), backend.to_device(t, "gpu:0")
    loss, metric = wl.forward(model, x, t, params)
    assert backend.get_array_module(loss.array) is backend.cupy
    model.cleargrads()
    loss.backward()
    opt.update()
    assert trainer.as_float(backend.as_numpy(loss.array)) > 0
