"""Explicit SIMD vectors for the compiled CPU kernels: a numba type held in one LLVM vector register.

LLVM's loop vectoriser decides by itself which loop it vectorises, and a register-blocked kernel
(a tile of accumulators kept in registers over a long reduction) is one it does not find: it
either keeps the accumulators in memory or unrolls the tile into scalar code. Here a kernel says
what it means. ``Vec`` is a numba type whose value is an LLVM ``<lanes x float>`` (an SSA value,
so a register), and the intrinsics below load, store, splat, add, multiply(-add), divide, sum and
exponentiate them. The lanes
fill one machine vector: 64 bytes where the CPU has AVX-512, else 32 (AVX2 and NEON take a
32-byte vector as two registers), so 16 or 8 float32 lanes, 8 or 4 float64 ones.
``BENCHBENCH_SIMD_BYTES=32`` (or ``64``) sets the width instead (tests run the 32-byte kernels on
an AVX-512 machine this way); the compiled kernels are then cached apart (``cpu_compiled``).

Every intrinsic is exact IEEE arithmetic: ``vfma`` is the fused multiply-add (one rounding), and
``vsum`` adds the lanes in a fixed order (lane 0 first), so a kernel's results do not depend on
the machine's threads. Loads and stores are unaligned and unchecked: the caller keeps
``i + lanes`` within the array (the kernels size their buffers for it).
"""
from __future__ import annotations

import llvmlite.binding as llvm
import numpy
from llvmlite import ir
from numba import types
from numba.core import cgutils
from numba.extending import intrinsic, models, register_model

from ..config import switch

SIMD_SWITCH = "BENCHBENCH_SIMD_BYTES"

__all__ = ["VECTOR_BYTES", "lanes", "vlanes", "vload", "vstore", "vsplat", "vzero", "vfma", "vadd", "vsub", "vmul",
           "vdiv", "vsum", "vexp"]


def _vector_bytes() -> int:
    asked = switch(SIMD_SWITCH)
    if asked != "auto":
        return int(asked)
    features = llvm.get_host_cpu_features()
    return 64 if features.get("avx512f", False) else 32


VECTOR_BYTES = _vector_bytes()


def lanes(dtype) -> int:
    """Lanes of a vector of ``dtype`` (a numpy dtype or numba float type) on this machine."""
    size = dtype.bitwidth // 8 if isinstance(dtype, types.Float) else numpy.dtype(dtype).itemsize
    return VECTOR_BYTES // size


class Vec(types.Type):
    """A vector of ``lanes(dtype)`` floats of ``dtype`` (float32 or float64), held in registers."""

    def __init__(self, dtype):
        self.dtype = dtype
        self.count = VECTOR_BYTES // (dtype.bitwidth // 8)
        super().__init__(name=f"Vec({dtype}x{self.count})")


@register_model(Vec)
class _VecModel(models.PrimitiveModel):
    def __init__(self, dmm, fe_type):
        super().__init__(dmm, fe_type, ir.VectorType(dmm.lookup(fe_type.dtype).get_value_type(), fe_type.count))


_VECS = {}


def _vec(dtype):
    if dtype not in _VECS:
        _VECS[dtype] = Vec(dtype)
    return _VECS[dtype]


def _float_array(a):
    return isinstance(a, types.Array) and a.dtype in (types.float32, types.float64) and a.layout == "C"


def _pointer(context, builder, arrty, arr, index, vty):
    data = context.make_array(arrty)(context, builder, arr).data
    return builder.bitcast(builder.gep(data, [index]), vty.as_pointer())


@intrinsic
def vlanes(typingctx, arr):
    """The lanes of a vector of ``arr``'s dtype, as a compile-time integer."""
    if not _float_array(arr):
        return None
    count = _vec(arr.dtype).count

    def codegen(context, builder, sig, args):
        return ir.Constant(context.get_value_type(types.intp), count)

    return types.intp(arr), codegen


