"""The algebra of Winograd F(m x m, r x r) for the compiled CPU convolutions (``cpu_winograd``): the
Toom-Cook matrices B^T, G and A^T, the filter transform and its gradient, the tile grid.

Plain numpy, computed once per (m, r) in exact fractions and then cast: the transforms themselves
are ``cpu_winograd``'s compiled kernels.
"""
from __future__ import annotations

import functools
from fractions import Fraction

import numpy

__all__ = ["TILE", "matrices", "tile_size", "tiles", "filter_transform", "filter_grad"]

# Output tile size m of F(m x m, r x r) by filter size r: F(4x4, 3x3) is faster than F(2x2, 3x3) at
# every ResNet-18 shape, F(4x4, 5x5) than F(2x2, 5x5) at CNN/MNIST's conv2 (36 ms against 57 for
# forward and backward at 2 threads, where the direct forward with im2col's backward took 114).
TILE = {3: 4, 5: 4}
# Interpolation points by patch size a = m + r - 1 (the point at infinity comes on top): the
# smallest in magnitude, which keep the transforms' coefficients and their rounding small.
_POINTS = {4: (0, 1, -1), 6: (0, 1, -1, 2, -2), 8: (0, 1, -1, 2, -2, Fraction(1, 2), Fraction(-1, 2))}


@functools.lru_cache(maxsize=None)
def _toom_cook(m, r):
    """``(B^T, G, A^T)`` of F(m x m, r x r) in float64, by the Toom-Cook construction (Lavin and Gray
    2016, section 4) in exact fractions: with the points ``p_j`` and ``P(x) = prod_j (x - p_j)``,
    A^T holds ``p_j^i`` (and the point at infinity's unit column), G holds ``p_j^k / P'(p_j)`` and
    B^T the coefficients of ``P(x) / (x - p_j)`` (and of ``P(x)``)."""
    a = m + r - 1
    p = [Fraction(v) for v in _POINTS[a]]
    AT = [[p[j] ** i for j in range(a - 1)] + [Fraction(int(i == m - 1))] for i in range(m)]
    G, BT = [], []
    for j in range(a - 1):
        f = Fraction(1)
        for q in p[:j] + p[j + 1:]:
            f *= p[j] - q
        G.append([p[j] ** k / f for k in range(r)])
        BT.append(_coefficients(p[:j] + p[j + 1:]) + [Fraction(0)])
    G.append([Fraction(int(k == r - 1)) for k in range(r)])
    BT.append(_coefficients(p))
    return tuple(numpy.array(v, dtype=numpy.float64) for v in (BT, G, AT))


def _coefficients(roots):
    """The coefficients, lowest power first, of ``prod (x - root)``."""
    c = [Fraction(1)]
    for root in roots:
        c = [-root * c[0]] + [c[i - 1] - root * c[i] for i in range(1, len(c))] + [c[-1]]
    return c


def matrices(m, dtype, r=3):
    """``(B^T, G, A^T)`` of F(m x m, r x r) as arrays of ``dtype``: (a, a), (a, r), (m, a), a = m + r - 1.

    Made once per (m, r, dtype) (every chunk's transforms ask for them); do not write into them."""
    return _cast(m, r, numpy.dtype(dtype).str)


@functools.lru_cache(maxsize=None)
def _cast(m, r, dtype):
    return tuple(v.astype(dtype) for v in _toom_cook(m, r))


def tile_size(r):
    """The output tile size m used for r x r filters (:data:`TILE`)."""
    return TILE[r]


def tiles(oh, ow, m):
    """Tile rows and columns covering an (oh, ow) output with m x m tiles."""
    return -(-oh // m), -(-ow // m)


def _filter_matrix(m, r, dtype, flip=False):
    """(r*r, a*a): row (i, j), column (u, v) holds G[u, i] * G[v, j] (taps reversed when ``flip``)."""
    return _filter_matrix_cached(m, r, numpy.dtype(dtype).str, flip)


@functools.lru_cache(maxsize=None)
def _filter_matrix_cached(m, r, dtype, flip):
    G = _toom_cook(m, r)[1]
    a = m + r - 1
    K = numpy.einsum("ui,vj->ijuv", G, G).reshape(r * r, a * a)
    return numpy.ascontiguousarray(K[::-1] if flip else K, dtype=dtype)


def filter_transform(W, m, flip=False):
    """``U = G g G^T`` for (O, C, r, r) filters: an (a*a, O, C) array (of every filter rotated by
    180 degrees when ``flip``: the input gradient convolves with those)."""
    o, c, r = W.shape[:3]
    K = _filter_matrix(m, r, W.dtype, flip)
    return numpy.matmul(K.T, W.reshape(o * c, r * r).T).reshape((m + r - 1) ** 2, o, c)


def filter_grad(dU, m, r, dtype):
    """``dg = G^T dU G`` for the (a*a, O, C) gradient of ``U``: the (O, C, r, r) filter gradient."""
    o, c = dU.shape[1:]
    flat = numpy.matmul(dU.reshape(-1, o * c).T, _filter_matrix(m, r, dtype).T)  # (O*C, r*r)
    return flat.astype(dtype, copy=False).reshape(o, c, r, r)
