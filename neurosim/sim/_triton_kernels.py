"""Triton source of the two per-layer kernels of the GPU ``gemm`` replay (imports triton).

Imported only by :mod:`neurosim.sim.kernels_triton`, which documents them and launches them.
Sizes that differ from layer to layer (tokens, groups, window, buffer offsets) are not
specialized; the group size and the tile shapes are compile-time constants (a model
compiles a handful of variants). Loops with runtime bounds are ``while`` loops, which the
Triton interpreter also runs (the tests on CPU).
"""
from __future__ import annotations

import triton
import triton.language as tl

# Not specialized: sizes and offsets that change from layer to layer. The row lengths and
# strides are (Triton specializes an integer on being 1 or a multiple of 16), so that rows
# load and store in 16-byte vectors.
_TALLY_INTS = ["n", "lo", "hi", "T", "stats_off", "shift_off", "hist_off", "ept_off", "fetch_off"]
_GEMM_INTS = ["n", "G", "stats_off"]


@triton.jit(do_not_specialize=_TALLY_INTS)
def tally(c_ptr, x8_ptr, buf_ptr, n, in_f, stride_cm, stride_cn, lo, hi, T, block_cols,
          stats_off, shift_off, hist_off, ept_off, fetch_off, imax, imin,
          RATE: tl.constexpr, TWOS: tl.constexpr, BM: tl.constexpr, BC: tl.constexpr):
    blk = tl.program_id(0)  # one memory block (block_cols input columns) per program
    pid_m = tl.program_id(1)
    rows = pid_m * BM + tl.arange(0, BM)
    j = tl.arange(0, BC)
    cols = blk * block_cols + j
    rmask = rows < n
    m = rmask[:, None] & ((j < block_cols) & (cols < in_f))[None, :]
    r64 = rows.to(tl.int64)
    c = tl.load(c_ptr + r64[:, None] * stride_cm + cols[None, :].to(tl.int64) * stride_cn, mask=m, other=0)
    c = c.to(tl.int64)
    # The replay's checks: the extremes (window, sign) and the values outside [lo, hi].
    tl.atomic_min(buf_ptr + stats_off, tl.min(tl.min(tl.where(m, c, imax), axis=1), axis=0))
    tl.atomic_max(buf_ptr + stats_off + 1, tl.max(tl.max(tl.where(m, c, imin), axis=1), axis=0))
    outside = (((c < lo) | (c > hi)) & m).to(tl.int64)
    tl.atomic_add(buf_ptr + stats_off + 2, tl.sum(tl.sum(outside, axis=1), axis=0))
    cc = tl.minimum(tl.maximum(c, lo), hi)
    tl.store(x8_ptr + r64[:, None] * in_f + cols[None, :], cc.to(tl.int8), mask=m)
    c32 = cc.to(tl.int32)
    if TWOS:  # the T-bit two's complement pattern
        p = c32 & ((1 << T) - 1)
    else:  # |c|: magnitude bits, or the rate code's spike count
        p = tl.where(c32 < 0, -c32, c32)
    p = tl.where(m, p, 0)
    if RATE:  # a unit spike per step while |c| lasts; a block is fetched max |c| times
        ev = p
        fetched = tl.max(p, axis=1)
    else:  # a spike per set bit; a block is fetched once per bit set in any of its columns
        ev = tl.zeros((BM, BC), dtype=tl.int32)
        fetched = tl.zeros((BM,), dtype=tl.int32)
        k = 0
        while k < T:  # loop over steps: bit k of every slot
            bit = (p >> k) & 1
            ev += bit
            fetched += tl.max(bit, axis=1)
            tl.atomic_add(buf_ptr + shift_off + k, tl.sum(tl.sum(bit, axis=1), axis=0).to(tl.int64))
            k += 1
    tl.atomic_add(buf_ptr + ept_off + r64, tl.sum(ev, axis=1).to(tl.int64), mask=rmask)
    v = 0
    while v <= T:  # histogram of events per slot (0 .. T)
        hv = tl.sum(tl.sum(((ev == v) & m).to(tl.int32), axis=1), axis=0)
        tl.atomic_add(buf_ptr + hist_off + v, hv.to(tl.int64))
        v += 1
    tl.atomic_add(buf_ptr + fetch_off + blk, tl.sum(tl.where(rmask, fetched, 0), axis=0).to(tl.int64))


