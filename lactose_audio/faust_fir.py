"""Frequency-sampled filter groups (``fir_eq``, plugin filters) in an exported Faust program.

The renderer runs a filter group holding a frequency-sampled filter as the frame filter
(:mod:`lactose_audio.fir`): the group's response designed by frequency sampling into a FIR of
``n_fft - hop - crossfade`` taps (4132 at 44.1 kHz, 4608 at 48 kHz with hop 512). Unkeyed, the
frame filter is that one FIR applied to the whole signal, so the program computes the same
convolution in direct form: ``y(t) = sum_k h[k] x(t - k)``, the products summed as a balanced
tree (a left fold compiles in ``n^2``). Measured with DawDreamer's Faust: 4132 taps compile in
~20 s and run ~5x real time on one core (float32).

The taps depend on the sample rate (the renderer designs them per rate): each tap is chosen at
init among the rates of ``sample_rates`` (one multiply-add per tap at run time, whatever the
number of rates); at any other rate the taps are 0 and the group is muted (metadata
``lactose_fir_sample_rates``).

Refused with :class:`~lactose_audio.errors.ExportError` (one line): a keyed group (or one
following a knob). Its frame filter changes every frame and crossfades: exact in Faust only
as per-tap reads of range tables carried along the delay line, which Faust compiles in minutes
(a 2-range 4000-tap FIR: ~90 s) and runs below real time; biquad EQ blocks (``peak``,
``lowshelf``...) key and export exactly.

No TensorFlow.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from lactose_audio.blocks.base import applied_ir_length, fft_size
from lactose_audio.errors import ExportError

DEFAULT_SAMPLE_RATES = (44100, 48000)
"""Rates an exported frequency-sampled filter carries taps for, unless told (plus the preset's)."""
SAMPLE_RATE_RANGE = (1000, 768000)
"""Host rates (Hz) an export accepts."""


def sample_rates_of(rates: Sequence[Any]) -> tuple[int, ...]:
    """``rates`` as sorted distinct integers; :class:`ExportError` if empty or out of range."""
    low, high = SAMPLE_RATE_RANGE
    if not rates or any(not low <= int(r) <= high for r in rates):
        raise ExportError(f"sample rates must be {low}..{high} Hz, got {list(rates)}")
    return tuple(sorted({int(r) for r in rates}))


def check_fir_group(stages: Sequence[Any], where: str) -> None:
    """Raise :class:`ExportError` (one line) if a frequency-sampled group cannot be exported."""
    for st in stages:
        if st.keyed or st.control is not None or st.knob is not None:
            follows = f"the {st.key.kind} key" if st.keyed else "a knob"
            raise ExportError(
                f"{where}: a frequency-sampled filter ({st.block.name}) following {follows} is "
                "not exported (its FIR changes every frame: Faust compiles that in minutes and "
                "runs it below real time); train it unkeyed, or use biquad EQ blocks "
                "(peak, lowshelf, highshelf), which key and export"
            )


def group_taps(stages: Sequence[Any], sample_rate: float, hop_size: int) -> np.ndarray:
    """An unkeyed frequency-sampled group's FIR taps at one rate, float64 ``[L]``.

    ``L`` is the applied FIR length (:func:`~lactose_audio.blocks.base.applied_ir_length`).
    """
    from lactose_audio.iir import FrameFilterGroup

    group = FrameFilterGroup(list(stages), sample_rate, hop_size)
    designed = group.range_designs([False] * len(stages))[0]
    n_fft = fft_size(hop_size, sample_rate)
    return np.fft.irfft(designed, n=n_fft)[: applied_ir_length(n_fft, hop_size)]


def _tree(terms: list[str]) -> str:
    if len(terms) == 1:
        return terms[0]
    half = len(terms) // 2
    return f"({_tree(terms[:half])} + {_tree(terms[half:])})"


def fir_group(
    name: str, stages: Sequence[Any], hop_size: int, sample_rates: Sequence[int]
) -> list[str]:
    """Faust definitions of an unkeyed frequency-sampled group: ``name(x)`` filters ``x``.

    Args:
        name: The filter's name.
        stages: The group's stages (:func:`check_fir_group`).
        hop_size: Frame hop, samples.
        sample_rates: Rates to carry taps for, Hz, sorted and distinct (:func:`sample_rates_of`).

    Returns:
        Top-level definitions (the rate flags and the filter).
    """
    rates = list(sample_rates)
    per_rate = [group_taps(stages, r, hop_size) for r in rates]
    length = max(t.size for t in per_rate)
    table = np.zeros((len(rates), length), np.float32)
    for i, taps in enumerate(per_rate):
        table[i, : taps.size] = taps
    if not np.all(np.isfinite(table)):
        raise ExportError(f"{name}: the filter group's taps are not finite")
    # the host rate's index among the rates (init-time constant): taps chosen by select2 /
    # selectn cost nothing at run time
    index = " + ".join(f"(SR == {r}) * {i}" for i, r in enumerate(rates[1:], 1)) or "0"
    flags = [
        f"{name}_rate = {index};  // {', '.join(f'{i}: {r} Hz' for i, r in enumerate(rates))}",
        f"{name}_known = {' | '.join(f'(SR == {r})' for r in rates)};",
    ]
    terms = []
    for k in range(length):
        values = [f"{v:.9g}" for v in table[:, k].tolist()]  # float32, exactly
        if len(values) == 1:
            tap = values[0]
        elif len(values) == 2:
            tap = f"select2({name}_rate, {values[0]}, {values[1]})"
        else:
            tap = f"ba.selectn({len(values)}, {name}_rate, {', '.join(values)})"
        if any(v != "0" for v in values):  # taps exactly 0 cost nothing
            terms.append(f"x@{k} * {tap}")
    lengths = ", ".join(f"{t.size} at {r} Hz" for t, r in zip(per_rate, rates, strict=True))
    return [
        f"// its FIR: {lengths} (0 at other rates: muted), designed at export from the values "
        "above (edit them and export again); each tap is picked at init for the host's rate",
        *flags,
        f"{name}(x) = {name}_known * {_tree(terms) if terms else '0.0 * x'};",
    ]


__all__ = [
    "DEFAULT_SAMPLE_RATES",
    "SAMPLE_RATE_RANGE",
    "check_fir_group",
    "fir_group",
    "group_taps",
    "sample_rates_of",
]
