"""Streaming, mergeable spike statistics with the SpikingBrain report's definitions.

Definitions as in the SpikingBrain report, arXiv:2509.05276 (statistics of SpikingBrain-7B). A *value* is one integer spike
count ``s`` of one (token, channel) input of a linear layer.

* **silence**: fraction of values with ``s == 0`` (per token: fraction of the layer's
  channels silent for that token; aggregated over tokens and layers it is weighted by
  channels). Report, SpikingBrain-7B: 18.4 %.
* **never-firing channels**: channels whose count is 0 for every token seen.
* **spikes of a value in a T-step window** of a scheme: the non-zero slots of the spike
  train of ``s`` clipped to what T steps carry. Bitwise-signed: ``popcount(min(|s|, 2**T-1))``;
  ternary: ``min(|s|, T)``; two's complement: popcount of the T-bit pattern of ``s``
  clipped to ``[-2**(T-1), 2**(T-1)-1]``.
* **sparsity** (scheme, T): fraction of (step, line) slots with no spike,
  ``1 - spikes / (lines * T)``. Report: 69.15 % for bitwise-signed with T = 3.
  It obeys ``sparsity = 1 - spikes_per_active_channel * active_fraction / T`` (one line per
  channel).
* **spikes per active channel**: spikes / values with ``s != 0`` (report: 1.13).
* **firing rate per step**: spikes at step t / lines (step 0 first in time; bitwise
  schemes MSB first, as Int2Spike).
* **|count| histogram**: report Fig. 9, 94.1 % of values with ``|s| <= 7``, about 1 %
  with ``|s| > 16``.

Unsigned schemes (``binary``, ``bitwise``) cannot carry negative counts. Here they are
**sign-split**: each channel drives two unipolar lines, one for the positive part and one
for the negative part, so a count ``s`` costs the spikes of ``|s|`` on one of the lines
and the scheme has ``2 * channels`` lines (slots for sparsity). We do not use
Int2Spike's zero-point shift by ``min(x)``: the shift depends on each tensor's minimum (so
statistics would depend on how the input is chunked, and could not be merged exactly) and
turns every silent channel into ``|min|`` spikes, which no event-driven design would send.

Everything is kept as integer counters and fixed-bin histograms, never as stored samples,
so :meth:`SpikeStats.merge` of two partial results equals one pass over their union
bit for bit, whatever the chunking (token rows, prompts, machines).
"""
from __future__ import annotations

import json
import math
import os
from contextlib import contextmanager
from dataclasses import dataclass, field, fields
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Iterator

import h5py
import numpy as np

import encoders

from .trace import SpikeTrace, _check_destination, _commit, _temp_path, edit_trace

STATS_SCHEMA_VERSION = 1
EXACT_MAX = 1023  # values with |s| <= EXACT_MAX get one histogram bin each
_NV = 2 * EXACT_MAX + 1  # exact bins: index = s + EXACT_MAX
MAX_BITS = 64  # overflow bins indexed by bit length, 0..63
MAX_ABS_COUNT = 2**31 - 1  # bit lengths below are computed in float64; keep far below 2**53
FRACTION_BINS = 100  # per-token fraction histograms: bin i holds [i/100, (i+1)/100)
VTH_LOG10_MIN, VTH_LOG10_MAX = -6, 5  # V_th histogram range; the quantizer clamps to [1e-5, 1e4]
VTH_BINS_PER_DECADE = 20
VTH_BINS = (VTH_LOG10_MAX - VTH_LOG10_MIN) * VTH_BINS_PER_DECADE
VTH_FIXED_SHIFT = 40  # V_th summed exactly as integers in units of 2**-40 (float32 >= 2**-17 is exact)
VTH_LIMIT = 1e6  # largest V_th accepted (keeps the fixed-point sum inside int64 per value)
ROW_BLOCK = 1 << 22  # values processed per block inside update() (bounds temporary memory)

REPORT_WINDOW: tuple[str, int] = ("bitwise-signed", 3)  # arXiv:2509.05276: 3-step bitwise-ternary window
# SpikingBrain-7B headline statistics (SpikingBrain report, arXiv:2509.05276);
# fractions in [0, 1], about 1 % of counts exceed 16.
REPORT_7B: dict[str, float] = {
    "sparsity": 0.6915,
    "silence": 0.184,
    "spikes_per_active_channel": 1.13,
    "frac_abs_le_7": 0.941,
    "frac_abs_gt_16": 0.01,
}
SPLIT_SCHEMES: frozenset[str] = frozenset({"binary", "bitwise"})  # sign-split: two lines per channel
# Step budgets that all carry |s| <= 7, the range holding 94.1 % of the report's counts
# (arXiv:2509.05276): comparisons at these budgets are at equal precision.
DEFAULT_BUDGETS: dict[str, int] = {
    "binary": 7,
    "ternary": 7,
    "bitwise": 3,
    "bitwise-signed": 3,
    "bitwise-twos": 4,
}
ROLES: tuple[str, ...] = ("q", "k", "v", "o", "gate", "up", "down", "lm_head")
_ROLE_SUFFIX = {
    "q_proj": "q", "k_proj": "k", "v_proj": "v", "o_proj": "o",
    "gate_proj": "gate", "up_proj": "up", "down_proj": "down", "lm_head": "lm_head",
}

DEFINITIONS: dict[str, str] = {
    "value": "one integer spike count s of one (token, channel) input of a linear layer",
    "silence": "fraction of values with s == 0",
    "active_fraction": "1 - silence",
    "never_firing_channels": "channels whose count is 0 for every token seen",
    "spikes": "non-zero slots of the spike train of s clipped to the T-step window of the scheme",
    "sparsity": "1 - spikes / (lines * T * values); lines = 2 per channel for sign-split unsigned schemes",
    "spikes_per_active_channel": "spikes / values with s != 0",
    "firing_rate_per_step": "spikes at step t / (lines * values), step 0 first (MSB first for bitwise)",
    "frac_abs_le_7": "fraction of values with |s| <= 7",
    "frac_abs_gt_16": "fraction of values with |s| > 16",
    "steps_needed": "Int2Spike default T for the data: max over the layer (encoders.steps_needed)",
    "unsigned_schemes": "binary and bitwise are sign-split: two unipolar lines per channel",
    "vth": "adaptive threshold V_th = mean|x|/k per token, same units as the activations",
}


def infer_role(name: str) -> str:
    """Role (q, k, v, o, gate, up, down, lm_head) from a Llama-style module name, else ``"other"``."""
    last = name.rsplit(".", 1)[-1]
    return _ROLE_SUFFIX.get(last, "other")


# ----------------------------------------------------------------------------- bit helpers


