"""Independent oracles shared by the DSP tests (written from the references, not our code)."""

from __future__ import annotations

import numpy as np


def rbj(kind, fc, q, gain_db, fs):
    """RBJ Audio EQ Cookbook biquad, one normalised SOS row ``[1, 6]`` for scipy.signal."""
    w0 = 2 * np.pi * fc / fs
    c, al, a = np.cos(w0), np.sin(w0) / (2 * q), 10 ** (gain_db / 40)
    if kind == "lowpass":
        b, d = [(1 - c) / 2, 1 - c, (1 - c) / 2], [1 + al, -2 * c, 1 - al]
    elif kind == "highpass":
        b, d = [(1 + c) / 2, -(1 + c), (1 + c) / 2], [1 + al, -2 * c, 1 - al]
    elif kind == "bandpass":
        b, d = [al, 0, -al], [1 + al, -2 * c, 1 - al]
    elif kind == "peak":
        b, d = [1 + al * a, -2 * c, 1 - al * a], [1 + al / a, -2 * c, 1 - al / a]
    else:
        s, k = 2 * np.sqrt(a) * al, 1 if kind == "lowshelf" else -1
        b = [a * ((a + 1) - k * (a - 1) * c + s), 2 * k * a * ((a - 1) - k * (a + 1) * c),
             a * ((a + 1) - k * (a - 1) * c - s)]  # fmt: skip
        d = [(a + 1) + k * (a - 1) * c + s, -2 * k * ((a - 1) + k * (a + 1) * c),
             (a + 1) + k * (a - 1) * c - s]  # fmt: skip
    return np.concatenate([np.array(b) / d[0], np.array(d) / d[0]])[None]


def first_order(kind, fc, gain_db, fs):
    """First-order section ``(b, a)`` for ``scipy.signal.lfilter``: ``lowpass1``/``highpass1``
    are scipy's first-order Butterworth (``gain_db`` unused); a shelf is the analog prototype (low:
    ``(s + w sqrt(G)) / (s + w / sqrt(G))``, DC gain ``G``; high: ``G (s + w / sqrt(G)) /
    (s + w sqrt(G))``, HF gain ``G``) with ``w`` prewarped to ``fc``, through
    ``scipy.signal.bilinear``."""
    import scipy.signal

    w = 2.0 * fs * np.tan(np.pi * fc / fs)
    g = 10.0 ** (gain_db / 20.0)
    r = np.sqrt(g)
    if kind in ("lowpass1", "highpass1"):
        return scipy.signal.butter(1, fc, "lowpass" if kind == "lowpass1" else "highpass", fs=fs)
    if kind == "lowshelf1":
        return scipy.signal.bilinear([1.0, w * r], [1.0, w / r], fs)
    return scipy.signal.bilinear([g, g * w / r], [1.0, w * r], fs)


def dataset_pair(name: str, seconds: float, seed: int):
    """``(dry, wet, sample_rate)`` of one of ``scripts/make_datasets.py``'s pairs (its wet made
    with pedalboard's processors, not ours), generated at ``seconds`` and ``seed``."""
    import sys
    from pathlib import Path

    scripts = str(Path(__file__).resolve().parent.parent / "scripts")
    sys.path.insert(0, scripts)
    try:
        from make_datasets import make_pair
    finally:
        sys.path.remove(scripts)
    return make_pair(name, seconds=seconds, seed=seed)
