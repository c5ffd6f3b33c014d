"""Tallies of one chunk of counts (events per step, event histogram, block fetches) without
replaying: bit patterns and popcounts (numpy), or the same with torch where the counts live.
Shared by the Activity fast path (:mod:`.activity_fast`) and the GEMM engines (:mod:`.kernels_gemm`).
"""
from __future__ import annotations

import numpy as np
import torch
import torch.nn.functional as F

import encoders

from .events import Tally

_BIT_TABLE_MAX_T = 16  # up to 2**16 distinct patterns: per-step counts from one histogram


_BYTE_POP = np.array([bin(i).count("1") for i in range(256)], dtype=np.uint8)


def popcount(p: np.ndarray) -> np.ndarray:
    """Set bits of each unsigned integer (``np.bitwise_count`` on numpy >= 2, else a byte table)."""
    if hasattr(np, "bitwise_count"):
        return np.bitwise_count(p)
    b = _BYTE_POP[np.ascontiguousarray(p).view(np.uint8)].reshape(p.shape + (p.dtype.itemsize,))
    return b.sum(axis=-1, dtype=np.uint8)


def _uint_for(T: int) -> type:
    return np.uint8 if T <= 8 else np.uint16 if T <= 16 else np.uint32 if T <= 32 else np.uint64


def spike_patterns(counts: np.ndarray, scheme: str, T: int) -> np.ndarray:
    """Unsigned [tokens, in] bit patterns of in-range counts: bit ``k`` set = the step of
    shift ``k`` fires (``|c|`` for bitwise, bitwise-signed and sign-split bitwise; the
    ``T``-bit two's complement of ``c`` for bitwise-twos)."""
    c = np.asarray(counts)
    if encoders.get_scheme(scheme).twos:
        mask = np.uint64((1 << T) - 1) if T < 64 else np.uint64(2**64 - 1)
        return (c.astype(np.int64).view(np.uint64) & mask).astype(_uint_for(T))
    wide = c.astype(np.int32 if c.dtype.itemsize <= 2 else np.int64)  # abs of the minimum fits
    return np.abs(wide).astype(_uint_for(T))


def _shifts(T: int, bit_order: str) -> np.ndarray:
    """Bit shift carried by each step: MSB first (``T-1 .. 0``) or LSB first."""
    k = np.arange(T)
    return k[::-1].copy() if bit_order == "msb" else k


def _bits_per_shift(p: np.ndarray, T: int) -> np.ndarray:
    """int64 [T]: slots with bit ``k`` set, for each shift ``k``."""
    if T <= _BIT_TABLE_MAX_T:
        hist = np.bincount(p.ravel().astype(np.int64), minlength=1 << T).astype(np.int64)
        values = np.arange(1 << T, dtype=np.int64)
        return np.array([int(hist[(values >> k) & 1 == 1].sum()) for k in range(T)], dtype=np.int64)
    return np.array([int(np.count_nonzero((p >> np.uint64(k)) & np.uint64(1))) for k in range(T)], dtype=np.int64)


def _blocks(a: np.ndarray, n_blocks: int, block_columns: int) -> np.ndarray:
    """[tokens, in] -> [tokens, n_blocks, block_columns], zero-padded at the end."""
    n, in_f = a.shape
    pad = n_blocks * block_columns - in_f
    if pad:
        a = np.concatenate([a, np.zeros((n, pad), dtype=a.dtype)], axis=1)
    return a.reshape(n, n_blocks, block_columns)


def count_tally(counts: np.ndarray, scheme: str, T: int, bit_order: str, n_blocks: int, block_columns: int) -> Tally:
    """The replay's per-chunk counters (:class:`~neurosim.sim.events.Tally`) from in-range counts."""
    c = np.asarray(counts)
    if encoders.get_scheme(scheme).rate:
        mag = np.abs(c).astype(np.int64)
        hist = np.bincount(mag.ravel(), minlength=T + 1).astype(np.int64)
        per_step = np.cumsum(hist[1:][::-1])[::-1].astype(np.int64)  # slots with |c| > t
        fetch = _blocks(mag, n_blocks, block_columns).max(axis=2, initial=0).sum(axis=0)
        return Tally(torch.from_numpy(per_step.copy()), torch.from_numpy(mag.sum(axis=1)),
                     torch.from_numpy(hist), torch.from_numpy(fetch.astype(np.int64)))
    p = spike_patterns(c, scheme, T)
    pop = popcount(p)
    by_shift = _bits_per_shift(p, T)
    per_step = by_shift[_shifts(T, bit_order)]
    hist = np.bincount(pop.ravel().astype(np.int64), minlength=T + 1).astype(np.int64)
    ored = np.bitwise_or.reduce(_blocks(p, n_blocks, block_columns), axis=2)
    fetch = popcount(ored).sum(axis=0, dtype=np.int64)
    return Tally(torch.from_numpy(per_step), torch.from_numpy(pop.sum(axis=1, dtype=np.int64)),
                 torch.from_numpy(hist), torch.from_numpy(fetch))