@triton.jit
def _group_dot(x8_ptr, q_ptr, row_off, col_off, rmask, cmask, kbase, in_f,
               GS: tl.constexpr, BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr):
    """int32 [BM, BN] accumulators of one scale group: input columns kbase .. kbase + GS."""
    acc = tl.zeros((BM, BN), dtype=tl.int32)
    kk = tl.arange(0, BK)
    for k0 in range(0, GS, BK):
        k = kbase + k0 + kk
        if GS % BK == 0:  # tiles start on a multiple of BK: 16-byte vector loads along K
            k = tl.max_contiguous(tl.multiple_of(k, BK), BK)
            kmask = k < in_f
        else:
            kmask = ((k0 + kk) < GS) & (k < in_f)
        a = tl.load(x8_ptr + row_off[:, None] + k[None, :], mask=rmask[:, None] & kmask[None, :], other=0)
        b = tl.load(q_ptr + col_off[None, :] + k[:, None], mask=kmask[:, None] & cmask[None, :], other=0)
        acc = tl.dot(a, b, acc=acc, out_dtype=tl.int32)
    return acc


@triton.jit(do_not_specialize=_GEMM_INTS)
def gemm(x8_ptr, q_ptr, scale_ptr, vth_ptr, acc_ptr, out_ptr, gacc_ptr, buf_ptr,
         n, out_f, in_f, G, stats_off, fmax, GS: tl.constexpr,
         BM: tl.constexpr, BN: tl.constexpr, BK: tl.constexpr, KEEP_GROUP: tl.constexpr, FMA: tl.constexpr):
    # Offsets are int32: the launcher checks that every tensor holds fewer than 2**31 elements.
    pid_m = tl.program_id(0)
    pid_n = tl.program_id(1)
    rows = pid_m * BM + tl.arange(0, BM)
    cols = pid_n * BN + tl.arange(0, BN)
    rmask = rows < n
    cmask = cols < out_f
    om = rmask[:, None] & cmask[None, :]
    row_off = rows * in_f
    col_off = cols * in_f
    # Group 0 starts the float32 sum (its rounded product), later groups add to it in order.
    acc = _group_dot(x8_ptr, q_ptr, row_off, col_off, rmask, cmask, 0, in_f, GS, BM, BN, BK)
    isum = acc
    s = tl.load(scale_ptr + cols * G, mask=cmask, other=0.0)
    y = acc.to(tl.float32) * s[None, :]
    if KEEP_GROUP:
        tl.store(gacc_ptr + (rows[:, None] * G) * out_f + cols[None, :], acc.to(tl.int64), mask=om)
    g = 1
    while g < G:  # scale groups in order (the reference's summation order)
        acc = _group_dot(x8_ptr, q_ptr, row_off, col_off, rmask, cmask, g * GS, in_f, GS, BM, BN, BK)
        isum += acc
        s = tl.load(scale_ptr + cols * G + g, mask=cmask, other=0.0)
        if FMA:  # one rounding, as a fused addcmul_
            y = tl.fma(acc.to(tl.float32), tl.broadcast_to(s[None, :], (BM, BN)), y)
        else:  # the product rounded, then the sum (kernels are compiled without fp fusion)
            y = y + acc.to(tl.float32) * s[None, :]
        if KEEP_GROUP:
            tl.store(gacc_ptr + (rows[:, None] * G + g) * out_f + cols[None, :], acc.to(tl.int64), mask=om)
        g += 1
    v = tl.load(vth_ptr + rows, mask=rmask, other=1.0)
    y = y * v[:, None]
    tl.store(acc_ptr + rows[:, None] * out_f + cols[None, :], isum.to(tl.int64), mask=om)
    tl.store(out_ptr + rows[:, None] * out_f + cols[None, :], y, mask=om)
    if pid_n == 0:  # thresholds must be finite and positive (NaN fails both comparisons)
        good = (v > 0.0) & (v <= fmax)
        tl.atomic_add(buf_ptr + stats_off + 3, tl.sum(((good == 0) & rmask).to(tl.int64), axis=0))
