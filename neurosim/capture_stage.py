"""Staging of spike counts between a capture's forward hooks and the trace writer thread.

- :class:`HostRing`: one host buffer (page-locked on CUDA, so device-to-host copies run
  asynchronously) handed out in FIFO slices; a full ring makes the forward wait, which
  bounds the memory in flight.
- :func:`counts_device`: spike counts computed where the model runs, without any host
  synchronisation; the checks that :func:`neurosim.capture.counts_int16` makes at once
  (finite activations, counts inside int16) travel as a small status vector and are made
  by :func:`check_status` on the writer thread once the copy has landed.
"""
from __future__ import annotations

import threading
from collections import deque
from typing import Callable

import numpy as np
import torch

import encoders

try:  # numba is a core dependency (encoders use it too); torch ops cover an environment without it
    from numba import njit
except ImportError:  # pragma: no cover - exercised only without numba
    njit = None

_ALIGN = 64  # bytes: slices start on cache-line boundaries (any dtype view is aligned)
_POLL_S = 0.05  # a producer waiting for room looks for a failure of the writer this often
I16_MIN, I16_MAX = -32768, 32767


def _aligned(n: int) -> int:
    return -(-n // _ALIGN) * _ALIGN


def int16_range_message(lo: float, hi: float, clamped: bool) -> str:
    """Why a count outside int16 cannot be stored (``clamped``: some V_th sits at its upper clamp)."""
    bad = lo if lo < -hi else hi
    why = (f"V_th is clamped to at most {encoders.VTH_MAX:g}, so |x| above {encoders.VTH_MAX * I16_MAX:.3g} "
           "cannot be stored" if clamped else "use a smaller k")
    return f"spike count {bad:.0f} does not fit int16 [-32768, 32767], the trace count type: {why}"


if njit is not None:

    @njit(cache=True, nogil=True)
    def _div_round_i16(x, vth, out):  # pragma: no cover - compiled
        one = np.float32(1.0)
        for i in range(x.shape[0]):
            v = vth[i] * one  # float32 / float32: the quotient rounded to float32, as torch.div
            for j in range(x.shape[1]):
                out[i, j] = np.int16(np.rint(x[i, j] / v))


def div_round_into(x: torch.Tensor, vth: torch.Tensor, out: torch.Tensor) -> bool:
    """``out = round(x / vth)`` (int16) in one serial pass on the CPU, if numba is there and
    the tensors suit it (float32 x [rows, C] and out, vth [rows], all contiguous); else
    False and nothing written. The caller makes sure every count fits int16.

    One pass and no parallel region: torch's divide, round and narrowing copy are three
    parallel regions per layer, which stall whenever other jobs deschedule one of their
    threads (measured: 3-4 ms a call inside a loaded capture against 0.2 ms alone).
    """
    if (njit is None or x.device.type != "cpu" or x.dtype != torch.float32 or out.dtype != torch.int16
            or not (x.is_contiguous() and out.is_contiguous() and vth.is_contiguous()) or x.dim() != 2):
        return False
    _div_round_i16(x.numpy(), vth.numpy().reshape(-1), out.numpy())
    return True


def counts_device(x: torch.Tensor, k: float) -> tuple[torch.Tensor, torch.Tensor]:
    """Counts int16 [rows, C] of ``x`` [rows, C] and a status float32 [2 rows + 2] = (V_th,
    mean|x|, min s, max s), both on x's device, with no host synchronisation.

    The arithmetic is :func:`encoders.spike_counts`'s, op for op (bit-identical counts and
    V_th on the same device); values are checked later with :func:`check_status`.
    """
    xf = x.float()
    a = xf.abs()
    mean = a.mean(dim=-1, keepdim=True)
    vth = (mean / float(k)).clamp_(encoders.VTH_MIN, encoders.VTH_MAX)
    s = torch.div(xf, vth, out=a).round_()  # reuse the |x| buffer
    lo, hi = torch.aminmax(s)
    status = torch.cat([vth.view(-1), mean.view(-1), lo.view(1), hi.view(1)])
    return s.to(torch.int16), status


def check_status(name: str, k: float, status: np.ndarray, rows: int) -> None:
    """Raise the ValueError :func:`neurosim.capture.counts_int16` raises, from a status of
    :func:`counts_device` (NaN/inf activations, or counts outside int16)."""
    vth, mean = status[:rows], status[rows : 2 * rows]
    lo, hi = float(status[2 * rows]), float(status[2 * rows + 1])
    if not np.isfinite(mean).all():
        raise ValueError(f"layer {name!r} (k={k}): activations contain NaN or inf; spike counts are undefined")
    if lo < I16_MIN or hi > I16_MAX:
        raise ValueError(f"layer {name!r} (k={k}): " + int16_range_message(lo, hi, bool((vth >= encoders.VTH_MAX).any())))


class _Slot:
    __slots__ = ("start", "nbytes", "done")

    def __init__(self, start: int, nbytes: int) -> None:
        self.start, self.nbytes, self.done = start, nbytes, False


class HostRing:
    """A fixed host buffer handed out in FIFO slices (page-locked if ``pin``).

    :meth:`take` blocks while the ring is full (calling ``check`` every 50 ms, so a failed
    consumer is noticed); :meth:`release` may come in any order, space is reused in order.
    """

    def __init__(self, nbytes: int, pin: bool = False) -> None:
        if not isinstance(nbytes, int) or nbytes <= 0:
            raise ValueError(f"nbytes must be a positive int, got {nbytes!r}")
        self.size = _aligned(nbytes)
        self.buf = torch.empty(self.size, dtype=torch.uint8, pin_memory=pin)
        self._slots: deque[_Slot] = deque()
        self._cond = threading.Condition()

    @staticmethod
    def nbytes(rows: int, channels: int, status: int = 0) -> int:
        """Bytes of a slot holding int16 counts [rows, channels] and ``status`` float32 values."""
        return _aligned(2 * rows * channels) + _aligned(4 * status)

    def take(self, nbytes: int, check: Callable[[], None], on_full: Callable[[], None] | None = None) -> _Slot:
        """A slice of ``nbytes``; while there is no room, call ``on_full`` (which should free
        it: e.g. drain a deferred writer) or else wait for releases."""
        n = _aligned(nbytes)
        if n > self.size:
            raise ValueError(f"a slice of {nbytes} bytes does not fit the {self.size}-byte staging ring")
        while True:
            with self._cond:
                start = self._fit(n)
                if start is not None:
                    slot = _Slot(start, n)
                    self._slots.append(slot)
                    return slot
                if on_full is None:
                    self._cond.wait(_POLL_S)
            check()
            if on_full is not None:
                on_full()

    def _fit(self, n: int) -> int | None:
        if not self._slots:
            return 0
        tail, last = self._slots[0].start, self._slots[-1]
        head = last.start + last.nbytes
        if last.start >= tail:  # live [tail, head): free at the end, then from 0 to tail
            if self.size - head >= n:
                return head
            return 0 if tail >= n else None
        return head if tail - head >= n else None  # wrapped: free [head, tail)

    def release(self, slot: _Slot) -> None:
        with self._cond:
            slot.done = True
            while self._slots and self._slots[0].done:
                self._slots.popleft()
            self._cond.notify_all()

    def views(self, slot: _Slot, rows: int, channels: int, status: int = 0) -> tuple[torch.Tensor, torch.Tensor]:
        """(int16 [rows, channels], float32 [status]) views of ``slot``."""
        c = _aligned(2 * rows * channels)
        counts = self.buf[slot.start : slot.start + 2 * rows * channels].view(torch.int16).view(rows, channels)
        stat = self.buf[slot.start + c : slot.start + c + 4 * status].view(torch.float32)
        return counts, stat
