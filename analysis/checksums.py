"""Integrity checks of what a trace stores: HDF5's Fletcher-32 per chunk and a SHA-256 of /stats.

- :func:`fletcher32`: the checksum HDF5's ``fletcher32`` filter appends to every chunk
  (H5checksum.c, ``H5_checksum_fletcher32``: 16-bit big-endian words, sums with end-around
  carry, i.e. modulo 65535 with 0xFFFF standing for a nonzero multiple), stored little-endian
  after the filtered bytes. Computed here for chunks the trace writer deflates and stores with
  direct chunk writes; HDF5 verifies it on every read.
- :func:`group_digest`: SHA-256 over every dataset and attribute of an HDF5 group (sorted by
  name; the digest attribute itself left out), for the statistics in ``/stats``.
"""
from __future__ import annotations

import hashlib
from typing import Any

import numpy as np

__all__ = ["fletcher32", "fletcher32_numpy", "with_fletcher32", "group_digest", "text_digest", "DIGEST_ATTR", "TEXT_DIGEST_ATTRS"]

DIGEST_ATTR = "sha256"  # attribute of /stats holding group_digest(/stats)
TEXT_DATASETS = ("layer_index", "prompt_text")  # variable-length strings: HDF5 filters cannot apply
TEXT_DIGEST_ATTRS = {name: f"{name}_sha256" for name in TEXT_DATASETS}  # root attributes
_M = 65535


def _fold(total: int) -> int:
    # Repeated end-around-carry folding keeps the value mod 65535 and never turns a positive
    # sum into 0: the result is 0 only for 0, else in [1, 0xFFFF].
    return 0 if total == 0 else (total - 1) % _M + 1


_IDX = np.arange(0, dtype=np.int64)  # cached 0..n-1 (grown on demand)

try:  # numba (a core dependency): one pass that releases the GIL, so compression threads run beside it
    from numba import njit
except ImportError:  # pragma: no cover - exercised only without numba
    njit = None

if njit is not None:

    @njit(cache=True, nogil=True)
    def _sums(buf):  # pragma: no cover - compiled
        # sum1 = sum of the 16-bit big-endian words, sum2 = sum of the running sums, exact in
        # int64 (below ~16 MiB of data, as the numpy version)
        s1 = 0
        s2 = 0
        for i in range(buf.size // 2):
            s1 += (np.int64(buf[2 * i]) << 8) | np.int64(buf[2 * i + 1])
            s2 += s1
        if buf.size % 2:  # odd length: the last byte is the high byte of a final word
            s1 += np.int64(buf[buf.size - 1]) << 8
            s2 += s1
        return s1, s2


def fletcher32(data: bytes | bytearray | memoryview) -> int:
    """HDF5's Fletcher-32 of ``data`` (any length); one compiled pass (numba), else numpy."""
    if njit is None or len(data) > (16 << 20):
        return fletcher32_numpy(data)
    s1, s2 = _sums(np.frombuffer(data, dtype=np.uint8))
    return (_fold(int(s2)) << 16) | _fold(int(s1))


def fletcher32_numpy(data: bytes | bytearray | memoryview) -> int:
    """HDF5's Fletcher-32 of ``data`` (any length), vectorised with numpy (the reference)."""
    global _IDX
    buf = np.frombuffer(data, dtype=np.uint8)
    n = buf.size // 2
    words = buf[: 2 * n].view(">u2").astype(np.int64)
    if buf.size % 2:  # odd length: the last byte is the high byte of a final word
        words = np.append(words, np.int64(buf[-1]) << 8)
    m = words.size
    if m == 0:
        return 0
    if _IDX.size < m:
        _IDX = np.arange(max(m, 2 * _IDX.size), dtype=np.int64)
    # sum1 = sum of words; sum2 = sum of the running sums = sum_i (m - i) * w_i = m * sum1 - sum_i i * w_i
    # (exact in int64 for chunks below ~16 MiB: m**2 * 65535 < 2**63 for m < 1.1e7 words)
    s1 = int(words.sum())
    s2 = m * s1 - int(np.dot(_IDX[:m], words))
    return (_fold(s2) << 16) | _fold(s1)


def with_fletcher32(data: bytes) -> bytes:
    """``data`` followed by its Fletcher-32, as HDF5's filter stores a chunk (checksum little-endian)."""
    return bytes(data) + int(fletcher32(data)).to_bytes(4, "little")


def _update(h: Any, value: Any) -> None:
    a = np.asarray(value)
    if a.dtype.kind in "biufc" and a.dtype.names is None:
        h.update(a.dtype.str.encode() + repr(a.shape).encode() + np.ascontiguousarray(a).tobytes())
    else:  # strings, object (variable-length) and compound arrays: their Python values
        h.update(repr(a.tolist() if isinstance(value, np.ndarray) else value).encode("utf-8", "backslashreplace"))


def group_digest(group: Any) -> str:
    """SHA-256 (hex) of every dataset's values and every attribute in an h5py group, recursively."""
    import h5py

    h = hashlib.sha256()
    items: list[tuple[str, Any]] = []
    group.visititems(lambda name, obj: items.append((name, obj)))
    for name, obj in [("", group)] + sorted(items, key=lambda t: t[0]):
        h.update(b"\0obj:" + name.encode())
        for key in sorted(obj.attrs):
            if name == "" and key == DIGEST_ATTR:
                continue
            h.update(b"\0attr:" + key.encode())
            _update(h, obj.attrs[key])
        if isinstance(obj, h5py.Dataset):
            _update(h, obj[()])
    return h.hexdigest()


def text_digest(f: Any, name: str) -> str:
    """SHA-256 (hex) of one variable-length string dataset of a trace (/layer_index,
    /prompt_text), which HDF5's fletcher32 filter cannot cover; stored as root attribute
    ``<name>_sha256``."""
    h = hashlib.sha256()
    _update(h, f[name][()])
    return h.hexdigest()