@intrinsic
def vload(typingctx, arr, i):
    """The vector ``arr.flat[i : i + lanes]`` of a C-contiguous float array."""
    if not (_float_array(arr) and isinstance(i, types.Integer)):
        return None
    vt = _vec(arr.dtype)

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(vt)
        index = context.cast(builder, args[1], sig.args[1], types.intp)
        return builder.load(_pointer(context, builder, sig.args[0], args[0], index, vty),
                            align=arr.dtype.bitwidth // 8)

    return vt(arr, i), codegen


@intrinsic
def vstore(typingctx, arr, i, v):
    """``arr.flat[i : i + lanes] = v``."""
    if not (_float_array(arr) and isinstance(i, types.Integer) and isinstance(v, Vec) and v.dtype == arr.dtype):
        return None

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(sig.args[2])
        index = context.cast(builder, args[1], sig.args[1], types.intp)
        builder.store(args[2], _pointer(context, builder, sig.args[0], args[0], index, vty),
                      align=arr.dtype.bitwidth // 8)
        return context.get_dummy_value()

    return types.none(arr, i, v), codegen


@intrinsic
def vsplat(typingctx, x):
    """A vector with every lane ``x`` (a float32 or float64 scalar)."""
    if x not in (types.float32, types.float64):
        return None
    vt = _vec(x)

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(vt)
        one = builder.insert_element(ir.Constant(vty, ir.Undefined), args[0], ir.Constant(ir.IntType(32), 0))
        return builder.shuffle_vector(one, ir.Constant(vty, ir.Undefined),
                                      ir.Constant(ir.VectorType(ir.IntType(32), vt.count), [0] * vt.count))

    return vt(x), codegen


@intrinsic
def vzero(typingctx, arr):
    """A vector of zeros of ``arr``'s dtype (the array only names the dtype)."""
    if not _float_array(arr):
        return None
    vt = _vec(arr.dtype)

    def codegen(context, builder, sig, args):
        vty = context.get_value_type(vt)
        return ir.Constant(vty, [ir.Constant(vty.element, 0.0)] * vt.count)

    return vt(arr), codegen


@intrinsic
def vfma(typingctx, a, b, c):
    """``a * b + c`` lane by lane, rounded once."""
    if not (isinstance(a, Vec) and a == b == c):
        return None

    def codegen(context, builder, sig, args):
        vty = args[0].type
        suffix = f"v{a.count}f{a.dtype.bitwidth}"
        fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * 3), f"llvm.fma.{suffix}")
        return builder.call(fn, list(args))

    return a(a, b, c), codegen


@intrinsic
def vadd(typingctx, a, b):
    """``a + b`` lane by lane."""
    if not (isinstance(a, Vec) and a == b):
        return None

    def codegen(context, builder, sig, args):
        return builder.fadd(args[0], args[1])

    return a(a, b), codegen


def _binary(op):
    def typer(typingctx, a, b):
        if not (isinstance(a, Vec) and a == b):
            return None

        def codegen(context, builder, sig, args):
            return getattr(builder, op)(args[0], args[1])

        return a(a, b), codegen

    return typer


vsub = intrinsic(_binary("fsub"))
vsub.__doc__ = "``a - b`` lane by lane."
vmul = intrinsic(_binary("fmul"))
vmul.__doc__ = "``a * b`` lane by lane."
vdiv = intrinsic(_binary("fdiv"))
vdiv.__doc__ = "``a / b`` lane by lane."


@intrinsic
def vsum(typingctx, a):
    """The sum of the lanes, added in order from lane 0."""
    if not isinstance(a, Vec):
        return None

    def codegen(context, builder, sig, args):
        total = builder.extract_element(args[0], ir.Constant(ir.IntType(32), 0))
        for k in range(1, a.count):
            total = builder.fadd(total, builder.extract_element(args[0], ir.Constant(ir.IntType(32), k)))
        return total

    return a.dtype(a), codegen