def popcount(a: np.ndarray) -> np.ndarray:
    """Number of set bits of each non-negative integer (int64 result)."""
    a = np.asarray(a)
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(a).astype(np.int64)
    u = a.astype(np.uint64)
    out = np.zeros(u.shape, dtype=np.int64)
    for shift in range(0, 64, 8):  # 8 byte lanes, each via a 256-entry table
        out += _BYTE_POP[(u >> np.uint64(shift)) & np.uint64(0xFF)]
    return out


_BYTE_POP = np.array([bin(i).count("1") for i in range(256)], dtype=np.int64)


def bit_length(a: np.ndarray) -> np.ndarray:
    """Bit length of each non-negative integer below 2**53 (int64 result; 0 -> 0)."""
    _, e = np.frexp(np.asarray(a, dtype=np.float64))
    return e.astype(np.int64)


def _lines(scheme: str) -> int:
    return 2 if scheme in SPLIT_SCHEMES else 1


def window_range(scheme: str, T: int) -> tuple[int, int]:
    """Inclusive range of counts T steps of ``scheme`` carry (sign-split schemes: +-magnitude)."""
    lo, hi = encoders.count_range(scheme, T)
    if scheme in SPLIT_SCHEMES:
        lo = -hi
    return lo, hi


def check_window(scheme: str, T: int) -> tuple[str, int]:
    """Validate a (scheme, T) window that exact statistics can evaluate."""
    encoders.check_scheme(scheme)
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"window steps T must be a positive integer, got {T!r}")
    lo, hi = window_range(scheme, int(T))
    if hi > EXACT_MAX or lo < -EXACT_MAX:
        raise ValueError(
            f"window ({scheme!r}, T={T}) carries counts up to {hi}; exact statistics support "
            f"windows whose range fits |s| <= {EXACT_MAX}"
        )
    return scheme, int(T)


_EXACT_VALUES = np.arange(-EXACT_MAX, EXACT_MAX + 1, dtype=np.int64)


@lru_cache(maxsize=64)
def window_steps_lut(scheme: str, T: int, bit_order: str = "msb") -> np.ndarray:
    """Spike magnitude (0/1) at each step for every exact value: int8 ``[T, 2*EXACT_MAX+1]``.

    Built with :func:`encoders.encode` on the values clipped to the window, so the
    statistics use the same trains as the encoders. Sign-split schemes encode ``|s|``.
    """
    check_window(scheme, T)
    lo, hi = window_range(scheme, T)
    v = np.clip(_EXACT_VALUES, lo, hi)
    if scheme in SPLIT_SCHEMES:
        v = np.abs(v)
    lut = np.abs(encoders.encode(v, scheme, T=T, bit_order=bit_order)).astype(np.int8)
    lut.setflags(write=False)
    return lut


@lru_cache(maxsize=64)
def window_events_lut(scheme: str, T: int) -> np.ndarray:
    """Spikes of every exact value in the (scheme, T) window: int64 ``[2*EXACT_MAX+1]``."""
    ev = window_steps_lut(scheme, T).sum(axis=0, dtype=np.int64)
    ev.setflags(write=False)
    return ev


def _lossless_events_lut(scheme: str, T: int) -> np.ndarray:
    """Spikes of every exact value when the window is wide enough to carry it exactly."""
    mag = np.abs(_EXACT_VALUES)
    if scheme in ("binary", "ternary"):
        return mag
    if scheme in ("bitwise", "bitwise-signed"):
        return popcount(mag)
    return popcount(_EXACT_VALUES & ((1 << T) - 1))  # two's complement pattern of T bits


# ----------------------------------------------------------------------------- state


