"""LeNet-5 on CIFAR-10 with sigmoid activations, as in Chainer's LeNet5 tutorial model, trained with Adam.

Chainer's tutorial LeNet5 takes 28x28 MNIST digits and uses a 4x4 third convolution
(28 -> 24 -> 12 -> 8 -> 4 -> 1). On 32x32 CIFAR images the same arrangement gives a 5x5
map before the third convolution, so it is 5x5 here (the classic C5 layer of LeNet-5),
which yields 1x1x120::

    conv 5x5x6   -> 6x28x28  -> sigmoid -> max-pool 2/2 -> 6x14x14
    conv 5x5x16  -> 16x10x10 -> sigmoid -> max-pool 2/2 -> 16x5x5
    conv 5x5x120 -> 120x1x1  -> sigmoid
    fc 120->84 -> sigmoid -> fc 84->10

Optimizer: Adam (alpha=0.001): with sigmoid units plain SGD learns far more slowly.
Loss: softmax cross-entropy. Target: about 60% validation accuracy after 50 epochs of batch 100.
"""
from benchbench.core import functions as F, links as L, optimizers
from benchbench.registry import FlopCount, Workload, conv_out_size, workload

N_CLASSES = 10
IMAGE = 32
CHANNELS = 3


def _sizes():
    """Map sizes after conv1, pool1, conv2, pool2, conv3 for a 32x32 image."""
    s1 = conv_out_size(IMAGE, 5)
    p1 = conv_out_size(s1, 2, 2, cover_all=True)
    s2 = conv_out_size(p1, 5)
    p2 = conv_out_size(s2, 2, 2, cover_all=True)
    s3 = conv_out_size(p2, 5)
    return s1, p1, s2, p2, s3


class LeNet5(L.Chain):
    """LeNet-5: three sigmoid convolutions with max pooling, then fc84 and fc10."""

    def __init__(self):
        super().__init__()
        s3 = _sizes()[4]
        with self.init_scope():
            self.conv1 = L.Convolution2D(CHANNELS, 6, 5)
            self.conv2 = L.Convolution2D(6, 16, 5)
            self.conv3 = L.Convolution2D(16, 120, 5)
            self.fc4 = L.Linear(120 * s3 * s3, 84)
            self.fc5 = L.Linear(84, N_CLASSES)

    def forward(self, x):
        h = F.max_pooling_2d(F.sigmoid(self.conv1(x)), 2, 2)
        h = F.max_pooling_2d(F.sigmoid(self.conv2(h)), 2, 2)
        h = F.sigmoid(self.conv3(h))
        h = self.fc4(h, activation=F.sigmoid)
        return self.fc5(h)


@workload(
    name="lenet5_cifar10",
    description="LeNet-5 conv6, conv16, conv120 (5x5), fc84, fc10, sigmoid, max pooling",
    dataset="cifar10",
    batch_size=100,
    epochs=50,
    metric="accuracy",
    higher_is_better=True,
    target=0.60,
    target_source="sigmoid LeNet-5 on CIFAR-10: 0.59-0.61 validation accuracy after 50 epochs",
    params={},
    optimizer="Adam(alpha=0.001, beta1=0.9, beta2=0.999)",
    loss="softmax cross-entropy",
)
class LeNet5CIFAR10(Workload):
    def build_model(self, params):
        return LeNet5()

    def build_optimizer(self, params):
        return optimizers.Adam(alpha=0.001)

    def flops_per_sample(self, params):
        s1, _, s2, _, s3 = _sizes()
        c = FlopCount()
        c.conv2d(CHANNELS, 6, 5, s1, first=True)
        c.conv2d(6, 16, 5, s2)
        c.conv2d(16, 120, 5, s3)
        c.linear(120 * s3 * s3, 84)
        c.linear(84, N_CLASSES)
        return c.result()
