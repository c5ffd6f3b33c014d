"""Per-layer state of the trace writer: rows waiting to fill a chunk, arrays lent by the caller, and
the low-level h5py calls that create a layer's attributes."""
from __future__ import annotations

from typing import Any

import h5py
import numpy as np


class _Borrowed:
    """A caller's array that chunks are compressed from in place; ``release`` runs once none is pending."""

    def __init__(self, release: Any) -> None:
        self.release, self.count = release, 1  # the append's own hold

    def drop(self) -> None:
        self.count -= 1
        if self.count == 0:
            self.release()


class _LayerBuffer:
    """Rows of one stored counts dataset waiting to fill a chunk."""

    def __init__(self, dset: h5py.Dataset, vth: h5py.Dataset, rows: int, in_features: int) -> None:
        self.dset, self.vth = dset, vth
        self.rows = rows
        self.block = np.empty((rows, in_features), dtype=np.int16)
        self.vblock = np.zeros(rows, dtype=np.float32)
        self.fill = 0  # rows in block
        self.stored = 0  # rows already handed to the compressor (whole chunks)
        self.extent = 0  # rows of the counts dataset's current extent
        self.vpending: list[np.ndarray] = []  # V_th rows not yet written
        self.vrows = 0  # rows in vpending
        self.vstored = 0  # V_th rows written
        self.vextent = 0  # rows of the vth dataset's current extent
        self.free: list[np.ndarray] = []  # recycled chunk blocks (no fresh allocations)

    @property
    def total(self) -> int:
        return self.stored + self.fill


_STR_DTYPE = h5py.string_dtype("utf-8")
_STR_TYPE = h5py.h5t.py_create(_STR_DTYPE, logical=True)  # what h5py stores for a str
_STR_MTYPE = h5py.h5t.py_create(_STR_DTYPE)  # the memory type h5py converts str objects from
_SCALAR = h5py.h5s.create(h5py.h5s.SCALAR)
_GCPL = h5py.h5p.create(h5py.h5p.GROUP_CREATE)  # what create_group passes (no creation order, no times)
_GCPL.set_obj_track_times(False)


def _link_name(group: h5py.Group, name: str) -> tuple[bytes, Any]:
    """``name`` encoded and the link creation property list, as h5py's high-level calls make
    them for a new link in ``group`` (ASCII where the name allows, else UTF-8). Through h5py's
    own helper where it has one (``Group._e``, private), else built the same way."""
    encode = getattr(group, "_e", None)
    if encode is not None:
        return encode(name, lcpl=True)
    lcpl = h5py.h5p.create(h5py.h5p.LINK_CREATE)
    lcpl.set_create_intermediate_group(True)
    try:
        raw = name.encode("ascii")
        lcpl.set_char_encoding(h5py.h5t.CSET_ASCII)
    except UnicodeEncodeError:
        raw = name.encode("utf-8")
        lcpl.set_char_encoding(h5py.h5t.CSET_UTF8)
    return raw, lcpl


def _set_attrs(oid: Any, **items: str | int) -> None:
    """Scalar str (variable-length UTF-8) and int (int64) attributes of the object ``oid`` (an
    h5py ObjectID), typed exactly as ``obj.attrs[name] = value`` types them, through h5py's
    low-level calls (3x faster)."""
    for name, value in items.items():
        if isinstance(value, str):
            a = h5py.h5a.create(oid, name.encode(), _STR_TYPE, _SCALAR)
            a.write(np.array(value, dtype=_STR_DTYPE), mtype=_STR_MTYPE)
        else:
            a = h5py.h5a.create(oid, name.encode(), h5py.h5t.STD_I64LE, _SCALAR)
            a.write(np.array(value, dtype=np.int64), mtype=h5py.h5t.NATIVE_INT64)