def count_tally_torch(counts: torch.Tensor, scheme: str, T: int, bit_order: str, n_blocks: int,
                      block_columns: int) -> Tally:
    """:func:`count_tally` with torch ops where the counts live (CUDA): one pass per step,
    no copy of the counts to the host; only the small counters come back."""
    by_shift, hist, ept, fetch = tally_device(counts, scheme, T, n_blocks, block_columns)
    return tally_from_parts(None if by_shift is None else by_shift.cpu().numpy(), hist.cpu().numpy(),
                            ept.cpu(), fetch.cpu(), T, bit_order)


def tally_device(counts: torch.Tensor, scheme: str, T: int, n_blocks: int,
                 block_columns: int) -> tuple[torch.Tensor | None, torch.Tensor, torch.Tensor, torch.Tensor]:
    """The counters of in-range counts [n, in], left where the counts are (no host read):
    ``(slots with bit k set for each shift k [T] (None for rate codes), histogram of events
    per slot [T + 1], events per token [n], block fetches [n_blocks])``, int64."""
    c = counts.to(torch.int64)
    n, in_f = (int(d) for d in c.shape)
    pad = n_blocks * block_columns - in_f

    def blocks(a: torch.Tensor) -> torch.Tensor:
        return F.pad(a, (0, pad)).view(n, n_blocks, block_columns)

    if encoders.get_scheme(scheme).rate:
        mag = c.abs()
        hist = torch.bincount(mag.view(-1), minlength=T + 1)
        fetch = blocks(mag).amax(dim=2).sum(dim=0) if n else torch.zeros(n_blocks, dtype=torch.int64, device=c.device)
        return None, hist, mag.sum(dim=1), fetch
    if encoders.get_scheme(scheme).twos:
        p = c & ((1 << T) - 1) if T < 63 else c  # T-bit pattern (T >= 63: every bit of the word)
    else:
        p = c.abs()
    pop = torch.zeros_like(p)
    fetch = torch.zeros(n_blocks, dtype=torch.int64, device=c.device)
    by_shift = []
    for k in range(T):  # loop over steps: bit k of every slot
        bit = (p >> k) & 1 if k < 63 else (p < 0).to(torch.int64)
        pop += bit
        by_shift.append(bit.sum())
        if n:
            fetch += blocks(bit).amax(dim=2).sum(dim=0)
    shifts = torch.stack(by_shift) if by_shift else torch.zeros(0, dtype=torch.int64, device=c.device)
    return shifts, torch.bincount(pop.view(-1), minlength=T + 1), pop.sum(dim=1), fetch


def tally_from_parts(by_shift: np.ndarray | None, hist: np.ndarray, events_per_token: torch.Tensor,
                     block_fetches: torch.Tensor, T: int, bit_order: str) -> Tally:
    """A :class:`Tally` from host copies of :func:`tally_device`'s counters (``by_shift`` None:
    a rate code, whose events per step are the slots with ``|c| > t``)."""
    hist = np.asarray(hist, dtype=np.int64)
    return Tally(torch.from_numpy(events_per_step(by_shift, hist, T, bit_order)), events_per_token,
                 torch.from_numpy(hist), block_fetches)


def events_per_step(by_shift: np.ndarray | None, hist: np.ndarray, T: int, bit_order: str) -> np.ndarray:
    """Events per step (int64 [T]) from :func:`tally_device`'s counters: the slots per bit
    shift in step order, or for a rate code (``by_shift`` None) the slots with ``|c| > t``."""
    if by_shift is None:
        return np.cumsum(hist[1:][::-1])[::-1].astype(np.int64)  # a copy: positive strides, as torch needs
    return np.asarray(by_shift, dtype=np.int64)[_shifts(T, bit_order)]  # fancy indexing copies


def covers(scheme: str) -> bool:
    """Whether the count-only path computes ``scheme``'s Activity: unit-spike rate and plain bit
    codes. Graded payloads (multiply-accumulates) and NAF digits need the replay."""
    sch = encoders.get_scheme(scheme)
    return not (sch.graded or sch.naf)


def check_covered(scheme: str) -> None:
    if not covers(scheme):
        raise ValueError(f"the count-only Activity path (and the gemm/planes engines) does not cover scheme {scheme!r}; replay it "
                         "(neurosim.sim.replay_trace)")
