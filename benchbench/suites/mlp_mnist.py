"""MLP on MNIST: Chainer's classic example, 784-units-units-10 with ReLU, trained with Adam.

Model: ``Linear(784, units) -> relu -> Linear(units, units) -> relu -> Linear(units, 10)``
(``units`` = 1000 by default, as in Chainer's ``examples/mnist/train_mnist.py``).
Optimizer: Adam (alpha=0.001, beta1=0.9, beta2=0.999). Loss: softmax cross-entropy.
Target: >= 98% validation accuracy after 20 epochs of batch 100.
"""
from benchbench.core import functions as F, links as L, optimizers
from benchbench.registry import FlopCount, Workload, workload

IN_SIZE = 28 * 28
N_CLASSES = 10


class MLP(L.Chain):
    """784-units-units-10 multi-layer perceptron with ReLU."""

    def __init__(self, units, n_in=IN_SIZE, n_out=N_CLASSES):
        super().__init__()
        with self.init_scope():
            self.l1 = L.Linear(n_in, units)
            self.l2 = L.Linear(units, units)
            self.l3 = L.Linear(units, n_out)

    def forward(self, x):
        h = self.l1(x, activation=F.relu)
        h = self.l2(h, activation=F.relu)
        return self.l3(h)


@workload(
    name="mlp_mnist",
    description="MLP 784-units-units-10, ReLU (Chainer MNIST example)",
    dataset="mnist",
    batch_size=100,
    epochs=20,
    metric="accuracy",
    higher_is_better=True,
    target=0.98,
    target_source="Chainer examples/mnist (train_mnist.py): 0.980-0.984 validation accuracy after 20 epochs",
    params={"units": 1000},
    variants={"small": {"units": 100}},
    optimizer="Adam(alpha=0.001, beta1=0.9, beta2=0.999)",
    loss="softmax cross-entropy",
)
class MLPMNIST(Workload):
    def check_params(self, params):
        if params["units"] < 1:
            raise ValueError(f"workload {self.name!r}: units must be >= 1, got {params['units']}")

    def build_model(self, params):
        return MLP(params["units"])

    def build_optimizer(self, params):
        return optimizers.Adam(alpha=0.001)

    def flops_per_sample(self, params):
        units = params["units"]
        c = FlopCount()
        c.linear(IN_SIZE, units, first=True)
        c.linear(units, units)
        c.linear(units, N_CLASSES)
        return c.result()
