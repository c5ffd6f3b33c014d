"""Step-loop kernels behind encode/decode, written once over numpy ufuncs or torch ops.

CPU data runs through numpy ufuncs with ``out=`` (in place, no temporaries; several times
faster than torch's int8 CPU kernels), CUDA data through the matching torch ops. The loops
run over time steps only; each step is one vectorized pass over all elements.
"""
from __future__ import annotations

from types import SimpleNamespace
from typing import Any

import numpy as np
import torch

from .code import Scheme, naf_digits

NUMPY = SimpleNamespace(
    empty_like=lambda a, shape, dtype: np.empty(shape, dtype=dtype),
    zeros_like=lambda a, shape, dtype: np.zeros(shape, dtype=dtype),
    int8=np.int8,
    greater=lambda a, v, out: np.greater(a, v, out=out),
    rshift=lambda a, s, out: np.right_shift(a, s, out=out),
    lshift=lambda a, s, out: np.left_shift(a, s, out=out),
    band=lambda a, v, out: np.bitwise_and(a, v, out=out),
    mul=lambda a, b, out: np.multiply(a, b, out=out),
    add=lambda a, b, out: np.add(a, b, out=out, casting="unsafe"),
    sub=lambda a, b, out: np.subtract(a, b, out=out, casting="unsafe"),
    copy=lambda dst, src: np.copyto(dst, src, casting="unsafe"),
    abs=np.abs,
    sign=lambda a: np.sign(a).astype(np.int8),
    arange=lambda a, lo, hi: np.arange(lo, hi),
    sum0=lambda s, dtype: np.asarray(np.sum(s, axis=0, dtype=dtype)),
)

TORCH = SimpleNamespace(
    empty_like=lambda a, shape, dtype: torch.empty(shape, dtype=dtype, device=a.device),
    zeros_like=lambda a, shape, dtype: torch.zeros(shape, dtype=dtype, device=a.device),
    int8=torch.int8,
    greater=lambda a, v, out: torch.gt(a, v, out=out),
    rshift=lambda a, s, out: torch.bitwise_right_shift(a, s, out=out),
    lshift=lambda a, s, out: torch.bitwise_left_shift(a, s, out=out),
    band=lambda a, v, out: torch.bitwise_and(a, v, out=out),
    mul=lambda a, b, out: torch.mul(a, b, out=out),
    add=lambda a, b, out: torch.add(a, b, out=out),
    sub=lambda a, b, out: torch.sub(a, b, out=out),
    copy=lambda dst, src: dst.copy_(src),
    abs=torch.abs,
    sign=lambda a: torch.sign(a).to(torch.int8),
    arange=lambda a, lo, hi: torch.arange(lo, hi, device=a.device),
    sum0=lambda s, dtype: torch.sum(s, dim=0, dtype=dtype),
)

# Element comparisons per vectorized pass of binary/ternary encoding: few counts with a
# large T are encoded a block of steps at a time instead of one Python iteration per step.
_BLOCK_ELEMENTS = 1 << 20


def ops_for(t: torch.Tensor) -> tuple[SimpleNamespace, Any]:
    """The op set for a tensor's device and the array the ops should act on."""
    if t.device.type == "cpu":
        return NUMPY, t.numpy()
    return TORCH, t


def encode_steps(ops: SimpleNamespace, c: Any, scheme: Scheme, T: int, msb_first: bool) -> Any:
    """Dense int8 train ``[T, *c.shape]`` from validated, range-checked integer counts ``c``."""
    out = ops.empty_like(c, (T,) + tuple(c.shape), ops.int8)
    if scheme.rate:
        mag = ops.abs(c) if scheme.bipolar else c
        sign = ops.sign(c) if scheme.bipolar else None
        block = max(1, _BLOCK_ELEMENTS // max(1, int(np.prod(tuple(c.shape)))))
        for s0 in range(0, T, block):  # out[t] = (|c| > t): ones first, then silence
            s1 = min(T, s0 + block)
            steps = ops.arange(c, s0, s1).reshape((s1 - s0,) + (1,) * len(c.shape))
            ops.greater(mag[None], steps, out[s0:s1])
            if sign is not None:
                ops.mul(out[s0:s1], sign[None], out[s0:s1])
        return out
    if scheme.naf:  # signed digits: +1 where the plus mask has the bit, -1 where the minus mask has it
        return _encode_naf(ops, c, T, msb_first, out)
    # Bitwise: bit ``shift`` of the magnitude (sign-magnitude) or of the two's-complement
    # pattern (arithmetic shifts of a signed integer give exactly those bits).
    mag = ops.abs(c) if scheme.bipolar else c
    sign = ops.sign(c) if scheme.bipolar else None
    tmp = ops.empty_like(mag, tuple(mag.shape), mag.dtype)
    for step in range(T):
        shift = T - 1 - step if msb_first else step
        ops.rshift(mag, shift, tmp)
        ops.band(tmp, 1, tmp)
        ops.copy(out[step], tmp)
        if sign is not None:
            ops.mul(out[step], sign, out[step])
    return out


def decode_steps(ops: SimpleNamespace, s: Any, scheme: Scheme, msb_first: bool, acc_dtype: Any) -> Any:
    """Counts from a validated train ``s``; ``acc_dtype`` must hold every reachable value."""
    T = s.shape[0]
    if scheme.rate:
        return ops.sum0(s, acc_dtype)  # one reduction over the time axis
    acc = ops.zeros_like(s, tuple(s.shape[1:]), acc_dtype)
    # Horner's rule from the most significant step: acc = 2 * acc + s_t. In two's
    # complement the MSB weighs -2**(T-1), so it enters negated.
    order = range(T) if msb_first else range(T - 1, -1, -1)
    for i, step in enumerate(order):
        if i:
            ops.lshift(acc, 1, acc)
        if i == 0 and scheme.twos:
            ops.sub(acc, s[step], acc)
        else:
            ops.add(acc, s[step], acc)
    return acc


def _encode_naf(ops: SimpleNamespace, c: Any, T: int, msb_first: bool, out: Any) -> Any:
    """Non-adjacent-form digits of ``c`` (sign applied), one per step, into ``out``."""
    mag = ops.abs(c)
    if ops is NUMPY:
        plus, minus = (m.astype(np.int64) for m in naf_digits(mag))
    else:  # the same identity with torch ops
        m = mag.to(torch.int64)
        h = m >> 1
        x = m + h
        cc = h ^ x
        plus, minus = x & cc, h & cc
    sign = ops.sign(c)
    tmp = ops.empty_like(plus, tuple(plus.shape), plus.dtype)
    for step in range(T):
        shift = T - 1 - step if msb_first else step
        ops.rshift(plus, shift, tmp)
        ops.band(tmp, 1, tmp)
        ops.copy(out[step], tmp)
        ops.rshift(minus, shift, tmp)
        ops.band(tmp, 1, tmp)
        ops.sub(out[step], tmp, out[step])
        ops.mul(out[step], sign, out[step])
    return out
