"""``cupy.ElementwiseKernel``, ``cupy.ReductionKernel`` and ``cupy.RawKernel``, run from their source.

On every call (for each combination of argument types, once) the kernel is written out as cupy
would generate it -- a faithful equivalent: the type placeholders as typedefs, the parameters, the
per-element references, a grid-stride loop (a block tree reduction for ``ReductionKernel``) -- and
compiled with the real NVRTC for ``compute_80`` and ``compute_90``; a compile error raises
``CompileException`` with NVRTC's message. Then the kernel's own C body runs over the elements,
vectorised (``_cinterp``). Each call counts one launch. A body outside the simulated C subset is
refused (``_cinterp.Unsupported``); ``RawKernel`` sources are compiled but not executed.
"""
from __future__ import annotations

import numpy

from . import _capture, _cinterp, _launches, _nvrtc, _state
from .cuda import compiler as _compiler  # noqa: F401  (cupy.cuda.compiler.CompileException)
from ._core import _Ctx, ghost, ndarray

_CTYPE = {numpy.dtype(k): v for k, v in {
    "float32": "float", "float64": "double", "int8": "signed char", "int16": "short", "int32": "int",
    "int64": "long long", "uint8": "unsigned char", "uint16": "unsigned short", "uint32": "unsigned int",
    "uint64": "unsigned long long", "bool": "bool"}.items()}

_CHUNK = 1 << 17  # elements evaluated at once by the interpreter

_PRELUDE = """\
template <typename T_> struct CArray {
  T_* data_; ptrdiff_t size_;
  __device__ T_& operator[](ptrdiff_t k) const { return data_[k]; }
  __device__ ptrdiff_t size() const { return size_; }
};
struct CIndexer { ptrdiff_t size_; __device__ ptrdiff_t size() const { return size_; } };
"""


class _Param:
    def __init__(self, text: str, is_const: bool):
        words = text.split()
        if len(words) < 2 or len(words) > 3 or (len(words) == 3 and words[0] != "raw"):
            raise ValueError(f"Wrong parameter: {text!r}")
        self.raw = len(words) == 3
        self.type, self.name = words[-2:]
        self.is_const = is_const
        self.placeholder = len(self.type) == 1
        if not self.placeholder:
            dt = numpy.dtype(self.type)
            if dt.name != self.type:
                raise ValueError(f"Wrong type {self.type}")
            self.dtype = dt


def _params(text: str, is_const: bool) -> list[_Param]:
    return [_Param(p, is_const) for p in text.split(",") if p.strip()]


def _ctype(dt: numpy.dtype, what: str) -> str:
    ct = _CTYPE.get(numpy.dtype(dt))
    if ct is None:
        raise TypeError(f"simulated GPUs: {what}: arguments of dtype {dt} are not simulated (NVRTC here has no "
                        "cuda_fp16.h); run float16 through the unfused path")
    return ct


class _Base:
    def _bind(self, params, args, what):
        """dtype of every placeholder, from the array arguments (then the scalars)."""
        types: dict[str, numpy.dtype] = {}
        for p, a in zip(params, args):
            if p.placeholder and isinstance(a, ndarray):
                if p.type in types and types[p.type] != a.dtype:
                    raise TypeError(f"{what}: type is mismatched ({p.name}: {a.dtype}, {p.type} is {types[p.type]})")
                types[p.type] = a.dtype
        for p, a in zip(params, args):
            if p.placeholder and a is not None and not isinstance(a, ndarray) and p.type not in types:
                types[p.type] = numpy.asarray(a).dtype
        return types

    def _dtype(self, p, types, what):
        if not p.placeholder:
            return p.dtype
        if p.type not in types:
            raise TypeError(f"{what}: cannot determine the type of {p.name} ({p.type})")
        return types[p.type]

    def _compile(self, source: str) -> None:
        key = source
        if key not in self._compiled:
            _nvrtc.compile_all(source, self.name, tuple(self.options))
            self._compiled.add(key)

    def _typedefs(self, types, what):
        return "".join(f"typedef {_ctype(dt, what)} {t};\n" for t, dt in sorted(types.items()))


def _device_of(args, what):
    ctx = _Ctx(what)
    for a in args:
        ctx.take(a)
    ctx.check_current()
    return ctx.device if ctx.device is not None else _state.local.device


