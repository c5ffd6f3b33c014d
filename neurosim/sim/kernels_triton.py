"""Two Triton kernels per layer for the ``gemm`` replay on GPUs (:mod:`neurosim.sim.batch`).

- ``tally``: one read of the counts [n, in] -> the window-clamped counts as int8 (the GEMM
  operand), the Activity counters (events per token, per step shift or per count value, the
  popcount histogram, memory-block fetches) and the checks the replay makes (count minimum
  and maximum, values outside the window), added with atomics into one int64 buffer that
  the host reads back once per batch of layers.
- ``gemm``: for each output tile, one INT8 x INT8 -> INT32 tensor-core product per scale
  group, then in the same kernel the group's float32 scaling, the exact int64 sum over
  groups and ``V_th`` (the per-group accumulators never reach memory unless asked for); it
  also counts thresholds that are not finite and positive.

The arithmetic is the reference's (:func:`neurosim.sim.replay_core._output`, ``_int_sum``):
``y = acc_0 * s_0``, then ``y = y + acc_g * s_g`` for each further group in order, rounded
as torch's ``addcmul_`` rounds on that device (one fused multiply-add, or a product and a
sum: :func:`addcmul_fuses` asks torch once per device), then ``y * V_th``. ``acc_g`` are
integers below 2**24 (float32 exact; callers check the bound), summed exactly in int32.

Kernels compile on first launch and are then launched through their compiled launcher
(:mod:`encoders.triton_launch`: Triton's JIT launch costs 20-35 us of host time a call, and
a replay launches two kernels per layer). With ``TRITON_INTERPRET=1`` set before triton is first
imported (the tests on machines without a GPU) they run interpreted on CPU tensors. The
interpreter's ``fma`` rounds twice, so interpreted kernels reproduce the unfused rounding only.
"""
from __future__ import annotations

import functools
from typing import Any

import torch

INT64_MAX = 2**63 - 1
INT64_MIN = -(2**63)
FLOAT32_MAX = 3.4028234663852886e38
MAX_RATE_T = 64  # longest rate-code window the tally kernel counts (one histogram pass per count value)
MAX_BLOCK_COLUMNS = 1024  # widest memory block one tally program reduces


def available() -> bool:
    """Whether Triton can be imported (it ships with CUDA builds of torch on Linux)."""
    try:
        import triton  # noqa: F401
        import triton.language  # noqa: F401
    except Exception:  # ImportError, or a broken install
        return False
    return True


def _next_pow2(x: int) -> int:
    return 1 << max(0, int(x) - 1).bit_length()


def interpreting() -> bool:
    """Whether Triton runs kernels in its interpreter (``TRITON_INTERPRET=1`` when triton was
    first imported: the tests on machines without a GPU; the kernels then take CPU tensors)."""
    if not available():
        return False
    from . import _triton_kernels as k

    return type(k.tally).__name__ == "InterpretedFunction"


def kernels() -> tuple[Any, Any]:
    """``(tally, gemm)``: the Triton kernels (compiled on first launch, or interpreted)."""
    from . import _triton_kernels as k

    return k.tally, k.gemm


def tally_fits(rate: bool, T: int, block_columns: int) -> bool:
    """Whether the tally kernel covers this window and block width (else the torch twin runs)."""
    if block_columns > MAX_BLOCK_COLUMNS:
        return False
    return T <= MAX_RATE_T if rate else T <= 30


def gemm_fits(n: int, in_features: int, out_features: int, n_groups: int, keep_group_acc: bool) -> bool:
    """Whether the GEMM kernel's int32 offsets address every tensor of the layer."""
    biggest = max(n * in_features, out_features * in_features, n * out_features * (n_groups if keep_group_acc else 1))
    return biggest < 2**31


