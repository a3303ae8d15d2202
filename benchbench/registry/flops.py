"""FLOP counting for workloads: ``FlopCount`` (multiply-accumulates of linear and
convolution layers) and ``conv_out_size`` (a window's output size)."""
from __future__ import annotations


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
