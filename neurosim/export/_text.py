"""Vectorized rendering of many short text lines (CSV rows, VCD value changes) into bytes.

Each line is a concatenation of parts: constant bytes, integers (decimal or binary) and
strings looked up in a small table. All lines are laid out in a byte matrix with one
fixed-width slot per part (integers right-aligned, strings left-aligned, unused bytes
marked 0xFF), filled column by column with numpy, then compacted by dropping the marks.
Python loops run only over parts and slot columns, never over lines.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Sequence, Union

import numpy as np

_PAD = 0xFF  # never produced by ASCII text: marks unused slot bytes
_DEC_LIMIT = 10**18  # decimal rendering supports |v| < 1e18
_BIN_LIMIT = 2**53  # binary digit counts use float64 frexp, exact below 2**53


@dataclass(frozen=True)
class IntField:
    """Signed integers, one per line, rendered in ``base`` 10 or 2 (no leading zeros)."""

    values: np.ndarray
    base: int = 10


@dataclass(frozen=True)
class Table:
    """Byte strings stored as a matrix ``chars`` [m, width] (uint8) with ``lengths`` [m]."""

    chars: np.ndarray
    lengths: np.ndarray

    @classmethod
    def of(cls, strings: Sequence[Union[bytes, str]]) -> "Table":
        """Build a table from a short list of strings (a loop over the list: keep it small)."""
        raw = [s.encode() if isinstance(s, str) else bytes(s) for s in strings]
        width = max((len(b) for b in raw), default=0)
        chars = np.zeros((len(raw), max(width, 1)), dtype=np.uint8)
        for i, b in enumerate(raw):
            chars[i, : len(b)] = np.frombuffer(b, dtype=np.uint8)
        return cls(chars, np.array([len(b) for b in raw], dtype=np.int64))


@dataclass(frozen=True)
class TableField:
    """One table entry per line: ``table`` row ``index[i]`` goes on line i."""

    table: Table
    index: np.ndarray


Part = Union[bytes, IntField, TableField]


def _digits(a: np.ndarray, base: int) -> np.ndarray:
    """Number of digits of non-negative ``a`` in ``base`` (1 for zero)."""
    if base == 10:
        pow10 = 10 ** np.arange(1, 19, dtype=np.int64)
        return np.searchsorted(pow10, a, side="right").astype(np.int64) + 1
    if base == 2:
        # frexp is exact for integers below 2**53: a = m * 2**e with 0.5 <= m < 1
        _, e = np.frexp(a.astype(np.float64))
        return np.where(a > 0, e, 1).astype(np.int64)
    raise ValueError(f"base must be 10 or 2, got {base}")


def _int_slot(buf: np.ndarray, col0: int, width: int, part: IntField, n: int) -> np.ndarray:
    """Fill the integer slot of ``width`` columns starting at ``col0``; return line lengths."""
    v = np.asarray(part.values)
    if v.shape != (n,):
        raise ValueError(f"IntField has {v.shape} values, expected ({n},)")
    if v.dtype.kind not in "iu":
        raise TypeError(f"IntField values must be integers, got dtype {v.dtype}")
    v = v.astype(np.int64, copy=False)
    if n == 0:
        return np.zeros(0, dtype=np.int64)
    q = np.abs(v)
    limit = _DEC_LIMIT if part.base == 10 else _BIN_LIMIT
    if int(q.max()) >= limit:
        raise ValueError(f"integer too large to render in base {part.base} (|v| >= {limit})")
    nd = _digits(q, part.base)
    neg = v < 0
    if q.max() < 2**31:
        q = q.astype(np.int32)  # 32-bit division is markedly faster
    base = q.dtype.type(part.base)
    start = width - nd  # first digit column within the slot
    sign_col = np.where(neg, start - 1, -1)
    for c in range(width - 1, -1, -1):
        q, r = np.divmod(q, base)
        col = r.astype(np.uint8) + np.uint8(48)
        col[c < start] = _PAD
        col[sign_col == c] = ord("-")
        buf[:, col0 + c] = col
    return nd + neg


def _table_slot(buf: np.ndarray, col0: int, part: TableField, n: int) -> tuple[int, np.ndarray]:
    idx = np.asarray(part.index, dtype=np.int64)
    if idx.shape != (n,):
        raise ValueError(f"TableField has {idx.shape} indices, expected ({n},)")
    chars = part.table.chars.copy()
    width = int(part.table.lengths.max()) if part.table.lengths.size else 0
    chars[np.arange(chars.shape[1]) >= part.table.lengths[:, None]] = _PAD
    if width:
        buf[:, col0 : col0 + width] = chars[idx, :width]
    return width, part.table.lengths[idx]


def _slot_width(part: Part, n: int) -> int:
    if isinstance(part, bytes):
        return len(part)
    if isinstance(part, IntField):
        v = np.asarray(part.values)
        if n == 0 or v.size == 0:
            return 0
        q = np.abs(v.astype(np.int64, copy=False))
        qmax = int(q.max())
        limit = _DEC_LIMIT if part.base == 10 else _BIN_LIMIT
        if qmax >= limit:
            raise ValueError(f"integer too large to render in base {part.base} (|v| >= {limit})")
        return int(_digits(np.array([qmax]), part.base)[0]) + int((v < 0).any())
    if isinstance(part, TableField):
        return int(part.table.lengths.max()) if part.table.lengths.size else 0
    raise TypeError(f"unsupported line part {type(part).__name__}")


def render_lines(n: int, parts: Sequence[Part]) -> tuple[np.ndarray, np.ndarray]:
    """Render ``n`` lines made of ``parts``; return ``(buffer uint8, line lengths int64)``.

    Lines are concatenated with no separator: put ``b"\\n"`` in ``parts`` to end them.
    Memory: one byte per line and slot column (about 30 MB per million CSV rows).
    """
    widths = [_slot_width(p, n) for p in parts]
    mat = np.empty((n, sum(widths)), dtype=np.uint8)
    line_len = np.zeros(n, dtype=np.int64)
    col = 0
    for part, w in zip(parts, widths):
        if isinstance(part, bytes):
            if w:
                mat[:, col : col + w] = np.frombuffer(part, dtype=np.uint8)
            line_len += w
        elif isinstance(part, IntField):
            ln = _int_slot(mat, col, w, part, n)
            line_len += ln
        else:
            _, ln = _table_slot(mat, col, part, n)
            line_len += ln
        col += w
    flat = mat.ravel()
    return flat[flat != _PAD], line_len


def gather_lines(buf: np.ndarray, line_len: np.ndarray, order: np.ndarray) -> np.ndarray:
    """Reorder rendered lines: return the bytes of lines ``order[0], order[1], ...``."""
    start = np.zeros(line_len.shape[0], dtype=np.int64)
    if line_len.shape[0] > 1:
        np.cumsum(line_len[:-1], out=start[1:])
    ln = line_len[order]
    total = int(ln.sum())
    if total == 0:
        return np.empty(0, dtype=np.uint8)
    out_start = np.zeros(order.shape[0], dtype=np.int64)
    if order.shape[0] > 1:
        np.cumsum(ln[:-1], out=out_start[1:])
    shift = np.repeat(start[order] - out_start, ln)
    return buf[np.arange(total, dtype=np.int64) + shift]