# -- exp --------------------------------------------------------------------------------------
# Cephes' expf and exp (S. L. Moshier): x = n ln2 + r with ln2 in two parts (Cody-Waite), |r| <=
# ln2 / 2, exp(r) by a polynomial (float32) or a rational function (float64), then times 2**n in
# two halves so that subnormal results come out right. Measured against long-double exp over a
# sweep of the range: within 1.01 ulp in float32 (numpy's own: 2.4) and 1.7 in float64 (numpy's:
# 0.7); overflow gives inf, far underflow 0, NaN stays NaN.
_EXP = {
    32: {"hi": 88.72283935546875, "lo": -104.0, "c1": 0.693359375, "c2": -2.12194440e-4,
         "p": [1.9875691500e-4, 1.3981999507e-3, 8.3334519073e-3, 4.1665795894e-2, 1.6666665459e-1, 5.0000001201e-1]},
    64: {"hi": 709.782712893384, "lo": -746.0, "c1": 6.93145751953125e-1, "c2": 1.42860682030941723212e-6,
         "p": [1.26177193074810590878e-4, 3.02994407707441961300e-2, 9.99999999999999999910e-1],
         "q": [3.00198505138664455042e-6, 2.52448340349684104192e-3, 2.27265548208155028766e-1,
               2.00000000000000000009e0]},
}


def _vconst(vty, value):
    return ir.Constant(vty, [ir.Constant(vty.element, value)] * vty.count)


def _vcall(builder, name, vty, args):
    suffix = f"v{vty.count}f{64 if isinstance(vty.element, ir.DoubleType) else 32}"
    fn = cgutils.get_or_insert_function(builder.module, ir.FunctionType(vty, [vty] * len(args)), f"llvm.{name}.{suffix}")
    return builder.call(fn, list(args))


def _polevl(builder, x, vty, coefficients):
    acc = _vconst(vty, coefficients[0])
    for c in coefficients[1:]:
        acc = _vcall(builder, "fma", vty, (acc, x, _vconst(vty, c)))
    return acc


@intrinsic
def vexp(typingctx, a):
    """``exp(a)`` lane by lane (see the constants above: within 1.01 ulp in float32, 1.7 in float64;
    inf, 0 and NaN as numpy's)."""
    if not isinstance(a, Vec):
        return None
    bits = a.dtype.bitwidth

    def codegen(context, builder, sig, args):
        k = _EXP[bits]
        x = args[0]
        vty = x.type
        ity = ir.VectorType(ir.IntType(bits), vty.count)
        xc = _vcall(builder, "maxnum", vty, (_vcall(builder, "minnum", vty, (x, _vconst(vty, k["hi"]))),
                                             _vconst(vty, k["lo"])))
        n = _vcall(builder, "rint", vty, (builder.fmul(xc, _vconst(vty, 1.4426950408889634)),))
        r = _vcall(builder, "fma", vty, (n, _vconst(vty, -k["c1"]), xc))
        r = _vcall(builder, "fma", vty, (n, _vconst(vty, -k["c2"]), r))
        rr = builder.fmul(r, r)
        if bits == 32:  # 1 + r + r^2 P(r)
            y = builder.fadd(_vcall(builder, "fma", vty, (_polevl(builder, r, vty, k["p"]), rr, r)), _vconst(vty, 1.0))
        else:  # 1 + 2 r P(r^2) / (Q(r^2) - r P(r^2))
            px = builder.fmul(r, _polevl(builder, rr, vty, k["p"]))
            q = builder.fsub(_polevl(builder, rr, vty, k["q"]), px)
            y = _vcall(builder, "fma", vty, (builder.fdiv(px, q), _vconst(vty, 2.0), _vconst(vty, 1.0)))
        # times 2**n as 2**(n // 2) * 2**(n - n // 2): both halves normal numbers
        ni = builder.fptosi(n, ity)
        half = builder.ashr(ni, ir.Constant(ity, [ir.Constant(ity.element, 1)] * vty.count))
        rest = builder.sub(ni, half)
        bias, shift = (127, 23) if bits == 32 else (1023, 52)

        def power(e):
            e = builder.add(e, ir.Constant(ity, [ir.Constant(ity.element, bias)] * vty.count))
            return builder.bitcast(builder.shl(e, ir.Constant(ity, [ir.Constant(ity.element, shift)] * vty.count)), vty)

        y = builder.fmul(builder.fmul(y, power(half)), power(rest))
        y = builder.select(builder.fcmp_ordered(">", x, _vconst(vty, k["hi"])), _vconst(vty, float("inf")), y)
        return builder.select(builder.fcmp_unordered("uno", x, x), x, y)

    return a(a), codegen
