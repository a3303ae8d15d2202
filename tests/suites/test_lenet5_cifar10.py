"""lenet5_cifar10: LeNet-5 with sigmoid units on 32x32x3 images."""
import numpy


def test_builds_lenet5_reaching_1x1x120(get):
    wl, params, _ = get("lenet5_cifar10")
    model = wl.build_model(params)
    assert [c.W.shape for c in (model.conv1, model.conv2, model.conv3)] == [
        (6, 3, 5, 5), (16, 6, 5, 5), (120, 16, 5, 5)]
    assert model.fc4.W.shape == (84, 120) and model.fc5.W.shape == (10, 84)
    h = model.conv3(numpy.zeros((1, 16, 5, 5), numpy.float32))
    assert h.shape == (1, 120, 1, 1)
    assert model.count_params() == (6 * 75 + 6) + (16 * 150 + 16) + (120 * 400 + 120) + (84 * 120 + 84) + (10 * 84 + 10)


def test_flops_match_a_hand_count(get):
    wl, params, _ = get("lenet5_cifar10")
    conv1 = 3 * 5 * 5 * 6 * 28 * 28      # 32 -> 28, pool -> 14
    conv2 = 6 * 5 * 5 * 16 * 10 * 10     # 14 -> 10, pool -> 5
    conv3 = 16 * 5 * 5 * 120 * 1 * 1     # 5 -> 1
    fc4 = 120 * 84
    fc5 = 84 * 10
    forward = 2 * (conv1 + conv2 + conv3 + fc4 + fc5)
    assert forward == 1_303_440
    # weight gradients for all layers, input gradients for all but the first
    train_step = forward + forward + 2 * (conv2 + conv3 + fc4 + fc5)
    assert wl.flops_per_sample(params) == {"forward": forward, "train_step": train_step}


def test_trains_on_synthetic_data_and_loss_falls(get, trainer):
    wl, params, _ = get("lenet5_cifar10")
    losses, model, ds = trainer.train(wl, params, steps=8, batch=20, n_train=20)
    assert losses[-1] < losses[0] and trainer.falls(losses, 3)
    loss, acc = trainer.evaluate(wl, params, model, *ds.val)
    assert 0.0 <= acc <= 1.0 and loss > 0
