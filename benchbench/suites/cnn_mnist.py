"""CNN on MNIST: two 5x5 convolutions with stride-1 max pooling, then fc512 and fc10, with Adam.

Shapes for a 1x28x28 digit (no padding; pooling 2x2 with stride 1, Chainer's ``cover_all``)::

    conv 5x5x32 -> 32x24x24 -> relu -> max-pool 2/1 -> 32x23x23
    conv 5x5x64 -> 64x19x19 -> relu -> max-pool 2/1 -> 64x18x18
    fc 20736->512 -> relu -> fc 512->10

Optimizer: Adam (alpha=0.001). Loss: softmax cross-entropy.
Target: >= 99% validation accuracy after 10 epochs of batch 100.
"""
from benchbench.core import functions as F, links as L, optimizers
from benchbench.registry import FlopCount, Workload, conv_out_size, workload

N_CLASSES = 10
IMAGE = 28
POOL_K, POOL_S = 2, 1


def _shapes():
    """Feature-map sizes after (conv1, pool1, conv2, pool2) for a 28x28 image."""
    h1 = conv_out_size(IMAGE, 5)
    p1 = conv_out_size(h1, POOL_K, POOL_S, cover_all=True)
    h2 = conv_out_size(p1, 5)
    p2 = conv_out_size(h2, POOL_K, POOL_S, cover_all=True)
    return h1, p1, h2, p2


class CNN(L.Chain):
    """conv5x5 -> pool -> conv5x5 -> pool -> fc -> fc, ReLU activations."""

    def __init__(self, c1=32, c2=64, fc=512):
        super().__init__()
        p2 = _shapes()[3]
        with self.init_scope():
            self.conv1 = L.Convolution2D(1, c1, 5)
            self.conv2 = L.Convolution2D(c1, c2, 5)
            self.fc3 = L.Linear(c2 * p2 * p2, fc)
            self.fc4 = L.Linear(fc, N_CLASSES)

    def forward(self, x):
        h = F.max_pooling_2d(F.relu(self.conv1(x)), POOL_K, POOL_S)
        h = F.max_pooling_2d(F.relu(self.conv2(h)), POOL_K, POOL_S)
        h = self.fc3(h, activation=F.relu)
        return self.fc4(h)


@workload(
    name="cnn_mnist",
    description="CNN conv5x5x32, pool2/s1, conv5x5x64, pool2/s1, fc512, fc10, ReLU",
    dataset="mnist",
    batch_size=100,
    epochs=10,
    metric="accuracy",
    higher_is_better=True,
    target=0.99,
    target_source="common two-convolution MNIST CNN: 0.988-0.992 validation accuracy after 10 epochs",
    params={},
    optimizer="Adam(alpha=0.001, beta1=0.9, beta2=0.999)",
    loss="softmax cross-entropy",
)
class CNNMNIST(Workload):
    def build_model(self, params):
        return CNN()

    def build_optimizer(self, params):
        return optimizers.Adam(alpha=0.001)

    def flops_per_sample(self, params):
        h1, _, h2, p2 = _shapes()
        c = FlopCount()
        c.conv2d(1, 32, 5, h1, first=True)
        c.conv2d(32, 64, 5, h2)
        c.linear(64 * p2 * p2, 512)
        c.linear(512, N_CLASSES)
        return c.result()
