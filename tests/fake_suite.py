"""Source of a test-only suite file: a tiny workload that the executor tests extend with ones that
crash, abort, hang, diverge or sleep."""
import textwrap

BASE = '''
import os
import sys
import time
from pathlib import Path

import numpy as np

from benchbench.core import links as L, optimizers
from benchbench.data import Dataset
from benchbench.registry import Workload, workload

COMMON = dict(description="test", batch_size=8, epochs={epochs}, metric="accuracy", higher_is_better=True,
              target={target}, target_source="test", dataset="points")


class Tiny(Workload):
    def build_model(self, params):
        return L.Linear(4, 2)

    def build_optimizer(self, params):
        return optimizers.SGD(lr=0.1)

    def flops_per_sample(self, params):
        return {{"forward": 16.0, "train_step": 48.0}}

    def load_data(self, source, data_dir=None, seed=0, n_train=None, n_val=None):
        rng = np.random.default_rng(seed)
        n, m = n_train or 64, n_val or 16
        x = rng.standard_normal((n + m, 4)).astype(np.float32)
        t = (x[:, 0] > 0).astype(np.int32)
        return Dataset("points", (x[:n], t[:n]), (x[n:], t[n:]), "generated", "random points", 2)


@workload(name="tiny", **COMMON)
class TinyOk(Tiny):
    pass
'''


def suite_source(extra: str, target: float = 2.0, epochs: int = 2) -> str:
    """The suite file's text: the tiny workload, then ``extra`` (more workloads, dedented)."""
    return BASE.format(target=target, epochs=epochs) + "\n" + textwrap.dedent(extra)
