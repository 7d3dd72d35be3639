"""The start of a linear chain (an EQ, a filter): its response fitted to the measured one.

For a chain made only of linear stages (biquads, FIR EQ, DC blocker) and ``gain`` stages, the
training loss on the fixed full batch is, up to what no linear model explains, a weighted
distance between responses::

    E |y - y_hat|^2  =  sum_f S_xx(f) |H(f) - H_hat(f)|^2

with ``H = S_xy / S_xx`` measured on the training segments (Hann frames with half overlap,
Welch's averaging; :func:`measured_response`). The loss is ESR plus pre-emphasised ESR, so each
bin is weighted by ``S_xx(f) (1 / E_y + |P(f)|^2 / E_p)`` (``P`` the pre-emphasis filter,
``E_y`` and ``E_p`` the wet's energies with and without it). Evaluating that distance costs one
response per stage (microseconds) instead of a render of the batch, so a least-squares fit over
the raw parameters (``scipy.optimize.least_squares``) runs from many starts — the current
values, and shelves at a grid of corners with the peaks placed on the measured response
(:meth:`ResponseFit.starts`) — screened briefly, the best continued (:meth:`ResponseFit.fit`).
Its basin is handed to the time-domain refinement. Started at the block defaults (1 kHz peaks,
0 dB shelves) a local optimiser stops in a wrong basin for a typical tone control: an EQ of
pedalboard's shelves and peak tested 0.0087 with the drive family's best structure, 8e-5 with
this start.

numpy and scipy only.
"""

from __future__ import annotations

import itertools
import math
from typing import Any

import numpy as np

#: Frame length of the cross-spectra (samples; shorter segments use a power of two that fits).
RESPONSE_FFT = 4096
#: Peaks start within this band (Hz): where the error is largest, or spread over it at
#: SPREAD_STARTS staggered positions.
PEAK_SPAN_HZ = (40.0, 14000.0)
SPREAD_STARTS = 2
#: Shelves' corners tried at the starts (Hz; every combination).
SHELF_CORNERS_HZ = {"lowshelf": (100.0, 200.0, 400.0), "highshelf": (2000.0, 4000.0, 8000.0)}
#: Every start is screened for this many least-squares evaluations; the best FIT_STARTS go on.
SCREEN_EVALUATIONS = 8
FIT_STARTS = 3
#: Least-squares evaluations per start: enough to reach the start's basin (the time-domain
#: refinement takes it from there).
MAX_EVALUATIONS = 60


def is_linear_chain(chain: Any) -> bool:
    """True for a flat chain (no nested chain, no dry/wet) of linear filters and ``gain``s."""
    stages = chain.stages
    return (
        bool(stages)
        and len(stages) == len(chain)
        and float(chain.mix) == 1.0
        and all(s.block.is_linear or s.block.name == "gain" for s in stages)
    )