@dataclass
class CountState:
    """Integer counters of a set of values (one layer, or layers summed). All exact.

    Attributes:
        rows: token rows seen (for a sum of layers: token-layer pairs).
        values: (token, channel) values seen.
        hist: int64 ``[2*EXACT_MAX+1]``, values ``s`` in ``[-EXACT_MAX, EXACT_MAX]`` at ``s+EXACT_MAX``.
        over_pos / over_neg: int64 ``[64]``, values ``s > EXACT_MAX`` (``s < -EXACT_MAX``)
            by bit length of ``|s|``.
        over_neg_twos: int64 ``[64]``, values ``s < -EXACT_MAX`` by bit length of ``-s-1``
            (two's-complement step needs).
        over_sum_abs, over_pop_pos, over_pop_neg, over_pop_negm1: sums over overflow values of
            ``|s|``, ``popcount(s)`` (s > 0), ``popcount(|s|)`` and ``popcount(-s-1)`` (s < 0).
        lo, hi: smallest and largest value seen (None before any).
        token_silence_hist, token_sparsity_hist: int64 ``[100]``, per token (per layer) silence
            and window sparsity in bins of width 0.01 (1.0 goes to the last bin).
        vth_n, vth_fixed: number of V_th and their exact sum in units of ``2**-40``.
        vth_hist: int64 ``[VTH_BINS+2]``: under, log10 bins from 1e-6 to 1e5 (20 per decade), over.
        vth_min, vth_max: extremes (None before any).
        never_firing: channels that never fired (filled for sums of layers).
        channels: channels (sum over layers for sums).
    """

    rows: int = 0
    values: int = 0
    hist: np.ndarray = field(default_factory=lambda: np.zeros(_NV, np.int64))
    over_pos: np.ndarray = field(default_factory=lambda: np.zeros(MAX_BITS, np.int64))
    over_neg: np.ndarray = field(default_factory=lambda: np.zeros(MAX_BITS, np.int64))
    over_neg_twos: np.ndarray = field(default_factory=lambda: np.zeros(MAX_BITS, np.int64))
    over_sum_abs: int = 0
    over_pop_pos: int = 0
    over_pop_neg: int = 0
    over_pop_negm1: int = 0
    lo: int | None = None
    hi: int | None = None
    token_silence_hist: np.ndarray = field(default_factory=lambda: np.zeros(FRACTION_BINS, np.int64))
    token_sparsity_hist: np.ndarray = field(default_factory=lambda: np.zeros(FRACTION_BINS, np.int64))
    vth_n: int = 0
    vth_fixed: int = 0
    vth_hist: np.ndarray = field(default_factory=lambda: np.zeros(VTH_BINS + 2, np.int64))
    vth_min: float | None = None
    vth_max: float | None = None
    never_firing: int = 0
    channels: int = 0

    # -- combination ----------------------------------------------------------------

    def add(self, other: "CountState", same_channels: bool = False) -> "CountState":
        """Add ``other`` into this state (exact). ``same_channels``: both are the same layer."""
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if f.name in ("lo", "vth_min"):
                setattr(self, f.name, b if a is None else a if b is None else min(a, b))
            elif f.name in ("hi", "vth_max"):
                setattr(self, f.name, b if a is None else a if b is None else max(a, b))
            elif f.name in ("channels", "never_firing") and same_channels:
                continue  # per-layer: set from the channel counters by the owner
            elif isinstance(a, np.ndarray):
                a += b
            else:
                setattr(self, f.name, a + b)
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, CountState):
            return NotImplemented
        for f in fields(self):
            a, b = getattr(self, f.name), getattr(other, f.name)
            if isinstance(a, np.ndarray):
                if not np.array_equal(a, b):
                    return False
            elif a != b:
                return False
        return True

    # -- derived quantities (all exact rational results, returned as float) ------

    @property
    def zeros(self) -> int:
        return int(self.hist[EXACT_MAX])

    @property
    def active(self) -> int:
        """Values with s != 0."""
        return self.values - self.zeros

    def silence(self) -> float:
        """Fraction of values with s == 0."""
        return self.zeros / self.values if self.values else float("nan")

    def active_fraction(self) -> float:
        return self.active / self.values if self.values else float("nan")

    def abs_hist(self) -> np.ndarray:
        """Exact histogram of |s| for 0..EXACT_MAX (int64); larger values: :meth:`abs_over_hist`."""
        h = self.hist[EXACT_MAX:].copy()
        h[1:] += self.hist[:EXACT_MAX][::-1]
        return h

    def abs_over_hist(self) -> np.ndarray:
        """Values with |s| > EXACT_MAX by bit length of |s| (int64 [64])."""
        return self.over_pos + self.over_neg

    def _count_abs_le(self, m: int) -> int:
        if not 0 <= m <= EXACT_MAX:
            raise ValueError(f"m must lie in [0, {EXACT_MAX}], got {m}")
        return int(self.hist[EXACT_MAX - m : EXACT_MAX + m + 1].sum())

    def frac_abs_le(self, m: int) -> float:
        """Fraction of values with |s| <= m (m <= EXACT_MAX)."""
        return self._count_abs_le(m) / self.values if self.values else float("nan")

    def frac_abs_gt(self, m: int) -> float:
        """Fraction of values with |s| > m (m <= EXACT_MAX)."""
        return (self.values - self._count_abs_le(m)) / self.values if self.values else float("nan")

    def max_abs(self) -> int:
        return 0 if self.lo is None else max(abs(self.lo), abs(self.hi))

    def _edge_counts(self) -> tuple[int, int]:
        return int(self.over_neg.sum()), int(self.over_pos.sum())

    def window_events(self, scheme: str, T: int) -> int:
        """Spikes of all values in the (scheme, T) window (values clipped to it)."""
        ev = window_events_lut(*check_window(scheme, T))
        n_neg, n_pos = self._edge_counts()
        return int(ev @ self.hist) + n_neg * int(ev[0]) + n_pos * int(ev[-1])

    def events_per_step(self, scheme: str, T: int, bit_order: str = "msb") -> np.ndarray:
        """Spikes at each step of the (scheme, T) window (int64 [T], step 0 first)."""
        lut = window_steps_lut(*check_window(scheme, T), bit_order).astype(np.int64)
        n_neg, n_pos = self._edge_counts()
        return lut @ self.hist + n_neg * lut[:, 0] + n_pos * lut[:, -1]

    def lines(self, scheme: str) -> int:
        """Input lines of the scheme over all values (2 per value for sign-split schemes)."""
        return _lines(scheme) * self.values

    def sparsity(self, scheme: str, T: int) -> float:
        """Fraction of (step, line) slots without a spike in the (scheme, T) window."""
        slots = self.lines(scheme) * T
        return 1.0 - self.window_events(scheme, T) / slots if slots else float("nan")

    def spikes_per_active(self, scheme: str, T: int) -> float:
        """Spikes in the (scheme, T) window per value with s != 0."""
        return self.window_events(scheme, T) / self.active if self.active else float("nan")

    def firing_rate_per_step(self, scheme: str, T: int, bit_order: str = "msb") -> np.ndarray:
        """Spikes per line at each step (float64 [T])."""
        lines = self.lines(scheme)
        ev = self.events_per_step(scheme, T, bit_order)
        return ev / lines if lines else np.full(T, np.nan)

    def clipped(self, scheme: str, T: int) -> int:
        """Values outside what T steps of the scheme carry (sign-split: |s| too large)."""
        check_window(scheme, T)
        lo, hi = window_range(scheme, T)
        inside = self.hist[max(lo, -EXACT_MAX) + EXACT_MAX : min(hi, EXACT_MAX) + EXACT_MAX + 1].sum()
        return int(self.values - inside)

    def steps_needed(self, scheme: str) -> int:
        """Int2Spike default T for these values (sign-split schemes: for |s|)."""
        encoders.check_scheme(scheme)
        if self.lo is None:
            return 0
        if scheme in SPLIT_SCHEMES:
            return encoders.steps_needed(scheme, 0, self.max_abs())
        return encoders.steps_needed(scheme, self.lo, self.hi)

    def lossless_events(self, scheme: str, T: int | None = None) -> int:
        """Spikes when every value is carried exactly (T defaults to :meth:`steps_needed`).

        Only two's complement depends on T (negative values fill the leading bits).
        """
        encoders.check_scheme(scheme)
        if T is None:
            T = self.steps_needed(scheme)
        if scheme == "bitwise-twos":
            lo, hi = encoders.count_range(scheme, T)
            if self.lo is not None and (self.lo < lo or self.hi > hi):
                raise ValueError(f"T={T} cannot carry values in [{self.lo}, {self.hi}] with bitwise-twos")
            exact = int(_lossless_events_lut(scheme, T) @ self.hist)
            n_neg = int(self.over_neg.sum())
            return exact + self.over_pop_pos + T * n_neg - self.over_pop_negm1
        exact = int(_lossless_events_lut(scheme, 0) @ self.hist)
        if scheme in ("binary", "ternary"):
            return exact + self.over_sum_abs
        return exact + self.over_pop_pos + self.over_pop_neg

    def steps_hist(self, scheme: str) -> tuple[np.ndarray, np.ndarray]:
        """Histogram of the steps each value needs alone (``encoders.steps_for_value``).

        Returns ``(lower_edges, counts)``: bitwise schemes have one bin per step count
        (0..63); binary/ternary need ``|s|`` steps, exact up to EXACT_MAX and then in
        power-of-two bins ``[2**(b-1), 2**b)``.
        """
        encoders.check_scheme(scheme)
        if scheme in ("binary", "ternary"):
            over = self.abs_over_hist()
            edges = np.concatenate([np.arange(EXACT_MAX + 1), 2 ** (np.arange(11, MAX_BITS) - 1)])
            return edges.astype(np.int64), np.concatenate([self.abs_hist(), over[11:]])
        counts = np.zeros(MAX_BITS + 1, np.int64)
        if scheme in ("bitwise", "bitwise-signed"):
            np.add.at(counts, bit_length(np.abs(_EXACT_VALUES)), self.hist)
            counts[: MAX_BITS] += self.abs_over_hist()
        else:
            need = np.where(_EXACT_VALUES >= 0, bit_length(_EXACT_VALUES), bit_length(-_EXACT_VALUES - 1)) + 1
            np.add.at(counts, need, self.hist)
            counts[1 : MAX_BITS + 1] += self.over_pos + self.over_neg_twos
        return np.arange(MAX_BITS + 1, dtype=np.int64), counts

    def vth_mean(self) -> float:
        """Mean V_th (exact sum / n, rounded once)."""
        return self.vth_fixed / self.vth_n / 2**VTH_FIXED_SHIFT if self.vth_n else float("nan")

    def vth_percentile(self, q: float) -> float:
        """V_th percentile ``q`` in [0, 100] from the log-bin histogram (geometric within a bin)."""
        if not 0 <= q <= 100:
            raise ValueError(f"percentile must lie in [0, 100], got {q}")
        if not self.vth_n:
            return float("nan")
        edges = vth_bin_edges()
        lo_edges = np.concatenate([[self.vth_min], edges[:-1], [edges[-1]]])
        hi_edges = np.concatenate([[edges[0]], edges[1:], [self.vth_max]])
        lo_edges = np.clip(lo_edges, self.vth_min, self.vth_max)
        hi_edges = np.clip(hi_edges, self.vth_min, self.vth_max)
        cum = np.cumsum(self.vth_hist)
        target = q / 100 * self.vth_n
        i = int(np.searchsorted(cum, target, side="left"))
        i = min(i, len(cum) - 1)
        before = cum[i - 1] if i else 0
        inside = self.vth_hist[i]
        frac = (target - before) / inside if inside else 0.0
        a, b = math.log(lo_edges[i]), math.log(hi_edges[i])
        return float(math.exp(a + frac * (b - a)))

    def token_fraction_percentile(self, which: str, q: float) -> float:
        """Percentile of the per-token ``silence`` or ``sparsity`` (bin midpoints)."""
        h = {"silence": self.token_silence_hist, "sparsity": self.token_sparsity_hist}[which]
        n = int(h.sum())
        if not n:
            return float("nan")
        i = int(np.searchsorted(np.cumsum(h), q / 100 * n, side="left"))
        return (min(i, FRACTION_BINS - 1) + 0.5) / FRACTION_BINS

    # -- accumulation -------------------------------------------------------------

    def _add_overflow(self, big: np.ndarray) -> None:
        pos, neg = big[big > 0], -big[big < 0]
        self.over_pos += np.bincount(bit_length(pos), minlength=MAX_BITS)[:MAX_BITS]
        self.over_neg += np.bincount(bit_length(neg), minlength=MAX_BITS)[:MAX_BITS]
        self.over_neg_twos += np.bincount(bit_length(neg - 1), minlength=MAX_BITS)[:MAX_BITS]
        self.over_sum_abs += int(pos.sum()) + int(neg.sum())
        self.over_pop_pos += int(popcount(pos).sum())
        self.over_pop_neg += int(popcount(neg).sum())
        self.over_pop_negm1 += int(popcount(neg - 1).sum())

    def _add_vth(self, vth: np.ndarray) -> None:
        v = vth.astype(np.float64)
        q = np.rint(v * 2.0**VTH_FIXED_SHIFT).astype(np.int64)
        self.vth_fixed += (int((q >> 32).sum()) << 32) + int((q & 0xFFFFFFFF).sum())
        self.vth_n += int(v.size)
        b = np.floor((np.log10(v) - VTH_LOG10_MIN) * VTH_BINS_PER_DECADE)
        b = np.clip(b, -1, VTH_BINS).astype(np.int64) + 1
        self.vth_hist += np.bincount(b, minlength=VTH_BINS + 2)
        vmin, vmax = float(vth.min()), float(vth.max())
        self.vth_min = vmin if self.vth_min is None else min(self.vth_min, vmin)
        self.vth_max = vmax if self.vth_max is None else max(self.vth_max, vmax)


