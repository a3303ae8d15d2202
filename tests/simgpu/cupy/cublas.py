"""``cupy.cublas.gemm``, as real cupy's ``cupy/cublas.py`` runs it: ``out = alpha op(a) op(b) + beta out``.

Its checks are cupy's ``assert`` statements (``AssertionError``) and ``TypeError`` for a dtype or a
``trans`` it does not take. Launches, as cupy issues them: one cuBLAS call; before it, an F-order copy
of an operand that is neither C- nor F-contiguous (or any operand with ``'H'``); an ``out`` that is
not F-contiguous, on that path, is computed in an F-order copy and copied back (two more kernels).
``alpha``/``beta`` may be device arrays (pointer mode device; the other one is then copied over from
the host, a host-to-device transfer; one of another dtype is cast, a kernel). With ``beta == 0``,
``out`` is not read, as in cuBLAS. Under a stream capture the call is recorded and replayed on the
same buffers, as every simulated kernel.
"""
from __future__ import annotations

import numpy

from . import _capture, _launches, _state
from ._core import _Ctx, ndarray

_OP_N, _OP_T, _OP_C = 0, 1, 2


def _trans_to_cublas_op(trans):
    if trans == "N" or trans == _OP_N:
        return _OP_N
    if trans == "T" or trans == _OP_T:
        return _OP_T
    if trans == "H" or trans == _OP_C:
        return _OP_C
    raise TypeError("invalid trans (actual: {})".format(trans))


def _ld_known(a, trans) -> bool:
    """cupy's ``_decide_ld_and_trans``: a leading dimension without a copy (N/T of a contiguous array)."""
    return trans in (_OP_N, _OP_T) and (a._a.flags.f_contiguous or a._a.flags.c_contiguous)


def _op(x, trans):
    return x if trans == _OP_N else (x.T if trans == _OP_T else x.T.conj())


def gemm(transa, transb, a, b, out=None, alpha=1.0, beta=0.0):
    """Computes out = alpha * op(a) @ op(b) + beta * out (cupy's signature and checks)."""
    assert a.ndim == b.ndim == 2
    assert a.dtype == b.dtype
    dtype = a.dtype.char
    if dtype not in "fdFD":
        raise TypeError("invalid dtype")
    transa, transb = _trans_to_cublas_op(transa), _trans_to_cublas_op(transb)
    if transa == _OP_N:
        m, k = a.shape
    else:
        k, m = a.shape
    if transb == _OP_N:
        n = b.shape[1]
        assert b.shape[0] == k
    else:
        n = b.shape[0]
        assert b.shape[1] == k
    ctx = _Ctx("cupy.cublas.gemm")
    ha, hb = ctx.take(a), ctx.take(b)
    if out is None:
        out = ndarray._adopt(numpy.zeros((m, n), dtype=dtype, order="F"), _state.local.device, "cupy.cublas.gemm")
        beta = 0.0
    else:
        assert out.ndim == 2
        assert out.shape == (m, n)
        assert out.dtype == dtype
    ho = ctx.take(out)
    launches = 0
    on_device = isinstance(alpha, ndarray) or isinstance(beta, ndarray)
    scalars = []  # host values, or the device arrays read when the GEMM runs (pointer mode device)
    for s in (alpha, beta):
        if isinstance(s, ndarray):
            if s.dtype != a.dtype:
                launches += 1  # cupy.array(s, dtype=dtype): a cast kernel
            scalars.append(ctx.take(s))
        else:
            if on_device:
                _capture.check_transfer("host_to_device", _state.local.device)
                _state.count("host_to_device")  # cupy.array(s): the host scalar copied to the device
            scalars.append(a.dtype.type(s))
    ctx.check_current()
    if not (_ld_known(a, transa) and _ld_known(b, transb)) or not (ho.flags.f_contiguous or ho.flags.c_contiguous):
        launches += sum(not _ld_known(x, t) for x, t in ((a, transa), (b, transb)))  # F-order copies
        if not ho.flags.f_contiguous:
            launches += 2  # out.copy(order='F'), then elementwise_copy(c, out)
    dev = ctx.device if ctx.device is not None else _state.local.device
    op = _capture.op(dev)
    if op is not None:
        op.touch(*[blk[1] for blk in ctx.blocks])

    def run():
        al, be = (a.dtype.type(numpy.asarray(v).reshape(())[()]) for v in scalars)
        r = numpy.matmul(_op(ha, transa), _op(hb, transb))
        if al != 1:
            r = al * r
        if be != 0:
            r = r + be * ho
        ho[...] = r

    run()
    if op is None or not op.issued("cupy.cublas.gemm", run, launches + 1):
        _launches.launch(dev, launches + 1, "cupy.cublas.gemm")
    return out
