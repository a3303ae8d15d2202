"""Evaluation metrics (no gradient): accuracy."""
from __future__ import annotations


from .. import backend, kernels
from ._checks import ARRAY_TYPES, array_of, check_float
from ..variable import Variable

__all__ = ["accuracy"]



def accuracy(y, t, ignore_label=None):
    """Fraction of samples whose highest score is the label (Chainer's ``F.accuracy``).

    Args:
        y: Variable or float array (N, C) or (N, C, d1, ...) of scores.
        t: integer array (N,) or (N, d1, ...) of labels.
        ignore_label: label value left out of both the numerator and the count
            (the accuracy is 0 when every label is ignored).

    Returns:
        Variable holding a 0-d array of ``y``'s dtype; it needs no gradient.

    Example:
        >>> acc = accuracy(model(x), t)
        >>> float(acc.array)
    """
    name = "accuracy"
    y = check_float(name, "y", y)
    t = array_of(t)
    if not isinstance(t, ARRAY_TYPES):
        raise TypeError(f"{name}: t must be an integer array, got {type(t).__name__}")
    if t.dtype.kind not in "iu":
        raise TypeError(f"{name}: t must be an integer array, got dtype {t.dtype}")
    if y.ndim < 2:
        raise ValueError(f"{name}: y must have a class axis, (N, C, ...), got shape {y.shape}")
    expected = y.shape[:1] + y.shape[2:]
    if t.shape != expected:
        raise ValueError(f"{name}: t must have shape {expected} for y of shape {y.shape}, got {t.shape}")
    xp = backend.get_array_module(y)
    if ignore_label is None and y.ndim == 2 and y.shape[0] > 0 and kernels.fusable(y):
        from ..kernels import cuda_loss

        return Variable(cuda_loss.accuracy(xp, y, t), requires_grad=False)
    hit = y.argmax(axis=1) == t
    if ignore_label is None:
        acc = hit.sum() / max(hit.size, 1)
    else:
        keep = t != ignore_label
        acc = (hit & keep).sum() / xp.maximum(keep.sum(), 1)
    return Variable(xp.asarray(acc, dtype=y.dtype), requires_grad=False)
