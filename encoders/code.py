"""The spike-code registry: every fact about a scheme lives on one :class:`Scheme` object.

Other packages ask the registry (``encoders.get_scheme(name).signed``, ``.needs_sign_split``,
``.count_range(T)`` ...) instead of keeping their own sets of names. A :class:`SpikeCode`
binds a scheme to a step count ``T`` and a bit order, validated once.

Adding a scheme: one :class:`Scheme` entry in :data:`REGISTRY` below, plus its train
kernels in ``encoders/_kernels.py`` (encode/decode steps). The fields ``events_per_count``
and ``payload_bits`` are hooks for codes that send one event per non-zero count carrying an
integer payload (graded spikes), which change how events and bytes are counted downstream.
"""
from __future__ import annotations

from dataclasses import dataclass, field, replace
from typing import Literal

import numpy as np

BitOrder = Literal["msb", "lsb"]
BIT_ORDERS: tuple[str, ...] = ("msb", "lsb")
# Longest bitwise train: step weights up to 2**63 must fit the int64 accumulators of
# encoders.decode and of the simulator (two's complement reaches -2**63 at T = 64).
MAX_BITWISE_STEPS = 64
# Longest bitwise train a consumer that sums weighted steps into int64 accepts (neurosim.sim):
# two bits of headroom for the sign and the carry of the running sum.
MAX_ACCUMULATED_STEPS = MAX_BITWISE_STEPS - 2
MAX_ABS_STEPS_VALUE = 2**62  # counts beyond this magnitude are rejected (int64 headroom)


def check_T(T: object) -> int:
    """``T`` as an int if it is a non-negative integer, else ValueError."""
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 0:
        raise ValueError(f"T must be a non-negative integer, got {T!r}")
    return int(T)


def check_bit_order(bit_order: object) -> str:
    """``bit_order`` if it is ``"msb"`` or ``"lsb"``, else ValueError."""
    if bit_order not in BIT_ORDERS:
        raise ValueError(f"bit_order must be 'msb' or 'lsb', got {bit_order!r}")
    return str(bit_order)


def _popcount(a: np.ndarray) -> np.ndarray:
    a = np.asarray(a, dtype=np.int64)
    if hasattr(np, "bitwise_count"):  # numpy >= 2
        return np.bitwise_count(a).astype(np.int64)
    return np.array([bin(int(v) & (2**64 - 1)).count("1") for v in a.ravel()], dtype=np.int64).reshape(a.shape)


def naf_digits(mag: np.ndarray) -> tuple[np.ndarray, np.ndarray]:
    """Non-adjacent form of non-negative integers as two bit masks ``(plus, minus)`` (int64).

    ``mag = plus - minus``; no two adjacent bits of ``plus | minus`` are set. Prodinger's
    identity (Reitwiesner's NAF without a digit loop): with ``h = mag >> 1`` and
    ``x = mag + h``, the non-zero digits are the bits of ``c = h ^ x``; positive where
    ``x`` has the bit, negative where ``h`` has it.
    """
    m = np.asarray(mag, dtype=np.int64)
    h = m >> 1
    x = m + h
    c = h ^ x
    return x & c, h & c


