"""Learnable synthetic stand-ins with the shapes, dtypes and class counts of the real sets.

Each class has a template image: a few smooth gaussian blobs on a class-specific background,
with a colour per channel. A sample of class ``c`` is ``w*T[c] + (1-w)*T[r] + noise*e``,
clipped to [0, 1], where ``r`` is another random class, ``w`` is uniform in
[``min_weight``, 1] and ``e`` is uniform noise of unit standard deviation (uniform rather than
gaussian because it is several times faster to draw). The class is thus always the dominant
pattern but never the only one, so a classifier must learn the templates, and accuracy rises
from chance over training as it does on the real data.
"""
import numpy as np

SHAPES = {"mnist": ((1, 28, 28), 10), "cifar10": ((3, 32, 32), 10)}
_CHUNK = 8192


def _check(func: str, name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"{func}: {name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"{func}: {name} must be >= {minimum}, got {value}")
    return int(value)


def templates(shape: tuple[int, int, int], n_classes: int, rng: np.random.Generator, n_blobs: int = 5) -> np.ndarray:
    """One smooth template image per class, float32 in [0, 1], shaped (n_classes, C, H, W)."""
    c, h, w = shape
    yy = (np.arange(h, dtype=np.float64) + 0.5) / h
    xx = (np.arange(w, dtype=np.float64) + 0.5) / w
    centers = rng.uniform(0.15, 0.85, size=(n_classes, n_blobs, 2))
    widths = rng.uniform(0.07, 0.16, size=(n_classes, n_blobs))
    amps = rng.uniform(0.3, 1.0, size=(n_classes, c, n_blobs))
    background = rng.uniform(0.0, 0.3, size=(n_classes, c))
    gy = np.exp(-((yy[None, None, :] - centers[..., 0:1]) ** 2) / (2 * widths[..., None] ** 2))  # (K, B, H)
    gx = np.exp(-((xx[None, None, :] - centers[..., 1:2]) ** 2) / (2 * widths[..., None] ** 2))  # (K, B, W)
    blobs = np.einsum("kcb,kbh,kbw->kchw", amps, gy, gx)
    out = background[..., None, None] + blobs
    out /= out.max(axis=(1, 2, 3), keepdims=True)
    return out.astype(np.float32)


def _samples(tmpl: np.ndarray, n: int, rng: np.random.Generator, noise: float, min_weight: float):
    k = tmpl.shape[0]
    flat = tmpl.reshape(k, -1)
    t = rng.integers(0, k, size=n).astype(np.int32)
    other = (t + rng.integers(1, k, size=n)) % k
    weight = rng.uniform(min_weight, 1.0, size=n).astype(np.float32)
    # Mixing weights as a (n, k) matrix, so that the template mixture is one GEMM per chunk.
    mix = np.zeros((n, k), dtype=np.float32)
    rows = np.arange(n)
    mix[rows, t] = weight
    mix[rows, other] = 1 - weight
    x = np.empty((n, flat.shape[1]), dtype=np.float32)
    buf = np.empty((min(_CHUNK, n), flat.shape[1]), dtype=np.float32)
    half_width = np.float32(noise * np.sqrt(3.0))  # uniform noise with standard deviation `noise`
    for s in range(0, n, _CHUNK):
        e = min(s + _CHUNK, n)
        chunk, e_buf = x[s:e], buf[: e - s]
        np.matmul(mix[s:e], flat, out=chunk)
        rng.random(out=e_buf, dtype=np.float32)
        e_buf -= np.float32(0.5)
        e_buf *= 2 * half_width
        chunk += e_buf
        np.clip(chunk, 0.0, 1.0, out=chunk)
    return x.reshape(n, *tmpl.shape[1:]), t


def synthetic(name: str, n_train: int, n_val: int, seed: int = 0, noise: float = 0.3, min_weight: float = 0.55):
    """A learnable synthetic stand-in for ``name`` ("mnist" or "cifar10").

    Args:
        name: the real dataset whose shapes, dtypes and class count are copied.
        n_train: number of training samples to generate.
        n_val: number of validation samples to generate.
        seed: the generator's seed (templates, train and val are separate streams of it).
        noise: standard deviation of the per-pixel (uniform) noise.
        min_weight: the smallest weight of the true class's template in a sample (0.5 < w <= 1).

    Returns:
        ``((x_train, t_train), (x_val, t_val))``: x float32 in [0, 1] shaped (N, C, H, W), t int32.

    Example:
        >>> (x, t), _ = synthetic("mnist", n_train=8, n_val=2)
        >>> x.shape, x.dtype, t.dtype
        ((8, 1, 28, 28), dtype('float32'), dtype('int32'))
    """
    if name not in SHAPES:
        raise ValueError(f"synthetic: unknown dataset {name!r}; expected one of {', '.join(SHAPES)}")
    n_train = _check("synthetic", "n_train", n_train, 1)
    n_val = _check("synthetic", "n_val", n_val, 0)
    seed = _check("synthetic", "seed", seed, 0)
    if not noise >= 0:
        raise ValueError(f"synthetic: noise must be >= 0, got {noise!r}")
    if not 0.5 < min_weight <= 1.0:
        raise ValueError(f"synthetic: min_weight must be in (0.5, 1], got {min_weight!r}")
    shape, n_classes = SHAPES[name]
    tmpl_ss, train_ss, val_ss = np.random.SeedSequence([seed, sorted(SHAPES).index(name)]).spawn(3)
    tmpl = templates(shape, n_classes, np.random.default_rng(tmpl_ss))
    train = _samples(tmpl, n_train, np.random.default_rng(train_ss), noise, min_weight)
    val = _samples(tmpl, n_val, np.random.default_rng(val_ss), noise, min_weight)
    return train, val
