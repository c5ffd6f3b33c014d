"""Integer spike count <-> dense spike train, for the five SpikingBrain / Int2Spike schemes.

A spike train has shape ``[T, *counts.shape]`` and dtype int8. Step 0 comes first in time.
Semantics and default step counts T follow the public Int2Spike reference encoders
(BICLab/Int2Spike, neuron.py; summarised in shared/reference/spikingbrain.md, section 2):

========================  ===========  ==========================================
scheme                    spikes       default T for counts c
========================  ===========  ==========================================
``binary``                {0, 1}       max(c)            (c >= 0)
``ternary``               {-1, 0, 1}   max(abs(c))
``bitwise``               {0, 1}       max(1, ceil(log2(max(c) + 1)))   (c >= 0)
``bitwise-signed``        {-1, 0, 1}   ceil(log2(max(abs(c)) + 1))      sign-magnitude
``bitwise-twos``          {0, 1}       max(2, ceil(log2(max(abs(c)) + 1)) + 1)
========================  ===========  ==========================================

Binary and ternary emit one unit per step while the remaining count is non-zero (ones
first, then silence). Bitwise schemes emit one bit per step, most significant bit first
(``bit_order="msb"``, as Int2Spike) or least significant first (``"lsb"``); in two's
complement the MSB weighs ``-2**(T-1)``.
"""
from __future__ import annotations

from typing import Literal

import numpy as np
import torch

from ._arrays import ArrayLike, as_tensor, integer_counts, like_input, narrow_int
from . import _fused
from ._kernels import NUMPY, decode_steps, encode_steps, ops_for

SCHEMES: tuple[str, ...] = ("binary", "ternary", "bitwise", "bitwise-signed", "bitwise-twos")
BITWISE: frozenset[str] = frozenset({"bitwise", "bitwise-signed", "bitwise-twos"})
SIGNED: frozenset[str] = frozenset({"ternary", "bitwise-signed", "bitwise-twos"})
# Schemes whose spikes carry a sign (-1 events exist on the wire).
BIPOLAR: frozenset[str] = frozenset({"ternary", "bitwise-signed"})
BitOrder = Literal["msb", "lsb"]
MAX_BITWISE_STEPS = 64


def check_scheme(scheme: str) -> str:
    """Return ``scheme`` if known, else raise ValueError listing the valid names."""
    if scheme not in SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    return scheme


def _check_bit_order(bit_order: str) -> None:
    if bit_order not in ("msb", "lsb"):
        raise ValueError(f"bit_order must be 'msb' or 'lsb', got {bit_order!r}")


def count_range(scheme: str, T: int) -> tuple[int, int]:
    """Inclusive range of counts that ``T`` steps of ``scheme`` can carry."""
    check_scheme(scheme)
    _check_T(T)
    if scheme == "binary":
        return 0, T
    if scheme == "ternary":
        return -T, T
    if scheme == "bitwise":
        return 0, 2**T - 1
    if scheme == "bitwise-signed":
        return -(2**T - 1), 2**T - 1
    if T == 0:
        return 0, 0
    return -(2 ** (T - 1)), 2 ** (T - 1) - 1


def steps_for_value(scheme: str, value: int) -> int:
    """Smallest T at which ``scheme`` can carry the single count ``value``."""
    check_scheme(scheme)
    mag = abs(int(value))
    if scheme in ("binary", "ternary"):
        return mag
    if scheme in ("bitwise", "bitwise-signed"):
        return mag.bit_length()
    # Two's complement: -2**(n-1) fits in n bits, +2**(n-1) needs n+1.
    return (int(value).bit_length() if value >= 0 else (-int(value) - 1).bit_length()) + 1


def steps_needed(scheme: str, lo: int, hi: int) -> int:
    """Default T (Int2Spike rule) for counts whose minimum is ``lo`` and maximum ``hi``."""
    check_scheme(scheme)
    mag = max(abs(int(lo)), abs(int(hi)))
    if scheme == "binary":
        return int(hi)
    if scheme == "ternary":
        return mag
    if scheme == "bitwise":
        return max(1, int(hi).bit_length())
    if scheme == "bitwise-signed":
        return mag.bit_length()
    return max(2, mag.bit_length() + 1)


