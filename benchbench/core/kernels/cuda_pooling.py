"""Max and average pooling, forward and backward, one kernel each (Chainer's pooling kernels,
written with loops over the kernel offsets so that every thread runs the same loop).

Max pooling keeps, per output, the offset ``ky * kw + kx`` of the first maximum in its window, as
the unfused path does; its backward has each input element gather the gradients of the windows
whose maximum it was, in offset order (no scatter, no atomics: deterministic).
"""
from __future__ import annotations

import numpy

from .fusion import get

_GEOMETRY = "int32 h, int32 w, int32 out_h, int32 out_w, int32 kh, int32 kw, int32 sy, int32 sx, int32 ph, int32 pw"

KERNELS = {
    "max_pooling_forward": ("elementwise", (
        "raw T x, " + _GEOMETRY, "T y, S idx",
        """int ox = i % out_w;
int oy = (i / out_w) % out_h;
ptrdiff_t nc = i / ((ptrdiff_t)out_h * out_w);
T m = (T)0;
int arg = -1;
for (int ky = 0; ky < kh; ++ky) {
  for (int kx = 0; kx < kw; ++kx) {
    int yy = oy * sy - ph + ky;
    int xx = ox * sx - pw + kx;
    if (yy >= 0 && yy < h && xx >= 0 && xx < w) {
      T v = x[(nc * h + yy) * w + xx];
      if (arg < 0 || v > m) {
        m = v;
        arg = ky * kw + kx;
      }
    }
  }
}
y = m;
idx = (S)arg""", "benchbench_max_pooling_forward")),
    "max_pooling_backward": ("elementwise", (
        "raw T gy, raw S idx, " + _GEOMETRY, "T gx",
        """int xx = i % w;
int yy = (i / w) % h;
ptrdiff_t nc = i / ((ptrdiff_t)h * w);
T val = (T)0;
for (int ky = 0; ky < kh; ++ky) {
  for (int kx = 0; kx < kw; ++kx) {
    int oy_s = yy + ph - ky;
    int ox_s = xx + pw - kx;
    if (oy_s >= 0 && ox_s >= 0 && oy_s % sy == 0 && ox_s % sx == 0) {
      int oy = oy_s / sy;
      int ox = ox_s / sx;
      if (oy < out_h && ox < out_w) {
        ptrdiff_t o = (nc * out_h + oy) * out_w + ox;
        if ((int)idx[o] == ky * kw + kx) {
          val += gy[o];
        }
      }
    }
  }
}
gx = val""", "benchbench_max_pooling_backward")),
    "average_pooling_forward": ("elementwise", (
        "raw T x, T coeff, " + _GEOMETRY, "T y",
        """int ox = i % out_w;
int oy = (i / out_w) % out_h;
ptrdiff_t nc = i / ((ptrdiff_t)out_h * out_w);
T val = (T)0;
for (int ky = 0; ky < kh; ++ky) {
  for (int kx = 0; kx < kw; ++kx) {
    int yy = oy * sy - ph + ky;
    int xx = ox * sx - pw + kx;
    if (yy >= 0 && yy < h && xx >= 0 && xx < w) {
      val += x[(nc * h + yy) * w + xx];
    }
  }
}
y = val * coeff""", "benchbench_average_pooling_forward")),
    "average_pooling_backward": ("elementwise", (
        "raw T gy, T coeff, " + _GEOMETRY, "T gx",
        """int xx = i % w;
int yy = (i / w) % h;
ptrdiff_t nc = i / ((ptrdiff_t)h * w);
T val = (T)0;
for (int ky = 0; ky < kh; ++ky) {
  for (int kx = 0; kx < kw; ++kx) {
    int oy_s = yy + ph - ky;
    int ox_s = xx + pw - kx;
    if (oy_s >= 0 && ox_s >= 0 && oy_s % sy == 0 && ox_s % sx == 0) {
      int oy = oy_s / sy;
      int ox = ox_s / sx;
      if (oy < out_h && ox < out_w) {
        val += gy[(nc * out_h + oy) * out_w + ox] * coeff;
      }
    }
  }
}
gx = val""", "benchbench_average_pooling_backward")),
}


def _geometry(h, w, geometry):
    kh, kw, sy, sx, ph, pw, oh, ow = geometry
    return tuple(numpy.int32(v) for v in (h, w, oh, ow, kh, kw, sy, sx, ph, pw))


def _index_dtype(geometry):
    return numpy.int8 if geometry[0] * geometry[1] <= 127 else numpy.int32


def max_forward(xp, x, geometry):
    """``(y, idx)``: the window maxima and the offset of each window's first maximum."""
    n, c, h, w = x.shape
    oh, ow = geometry[6:]
    y = xp.empty((n, c, oh, ow), dtype=x.dtype)
    idx = xp.empty((n, c, oh, ow), dtype=_index_dtype(geometry))
    get(*KERNELS["max_pooling_forward"])(xp.ascontiguousarray(x), *_geometry(h, w, geometry), y, idx)
    return y, idx


def max_backward(xp, x_shape, dtype, gy, idx, geometry):
    gx = xp.empty(x_shape, dtype=dtype)
    get(*KERNELS["max_pooling_backward"])(xp.ascontiguousarray(gy), idx, *_geometry(*x_shape[2:], geometry), gx)
    return gx


def average_forward(xp, x, geometry):
    n, c, h, w = x.shape
    kh, kw = geometry[:2]
    y = xp.empty((n, c) + tuple(geometry[6:]), dtype=x.dtype)
    get(*KERNELS["average_pooling_forward"])(xp.ascontiguousarray(x), x.dtype.type(1.0 / (kh * kw)),
                                             *_geometry(h, w, geometry), y)
    return y


def average_backward(xp, x_shape, dtype, gy, geometry):
    kh, kw = geometry[:2]
    gx = xp.empty(x_shape, dtype=dtype)
    get(*KERNELS["average_pooling_backward"])(xp.ascontiguousarray(gy), dtype.type(1.0 / (kh * kw)),
                                              *_geometry(*x_shape[2:], geometry), gx)
    return gx
