"""DSP blocks: the contract and registry (base), one module per family.

Importing this package registers the built-in blocks: waveshapers (``tanh``, ``asym_clip``,
``hard_clip``, ``chebyshev``, ``mlp``), filters (``lowpass``, ``highpass``, ``bandpass``,
``peak``, ``lowshelf``, ``highshelf``; first-order ``lowpass1``, ``highpass1``, ``lowshelf1``,
``highshelf1``; ``fir_eq``) and utility (``gain``, ``dc_blocker``,
``mix``, ``invert``) and dynamics (``compressor``, stateful).
"""

from __future__ import annotations

from lactose_audio.blocks import dynamics, filters, utility, waveshapers
from lactose_audio.blocks.base import (
    DEFAULT_HOP_SIZE,
    Block,
    LinearFilter,
    design_fir,
    fft_size,
    frame_filter,
    get_block,
    ir_length,
    register_block,
    registered_blocks,
)

__all__ = [
    "DEFAULT_HOP_SIZE",
    "Block",
    "LinearFilter",
    "design_fir",
    "dynamics",
    "fft_size",
    "filters",
    "frame_filter",
    "get_block",
    "ir_length",
    "register_block",
    "registered_blocks",
    "utility",
    "waveshapers",
]
