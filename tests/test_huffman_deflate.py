"""Huffman-only deflate of int16 count chunks (analysis/huffman_deflate.py): zlib and HDF5 read
back exactly the input, the compiled kernel equals its pure-Python form byte for byte, codes stay
within deflate's 15 bits on skewed data, and a trace written with it reads back the counts."""
from __future__ import annotations

import zlib

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis import huffman_deflate as hd
from analysis.checksums import with_fletcher32

pytestmark = pytest.mark.skipif(not hd.AVAILABLE, reason="needs numba")


def _kernel_bytes(values: np.ndarray, row: int, compiled: bool) -> bytes:
    out = np.zeros(values.size + 64, np.uint32)
    fn = hd._deflate_kernel if compiled else hd._deflate_kernel.py_func
    n = fn(values, row, hd._SAMPLE_EVERY, hd._CL_ORDER, out)
    return out.view(np.uint8)[:n].tobytes()


@settings(max_examples=150, deadline=None)
@given(
    rows=st.integers(0, 40), cols=st.integers(1, 70), spread=st.sampled_from([1, 8, 127, 128, 300, 32768]),
    seed=st.integers(0, 2**32 - 1),
)
def test_roundtrip_through_zlib(rows, cols, spread, seed):
    rng = np.random.default_rng(seed)
    a = rng.integers(-spread, spread, (rows, cols), endpoint=spread < 32768).astype(np.int16)
    z = hd.deflate_int16(a)
    assert zlib.decompress(z) == a.tobytes()
    assert z[:2] == b"\x78\x01" and int.from_bytes(z[-4:], "big") == zlib.adler32(a.tobytes())


@settings(max_examples=25, deadline=None)
@given(n=st.integers(0, 300), seed=st.integers(0, 2**32 - 1))
def test_compiled_kernel_equals_python_reference(n, seed):
    rng = np.random.default_rng(seed)
    a = np.clip(np.round(rng.standard_cauchy(n) * 3), -32768, 32767).astype(np.int16)
    row = max(1, n // 7)
    assert _kernel_bytes(a, row, True) == _kernel_bytes(a, row, False)


def test_skewed_bytes_need_length_limit():
    # Fibonacci byte frequencies: an unlimited Huffman code would be 23 bits deep
    fib = [1, 1]
    while len(fib) < 24:
        fib.append(fib[-1] + fib[-2])
    b = np.concatenate([np.full(f, i, np.uint8) for i, f in enumerate(fib)])
    np.random.default_rng(0).shuffle(b)
    a = b[: b.size // 2 * 2].view(np.int16)
    freq = np.maximum(np.bincount(a.view(np.uint8), minlength=257), 1).astype(np.int64)
    lens = hd._code_lengths(freq)
    assert lens.max() == 15 and (2.0 ** -lens.astype(float)).sum() == 1.0  # limited and complete
    assert zlib.decompress(hd.deflate_int16(a)) == a.tobytes()


def test_large_chunk_and_extremes():
    a = np.tile(np.array([-32768, 32767, 0, -1, 1, 127, -128, 128, -129], np.int16), 70_000).reshape(-1, 9)
    assert zlib.decompress(hd.deflate_int16(a)) == a.tobytes()


def test_hdf5_reads_a_direct_chunk(tmp_path):
    a = np.random.default_rng(1).integers(-20, 20, (256, 576)).astype(np.int16)
    with h5py.File(tmp_path / "f.h5", "w") as f:
        d = f.create_dataset("c", shape=a.shape, dtype=np.int16, chunks=a.shape, compression="gzip",
                             compression_opts=1, fletcher32=True)
        d.id.write_direct_chunk((0, 0), with_fletcher32(hd.deflate_int16(a)), filter_mask=0)
    with h5py.File(tmp_path / "f.h5", "r") as f:
        np.testing.assert_array_equal(f["c"][()], a)


def test_bad_input():
    with pytest.raises(TypeError, match="int16"):
        hd.deflate_int16(np.zeros((2, 2), np.int32))
    with pytest.raises(TypeError, match="C-contiguous"):
        hd.deflate_int16(np.zeros((4, 4), np.int16)[:, ::2])


def test_stored_chunk_carries_fletcher32():
    a = np.random.default_rng(5).integers(-9, 9, (64, 33)).astype(np.int16)
    assert hd.deflate_int16(a, fletcher32=True) == with_fletcher32(hd.deflate_int16(a))


def test_writer_keeps_lz77_for_runs():
    # Huffman coding alone cannot go below 1 bit a byte; a chunk of zeros goes to LZ77 deflate
    from analysis.trace_chunks import _encode_chunk

    zeros = np.zeros((256, 576), np.int16)
    stored = _encode_chunk(zeros, True)
    assert len(stored) < 2000 and zlib.decompress(stored[:-4]) == zeros.tobytes()
    assert stored == with_fletcher32(stored[:-4])
    counts = np.random.default_rng(2).integers(-8, 9, (256, 576)).astype(np.int16)
    assert _encode_chunk(counts, True) == hd.deflate_int16(counts, fletcher32=True)  # the usual case
