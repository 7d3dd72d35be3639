"""The Viterbi kernels of the pitch tracker (see :mod:`lactose_audio.pitch`).

``librosa.sequence._viterbi`` over pyin's voiced/unvoiced pitch states, restricted to the band
of the transition matrix that is not ``log(tiny)`` and to the predecessors that can win, with
an exact guard; plus the traceback and the survivor-agreement test the streaming key uses.
"""

from __future__ import annotations

import numpy as np

from lactose_audio._numba import jit as _jit


@_jit
def _viterbi_kernel(
    log_v,
    log_u,
    value,
    log_same,
    log_switch,
    from_same,
    from_switch,
    log_tiny,
    values_out,
    ptr_out,
):  # pragma: no cover - compiled
    # librosa.sequence._viterbi on pyin's 2 n_bins states (voiced bins, then unvoiced bins) with
    # log_trans = log(kron([[stay, switch], [switch, stay]], T) + tiny), T banded (|i - j| <=
    # half). Per target j the candidates value[i] + log_trans[i, j] are visited in ascending i
    # and replaced only when strictly larger, so ties keep the first index like np.argmax;
    # out-of-band candidates (log_trans = log(tiny)) come from running maxima.
    # Sparse predecessors: a group whose states are mostly far below the best (voiced bins with
    # no pitch candidate) visits only its live states (value >= best - 300); a skipped state
    # i cannot win (or tie) target j when the live best exceeds max(skipped) + max(log_trans)
    # -- checked per target, and the rare target that fails is recomputed over every state.
    n = log_v.shape[1]
    half = (log_same.shape[0] - 1) // 2
    width = 2 * half + 1
    l_max = -np.inf
    for e in range(width):
        for j in range(n):
            l_max = max(l_max, log_same[e, j], log_switch[e, j])
    pre_val = np.empty(2 * n)
    pre_idx = np.empty(2 * n, dtype=np.int64)
    suf_val = np.empty(2 * n)
    suf_idx = np.empty(2 * n, dtype=np.int64)
    best = np.empty(n)
    arg = np.empty(n, dtype=np.int64)
    live = np.empty(2 * n, dtype=np.int64)
    n_live = np.zeros(2, dtype=np.int64)
    for t in range(log_v.shape[0]):
        top = -np.inf
        for i in range(2 * n):
            top = max(top, value[i])
        skipped = -np.inf
        for g in range(2):  # running maxima of each group (first index of the max); live sets
            o = g * n
            pre_val[o] = value[o]
            pre_idx[o] = o
            for i in range(1, n):
                if value[o + i] > pre_val[o + i - 1]:
                    pre_val[o + i] = value[o + i]
                    pre_idx[o + i] = o + i
                else:
                    pre_val[o + i] = pre_val[o + i - 1]
                    pre_idx[o + i] = pre_idx[o + i - 1]
            suf_val[o + n - 1] = value[o + n - 1]
            suf_idx[o + n - 1] = o + n - 1
            for i in range(n - 2, -1, -1):
                if value[o + i] >= suf_val[o + i + 1]:
                    suf_val[o + i] = value[o + i]
                    suf_idx[o + i] = o + i
                else:
                    suf_val[o + i] = suf_val[o + i + 1]
                    suf_idx[o + i] = suf_idx[o + i + 1]
            k = 0
            group_skipped = -np.inf
            for i in range(n):
                if value[o + i] >= top - 300.0:
                    live[o + k] = i
                    k += 1
                else:
                    group_skipped = max(group_skipped, value[o + i])
            if 2 * k > n:  # dense enough: visit every state of the group
                k = n
                for i in range(n):
                    live[o + i] = i
            else:
                skipped = max(skipped, group_skipped)
            n_live[g] = k
        bound = skipped + l_max
        for target in range(2):  # voiced targets, then unvoiced targets
            for j in range(n):
                best[j] = -np.inf
                arg[j] = 0
            for g in range(2):  # voiced predecessors first (smaller indices)
                o = g * n
                table = log_same if g == target else log_switch
                from_table = from_same if g == target else from_switch
                for j in range(half + 1, n):  # out of band, below
                    c = pre_val[o + j - half - 1] + log_tiny
                    if c > best[j]:
                        best[j] = c
                        arg[j] = pre_idx[o + j - half - 1]
                if n_live[g] == n:  # the band by diagonals: slices so that LLVM vectorises
                    for d in range(-half, half + 1):
                        lo = max(0, -d)
                        hi = min(n, n - d)
                        val = value[o + lo + d : o + hi + d]
                        row = table[d + half, lo:hi]
                        bb = best[lo:hi]
                        aa = arg[lo:hi]
                        first = o + lo + d
                        for j in range(hi - lo):
                            c = val[j] + row[j]
                            take = c > bb[j]
                            bb[j] = c if take else bb[j]
                            aa[j] = first + j if take else aa[j]
                else:  # the band from each live predecessor, in ascending order
                    for q in range(n_live[g]):
                        i = live[o + q]
                        lo = max(0, i - half)
                        hi = min(n, i + half + 1)
                        v = value[o + i]
                        row = from_table[i, lo - (i - half) : hi - (i - half)]
                        bb = best[lo:hi]
                        aa = arg[lo:hi]
                        for e in range(hi - lo):
                            c = v + row[e]
                            take = c > bb[e]
                            bb[e] = c if take else bb[e]
                            aa[e] = o + i if take else aa[e]
                for j in range(0, n - half - 1):  # out of band, above
                    c = suf_val[o + j + half + 1] + log_tiny
                    if c > best[j]:
                        best[j] = c
                        arg[j] = suf_idx[o + j + half + 1]
            for j in range(n):
                if best[j] > bound:
                    continue
                # a skipped state might win: every candidate, in index order (dense decode)
                b = -np.inf
                a = 0
                for g in range(2):
                    table = log_same if g == target else log_switch
                    for i in range(n):
                        d = i - j
                        lt = table[d + half, j] if -half <= d <= half else log_tiny
                        c = value[g * n + i] + lt
                        if c > b:
                            b = c
                            a = g * n + i
                best[j] = b
                arg[j] = a
            o = target * n
            for j in range(n):
                emit = log_v[t, j] if target == 0 else log_u[t]
                values_out[t, o + j] = emit + best[j]
                ptr_out[t, o + j] = arg[j]
        for i in range(2 * n):
            value[i] = values_out[t, i]
    return values_out, ptr_out


