"""Whole-step CUDA graphs on the simulated GPUs: a replay is the eager step, step by step, for every
shipped workload; one graph launch per step; what cannot be replayed falls back to eager and says why.

Run with ``PYTHONPATH=tests/simgpu`` (as CI does), or on a real GPU. The simulator captures as
strictly as CUDA (nothing runs during a capture; a host read is refused; memory a live graph uses is
never handed out) and counts graph launches.
"""
import numpy
import pytest

from benchbench import core, registry
from benchbench.core import backend
from benchbench.data import BatchIterator
from benchbench.executor import graph_step
from benchbench.executor.cell.run_cell import run_cell
from benchbench.executor.graph_step import GraphStep
from benchbench.executor.step import TrainingStep, build_step

from ..fake_suite import suite_source
from .test_gpu_figures import gpu_desc

pytestmark = pytest.mark.gpu  # on the simulated GPUs in CI; on a real one in benchmarks/gpu_acceptance.sh


def _train(spec, graph, steps=4, batch=4, dtype="float32", before_step=None, device="gpu:0"):
    """Losses and packed parameters after each of ``steps`` steps of ``spec``, eagerly or in graph mode."""
    wl, params = registry.resolve(spec, registry.discover(bounded=False))
    core.seed(0)
    dev = backend.Device(device)
    with dev.scope():
        st = build_step(wl, params, dev, dtype)
        ds = wl.load_data("synthetic", seed=0, n_train=batch * steps, n_val=1)
        it = BatchIterator(ds.train, batch, shuffle=True, seed=0, repeat=True)
        g = GraphStep(st, None, None if graph else "eager (test)", "on")
        losses, states = [], []
        for i in range(steps):
            if before_step is not None:
                before_step(st, i)
            loss, _ = g(it.next, dev)
            losses.append(float(backend.as_numpy(loss.array)))
            states.append(numpy.concatenate([backend.as_numpy(a).ravel() for a in graph_step._state_arrays(st)
                                             if a.dtype.kind == "f"]))
        return losses, states, g, st


def _same(eager, graph):
    assert graph[0] == eager[0]  # the loss of every step, bit for bit
    for i, (a, b) in enumerate(zip(eager[1], graph[1])):
        assert numpy.array_equal(a, b, equal_nan=True), f"state after step {i + 1} differs"


@pytest.mark.parametrize("spec, dtype, batch", [
    ("mlp_mnist:small", "float32", 4), ("lenet5_cifar10", "float32", 2), ("lstm_sine", "float32", 4),
    ("lstm_sine:fused=true", "float32", 4), ("mlp_mnist:small", "float16", 4), ("lstm_sine:fused=true", "float16", 4),
])
def test_a_replay_is_the_eager_step_step_by_step(spec, dtype, batch):
    eager = _train(spec, False, batch=batch, dtype=dtype)
    graph = _train(spec, True, batch=batch, dtype=dtype)
    rec = graph[2].finish_record()
    assert rec["used"], rec["reason"]
    assert rec["self_check"]["passed"] and rec["self_check"]["identical"]
    assert rec["replays"] == 3  # the checked replay of step 2, then one per step
    _same(eager, graph)


# The simulator interprets every kernel's C body, and a convolution at batch 1 takes seconds there: two
# steps (one eager, then the capture step), whose replay the self-check holds against the eager step
# from the same state, bit for bit, over the loss, the parameters and the optimizer and BatchNorm state.
@pytest.mark.parametrize("spec", ["cnn_mnist", "resnet_cifar10:depth=18"])
def test_a_convolutional_replay_is_its_eager_step(spec):
    losses, _, g, _ = _train(spec, True, batch=1, steps=2)
    rec = g.finish_record()
    assert rec["used"] and rec["replays"] == 1, rec["reason"]
    check = rec["self_check"]
    assert check["passed"] and check["identical"] and check["loss_replay"] == check["loss_eager"] == losses[1]


