"""A generated sine-wave sequence dataset (next-value prediction)."""
import numpy as np


def _check_int(name: str, value, minimum: int) -> int:
    if isinstance(value, bool) or not isinstance(value, (int, np.integer)):
        raise TypeError(f"sine: {name} must be an int, got {type(value).__name__}")
    if value < minimum:
        raise ValueError(f"sine: {name} must be >= {minimum}, got {value}")
    return int(value)


def _windows(rng: np.random.Generator, n: int, seq_len: int, periods: np.ndarray, noise: float):
    phase = rng.uniform(0.0, 2.0 * np.pi, size=(n, 1))
    period = periods[rng.integers(0, len(periods), size=(n, 1))]
    k = np.arange(seq_len + 1, dtype=np.float64)
    y = np.sin(2.0 * np.pi * k / period + phase)
    if noise:
        y += noise * rng.standard_normal(y.shape)
    y = y.astype(np.float32)[:, :, None]
    return y[:, :-1].copy(), y[:, 1:].copy()


def sine(n_train: int = 2000, n_val: int = 400, seq_len: int = 50, noise: float = 0.01, seed: int = 0,
         periods: tuple[float, ...] = (25.0,)):
    """Windows of a noisy sine wave and, for every step, the value that follows.

    Each sequence is ``y_k = sin(2*pi*k/P + phi) + noise*e_k`` for ``k = 0..seq_len`` with a
    random phase ``phi``, a period ``P`` drawn from ``periods`` and standard normal ``e_k``;
    ``x = y_0..y_{T-1}`` and ``t = y_1..y_T``. Training and validation sequences are drawn
    independently from the same seed (different streams).

    Args:
        n_train: number of training sequences.
        n_val: number of validation sequences.
        seq_len: steps per sequence (T).
        noise: standard deviation of the gaussian noise added to every value.
        seed: seed of the generator.
        periods: periods in steps; each sequence picks one uniformly.

    Returns:
        ``((x_train, t_train), (x_val, t_val), description)``: float32 arrays shaped
        (N, T, 1) and a one-line description of period, noise and split.

    Example:
        >>> (x, t), (xv, tv), note = sine(n_train=4, n_val=2, seq_len=10)
        >>> x.shape, bool((x[:, 1:] == t[:, :-1]).all())
        ((4, 10, 1), True)
    """
    n_train = _check_int("n_train", n_train, 1)
    n_val = _check_int("n_val", n_val, 0)
    seq_len = _check_int("seq_len", seq_len, 1)
    seed = _check_int("seed", seed, 0)
    if not isinstance(noise, (int, float, np.floating)) or isinstance(noise, bool) or not noise >= 0:
        raise ValueError(f"sine: noise must be a non-negative number, got {noise!r}")
    try:
        period_arr = np.asarray(periods, dtype=np.float64).reshape(-1)
    except (TypeError, ValueError):
        raise TypeError(f"sine: periods must be a sequence of numbers, got {periods!r}") from None
    if period_arr.size == 0 or not (period_arr > 0).all():
        raise ValueError(f"sine: periods must be positive numbers, got {periods!r}")
    train_ss, val_ss = np.random.SeedSequence(seed).spawn(2)
    train = _windows(np.random.default_rng(train_ss), n_train, seq_len, period_arr, float(noise))
    val = _windows(np.random.default_rng(val_ss), n_val, seq_len, period_arr, float(noise))
    period_text = "/".join(f"{p:g}" for p in period_arr)
    description = (f"generated sine: period {period_text} steps, random phase, gaussian noise sd {float(noise):g}, "
                   f"windows of {seq_len} steps predicting the next value, {n_train} train / {n_val} val "
                   f"sequences, seed {seed}")
    return train, val, description