class ElementwiseKernel(_Base):
    """A user elementwise kernel (cupy's API): compiled by NVRTC and its body run by the simulator."""

    def __init__(self, in_params, out_params, operation, name="kernel", reduce_dims=True, preamble="",
                 no_return=False, return_tuple=False, loop_prep="", after_loop="", options=()):
        self.in_params, self.out_params = _params(in_params, True), _params(out_params, False)
        self.params = self.in_params + self.out_params
        self.operation, self.name, self.preamble = operation, name, preamble
        self.no_return, self.return_tuple = no_return, return_tuple
        self.loop_prep, self.after_loop, self.options = loop_prep, after_loop, tuple(options)
        self.nin, self.nout = len(self.in_params), len(self.out_params)
        self._compiled: set = set()
        names = [p.name for p in self.params]
        if len(set(names)) != len(names):
            raise ValueError(f"ElementwiseKernel {name}: parameter names must be unique: {names}")

    def source(self, types: dict, scalars=()) -> str:
        """The CUDA source cupy would compile for placeholder types ``types`` (name -> dtype), the
        parameters named in ``scalars`` passed by value."""
        what = f"ElementwiseKernel {self.name}"
        args, refs = [], []
        for p in self.params:
            ct = _ctype(self._dtype(p, types, what), what) if not p.placeholder else p.type
            if p.name in scalars and p.is_const and not p.raw:
                args.append(f"const {ct} {p.name}")
            elif p.raw:
                args.append(f"CArray<{ct}> {p.name}")
            elif p.is_const:
                args.append(f"const {ct}* __restrict__ _raw_{p.name}")
                refs.append(f"const {ct} &{p.name} = _raw_{p.name}[i];")
            else:
                args.append(f"{ct}* _raw_{p.name}")
                refs.append(f"{ct} &{p.name} = _raw_{p.name}[i];")
        args.append("CIndexer _ind")
        body = "\n    ".join(refs)
        return (f"{self._typedefs(types, what)}{_PRELUDE}{self.preamble}\n"
                f'extern "C" __global__ void {self.name}({", ".join(args)}) {{\n  {self.loop_prep}\n'
                f"  for (ptrdiff_t i = blockIdx.x * (ptrdiff_t)blockDim.x + threadIdx.x; i < _ind.size();"
                f" i += (ptrdiff_t)blockDim.x * gridDim.x) {{\n    {body}\n    {self.operation};\n  }}\n"
                f"  {self.after_loop}\n}}\n")

    def __call__(self, *args, size=None, block_size=None, stream=None):
        what = f"ElementwiseKernel {self.name}"
        if len(args) not in (self.nin, self.nin + self.nout):
            raise TypeError(f"{what}: wrong number of arguments ({len(args)} for {self.nin} or "
                            f"{self.nin + self.nout})")
        for a in args:
            if isinstance(a, numpy.ndarray):
                raise TypeError(f"{what}: Unsupported type {type(a)} (a host numpy array)")
        dev = _device_of([a for a in args if isinstance(a, ndarray)], what)
        args = list(args) + [None] * (self.nin + self.nout - len(args))
        types = self._bind(self.params, args, what)
        shapes = [a.shape for p, a in zip(self.params, args) if isinstance(a, ndarray) and not p.raw]
        shape = numpy.broadcast_shapes(*shapes) if shapes else None
        if shape is None:
            if size is None:
                raise ValueError(f"{what}: loop size is undecided (pass size=)")
            shape = (int(size),)
        elif size is not None:
            raise ValueError(f"{what}: size= is given although the loop size is decided by the arrays")
        for k, p in enumerate(self.out_params):
            j = self.nin + k
            if args[j] is None:
                if p.raw:
                    raise TypeError(f"{what}: a raw output ({p.name}) must be passed")
                args[j] = ndarray._adopt(numpy.zeros(shape, self._dtype(p, types, what)), dev, what)
            elif not p.raw and args[j].shape != shape:
                raise ValueError(f"{what}: output {p.name} has shape {args[j].shape}, the loop {shape}")
        for p, a in zip(self.params, args):
            if not isinstance(a, ndarray) and p.raw:
                raise TypeError(f"{what}: the raw parameter {p.name} needs a device array")
            if isinstance(a, ndarray):
                _ctype(a.dtype, what)
                if not p.placeholder and a.dtype != p.dtype and (p.raw or not p.is_const):
                    raise TypeError(f"{what}: {p.name} must be {p.dtype}, got {a.dtype}")
        self._compile(self.source(types, {p.name for p, a in zip(self.params, args) if not isinstance(a, ndarray)}))
        op = _capture.op(dev)
        if op is not None:
            op.touch(*[a._mem for a in args if isinstance(a, ndarray)])
        self._run(args, types, shape, what)
        if op is None or not op.issued(what, lambda g=ghost(args): self._run(g, types, shape, what)):
            _launches.launch(dev, 1, what)
        outs = args[self.nin:]
        if self.no_return:
            return None
        return tuple(outs) if (self.return_tuple or len(outs) > 1) else outs[0]

    def _run(self, args, types, shape, what):
        n = int(numpy.prod(shape))
        base, vtypes, readonly, decl, flat, outs = {}, {}, set(), [], {}, {}
        for p, a in zip(self.params, args):
            dt = self._dtype(p, types, what)
            if p.raw:
                if not a._a.flags.c_contiguous and not p.is_const:
                    raise ValueError(f"{what}: the raw output {p.name} must be C-contiguous")
                base[p.name] = _cinterp.Raw(numpy.ascontiguousarray(a._a), writable=not p.is_const)
                decl.append(("int", p.name))
                continue
            if isinstance(a, ndarray):
                flat[p.name] = numpy.broadcast_to(a._a, shape).reshape(-1).astype(dt)
                if not p.is_const:
                    outs[p.name] = flat[p.name]
            else:
                base[p.name] = dt.type(a)
            vtypes[p.name] = dt
            decl.append((_ctype(dt, what), p.name))
            if p.is_const:
                readonly.add(p.name)
        body, line0 = _cinterp.parse(self.operation + ";", decl, sorted(types) + ["bool", "ptrdiff_t"], what)
        # The elements in chunks, each evaluated at once: the same result (threads are independent;
        # raw writes are seen by later chunks as by later threads), with temporaries that stay small.
        for lo in range(0, max(n, 1), _CHUNK):
            hi = min(n, lo + _CHUNK)
            env = dict(base, i=numpy.arange(lo, hi, dtype=numpy.int64))
            env.update((k, v[lo:hi]) for k, v in flat.items())
            _cinterp.Interpreter(env, dict(vtypes), dict(types), hi - lo, what, line0, readonly).run(body)
            for k, v in outs.items():
                v[lo:hi] = numpy.broadcast_to(env[k], (hi - lo,))
        for p, a in zip(self.out_params, args[self.nin:]):
            if not p.raw:
                a._a[...] = outs[p.name].reshape(shape)


