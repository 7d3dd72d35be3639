"""Streaming selections with a delay line: audio waits until its frames' keys are final.

The key streams of amplitude, sample and control keys return a chunk's keys with the chunk;
the streaming pitch key (:class:`lactose_audio.pitch_key.PitchKeyStream`) returns a frame's
key only once it is final, ~0.1-0.2 s later (in a gap up to twice its look-ahead). So that a
chunked render can use it, :class:`AlignedSelections` holds the audio (and the keys that
are already known) until every stage's key of a frame is known, and releases whole frames with
their selections (in multiples of :data:`RELEASE_FRAMES` frames when a key lags). The delay
line holds at most the slowest key's lag plus one chunk and ``RELEASE_FRAMES`` frames (a few
seconds of audio), whatever the length of the file.

Used by :class:`lactose_audio.render.RenderStream`; the concatenated selections equal the
whole-file ones (:meth:`lactose_audio.chains.Chain.selections`) wherever the streamed keys equal
the whole-file keys: always for non-pitch keys, and for pitch keys except in gaps longer than
the look-ahead (see :class:`~lactose_audio.pitch_key.PitchKeyStream`).
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

import numpy as np

from lactose_audio.chain_spec import key_signature
from lactose_audio.frames import frame_mean
from lactose_audio.ranges import UNKEYED, select

if TYPE_CHECKING:
    from lactose_audio.chains import Chain

__all__ = ["AlignedSelections", "RELEASE_FRAMES"]

#: When a key lags (pitch), frames are released in multiples of this many frames (the last
#: call releases the rest): the render kernels then see a few distinct chunk lengths instead of
#: one per call, and compiled kernels cached per input shape (XLA) stay few. Costs at most
#: this many frames of extra delay (64 x 512 samples = 0.74 s at 44.1 kHz).
RELEASE_FRAMES = 64


class AlignedSelections:
    """Every stage's selection for the frames whose keys are all final, chunk by chunk.

    ``push(audio, final)`` feeds the audio (whole frames, except in the last call) to every key
    stream and returns ``(ready, selections)``: ``ready`` is float32 ``[n_ready]``, the oldest
    held samples whose keys are all known (whole frames of ``hop_size`` samples, or all that
    is left when ``final``), and ``selections`` has one entry per stage covering exactly
    ``ready`` (:data:`~lactose_audio.ranges.UNKEYED` for an unkeyed stage, and for a
    control-keyed one until the renderer sets it). The concatenation of the ``ready`` parts
    is the input.

    Args:
        chain: The chain (its ``hop_size`` is the frame size).
        sample_rate: Hz.
        lookahead_seconds: Look-ahead of the streaming pitch key, s (``None``: its default,
            :data:`lactose_audio.pitch_key.DEFAULT_LOOKAHEAD_SECONDS`).

    Raises:
        ParameterError: On a bad sample rate or look-ahead.
    """

    def __init__(
        self, chain: Chain, sample_rate: float, lookahead_seconds: float | None = None
    ) -> None:
        self.chain = chain
        self.hop_size = int(chain.hop_size)
        self._streams: dict[str, Any] = {}
        self._per_sample: dict[str, bool] = {}
        for stage in chain.stages:
            if not stage.signal_keyed:  # unkeyed, or a knob alone: set by the renderer
                continue
            sig = key_signature(stage.key)
            if sig in self._streams:
                continue
            if stage.key.kind == "pitch":
                self._streams[sig] = stage.key.stream(
                    sample_rate, self.hop_size, lookahead_seconds=lookahead_seconds
                )
            else:
                self._streams[sig] = stage.key.stream(sample_rate, self.hop_size)
            self._per_sample[sig] = stage.key.rate == "sample"
        self._keys = {sig: np.zeros(0, np.float32) for sig in self._streams}
        self._audio = np.zeros(0, np.float32)
        self._lags = self.lags_pitch

    @property
    def lags_pitch(self) -> bool:
        """Whether some key lags its audio (a pitch key): then audio is held back."""
        return any(stage.keyed and stage.key.kind == "pitch" for stage in self.chain.stages)

    @property
    def n_held(self) -> int:
        """Samples fed but not yet released."""
        return int(self._audio.size)

    def push(self, audio: np.ndarray, final: bool) -> tuple[np.ndarray, list[Any]]:
        """Feed ``audio`` (float32 ``[n]``); release the frames whose keys are final.

        Args:
            audio: float32 ``[n]``; whole frames unless ``final``.
            final: The take ends with this chunk: flush every key and release everything.

        Returns:
            ``(ready, selections)`` as in the class docstring.
        """
        audio = np.asarray(audio, np.float32)
        self._audio = np.concatenate([self._audio, audio]) if self._audio.size else audio
        for sig, stream in self._streams.items():
            parts = [self._keys[sig], np.asarray(stream.process(audio), np.float32)]
            if final:
                parts.append(np.asarray(stream.flush(), np.float32))
            self._keys[sig] = np.concatenate(parts)
        hop = self.hop_size
        if final:
            n_ready = self._audio.size
        else:
            n_frames = self._audio.size // hop
            for sig, values in self._keys.items():
                known = values.size // hop if self._per_sample[sig] else values.size
                n_frames = min(n_frames, known)
            if self._lags:
                n_frames -= n_frames % RELEASE_FRAMES
            n_ready = n_frames * hop
        ready, self._audio = self._audio[:n_ready], self._audio[n_ready:]
        if n_ready == 0:
            return ready, [UNKEYED] * len(self.chain.stages)
        n_frames = -(-n_ready // hop)
        keys = {}
        for sig, values in self._keys.items():
            n_values = n_ready if self._per_sample[sig] else n_frames
            keys[sig], self._keys[sig] = values[:n_values], values[n_values:]
        sels: list[Any] = []
        shared: dict[tuple, Any] = {}  # stages with one key, edges and rate: one select
        for stage in self.chain.stages:
            if not stage.signal_keyed:
                sels.append(UNKEYED)  # a control's selection comes from its value (the renderer)
                continue
            signature = stage.selection_signature()
            if signature not in shared:
                values = keys[key_signature(stage.key)]
                if stage.control_rate == "frame" and stage.key.rate == "sample":
                    values = frame_mean(values, hop)
                shared[signature] = select(values, stage.edges, stage.soft_width)
            sels.append(shared[signature])
        return ready, sels
