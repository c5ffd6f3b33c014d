"""Bytes of the chunks the trace writer stores with direct chunk writes: the filtered bytes HDF5's
pipeline would store (deflate, or none), followed by the Fletcher-32 its ``fletcher32`` filter
(last in the pipeline) verifies on read."""
from __future__ import annotations

import zlib
from typing import Any

import numpy as np

from .checksums import with_fletcher32
from .huffman_deflate import AVAILABLE as _HUFFMAN
from .huffman_deflate import deflate_int16

_VTH_GZIP_LEVEL = 4  # deflate level of the V_th datasets (h5py's default for "gzip")
# Huffman coding alone spends at least 1 bit a byte (8x at most: an all-zero chunk takes 37 KB
# where LZ77 deflate takes 0.3 KB); chunks it shrinks more than this are tried with LZ77 too.
_LZ_WORTH_IT = 6
try:  # ISA-L deflate (~4x faster than zlib here: 263 vs 47-66 MB/s on SmolLM2 counts); zlib format
    from isal import isal_zlib as _isal
except ImportError:  # pragma: no cover - depends on the environment
    _isal = None


def _deflate(data: Any) -> bytes:
    """zlib-format deflate stream of ``data`` at level 1 (what HDF5's deflate filter stores).

    Both implementations release the GIL. No byte shuffle: on SmolLM2 spike counts level-1
    deflate of plain little-endian int16 compresses better than of shuffled bytes (measured:
    ISA-L 2.73x vs 2.61x, zlib 2.75x vs 2.46x) and skips a pass.
    """
    if _isal is not None:
        return _isal.compress(data, 1)
    return zlib.compress(data, 1)


def _encode_chunk(block: np.ndarray, compress: bool) -> bytes:
    """Bytes of one stored chunk: deflate (zlib format, HDF5 filter "gzip") or raw, followed by
    the Fletcher-32 checksum HDF5's ``fletcher32`` filter (last in the pipeline) verifies on read.
    Count chunks are deflated by Huffman coding alone (:mod:`analysis.huffman_deflate`: 2.3-2.6x
    less CPU than ISA-L level 1, files ~3% larger) when numba is there."""
    if not compress:
        return with_fletcher32(block.tobytes())
    if _HUFFMAN and block.dtype == np.int16 and block.flags.c_contiguous:
        data = deflate_int16(block, fletcher32=True)
        if len(data) * _LZ_WORTH_IT > block.nbytes:
            return data
        lz = with_fletcher32(_deflate(block))  # near the 8x floor of Huffman coding: runs may pay
        return lz if len(lz) < len(data) else data
    return with_fletcher32(_deflate(block))


def deflate_name() -> str:
    """Which deflate the writer uses for count chunks (for benchmark logs)."""
    if _HUFFMAN:
        return "Huffman-only deflate (numba, analysis/huffman_deflate.py)"
    return "isal (ISA-L) level 1" if _isal is not None else "stdlib zlib level 1"


def vth_chunk(vals: np.ndarray, rows: int, compress: bool) -> bytes:
    """Stored bytes of one V_th chunk of ``rows`` float32 values: ``vals`` zero padded (as HDF5
    pads an edge chunk), deflated if ``compress`` (ISA-L level 1 if present: ~3x less CPU than
    zlib's level 4, the level the dataset's filter names, which only matters to a compressor)."""
    chunk = np.zeros(rows, np.float32)
    chunk[: vals.shape[0]] = vals
    raw = chunk.tobytes()
    if not compress:
        return with_fletcher32(raw)
    return with_fletcher32(_isal.compress(raw, 1) if _isal is not None else zlib.compress(raw, _VTH_GZIP_LEVEL))
