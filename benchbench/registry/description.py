"""What a workload is: the ``Workload`` class, its parameters and the ``workload`` decorator."""
from __future__ import annotations

import dataclasses
import re
from dataclasses import dataclass, field

from benchbench import core

_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


@dataclass
class Workload:
    """A benchmark workload: model, data, hyper-parameters and quality target.

    Subclasses implement :meth:`build_model`, :meth:`build_optimizer` and
    :meth:`flops_per_sample`; :meth:`forward` defaults to softmax cross-entropy
    with accuracy, and :meth:`load_data` to ``benchbench.data.load(dataset)``.

    Attributes:
        name: the workload's name, lower case (``"resnet_cifar10"``).
        description: one line about the model.
        dataset: the dataset name given to ``benchbench.data.load``.
        batch_size: the batch size (per process).
        epochs: the epochs of the full profile.
        metric: ``"accuracy"`` or ``"mse"``.
        higher_is_better: whether a larger metric is better.
        target: the quality target of the full profile (see :meth:`target_for`).
        target_source: where the target comes from.
        params: default parameters, e.g. ``{"depth": 18}``.
        variants: named presets, e.g. ``{"resnet50": {"depth": 50}}``.
        choices: allowed values of a parameter, e.g. ``{"depth": (18, 34)}``.
        optimizer: the optimizer and its settings, in words.
        loss: the loss, in words.
        source: the file (or entry point) the workload came from.
        varying_shapes: why the shapes of this workload's training step vary from step to step
            (bucketed sequence lengths, say), or None when every step has the same shapes; a
            workload that says so is never captured as a CUDA graph (``run --gpu-graphs``).

    A workload whose training step draws random numbers on the host defines
    ``step_draws(params, n) -> tuple of arrays`` and takes them as extra arguments of
    :meth:`forward` (see ``executor.step.TrainingStep.draws``), so that a captured step can
    receive new draws at every replay.
    """

    name: str
    description: str
    dataset: str
    batch_size: int
    epochs: int
    metric: str
    higher_is_better: bool
    target: float
    target_source: str
    params: dict = field(default_factory=dict)
    variants: dict = field(default_factory=dict)
    choices: dict = field(default_factory=dict)
    optimizer: str = ""
    loss: str = ""
    source: str = ""
    varying_shapes: str | None = None

    def __post_init__(self):
        where = f"workload {self.name!r}"
        if not isinstance(self.name, str) or not _NAME.match(self.name):
            raise ValueError(f"workload: name must be lower-case letters, digits and '_', got {self.name!r}")
        for attr in ("batch_size", "epochs"):
            v = getattr(self, attr)
            if isinstance(v, bool) or not isinstance(v, int) or v <= 0:
                raise ValueError(f"{where}: {attr} must be a positive int, got {v!r}")
        if not isinstance(self.higher_is_better, bool):
            raise TypeError(f"{where}: higher_is_better must be a bool, got {self.higher_is_better!r}")
        for attr in ("params", "variants", "choices"):
            if not isinstance(getattr(self, attr), dict):
                raise TypeError(f"{where}: {attr} must be a dict, got {type(getattr(self, attr)).__name__}")
        for key in self.choices:
            if key not in self.params:
                raise ValueError(f"{where}: choices names {key!r}, which is not a parameter ({sorted(self.params)})")
        for vname, vparams in self.variants.items():
            if not isinstance(vname, str) or not _NAME.match(vname):
                raise ValueError(f"{where}: variant names must be lower-case identifiers, got {vname!r}")
            if not isinstance(vparams, dict):
                raise TypeError(f"{where}: variant {vname!r} must be a dict of parameters")
            self.resolve_params(vparams)
        if self.varying_shapes is not None and (not isinstance(self.varying_shapes, str)
                                                or not self.varying_shapes.strip()):
            raise TypeError(f"{where}: varying_shapes must be None or a non-empty string saying why, "
                            f"got {self.varying_shapes!r}")
        self.resolve_params({})

    # -- parameters -----------------------------------------------------------
    def resolve_params(self, overrides):
        """The full parameter dict: defaults, then ``overrides`` converted to the defaults' types.

        Args:
            overrides: a dict of parameter values; strings are converted (``"50"`` -> 50,
                ``"true"`` -> True) to the type of the default.

        Returns:
            A new dict with every parameter.

        Raises:
            ValueError: an unknown key, a value that does not convert, or a value outside
                :attr:`choices` or rejected by :meth:`check_params`.
        """
        if not isinstance(overrides, dict):
            raise TypeError(f"workload {self.name!r}: overrides must be a dict, got {type(overrides).__name__}")
        unknown = sorted(set(overrides) - set(self.params))
        if unknown:
            valid = ", ".join(sorted(self.params)) or "none"
            raise ValueError(f"workload {self.name!r}: unknown parameter(s) {', '.join(unknown)}; valid: {valid}")
        out = dict(self.params)
        for key, value in overrides.items():
            out[key] = _convert(self.name, key, value, self.params[key])
        for key, allowed in self.choices.items():
            if out[key] not in allowed:
                raise ValueError(
                    f"workload {self.name!r}: {key}={out[key]!r} is not allowed; "
                    f"valid: {', '.join(map(str, allowed))}"
                )
        self.check_params(out)
        return out

    def check_params(self, params):
        """Raise ValueError for a bad combination of parameters (override in a suite)."""

    def label(self, params):
        """A spec string that :func:`resolve` maps back to ``params``: ``"name"``, ``"name:variant"``
        or ``"name:key=value,..."``."""
        if params == self.resolve_params({}):
            return self.name
        for vname, vparams in self.variants.items():
            if params == self.resolve_params(vparams):
                return f"{self.name}:{vname}"
        diff = {k: v for k, v in params.items() if self.params.get(k) != v}
        return f"{self.name}:" + ",".join(f"{k}={_format(v)}" for k, v in sorted(diff.items()))

    def target_for(self, params):
        """The quality target for these parameters (by default :attr:`target` for all)."""
        return self.target

    # -- model, optimizer, step ------------------------------------------------
    def build_model(self, params):
        """A new model (a ``Link``) on the CPU, its parameters initialised from the seeded generator."""
        raise NotImplementedError(f"workload {self.name!r} does not define build_model")

    def build_optimizer(self, params):
        """A new optimizer, not yet set up with a model."""
        raise NotImplementedError(f"workload {self.name!r} does not define build_optimizer")

    def adjust_optimizer(self, optimizer, epoch, epochs, params):
        """Called before each epoch (``epoch`` counts from 0 of ``epochs``): a learning-rate schedule."""

    def forward(self, model, x, t, params):
        """Loss and metric of a batch: softmax cross-entropy and accuracy by default.

        Args:
            model: the Link from :meth:`build_model`.
            x, t: the batch's inputs and labels (arrays on the model's device).
            params: the resolved parameters.

        Returns:
            ``(loss, metric)``: a scalar Variable and a Variable holding the metric.
        """
        F = core.functions
        y = model(x)
        return F.softmax_cross_entropy_and_accuracy(y, t)

    def flops_per_sample(self, params):
        """``{"forward": FLOPs, "train_step": FLOPs}`` per sample (see :class:`FlopCount`)."""
        raise NotImplementedError(f"workload {self.name!r} does not define flops_per_sample")

    # -- data -----------------------------------------------------------------
    def load_data(self, source, data_dir=None, seed=0, n_train=None, n_val=None):
        """The dataset: ``benchbench.data.load(self.dataset, ...)``.

        Args:
            source: ``"auto"``, ``"real"`` or ``"synthetic"``.
            data_dir: a folder holding the files, or None for the cache.
            seed: the seed of synthetic or generated data.
            n_train, n_val: truncate (or, for generated data, size) the splits.
        """
        from benchbench import data

        return data.load(self.dataset, source=source, data_dir=data_dir, seed=seed, n_train=n_train, n_val=n_val)