def launch_tally(counts: torch.Tensor, x8: torch.Tensor, buf: torch.Tensor, *, lo: int, hi: int, T: int,
                 rate: bool, twos: bool, block_columns: int, n_blocks: int, offsets: dict[str, int]) -> None:
    """Clamp ``counts`` [n, in] into ``x8`` (int8) and add the layer's counters into ``buf``."""
    n, in_f = (int(d) for d in counts.shape)
    if n == 0:
        return
    from encoders.triton_launch import int_kind, launch, pointers  # imports triton: only on this path

    tally, _ = kernels()
    BC = _next_pow2(block_columns)
    BM = max(16, min(128, 4096 // BC))
    grid = (n_blocks, -(-n // BM))  # blocks on the first axis (no 65535 limit), row tiles on the second
    s0, s1 = counts.stride()
    o = (offsets["stats"], offsets["shift"], offsets["hist"], offsets["ept"], offsets["fetch"])
    # Specialized (int_kind): the row length, the strides and the block width; the rest only by width.
    key = ("tally", counts.dtype, rate, twos, BM, BC, int_kind(in_f), int_kind(s0), int_kind(s1),
           int_kind(block_columns)) + tuple(int_kind(v, False) for v in (n, lo, hi, T) + o)
    launch(tally, grid, key, pointers(counts, x8, buf),
           (n, in_f, s0, s1, lo, hi, T, block_columns) + o + (INT64_MAX, INT64_MIN, rate, twos, BM, BC),
           counts.is_cuda, (("num_warps", 4),))


def launch_gemm(x8: torch.Tensor, q: torch.Tensor, scale: torch.Tensor, vth: torch.Tensor, acc: torch.Tensor,
                out: torch.Tensor, gacc: torch.Tensor | None, buf: torch.Tensor, *, group_size: int, n_groups: int,
                stats_off: int, fma: bool) -> None:
    """``acc`` (int64), ``out`` (float32) [n, out] and optionally ``gacc`` [n, G, out] of one layer."""
    n, in_f = (int(d) for d in x8.shape)
    out_f = int(q.shape[0])
    if n == 0:
        return
    from encoders.triton_launch import int_kind, launch, pointers  # imports triton: only on this path

    _, gemm = kernels()
    # 64 x 128 tiles on 8 warps: the int32 group accumulator, the int32 sum and the float32 sum
    # stay in registers (larger tiles spill on sm_90).
    BM, BN = 64, (64 if out_f <= 64 else 128)
    BK = max(32, min(128, _next_pow2(group_size)))
    grid = (-(-n // BM), -(-out_f // BN))
    ptrs = (x8, q, scale, vth, acc, out, acc if gacc is None else gacc, buf)
    keep = gacc is not None
    key = ("gemm",) + tuple(t.dtype for t in ptrs) + (group_size, BM, BN, BK, keep, fma, int_kind(out_f),
                                                        int_kind(in_f), int_kind(n, False), int_kind(n_groups, False),
                                                        int_kind(stats_off, False))
    launch(gemm, grid, key, pointers(*ptrs),
           (n, out_f, in_f, n_groups, stats_off, FLOAT32_MAX, group_size, BM, BN, BK, keep, fma), x8.is_cuda,
           (("num_warps", 8), ("num_stages", 3), ("enable_fp_fusion", False)))


@functools.lru_cache(maxsize=8)
def addcmul_fuses(device: torch.device) -> bool | None:
    """Whether ``Tensor.addcmul_`` on ``device`` rounds once (a fused multiply-add) or twice
    (product, then sum), as the reference :func:`~neurosim.sim.replay_core._output` uses it
    (a [rows, cols] accumulator, a [rows, cols] view and a [cols] scale); None if neither.

    -1 + (1 + 2**-12)**2 is 2**-11 + 2**-24 exactly, 2**-11 after rounding the product."""
    a = torch.full((2, 3, 2), 1.0 + 2.0**-12, dtype=torch.float32, device=device)
    y = torch.full((2, 2), -1.0, dtype=torch.float32, device=device)
    s = torch.full((2,), 1.0 + 2.0**-12, dtype=torch.float32, device=device)
    r = float(y.addcmul_(a[:, 1, :], s)[0, 0])  # one host read per device and process
    if r == 2.0**-11 + 2.0**-24:
        return True
    if r == 2.0**-11:
        return False
    return None