def vth_bin_edges() -> np.ndarray:
    """Edges of the log V_th bins (float64 [VTH_BINS+1], same units as V_th)."""
    return 10.0 ** (VTH_LOG10_MIN + np.arange(VTH_BINS + 1) / VTH_BINS_PER_DECADE)


@dataclass
class LayerStats:
    """Statistics of one linear layer's input spike counts."""

    name: str
    role: str
    channels: int
    index: int = -1
    in_features: int = 0
    out_features: int = 0
    state: CountState = field(default_factory=CountState)
    channel_active: np.ndarray | None = None  # int64 [channels]: tokens with s != 0 per channel

    def __post_init__(self) -> None:
        if self.channel_active is None:
            self.channel_active = np.zeros(self.channels, np.int64)
        self.state.channels = self.channels
        self._sync()

    def _sync(self) -> None:
        self.state.never_firing = int(np.count_nonzero(self.channel_active == 0)) if self.state.rows else 0

    def merge(self, other: "LayerStats") -> None:
        if (other.channels, other.role) != (self.channels, self.role):
            raise ValueError(
                f"layer {self.name!r}: cannot merge {other.channels} channels/role {other.role!r} "
                f"into {self.channels} channels/role {self.role!r}"
            )
        self.state.add(other.state, same_channels=True)
        self.channel_active += other.channel_active
        if self.index < 0:
            self.index = other.index
        self.in_features = self.in_features or other.in_features
        self.out_features = self.out_features or other.out_features
        self._sync()

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, LayerStats):
            return NotImplemented
        return (
            (self.name, self.role, self.channels, self.index, self.in_features, self.out_features)
            == (other.name, other.role, other.channels, other.index, other.in_features, other.out_features)
            and self.state == other.state
            and np.array_equal(self.channel_active, other.channel_active)
        )


# ----------------------------------------------------------------------------- input checks