def _convert(name, key, value, default):
    """``value`` as the type of ``default``; ValueError naming the workload and key otherwise."""
    bad = ValueError(f"workload {name!r}: {key} must be {type(default).__name__}, got {value!r}")
    if isinstance(default, bool):
        if isinstance(value, str) and value.strip().lower() in _TRUE | _FALSE:
            return value.strip().lower() in _TRUE
        if isinstance(value, (bool, int)) and value in (0, 1):
            return bool(value)
        raise bad
    if isinstance(default, (int, float)):
        kind = type(default)
        if isinstance(value, bool) or not isinstance(value, (str, int, float)):
            raise bad
        try:
            number = kind(value.strip()) if isinstance(value, str) else value
        except ValueError:
            raise bad from None
        if kind(number) != number:  # 2.5 for an int, nan
            raise bad
        return kind(number)
    if isinstance(default, str) and not isinstance(value, str):
        raise bad
    return value


def _format(v):
    return str(v).lower() if isinstance(v, bool) else str(v)


def workload(**description):
    """Class decorator that describes a workload and returns its instance.

    Args:
        **description: the fields of :class:`Workload` (name, description, dataset,
            batch_size, epochs, metric, higher_is_better, target, target_source,
            params, variants, choices, optimizer, loss).

    Returns:
        A decorator turning a :class:`Workload` subclass into an instance of it.
    """
    fields = {f.name for f in dataclasses.fields(Workload)}
    unknown = sorted(set(description) - fields)
    if unknown:
        raise TypeError(f"workload: unknown field(s) {', '.join(unknown)}; valid: {', '.join(sorted(fields))}")

    def decorate(cls):
        if not (isinstance(cls, type) and issubclass(cls, Workload)):
            raise TypeError(f"workload: decorate a subclass of benchbench.registry.Workload, got {cls!r}")
        return cls(**description)

    return decorate
