"""Convolution on the GPU: im2col and col2im as one kernel each, the bias added while the GEMM's
(O, N*oh*ow) result is written out as NCHW (Chainer's ``im2col_gpu`` / ``col2im_gpu``).

Forward: im2col (1) + GEMM (1) + bias-and-layout (1). Backward: gy as (O, N*oh*ow) (1), the bias
gradient (1), the weight gradient GEMM over the columns kept from forward (1), the column
gradient GEMM (1) and col2im straight into the NCHW input gradient (1). The unfused path takes a
fill or copy per padded border, one add per kernel offset and a layout copy each way.
"""
from __future__ import annotations

import numpy

from .fusion import get

_GEOMETRY = ("int32 c_, int32 n, int32 h, int32 w, int32 out_h, int32 out_w, int32 kh, int32 kw, int32 sy, "
             "int32 sx, int32 ph, int32 pw, int32 dy, int32 dx")

KERNELS = {
    # col has shape (C, kh, kw, N, oh, ow); img is (N, C, H, W)
    "im2col": ("elementwise", (
        "raw T img, " + _GEOMETRY, "T col",
        """int ox = i % out_w;
ptrdiff_t r = i / out_w;
int oy = r % out_h;
r = r / out_h;
int b = r % n;
r = r / n;
int kx = r % kw;
r = r / kw;
int ky = r % kh;
ptrdiff_t c = r / kh;
int y = oy * sy - ph + ky * dy;
int x = ox * sx - pw + kx * dx;
bool inside = y >= 0 && y < h && x >= 0 && x < w;
col = inside ? img[(((ptrdiff_t)b * c_ + c) * h + y) * w + x] : (T)0""", "benchbench_im2col")),
    # img (N, C, H, W) gets the sum of every column entry that read it
    "col2im": ("elementwise", (
        "raw T col, " + _GEOMETRY, "T img",
        """int x = i % w;
ptrdiff_t r = i / w;
int y = r % h;
r = r / h;
ptrdiff_t c = r % c_;
ptrdiff_t b = r / c_;
T val = (T)0;
for (int ky = 0; ky < kh; ++ky) {
  for (int kx = 0; kx < kw; ++kx) {
    int oy_s = y + ph - ky * dy;
    int ox_s = x + pw - kx * dx;
    if (oy_s >= 0 && ox_s >= 0 && oy_s % sy == 0 && ox_s % sx == 0) {
      int oy = oy_s / sy;
      int ox = ox_s / sx;
      if (oy < out_h && ox < out_w) {
        val += col[((((c * kh + ky) * kw + kx) * n + b) * out_h + oy) * out_w + ox];
      }
    }
  }
}
img = val""", "benchbench_col2im")),
    # y (O, N*m) + b (O) -> out (N, O, m)
    "bias_to_nchw": ("elementwise", (
        "raw T y, raw T bias, int32 o, int32 n, int32 m", "T out",
        """ptrdiff_t p = i % m;
ptrdiff_t r = i / m;
ptrdiff_t k = r % o;
ptrdiff_t s = r / o;
out = y[(k * n + s) * m + p] + bias[k]""", "benchbench_bias_to_nchw")),
    "to_nchw": ("elementwise", (
        "raw T y, int32 o, int32 n, int32 m", "T out",
        """ptrdiff_t p = i % m;
ptrdiff_t r = i / m;
ptrdiff_t k = r % o;
ptrdiff_t s = r / o;
out = y[(k * n + s) * m + p]""", "benchbench_to_nchw")),
}


def _geometry(c, n, h, w, oh, ow, kh, kw, sy, sx, ph, pw, dy, dx):
    return tuple(numpy.int32(v) for v in (c, n, h, w, oh, ow, kh, kw, sy, sx, ph, pw, dy, dx))


def im2col(xp, x, kh, kw, oh, ow, sy, sx, ph, pw, dy, dx):
    """The (C*kh*kw, N*oh*ow) columns of the NCHW ``x`` (zero padding), one launch."""
    n, c, h, w = x.shape
    col = xp.empty((c, kh, kw, n, oh, ow), dtype=x.dtype)
    get(*KERNELS["im2col"])(xp.ascontiguousarray(x), *_geometry(c, n, h, w, oh, ow, kh, kw, sy, sx, ph, pw, dy, dx),
                            col)
    return col.reshape(c * kh * kw, n * oh * ow)


def col2im(xp, gcol, x_shape, kh, kw, oh, ow, sy, sx, ph, pw, dy, dx):
    """The NCHW input gradient summed from the (C*kh*kw, N*oh*ow) column gradient, one launch."""
    n, c, h, w = x_shape
    gx = xp.empty(x_shape, dtype=gcol.dtype)
    get(*KERNELS["col2im"])(gcol, *_geometry(c, n, h, w, oh, ow, kh, kw, sy, sx, ph, pw, dy, dx), gx)
    return gx


def to_nchw(xp, y, bias, o, n, oh, ow):
    """The (O, N*oh*ow) GEMM result as NCHW, plus the bias when given, one launch."""
    out = xp.empty((n, o, oh, ow), dtype=y.dtype)
    m = numpy.int32(oh * ow)
    if bias is None:
        get(*KERNELS["to_nchw"])(y, numpy.int32(o), numpy.int32(n), m, out)
    else:
        get(*KERNELS["bias_to_nchw"])(y, bias, numpy.int32(o), numpy.int32(n), m, out)
    return out