@dataclass(frozen=True)
class Scheme:
    """One spike code: how an integer count becomes spikes over ``T`` steps.

    Attributes:
        name: registry key (CLI spelling).
        signed: carries negative counts itself (unsigned ones are sign-split downstream:
            two unipolar lines per channel, |s| on the line of its sign).
        bipolar: spikes may be -1 on the wire (ternary, sign-magnitude bitwise).
        bitwise: one bit per step, step weights powers of two; else a rate code (one unit
            per step while the count lasts).
        twos: two's complement (the most significant step weighs ``-2**(T-1)``).
        wire_id: stable number of the scheme in exported files (never reuse one).
        budget: steps at which every scheme carries |s| <= 7 (94.1 % of the report's counts,
            arXiv:2509.05276 section 3), so comparisons are at equal precision.
        color: plot colour.
        events_per_count: hook for graded codes (1: one event per non-zero count); None for
            trains, where events are the non-zero steps.
        payload_bits: graded codes: bits of the signed integer each event carries (the
            payload range is symmetric, +-(2**(bits-1) - 1)); 0 for trains.
        naf: bitwise digits in non-adjacent form (signed digits, no two adjacent non-zero).
        description: one line for help texts.
    """

    name: str
    signed: bool
    bipolar: bool
    bitwise: bool
    wire_id: int
    budget: int
    color: str
    twos: bool = False
    events_per_count: int | None = None
    payload_bits: int = 0
    naf: bool = False
    description: str = field(default="", compare=False)

    def __post_init__(self) -> None:
        if self.events_per_count is not None and not 2 <= self.payload_bits <= 32:
            raise ValueError(f"graded payload_bits must lie in [2, 32], got {self.payload_bits!r}")

    # -- derived facts --------------------------------------------------------------
    @property
    def graded(self) -> bool:
        """Graded spikes: one event per non-zero count, carrying the count as its payload."""
        return self.events_per_count is not None

    @property
    def payload_max(self) -> int:
        """Largest |payload| of a graded event (1 for unit spikes)."""
        return 2 ** (self.payload_bits - 1) - 1 if self.graded else 1

    def with_payload_bits(self, bits: int) -> "Scheme":
        """This graded scheme with ``bits`` payload bits (ValueError for trains or bits outside [2, 32])."""
        if not self.graded:
            raise ValueError(f"scheme {self.name!r} sends unit spikes; only graded schemes carry payload bits")
        if isinstance(bits, bool) or not isinstance(bits, (int, np.integer)):
            raise ValueError(f"payload bits must be an integer, got {bits!r}")
        return replace(self, payload_bits=int(bits))

    @property
    def rate(self) -> bool:
        """A rate code: one unit spike per step while the count lasts (binary, ternary)."""
        return not self.bitwise and not self.graded

    @property
    def needs_sign_split(self) -> bool:
        """Unsigned schemes carry signed counts as |s| on two unipolar lines per channel."""
        return not self.signed

    @property
    def lines(self) -> int:
        """Wires per channel: 2 for sign-split unsigned schemes, else 1."""
        return 2 if self.needs_sign_split else 1

    @property
    def max_steps(self) -> int | None:
        """Longest train (bitwise: :data:`MAX_BITWISE_STEPS`; rate and graded codes: unbounded)."""
        return MAX_BITWISE_STEPS if self.bitwise else None

    @property
    def spike_values(self) -> tuple[int, int]:
        """Smallest and largest spike value on the wire: (-1, 1) bipolar, +-payload_max graded, else (0, 1)."""
        if self.graded:
            return -self.payload_max, self.payload_max
        return (-1 if self.bipolar else 0), 1

    @property
    def signed_twin(self) -> str | None:
        """The signed scheme with the same steps rule (unsigned schemes only)."""
        if self.signed:
            return None
        return next((s.name for s in REGISTRY.values()
                     if s.signed and not s.twos and s.bitwise == self.bitwise), None)

    # -- counts <-> steps -----------------------------------------------------------
    def count_range(self, T: int) -> tuple[int, int]:
        """Inclusive range of counts ``T`` steps carry."""
        T = check_T(T)
        if self.graded:
            top = self.payload_max if T else 0
            return -top, top
        if self.naf:  # largest T-digit NAF: 1010...1(0) = floor((2**(T+1) - 1) / 3)
            top = (2 ** (T + 1) - 1) // 3
            return -top, top
        top = 2**T - 1 if self.bitwise else T
        if self.twos:
            return (0, 0) if T == 0 else (-(2 ** (T - 1)), 2 ** (T - 1) - 1)
        return (-top if self.signed else 0), top

    def steps_for_value(self, value: int) -> int:
        """Smallest T that carries the single count ``value``."""
        v = int(value)
        if self.graded:
            return 1 if v else 0
        if self.naf:  # NAF of n has bit_length(3|n|) - 1 digits (<= bit_length(|n|) + 1)
            return max(0, (3 * abs(v)).bit_length() - 1)
        if self.twos:  # -2**(n-1) fits in n bits, +2**(n-1) needs n+1
            return (v.bit_length() if v >= 0 else (-v - 1).bit_length()) + 1
        return abs(v).bit_length() if self.bitwise else abs(v)

    def steps_needed(self, lo: int, hi: int) -> int:
        """Default T (Int2Spike rule) for counts whose minimum is ``lo`` and maximum ``hi``."""
        lo, hi = int(lo), int(hi)
        mag = max(abs(lo), abs(hi))
        if self.graded:
            return 1
        if self.naf:
            return self.steps_for_value(mag)
        if self.twos:
            return max(2, mag.bit_length() + 1)
        if self.signed:
            return mag.bit_length() if self.bitwise else mag
        return max(1, hi.bit_length()) if self.bitwise else hi

    def step_weights(self, T: int, bit_order: str = "msb") -> np.ndarray:
        """Integer weight of each step: count = sum_t weights[t] * spike[t]. int64, length T."""
        T = check_T(T)
        check_bit_order(bit_order)
        if not self.bitwise:
            return np.ones(T, dtype=np.int64)
        if T > MAX_BITWISE_STEPS or (T == MAX_BITWISE_STEPS and not self.twos):
            raise ValueError(f"T={T} exceeds the 64-bit accumulator range")
        w = [2 ** (T - 1 - t) for t in range(T)]  # MSB first
        if self.twos and T:
            w[0] = -w[0]
        arr = np.array(w, dtype=object).astype(np.int64)
        return arr[::-1].copy() if bit_order == "lsb" else arr

    def events(self, values: np.ndarray, T: int) -> np.ndarray:
        """Spikes each count in ``values`` costs when carried exactly in ``T`` steps (int64).

        Sign-split schemes are given |s|; two's complement counts the set bits of the T-bit pattern.
        """
        v = np.asarray(values, dtype=np.int64)
        if self.events_per_count is not None:
            return np.where(v != 0, self.events_per_count, 0).astype(np.int64)
        if self.rate:
            return np.abs(v)
        if self.twos:
            return _popcount(v & ((1 << T) - 1))
        if self.naf:
            pos, neg = naf_digits(np.abs(v))
            return _popcount(pos | neg)
        return _popcount(np.abs(v))

    def check_counts_sign(self, lo: int) -> None:
        """ValueError if a negative count ``lo`` reaches a scheme that cannot carry it."""
        if lo < 0 and not self.signed:
            signed = ", ".join(repr(s.name) for s in REGISTRY.values() if s.signed)
            raise ValueError(f"scheme {self.name!r} carries only non-negative counts, found {lo}; "
                             f"use {signed} for signed counts")

    def code(self, T: int, bit_order: str = "msb") -> "SpikeCode":
        """This scheme at ``T`` steps in ``bit_order``."""
        return SpikeCode(self, T, bit_order)