class ReductionKernel(_Base):
    """A user reduction kernel (cupy's API): compiled by NVRTC and its expressions run by the simulator."""

    def __init__(self, in_params, out_params, map_expr, reduce_expr, post_map_expr, identity, name="reduce_kernel",
                 reduce_type=None, reduce_dims=True, preamble="", options=()):
        self.in_params, self.out_params = _params(in_params, True), _params(out_params, False)
        if any(p.raw for p in self.in_params + self.out_params):
            raise NotImplementedError("simulated GPUs: raw parameters of a ReductionKernel are not simulated")
        self.params = self.in_params + self.out_params
        self.map_expr, self.reduce_expr, self.post_map_expr = map_expr, reduce_expr, post_map_expr
        self.identity, self.name, self.preamble, self.options = identity, name, preamble, tuple(options)
        self.reduce_type = reduce_type
        self.nin, self.nout = len(self.in_params), len(self.out_params)
        self._compiled: set = set()

    def _rtype(self, types, what):
        if self.reduce_type is None:
            return self._dtype(self.out_params[0], types, what)
        rt = self.reduce_type
        return numpy.dtype(types[rt]) if rt in types else numpy.dtype(_cinterp.C_TYPES.get(rt, rt))

    def source(self, types: dict, scalars=()) -> str:
        """The CUDA source for placeholder types ``types``, the inputs named in ``scalars`` by value
        (they are then visible in every expression, the post-map one included)."""
        what = f"ReductionKernel {self.name}"
        rt = _ctype(self._rtype(types, what), what)
        args, ins, outs = [], [], []
        for p in self.params:
            ct = p.type if p.placeholder else _ctype(p.dtype, what)
            if p.name in scalars:
                args.append(f"const {ct} {p.name}")
            elif p.is_const:
                args.append(f"const {ct}* __restrict__ _raw_{p.name}")
                ins.append(f"const {ct} &{p.name} = _raw_{p.name}[_j * _seg + _k];")
            else:
                args.append(f"{ct}* _raw_{p.name}")
                outs.append(f"{ct} &{p.name} = _raw_{p.name}[_j];")
        ident = f"_type_reduce({self.identity})" if self.identity not in (None, "") else "_type_reduce()"
        return (f"{self._typedefs(types, what)}typedef {rt} _type_reduce;\n{_PRELUDE}{self.preamble}\n"
                f'extern "C" __global__ void {self.name}({", ".join(args)}, ptrdiff_t _out_size, ptrdiff_t _seg) {{\n'
                "  extern __shared__ char _smem[];\n  _type_reduce* _sdata = (_type_reduce*)_smem;\n"
                "  for (ptrdiff_t _j = blockIdx.x; _j < _out_size; _j += gridDim.x) {\n"
                f"    _type_reduce _s = {ident};\n"
                "    for (ptrdiff_t _k = threadIdx.x; _k < _seg; _k += blockDim.x) {\n"
                f"      {' '.join(ins)}\n"
                f"      _type_reduce a = _s, b = ({self.map_expr});\n      _s = ({self.reduce_expr});\n    }}\n"
                "    _sdata[threadIdx.x] = _s;\n    __syncthreads();\n"
                "    for (unsigned int _o = blockDim.x / 2; _o > 0; _o >>= 1) {\n"
                "      if (threadIdx.x < _o) {\n        _type_reduce a = _sdata[threadIdx.x], "
                f"b = _sdata[threadIdx.x + _o];\n        _sdata[threadIdx.x] = ({self.reduce_expr});\n      }}\n"
                "      __syncthreads();\n    }\n"
                f"    if (threadIdx.x == 0) {{\n      _type_reduce a = _sdata[0];\n      {' '.join(outs)}\n"
                f"      {self.post_map_expr};\n    }}\n    __syncthreads();\n  }}\n}}\n")

    def __call__(self, *args, out=None, axis=None, keepdims=False, stream=None):
        what = f"ReductionKernel {self.name}"
        if len(args) not in (self.nin, self.nin + self.nout):
            raise TypeError(f"{what}: wrong number of arguments ({len(args)} for {self.nin} or "
                            f"{self.nin + self.nout})")
        for a in args:
            if isinstance(a, numpy.ndarray):
                raise TypeError(f"{what}: Unsupported type {type(a)} (a host numpy array)")
        if out is not None:
            if len(args) != self.nin:
                raise ValueError(f"{what}: out= and output arguments both given")
            args = args + (out,)
        dev = _device_of([a for a in args if isinstance(a, ndarray)], what)
        args = list(args) + [None] * (self.nin + self.nout - len(args))
        types = self._bind(self.params, args, what)
        arrays = [a for a in args[:self.nin] if isinstance(a, ndarray)]
        if not arrays:
            raise ValueError(f"{what}: no array to reduce")
        shape = numpy.broadcast_shapes(*[a.shape for a in arrays])
        nd = len(shape)
        axes = tuple(range(nd)) if axis is None else tuple(sorted(
            ax % nd for ax in ((axis,) if isinstance(axis, int) else axis)))
        kept = [d for d in range(nd) if d not in axes]
        out_shape = tuple(1 if d in axes else shape[d] for d in range(nd)) if keepdims else \
            tuple(shape[d] for d in kept)
        for k, p in enumerate(self.out_params):
            j = self.nin + k
            if args[j] is None:
                args[j] = ndarray._adopt(numpy.zeros(out_shape, self._dtype(p, types, what)), dev, what)
            elif args[j].shape != out_shape:
                raise ValueError(f"{what}: output {p.name} has shape {args[j].shape}, expected {out_shape}")
        self._compile(self.source(types, {p.name for p, a in zip(self.in_params, args) if not isinstance(a, ndarray)}))
        op = _capture.op(dev)
        if op is not None:
            op.touch(*[a._mem for a in args if isinstance(a, ndarray)])
        self._run(args, types, shape, kept, axes, out_shape, what)
        if op is None or not op.issued(what, lambda g=ghost(args): self._run(g, types, shape, kept, axes, out_shape,
                                                                             what)):
            _launches.launch(dev, 1, what)
        outs = args[self.nin:]
        return tuple(outs) if len(outs) > 1 else outs[0]

    def _expr(self, text, env, vtypes, types, n, what, rt, readonly=()):
        decl = [(_ctype(vtypes[k], what), k) for k in env if k in vtypes]
        body, line0 = _cinterp.parse(f"_type_reduce _r = ({text});", decl,
                                     sorted(types) + ["bool", "ptrdiff_t", "_type_reduce"], what)
        typemap = {**types, "_type_reduce": rt}
        _cinterp.Interpreter(env, dict(vtypes), typemap, n, what, line0, readonly).run(body)
        return env["_r"]

    def _run(self, args, types, shape, kept, axes, out_shape, what):
        rt = self._rtype(types, what)
        n_out = int(numpy.prod([shape[d] for d in kept])) if kept else 1
        seg = int(numpy.prod([shape[d] for d in axes])) if axes else 1
        env, vtypes, consts = {}, {}, {}
        for p, a in zip(self.in_params, args):
            dt = self._dtype(p, types, what)
            if isinstance(a, ndarray):
                v = numpy.transpose(numpy.broadcast_to(a._a, shape), kept + list(axes)).reshape(-1).astype(dt)
            else:
                v = consts[p.name] = dt.type(a)
            env[p.name], vtypes[p.name] = v, dt
        n = n_out * seg
        vals = numpy.broadcast_to(self._expr(self.map_expr, env, vtypes, types, n, what, rt,
                                             [p.name for p in self.in_params]), (n,)).reshape(n_out, seg)
        ident = None
        if self.identity not in (None, ""):
            ident = self._expr(str(self.identity), {}, {}, types, 1, what, rt)
        if seg == 0:
            if ident is None:
                raise ValueError(f"{what}: a zero-size reduction needs an identity")
            vals = numpy.full((n_out, 1), ident, rt)
        while vals.shape[1] > 1:  # a tree of pairwise reductions, each vectorised over all pairs
            half = vals.shape[1] // 2
            a, b = vals[:, :half].reshape(-1), vals[:, half:2 * half].reshape(-1)
            r = numpy.broadcast_to(self._expr(self.reduce_expr, {"a": a, "b": b, **consts},
                                              {"a": rt, "b": rt, **{k: vtypes[k] for k in consts}}, types,
                                              a.size, what, rt), (a.size,)).reshape(n_out, half)
            vals = numpy.concatenate([r, vals[:, 2 * half:]], axis=1) if vals.shape[1] % 2 else r
        ctypes_ = {k: vtypes[k] for k in consts}
        env = {"a": vals.reshape(-1).astype(rt), **consts}
        vtypes = {"a": rt, **ctypes_}
        for p, o in zip(self.out_params, args[self.nin:]):
            dt = self._dtype(p, types, what)
            env[p.name], vtypes[p.name] = o._a.reshape(-1).astype(dt), dt
        decl = [(_ctype(vtypes[k], what), k) for k in env]
        body, line0 = _cinterp.parse(self.post_map_expr + ";", decl, sorted(types) + ["bool", "ptrdiff_t"], what)
        _cinterp.Interpreter(env, vtypes, dict(types), n_out, what, line0, readonly=consts).run(body)
        for p, o in zip(self.out_params, args[self.nin:]):
            o._a[...] = numpy.broadcast_to(env[p.name], (n_out,)).reshape(out_shape)


class RawKernel(_Base):
    """A raw CUDA kernel: its source is compiled by NVRTC (``compile()``); running it is not simulated."""

    def __init__(self, code, name, options=(), backend="nvrtc", translate_cucomplex=False, enable_cooperative_groups=False,
                 jitify=False):
        self.code, self.name, self.options = code, name, tuple(options)
        self._compiled: set = set()

    def compile(self, log_stream=None):
        self._compile(self.code)

    def __call__(self, grid, block, args, shared_mem=0):
        self.compile()
        raise NotImplementedError(f"simulated GPUs: RawKernel {self.name}: its source compiles, but the simulator "
                                  "executes only ElementwiseKernel and ReductionKernel bodies")