@pytest.mark.simgpu
def test_each_replayed_step_is_one_graph_launch_and_no_kernel_launch():
    counts = []

    def count(st, i):
        counts.append(backend.sim_counts())

    losses, _, g, _ = _train("mlp_mnist:small", True, steps=5, before_step=count)
    counts.append(backend.sim_counts())
    per_step = [(b["graph_launches"] - a["graph_launches"], b["launches"] - a["launches"])
                for a, b in zip(counts, counts[1:])]
    assert per_step[2:] == [(1, 0)] * 3  # steps 3 to 5: the graph, nothing launched from Python
    assert per_step[0][0] == 0 and per_step[0][1] > 10  # step 1 ran eagerly


def test_a_learning_rate_schedule_reaches_every_replay():
    def schedule(st, i):
        st.optimizer.alpha = 1e-3 * 0.5 ** i  # read from a device scalar in graph mode, not frozen

    eager = _train("mlp_mnist:small", False, steps=5, before_step=schedule)
    graph = _train("mlp_mnist:small", True, steps=5, before_step=schedule)
    _same(eager, graph)
    assert eager[0] != _train("mlp_mnist:small", False, steps=5)[0]  # the schedule changes the training


def test_mixed_precision_skips_overflowed_steps_on_the_device():
    def huge_scale(st, i):
        if i == 0:
            st.optimizer.loss_scaler.scale = 2.0 ** 40  # float16 gradients overflow until it halves enough

    eager = _train("mlp_mnist:small", False, steps=6, dtype="float16", before_step=huge_scale)
    graph = _train("mlp_mnist:small", True, steps=6, dtype="float16", before_step=huge_scale)
    _same(eager, graph)
    e_scaler, g_scaler = eager[3].optimizer.loss_scaler, graph[3].optimizer.loss_scaler
    assert g_scaler.skipped_steps == e_scaler.skipped_steps >= 4 and g_scaler.scale == e_scaler.scale
    assert graph[3].optimizer.t == eager[3].optimizer.t == 6 - e_scaler.skipped_steps


def test_a_replay_that_differs_from_the_eager_step_falls_back_to_eager(monkeypatch):
    from benchbench.core.optimizers import device_update

    stage = device_update.DeviceUpdate.stage

    def wrong(self):  # the replay's update runs with twice the learning rate
        stage(self)
        for vec in self.vectors.values():
            vec *= 2

    monkeypatch.setattr(device_update.DeviceUpdate, "stage", wrong)
    eager = _train("mlp_mnist:small", False)
    graph = _train("mlp_mnist:small", True)
    rec = graph[2].finish_record()
    assert not rec["used"] and "differed from the eager step" in rec["reason"], rec
    assert rec["self_check"]["passed"] is False
    _same(eager, graph)  # the wrong graph left no trace: the eager step ran again


def test_a_capture_that_fails_falls_back_to_eager_and_says_why(monkeypatch):
    plain = TrainingStep.__call__

    def reads_back(self, *args, **kwargs):  # a host read inside the step: refused while capturing
        out = plain(self, *args, **kwargs)
        float(backend.as_numpy(out[0].array))
        return out

    monkeypatch.setattr(TrainingStep, "__call__", reads_back)
    eager = _train("mlp_mnist:small", False)
    graph = _train("mlp_mnist:small", True)
    rec = graph[2].finish_record()
    assert not rec["used"] and rec["reason"].startswith("eager: the capture failed"), rec
    _same(eager, graph)


def test_the_graph_keeps_its_memory_while_it_lives():
    losses, _, g, st = _train("mlp_mnist:small", True, steps=3)
    assert g.pool is not None and g.pool.total_bytes() > 0
    held = {id(a) for a in g.held}
    assert all(id(a) in held for a in graph_step._state_arrays(st)) and all(id(a) in held for a in g.inputs)
    junk = [backend.cupy.ones(1 << 12, dtype=numpy.float32) for _ in range(64)]  # allocations meanwhile
    dev = backend.Device("gpu:0")
    with dev.scope():
        before = float(backend.as_numpy(g.outputs[0].array))
        g._replay()  # the simulator raises if memory of the graph was handed to the arrays above
        assert float(backend.as_numpy(g.outputs[0].array)) != before
    del junk
    g.release()
    assert g.graph is None and not g.held


