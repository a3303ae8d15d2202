"""mlp_mnist: 784-units-units-10 ReLU MLP with Adam."""
import pytest



def test_builds_the_784_1000_1000_10_mlp(get):
    wl, params, _ = get("mlp_mnist")
    model = wl.build_model(params)
    assert [l.W.shape for l in (model.l1, model.l2, model.l3)] == [(1000, 784), (1000, 1000), (10, 1000)]
    assert model.count_params() == (784 * 1000 + 1000) + (1000 * 1000 + 1000) + (1000 * 10 + 10)


@pytest.mark.parametrize("units", [1000, 100])
def test_flops_match_a_hand_count(get, units):
    wl, params, _ = get(f"mlp_mnist:units={units}")
    # forward: one multiply-add (2 FLOPs) per weight
    forward = 2 * (784 * units + units * units + units * 10)
    # training step: forward, the weight gradients (as much again), and the input gradients
    # of the second and third layers (the first layer's input is the data)
    train_step = forward + forward + 2 * (units * units + units * 10)
    assert wl.flops_per_sample(params) == {"forward": forward, "train_step": train_step}


def test_units_parameter_and_variant(get):
    assert get("mlp_mnist:small")[1] == {"units": 100}
    with pytest.raises(ValueError, match="units"):
        get("mlp_mnist:units=0")


def test_trains_on_synthetic_data_and_loss_falls(get, trainer):
    wl, params, _ = get("mlp_mnist")
    losses, model, ds = trainer.train(wl, params, steps=8, batch=20, n_train=200)
    assert trainer.falls(losses, 2)
    loss, acc = trainer.evaluate(wl, params, model, *ds.val)
    assert 0.0 <= acc <= 1.0 and loss > 0
