"""The workload registry: what a workload is, and where workloads are found.

A workload is one file in ``suites/`` (or a third-party package's entry point
in group ``benchbench.workloads``). It subclasses :class:`Workload`, writes the
model, the optimizer and the FLOP count, and describes itself through the
:func:`workload` decorator::

    from benchbench.core import functions as F, links as L, optimizers
    from benchbench.registry import FlopCount, Workload, workload

    @workload(name="mlp_mnist", description="784-1000-1000-10 ReLU MLP", dataset="mnist",
              batch_size=100, epochs=20, metric="accuracy", higher_is_better=True,
              target=0.98, target_source="Chainer MNIST example", params={"units": 1000})
    class MLP(Workload):
        def build_model(self, params): ...
        def build_optimizer(self, params): return optimizers.Adam()
        def flops_per_sample(self, params): ...

The decorator returns the Workload instance; :func:`discover` collects every
instance a suite file defines.
"""
from __future__ import annotations

import dataclasses
import difflib
import hashlib
import importlib.metadata
import importlib.util
import re
import sys
from dataclasses import dataclass, field
from pathlib import Path

from benchbench import core

ENTRY_POINT_GROUP = "benchbench.workloads"
_NAME = re.compile(r"^[a-z][a-z0-9_]*$")
_TRUE = {"1", "true", "yes", "on"}
_FALSE = {"0", "false", "no", "off"}


# --------------------------------------------------------------------------- FLOPs
class FlopCount:
    """Counts the arithmetic of one sample through a model, layer by layer.

    Only the matrix products are counted (linear layers, convolutions, the LSTM
    gate products): a multiply-add is 2 FLOPs. A training step is the forward
    pass, the weight gradient (as much work again) and the input gradient (as
    much again), except for a layer whose input is the data, which needs no
    input gradient.

    Example:
        >>> c = FlopCount()
        >>> c.linear(784, 1000, first=True); c.linear(1000, 10)
        >>> c.result()["forward"]
        1588000.0
    """

    def __init__(self):
        self.forward = 0.0
        self.backward = 0.0

    def _add(self, macs, first):
        flops = 2.0 * macs
        self.forward += flops
        self.backward += flops if first else 2.0 * flops

    def linear(self, n_in, n_out, times=1, first=False):
        """A fully connected layer ``n_in -> n_out`` applied ``times`` times per sample."""
        self._add(n_in * n_out * times, first)

    def conv2d(self, c_in, c_out, ksize, out_size, first=False):
        """A convolution with a square ``ksize`` kernel producing ``out_size`` x ``out_size`` maps."""
        self._add(c_in * ksize * ksize * c_out * out_size * out_size, first)

    def result(self):
        """``{"forward": FLOPs, "train_step": FLOPs}`` per sample."""
        return {"forward": self.forward, "train_step": self.forward + self.backward}


def conv_out_size(size, ksize, stride=1, pad=0, cover_all=False):
    """Output size of a convolution or pooling window (Chainer's ``get_conv_outsize``)."""
    if cover_all:
        return (size + 2 * pad - ksize + stride - 1) // stride + 1
    return (size + 2 * pad - ksize) // stride + 1


# --------------------------------------------------------------------------- Workload
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
        return F.softmax_cross_entropy(y, t), F.accuracy(y, t)

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


# --------------------------------------------------------------------------- discovery
@dataclass
class Registry:
    """Workloads found by :func:`discover`, and the files that failed to load.

    Attributes:
        workloads: name -> Workload.
        errors: ``(path or entry point, one-line error)`` pairs.
    """

    workloads: dict = field(default_factory=dict)
    errors: list = field(default_factory=list)

    def add(self, wl, where):
        if not wl.source:
            wl.source = where
        prior = self.workloads.get(wl.name)
        if prior is not None:
            self.errors.append(
                (where, f"duplicate workload name {wl.name!r}: defined in {prior.source} and in {wl.source}")
            )
            return
        self.workloads[wl.name] = wl


def default_suites_dir():
    """``./suites`` when the current directory has one, else the built-in ``benchbench/suites``."""
    here = Path.cwd() / "suites"
    if here.is_dir():
        return here
    return builtin_suites_dir()


def builtin_suites_dir():
    """The folder of the built-in workloads, inside the package (so a wheel carries them)."""
    return Path(__file__).resolve().parent / "suites"


def discover(suites_dir=None, entry_points=True):
    """Find every workload: the suite files of ``suites_dir`` and the entry points.

    Suite files are ``*.py`` files not starting with ``_``, loaded by path. A file
    that fails to import, or that defines no workload, is recorded in
    ``Registry.errors`` and the others still load; so is a duplicate name.

    Args:
        suites_dir: the folder of suite files; None for :func:`default_suites_dir`.
        entry_points: also load entry points of group ``benchbench.workloads``
            (each a Workload, an iterable of them, a module defining them, or a
            callable returning one of those).

    Returns:
        A :class:`Registry`.
    """
    reg = Registry()
    folder = Path(suites_dir) if suites_dir is not None else default_suites_dir()
    if suites_dir is not None and not folder.is_dir():
        raise ValueError(f"discover: suites_dir {str(folder)!r} is not a folder")
    if folder.is_dir():
        for path in sorted(folder.glob("*.py")):
            if path.name.startswith("_"):
                continue
            try:
                found = _workloads_in(_load_file(path))
                if not found:
                    raise ValueError("defines no workload (decorate a Workload subclass with @workload)")
            except (Exception, SystemExit, KeyboardInterrupt, GeneratorExit) as e:
                # a broken suite file, even one calling sys.exit() or raising KeyboardInterrupt
                # at import, must not stop the others
                reg.errors.append((str(path), _one_line(e)))
                continue
            for wl in found:
                wl.source = str(path)
                reg.add(wl, str(path))
    if entry_points:
        for ep in importlib.metadata.entry_points(group=ENTRY_POINT_GROUP):
            where = f"entry point {ep.name} = {ep.value}"
            try:
                found = _workloads_in(ep.load())
                if not found:
                    raise ValueError("provides no workload")
            except (Exception, SystemExit, KeyboardInterrupt, GeneratorExit) as e:
                reg.errors.append((where, _one_line(e)))
                continue
            for wl in found:
                reg.add(wl, where)
    return reg


