"""LSTM on a generated sine wave: predict the next value at every step.

Model: ``Linear(1, hidden) -> LSTM(hidden, hidden) -> Linear(hidden, 1)`` applied at each
of the T steps of a sequence, from a zero state; the loss is the mean squared error over
all steps. Variants: ``small`` (hidden 5, the classic 1-5-1 example) and ``wide``
(hidden 128). Parameter ``fused``: False runs the stateful ``L.LSTM`` step by step
(the classic unrolled loop); True runs the whole sequence in one fused ``L.LSTMSequence``
(same mathematics, different speed). Parameter ``embed`` (variant ``embed``): instead of
``Linear(1, hidden)``, each input value is quantised into ``embed`` levels and looked up in an
embedding table ``(embed, hidden)``: a gather with repeated indices, whose gradient is a scatter-add
(atomic on a GPU, a sorted segment sum in deterministic mode).

Data: ``benchbench.data`` "sine" (windows of T steps of a noisy sine wave, the target of
each step being the next value). Optimizer: Adam (alpha=0.01). Batch 20.
Target: validation MSE below the threshold of :data:`TARGET_MSE`.
"""
from benchbench.core import functions as F, get_array_module, initializers, links as L, optimizers
from benchbench.core.variable import Parameter
from benchbench.registry import FlopCount, Workload, workload

SEQ_LEN = 50  # steps per sequence of the "sine" dataset (benchbench.data.sine's default)
TARGET_MSE = 0.0015


class SineLSTM(L.Chain):
    """Linear(1, H) -> LSTM(H, H) -> Linear(H, 1) at every step.

    ``forward(x)`` takes a batch of sequences ``(N, T, 1)`` (an array) and returns the
    predictions ``(N, T, 1)``.
    """

    def __init__(self, hidden, fused, embed=0):
        super().__init__()
        self.fused, self.embed = fused, embed
        with self.init_scope():
            if embed:
                self.table = Parameter(initializers.Normal(1.0), shape=(embed, hidden))
            else:
                self.l1 = L.Linear(1, hidden)
            self.rnn = L.LSTMSequence(hidden, hidden) if fused else L.LSTM(hidden, hidden)
            self.l2 = L.Linear(hidden, 1)

    def _input(self, x):
        """``(M, 1)`` input values -> ``(M, hidden)``: a Linear layer, or the embedding lookup."""
        if not self.embed:
            return self.l1(x)
        xp = get_array_module(x)
        levels = xp.floor((xp.clip(x[:, 0], -1.5, 1.5) + 1.5) / 3.0 * (self.embed - 1) + 0.5)
        return self.table[levels.astype(xp.int32)]

    def forward(self, x):
        x = getattr(x, "array", x)
        n, steps = x.shape[0], x.shape[1]
        if self.fused:
            xt = x.transpose(1, 0, 2).reshape(steps * n, 1)
            h = F.reshape(self._input(xt), (steps, n, -1))
            hs, _, _ = self.rnn(h)
            y = self.l2(F.reshape(hs, (steps * n, -1)))
            return F.reshape(F.transpose(F.reshape(y, (steps, n))), (n, steps, 1))
        self.rnn.reset_state()
        ys = [self.l2(self.rnn(self._input(x[:, i]))) for i in range(steps)]
        return F.reshape(F.concat(ys, axis=1), (n, steps, 1))


@workload(
    name="lstm_sine",
    description="Linear(1,H) LSTM(H,H) Linear(H,1) next-value prediction on a sine wave",
    dataset="sine",
    batch_size=20,
    epochs=20,
    metric="mse",
    higher_is_better=False,
    target=TARGET_MSE,
    target_source="this suite: the validation MSE the 1-5-1 model reaches on the generated sine data",
    params={"hidden": 5, "fused": False, "embed": 0},
    variants={"small": {"hidden": 5}, "wide": {"hidden": 128}, "embed": {"hidden": 5, "embed": 32}},
    optimizer="Adam(alpha=0.01, beta1=0.9, beta2=0.999)",
    loss="mean squared error over all steps",
)
class LSTMSine(Workload):
    def check_params(self, params):
        if params["hidden"] < 1:
            raise ValueError(f"workload {self.name!r}: hidden must be >= 1, got {params['hidden']}")
        if params["embed"] == 1 or params["embed"] < 0:
            raise ValueError(f"workload {self.name!r}: embed must be 0 (off) or >= 2 levels, got {params['embed']}")

    def build_model(self, params):
        return SineLSTM(params["hidden"], params["fused"], params["embed"])

    def build_optimizer(self, params):
        return optimizers.Adam(alpha=0.01)

    def forward(self, model, x, t, params):
        loss = F.mean_squared_error(model(x), t)
        return loss, loss

    def flops_per_sample(self, params):
        hidden = params["hidden"]
        c = FlopCount()
        if not params["embed"]:  # an embedding lookup does no arithmetic
            c.linear(1, hidden, times=SEQ_LEN, first=True)
        c.linear(hidden + hidden, 4 * hidden, times=SEQ_LEN)  # input and recurrent gate products
        c.linear(hidden, 1, times=SEQ_LEN)
        return c.result()
