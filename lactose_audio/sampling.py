"""Training data as the fitter sees it: tracks, segments, full batches and coverage.

A *track* is one dry/wet pair with its selections computed once over the whole dry signal and
split by time: ``validation_fraction`` of it is held out in blocks spread over the whole take
(:func:`validation_blocks`), so the validation ESR that ranks candidates and keeps the best
parameters hears the take's levels, notes and instruments, not only its end. Training reads
*segments*:
``context + segment`` dry samples starting on the chain's frame grid, the first ``context``
of which only warm the filters' state, and the ``segment`` wet samples they predict.

- :class:`SegmentSampler` draws random batches for the stochastic (Adam) phase, with
  probability proportional to the segment's RMS, so near-silent segments (whose ESR is a ratio
  of two tiny numbers) do not dominate while quiet passages keep their share.
- :func:`full_batch` lays fixed segments over the whole training part (every segment that is
  not silent, thinned evenly over the levels to at most ``max_segments``) for the
  deterministic second-order refinement (:mod:`lactose_audio.refine`): its loss is the
  training ESR itself, not a noisy estimate of it.

numpy only: no TensorFlow here.
"""

from __future__ import annotations

from collections.abc import Sequence
from dataclasses import dataclass
from typing import Any

import numpy as np

from lactose_audio.errors import ParameterError
from lactose_audio.ranges.edges import UNKEYED


