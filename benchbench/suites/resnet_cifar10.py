"""ResNet on CIFAR-10: depth 18, 34 (basic blocks), 50, 101, 152 (bottleneck blocks).

The CIFAR form of He et al.'s ImageNet ResNets (as in the widely used pytorch-cifar
models): a 3x3, 64-channel stem convolution without max pooling; four stages of 64,
128, 256 and 512 channels with strides 1, 2, 2, 2; batch normalisation after every
convolution; a projection shortcut (1x1 convolution + batch normalisation) where the
shape changes; global average pooling; fc10. Blocks per stage: 18 -> [2,2,2,2],
34 -> [3,4,6,3] (basic), 50 -> [3,4,6,3], 101 -> [3,4,23,3], 152 -> [3,8,36,3]
(bottleneck, 4x expansion, stride on the 3x3 convolution).

Training recipe (the usual CIFAR one): MomentumSGD lr 0.1, momentum 0.9, weight decay
5e-4; the learning rate drops 10x at 50% and again at 75% of the epochs; batch 64;
random 32x32 crops of the 4-pixel zero-padded image and random horizontal flips,
applied on the device inside ``forward`` while training (parameter ``augment``).
Target: ResNet-18 >= 90% validation accuracy (widely reported: 93-95% with this recipe).
"""
import numpy

from benchbench.core import config, functions as F, get_array_module, initializers, links as L, optimizers
from benchbench.core.random import get_rng
from benchbench.registry import FlopCount, Workload, conv_out_size, workload

N_CLASSES = 10
IMAGE = 32
STAGES = (64, 128, 256, 512)
STRIDES = (1, 2, 2, 2)
ARCH = {  # depth -> (bottleneck?, blocks per stage)
    18: (False, (2, 2, 2, 2)),
    34: (False, (3, 4, 6, 3)),
    50: (True, (3, 4, 6, 3)),
    101: (True, (3, 4, 23, 3)),
    152: (True, (3, 8, 36, 3)),
}
PAD = 4
LR = 0.1
WEIGHT_DECAY = 5e-4


def _conv(c_in, c_out, ksize, stride=1):
    return L.Convolution2D(c_in, c_out, ksize, stride=stride, pad=ksize // 2, nobias=True,
                           initialW=initializers.HeNormal())


class Shortcut(L.Chain):
    """Projection shortcut: 1x1 convolution with stride, then batch normalisation."""

    def __init__(self, c_in, c_out, stride):
        super().__init__()
        with self.init_scope():
            self.conv = _conv(c_in, c_out, 1, stride)
            self.bn = L.BatchNormalization(c_out)

    def forward(self, x):
        return self.bn(self.conv(x))


class BasicBlock(L.Chain):
    """Two 3x3 convolutions with batch normalisation and a residual connection."""

    expansion = 1

    def __init__(self, c_in, planes, stride):
        super().__init__()
        with self.init_scope():
            self.conv1 = _conv(c_in, planes, 3, stride)
            self.bn1 = L.BatchNormalization(planes)
            self.conv2 = _conv(planes, planes, 3)
            self.bn2 = L.BatchNormalization(planes)
            self.shortcut = Shortcut(c_in, planes, stride) if stride != 1 or c_in != planes else None

    def forward(self, x):
        h = self.bn1(self.conv1(x), activation=F.relu)
        h = self.bn2(self.conv2(h))
        return F.relu(h + (x if self.shortcut is None else self.shortcut(x)))


class Bottleneck(L.Chain):
    """1x1 reduce, 3x3 (with the stride), 1x1 expand (4x), with a residual connection."""

    expansion = 4

    def __init__(self, c_in, planes, stride):
        super().__init__()
        c_out = planes * self.expansion
        with self.init_scope():
            self.conv1 = _conv(c_in, planes, 1)
            self.bn1 = L.BatchNormalization(planes)
            self.conv2 = _conv(planes, planes, 3, stride)
            self.bn2 = L.BatchNormalization(planes)
            self.conv3 = _conv(planes, c_out, 1)
            self.bn3 = L.BatchNormalization(c_out)
            self.shortcut = Shortcut(c_in, c_out, stride) if stride != 1 or c_in != c_out else None

    def forward(self, x):
        h = self.bn1(self.conv1(x), activation=F.relu)
        h = self.bn2(self.conv2(h), activation=F.relu)
        h = self.bn3(self.conv3(h))
        return F.relu(h + (x if self.shortcut is None else self.shortcut(x)))


def _blocks(depth):
    """``(block class, c_in, planes, stride, input size)`` of every block, in order."""
    bottleneck, counts = ARCH[depth]
    block = Bottleneck if bottleneck else BasicBlock
    out, c_in, size = [], STAGES[0], IMAGE
    for planes, stride, n in zip(STAGES, STRIDES, counts):
        for i in range(n):
            s = stride if i == 0 else 1
            out.append((block, c_in, planes, s, size))
            c_in = planes * block.expansion
            size = conv_out_size(size, 3, s, 1)
    return out