def default_steps(counts: ArrayLike, scheme: str) -> int:
    """Default T for ``counts`` under ``scheme`` (see module docstring)."""
    t, _ = integer_counts(counts)
    lo, hi = _extremes(t)
    _check_sign(scheme, lo)
    return steps_needed(scheme, lo, hi)


def step_weights(scheme: str, T: int, bit_order: BitOrder = "msb") -> np.ndarray:
    """Integer weight of each step: decode(s) = sum_t weights[t] * s[t]. int64 array of length T."""
    check_scheme(scheme)
    _check_bit_order(bit_order)
    _check_T(T)
    if scheme not in BITWISE:
        return np.ones(T, dtype=np.int64)
    w = [2 ** (T - 1 - t) for t in range(T)]  # MSB first
    if scheme == "bitwise-twos" and T:
        w[0] = -w[0]
    arr = np.array(w, dtype=object).astype(np.int64) if T < 64 else _twos64(T, w)
    return arr[::-1].copy() if bit_order == "lsb" else arr


def _twos64(T: int, w: list[int]) -> np.ndarray:
    # T == 64 only happens for two's complement; -2**63 is representable in int64.
    if w[0] != -(2**63):
        raise ValueError(f"T={T} exceeds the 64-bit accumulator range")
    return np.array([np.iinfo(np.int64).min] + w[1:], dtype=np.int64)


def _check_T(T: int) -> None:
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 0:
        raise ValueError(f"T must be a non-negative integer, got {T!r}")


def _extremes(t: torch.Tensor) -> tuple[int, int]:
    if t.numel() == 0:
        return 0, 0
    lo, hi = torch.aminmax(t)
    lo, hi = int(lo), int(hi)
    if lo < -(2**62) or hi > 2**62:
        raise ValueError("counts magnitude exceeds 2**62, the supported range")
    return lo, hi


def _check_sign(scheme: str, lo: int) -> None:
    if lo < 0 and scheme not in SIGNED:
        raise ValueError(
            f"scheme {scheme!r} carries only non-negative counts, found {lo}; "
            "use 'ternary', 'bitwise-signed' or 'bitwise-twos' for signed counts"
        )


def encode(
    counts: ArrayLike,
    scheme: str,
    T: int | None = None,
    bit_order: BitOrder = "msb",
) -> ArrayLike:
    """Encode integer spike counts into a dense spike train.

    Args:
        counts: integer counts (numpy array or torch tensor, CPU or CUDA); integral floats
            are accepted.
        scheme: one of :data:`SCHEMES`.
        T: number of time steps; ``None`` uses the Int2Spike default for the data.
        bit_order: ``"msb"`` (step 0 = most significant bit) or ``"lsb"``; bitwise only,
            for binary/ternary the order is ones-first either way.

    Returns:
        int8 spike train of shape ``[T, *counts.shape]``, the same array kind and device.

    Raises:
        ValueError: unknown scheme, non-integer or non-finite counts, negative counts for an
            unsigned scheme, or a ``T`` too small for the data (the message names the
            offending value and the ``T`` it needs).
        TypeError: not an array, or a bool/complex/object dtype.
    """
    check_scheme(scheme)
    _check_bit_order(bit_order)
    t, was_numpy = integer_counts(counts)
    lo, hi = _extremes(t)
    _check_sign(scheme, lo)
    if T is None:
        T = steps_needed(scheme, lo, hi)
    _check_T(T)
    T = int(T)
    if T > MAX_BITWISE_STEPS and scheme in BITWISE:
        raise ValueError(f"T={T} exceeds {MAX_BITWISE_STEPS} steps for a bitwise scheme")
    rlo, rhi = count_range(scheme, T)
    if lo < rlo or hi > rhi:
        bad = lo if lo < rlo else hi
        need = max(steps_for_value(scheme, lo), steps_for_value(scheme, hi))
        raise ValueError(
            f"T={T} is too small for scheme {scheme!r}: value {bad} is outside [{rlo}, {rhi}]; "
            f"it needs T >= {need}"
        )
    if t.device.type == "cpu" and t.numel() >= _fused.MIN_ELEMENTS and _fused.available():
        # One pass over the counts as they are (no narrowing copy): the same train.
        return _wrap(_fused.encode_fused(t.numpy(), scheme, T, bit_order == "msb"), was_numpy)
    c = narrow_int(t, min(lo, 0), max(hi, 0))
    if scheme in BITWISE and T >= torch.iinfo(c.dtype).bits:
        c = c.to(torch.int64)  # every shift stays below the word width
    ops, arr = ops_for(c)
    out = encode_steps(ops, arr, scheme, T, bit_order == "msb")
    return _wrap(out, was_numpy)


