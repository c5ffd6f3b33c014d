"""Per-layer buffers of the trace writer: rows waiting to fill a chunk, and arrays lent by the caller."""
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