BUCKETS = suite_source(target=0.0, extra='''
    @workload(name="buckets", varying_shapes="every other step trains on a shorter bucket of its batch", **COMMON)
    class Buckets(Tiny):
        calls = 0

        def forward(self, model, x, t, params):
            Buckets.calls += 1
            n = len(x) - Buckets.calls % 2  # the step's shapes depend on the step
            return super().forward(model, x[:n], t[:n], params)
''')


def test_a_workload_whose_shapes_vary_runs_eagerly_and_says_why(tmp_path, monkeypatch):
    (tmp_path / "suites").mkdir()
    (tmp_path / "suites" / "buckets.py").write_text(BUCKETS)
    monkeypatch.chdir(tmp_path)
    cells = {}
    for name in ("buckets", "tiny"):
        desc = gpu_desc([0], steps=2)
        desc.update(id=f"{name}/gpu:0/r0", workload=name, workload_name=name, gpu_graphs="auto")
        cells[name] = run_cell(desc)
        assert cells[name]["status"] == "ok", cells[name]["reason"]
    varying, fixed = cells["buckets"]["graph"], cells["tiny"]["graph"]
    assert not varying["used"] and varying["reason"] == ("eager: the workload's shapes vary from step to step (every "
                                                          "other step trains on a shorter bucket of its batch)")
    assert set(cells["buckets"]["timing"]["phases_s"]) >= {"forward", "backward", "update"}
    assert fixed["used"] and fixed["requested"] == "auto", fixed


def test_host_counters_advance_with_each_replay_as_with_each_eager_step():
    from benchbench.core import functions as F, links as L, optimizers

    class Classify:
        def forward(self, model, x, t, params):
            y = model(x)
            return F.softmax_cross_entropy(y, t), F.accuracy(y, t)

    def train(graph):
        core.seed(0)
        dev = backend.Device("gpu:0")
        with dev.scope():
            model = L.Sequential(L.Linear(4, 8), L.BatchNormalization(8), F.relu, L.Linear(8, 2))
            model.to_device("gpu:0")
            opt = optimizers.MomentumSGD(0.1).setup(model)
            g = GraphStep(TrainingStep(Classify(), {}, model, model, opt, False), None, None if graph else "eager", "on")
            rng = numpy.random.default_rng(0)
            batches = iter([(rng.standard_normal((8, 4)).astype(numpy.float32), rng.integers(0, 2, 8).astype(numpy.int32))
                            for _ in range(5)])
            for _ in range(5):
                g(lambda: next(batches), dev)
            return g.record["used"], model[1].N, backend.as_numpy(model[1].avg_mean)

    eager, graph = train(False), train(True)
    assert graph[0] and graph[1] == eager[1] == 5  # BatchNorm's N: host-side, advanced after each replay
    assert numpy.array_equal(graph[2], eager[2])


@pytest.mark.simgpu
def test_a_slow_device_shows_in_the_gpu_step_time_not_in_the_host_launch(monkeypatch):
    # Known truth: every simulated kernel takes a set 10 ms of device time. A replayed step's
    # kernels are then at least 10 x 10 ms of device work (the MLP's step has more than 10 kernels),
    # which the synchronised step time must show and the host's launch of the graph must not.
    delay_s = 10e-3
    wl, params = registry.resolve("mlp_mnist:small", registry.discover(bounded=False))
    core.seed(0)
    dev = backend.Device("gpu:0")
    with dev.scope():
        st = build_step(wl, params, dev, "float32")
        ds = wl.load_data("synthetic", seed=0, n_train=8, n_val=1)
        it = BatchIterator(ds.train, 4, shuffle=True, seed=0, repeat=True)
        g = GraphStep(st, None, None, "on")
        g(it.next, dev)
        g(it.next, dev)  # the capture step
        assert g.record["used"], g.record["reason"]
        monkeypatch.setenv("BENCHBENCH_SIM_LAUNCH_DELAY_US", str(delay_s * 1e6))
        spans = []
        for _ in range(2):
            with backend.synced_timer(dev) as span:
                g(it.next, dev)
            spans.append(span.seconds)
    assert len(g.launch_s) == 3  # the capture step's checked replay, then one per step
    for step_s, launch_s in zip(spans, g.launch_s[1:]):
        assert step_s >= 10 * delay_s
        assert launch_s < step_s - 5 * delay_s  # the launch returned long before the device finished
