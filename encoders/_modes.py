"""Which fused kernel writes a scheme's train: one small integer per steps rule.

Shared by the CPU kernels (:mod:`encoders._fused`, numba) and the GPU kernels
(:mod:`encoders._triton`), so both dispatch the same way. The step-loop code in
:mod:`encoders._kernels` stays the reference every kernel is tested against.
"""
from __future__ import annotations

from .code import Scheme

RATE_U = 0  # binary: 1 while the step index is below the count
RATE_S = 1  # ternary: sign(c) while the step index is below |c|
BITS_U = 2  # bitwise: bit ``shift`` of the count
BITS_SM = 3  # bitwise-signed: bit ``shift`` of |c|, times sign(c)
BITS_TWOS = 4  # bitwise-twos: bit ``shift`` of the two's-complement pattern (arithmetic shift)
NAF = 5  # bitwise-naf: non-adjacent-form digit ``shift`` of |c|, times sign(c)
GRADED = 6  # graded: the count itself at step 0 (payload), silence after


def mode_for(scheme: Scheme) -> int | None:
    """Kernel mode writing ``scheme``'s int8 train, or None if no kernel does (graded
    payloads wider than 8 bits need a wider train)."""
    if scheme.graded:
        return GRADED if scheme.payload_bits <= 8 else None
    if scheme.rate:
        return RATE_S if scheme.bipolar else RATE_U
    if scheme.naf:
        return NAF
    if scheme.twos:
        return BITS_TWOS
    return BITS_SM if scheme.bipolar else BITS_U


def wide_words(itemsize: int, T: int, mode: int) -> bool:
    """Whether encode arithmetic needs 64-bit words: counts wider than 2 bytes (|int32 min|
    and NAF's ``|c| + |c| >> 1`` overflow 32 bits) or bit codes shifting by 31 and more."""
    return itemsize > 2 or (T >= 31 and mode not in (RATE_U, RATE_S, GRADED))