def _as_counts(counts: Any) -> np.ndarray:
    if hasattr(counts, "detach") and hasattr(counts, "cpu"):  # torch tensor
        counts = counts.detach().cpu().numpy()
    if not isinstance(counts, np.ndarray):
        raise TypeError(f"counts must be a numpy array or torch tensor, got {type(counts).__name__}")
    if counts.ndim != 2:
        raise ValueError(f"counts must be 2-D [tokens, channels], got shape {counts.shape}")
    if counts.dtype.kind == "f":
        if not np.isfinite(counts).all() or (counts != np.round(counts)).any():
            raise ValueError("counts must be integers; found non-integral or non-finite floats")
        if counts.size and np.abs(counts).max() > MAX_ABS_COUNT:
            raise ValueError(f"counts magnitude {np.abs(counts).max():g} exceeds {MAX_ABS_COUNT}")
        counts = counts.astype(np.int64)
    elif counts.dtype.kind == "u":
        counts = counts.astype(np.int64)
    elif counts.dtype.kind != "i":
        raise TypeError(f"counts must have an integer dtype, got {counts.dtype}")
    if counts.dtype.itemsize < 2:
        counts = counts.astype(np.int16)
    if counts.size and counts.dtype.itemsize > 4:
        lo, hi = int(counts.min()), int(counts.max())
        if max(-lo, hi) > MAX_ABS_COUNT:
            raise ValueError(f"counts magnitude {max(-lo, hi)} exceeds {MAX_ABS_COUNT}")
    return counts


def _as_vth(vth: Any, rows: int) -> np.ndarray | None:
    if vth is None:
        return None
    if hasattr(vth, "detach") and hasattr(vth, "cpu"):
        vth = vth.detach().cpu().numpy()
    v = np.asarray(vth)
    if v.dtype.kind not in "fiu":
        raise TypeError(f"vth must be a float array, got dtype {v.dtype}")
    v = v.reshape(-1).astype(np.float32)
    if v.size != rows:
        raise ValueError(f"vth has {v.size} values but counts has {rows} token rows")
    if v.size and (not np.isfinite(v).all() or v.min() <= 0 or v.max() > VTH_LIMIT):
        raise ValueError(f"vth must be finite and in (0, {VTH_LIMIT:g}]; got min {v.min()}, max {v.max()}")
    return v


# ----------------------------------------------------------------------------- accumulator


