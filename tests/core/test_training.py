"""End to end: small models learn small synthetic problems, reproducibly.

Each test trains a few hundred steps on CPU in about a second and states the loss
it must reach; two runs from the same seed must give bit-identical losses.
"""
import numpy
import pytest

from benchbench.core import functions as F
from benchbench.core import links as L
from benchbench.core import no_backprop_mode, optimizers, seed, using_config
from benchbench.core.link import Chain


def _blobs(rng, n):
    """Four Gaussian clusters in 8-D, one per class."""
    centers = rng.standard_normal((4, 8)) * 2.0
    t = rng.integers(0, 4, n).astype(numpy.int32)
    x = (centers[t] + rng.standard_normal((n, 8))).astype(numpy.float32)
    return x, t


def train_mlp(run_seed, steps=150):
    seed(run_seed)
    rng = numpy.random.default_rng(run_seed)
    x, t = _blobs(rng, 512)
    model = L.Sequential(L.Linear(None, 32), F.relu, L.Linear(None, 32), F.relu, L.Linear(None, 4))
    opt = optimizers.Adam(alpha=0.01).setup(model)
    opt.add_hook(optimizers.WeightDecay(1e-5))
    losses = []
    for step in range(steps):
        idx = rng.integers(0, len(x), 64)
        loss = F.softmax_cross_entropy(model(x[idx]), t[idx])
        model.cleargrads()
        loss.backward()
        opt.update()
        losses.append(float(loss.array))
    with no_backprop_mode():
        acc = float((model(x).array.argmax(axis=1) == t).mean())
    return losses, acc


def test_mlp_learns_blobs():
    losses, acc = train_mlp(0)
    assert numpy.mean(losses[-20:]) < 0.15 < losses[0]
    assert acc > 0.95


def test_mlp_runs_are_bit_identical():
    a, _ = train_mlp(3, steps=30)
    b, _ = train_mlp(3, steps=30)
    c, _ = train_mlp(4, steps=30)
    assert a == b
    assert a != c


class ConvNet(Chain):
    def __init__(self):
        super().__init__()
        self.conv1 = L.Convolution2D(None, 8, 3, pad=1)
        self.bn1 = L.BatchNormalization(8)
        self.conv2 = L.Convolution2D(8, 8, 3, pad=1)
        self.fc = L.Linear(None, 4)

    def forward(self, x):
        h = F.max_pooling_2d(F.relu(self.bn1(self.conv1(x))), 2)
        h = F.max_pooling_2d(F.relu(self.conv2(h)), 2)
        return self.fc(h)


def _quadrant_images(rng, n):
    """8x8 noisy images; the class is the quadrant that holds a bright 3x3 patch."""
    t = rng.integers(0, 4, n).astype(numpy.int32)
    x = rng.standard_normal((n, 1, 8, 8)).astype(numpy.float32) * 0.5
    for k, (r, c) in enumerate(((0, 0), (0, 4), (4, 0), (4, 4))):
        sel = t == k
        oy, ox = rng.integers(0, 2, 2)
        x[sel, 0, r + oy:r + oy + 3, c + ox:c + ox + 3] += 2.0
    return x, t


def train_cnn(run_seed, steps=120):
    seed(run_seed)
    rng = numpy.random.default_rng(run_seed)
    x, t = _quadrant_images(rng, 512)
    model = ConvNet()
    opt = optimizers.MomentumSGD(lr=0.05, momentum=0.9).setup(model)
    losses = []
    for _ in range(steps):
        idx = rng.integers(0, len(x), 32)
        loss = F.softmax_cross_entropy(model(x[idx]), t[idx])
        model.cleargrads()
        loss.backward()
        opt.update()
        losses.append(float(loss.array))
    with using_config("train", False), no_backprop_mode():
        acc = float((model(x).array.argmax(axis=1) == t).mean())
    return losses, acc, model


def test_cnn_with_batchnorm_learns_quadrants():
    losses, acc, model = train_cnn(0)
    assert numpy.mean(losses[-20:]) < 0.2 < losses[0]
    assert acc > 0.9  # in inference mode: the running statistics work too
    assert model.bn1.N == 120


def test_cnn_runs_are_bit_identical():
    a = train_cnn(1, steps=15)[0]
    b = train_cnn(1, steps=15)[0]
    assert a == b


def _sine_batches(rng, n_seq, length):
    phase = rng.uniform(0, 2 * numpy.pi, (n_seq, 1))
    steps = numpy.arange(length + 1)[None, :] * 0.3
    s = numpy.sin(phase + steps).astype(numpy.float32)  # (n_seq, length + 1)
    return s[:, :-1].T[:, :, None], s[:, 1:].T[:, :, None]  # (T, N, 1): predict the next value


class SineStep(Chain):
    """Linear(1, 8) -> LSTM(8, 8) -> Linear(8, 1), stepped one time step at a time."""

    def __init__(self):
        super().__init__()
        self.inp = L.Linear(1, 8)
        self.rnn = L.LSTM(8, 8)
        self.out = L.Linear(8, 1)

    def forward(self, xs):
        self.rnn.reset_state()
        return [self.out(self.rnn(self.inp(x))) for x in xs]


class SineSeq(Chain):
    """The same network with the fused whole-sequence LSTM."""

    def __init__(self):
        super().__init__()
        self.inp = L.Linear(1, 8)
        self.rnn = L.LSTMSequence(8, 8)
        self.out = L.Linear(8, 1)

    def forward(self, xs):
        t_len, n, _ = xs.shape
        h = self.inp(xs.reshape(t_len * n, 1)).reshape(t_len, n, 8)
        h_seq, _, _ = self.rnn(h)
        y = self.out(h_seq.reshape(t_len * n, 8))
        return list(F.split_axis(y.reshape(t_len, n, 1), t_len, axis=0))


def train_sine(model_cls, run_seed, steps=150):
    seed(run_seed)
    rng = numpy.random.default_rng(run_seed)
    model = model_cls()
    opt = optimizers.Adam(alpha=0.02).setup(model)
    opt.add_hook(optimizers.GradientClipping(5.0))
    losses = []
    for _ in range(steps):
        xs, ts = _sine_batches(rng, 16, 20)
        ys = model(xs)
        loss = sum(F.mean_squared_error(y.reshape(ts[t].shape), ts[t]) for t, y in enumerate(ys)) / len(ys)
        model.cleargrads()
        loss.backward()
        opt.update()
        losses.append(float(loss.array))
    return losses


@pytest.mark.parametrize("model_cls", [SineStep, SineSeq])
def test_lstm_learns_sine(model_cls):
    losses = train_sine(model_cls, 0)
    assert numpy.mean(losses[-10:]) < 0.02 < losses[0]


def test_lstm_runs_are_bit_identical():
    assert train_sine(SineSeq, 2, steps=20) == train_sine(SineSeq, 2, steps=20)
    assert train_sine(SineStep, 2, steps=10) == train_sine(SineStep, 2, steps=10)
