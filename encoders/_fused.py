"""Fused numba kernels for CPU encode/decode: one pass over the data, all T planes at once.

The numpy step loop (:mod:`encoders._kernels`) stays the reference: it makes ``T`` passes
over the counts with temporaries, and decode reads the train twice (value check, then
Horner's rule). Here encode reads each count once and writes its ``T`` spikes; decode
reads each slot's ``T`` spikes once, checks their values and sums ``w_t * s_t`` in int64
(exact: the caller's output dtype holds every reachable value). Threads: numba's
``prange`` with as many threads as torch uses. Used for arrays of at least
:data:`MIN_ELEMENTS` values (smaller ones do not repay a kernel call; the first call
of each dtype compiles, cached on disk).
"""
from __future__ import annotations

from typing import Any

import numpy as np

from .code import Scheme

try:  # numba is a core dependency; the numpy path covers an environment without it
    import numba
    from numba import njit, prange
except ImportError:  # pragma: no cover - exercised only without numba
    numba = None

MIN_ELEMENTS = 1 << 16

if numba is not None:

    # Planes in order, each one a parallel loop over contiguous slots (vectorized):
    # measured fastest here, ahead of slot-major loops and cache-sized chunks.

    @njit(parallel=True, cache=True, nogil=True)
    def _encode_bits(c, out, shifts, signed, wide):  # pragma: no cover - compiled
        n = c.shape[0]
        for t in range(shifts.shape[0]):
            o = out[t]
            if wide:  # 64-bit words: shifts up to 63
                sh = np.int64(shifts[t])
                for i in prange(n):
                    v = np.int64(c[i])
                    o[i] = np.int8(((np.abs(v) >> sh) & 1) * np.sign(v)) if signed else np.int8((v >> sh) & 1)
            else:  # 32-bit words vectorize twice as wide
                sh32 = np.int32(shifts[t])
                for i in prange(n):
                    v32 = np.int32(c[i])
                    o[i] = np.int8(((np.abs(v32) >> sh32) & 1) * np.sign(v32)) if signed else np.int8((v32 >> sh32) & 1)

    @njit(parallel=True, cache=True, nogil=True)
    def _encode_rate(c, out, signed):  # pragma: no cover - compiled
        n = c.shape[0]
        for t in range(out.shape[0]):
            o = out[t]
            for i in prange(n):
                v = np.int64(c[i])
                if signed:
                    o[i] = np.int8(np.sign(v)) if np.abs(v) > t else np.int8(0)
                else:
                    o[i] = np.int8(1) if v > t else np.int8(0)

    @njit(parallel=True, cache=True, nogil=True)
    def _decode(s, w, lo, acc):  # pragma: no cover - compiled
        n = s.shape[1]
        bad = 0
        for i in prange(n):
            acc[i] = 0
        for t in range(s.shape[0]):
            wt = w[t]
            st = s[t]
            for i in prange(n):
                v = st[i]
                bad += (v < lo) | (v > 1)
                acc[i] += wt * v
        return bad


def available() -> bool:
    """Whether the fused kernels can run (numba importable)."""
    return numba is not None


def _threads() -> None:
    import torch

    want = max(1, min(torch.get_num_threads(), numba.config.NUMBA_NUM_THREADS))
    if numba.get_num_threads() != want:
        numba.set_num_threads(want)


def covers(scheme: Scheme) -> bool:
    """Whether :func:`encode_fused` writes ``scheme``'s trains: rate codes and plain bit codes
    (NAF digits and graded payloads take the reference path)."""
    return scheme.rate or (scheme.bitwise and not scheme.naf)


def encode_fused(c: np.ndarray, scheme: Scheme, T: int, msb_first: bool) -> np.ndarray:
    """int8 train ``[T, *c.shape]`` of validated, in-range integer counts (same as
    ``encode_steps(NUMPY, ...)``)."""
    _threads()
    flat = np.ascontiguousarray(c).reshape(-1)
    out = np.empty((T, flat.shape[0]), dtype=np.int8)
    if scheme.rate:
        _encode_rate(flat, out, scheme.bipolar)
    else:
        shifts = np.arange(T - 1, -1, -1, dtype=np.int64) if msb_first else np.arange(T, dtype=np.int64)
        # 32-bit arithmetic holds counts of up to 4 bytes with shifts below 31 (two's
        # complement patterns of 32-bit counts need their sign bit: 64-bit words then).
        wide = flat.dtype.itemsize > 4 or T >= 31
        _encode_bits(flat, out, shifts, scheme.bipolar, wide)  # bipolar bits: sign-magnitude
    return out.reshape((T,) + tuple(c.shape))


def decode_fused(s: np.ndarray, weights: np.ndarray, lo_allowed: int, acc_dtype: Any) -> np.ndarray | None:
    """Counts ``sum_t w_t s_t`` in ``acc_dtype`` from an int8 train ``[T, *shape]``, or None if
    a spike value lies outside ``[lo_allowed, 1]`` (the caller then reports it)."""
    _threads()
    T = int(s.shape[0])
    shape = tuple(s.shape[1:])
    n = int(np.prod(shape, dtype=np.int64))
    flat = np.ascontiguousarray(s).reshape(T, n)
    acc = np.empty(n, dtype=acc_dtype)
    # Partial sums over any subset of steps stay within the window's reach, which acc_dtype
    # holds; 32-bit step weights where they fit keep the inner loop narrow.
    wdt = np.int32 if np.abs(weights).max(initial=0) < 2**31 and acc.dtype.itemsize <= 4 else np.int64
    bad = _decode(flat, np.ascontiguousarray(weights, dtype=wdt), wdt(lo_allowed), acc)
    if bad:
        return None
    return acc.reshape(shape)
