"""Offline and streaming rendering of a chain; chunked output equals whole-file output.

The streaming processor buffers input into whole frames, carries the key detectors' state
(:class:`SelectionStream` over ``KeySpec.stream``) and the filter state, and processes every
complete frame as soon as it has one: its latency is at most ``hop_size - 1`` samples, and the
concatenation of ``process`` outputs and ``flush`` equals ``render(chain, audio)`` (to float32
rounding) for any chunk sizes. A pitch key is streamed by ``PitchKeyStream``, whose keys are
final only some time after their audio: the stream holds the audio in a delay line until then
(:mod:`lactose_audio.key_align`), and equals the whole-file render wherever the streamed key
equals the whole-file key (every frame, unless a gap between notes is longer than the
look-ahead, 2 s by default). The audio is checked for NaN/inf once per render: by
the frame-rate amplitude key when the chain has one, else by a plain scan.

Engines (both walk the chain with :func:`lactose_audio.executor.execute`):
``engine="iir"`` (the default: :class:`lactose_audio.iir.NumpyBackend`) runs the blocks' numpy
kernels and filter groups of biquads and DC blockers as the exact recursive filters their
parameters describe (time-varying state-variable filters, numba); other filter groups
(``fir_eq``, plugin filters) as the graph's frame filter in numpy. It never imports TensorFlow,
so a render starts at once. ``engine="graph"`` runs exactly the training graph
(:mod:`lactose_audio.graph`, TensorFlow). The two agree to an ESR of about 2e-5 on guitar-like
material (``tests/test_block_contract.py`` bounds it at 1e-4 for every block).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lactose_audio.errors import ParameterError
from lactose_audio.frames import as_audio, pad_to_frames
from lactose_audio.key_align import AlignedSelections
from lactose_audio.ops import dry_wet

if TYPE_CHECKING:
    from lactose_audio.chains import Chain

ENGINES = ("graph", "iir")
DEFAULT_ENGINE = "iir"


def _check_engine(engine: str) -> str:
    if engine not in ENGINES:
        raise ParameterError(f"engine must be one of {ENGINES}, got {engine!r}")
    return engine


def _check_mix(mix: float) -> float:
    if not 0.0 <= float(mix) <= 1.0:
        raise ParameterError(f"mix must be between 0 and 1, got {mix}")
    return float(mix)


def render(
    chain: Chain,
    audio: np.ndarray,
    sample_rate: float,
    *,
    block_size: int | None = None,
    mix: float = 1.0,
    engine: str = DEFAULT_ENGINE,
    controls: dict[str, float] | None = None,
) -> np.ndarray:
    """Process a mono signal with ``chain``.

    Args:
        chain: The chain.
        audio: float32 ``[n_samples]`` (the dry signal).
        sample_rate: Hz.
        block_size: ``None``: whole file at once; otherwise stream in chunks of this many
            samples (same output; bounded memory).
        mix: Wet fraction in ``[0, 1]``: ``mix * chain(audio) + (1 - mix) * audio``.
        engine: ``"graph"`` (the training graph) or ``"iir"`` (exact recursive biquads for
            filter groups, see :mod:`lactose_audio.iir`).
        controls: ``{name: value}`` of every control (knob) the chain's stages follow
            (:mod:`lactose_audio.knobs`: between captured settings the parameters are
            interpolated in their declared scaling).

    Returns:
        float32 ``[n_samples]``.

    Raises:
        ParameterError: On non-mono or non-finite audio, a bad ``mix``, ``block_size`` or
            ``engine``, or an unknown, missing or out-of-range control.
    """
    audio = as_audio(audio, finite=block_size is not None)  # else checked with the keys
    mix = _check_mix(mix)
    engine = _check_engine(engine)
    if block_size is not None:
        if int(block_size) < 1:
            raise ParameterError(f"block_size must be >= 1 samples, got {block_size}")
        stream = RenderStream(chain, sample_rate, mix=mix, engine=engine, controls=controls)
        parts = [
            stream.process(audio[i : i + block_size]) for i in range(0, audio.size, block_size)
        ]
        parts.append(stream.flush())
        return np.concatenate(parts).astype(np.float32)
    if controls or chain.controls:
        from lactose_audio.knobs import resolve

        chain = resolve(chain, controls)
    if audio.size == 0:
        return audio.copy()
    if engine == "iir":
        from lactose_audio.iir import NumpyBackend

        # The frame grid's padded copy first: the keys then read it while it is in cache
        # (a 60 s file's amplitude key took 5.4 ms reading the input from memory, 2 ms here).
        x = pad_to_frames(audio, chain.hop_size)
        sels = chain.selections(x[: audio.size], sample_rate)  # also checks that audio is finite
        wet = NumpyBackend(chain, sample_rate).process_frames(x, sels)[: audio.size]
    else:
        from lactose_audio import graph

        sels = chain.selections(audio, sample_rate)  # also checks that audio is finite
        tails = graph.initial_tails(chain, sample_rate)
        wet, _ = graph.render_frames(chain, audio, sels, sample_rate, tails)
    if mix != 1.0:
        wet = dry_wet(wet, audio, mix)
    return wet.astype(np.float32, copy=False)


class SelectionStream:
    """Every stage's selection, chunk by chunk, from carried key detectors.

    Chunks must start on the frame grid (every one but the last holds whole frames); the
    selections of the chunks, concatenated, are the whole signal's (keys are streamed bit for
    bit, :class:`lactose_audio.conditioning.KeyStream`). A chunk's selections cover exactly
    the chunk, so keys that lag their audio (pitch) are refused here;
    :class:`lactose_audio.key_align.AlignedSelections` (what :class:`RenderStream` uses)
    delays the audio instead.

    Args:
        chain: The chain.
        sample_rate: Hz.

    Raises:
        ParameterError: If a stage is keyed on pitch (its streamed key lags the audio).
    """

    def __init__(self, chain: Chain, sample_rate: float) -> None:
        self.chain = chain
        self._aligned = AlignedSelections(chain, sample_rate)
        if self._aligned.lags_pitch:
            stage = next(s for s in chain.stages if s.keyed and s.key.kind == "pitch")
            raise ParameterError(
                f"stage {stage.block.name} is keyed on pitch, whose streamed key lags the "
                "audio; use RenderStream (which delays the audio) or block_size=None"
            )

    def __call__(
        self, audio: np.ndarray, final: bool, controls: dict[int, Any] | None = None
    ) -> list[Any]:
        """Selections (per stage, ``UNKEYED`` if unkeyed) of ``audio``; ``final`` closes the key.

        ``controls``: the selections of control-keyed stages, by stage index (they come from
        control values, not from the audio).
        """
        sels = self._aligned.push(audio, final)[1]
        for index, sel in (controls or {}).items():
            sels[index] = sel
        return sels


class RenderStream:
    """Chunk-by-chunk rendering with carried key state, frame buffer and filter tails.

    A pitch-keyed chain is streamed too: the audio waits in a delay line until its frames'
    pitch keys are final (:class:`lactose_audio.key_align.AlignedSelections`), so ``process``
    returns the output behind its input (the key's ~0.1-0.2 s, in a long gap up to
    ``2 * lookahead_seconds``, plus up to ``key_align.RELEASE_FRAMES`` frames), and ``flush``
    the rest; the concatenation still has the input's length.

    Controls (knobs) are automatable: :meth:`set` changes them between chunks; the parameters
    of the stages that follow them move to the new value over one frame (pointwise stages
    along a per-sample ramp, filters by their coefficient crossfade), so a step of a knob
    does not click (:func:`lactose_audio.knobs.ramp_chain`).

    Args:
        chain: The chain (its ``hop_size`` is the frame size).
        sample_rate: Hz.
        mix: Wet fraction in ``[0, 1]``.
        engine: ``"graph"`` or ``"iir"`` (see :func:`render`).
        lookahead_seconds: Look-ahead of a streamed pitch key, s (``None``: 2 s). Gaps between
            notes longer than this are keyed by the held pitch instead of the next note's.
        controls: ``{name: value}`` of every control the chain's stages follow.

    Raises:
        ParameterError: On a bad ``engine``, ``mix`` or ``lookahead_seconds``, or on an
            unknown, missing or out-of-range control.
    """

    def __init__(
        self,
        chain: Chain,
        sample_rate: float,
        mix: float = 1.0,
        engine: str = DEFAULT_ENGINE,
        lookahead_seconds: float | None = None,
        controls: dict[str, float] | None = None,
    ) -> None:
        self.sample_rate = float(sample_rate)
        self.mix = _check_mix(mix)
        self.engine = _check_engine(engine)
        self.source = chain
        self.controls: dict[str, float] = {}
        self._ramp_pairs: list[Any] = []
        self._ramping = False
        if controls or chain.controls:
            from lactose_audio.knobs import check_controls, ramp_chain

            self.controls = check_controls(chain, controls)
            chain, self._ramp_pairs = ramp_chain(chain, self.controls)
        self.chain = chain
        self._buffer = np.zeros(0, np.float32)
        self._iir = None
        self._tails = None
        if self.engine == "iir":
            from lactose_audio.iir import NumpyBackend

            self._iir = NumpyBackend(chain, self.sample_rate)
        else:
            from lactose_audio import graph

            self._tails = graph.initial_tails(chain, self.sample_rate)
        self._selections = AlignedSelections(chain, self.sample_rate, lookahead_seconds)

    def set(self, **controls: float) -> None:
        """Change controls from the next frame on (ramped over one frame: no click).

        Raises:
            ParameterError: On an unknown or out-of-range control.
        """
        from lactose_audio.knobs import check_controls, set_ramp_rows

        self.controls = check_controls(self.source, {**self.controls, **controls})
        set_ramp_rows(self._ramp_pairs, self.controls, keep=self._ramping)
        self._ramping = True

    def _control_selections(self, n_samples: int, sels: list[Any]) -> dict[int, Any]:
        from lactose_audio.knobs import ramp_selection

        out = {}
        hop = self.chain.hop_size
        for index, stage in enumerate(self.chain.stages):
            if stage.control is not None:  # a 2-D bank's signal-key selection within its rows
                out[index] = ramp_selection(stage, n_samples, hop, self._ramping, sels[index])
        self._ramping = False
        return out

    def _process(self, audio: np.ndarray, final: bool) -> np.ndarray:
        audio, sels = self._selections.push(audio, final)
        if audio.size == 0:
            return np.zeros(0, np.float32)
        if self._ramp_pairs:
            for index, sel in self._control_selections(audio.size, sels).items():
                sels[index] = sel
        if self._iir is not None:
            wet = self._iir.process(audio, sels)
        else:
            from lactose_audio import graph

            wet, self._tails = graph.render_frames(
                self.chain, audio, sels, self.sample_rate, self._tails
            )
        if self.mix != 1.0:
            wet = dry_wet(wet, audio, self.mix)
        return wet.astype(np.float32, copy=False)

    def process(self, chunk: np.ndarray) -> np.ndarray:
        """Feed ``chunk`` (float32 ``[n]``); returns the output of every completed frame."""
        chunk = as_audio(chunk)
        self._buffer = np.concatenate([self._buffer, chunk]) if self._buffer.size else chunk
        hop = self.chain.hop_size
        n_full = (self._buffer.size // hop) * hop
        if n_full == 0:
            return np.zeros(0, np.float32)
        ready, self._buffer = self._buffer[:n_full], self._buffer[n_full:]
        return self._process(ready, final=False)

    def flush(self) -> np.ndarray:
        """Process the last partial frame and any audio held for its keys; returns its output
        (float32 ``[n_left]``)."""
        rest, self._buffer = self._buffer, np.zeros(0, np.float32)
        return self._process(rest, final=True)


def stream(
    chain: Chain,
    sample_rate: float,
    mix: float = 1.0,
    engine: str = DEFAULT_ENGINE,
    lookahead_seconds: float | None = None,
    controls: dict[str, float] | None = None,
) -> RenderStream:
    """``RenderStream(chain, sample_rate, mix, engine, lookahead_seconds, controls)``."""
    return RenderStream(chain, sample_rate, mix, engine, lookahead_seconds, controls)


__all__ = ["ENGINES", "RenderStream", "SelectionStream", "render", "stream"]
