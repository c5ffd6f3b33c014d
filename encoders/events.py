"""Spike trains as address-event (AER) records and as bit-packed dense planes.

Hardware consumes events, not dense tensors: one record per non-zero spike with its
time step, its address (flat index into the count array, C order) and its polarity.
"""
from __future__ import annotations

from dataclasses import dataclass

import numpy as np
import torch

from ._arrays import ArrayLike, as_tensor

EVENT_DTYPE = np.dtype([("step", "<u2"), ("index", "<i8"), ("polarity", "i1")])


@dataclass(frozen=True)
class SpikeEvents:
    """Events of a spike train, sorted by step then address.

    Attributes:
        step: int64 [n] time step of each event (0-based, < T).
        index: int64 [n] flat C-order index into ``shape``.
        polarity: int8 [n] +1 or -1.
        shape: shape of one step (the counts' shape).
        T: number of steps in the train (events may leave trailing steps empty).
    """

    step: np.ndarray
    index: np.ndarray
    polarity: np.ndarray
    shape: tuple[int, ...]
    T: int

    def __len__(self) -> int:
        return int(self.step.shape[0])

    def multi_index(self) -> tuple[np.ndarray, ...]:
        """Per-axis coordinates of each event (e.g. ``(token, channel)``)."""
        return np.unravel_index(self.index, self.shape) if self.shape else ()

    def to_records(self) -> np.ndarray:
        """A structured array with fields ``step`` (u2), ``index`` (i8), ``polarity`` (i1)."""
        if self.T > np.iinfo(np.uint16).max + 1:
            raise ValueError(f"T={self.T} does not fit the uint16 step field")
        rec = np.empty(len(self), dtype=EVENT_DTYPE)
        rec["step"], rec["index"], rec["polarity"] = self.step, self.index, self.polarity
        return rec


def to_events(spikes: ArrayLike, max_value: int = 1) -> SpikeEvents:
    """Dense spike train ``[T, *shape]`` (values in {-1, 0, 1}) -> :class:`SpikeEvents` (numpy).

    Graded trains pass ``max_value`` (their payload bound, at most 127): ``polarity`` then
    holds each event's signed payload.
    """
    if isinstance(max_value, bool) or not isinstance(max_value, int) or not 1 <= max_value <= 127:
        raise ValueError(f"max_value must be an integer in [1, 127] (int8 payloads), got {max_value!r}")
    s, _ = as_tensor(spikes, "spikes")
    if s.dim() < 1:
        raise ValueError("spikes must have a leading time axis: shape [T, *shape]")
    if s.is_floating_point():
        if not bool(torch.isfinite(s).all()) or bool((s != torch.round(s)).any()):
            raise ValueError("spikes must be integer-valued and finite")
    if s.numel() and (int(s.min()) < -max_value or int(s.max()) > max_value):
        raise ValueError("spike values must lie in {-1, 0, 1}" if max_value == 1
                         else f"spike payloads must lie in [-{max_value}, {max_value}]")
    T, shape = int(s.shape[0]), tuple(int(d) for d in s.shape[1:])
    flat = s.reshape(T, int(np.prod(shape)) if shape else 1)
    nz = torch.nonzero(flat, as_tuple=True)  # row-major: sorted by step, then index
    pol = flat[nz].to(torch.int8)
    return SpikeEvents(
        nz[0].cpu().numpy().astype(np.int64),
        nz[1].cpu().numpy().astype(np.int64),
        pol.cpu().numpy(),
        shape,
        T,
    )


def from_events(events: SpikeEvents) -> np.ndarray:
    """:class:`SpikeEvents` -> dense int8 spike train ``[T, *shape]`` (numpy)."""
    size = int(np.prod(events.shape)) if events.shape else 1
    if len(events):
        if events.step.min() < 0 or events.step.max() >= events.T:
            raise ValueError(f"event step outside [0, {events.T})")
        if events.index.min() < 0 or events.index.max() >= size:
            raise ValueError(f"event index outside [0, {size})")
        if not np.isin(events.polarity, (-1, 1)).all():
            raise ValueError("event polarity must be +1 or -1")
    out = np.zeros((events.T, size), dtype=np.int8)
    out[events.step, events.index] = events.polarity
    return out.reshape((events.T,) + tuple(events.shape))


@dataclass(frozen=True)
class PackedSpikes:
    """Dense spike train packed 1 bit per slot (``magnitude``), plus a sign plane if needed.

    ``sign`` is None for unipolar trains; otherwise bit set means the spike is -1.
    """

    magnitude: np.ndarray
    sign: np.ndarray | None
    shape: tuple[int, ...]

    @property
    def nbytes(self) -> int:
        return self.magnitude.nbytes + (0 if self.sign is None else self.sign.nbytes)


def pack_spikes(spikes: ArrayLike) -> PackedSpikes:
    """Pack a dense train ``[T, *shape]`` with values in {-1, 0, 1} into bit planes."""
    s, _ = as_tensor(spikes, "spikes")
    a = s.cpu().numpy()
    if a.size and (a.min() < -1 or a.max() > 1):
        raise ValueError("spike values must lie in {-1, 0, 1}")
    mag = np.packbits((a != 0).ravel())
    sign = np.packbits((a < 0).ravel()) if a.size and a.min() < 0 else None
    return PackedSpikes(mag, sign, tuple(a.shape))


def unpack_spikes(packed: PackedSpikes) -> np.ndarray:
    """Inverse of :func:`pack_spikes`: int8 train of the original shape."""
    n = int(np.prod(packed.shape))
    out = np.unpackbits(packed.magnitude, count=n).astype(np.int8)
    if packed.sign is not None:
        out[np.unpackbits(packed.sign, count=n).astype(bool)] = -1
    return out.reshape(packed.shape)
