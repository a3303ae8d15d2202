"""PyTorch equivalents of the suite models, used as a yardstick by ``train_step.py``.

Each model has the same layer shapes, activations, pooling, loss, optimizer and
hyper-parameters as its workload in ``benchbench/suites/``, and its attributes carry the same
names, so that :func:`load_benchbench_params` can copy a benchbench model's initial
parameters into it (the first losses of both then agree, which checks the equivalence).

PyTorch is not a dependency of benchbench: this module is imported only when torch is
installed (``pip install torch==2.13.0`` in a separate environment).
"""
from __future__ import annotations

import numpy
import torch
from torch import nn
from torch.nn import functional as F

# --------------------------------------------------------------------------- models


class MLP(nn.Module):
    """benchbench/suites/mlp_mnist.py: 784-units-units-10, ReLU."""

    def __init__(self, units=1000):
        super().__init__()
        self.l1 = nn.Linear(784, units)
        self.l2 = nn.Linear(units, units)
        self.l3 = nn.Linear(units, 10)

    def forward(self, x):
        h = F.relu(self.l1(x.flatten(1)))
        h = F.relu(self.l2(h))
        return self.l3(h)


class CNN(nn.Module):
    """benchbench/suites/cnn_mnist.py: conv5x5x32, max-pool 2 stride 1, conv5x5x64, max-pool 2 stride 1, fc512, fc10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(1, 32, 5)
        self.conv2 = nn.Conv2d(32, 64, 5)
        self.fc3 = nn.Linear(64 * 18 * 18, 512)
        self.fc4 = nn.Linear(512, 10)

    def forward(self, x):
        h = F.max_pool2d(F.relu(self.conv1(x)), 2, 1)
        h = F.max_pool2d(F.relu(self.conv2(h)), 2, 1)
        h = F.relu(self.fc3(h.flatten(1)))
        return self.fc4(h)


class LeNet5(nn.Module):
    """benchbench/suites/lenet5_cifar10.py: sigmoid conv6, conv16, conv120 (5x5) with 2x2 max pooling, fc84, fc10."""

    def __init__(self):
        super().__init__()
        self.conv1 = nn.Conv2d(3, 6, 5)
        self.conv2 = nn.Conv2d(6, 16, 5)
        self.conv3 = nn.Conv2d(16, 120, 5)
        self.fc4 = nn.Linear(120, 84)
        self.fc5 = nn.Linear(84, 10)

    def forward(self, x):
        h = F.max_pool2d(torch.sigmoid(self.conv1(x)), 2, 2)
        h = F.max_pool2d(torch.sigmoid(self.conv2(h)), 2, 2)
        h = torch.sigmoid(self.conv3(h))
        h = torch.sigmoid(self.fc4(h.flatten(1)))
        return self.fc5(h)


class SineLSTM(nn.Module):
    """benchbench/suites/lstm_sine.py: Linear(1, H) -> LSTM(H, H) -> Linear(H, 1) at every step.

    ``fused=False`` unrolls the sequence in Python with ``nn.LSTMCell`` (one call per step,
    as benchbench's stateful ``L.LSTM``); ``fused=True`` runs it in one ``nn.LSTM`` call.
    Input and output are ``(N, T, 1)``.
    """

    def __init__(self, hidden, fused):
        super().__init__()
        self.fused = fused
        self.l1 = nn.Linear(1, hidden)
        self.rnn = nn.LSTM(hidden, hidden) if fused else nn.LSTMCell(hidden, hidden)
        self.l2 = nn.Linear(hidden, 1)

    def forward(self, x):
        n, steps = x.shape[0], x.shape[1]
        if self.fused:
            hs, _ = self.rnn(self.l1(x.transpose(0, 1)))  # (T, N, H)
            return self.l2(hs).transpose(0, 1)
        state = None
        ys = []
        for i in range(steps):
            state = self.rnn(self.l1(x[:, i]), state)
            ys.append(self.l2(state[0]))
        return torch.cat(ys, dim=1).reshape(n, steps, 1)


def _conv(c_in, c_out, ksize, stride=1):
    return nn.Conv2d(c_in, c_out, ksize, stride=stride, padding=ksize // 2, bias=False)


def _bn(c):
    # benchbench's BatchNormalization: eps 2e-5, running averages with decay 0.9.
    return nn.BatchNorm2d(c, eps=2e-5, momentum=0.1)


class Shortcut(nn.Module):
    def __init__(self, c_in, c_out, stride):
        super().__init__()
        self.conv = _conv(c_in, c_out, 1, stride)
        self.bn = _bn(c_out)

    def forward(self, x):
        return self.bn(self.conv(x))


class BasicBlock(nn.Module):
    expansion = 1

    def __init__(self, c_in, planes, stride):
        super().__init__()
        self.conv1 = _conv(c_in, planes, 3, stride)
        self.bn1 = _bn(planes)
        self.conv2 = _conv(planes, planes, 3)
        self.bn2 = _bn(planes)
        self.shortcut = Shortcut(c_in, planes, stride) if stride != 1 or c_in != planes else None

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.bn2(self.conv2(h))
        return F.relu(h + (x if self.shortcut is None else self.shortcut(x)))


class Bottleneck(nn.Module):
    expansion = 4

    def __init__(self, c_in, planes, stride):
        super().__init__()
        c_out = planes * self.expansion
        self.conv1 = _conv(c_in, planes, 1)
        self.bn1 = _bn(planes)
        self.conv2 = _conv(planes, planes, 3, stride)
        self.bn2 = _bn(planes)
        self.conv3 = _conv(planes, c_out, 1)
        self.bn3 = _bn(c_out)
        self.shortcut = Shortcut(c_in, c_out, stride) if stride != 1 or c_in != c_out else None

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = F.relu(self.bn2(self.conv2(h)))
        h = self.bn3(self.conv3(h))
        return F.relu(h + (x if self.shortcut is None else self.shortcut(x)))


RESNET_ARCH = {
    18: (BasicBlock, (2, 2, 2, 2)),
    34: (BasicBlock, (3, 4, 6, 3)),
    50: (Bottleneck, (3, 4, 6, 3)),
    101: (Bottleneck, (3, 4, 23, 3)),
    152: (Bottleneck, (3, 8, 36, 3)),
}


class ResNet(nn.Module):
    """benchbench/suites/resnet_cifar10.py: 3x3 stem, stages 64-512 with strides 1, 2, 2, 2, global average pool, fc10."""

    def __init__(self, depth):
        super().__init__()
        block, counts = RESNET_ARCH[depth]
        self.conv1 = _conv(3, 64, 3)
        self.bn1 = _bn(64)
        layers, c_in = [], 64
        for planes, stride, n in zip((64, 128, 256, 512), (1, 2, 2, 2), counts):
            for i in range(n):
                layers.append(block(c_in, planes, stride if i == 0 else 1))
                c_in = planes * block.expansion
        self.blocks = nn.Sequential(*layers)
        self.fc = nn.Linear(c_in, 10)

    def forward(self, x):
        h = F.relu(self.bn1(self.conv1(x)))
        h = self.blocks(h)
        h = F.avg_pool2d(h, h.shape[2])
        return self.fc(h.flatten(1))


# --------------------------------------------------------------------------- workloads


def build(workload, params):
    """The PyTorch model, optimizer and loss of a workload.

    Args:
        workload: the workload's name (``"mlp_mnist"``, ...).
        params: its resolved parameters.

    Returns:
        ``(model, optimizer, forward)`` where ``forward(model, x, t)`` returns ``(loss, metric)``
        as the workload's ``forward`` does.

    Raises:
        ValueError: a workload with no PyTorch equivalent here.
    """
    if workload == "mlp_mnist":
        model = MLP(params["units"])
        return model, torch.optim.Adam(model.parameters(), lr=0.001), _classification
    if workload == "cnn_mnist":
        model = CNN()
        return model, torch.optim.Adam(model.parameters(), lr=0.001), _classification
    if workload == "lenet5_cifar10":
        model = LeNet5()
        return model, torch.optim.Adam(model.parameters(), lr=0.001), _classification
    if workload == "lstm_sine":
        model = SineLSTM(params["hidden"], params["fused"])
        # benchbench's LSTM has one gate bias; torch's second one (bias_hh) stays zero and untrained.
        for name, p in model.rnn.named_parameters():
            if name.startswith("bias_hh"):
                p.requires_grad_(False)
        trained = [p for p in model.parameters() if p.requires_grad]
        return model, torch.optim.Adam(trained, lr=0.01), _regression
    if workload == "resnet_cifar10":
        if params.get("augment"):
            raise ValueError("torch_models.build: resnet_cifar10 is compared with augment=false (the model alone)")
        model = ResNet(params["depth"])
        opt = torch.optim.SGD(model.parameters(), lr=0.1, momentum=0.9, weight_decay=5e-4)
        return model, opt, _classification
    raise ValueError(f"torch_models.build: no PyTorch equivalent of workload {workload!r}")


def _classification(model, x, t):
    y = model(x)
    return F.cross_entropy(y, t), (y.argmax(dim=1) == t).float().mean()


def _regression(model, x, t):
    loss = F.mse_loss(model(x), t)
    return loss, loss


def as_tensor(a):
    """A numpy batch as a torch tensor: float32 as is, integer labels as int64."""
    a = numpy.ascontiguousarray(a)
    if a.dtype.kind in "iu":
        a = a.astype(numpy.int64)
    return torch.from_numpy(a)


# --------------------------------------------------------------------------- parameters


def _gates_to_torch(a):
    """Gate rows from benchbench's interleaved (a, i, f, o) per unit to torch's blocks (i, f, g, o)."""
    g = a.reshape(-1, 4, *a.shape[1:])  # (H, 4, ...)
    return numpy.concatenate([g[:, 1], g[:, 2], g[:, 0], g[:, 3]], axis=0)


_LEAF = {"W": "weight", "b": "bias", "gamma": "weight", "beta": "bias",
         "avg_mean": "running_mean", "avg_var": "running_var"}
_LSTM_LEAF = {  # benchbench rnn parameter -> torch LSTMCell / LSTM parameter
    "upward/W": "weight_ih", "upward/b": "bias_ih", "lateral/W": "weight_hh",
    "W_x": "weight_ih_l0", "W_h": "weight_hh_l0", "b": "bias_ih_l0",
}


def _torch_name(bb_name):
    parts = bb_name.strip("/").split("/")
    if parts[0] == "rnn":
        return "rnn." + _LSTM_LEAF["/".join(parts[1:])], True
    return ".".join(parts[:-1] + [_LEAF[parts[-1]]]), False


def load_benchbench_params(model, bb_model):
    """Copy a benchbench model's parameters and batch-norm statistics into the torch ``model``.

    Every torch parameter must receive a value (the LSTM's second bias, which benchbench
    does not have, is set to zero) with the same shape: this checks that both models
    have the same layers.

    Raises:
        ValueError: a parameter without a counterpart, or shapes that differ.
    """
    state = model.state_dict()
    arrays = {name: p.array for name, p in bb_model.namedparams()}
    for name, (link, attr) in bb_model.namedpersistents():
        value = getattr(link, attr)
        if isinstance(value, numpy.ndarray):
            arrays[name] = value
    filled = set()
    for bb_name, a in arrays.items():
        if a is None:
            raise ValueError(f"load_benchbench_params: {bb_name} is not initialised")
        name, gates = _torch_name(bb_name)
        if name not in state:
            raise ValueError(f"load_benchbench_params: no torch counterpart {name!r} of {bb_name}")
        value = _gates_to_torch(a) if gates else a
        if tuple(state[name].shape) != value.shape:
            raise ValueError(f"load_benchbench_params: {bb_name} {value.shape} vs {name} {tuple(state[name].shape)}")
        state[name].copy_(torch.from_numpy(numpy.ascontiguousarray(value)))
        filled.add(name)
    for name in state:
        if name.startswith("rnn.bias_hh"):
            state[name].zero_()
            filled.add(name)
    missing = [n for n in state if n not in filled and not n.endswith("num_batches_tracked")]
    if missing:
        raise ValueError(f"load_benchbench_params: torch values without a benchbench counterpart: {missing}")