def _load_file(path):
    digest = hashlib.sha1(str(path.resolve()).encode()).hexdigest()[:10]
    mod_name = f"benchbench_suite_{path.stem}_{digest}"
    spec = importlib.util.spec_from_file_location(mod_name, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"cannot load {path}")
    module = importlib.util.module_from_spec(spec)
    sys.modules[mod_name] = module  # dataclasses and pickling look modules up by name
    try:
        spec.loader.exec_module(module)
    except BaseException:
        sys.modules.pop(mod_name, None)
        raise
    return module


def _workloads_in(obj):
    """The Workloads held by a Workload, an iterable, a module or a zero-argument callable."""
    if isinstance(obj, Workload):
        return [obj]
    if isinstance(obj, type(sys)):
        found = []
        for v in vars(obj).values():
            if isinstance(v, Workload) and all(v is not w for w in found):
                found.append(v)
        return found
    if isinstance(obj, (list, tuple)):
        if not all(isinstance(v, Workload) for v in obj):
            raise TypeError("expected Workload instances")
        return list(obj)
    if callable(obj):
        return _workloads_in(obj())
    raise TypeError(f"expected a Workload, a list of them or a module, got {type(obj).__name__}")


def _one_line(e):
    if isinstance(e, SyntaxError):
        return f"SyntaxError: {e.msg} (line {e.lineno})"
    text = " ".join(str(e).split())
    return f"{type(e).__name__}: {text}" if text else type(e).__name__


# --------------------------------------------------------------------------- specs
def resolve(spec, registry):
    """The workload and parameters a spec names.

    Args:
        spec: ``"NAME"``, ``"NAME:VARIANT"``, ``"NAME:key=value,key=value"`` or
            ``"NAME:VARIANT,key=value"`` (the variant first, then overrides).
        registry: a :class:`Registry`.

    Returns:
        ``(Workload, params)``.

    Raises:
        ValueError: an unknown workload, variant or parameter, or a bad value.
    """
    if not isinstance(spec, str) or not spec.strip():
        raise ValueError(f"resolve: spec must be a non-empty string like 'NAME' or 'NAME:VARIANT', got {spec!r}")
    name, _, rest = spec.partition(":")
    name = name.strip()
    wl = registry.workloads.get(name)
    if wl is None:
        known = sorted(registry.workloads)
        near = difflib.get_close_matches(name, known, n=1)
        hint = f"; did you mean {near[0]!r}?" if near else ""
        raise ValueError(f"resolve: unknown workload {name!r}{hint} Known: {', '.join(known) or 'none'}")
    overrides = {}
    items = [s.strip() for s in rest.split(",")] if rest.strip() else []
    for i, item in enumerate(items):
        if "=" in item:
            key, _, value = item.partition("=")
            key = key.strip()
            if not key:
                raise ValueError(f"resolve: empty parameter name in {spec!r}")
            overrides[key] = value.strip()
        elif i == 0:
            if item not in wl.variants:
                valid = ", ".join(sorted(wl.variants)) or "none"
                raise ValueError(f"resolve: workload {name!r} has no variant {item!r}; variants: {valid}")
            overrides.update({k: v for k, v in wl.variants[item].items()})
        else:
            raise ValueError(f"resolve: {item!r} in {spec!r} is neither the variant (first) nor key=value")
    return wl, wl.resolve_params(overrides)


def list_rows(registry):
    """One row per workload and per variant, for ``benchbench list``.

    Returns:
        A list of dicts: workload, variant ("" for the defaults), spec, params,
        dataset, batch_size, epochs, optimizer, loss, metric, higher_is_better,
        target, target_source, flops_forward, flops_train_step, description, source.
    """
    rows = []
    for name in sorted(registry.workloads):
        wl = registry.workloads[name]
        for variant, overrides in [("", {}), *wl.variants.items()]:
            params = wl.resolve_params(overrides)
            flops = wl.flops_per_sample(params)
            rows.append({
                "workload": name,
                "variant": variant,
                "spec": f"{name}:{variant}" if variant else name,
                "params": params,
                "dataset": wl.dataset,
                "batch_size": wl.batch_size,
                "epochs": wl.epochs,
                "optimizer": wl.optimizer,
                "loss": wl.loss,
                "metric": wl.metric,
                "higher_is_better": wl.higher_is_better,
                "target": wl.target_for(params),
                "target_source": wl.target_source,
                "flops_forward": float(flops["forward"]),
                "flops_train_step": float(flops["train_step"]),
                "description": wl.description,
                "source": wl.source,
            })
    return rows