class SpikeStats:
    """Streaming, mergeable statistics of spike counts, per layer, role and model.

    >>> import numpy as np
    >>> st = SpikeStats()
    >>> st.update("model.layers.0.mlp.up_proj", None, np.array([[0, 1, -9, 3]]), np.array([0.5]))
    >>> st.summary()["silence"]
    0.25

    Args:
        window: the (scheme, T) window of the headline sparsity and of the per-token sparsity
            histogram; default the report's bitwise-signed 3-step window.
    """

    def __init__(self, window: tuple[str, int] = REPORT_WINDOW) -> None:
        self.window = check_window(*window)
        self.layers: dict[str, LayerStats] = {}

    # -- accumulation -------------------------------------------------------------

    def update(self, layer: Any, role: str | None, counts: Any, vth: Any = None) -> None:
        """Add a chunk of token rows of one layer.

        Args:
            layer: a layer name or an object with ``name`` (and ``role``, ``in_features``,
                ``out_features``, ``index``), e.g. the trace's ``LayerInfo``.
            role: q, k, v, o, gate, up, down, lm_head; ``None`` takes it from ``layer`` or
                infers it from the name.
            counts: integer spike counts ``[tokens, channels]`` (numpy or torch).
            vth: ``[tokens]`` thresholds, or None.
        """
        self._update(layer, role, counts, vth)

    def _update(
        self, layer: Any, role: str | None, counts: Any, vth: Any, reuse: LayerStats | None = None
    ) -> LayerStats:
        """:meth:`update`; ``reuse`` is the chunk statistics of the very same counts and vth
        already computed for another layer (q/k/v and gate/up share their input)."""
        name, meta = self._layer_meta(layer, role)
        c = _as_counts(counts)
        if c.shape[1] == 0:
            raise ValueError(f"layer {name!r}: counts have no channels (shape {c.shape})")
        v = _as_vth(vth, c.shape[0])
        ls = self.layers.get(name)
        if ls is None:
            ls = LayerStats(name, meta["role"], c.shape[1], meta["index"], meta["in_features"], meta["out_features"])
        elif ls.channels != c.shape[1] or ls.role != meta["role"]:
            raise ValueError(
                f"layer {name!r} has {ls.channels} channels and role {ls.role!r}; "
                f"got {c.shape[1]} channels and role {meta['role']!r}"
            )
        if reuse is None:
            chunk = LayerStats(name, ls.role, ls.channels)
            self._accumulate(chunk, c)
            if v is not None:
                chunk.state._add_vth(v)
        else:
            chunk = LayerStats(name, ls.role, ls.channels, state=reuse.state, channel_active=reuse.channel_active)
        ls.merge(chunk)
        self.layers[name] = ls  # only after every check passed: bad input loses nothing
        return chunk

    def _layer_meta(self, layer: Any, role: str | None) -> tuple[str, dict]:
        if isinstance(layer, str):
            name, info = layer, None
        elif hasattr(layer, "name"):
            name, info = str(layer.name), layer
        else:
            raise TypeError(f"layer must be a name or a LayerInfo, got {type(layer).__name__}")
        if not name:
            raise ValueError("layer name must be a non-empty string")
        if role is None:
            role = getattr(info, "role", None) or infer_role(name)
        if not isinstance(role, str):
            raise TypeError(
                f"role must be a string or None, got {type(role).__name__} (argument order: layer, role, counts, vth)"
            )
        meta = {
            "role": role,
            "index": int(getattr(info, "index", -1) if info is not None else -1),
            "in_features": int(getattr(info, "in_features", 0) or 0),
            "out_features": int(getattr(info, "out_features", 0) or 0),
        }
        return name, meta

    def _accumulate(self, ls: LayerStats, c: np.ndarray) -> None:
        st, C = ls.state, c.shape[1]
        scheme, T = self.window
        ev_lut = window_events_lut(scheme, T)
        ev_ext = np.concatenate([ev_lut[:1], ev_lut, ev_lut[-1:]]).astype(np.int16)
        slots = _lines(scheme) * C * T
        rows_per_block = max(1, ROW_BLOCK // max(C, 1))
        for r0 in range(0, c.shape[0], rows_per_block):  # loop over row blocks: bounded memory
            blk = c[r0 : r0 + rows_per_block]
            idx = np.clip(blk, -EXACT_MAX - 1, EXACT_MAX + 1).astype(np.int16)
            idx += EXACT_MAX + 1
            h = np.bincount(idx.ravel(), minlength=_NV + 2)
            st.hist += h[1:-1]
            if h[0] or h[-1]:
                st._add_overflow(blk[(blk < -EXACT_MAX) | (blk > EXACT_MAX)].astype(np.int64))
            nz = idx != EXACT_MAX + 1
            ls.channel_active += nz.sum(axis=0, dtype=np.int64)
            zeros = C - nz.sum(axis=1, dtype=np.int64)
            st.token_silence_hist += _fraction_hist(zeros, C)
            ev = ev_ext[idx].sum(axis=1, dtype=np.int64)
            st.token_sparsity_hist += _fraction_hist(slots - ev, slots)
            if blk.size:
                lo, hi = int(blk.min()), int(blk.max())
                st.lo = lo if st.lo is None else min(st.lo, lo)
                st.hi = hi if st.hi is None else max(st.hi, hi)
        st.rows += c.shape[0]
        st.values += c.size

    def update_trace(self, trace: Any, progress: bool = True, chunk_rows: int | None = None) -> "SpikeStats":
        """Add every layer of a :class:`analysis.trace.SpikeTrace` (or a (layer, counts, vth) iterable).

        ``chunk_rows`` reads a trace ``chunk_rows`` token rows at a time (bounded memory for
        long traces); the result is identical. Layers fed the same input (q/k/v, gate/up)
        are computed once.
        """
        if chunk_rows is not None:
            if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
                raise ValueError(f"chunk_rows must be a positive int, got {chunk_rows!r}")
            if not hasattr(trace, "counts"):
                raise TypeError("chunk_rows needs a SpikeTrace (something with counts(name, rows) and vth(name, rows))")
            return self._update_chunked(trace, int(chunk_rows), progress)
        items = trace.iter_layers() if hasattr(trace, "iter_layers") else trace
        total = len(trace.layers) if hasattr(trace, "layers") else None
        last: tuple[Any, Any, LayerStats] | None = None
        for info, counts, vth in _progress(items, total, "statistics", progress):
            # the trace yields the very same arrays for layers sharing an input
            same = last is not None and counts is last[0] and vth is last[1]
            chunk = self._update(info, None, counts, vth, reuse=last[2] if same else None)
            last = (counts, vth, chunk)
        return self

    def _update_chunked(self, trace: Any, chunk_rows: int, progress: bool) -> "SpikeStats":
        groups: dict[str, list[Any]] = {}
        for name in trace.layers:
            src = trace.source_of(name) if hasattr(trace, "source_of") else name
            groups.setdefault(src, []).append(trace.layer(name))
        for src, infos in _progress(groups.items(), len(groups), "statistics", progress):
            for r0 in range(0, trace.n_tokens, chunk_rows):  # loop over row chunks
                rows = slice(r0, r0 + chunk_rows)
                counts, vth = trace.counts(src, rows), trace.vth(src, rows)
                chunk = None
                for info in infos:
                    chunk = self._update(info, None, counts, vth, reuse=chunk)
        return self

    @classmethod
    def from_trace(
        cls, trace: Any, window: tuple[str, int] = REPORT_WINDOW, progress: bool = True, chunk_rows: int | None = None
    ) -> "SpikeStats":
        """Statistics of a trace: a ``SpikeTrace``, a path to one, or an iterable of (layer, counts, vth)."""
        if isinstance(trace, (str, os.PathLike)):
            with SpikeTrace.open(trace) as opened:
                return cls(window).update_trace(opened, progress, chunk_rows)
        return cls(window).update_trace(trace, progress, chunk_rows)

    def merge(self, other: "SpikeStats") -> "SpikeStats":
        """Add ``other`` into this accumulator, exactly; returns self."""
        if not isinstance(other, SpikeStats):
            raise TypeError(f"can only merge SpikeStats, got {type(other).__name__}")
        if other.window != self.window:
            raise ValueError(f"cannot merge statistics with window {other.window} into window {self.window}")
        for name, ols in other.layers.items():  # check everything before changing anything
            mine = self.layers.get(name)
            if mine is not None and (mine.channels, mine.role) != (ols.channels, ols.role):
                raise ValueError(
                    f"layer {name!r}: {ols.channels} channels/role {ols.role!r} vs {mine.channels}/{mine.role!r}"
                )
        for name, ols in other.layers.items():
            if name in self.layers:
                self.layers[name].merge(ols)
            else:
                fresh = LayerStats(name, ols.role, ols.channels, ols.index, ols.in_features, ols.out_features)
                fresh.merge(ols)
                self.layers[name] = fresh
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SpikeStats):
            return NotImplemented
        return self.window == other.window and self.layers == other.layers

    # -- views ----------------------------------------------------------------------

    def ordered_layers(self) -> list[LayerStats]:
        """Layers by trace index (layers without an index keep insertion order, last)."""
        items = list(self.layers.values())
        keyed = [((0, ls.index) if ls.index >= 0 else (1, i), ls) for i, ls in enumerate(items)]
        return [ls for _, ls in sorted(keyed, key=lambda kv: kv[0])]

    @property
    def roles(self) -> list[str]:
        """Roles present, in the canonical order q, k, v, o, gate, up, down, lm_head, others."""
        present = {ls.role for ls in self.layers.values()}
        return [r for r in ROLES if r in present] + sorted(present - set(ROLES))

    def scope_layers(self, scope: str = "model") -> list[LayerStats]:
        """Layers of ``"model"`` (all), a role (``"q"``, ...) or one layer name, in trace order."""
        if scope in self.layers:
            return [self.layers[scope]]
        chosen = [ls for ls in self.ordered_layers() if scope == "model" or ls.role == scope]
        if not chosen and scope != "model":
            raise ValueError(f"unknown scope {scope!r}: not 'model', a role ({', '.join(self.roles)}) or a layer")
        return chosen

    def group(self, scope: str = "model") -> CountState:
        """Summed state of ``"model"``, a role or one layer name (see :meth:`scope_layers`)."""
        chosen = self.scope_layers(scope)
        if len(chosen) == 1:
            return chosen[0].state
        out = CountState()
        for ls in chosen:
            out.add(ls.state)
        return out

    def summary(self, scope: str = "model") -> dict[str, Any]:
        """Headline numbers of ``scope`` (model, a role, or a layer name); fractions in [0, 1]."""
        chosen = self.scope_layers(scope)
        st = self.group(scope)
        scheme, T = self.window
        spa = st.spikes_per_active(scheme, T)
        af = st.active_fraction()
        return {
            "scope": scope,
            "layers": len(chosen),
            "tokens": max((ls.state.rows for ls in chosen), default=0),
            "values": st.values,
            "window_scheme": scheme,
            "window_steps": T,
            "sparsity": st.sparsity(scheme, T),
            "sparsity_identity": 1.0 - spa * af / (_lines(scheme) * T),
            "silence": st.silence(),
            "active_fraction": af,
            "spikes_per_active_channel": spa,
            "frac_abs_le_7": st.frac_abs_le(7),
            "frac_abs_gt_16": st.frac_abs_gt(16),
            "max_abs_count": st.max_abs(),
            "clipped_fraction": st.clipped(scheme, T) / st.values if st.values else float("nan"),
            "channels": st.channels,
            "never_firing_channels": st.never_firing,
            "never_firing_fraction": st.never_firing / st.channels if st.channels else float("nan"),
            "token_silence_p50": st.token_fraction_percentile("silence", 50),
            "token_sparsity_p50": st.token_fraction_percentile("sparsity", 50),
            "vth_mean": st.vth_mean(),
            "vth_p05": st.vth_percentile(5),
            "vth_p50": st.vth_percentile(50),
            "vth_p95": st.vth_percentile(95),
        }

    def layer_table(self) -> list[dict[str, Any]]:
        """One summary row per layer, in trace order (adds ``name``, ``role``, ``index``)."""
        rows = []
        for ls in self.ordered_layers():
            row = {"name": ls.name, "role": ls.role, "index": ls.index}
            row.update(self.summary(ls.name))
            rows.append(row)
        return rows

    def role_table(self) -> list[dict[str, Any]]:
        """One summary row per role, then the model row."""
        return [self.summary(r) for r in self.roles] + [self.summary("model")]

    # -- HDF5 ---------------------------------------------------------------------

    def to_hdf5(self, group: Any) -> None:
        """Write into an open, writable h5py group (its existing content is replaced).

        Layout: ``layers/`` holds one row per layer (trace order) in stacked datasets
        (``hist`` [layers, 2*exact_max+1], ...; ``channel_active`` concatenated with
        ``channel_offsets``), each with ``units`` and ``definition`` attributes;
        ``layer_table`` is the per-layer summary as a table; ``model`` and ``roles/<role>``
        carry their summaries as attributes.
        """
        for key in list(group.keys()):
            del group[key]
        for key in list(group.attrs.keys()):
            del group.attrs[key]
        a = group.attrs
        a["stats_schema_version"] = STATS_SCHEMA_VERSION
        a["window_scheme"], a["window_steps"] = self.window
        a["exact_max"] = EXACT_MAX
        a["fraction_bins"] = FRACTION_BINS
        a["vth_log10_range"] = np.array([VTH_LOG10_MIN, VTH_LOG10_MAX])
        a["vth_bins_per_decade"] = VTH_BINS_PER_DECADE
        a["definitions"] = json.dumps(DEFINITIONS, indent=1)
        a["source"] = "SpikingBrain technical report, arXiv:2509.05276 (statistics of SpikingBrain-7B)"
        layers = self.ordered_layers()
        g = group.create_group("layers")
        text = h5py.string_dtype("utf-8")

        def put(name: str, data: Any, units: str, definition: str, **kw: Any) -> None:
            d = g.create_dataset(name, data=data, **kw)
            d.attrs["units"], d.attrs["definition"] = units, definition

        put("name", [ls.name for ls in layers], "", "layer (module) name", dtype=text)
        put("role", [ls.role for ls in layers], "", "q, k, v, o, gate, up, down, lm_head or other", dtype=text)
        for key, definition in (
            ("index", "position in model order (-1: unknown)"),
            ("channels", "input channels"),
            ("in_features", "layer fan-in (0: unknown)"),
            ("out_features", "layer fan-out (0: unknown)"),
        ):
            put(key, np.array([getattr(ls, key) for ls in layers], np.int64), "", definition)
        for key, (units, definition) in _STATE_UNITS.items():
            stacked = np.stack([getattr(ls.state, key) for ls in layers]) if layers else np.zeros((0, 1), np.int64)
            put(key, stacked, units, definition, compression="gzip")
        put("scalars", [_state_json(ls.state) for ls in layers], "JSON",
            f"exact counters per layer (rows, values, lo, hi, vth_fixed in 2**-{VTH_FIXED_SHIFT} V_th units, ...)",
            dtype=text)
        offsets = np.concatenate([[0], np.cumsum([ls.channels for ls in layers], dtype=np.int64)]).astype(np.int64)
        put("channel_offsets", offsets, "channels", "layer i's channels are channel_active[offsets[i]:offsets[i+1]]")
        active = np.concatenate([ls.channel_active for ls in layers]) if layers else np.zeros(0, np.int64)
        put("channel_active", active, "tokens", "tokens with s != 0, per input channel", compression="gzip")
        rows = self.layer_table()
        if rows:
            cols = [k for k, v in rows[0].items() if isinstance(v, (int, float)) and not isinstance(v, bool)]
            dt = np.dtype([("name", text), ("role", text)] + [(k, np.float64) for k in cols])
            table = np.array([tuple([r["name"], r["role"]] + [float(r[k]) for k in cols]) for r in rows], dtype=dt)
            d = group.create_dataset("layer_table", data=table)
            d.attrs["units"] = "fractions in [0, 1]; vth_* in activation units; counts as numbers"
            d.attrs["definition"] = "summary() of every layer, trace order (derived; not read back)"
        _write_summary(group.create_group("model").attrs, self.summary("model"))
        roles = group.create_group("roles")
        for r in self.roles:
            _write_summary(roles.create_group(r).attrs, self.summary(r))

    @classmethod
    def from_hdf5(cls, group: Any) -> "SpikeStats":
        """Read what :meth:`to_hdf5` wrote (exactly; derived summaries are recomputed, not read)."""
        a = group.attrs
        if "stats_schema_version" not in a:
            raise ValueError(f"HDF5 group {group.name!r} holds no spike statistics (no stats_schema_version)")
        ver = int(a["stats_schema_version"])
        if ver > STATS_SCHEMA_VERSION:
            raise ValueError(
                f"statistics schema {ver} is newer than this reader ({STATS_SCHEMA_VERSION}); upgrade neurosim"
            )
        if int(a["exact_max"]) != EXACT_MAX or int(a["fraction_bins"]) != FRACTION_BINS:
            raise ValueError("statistics were written with different histogram bins; they cannot be read exactly")
        out = cls((_s(a["window_scheme"]), int(a["window_steps"])))
        g = group["layers"]
        try:
            cols = {key: g[key][()] for key in ("name", "role", "index", "channels", "in_features", "out_features",
                                                "scalars", "channel_offsets", "channel_active", *_STATE_UNITS)}
        except KeyError as e:
            raise ValueError(f"HDF5 group {group.name!r}: incomplete statistics ({e})") from None
        off = cols["channel_offsets"]
        for i in range(len(cols["name"])):  # loop over layers
            st = _read_state_json(_s(cols["scalars"][i]))
            for key in _STATE_UNITS:
                setattr(st, key, np.asarray(cols[key][i], np.int64))
            ls = LayerStats(_s(cols["name"][i]), _s(cols["role"][i]), int(cols["channels"][i]), int(cols["index"][i]),
                            int(cols["in_features"][i]), int(cols["out_features"][i]), st,
                            np.asarray(cols["channel_active"][off[i] : off[i + 1]], np.int64))
            out.layers[ls.name] = ls
        return out


