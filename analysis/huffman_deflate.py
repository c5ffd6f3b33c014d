"""Huffman-only deflate of int16 spike-count chunks: a zlib stream any inflater reads.

The trace stores counts with HDF5's deflate filter (a zlib stream per chunk, RFC 1950/1951).
Spike counts are small integers (on SmolLM2 95% within [-8, 8]), so their little-endian bytes
compress almost as well by Huffman coding alone as with LZ77 matching (measured on a 512-token
SmolLM2 trace: ratio 2.645 against 2.726 for ISA-L level 1 and 2.647 for zlib's
``Z_HUFFMAN_ONLY``), and Huffman coding alone is one table lookup per value: 2.3-2.6x less CPU
than ISA-L level 1 on those counts. The libraries' own fastest modes do not get there: on the
153 MB of int16 counts of a 512-token SmolLM2 trace, one core of the development machine
(2026-12-02), zlib's ``Z_HUFFMAN_ONLY`` coded 0.13 GB/s and ISA-L level 0 0.44 GB/s (level 1:
0.40 GB/s), against about 1 GB/s for this kernel. :func:`deflate_int16` writes one dynamic-Huffman block
(RFC 1951 3.2.7) of literals only, its code built from the byte histogram of every 8th row
(every byte value gets a code, so the code fits any data), then the zlib Adler-32.

The compiled kernel (numba) and its pure-Python form (``_deflate_kernel.py_func``, the
reference it is tested against) give the same bytes; ``zlib.decompress`` gives back the input.
"""
from __future__ import annotations

import threading
import zlib

import numpy as np

from .checksums import fletcher32 as _fletcher32

try:  # ISA-L's Adler-32 is ~4x zlib's (15 vs 60 ms per 100 MB here); the same value
    from isal.isal_zlib import adler32 as _adler32
except ImportError:  # pragma: no cover - depends on the environment
    _adler32 = zlib.adler32

try:  # numba (a core dependency); without it the trace writer keeps ISA-L / zlib deflate
    from numba import njit
except ImportError:  # pragma: no cover - exercised only without numba
    njit = None

__all__ = ["AVAILABLE", "deflate_int16"]

AVAILABLE = njit is not None
_MAX_BITS = 15  # longest deflate Huffman code
_SAMPLE_EVERY = 8  # rows: the histogram the code is built from
# Code-length alphabet order of the block header (RFC 1951 3.2.7)
_CL_ORDER = np.array([16, 17, 18, 0, 8, 7, 9, 6, 10, 5, 11, 4, 12, 3, 13, 2, 14, 1, 15], dtype=np.int64)


def _jit(fn):
    return njit(cache=True, nogil=True)(fn) if njit is not None else fn


@_jit
def _code_lengths(freq):
    """Huffman code lengths (<= 15 bits) of ``freq`` (int64 [n], all > 0, n >= 2): two-queue
    Huffman, then lengths over 15 folded back as zlib/miniz do (Kraft sum kept at 1)."""
    n = freq.size
    syms = np.argsort(freq, kind="mergesort")  # ascending frequency, ties by symbol
    w = np.empty(2 * n, np.int64)
    parent = np.zeros(2 * n, np.int64)
    for i in range(n):
        w[i] = freq[syms[i]]
    leaf, node, nxt = 0, n, n
    for _ in range(n - 1):  # loop over merges
        total = 0
        for _t in range(2):
            if leaf < n and (node >= nxt or w[leaf] <= w[node]):
                c = leaf
                leaf += 1
            else:
                c = node
                node += 1
            parent[c] = nxt
            total += w[c]
        w[nxt] = total
        nxt += 1
    depth = np.zeros(2 * n, np.int64)
    for j in range(nxt - 2, -1, -1):
        depth[j] = depth[parent[j]] + 1
    num = np.zeros(_MAX_BITS + 1, np.int64)  # codes per length
    for i in range(n):
        num[min(depth[i], _MAX_BITS)] += 1
    kraft = 0
    for b in range(1, _MAX_BITS + 1):
        kraft += num[b] << (_MAX_BITS - b)
    while kraft != (1 << _MAX_BITS):  # too long codes were cut to 15 bits: lengthen shorter ones
        num[_MAX_BITS] -= 1
        for b in range(_MAX_BITS - 1, 0, -1):
            if num[b] != 0:
                num[b] -= 1
                num[b + 1] += 2
                break
        kraft -= 1
    lens = np.zeros(n, np.int64)
    j = n - 1  # the most frequent symbols get the shortest codes
    for b in range(1, _MAX_BITS + 1):
        for _ in range(num[b]):
            lens[syms[j]] = b
            j -= 1
    return lens


@_jit
def _canonical_codes(lens):
    """Canonical codes of ``lens`` (RFC 1951 3.2.2), bit-reversed: deflate sends codes MSB first."""
    count = np.zeros(_MAX_BITS + 1, np.int64)
    for i in range(lens.size):
        count[lens[i]] += 1
    count[0] = 0
    nxt = np.zeros(_MAX_BITS + 1, np.int64)
    code = 0
    for b in range(1, _MAX_BITS + 1):
        code = (code + count[b - 1]) << 1
        nxt[b] = code
    out = np.zeros(lens.size, np.uint64)
    for i in range(lens.size):
        b = lens[i]
        c = nxt[b]
        nxt[b] += 1
        r = 0
        for t in range(b):
            r = (r << 1) | ((c >> t) & 1)
        out[i] = r
    return out


