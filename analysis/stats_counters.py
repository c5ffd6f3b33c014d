"""Exact integer counters of spike counts: histograms, windows and per-layer state.

Definitions: :mod:`analysis.stats` (report section 3). Everything is an integer counter or a
fixed-bin histogram, so merging partial results is exact.
"""
from __future__ import annotations

import math
from dataclasses import dataclass, field, fields
from functools import lru_cache
import numpy as np

import encoders

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
    return encoders.get_scheme(scheme).lines


def window_range(scheme: str, T: int) -> tuple[int, int]:
    """Inclusive range of counts T steps of ``scheme`` carry (sign-split schemes: +-magnitude)."""
    sch = encoders.get_scheme(scheme)
    lo, hi = sch.count_range(T)
    if sch.needs_sign_split:
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
    if encoders.get_scheme(scheme).needs_sign_split:
        v = np.abs(v)
    lut = (encoders.encode(v, scheme, T=T, bit_order=bit_order) != 0).astype(np.int8)  # graded: payload != 0
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
    return encoders.get_scheme(scheme).events(_EXACT_VALUES, T)


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
        over_pop_naf: sum over overflow values of the non-zero NAF digits of ``|s|``;
            over_naf_len: int64 ``[65]``, overflow values by NAF length of ``|s|`` (both 0 in
            statistics written before bitwise-naf existed).
        temporal_same, temporal_pairs: (token, channel) values equal to the same channel's
            value at the previous token of the same prompt, and how many values had a
            previous token (every token but each prompt's first, times channels).
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
    over_pop_naf: int = 0
    over_naf_len: np.ndarray = field(default_factory=lambda: np.zeros(MAX_BITS + 1, np.int64))
    temporal_same: int = 0
    temporal_pairs: int = 0
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

    def temporal_sparsity(self) -> float:
        """Fraction of values unchanged from the previous token (same layer, channel, prompt)."""
        return self.temporal_same / self.temporal_pairs if self.temporal_pairs else float("nan")

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
        sch = encoders.get_scheme(scheme)
        if self.lo is None:
            return 0
        if sch.needs_sign_split:
            return sch.steps_needed(0, self.max_abs())
        return sch.steps_needed(self.lo, self.hi)

    def lossless_events(self, scheme: str, T: int | None = None) -> int:
        """Spikes when every value is carried exactly (T defaults to :meth:`steps_needed`).

        Only two's complement depends on T (negative values fill the leading bits).
        """
        sch = encoders.get_scheme(scheme)
        if T is None:
            T = self.steps_needed(scheme)
        if sch.twos:
            lo, hi = sch.count_range(T)
            if self.lo is not None and (self.lo < lo or self.hi > hi):
                raise ValueError(f"T={T} cannot carry values in [{self.lo}, {self.hi}] with {scheme}")
            exact = int(_lossless_events_lut(scheme, T) @ self.hist)
            n_neg = int(self.over_neg.sum())
            return exact + self.over_pop_pos + T * n_neg - self.over_pop_negm1
        exact = int(_lossless_events_lut(scheme, 0) @ self.hist)
        if sch.events_per_count is not None:  # graded codes: a fixed number of events per non-zero count
            return exact + sch.events_per_count * int(self.over_pos.sum() + self.over_neg.sum())
        if sch.rate:
            return exact + self.over_sum_abs
        if sch.naf:
            return exact + self.over_pop_naf
        return exact + self.over_pop_pos + self.over_pop_neg

    def steps_hist(self, scheme: str) -> tuple[np.ndarray, np.ndarray]:
        """Histogram of the steps each value needs alone (``encoders.steps_for_value``).

        Returns ``(lower_edges, counts)``: bitwise schemes have one bin per step count
        (0..63); binary/ternary need ``|s|`` steps, exact up to EXACT_MAX and then in
        power-of-two bins ``[2**(b-1), 2**b)``.
        """
        sch = encoders.get_scheme(scheme)
        if sch.graded:  # one step for every non-zero count (payloads beyond the bits are clipped)
            counts = np.zeros(MAX_BITS + 1, np.int64)
            counts[0], counts[1] = self.zeros, self.values - self.zeros
            return np.arange(MAX_BITS + 1, dtype=np.int64), counts
        if sch.rate:
            over = self.abs_over_hist()
            edges = np.concatenate([np.arange(EXACT_MAX + 1), 2 ** (np.arange(11, MAX_BITS) - 1)])
            return edges.astype(np.int64), np.concatenate([self.abs_hist(), over[11:]])
        counts = np.zeros(MAX_BITS + 1, np.int64)
        if sch.naf:  # NAF of n: bit_length(3|n|) - 1 digits
            np.add.at(counts, np.maximum(bit_length(3 * np.abs(_EXACT_VALUES)) - 1, 0), self.hist)
            counts += self.over_naf_len
        elif not sch.twos:
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
        for mag in (pos, neg):
            plus, minus = encoders.naf_digits(mag)
            self.over_pop_naf += int(popcount(plus | minus).sum())
            self.over_naf_len += np.bincount(bit_length(3 * mag) - 1, minlength=MAX_BITS + 1)[: MAX_BITS + 1]

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
    # Temporal carry (not stored in /stats): ``head`` is the first token's counts when that
    # token continues a prompt begun before these rows (None when it starts a prompt), and
    # ``tail`` the last token's counts, so merging consecutive chunks compares across the seam.
    head: np.ndarray | None = field(default=None, compare=False, repr=False)
    tail: np.ndarray | None = field(default=None, compare=False, repr=False)

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
        if other.head is not None and self.tail is not None:  # the seam between consecutive chunks
            self.state.temporal_same += int(np.count_nonzero(self.tail == other.head))
            self.state.temporal_pairs += self.channels
        if not self.state.rows:
            self.head = other.head
        if other.state.rows:
            self.tail = other.tail
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


def _fraction_hist(num: np.ndarray, den: int) -> np.ndarray:
    """Histogram of num/den (integers, 0 <= num <= den) in FRACTION_BINS equal bins, exactly."""
    b = np.minimum((num * FRACTION_BINS) // den, FRACTION_BINS - 1)
    return np.bincount(b, minlength=FRACTION_BINS)