def _s(x: Any) -> str:
    return x.decode() if isinstance(x, bytes) else str(x)


_STATE_UNITS = {
    "hist": ("values", "count of values s in [-exact_max, exact_max], column s + exact_max"),
    "over_pos": ("values", "values s > exact_max by bit length of s"),
    "over_neg": ("values", "values s < -exact_max by bit length of |s|"),
    "over_neg_twos": ("values", "values s < -exact_max by bit length of -s-1"),
    "token_silence_hist": ("tokens", "per-token silence fraction, bin i = [i/100, (i+1)/100)"),
    "token_sparsity_hist": ("tokens", "per-token sparsity in the window, bin i = [i/100, (i+1)/100)"),
    "vth_hist": ("tokens", "V_th in log10 bins: [under, 10**(-6 + i/20) .. , over]"),
}
_BIG_INTS = ("vth_fixed", "over_sum_abs", "over_pop_pos", "over_pop_neg", "over_pop_negm1")  # may exceed int64


def _state_json(st: CountState) -> str:
    scal = {f.name: getattr(st, f.name) for f in fields(st) if f.name not in _STATE_UNITS}
    for key in _BIG_INTS:
        scal[key] = str(scal[key])
    return json.dumps(scal)


def _read_state_json(text: str) -> CountState:
    st = CountState()
    for key, val in json.loads(text).items():
        setattr(st, key, int(val) if key in _BIG_INTS else val)
    return st


