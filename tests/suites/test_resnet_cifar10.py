"""resnet_cifar10: CIFAR ResNet-18/34/50/101/152 with the MomentumSGD + weight decay recipe."""
import numpy
import pytest

from benchbench.core import optimizers

# Parameter counts of the CIFAR ResNets of the widely used pytorch-cifar models (conv weights,
# BN scale and shift, fc weight and bias): ResNet-18 11.17M, ResNet-50 23.52M.
PUBLISHED = {18: 11_173_962, 34: 21_282_122, 50: 23_520_842, 101: 42_512_970, 152: 58_156_618}


@pytest.mark.parametrize("depth", [
    18, 34, 50, pytest.param(101, marks=pytest.mark.slow), pytest.param(152, marks=pytest.mark.slow)])
def test_parameter_count_matches_the_published_figure(get, depth):
    wl, params, _ = get(f"resnet_cifar10:resnet{depth}")
    assert wl.build_model(params).count_params() == PUBLISHED[depth]


def test_blocks_and_shortcuts(get):
    wl, params, module = get("resnet_cifar10:resnet50")
    model = wl.build_model(params)
    assert len(model.blocks) == 3 + 4 + 6 + 3
    first = model.blocks[0]
    assert isinstance(first, module.Bottleneck)
    assert first.shortcut.conv.W.shape == (256, 64, 1, 1)     # 64 -> 4*64 channels: projection
    assert model.blocks[1].shortcut is None                   # same shape: identity
    assert model.fc.W.shape == (10, 2048)
    wl, params, module = get("resnet_cifar10")
    model = wl.build_model(params)
    assert isinstance(model.blocks[0], module.BasicBlock) and model.blocks[0].shortcut is None
    assert model.blocks[2].conv1.stride == (2, 2) and model.blocks[2].shortcut.conv.W.shape == (128, 64, 1, 1)


def test_unknown_depth_is_rejected_with_the_valid_ones(get):
    with pytest.raises(ValueError, match="18, 34, 50, 101, 152"):
        get("resnet_cifar10:depth=20")


def test_resnet18_flops_match_a_hand_count(get):
    wl, params, _ = get("resnet_cifar10")
    k = 3 * 3
    stem = 3 * k * 64 * 32 * 32
    stage1 = 4 * (64 * k * 64 * 32 * 32)
    stage2 = 64 * k * 128 * 16 * 16 + 3 * (128 * k * 128 * 16 * 16) + 64 * 128 * 16 * 16
    stage3 = 128 * k * 256 * 8 * 8 + 3 * (256 * k * 256 * 8 * 8) + 128 * 256 * 8 * 8
    stage4 = 256 * k * 512 * 4 * 4 + 3 * (512 * k * 512 * 4 * 4) + 256 * 512 * 4 * 4
    fc = 512 * 10
    macs = stem + stage1 + stage2 + stage3 + stage4 + fc
    assert macs == pytest.approx(0.56e9, rel=0.01)  # the commonly quoted 0.56 GMACs
    flops = wl.flops_per_sample(params)
    assert flops["forward"] == 2 * macs
    assert flops["train_step"] == 3 * 2 * macs - 2 * stem


def test_optimizer_recipe_and_learning_rate_schedule(get):
    wl, params, _ = get("resnet_cifar10")
    opt = wl.build_optimizer(params)
    assert isinstance(opt, optimizers.MomentumSGD)
    assert opt.lr == 0.1 and opt.momentum == 0.9
    opt.remove_hook("WeightDecay")  # raises KeyError when the hook is missing
    lrs = []
    for epoch in (0, 19, 20, 29, 30, 39):
        wl.adjust_optimizer(opt, epoch, 40, params)
        lrs.append(opt.lr)
    numpy.testing.assert_allclose(lrs, [0.1, 0.1, 0.01, 0.01, 0.001, 0.001])


def test_augment_crops_and_flips_each_image(get):
    _, _, module = get("resnet_cifar10")
    x = numpy.random.default_rng(0).random((6, 3, 32, 32), dtype=numpy.float32)
    y = module.augment(x)
    assert y.shape == x.shape and y.dtype == x.dtype
    padded = numpy.pad(x, ((0, 0), (0, 0), (4, 4), (4, 4)))
    for img, out in zip(padded, y):
        candidates = [c for dy in range(9) for dx in range(9)
                      for c in (img[:, dy:dy + 32, dx:dx + 32], img[:, dy:dy + 32, dx:dx + 32][:, :, ::-1])]
        assert any(numpy.array_equal(out, c) for c in candidates)
    assert not numpy.array_equal(y, x)


def test_trains_and_loss_falls_and_evaluation_is_deterministic(get, trainer):
    wl, params, _ = get("resnet_cifar10:augment=false")
    losses, model, ds = trainer.train(wl, params, steps=3, batch=4, n_train=4, lr=0.01)
    assert losses[-1] < losses[0]
    x, t = ds.val
    params = dict(params, augment=True)      # augmentation applies in training only
    assert trainer.evaluate(wl, params, model, x, t) == trainer.evaluate(wl, params, model, x, t)