def _wrap(a, was_numpy: bool) -> ArrayLike:
    if isinstance(a, np.ndarray):
        return a if was_numpy else torch.from_numpy(a)
    return like_input(a, was_numpy)


def decode(
    spikes: ArrayLike, scheme: str, bit_order: BitOrder = "msb", dtype: object | None = None
) -> ArrayLike:
    """Exact inverse of :func:`encode`: spike train ``[T, *shape]`` -> integer counts ``shape``.

    The result has the narrowest signed integer dtype that holds every count ``T`` steps of
    ``scheme`` can carry (int8 for bitwise T <= 6, say), unless ``dtype`` (numpy or torch
    dtype, e.g. ``np.int64``) is given. Raises ValueError if a spike value is not allowed by
    ``scheme`` (e.g. -1 in ``binary``).
    """
    check_scheme(scheme)
    _check_bit_order(bit_order)
    s, was_numpy = as_tensor(spikes, "spikes")
    if s.dim() < 1:
        raise ValueError("spikes must have a leading time axis: shape [T, *shape]")
    if s.is_floating_point() or s.dtype == torch.bool or s.is_complex():
        s, _ = integer_counts(s, "spikes")
    allowed_lo = -1 if scheme in BIPOLAR else 0
    if (s.dtype == torch.int8 and s.device.type == "cpu" and s.numel() >= _fused.MIN_ELEMENTS
            and s.shape[0] <= 62 and _fused.available()):
        # One pass: check the values and sum w_t * s_t; a bad value falls through to the
        # reference check below, which names it.
        w = step_weights(scheme, s.shape[0], bit_order)
        reach = int(np.abs(w).sum())
        acc_np = torch.empty(0, dtype=narrow_int(s[:0], -reach, reach).dtype).numpy().dtype
        fused = _fused.decode_fused(s.numpy(), w, allowed_lo, acc_np)
        if fused is not None:
            acc = _wrap(fused, was_numpy)
            if dtype is not None:
                acc = acc.astype(dtype) if isinstance(acc, np.ndarray) else acc.to(_torch_dtype(dtype))
            return acc
    if s.numel():
        lo, hi = (int(v) for v in torch.aminmax(s))
        if lo < allowed_lo or hi > 1:
            raise ValueError(
                f"spike values for scheme {scheme!r} must lie in [{allowed_lo}, 1]; "
                f"found {lo if lo < allowed_lo else hi}"
            )
    if s.dtype != torch.int8:
        s = s.to(torch.int8)
    reach = sum(abs(int(v)) for v in step_weights(scheme, s.shape[0], bit_order))
    acc_dtype = narrow_int(s[:0], -reach, reach).dtype
    ops, arr = ops_for(s)
    if ops is NUMPY:
        acc_dtype = torch.empty(0, dtype=acc_dtype).numpy().dtype
    acc = _wrap(decode_steps(ops, arr, scheme, bit_order == "msb", acc_dtype), was_numpy)
    if dtype is not None:
        acc = acc.astype(dtype) if isinstance(acc, np.ndarray) else acc.to(_torch_dtype(dtype))
    return acc


def _torch_dtype(dtype: object) -> torch.dtype:
    if isinstance(dtype, torch.dtype):
        return dtype
    return torch.from_numpy(np.empty(0, dtype=dtype)).dtype
