"""Triton kernels for CUDA encode/decode: one read of the counts, one write of the train.

The torch step loop (:mod:`encoders._kernels` over torch ops, T launches and temporaries
per call) stays the reference every kernel is tested against bit for bit. Here encode is
one launch: each program loads a block of counts once and writes its slots of the ``T``
planes; decode is one launch: each program reads its slots of every plane once, checks
the spike values, sums them by Horner's rule (or plainly, for rate and graded codes) and
writes the counts; a program that saw a bad value raises a flag, which the host reads
(the reference path then names the value). Arithmetic is 32-bit where every value fits
(counts of at most 2 bytes, shifts below 31), else 64-bit.

Triton ships with the CUDA builds of torch; without it (or without CUDA) the torch path
runs. Tests run these kernels on CPU tensors under ``TRITON_INTERPRET=1``.
"""
from __future__ import annotations

import torch

from . import _modes
from ._modes import wide_words

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - CPU-only torch builds
    triton = None

BLOCK = 2048  # slots per program: 8 KB of int32 counts or 2 KB per int8 plane
NUM_WARPS = 4
MAX_T_CHUNK = 64  # steps per program (a long rate train spreads over a second grid axis)

if triton is not None:
    # Kernels read only constexpr globals: the modes, as constexpr copies.
    RATE_U = tl.constexpr(_modes.RATE_U)
    RATE_S = tl.constexpr(_modes.RATE_S)
    BITS_SM = tl.constexpr(_modes.BITS_SM)
    BITS_TWOS = tl.constexpr(_modes.BITS_TWOS)
    NAF = tl.constexpr(_modes.NAF)
    GRADED = tl.constexpr(_modes.GRADED)

    # ``n`` stays specialized: a multiple of 16 lets the planes' loads and stores be 16-byte vectors.
    @triton.jit(do_not_specialize=["T", "msb", "t_chunk"])
    def _encode_kernel(c_ptr, out_ptr, n, T, msb, t_chunk,
                       MODE: tl.constexpr, WIDE: tl.constexpr, BLOCK: tl.constexpr):  # pragma: no cover - compiled
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        inside = offs < n
        v = tl.load(c_ptr + offs, mask=inside, other=0)
        if WIDE:
            v = v.to(tl.int64)
        else:
            v = v.to(tl.int32)
        neg = v < 0
        a = tl.where(neg, -v, v)  # |c| (in range: at most 2**62, or 2**15 in 32-bit words)
        x = a + (a >> 1)  # NAF: digit k = bit k of x minus bit k + 1 of |c|
        t0 = tl.program_id(1) * t_chunk
        for i in range(0, tl.minimum(t_chunk, T - t0)):
            t = t0 + i
            k = msb * (T - 1 - t) + (1 - msb) * t  # bit weighed by this step
            if MODE == RATE_U:
                d = (v > t).to(v.dtype)
            elif MODE == RATE_S:
                d = (a > t).to(v.dtype)
                d = tl.where(neg, -d, d)
            elif MODE == BITS_SM:
                d = (a >> k) & 1
                d = tl.where(neg, -d, d)
            elif MODE == NAF:
                d = ((x >> k) & 1) - (((a >> k) >> 1) & 1)  # two shifts: k + 1 may be 64
                d = tl.where(neg, -d, d)
            elif MODE == GRADED:
                d = tl.where(t == 0, v, 0)
            else:  # BITS_U, BITS_TWOS: the arithmetic shift gives two's-complement bits
                d = (v >> k) & 1
            tl.store(out_ptr + t.to(tl.int64) * n + offs, d.to(tl.int8), mask=inside)

    @triton.jit(do_not_specialize=["T", "msb", "lo", "hi"])
    def _decode_kernel(s_ptr, acc_ptr, bad_ptr, n, T, msb, lo, hi,
                       MODE: tl.constexpr, WIDE: tl.constexpr, BLOCK: tl.constexpr):  # pragma: no cover - compiled
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        inside = offs < n
        if WIDE:
            acc = tl.zeros([BLOCK], dtype=tl.int64)
        else:
            acc = tl.zeros([BLOCK], dtype=tl.int32)
        bad = tl.zeros([BLOCK], dtype=tl.int32)
        for i in range(0, T):  # from the most significant step (Horner's rule)
            t = msb * i + (1 - msb) * (T - 1 - i)
            v = tl.load(s_ptr + t.to(tl.int64) * n + offs, mask=inside, other=0).to(acc.dtype)
            bad = bad | ((v < lo) | (v > hi)).to(tl.int32)
            if MODE == RATE_U or MODE == RATE_S or MODE == GRADED:
                acc = acc + v
            elif MODE == BITS_TWOS:  # the most significant step weighs -2**(T-1)
                acc = acc * 2 + tl.where(i == 0, -v, v)
            else:
                acc = acc * 2 + v
        tl.store(acc_ptr + offs, acc.to(acc_ptr.dtype.element_ty), mask=inside)
        seen = tl.max(bad, axis=0)
        tl.store(bad_ptr, seen, mask=seen > 0)  # every writer writes 1: no race to lose


def available() -> bool:
    """Whether the Triton kernels can run (triton importable)."""
    return triton is not None


def encode_triton(c: torch.Tensor, mode: int, T: int, msb_first: bool, out: torch.Tensor | None = None) -> torch.Tensor:
    """int8 train ``[T, *c.shape]`` of validated, in-range integer counts ``c`` (as the
    reference step loop writes it), into ``out`` (contiguous int8 on c's device) if given."""
    flat = c.contiguous().reshape(-1)
    n = flat.numel()
    if out is None:
        out = torch.empty((T,) + tuple(c.shape), dtype=torch.int8, device=c.device)
    if n and T:
        t_chunk = min(T, MAX_T_CHUNK)
        grid = (triton.cdiv(n, BLOCK), triton.cdiv(T, t_chunk))
        wide = wide_words(flat.element_size(), T, mode)
        _encode_kernel[grid](flat, out, n, T, int(msb_first), t_chunk, MODE=mode, WIDE=wide, BLOCK=BLOCK,
                             num_warps=NUM_WARPS)
    return out


def decode_triton(s: torch.Tensor, mode: int, msb_first: bool, lo: int, hi: int, reach: int, acc_dtype: torch.dtype,
                  out: torch.Tensor | None = None) -> torch.Tensor | None:
    """Counts of an int8 train ``[T, *shape]`` in ``acc_dtype`` (into ``out`` if given), or
    None if a spike value lies outside ``[lo, hi]``. ``reach`` bounds every partial sum
    (32-bit arithmetic below 2**31); sums wrap modulo the width of ``acc_dtype``."""
    T = int(s.shape[0])
    flat = s.contiguous()
    n = flat.numel() // T if T else int(torch.Size(s.shape[1:]).numel())
    acc = torch.empty(tuple(s.shape[1:]), dtype=acc_dtype, device=s.device) if out is None else out
    if n == 0:
        return acc
    bad = torch.zeros(1, dtype=torch.int32, device=s.device)
    _decode_kernel[(triton.cdiv(n, BLOCK),)](flat, acc, bad, n, T, int(msb_first), lo, hi, MODE=mode,
                                             WIDE=reach >= 2**31, BLOCK=BLOCK, num_warps=NUM_WARPS)
    if bad.item():
        return None
    return acc