def measured_response(
    dry: np.ndarray, wet: np.ndarray, n_fft: int
) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Welch cross-spectra of segments: ``(S_xx, S_xy, S_yy)``, each ``[n_fft // 2 + 1]``.

    Args:
        dry: float ``[n_segments, n]`` input segments (aligned with ``wet``).
        wet: float ``[n_segments, n]`` target segments.
        n_fft: frame length (``<= n``); Hann window, hop ``n_fft // 2``.

    Returns:
        float64 ``S_xx``, complex128 ``S_xy = sum conj(X) Y``, float64 ``S_yy``.
    """
    dry = np.asarray(dry, np.float64)
    wet = np.asarray(wet, np.float64)
    hop = n_fft // 2
    starts = np.arange(0, dry.shape[1] - n_fft + 1, hop)
    window = np.hanning(n_fft)
    index = starts[:, None] + np.arange(n_fft)[None, :]
    x = np.fft.rfft(dry[:, index] * window, axis=-1)
    y = np.fft.rfft(wet[:, index] * window, axis=-1)
    sxx = np.sum(np.abs(x) ** 2, axis=(0, 1))
    sxy = np.sum(np.conj(x) * y, axis=(0, 1))
    syy = np.sum(np.abs(y) ** 2, axis=(0, 1))
    return sxx, sxy, syy


class ResponseFit:
    """The response distance of a linear chain's row-0 parameters (see the module docstring).

    Args:
        chain: a chain with :func:`is_linear_chain`.
        dry, wet: the training segments, ``[n_segments, n]`` each (``n >= 64``).
        sample_rate: Hz.
        pre_emphasis: the loss's pre-emphasis coefficient.
        level: index of the stage whose ``gain_db`` scales the output
            (:func:`lactose_audio.initialise.level_stage`), or ``None``.
    """

    def __init__(
        self,
        chain: Any,
        dry: np.ndarray,
        wet: np.ndarray,
        sample_rate: float,
        pre_emphasis: float,
        level: int | None = None,
    ) -> None:
        n = int(np.asarray(dry).shape[1])
        self.n_fft = min(RESPONSE_FFT, 2 ** int(math.log2(n)))
        sxx, sxy, syy = measured_response(dry, wet, self.n_fft)
        self.target = sxy / np.maximum(sxx, 1e-30)
        self.frequencies = np.arange(self.n_fft // 2 + 1) * (float(sample_rate) / self.n_fft)
        # the measured magnitude smoothed over +-1/6 octave (power-weighted), dB
        edges_lo = np.searchsorted(self.frequencies, self.frequencies * 2.0 ** (-1.0 / 6.0))
        edges_hi = np.searchsorted(self.frequencies, self.frequencies * 2.0 ** (1.0 / 6.0), "right")
        edges_hi = np.maximum(edges_hi, edges_lo + 1)
        csxy = np.concatenate([[0.0], np.cumsum(sxy)])
        csxx = np.concatenate([[0.0], np.cumsum(sxx)])
        smooth = (csxy[edges_hi] - csxy[edges_lo]) / np.maximum(
            csxx[edges_hi] - csxx[edges_lo], 1e-30
        )
        self.target_db = 20.0 * np.log10(np.maximum(np.abs(smooth), 1e-6))
        w = np.arange(self.n_fft // 2 + 1) * (2.0 * math.pi / self.n_fft)
        emphasis = np.abs(1.0 - pre_emphasis * np.exp(-1j * w)) ** 2
        e_y, e_p = float(np.sum(syy)), float(np.sum(emphasis * syy))
        weight = sxx * (1.0 / max(e_y, 1e-30) + emphasis / max(e_p, 1e-30))
        self.sqrt_weight = np.sqrt(weight)
        self.chain = chain
        self.sample_rate = float(sample_rate)
        self.blocks = [s.block for s in chain.stages]  # (chain.stages walks the chain)
        self.sizes = [block.n_params for block in self.blocks]
        self.offsets = np.concatenate([[0], np.cumsum(self.sizes)[:-1]]).astype(int).tolist()
        self.level = level
        self._last: tuple[bytes | None, list[np.ndarray]] = (None, [])

    def stage_response(self, index: int, raw: np.ndarray) -> np.ndarray:
        """Stage ``index``'s response at its raw row-0 values ``[..., n_params]``: complex128
        ``[..., n_fft // 2 + 1]`` (a ``gain``: its linear gain, ``[..., 1]``)."""
        from lactose_audio.params import raw_to_physical_np

        block = self.blocks[index]
        physical = raw_to_physical_np(block.params, np.asarray(raw, np.float64))
        controls = {name: physical[..., i] for i, name in enumerate(block.param_names)}
        if block.name == "gain":
            return (10.0 ** (controls["gain_db"] / 20.0))[..., None].astype(np.complex128)
        return np.asarray(block.response(controls, self.sample_rate, self.n_fft))

    def _stage_responses(self, raw: np.ndarray) -> list[np.ndarray]:
        key = raw.tobytes() if raw.ndim == 1 else None
        if key is not None and self._last[0] == key:  # the Jacobian at the point just evaluated
            return self._last[1]
        parts = [
            self.stage_response(i, raw[..., offset : offset + size])
            for i, (offset, size) in enumerate(zip(self.offsets, self.sizes, strict=True))
        ]
        if key is not None:
            self._last = (key, parts)
        return parts

    def response(self, raw: np.ndarray) -> np.ndarray:
        """The chain's response at raw row-0 values ``[..., n]`` (concatenated per stage):
        complex128 ``[..., n_fft // 2 + 1]`` (a batch of points at once)."""
        raw = np.asarray(raw, np.float64)
        total = np.ones((*raw.shape[:-1], self.n_fft // 2 + 1), np.complex128)
        for part in self._stage_responses(raw):
            total = total * part
        return total

    def _weighted(self, response: np.ndarray) -> np.ndarray:
        error = self.sqrt_weight * (response - self.target)
        return np.concatenate([error.real, error.imag], axis=-1)

    def residuals(self, raw: np.ndarray) -> np.ndarray:
        """Weighted response error, real and imaginary parts (``[..., 2 * n_bins]``): its sum
        of squares estimates the training loss (less what no linear model explains)."""
        return self._weighted(self.response(raw))

    def jacobian(self, raw: np.ndarray) -> np.ndarray:
        """Forward differences of :meth:`residuals`: a parameter moves only its own stage's
        response, so each stage is evaluated at its own parameters' steps (batched) and
        multiplied by the other stages' responses at ``raw`` (one response per parameter,
        not one chain response per parameter)."""
        raw = np.asarray(raw, np.float64)
        step = 1e-6 * np.maximum(1.0, np.abs(raw))
        parts = self._stage_responses(raw)
        before = [np.ones(self.n_fft // 2 + 1, np.complex128)]
        for part in parts[:-1]:
            before.append(before[-1] * part)
        after = [np.ones(self.n_fft // 2 + 1, np.complex128)]
        for part in parts[:0:-1]:
            after.append(after[-1] * part)
        after = after[::-1]
        base = self._weighted(before[-1] * parts[-1])
        columns = []
        for i, (offset, size) in enumerate(zip(self.offsets, self.sizes, strict=True)):
            at = raw[offset : offset + size]
            points = at[None, :] + np.diag(step[offset : offset + size])
            moved = before[i] * self.stage_response(i, points) * after[i]
            columns.append(
                (self._weighted(moved) - base[None, :]) / step[offset : offset + size, None]
            )
        return np.concatenate(columns, axis=0).T

    def distance(self, raw: np.ndarray) -> float:
        r = self.residuals(raw)
        return float(r @ r)

    def _set(self, x: np.ndarray, index: int, **values: float) -> None:
        """Set physical ``values`` of stage ``index`` in the raw vector ``x`` (clipped)."""
        from lactose_audio.params import raw_to_physical_np, start_raw_np

        block = self.chain.stages[index].block
        offset = self.offsets[index]
        current = raw_to_physical_np(block.params, x[offset : offset + block.n_params])
        physical = [
            float(np.clip(values.get(p.name, current[i]), p.minimum, p.maximum))
            for i, p in enumerate(block.params)
        ]
        x[offset : offset + block.n_params] = start_raw_np(block.params, physical)

    def _residual_db(self, x: np.ndarray) -> np.ndarray:
        """Smoothed target minus model magnitude, dB, per bin."""
        model = 20.0 * np.log10(np.maximum(np.abs(self.response(x)), 1e-6))
        return self.target_db - model

    def starts(self, raw: np.ndarray) -> list[np.ndarray]:
        """``raw`` and starts placed on the measured response: shelves at each combination of
        :data:`SHELF_CORNERS_HZ` with the gain the response has beyond their corners, then
        each peak where the remaining error is largest (the greedy start) or at positions
        spread over :data:`PEAK_SPAN_HZ` (staggered), each with the error there as its gain;
        the output level matched after each stage."""
        stages = self.chain.stages
        names = [s.block.name for s in stages]
        peaks = [i for i, n in enumerate(names) if n == "peak"]
        nyquist = 0.45 * self.sample_rate
        lo, hi = math.log(PEAK_SPAN_HZ[0]), math.log(min(PEAK_SPAN_HZ[1], nyquist))
        f = self.frequencies
        in_band = (f >= PEAK_SPAN_HZ[0]) & (f <= min(PEAK_SPAN_HZ[1], nyquist))
        # bins weigh 1/f: every octave counts alike
        octave_weight = np.where(in_band, 1.0 / np.maximum(f, 1.0), 0.0)
        shelves = [i for i, n in enumerate(names) if n in SHELF_CORNERS_HZ]
        corners = itertools.product(*(SHELF_CORNERS_HZ[names[i]] for i in shelves))
        out = [raw]
        for at_corners, variant in itertools.product(list(corners), range(1 + SPREAD_STARTS)):
            corner_of = dict(zip(shelves, at_corners, strict=True))
            x = raw.copy()
            for i, name in enumerate(names):
                if i in corner_of:
                    self._set(x, i, cutoff_hz=min(corner_of[i], nyquist), gain_db=0.0)
                elif name == "peak":
                    self._set(x, i, gain_db=0.0, q=1.0)
            x = self.matched_level(x)
            for i, name in enumerate(names):
                if i not in corner_of:
                    continue
                corner = min(corner_of[i], nyquist)
                beyond = f < corner / 2.0 if name == "lowshelf" else f > corner * 2.0
                w = octave_weight * beyond
                if w.sum() > 0.0:
                    self._set(x, i, gain_db=float(np.sum(w * self._residual_db(x)) / w.sum()))
                    x = self.matched_level(x)
            for k, i in enumerate(peaks):
                error = np.where(in_band, self._residual_db(x), 0.0)
                if variant == 0:
                    at = int(np.argmax(np.abs(error)))
                else:
                    position = (k + variant / (SPREAD_STARTS + 1)) / len(peaks)
                    at = int(np.argmin(np.abs(f - math.exp(lo + position * (hi - lo)))))
                self._set(x, i, cutoff_hz=float(f[at]), gain_db=float(error[at]))
                x = self.matched_level(x)
            out.append(x)
        return out

    def matched_level(self, raw: np.ndarray) -> np.ndarray:
        """``raw`` with the output-level stage (``level``) at the least-squares level."""
        from lactose_audio.params import raw_to_physical_np

        if self.level is None:
            return raw
        model = self.sqrt_weight * self.response(raw)
        target = self.sqrt_weight * self.target
        c = float(np.sum(np.abs(model) ** 2))
        b = float(np.sum((np.conj(model) * target).real))
        if not (c > 0.0 and b > 0.0):
            return raw
        block, offset = self.chain.stages[self.level].block, self.offsets[self.level]
        current = raw_to_physical_np(block.params, raw[offset : offset + block.n_params])
        out = raw.copy()
        self._set(out, self.level, gain_db=float(current[0]) + 20.0 * math.log10(b / c))
        return out

    def _least_squares(self, start: np.ndarray, bound: float, evaluations: int) -> np.ndarray:
        from scipy.optimize import least_squares

        return least_squares(
            self.residuals, np.clip(start, -bound, bound), jac=self.jacobian,
            bounds=(-bound, bound), method="trf", tr_solver="lsmr", x_scale="jac",
            max_nfev=evaluations,
        ).x  # fmt: skip

    def fit(self, raw: np.ndarray, bound: float) -> np.ndarray:
        """Least squares from every start (:meth:`starts`) for :data:`SCREEN_EVALUATIONS`
        evaluations, the best :data:`FIT_STARTS` continued to :data:`MAX_EVALUATIONS`
        (trust-region reflective with an iterative solver: thousands of residual rows, a few
        dozen parameters); the best point, or ``raw`` if none is better."""
        screened = [self._least_squares(x, bound, SCREEN_EVALUATIONS) for x in self.starts(raw)]
        best, best_distance = raw, self.distance(raw)
        for x in sorted(screened, key=self.distance)[:FIT_STARTS]:
            x = self._least_squares(x, bound, MAX_EVALUATIONS)
            distance = self.distance(x)
            if math.isfinite(distance) and distance < best_distance:
                best, best_distance = x, distance
        return best


def fit_linear(objective: Any, x: np.ndarray, level: int | None) -> np.ndarray | None:
    """A start for a linear chain from its measured response; ``None`` if not linear.

    Args:
        objective: the full-batch :class:`~lactose_audio.refine.Objective` (its chain,
            segments and the layout of its flat values; every row of a bank is set alike).
        x: the current flat raw values (not changed).
        level: index of the output-level stage (:func:`lactose_audio.initialise.level_stage`).

    Returns:
        Flat raw values with every row of each stage at the fitted parameters.
    """
    from lactose_audio.losses import DEFAULT_PRE_EMPHASIS
    from lactose_audio.refine import RAW_BOUND

    chain = objective.chain
    if not is_linear_chain(chain):
        return None
    batch, context = objective.batch, objective.context
    dry = np.asarray(batch.dry)[:, context:]
    wet = np.asarray(batch.wet)
    if dry.shape[1] < 64 or not np.any(dry):
        return None
    fit = ResponseFit(chain, dry, wet, objective.sample_rate, DEFAULT_PRE_EMPHASIS, level)
    banks, offset = [], 0  # each stage's bank in x: [rows, width], row 0 first
    for stage, shape, size in zip(chain.stages, objective.shapes, objective.sizes, strict=True):
        banks.append((slice(offset, offset + size), shape, stage.block.n_params))
        offset += size
    fitted = fit.fit(np.concatenate([x[at].reshape(shape)[0, :n] for at, shape, n in banks]),
                     RAW_BOUND)  # fmt: skip
    out = x.copy()
    for (at, shape, n), start in zip(banks, fit.offsets, strict=True):
        values = out[at].reshape(shape)
        values[:, :n] = fitted[start : start + n]
        out[at] = values.reshape(-1)
    return out


__all__ = ["ResponseFit", "fit_linear", "is_linear_chain", "measured_response"]