@dataclass
class Track:
    """One pair prepared for training.

    Attributes:
        dry: float32 ``[n_samples]``.
        wet: float32 ``[n_samples]``, aligned to ``dry``.
        selections: per chain stage, from ``chain.selections(dry)``.
        validation: the held-out ``(begin, end)`` sample blocks (:func:`validation_blocks`).
        n_samples: length of the pair.
        controls: a knob capture's settings (``{name: value}``), else ``None``.
    """

    dry: np.ndarray
    wet: np.ndarray
    selections: list[Any]
    validation: tuple[tuple[int, int], ...]
    n_samples: int
    controls: dict[str, float] | None = None

    def training_mask(self, length: int, step: int = 1) -> np.ndarray:
        """bool ``[length]``: item ``i`` (samples ``[i*step, (i+1)*step)``) is training audio,
        i.e. overlaps no validation block. ``step`` 1 for samples, the hop for frames."""
        mask = np.ones(length, bool)
        for begin, end in self.validation:
            mask[min(begin // step, length) : min(-(-end // step), length)] = False
        return mask


@dataclass
class Batch:
    """Segments stacked for one graph call.

    Attributes:
        dry: float32 ``[n_segments, context + segment]``.
        wet: float32 ``[n_segments, segment]``.
        selections: per stage ``UNKEYED`` or a selection of arrays ``[n_segments, T]``.
    """

    dry: np.ndarray
    wet: np.ndarray
    selections: list[Any]

    @property
    def n_segments(self) -> int:
        return int(self.dry.shape[0])


#: The held-out share of a pair is spread over it in blocks of at least this many seconds ...
VALIDATION_BLOCK_SECONDS = 0.25
#: ... and at most this many blocks (long files: longer blocks).
MAX_VALIDATION_BLOCKS = 16


def validation_blocks(
    n_samples: int, validation_fraction: float, hop_size: int, sample_rate: float
) -> tuple[tuple[int, int], ...]:
    """The held-out parts of a pair: the one train/validation split of the fitter.

    ``validation_fraction`` of the pair is held out in ``k`` equal blocks on the frame grid,
    one at the end of each of ``k`` equal stripes of the pair (the last block ends the pair):
    the validation audio samples the whole take (a take that gets louder, or changes
    instrument, is validated on all of it), and each block is long enough that its filter
    context and its notes' decays are whole. ``k`` is the held-out length over
    :data:`VALIDATION_BLOCK_SECONDS`, between 1 (the end of the take, for short pairs) and
    :data:`MAX_VALIDATION_BLOCKS`.

    Args:
        n_samples: length of the pair.
        validation_fraction: share held out, in ``(0, 0.9)``.
        hop_size: the chain's frame hop; blocks begin on the frame grid.
        sample_rate: Hz.

    Returns:
        ``((begin, end), ...)`` in time order; the last ``end`` is ``n_samples``.
    """
    held = max(int(round(n_samples * validation_fraction / hop_size)), 1) * hop_size
    shortest = max(int(VALIDATION_BLOCK_SECONDS * sample_rate), hop_size)
    k = int(min(max(held // shortest, 1), MAX_VALIDATION_BLOCKS))
    length = max((held // k) // hop_size, 1) * hop_size
    blocks = []
    for j in range(k):
        stripe_end = n_samples if j == k - 1 else (j + 1) * n_samples // k
        begin = max((stripe_end - length) // hop_size * hop_size, 0)
        end = n_samples if j == k - 1 else begin + length
        blocks.append((begin, end))
    return tuple(blocks)


def training_parts(n_samples: int, blocks: Sequence[tuple[int, int]]) -> list[tuple[int, int]]:
    """``(begin, end)`` of the training audio: what ``blocks`` leave of ``[0, n_samples)``."""
    parts, at = [], 0
    for begin, end in blocks:
        if begin > at:
            parts.append((at, begin))
        at = max(at, end)
    if at < n_samples:
        parts.append((at, n_samples))
    return parts


def pick(audio: np.ndarray, parts: Sequence[tuple[int, int]]) -> np.ndarray:
    """``audio`` restricted to ``parts`` (``(begin, end)`` sample ranges), concatenated."""
    return np.concatenate([audio[b:e] for b, e in parts]) if parts else audio[:0]


def prepare_tracks(
    pairs: Sequence[Any], chain: Any, validation_fraction: float, sample_rate: float
) -> list[Track]:
    """Tracks of ``pairs`` for ``chain`` (selections over the whole dry signal, split by time)."""
    hop = chain.hop_size
    return [
        Track(
            dry=pair.dry,
            wet=pair.wet,
            selections=chain.selections(
                pair.dry, pair.sample_rate, getattr(pair, "controls", None)
            ),
            validation=validation_blocks(pair.n_samples, validation_fraction, hop, sample_rate),
            n_samples=pair.n_samples,
            controls=getattr(pair, "controls", None),
        )
        for pair in pairs
    ]


#: A validation batch holds at most this many samples with context (memory per graph call).
VALIDATION_BATCH_SAMPLES = 1 << 19


@dataclass
class ValidationBatch:
    """Held-out pieces stacked for one graph call, laid out like the training segments (the
    fit's one traced graph evaluates them).

    Attributes:
        dry: float32 ``[n_pieces, context + piece]`` (zeros outside the pair).
        wet: float32 ``[n_pieces, piece]`` (zeros where ``mask`` is 0).
        mask: float32 ``[n_pieces, piece]``: 1 on held-out samples, 0 on padding.
        selections: per stage ``UNKEYED`` or a selection of arrays ``[n_pieces, T]``.
    """

    dry: np.ndarray
    wet: np.ndarray
    mask: np.ndarray
    selections: list[Any]


def _window(array: np.ndarray, begin: int, end: int, edge: bool) -> np.ndarray:
    """``array[..., begin:end]`` where indices outside ``[0, T)`` read zeros (``edge``: the
    nearest value, for selections)."""
    n = array.shape[-1]
    inside = array[..., min(max(begin, 0), n) : max(min(end, n), 0)]
    before = min(max(-begin, 0), end - begin)
    after = end - begin - before - inside.shape[-1]
    if not (before or after):
        return inside
    pad = [(0, 0)] * (array.ndim - 1) + [(before, after)]
    if edge and inside.shape[-1]:
        return np.pad(inside, pad, mode="edge")
    return np.pad(inside, pad)


def validation_batches(
    chain: Any, tracks: Sequence[Track], context: int, row0: bool, piece: int
) -> list[ValidationBatch]:
    """Every held-out block of ``tracks`` as batches of pieces with their context.

    A block is cut into pieces of ``piece`` samples (the training segment's length, so the
    pieces have the training segments' layout); each piece is read with the ``context`` dry
    samples before it (silence before the pair's start); a block's last piece is padded with
    silence after it and masked (the chain is causal: padding after a sample cannot change
    it). Batches hold at most :data:`VALIDATION_BATCH_SAMPLES` samples. The validation ESR is
    ``sum(mask * (wet - pred)**2) / sum(wet**2)`` over the batches: the held-out blocks'
    ESR, each block run after its context.

    Args:
        chain: the chain (hop size, key control rates).
        tracks: from :func:`prepare_tracks`.
        context: warm-up samples before each piece (a multiple of the hop).
        row0: every keyed stage uses its row 0 (unconditioned phase).
        piece: samples per piece (a multiple of the hop).
    """
    hop = chain.hop_size
    n = context + piece
    rows = []
    for track in tracks:
        for first, last in track.validation:
            for begin in range(first, last, piece):
                start, valid = begin - context, min(piece, last - begin)
                sels = []
                for stage, sel in zip(chain.stages, track.selections, strict=True):
                    if sel is UNKEYED:
                        sels.append(UNKEYED)
                        continue
                    step = 1 if stage.control_rate == "sample" else hop
                    lo, hi = start // step, start // step + -(-n // step)
                    sels.append(type(sel)(*(_window(np.asarray(a), lo, hi, True) for a in sel)))
                if row0:
                    sels = unconditioned(sels)
                wet = np.zeros(piece, np.float32)
                wet[:valid] = track.wet[begin : begin + valid]
                mask = np.zeros(piece, np.float32)
                mask[:valid] = 1.0
                rows.append((_window(track.dry, start, start + n, False), wet, mask, sels))
    per_batch = max(1, VALIDATION_BATCH_SAMPLES // n)
    return [
        ValidationBatch(
            np.stack([r[0] for r in rows[i : i + per_batch]]),
            np.stack([r[1] for r in rows[i : i + per_batch]]),
            np.stack([r[2] for r in rows[i : i + per_batch]]),
            stack([r[3] for r in rows[i : i + per_batch]]),
        )
        for i in range(0, len(rows), per_batch)
    ]


def flat_selections(selections: Sequence[Any]) -> list[np.ndarray]:
    """The keyed stages' selection arrays, in stage order (the traced graph's argument:
    :func:`lactose_audio.refine.value_and_gradient`)."""
    return [np.asarray(a) for s in selections if s is not UNKEYED for a in s]


def context_samples(chain: Any, sample_rate: int) -> int:
    """Warm-up samples before each segment: the filters' impulse response, in whole frames."""
    from lactose_audio.blocks.base import ir_length

    hop = chain.hop_size
    return -(-ir_length(sample_rate) // hop) * hop


def hop_energy(audio: np.ndarray, hop_size: int, block_hops: int = 4096) -> np.ndarray:
    """``sum(audio[h*hop:(h+1)*hop]**2)`` per whole hop, float64 ``[n_samples // hop]``.

    Computed ``block_hops`` hops at a time, so the float64 copy is bounded for long files.
    """
    n_hops = audio.shape[0] // hop_size
    out = np.empty(n_hops, np.float64)
    for h in range(0, n_hops, block_hops):
        part = audio[h * hop_size : min(h + block_hops, n_hops) * hop_size].astype(np.float64)
        out[h : h + part.size // hop_size] = np.sum(part.reshape(-1, hop_size) ** 2, axis=1)
    return out


def unconditioned(selections: Sequence[Any]) -> list[Any]:
    """Selections that pick row 0 everywhere (the unconditioned phase), same shapes."""
    return [s if s is UNKEYED else type(s)(*(np.zeros_like(a) for a in s)) for s in selections]


def stack(per_segment: Sequence[Sequence[Any]]) -> list[Any]:
    """Per-segment selection lists -> one list of stacked selections ``[n_segments, T]``."""
    stacked = []
    for per_stage in zip(*per_segment, strict=True):
        if per_stage[0] is UNKEYED:
            stacked.append(UNKEYED)
        else:
            arrays = (np.stack(a) for a in zip(*per_stage, strict=True))
            stacked.append(type(per_stage[0])(*arrays))
    return stacked


class SegmentSampler:
    """Random RMS-weighted segments of the training parts (seeded by the caller's ``rng``).

    Args:
        chain: the chain (hop size, ``slice_selections``).
        tracks: from :func:`prepare_tracks`.
        context: warm-up samples before each segment (a multiple of the hop).
        segment: loss samples per segment (a multiple of the hop).

    Raises:
        ParameterError: if a track's training part is shorter than one segment with context.
    """

    def __init__(self, chain: Any, tracks: list[Track], context: int, segment: int) -> None:
        self.chain, self.tracks = chain, tracks
        self.context, self.segment, self.hop = context, segment, chain.hop_size
        n = context + segment
        self.weights = []
        for track in tracks:
            n_starts = (track.n_samples - n) // self.hop + 1
            # Energy per hop, then cumulative over hops: starts and segments are whole hops,
            # so a long pair needs one float64 per hop, not one per sample.
            n_hops = track.n_samples // self.hop
            blocks = hop_energy(track.wet[: n_hops * self.hop], self.hop)
            energy = np.concatenate([[0.0], np.cumsum(blocks)])
            held = np.concatenate([[0], np.cumsum(~track.training_mask(n_hops, self.hop))])
            starts = np.arange(max(n_starts, 0))
            loss_begin, loss_end = starts + context // self.hop, starts + n // self.hop
            rms = np.sqrt(np.maximum(energy[loss_end] - energy[loss_begin], 0) / segment)
            # a segment's loss samples are training audio only (its context may be anything:
            # it warms the filters with dry audio, no wet is read there)
            usable = held[loss_end] == held[loss_begin]
            if not usable.any():
                raise ParameterError("a training part is shorter than one segment with context")
            self.weights.append(np.where(usable, rms + 1e-3 * float(rms.max() or 1.0), 0.0))
        totals = np.array([w.sum() for w in self.weights])
        self.track_p = totals / totals.sum()
        self.start_p = [w / w.sum() for w in self.weights]

    def segment_at(self, track: Track, start: int, row0: bool) -> tuple[Any, Any, list[Any]]:
        """``(dry, wet, selections)`` of the segment whose context starts at ``start``."""
        n = self.context + self.segment
        sels = self.chain.slice_selections(track.selections, start, n)
        if row0:
            sels = unconditioned(sels)
        return track.dry[start : start + n], track.wet[start + self.context : start + n], sels

    def batch(self, rng: np.random.Generator, batch_size: int, row0: bool) -> Batch:
        """``batch_size`` random segments; ``row0``: every keyed stage uses its row 0."""
        dry, wet, sels = [], [], []
        for _ in range(batch_size):
            index = int(rng.choice(len(self.tracks), p=self.track_p))
            start = int(rng.choice(len(self.start_p[index]), p=self.start_p[index])) * self.hop
            d, w, s = self.segment_at(self.tracks[index], start, row0)
            dry.append(d)
            wet.append(w)
            sels.append(s)
        return Batch(np.stack(dry), np.stack(wet), stack(sels))

    def full_batch(self, max_segments: int, row0: bool) -> Batch:
        """Fixed segments tiling every training part (see :func:`full_batch`)."""
        return full_batch(self, max_segments, row0)


def full_batch(sampler: SegmentSampler, max_segments: int, row0: bool) -> Batch:
    """Non-overlapping segments tiling every training part, deterministic.

    Segments whose RMS is below 1 % of the loudest one are dropped (they carry no ESR), the
    rest are thinned to at most ``max_segments`` evenly over their ranks by RMS (quietest to
    loudest: every level of the take is in the batch), kept in time order.

    Args:
        sampler: gives the tracks, segment geometry and weights.
        max_segments: upper bound on the number of segments (memory and time per evaluation).
        row0: every keyed stage uses its row 0 (unconditioned phase).

    Returns:
        :class:`Batch` with the segments in track and time order.
    """
    stride = sampler.segment // sampler.hop
    candidates = []
    for index, weights in enumerate(sampler.weights):
        k = 0
        while k < len(weights):  # tile each training part from its start
            if weights[k] > 0.0:
                candidates.append((index, k, float(weights[k])))
                k += stride
            else:
                k += 1
    loudest = max(w for _, _, w in candidates)
    kept = [(i, k, w) for i, k, w in candidates if w >= 0.01 * loudest]
    if len(kept) > max_segments:
        # Stratified by level: evenly spaced ranks from the quietest to the loudest segment,
        # so a small batch still holds the loud passages where a drive clips (and the quiet
        # ones where it does not), whatever the take's order of playing.
        by_level = sorted(range(len(kept)), key=lambda j: (kept[j][2], j))
        picks = np.linspace(0, len(kept) - 1, max_segments).round().astype(int)
        kept = [kept[j] for j in sorted(by_level[p] for p in picks)]
    dry, wet, sels = [], [], []
    for index, k, _ in kept:
        d, w, s = sampler.segment_at(sampler.tracks[index], k * sampler.hop, row0)
        dry.append(d)
        wet.append(w)
        sels.append(s)
    return Batch(np.stack(dry), np.stack(wet), stack(sels))


def coverage_counts(chain: Any, tracks: list[Track], min_fraction: float) -> list[dict[str, Any]]:
    """Per stage: how many training samples/frames each range received, and flags.

    A keyed stage's range is flagged when it received less than ``min_fraction`` of the
    stage's training samples (frames): it keeps the unconditioned fit. A 2-D bank (a knob and
    a key) counts each setting's rows against that setting's own samples, as a fit of that
    capture alone would.
    """
    from lactose_audio.ranges import coverage

    out = []
    for index, stage in enumerate(chain.stages):
        counts = np.zeros(stage.n_ranges, np.int64)
        step = 1 if stage.control_rate == "sample" else chain.hop_size
        for track in tracks:
            sel = track.selections[index]
            if sel is UNKEYED:
                counts[0] += int(track.training_mask(track.n_samples // step, step).sum())
                continue
            lower = np.asarray(sel.lower)
            counts += coverage(lower[track.training_mask(lower.shape[0], step)], stage.n_ranges)
        block = stage.edges.n_ranges if stage.knob is not None else stage.n_ranges
        totals = np.repeat(np.maximum(counts.reshape(-1, block).sum(axis=1), 1), block)
        flagged = [bool(c < min_fraction * t) for c, t in zip(counts, totals, strict=True)]
        flagged = flagged if stage.keyed else [False]
        out.append({"counts": [int(c) for c in counts], "flagged": flagged})
    return out


def nearest_trained(
    values: np.ndarray, flagged: np.ndarray, block: int, fallback: np.ndarray
) -> np.ndarray:
    """Fallback rows of a 2-D bank: each flagged row takes the nearest unflagged range of the
    same setting (the lower one on a tie); a setting with no unflagged range keeps ``fallback``.

    Args:
        values: the bank's rows ``[settings * block, width]``.
        flagged: ``[settings * block]`` booleans.
        block: ranges per setting.
        fallback: rows ``[settings * block, width]`` used where a setting has none trained.

    Returns:
        ``[settings * block, width]``: the rows flagged rows should take.
    """
    out = fallback.copy()
    for start in range(0, values.shape[0], block):
        trained = [r for r in range(block) if not flagged[start + r]]
        if not trained:
            continue
        for r in range(block):
            nearest = min(trained, key=lambda t: (abs(t - r), t))
            out[start + r] = values[start + nearest]
    return out
