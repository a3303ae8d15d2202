"""cnn_mnist: conv5x5x32, pool 2/1, conv5x5x64, pool 2/1, fc512, fc10 with Adam."""


def test_builds_the_layers_with_the_documented_shapes(get):
    wl, params, _ = get("cnn_mnist")
    model = wl.build_model(params)
    assert model.conv1.W.shape == (32, 1, 5, 5)
    assert model.conv2.W.shape == (64, 32, 5, 5)
    # 28 -conv5-> 24 -pool2/1-> 23 -conv5-> 19 -pool2/1-> 18: 64 * 18 * 18 inputs to fc512
    assert model.fc3.W.shape == (512, 64 * 18 * 18)
    assert model.fc4.W.shape == (10, 512)


def test_flops_match_a_hand_count(get):
    wl, params, _ = get("cnn_mnist")
    conv1 = 1 * 5 * 5 * 32 * 24 * 24
    conv2 = 32 * 5 * 5 * 64 * 19 * 19
    fc3 = 64 * 18 * 18 * 512
    fc4 = 512 * 10
    forward = 2 * (conv1 + conv2 + fc3 + fc4)
    train_step = 2 * forward + 2 * (conv2 + fc3 + fc4)
    assert wl.flops_per_sample(params) == {"forward": forward, "train_step": train_step}


def test_trains_on_synthetic_data_and_loss_falls(get, trainer):
    wl, params, _ = get("cnn_mnist")
    losses, model, ds = trainer.train(wl, params, steps=6, batch=16, n_train=16)
    assert losses[-1] < losses[0] and trainer.falls(losses, 2)
    loss, acc = trainer.evaluate(wl, params, model, *ds.val)
    assert 0.0 <= acc <= 1.0 and loss > 0
