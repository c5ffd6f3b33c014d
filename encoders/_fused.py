"""Fused numba kernels for CPU encode/decode: one pass over the data, all T planes at once.

The numpy step loop (:mod:`encoders._kernels`) stays the reference: it makes ``T`` passes
over the counts with temporaries, and decode reads the train twice (value check, then
Horner's rule). Here the data is cut into chunks of :data:`CHUNK` slots, spread over
threads (numba ``prange``, as many threads as torch uses). Encode reads a chunk of counts
once (it stays in cache) and writes its slots of every plane; decode reads a chunk's slots
of every plane once, checks their values (running min/max) and sums ``w_t * s_t`` into the
output, whose chunk stays in cache. The inner loops run over contiguous slices, which LLVM
vectorizes (indexing the whole array with an offset it does not). Used for arrays of at
least :data:`MIN_ELEMENTS` values (smaller ones do not repay a kernel call; the first call
of each dtype compiles, cached on disk).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .code import Scheme
from ._modes import BITS_SM, BITS_TWOS, BITS_U, GRADED, NAF, RATE_S, RATE_U, mode_for

try:  # numba is a core dependency; the numpy path covers an environment without it
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None

MIN_ELEMENTS = 1 << 16
CHUNK = 1 << 14  # slots per task: 16 K counts and their T x 16 KB of train stay in L2
_TIME_BLOCK = 16  # steps per task (a long rate train of few counts still spreads over threads)

if numba is not None:
    from numba import types
    from numba.extending import overload

    def _like(x: Any, arr: Any) -> Any:  # pragma: no cover - typed by the overload below
        """``x`` cast (wrapping) to the element type of ``arr`` (inside compiled code)."""
        raise NotImplementedError

    @overload(_like, inline="always")
    def _like_impl(x, arr):  # pragma: no cover - compiled
        ty = arr.dtype if isinstance(arr, types.Array) else arr

        def impl(x, arr):
            return ty(x)
        return impl

    # numba computes integer expressions in int64; LLVM narrows them back to the counts'
    # width (16 or 32 lanes per AVX-512 vector instead of 8) only where every value is
    # truncated, masked with a value of that width or compared with one. So each step is
    # written as masks and comparisons in the counts' own type: bit k of x is
    # ``(x & (1 << k)) != 0`` (the mask wrapped to the width: |min| of a signed type wraps
    # to its own bit pattern, which is the right magnitude read as unsigned), and a sign is
    # applied as ``(d ^ -s) + s`` with s = 1 for negative counts.

    @njit(nogil=True, cache=True)
    def _plane(cc, oo, mode, t, k, width, tmax, signed):  # pragma: no cover - compiled
        """Step ``t`` (bit ``k``) of the counts ``cc`` into the int8 slice ``oo``."""
        n = cc.shape[0]
        m1 = _like(1 << k, cc) if k < width else _like(0, cc)
        if mode == RATE_U or mode == RATE_S:
            if t > tmax:  # beyond every count of this type: silence
                oo[:] = 0
                return
            tt = _like(t, cc)
            if mode == RATE_U:
                for j in range(n):
                    oo[j] = np.int8(cc[j] > tt)
            else:  # |c| > t: c > t or c < -t (no |min| overflow)
                nt = _like(-t, cc)
                for j in range(n):
                    v = cc[j]
                    oo[j] = np.int8(v > tt) - np.int8(v < nt)
        elif mode == BITS_SM:
            for j in range(n):
                v = cc[j]
                s = np.int8(v < 0)
                b = np.int8((_like(np.abs(v), cc) & m1) != 0)
                oo[j] = (b ^ -s) + s
        elif mode == NAF:  # digit k = bit k of |c| + |c| >> 1, minus bit k + 1 of |c| (see below)
            m2 = _like(1 << (k + 1), cc) if k + 1 < width else _like(0, cc)
            hmax = _like(tmax, cc)
            for j in range(n):
                v = cc[j]
                s = np.int8(v < 0)
                a = _like(np.abs(v), cc)
                x = _like(a + (_like(a >> 1, cc) & hmax), cc)
                b = np.int8((x & m1) != 0) - np.int8((a & m2) != 0)
                oo[j] = (b ^ -s) + s
        elif mode == GRADED:
            if t == 0:
                for j in range(n):
                    oo[j] = np.int8(cc[j])
            else:
                oo[:] = 0
        else:  # BITS_U, BITS_TWOS: bits of the pattern; above the width, the sign bit
            if k >= width and signed:
                m1 = _like(1 << (width - 1), cc)
            for j in range(n):
                oo[j] = np.int8((cc[j] & m1) != 0)

    @njit(parallel=True, nogil=True, cache=True)
    def _encode(c, out, mode, msb, width, tmax, signed, lims):  # pragma: no cover - compiled
        """All planes of ``out``; with ``lims`` of one row per chunk, each chunk's (min, max)
        too (read from cache: the range check then needs no pass of its own)."""
        n = c.shape[0]
        T = out.shape[0]
        nch = (n + CHUNK - 1) // CHUNK
        ntb = max(1, (T + _TIME_BLOCK - 1) // _TIME_BLOCK)
        track = lims.shape[0] > 0
        for k in prange(nch * ntb):
            j0 = (k // ntb) * CHUNK
            j1 = min(n, j0 + CHUNK)
            t0 = (k % ntb) * _TIME_BLOCK
            cc = c[j0:j1]
            if track and t0 == 0:
                lo = cc[0]
                hi = cc[0]
                for j in range(cc.shape[0]):
                    lo = min(lo, cc[j])
                    hi = max(hi, cc[j])
                lims[k // ntb, 0] = lo
                lims[k // ntb, 1] = hi
            for t in range(t0, min(T, t0 + _TIME_BLOCK)):
                _plane(cc, out[t, j0:j1], mode, t, T - 1 - t if msb else t, width, tmax, signed)

    @njit(nogil=True, cache=True)
    def _decode_chunk(s, aa, w, j0, j1):  # pragma: no cover - compiled
        """Sum ``w_t * s_t`` over the planes of slots ``j0:j1`` into ``aa``; (min, max) of the spikes."""
        lo = np.int8(0)
        hi = np.int8(0)
        aa[:] = 0
        for t in range(s.shape[0]):
            st = s[t, j0:j1]
            wt = w[t]
            for j in range(st.shape[0]):
                v = st[j]
                lo = min(lo, v)
                hi = max(hi, v)
                aa[j] += wt * v
        return lo, hi

    @njit(parallel=True, nogil=True, cache=True)
    def _decode(s, w, lo, hi, acc):  # pragma: no cover - compiled
        n = s.shape[1]
        nch = (n + CHUNK - 1) // CHUNK
        bad = np.zeros(max(nch, 1), np.uint8)
        for k in prange(nch):
            j0 = k * CHUNK
            j1 = min(n, j0 + CHUNK)
            mn, mx = _decode_chunk(s, acc[j0:j1], w, j0, j1)
            bad[k] = (mn < lo) | (mx > hi)
        return bad.any()

    @njit(parallel=True, nogil=True, cache=True)
    def _minmax(c):  # pragma: no cover - compiled
        n = c.shape[0]
        span = 4 * CHUNK
        nch = (n + span - 1) // span
        mins = np.empty(nch, np.int64)
        maxs = np.empty(nch, np.int64)
        for k in prange(nch):
            cc = c[k * span:min(n, (k + 1) * span)]
            lo = cc[0]
            hi = cc[0]
            for j in range(cc.shape[0]):
                lo = min(lo, cc[j])
                hi = max(hi, cc[j])
            mins[k] = lo
            maxs[k] = hi
        return mins.min(), maxs.max()


def available() -> bool:
    """Whether the fused kernels can run (numba importable)."""
    return numba is not None


def _threads() -> None:
    import torch

    want = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() != want:
        numba.set_num_threads(want)


def covers(scheme: Scheme) -> bool:
    """Whether :func:`encode_fused` writes ``scheme``'s trains as the step loops of
    :mod:`encoders._kernels` do: rate codes and bit codes (graded payloads are written too,
    see :func:`encoders._modes.mode_for`, but have no step loop)."""
    return scheme.rate or scheme.bitwise


def extremes(c: np.ndarray) -> tuple[int, int]:
    """(min, max) of a non-empty integer array, in one parallel pass."""
    _threads()
    lo, hi = _minmax(np.ascontiguousarray(c).reshape(-1))
    return int(lo), int(hi)


def encode_fused(c: np.ndarray, scheme: Scheme, T: int, msb_first: bool, out: np.ndarray | None = None,
                 extremes: bool = False) -> np.ndarray | tuple[np.ndarray, int, int]:
    """int8 train ``[T, *c.shape]`` of integer counts (same as ``encode_steps(NUMPY, ...)``
    for in-range counts; any counts are safe to pass), written into ``out`` (C-contiguous
    int8) if given. With ``extremes``, returns ``(train, min, max)``: the counts' range,
    found in the same pass, for checking afterwards ((0, 0) when empty)."""
    mode = mode_for(scheme)
    if mode is None:
        raise ValueError(f"no fused kernel writes scheme {scheme.name!r} with {scheme.payload_bits}-bit payloads")
    _threads()
    flat = np.ascontiguousarray(c).reshape(-1)
    if out is None:
        out = np.empty((T,) + tuple(c.shape), dtype=np.int8)
    signed = flat.dtype.kind == "i"
    if not signed:  # unsigned counts are non-negative: the unipolar rules apply
        mode = {RATE_S: RATE_U, BITS_SM: BITS_U, BITS_TWOS: BITS_U}.get(mode, mode)
        if mode == NAF or flat.dtype.itemsize > 1:  # |c| + |c| >> 1 needs one bit more
            flat = flat.astype(np.int16 if flat.dtype.itemsize == 1 else np.int64)
            signed = True
    width = 8 * flat.dtype.itemsize
    lims = np.empty(((flat.shape[0] + CHUNK - 1) // CHUNK if extremes else 0, 2), dtype=np.int64)
    _encode(flat, out.reshape(T, flat.shape[0]), mode, msb_first, width, int(np.iinfo(flat.dtype).max), signed,
            lims)
    if not extremes:
        return out
    if not lims.shape[0]:
        return out, 0, 0
    return out, int(lims[:, 0].min()), int(lims[:, 1].max())


def decode_fused(s: np.ndarray, weights: np.ndarray, lo_allowed: int, acc_dtype: Any, hi_allowed: int = 1,
                 out: np.ndarray | None = None) -> np.ndarray | None:
    """Counts ``sum_t w_t s_t`` in ``acc_dtype`` from an int8 train ``[T, *shape]`` (into
    ``out``, C-contiguous of ``acc_dtype``, if given), or None if a spike value lies outside
    ``[lo_allowed, hi_allowed]`` (the caller then reports it).

    Sums wrap modulo the width of ``acc_dtype``; every partial sum of a valid train lies
    within the code's reach, which the caller's ``acc_dtype`` holds.
    """
    _threads()
    T = int(s.shape[0])
    shape = tuple(s.shape[1:])
    n = int(np.prod(shape, dtype=np.int64))
    flat = np.ascontiguousarray(s).reshape(T, n)
    acc = np.empty(shape, dtype=acc_dtype) if out is None else out
    # Step weights in the accumulator's type (they fit: each is at most the reach) keep the
    # inner loop as narrow as the output.
    w = np.ascontiguousarray(weights).astype(acc.dtype)
    if _decode(flat, w, np.int8(max(lo_allowed, -128)), np.int8(min(hi_allowed, 127)), acc.reshape(n)):
        return None
    return acc
