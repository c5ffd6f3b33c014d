"""Activity straight from spike counts: what a replay would count, without replaying.

Every field of :class:`hw_models.Activity` is a function of the counts, the scheme and
window, and the layer shape, never of the weights: a slot with count ``c`` fires at the
steps whose bit is set in its *pattern* (bitwise schemes: ``|c|``, or the ``T``-bit two's
complement of ``c``; a sign-split slot fires on one line only, so its pattern is ``|c|``
too) or at steps ``0 .. |c|-1`` (binary/ternary). So

- events per slot = popcount(pattern) (rate codes: ``|c|``) -> ``event_hist`` and
  ``events_per_token``;
- events per step = number of slots with that step's bit set (rate codes: slots with
  ``|c| > t``, a reversed cumulative histogram);
- a memory block of ``block_columns`` input columns is fetched at a (step, token) when any
  of its columns fires then: ``popcount(OR of the block's patterns)`` (rate codes:
  ``max |c|`` of the block) summed over tokens.

:func:`layer_activity` and :func:`trace_activity` return records equal field for field to
``replay_layer(...).activity`` and ``replay_trace(...)`` (tests/test_activity_fast.py),
in one vectorized pass over the counts (loops run over steps at most). ``neurosim energy``
prices traces with them, so it needs neither the model nor its weights.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import torch
import torch.nn.functional as F
from tqdm.auto import tqdm

from hw_models import Activity

from .counters import ActivityCounter
from .events import Tally
from .layer import UNSIGNED_SCHEMES, _check_common, as_counts, window

RATE_SCHEMES = frozenset({"binary", "ternary"})
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
    if scheme == "bitwise-twos":
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
    if scheme in RATE_SCHEMES:
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


def _as_numpy_counts(counts: Any) -> np.ndarray:
    """Integer counts [tokens, in] as a numpy array (no copy for numpy integer input);
    the replay's checks and messages (:func:`~neurosim.sim.layer.as_counts`) otherwise."""
    if isinstance(counts, np.ndarray) and counts.dtype.kind in "iu" and counts.ndim == 2:
        return counts
    return as_counts(counts).cpu().numpy()


def count_tally_torch(counts: torch.Tensor, scheme: str, T: int, bit_order: str, n_blocks: int,
                      block_columns: int) -> Tally:
    """:func:`count_tally` with torch ops where the counts live (CUDA): one pass per step,
    no copy of the counts to the host; only the small counters come back."""
    c = counts.to(torch.int64)
    n, in_f = (int(d) for d in c.shape)
    pad = n_blocks * block_columns - in_f

    def blocks(a: torch.Tensor) -> torch.Tensor:
        return F.pad(a, (0, pad)).view(n, n_blocks, block_columns)

    if scheme in RATE_SCHEMES:
        mag = c.abs()
        hist = torch.bincount(mag.view(-1), minlength=T + 1)
        per_step = torch.flip(torch.cumsum(torch.flip(hist[1:], (0,)), 0), (0,))
        fetch = blocks(mag).amax(dim=2).sum(dim=0) if n else torch.zeros(n_blocks, dtype=torch.int64, device=c.device)
        return Tally(per_step.cpu(), mag.sum(dim=1).cpu(), hist.cpu(), fetch.cpu())
    if scheme == "bitwise-twos":
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
    shifts = torch.stack(by_shift).cpu() if by_shift else torch.zeros(0, dtype=torch.int64)
    hist = torch.bincount(pop.view(-1), minlength=T + 1)
    return Tally(shifts[torch.from_numpy(_shifts(T, bit_order))], pop.sum(dim=1).cpu(), hist.cpu(), fetch.cpu())


def layer_activity(
    counts: Any,
    in_features: int,
    out_features: int,
    scheme: str,
    T: int | None = None,
    bit_order: str = "msb",
    *,
    block_columns: int = 32,
    bytes_per_weight: int = 1,
    name: str = "",
    role: str = "",
    clip: bool = False,
    sign_split: bool = False,
    same_input_as: str | None = None,
) -> tuple[Activity, int]:
    """Activity of replaying ``counts`` [tokens, in_features] through an ``out_features``
    layer, without the replay. Same arguments, checks and errors as ``replay_layer``.

    Returns ``(activity, T)``: the record (equal to ``replay_layer(...).activity``) and the
    window used.
    """
    _check_common(scheme, bit_order, "events", block_columns)
    c = _as_numpy_counts(counts)
    if int(c.shape[1]) != int(in_features):
        where = f" of layer {name!r}" if name else ""
        raise ValueError(f"counts have {int(c.shape[1])} input channels but the layer{where} has in_features={in_features}")
    lo, hi = (int(c.min()), int(c.max())) if c.size else (0, 0)
    # The window and its checks are the replay's own (it reads only the extremes).
    T, rlo, rhi = window(scheme, torch.tensor([lo, hi], dtype=torch.int64), T, sign_split=sign_split, clip=clip, name=name)
    clipped = 0
    if lo < rlo or hi > rhi:
        clipped = int(np.count_nonzero((c < rlo) | (c > rhi)))
        c = np.clip(c.astype(np.int64), rlo, rhi)
    counter = ActivityCounter(int(in_features), int(out_features), T, int(block_columns), int(bytes_per_weight))
    counter.add_tally(count_tally(c, scheme, T, bit_order, counter.n_blocks, int(block_columns)))
    act = counter.activity(name=name, role=role, scheme=scheme, clipped=clipped, sign_split=sign_split,
                           same_input_as=same_input_as)
    return act, T


def trace_activity(
    trace: Any,
    scheme: str,
    T: int | None = None,
    bit_order: str = "msb",
    *,
    clip: bool = False,
    sign_split: bool | None = None,
    block_columns: int = 32,
    bytes_per_weight: int = 1,
    layers: Iterable[str] | None = None,
    progress: bool = False,
) -> Any:
    """Activity of every layer of a spike trace, as :func:`~neurosim.sim.model.replay_trace`
    would record it for INT8 weights (``bytes_per_weight=1``), from the counts alone.

    Returns a :class:`~neurosim.sim.model.ModelReplay` without outputs. Same defaults and
    errors as ``replay_trace`` (``sign_split=None``: on for binary and bitwise).
    """
    from .model import ModelReplay

    _check_common(scheme, bit_order, "events", block_columns)
    if sign_split is None:
        sign_split = scheme in UNSIGNED_SCHEMES
    all_names = list(trace.layers)
    names = all_names if layers is None else list(layers)
    unknown = [n for n in names if n not in set(all_names)]
    if unknown:
        raise ValueError(f"layers not in the trace: {', '.join(map(repr, unknown[:5]))}")
    if not names:
        raise ValueError("the trace has no layers to replay")
    acts: dict[str, Activity] = {}
    steps: dict[str, int] = {}
    for name in tqdm(names, desc=f"activity {scheme}", unit="layer", disable=not progress):
        info = trace.layer(name)
        acts[name], steps[name] = layer_activity(
            trace.counts(name), info.in_features, info.out_features, scheme, T, bit_order,
            block_columns=block_columns, bytes_per_weight=bytes_per_weight, name=name, role=info.role,
            clip=clip, sign_split=sign_split, same_input_as=getattr(info, "same_input_as", None),
        )
    total = Activity.combine(acts.values(), name="total")
    return ModelReplay(scheme, bit_order, acts, total, steps, int(total.clipped), str(getattr(trace, "model_id", "")))


__all__ = ["count_tally", "count_tally_torch", "layer_activity", "spike_patterns", "trace_activity"]