@_jit
def _put(out, j, acc, nb, value, nbits):
    """Append ``nbits`` bits of ``value`` to the LSB-first stream: words out[:j], pending (acc, nb < 32)."""
    acc |= np.uint64(value) << np.uint64(nb)
    nb += nbits
    if nb >= 32:
        out[j] = np.uint32(acc & np.uint64(0xFFFFFFFF))
        j += 1
        acc >>= np.uint64(32)
        nb -= 32
    return j, acc, nb


@_jit
def _deflate_kernel(values, row_values, sample_every, order, out):
    """zlib header and one final dynamic-Huffman deflate block of the bytes of ``values`` (int16,
    little-endian) into ``out`` (uint32 words, at least values.size + 64); returns the byte count."""
    m = values.size
    data = values.view(np.uint8)
    freq = np.zeros(257, np.int64)  # literals 0-255, end of block 256
    for r in range(0, m // row_values, sample_every):
        for t in range(2 * r * row_values, 2 * (r + 1) * row_values):
            freq[data[t]] += 1
    for i in range(257):
        if freq[i] == 0:
            freq[i] = 1
    lens = _code_lengths(freq)
    codes = _canonical_codes(lens)
    j, acc, nb = 0, np.uint64(0), 0
    j, acc, nb = _put(out, j, acc, nb, 0x0178, 16)  # zlib: 78 01 (deflate, 32 KiB window)
    # BFINAL 1, BTYPE 2 (dynamic); HLIT 0 (257 codes), HDIST 0 (one, unused), HCLEN 15 (19 entries)
    j, acc, nb = _put(out, j, acc, nb, 1 | (2 << 1) | (15 << 13), 17)
    for k in range(19):  # code-length code: lengths 0-15 all 4 bits (complete), 16-18 unused
        j, acc, nb = _put(out, j, acc, nb, 0 if order[k] >= 16 else 4, 3)
    for i in range(258):  # 257 literal/length code lengths, then the one distance code (0)
        b = lens[i] if i < 257 else 0
        j, acc, nb = _put(out, j, acc, nb, ((b & 1) << 3) | ((b & 2) << 1) | ((b & 4) >> 1) | ((b & 8) >> 3), 4)
    # values in [-128, 127]: both bytes' codes from one 256-entry table
    pcode = np.empty(256, np.uint64)
    plen = np.empty(256, np.uint64)
    for v in range(256):
        hi = 0 if v < 128 else 255
        pcode[v] = codes[v] | (codes[hi] << np.uint64(lens[v]))
        plen[v] = lens[v] + lens[hi]
    nbits = np.uint64(nb)
    c32 = np.uint64(32)
    i = 0
    while i < m:  # one value (<= 30 bits), or two small ones (<= 32 bits together), per step
        v = np.int64(values[i])
        if -128 <= v < 128:
            code, length = pcode[v & 255], plen[v & 255]
        else:
            lo, hi = v & 255, (v >> 8) & 255
            code, length = codes[lo] | (codes[hi] << np.uint64(lens[lo])), np.uint64(lens[lo] + lens[hi])
        i += 1
        if i < m:
            v = np.int64(values[i])
            if -128 <= v < 128 and length + plen[v & 255] <= c32:
                code |= pcode[v & 255] << length
                length += plen[v & 255]
                i += 1
        acc |= code << nbits  # nbits < 32 and length <= 32: fits 64 bits; one word stored, kept when full
        nbits += length
        out[j] = np.uint32(acc & np.uint64(0xFFFFFFFF))
        full = nbits >> np.uint64(5)  # 0 or 1, no branch
        j += np.int64(full)
        acc >>= full << np.uint64(5)
        nbits -= full << np.uint64(5)
    j, acc, nb = _put(out, j, acc, np.int64(nbits), codes[256], lens[256])
    n = 4 * j
    tail = out.view(np.uint8)
    while nb > 0:  # the last partial word, zero padded to a byte
        tail[n] = np.uint8(acc & np.uint64(0xFF))
        n += 1
        acc >>= np.uint64(8)
        nb -= 8
    return n


_local = threading.local()


def deflate_int16(block: np.ndarray, *, fletcher32: bool = False) -> bytes:
    """zlib stream (Huffman-only deflate + Adler-32) of a C-contiguous int16 array ``block``
    [rows, C] (or 1-D), which :func:`zlib.decompress` turns back into ``block.tobytes()``; with
    ``fletcher32``, followed by HDF5's Fletcher-32 of the stream (a stored chunk, one copy)."""
    if not isinstance(block, np.ndarray) or block.dtype != np.int16 or not block.flags.c_contiguous:
        raise TypeError("deflate_int16 needs a C-contiguous int16 numpy array")
    values = block.reshape(-1)
    row = int(block.shape[-1]) if block.ndim > 1 else values.size
    need = values.size + 64
    out = getattr(_local, "out", None)  # one reused output buffer per thread
    if out is None or out.size < need:
        out = _local.out = np.empty(max(need, 1 << 18), np.uint32)
    n = _deflate_kernel(values, max(row, 1), _SAMPLE_EVERY, _CL_ORDER, out)
    data = out.view(np.uint8)
    data[n : n + 4] = np.frombuffer((_adler32(values) & 0xFFFFFFFF).to_bytes(4, "big"), np.uint8)
    n += 4
    if fletcher32:
        data[n : n + 4] = np.frombuffer(int(_fletcher32(data[:n])).to_bytes(4, "little"), np.uint8)
        n += 4
    return data[:n].tobytes()