class ResNet(L.Chain):
    """CIFAR ResNet of the given depth (18, 34, 50, 101 or 152)."""

    def __init__(self, depth):
        super().__init__()
        blocks = _blocks(depth)
        with self.init_scope():
            self.conv1 = _conv(3, STAGES[0], 3)
            self.bn1 = L.BatchNormalization(STAGES[0])
            self.blocks = L.Sequential(*[cls(c_in, planes, s) for cls, c_in, planes, s, _ in blocks])
            cls, _, planes, _, _ = blocks[-1]
            self.fc = L.Linear(planes * cls.expansion, N_CLASSES)

    def forward(self, x):
        h = self.bn1(self.conv1(x), activation=F.relu)
        h = self.blocks(h)
        h = F.average_pooling_2d(h, h.shape[2])
        return self.fc(h)


def augment_draws(n):
    """The random offsets and flips of :func:`augment` for ``n`` images: ``(3, n)`` integers drawn on
    the host from the framework's seeded generator (rows: y offset, x offset, flip)."""
    rng = get_rng()
    oy = rng.integers(0, 2 * PAD + 1, n)
    ox = rng.integers(0, 2 * PAD + 1, n)
    flip = rng.random(n) < 0.5
    return numpy.stack([oy, ox, flip.astype(oy.dtype)])


def augment(x, draws=None):
    """Random 32x32 crops of the 4-pixel zero-padded batch and random horizontal flips.

    The offsets and flips (``draws``, from :func:`augment_draws`; drawn now when None) come from
    the framework's seeded generator on the host; the images stay on their device and are cropped
    and flipped by one gather. The draws travel to the device as one array (one host-to-device copy
    per step, not three); a captured step (CUDA graph) gets them as a device array, copied in
    before each replay.
    """
    xp = get_array_module(x)
    n, c, h, w = x.shape
    draws = xp.asarray(augment_draws(n) if draws is None else draws)
    oy, ox, flip = draws[0], draws[1], draws[2].astype(bool)
    padded = xp.zeros((n, c, h + 2 * PAD, w + 2 * PAD), dtype=x.dtype)
    padded[:, :, PAD:PAD + h, PAD:PAD + w] = x
    cols = xp.arange(w)
    rows = oy[:, None] + xp.arange(h)
    cols = ox[:, None] + xp.where(flip[:, None], cols[::-1], cols)
    return padded[xp.arange(n)[:, None, None, None], xp.arange(c)[None, :, None, None],
                  rows[:, None, :, None], cols[:, None, None, :]]


@workload(
    name="resnet_cifar10",
    description="CIFAR ResNet (3x3 stem, stages 64-512, BatchNorm), basic or bottleneck blocks",
    dataset="cifar10",
    batch_size=64,
    epochs=40,
    metric="accuracy",
    higher_is_better=True,
    target=0.90,
    target_source="ResNet-18 on CIFAR-10 with crop+flip augmentation: 0.93-0.95 widely reported",
    params={"depth": 18, "augment": True},
    choices={"depth": tuple(ARCH)},
    variants={f"resnet{d}": {"depth": d} for d in ARCH},
    optimizer="MomentumSGD(lr=0.1, momentum=0.9) + WeightDecay(5e-4); lr x0.1 at 50% and 75% of the epochs",
    loss="softmax cross-entropy",
)
class ResNetCIFAR10(Workload):
    def build_model(self, params):
        return ResNet(params["depth"])

    def build_optimizer(self, params):
        opt = optimizers.MomentumSGD(lr=LR, momentum=0.9)
        opt.add_hook(optimizers.WeightDecay(WEIGHT_DECAY))
        return opt

    def adjust_optimizer(self, optimizer, epoch, epochs, params):
        optimizer.lr = LR * (0.1 ** sum(epoch >= round(epochs * f) for f in (0.5, 0.75)))

    def step_draws(self, params, n):
        """The host random draws of a training step: the augmentation's (see ``executor.step``)."""
        return (augment_draws(n),) if params["augment"] else ()

    def forward(self, model, x, t, params, draws=None):
        if params["augment"] and config.train:
            x = augment(x, draws)
        return super().forward(model, x, t, params)

    def flops_per_sample(self, params):
        c = FlopCount()
        c.conv2d(3, STAGES[0], 3, IMAGE, first=True)
        for cls, c_in, planes, stride, size in _blocks(params["depth"]):
            out = conv_out_size(size, 3, stride, 1)
            if cls is BasicBlock:
                c.conv2d(c_in, planes, 3, out)
                c.conv2d(planes, planes, 3, out)
                c_out = planes
            else:
                c_out = planes * cls.expansion
                c.conv2d(c_in, planes, 1, size)
                c.conv2d(planes, planes, 3, out)
                c.conv2d(planes, c_out, 1, out)
            if stride != 1 or c_in != c_out:
                c.conv2d(c_in, c_out, 1, out)
        last = _blocks(params["depth"])[-1]
        c.linear(last[2] * last[0].expansion, N_CLASSES)
        return c.result()