@dataclass(frozen=True)
class SpikeCode:
    """A scheme with its step count ``T`` and bit order, validated once on construction."""

    scheme: Scheme
    T: int
    bit_order: str = "msb"

    def __post_init__(self) -> None:
        if isinstance(self.scheme, str):
            object.__setattr__(self, "scheme", get_scheme(self.scheme))
        if not isinstance(self.scheme, Scheme):
            raise TypeError(f"scheme must be a Scheme or its name, got {type(self.scheme).__name__}")
        object.__setattr__(self, "T", check_T(self.T))
        check_bit_order(self.bit_order)
        cap = self.scheme.max_steps
        if cap is not None and self.T > cap:
            raise ValueError(f"T={self.T} exceeds {cap} steps for scheme {self.scheme.name!r}")

    @property
    def name(self) -> str:
        return self.scheme.name

    @property
    def msb_first(self) -> bool:
        return self.bit_order == "msb"

    def count_range(self) -> tuple[int, int]:
        """Inclusive range of counts this code carries."""
        return self.scheme.count_range(self.T)

    def step_weights(self) -> np.ndarray:
        """Integer weight of each step (int64, length T)."""
        return self.scheme.step_weights(self.T, self.bit_order)


_SCHEMES = (
    # name              signed bipolar bitwise id budget colour      twos
    Scheme("binary", False, False, False, 0, 7, "#4c72b0", description="unipolar rate: |s| ones then silence"),
    Scheme("ternary", True, True, False, 1, 7, "#55a868", description="bipolar rate: |s| spikes of sign(s)"),
    Scheme("bitwise", False, False, True, 2, 3, "#c44e52", description="binary digits of s, one per step"),
    Scheme("bitwise-signed", True, True, True, 3, 3, "#8172b2", description="sign-magnitude bits (bitwise-ternary)"),
    Scheme("bitwise-twos", True, False, True, 4, 4, "#ccb974", twos=True, description="two's complement bits"),
    # NAF of 7 is 100-1: four digits carry [-7, 7] (and up to +-10).
    Scheme("bitwise-naf", True, True, True, 5, 4, "#937860", naf=True,
           description="non-adjacent form: signed digits, fewest non-zero (never more spikes than sign-magnitude)"),
    # Loihi 2 graded spikes (Intel, Loihi 2 technology brief 2021: integer payloads up to 32 bits).
    Scheme("graded", True, True, False, 6, 1, "#da8bc3", events_per_count=1, payload_bits=8,
           description="graded spike: one event per non-zero count carrying it as an 8-bit signed payload"),
)
REGISTRY: dict[str, Scheme] = {s.name: s for s in _SCHEMES}
DEFAULT_SCHEME = "bitwise-signed"  # the report's bitwise-ternary code (arXiv:2509.05276 section 3)


def get_scheme(scheme: str | Scheme) -> Scheme:
    """The registered :class:`Scheme` called ``scheme`` (ValueError listing the valid names)."""
    if isinstance(scheme, Scheme):
        return scheme
    try:
        return REGISTRY[scheme]
    except (KeyError, TypeError):
        raise ValueError(f"unknown scheme {scheme!r}; choose one of {', '.join(REGISTRY)}") from None


def scheme_names(*, signed: bool | None = None, bitwise: bool | None = None) -> tuple[str, ...]:
    """Registered scheme names in registry order, optionally filtered by property."""
    return tuple(s.name for s in REGISTRY.values()
                 if (signed is None or s.signed == signed) and (bitwise is None or s.bitwise == bitwise))