@_jit
def _trace(ptr, state, out):  # pragma: no cover - compiled
    # out[t] = state of frame t on the path ending in `state` at the last row of ptr
    # (ptr[t] holds the predecessors of frame t's states; ptr[0] is unused)
    m = ptr.shape[0]
    out[m - 1] = state
    for t in range(m - 1, 0, -1):
        state = ptr[t, state]
        out[t - 1] = state
    return out


@_jit
def _agreed_prefix(ptr, n_bins, codes):  # pragma: no cover - compiled
    # Trace the survivor path of every state of the last row of ptr back through the window;
    # codes[t] = the common output of frame t on all of them (the voiced state, or -1 when all
    # are unvoiced), -2 where they differ. Returns how many leading frames agree: those frames
    # are what the whole-take decode outputs, whichever state it ends in.
    m = ptr.shape[0]
    k = ptr.shape[1]
    states = np.arange(k)
    for t in range(m - 1, -1, -1):
        first = states[0]
        code = first if first < n_bins else -1
        for s in range(1, k):
            other = states[s] if states[s] < n_bins else -1
            if other != code:
                code = -2
                break
        codes[t] = code
        if t > 0:
            for s in range(k):
                states[s] = ptr[t, states[s]]
    n_agree = 0
    while n_agree < m and codes[n_agree] != -2:
        n_agree += 1
    return n_agree