def _write_summary(attrs: Any, summary: dict[str, Any]) -> None:
    for key, val in summary.items():
        attrs[key] = val
    attrs["fraction_units"] = "fractions in [0, 1]; vth_* in activation units"


def _fraction_hist(num: np.ndarray, den: int) -> np.ndarray:
    """Histogram of num/den (integers, 0 <= num <= den) in FRACTION_BINS equal bins, exactly."""
    b = np.minimum((num * FRACTION_BINS) // den, FRACTION_BINS - 1)
    return np.bincount(b, minlength=FRACTION_BINS)


def _progress(items: Iterable, total: int | None, desc: str, enabled: bool) -> Iterator:
    if not enabled:
        return iter(items)
    from tqdm.auto import tqdm

    return iter(tqdm(items, total=total, desc=desc, unit="layer", leave=False, disable=None))  # None: terminal only


# ----------------------------------------------------------------------------- writing


def write_stats(
    trace_or_path: Any,
    stats: SpikeStats,
    out: Any = None,
    overwrite: bool = False,
    comparison: bool = True,
) -> Path:
    """Write ``stats`` (and the encoder comparison) to HDF5 atomically; returns the path written.

    Args:
        trace_or_path: the trace (``SpikeTrace`` or its path) the statistics belong to; may
            be None when ``out`` is given.
        stats: the statistics.
        out: None writes the ``/stats`` group *into the trace* (through
            ``analysis.trace.edit_trace``: temp copy, then atomic rename); a path writes a new
            HDF5 file with a ``/stats`` group (temp file in the same folder, fsync, rename).
        overwrite: allow ``out`` to replace an existing file.
        comparison: also write ``/stats/encoders`` (:func:`analysis.compare.compare_encoders`).
    """
    if not isinstance(stats, SpikeStats):
        raise TypeError(f"stats must be SpikeStats, got {type(stats).__name__}")
    source = None if trace_or_path is None else _trace_path(trace_or_path)

    def fill(f: Any) -> None:
        if "stats" in f:
            del f["stats"]
        g = f.create_group("stats")
        stats.to_hdf5(g)
        if source is not None:
            g.attrs["trace"] = str(source)
        if comparison and stats.layers:
            from .compare import compare_encoders, comparison_to_hdf5

            comparison_to_hdf5(g.create_group("encoders"), compare_encoders(stats))

    if out is None:
        if source is None:
            raise ValueError("give a trace to write into, or an output path `out`")
        with edit_trace(source) as f:
            fill(f)
        return source
    final = _check_destination(out, overwrite)
    if source is not None and final == source.expanduser().absolute():
        raise ValueError(f"out {final} is the trace itself; use out=None to write into the trace")
    with atomic_output(final, overwrite) as tmp, h5py.File(tmp, "w") as f:
        fill(f)
    return final


@contextmanager
def atomic_output(path: Any, overwrite: bool = False) -> Iterator[Path]:
    """Yield a temporary path beside ``path``; when the block succeeds it becomes ``path``.

    The temp file is fsynced, given mode 0666 minus the umask and renamed over ``path``
    (FileExistsError if ``path`` exists and not ``overwrite``); on an exception it is deleted.
    """
    final = _check_destination(path, overwrite)
    tmp = _temp_path(final)
    try:
        yield tmp
        readable_by_all(tmp)
        _commit(tmp, final, overwrite)
    finally:
        tmp.unlink(missing_ok=True)


def readable_by_all(path: Any) -> None:
    """Give a temp file (mkstemp makes it 0600) the mode a plain ``open`` would: 0666 minus the umask."""
    umask = 0o022
    try:
        with open("/proc/self/status") as fh:  # Linux: read the umask without changing it
            umask = next(int(line.split()[1], 8) for line in fh if line.startswith("Umask:"))
    except (OSError, StopIteration, ValueError):
        pass
    os.chmod(path, 0o666 & ~umask)


def read_stats(path: Any) -> SpikeStats:
    """Read the ``/stats`` group of a trace or stats file."""
    p = Path(os.fspath(path))
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        raise ValueError(f"{p}: not a readable HDF5 file ({e})") from None
    with f:
        if "stats" not in f:
            raise ValueError(f"{p} has no /stats group; run write_stats first")
        return SpikeStats.from_hdf5(f["stats"])


def _trace_path(trace_or_path: Any) -> Path:
    if isinstance(trace_or_path, (str, os.PathLike)):
        return Path(trace_or_path).expanduser().absolute()
    if hasattr(trace_or_path, "iter_layers"):
        if trace_or_path.path is None:
            raise ValueError("the trace lives in memory; save it first or give `out` to write a stats file")
        return Path(trace_or_path.path)
    raise TypeError(f"expected a SpikeTrace or a path, got {type(trace_or_path).__name__}")
