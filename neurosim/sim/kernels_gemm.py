"""Replay engines built on one batched GEMM per layer chunk (CPU BLAS or cuBLAS), exact.

The per-group accumulators ``acc_g = sum_t w_t * S_t[:, g] @ q[:, g].T`` are integers. Two
ways to get them with a single ``bmm`` over the scale groups instead of a loop over steps:

- ``planes``: the ``T`` spike planes are stacked into one operand ``[T * tokens, in]``;
  the GEMM gives every step's partial products, then they are summed with the step
  weights. The step-by-step arithmetic of the dense engine, ``T x`` the dense GEMM's work.
- ``gemm``: by linearity ``sum_t w_t S_t`` is the clipped count matrix itself (that is what
  decoding a train means), so the planes are summed *before* the GEMM: one GEMM of the
  dense layer's size. The accumulators are the same integers; the spike-by-spike
  semantics stay with the ``events`` engine, which these are tested against.

Exactness: GEMMs run in the replay's accumulator float type (float32, or float64 when the
window could reach 2**24; see ``replay_core._acc_dtype``): every product and partial sum is an
integer below that bound, so no addition rounds, in any summation order. TF32 matmuls on
CUDA would round operands beyond 11 significant bits: when they are enabled, float64 is used.

Activity comes from the counts (:mod:`neurosim.sim.activity_fast`) for ``replay_layer``,
and from the planes for explicit trains (``replay_spikes``): no event lists are built.
"""
from __future__ import annotations

from typing import Iterator, Sequence

import numpy as np
import torch
import torch.nn.functional as F

from .tally_fast import count_tally, count_tally_torch
from .events import Tally, _plane_block_fetches, spike_train
from .operand import Operand

GEMM_ENGINES: tuple[str, ...] = ("gemm", "planes")
Block = tuple[int, int, torch.Tensor]


class CountChunk:
    """A token chunk known by its in-range counts ``[n, in]`` (what ``replay_layer`` holds)."""

    def __init__(self, counts: torch.Tensor, scheme: str, T: int, bit_order: str, sign_split: bool):
        self.counts, self.scheme, self.T, self.bit_order, self.sign_split = counts, scheme, int(T), bit_order, sign_split
        self.n, self.in_features = (int(d) for d in counts.shape)

    def tally(self, n_blocks: int, block_columns: int) -> Tally:
        args = (self.scheme, self.T, self.bit_order, n_blocks, block_columns)
        if self.counts.device.type != "cpu":  # count where the counts are
            return count_tally_torch(self.counts, *args)
        return count_tally(self.counts.numpy(), *args)

    def summed(self, weights: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
        """``sum_t w_t S_t`` = the counts, in ``dtype``: [n, in]."""
        return self.counts.to(dtype)

    def planes(self) -> torch.Tensor:
        return spike_train(self.counts, self.scheme, self.T, self.bit_order, self.sign_split)


class TrainChunk:
    """A token chunk of an explicit spike train ``[T, n, in]`` (int8, values in {-1, 0, 1})."""

    def __init__(self, spikes: torch.Tensor):
        self.spikes = spikes
        self.T, self.n, self.in_features = (int(d) for d in spikes.shape)

    def tally(self, n_blocks: int, block_columns: int) -> Tally:
        active = self.spikes != 0
        per_slot = active.sum(dim=0, dtype=torch.int64)
        return Tally(
            active.sum(dim=(1, 2), dtype=torch.int64).cpu(),
            active.sum(dim=(0, 2), dtype=torch.int64).cpu(),
            torch.bincount(per_slot.view(-1), minlength=self.T + 1).cpu(),
            _plane_block_fetches(active.contiguous(), n_blocks, block_columns).cpu(),
        )

    def summed(self, weights: Sequence[int], dtype: torch.dtype) -> torch.Tensor:
        """``sum_t w_t S_t`` in ``dtype`` (exact: every partial sum is below the window's reach)."""
        acc = torch.zeros((self.n, self.in_features), dtype=dtype, device=self.spikes.device)
        for t, w in enumerate(weights):  # loop over steps
            acc.add_(self.spikes[t].to(dtype), alpha=int(w))
        return acc

    def planes(self) -> torch.Tensor:
        return self.spikes


def grouped_table(op: Operand, dtype: torch.dtype) -> torch.Tensor:
    """``q.T`` as [n_groups, group_size, out] in ``dtype``, built once per operand and dtype."""
    cache = op.__dict__.setdefault("_gemm_tables", {})
    if dtype not in cache:
        pad = op.n_groups * op.group_size - op.in_features
        qt = F.pad(op.q.T.to(dtype), (0, 0, 0, pad))
        cache[dtype] = qt.reshape(op.n_groups, op.group_size, op.out_features).contiguous()
    return cache[dtype]


def _grouped(x: torch.Tensor, op: Operand) -> torch.Tensor:
    """[rows, in] -> [n_groups, rows, group_size] (zero-padded)."""
    rows = int(x.shape[0])
    pad = op.n_groups * op.group_size - op.in_features
    x = F.pad(x, (0, pad)) if pad else x
    if op.n_groups == 1:
        return x.unsqueeze(0)
    return x.view(rows, op.n_groups, op.group_size).transpose(0, 1)


def gemm_dtype(acc_dtype: torch.dtype, device: torch.device) -> torch.dtype:
    if device.type == "cuda" and acc_dtype == torch.float32 and torch.backends.cuda.matmul.allow_tf32:
        return torch.float64
    return acc_dtype


def _reach(chunk: CountChunk | TrainChunk, weights: Sequence[int]) -> int:
    """Largest |sum_t w_t S_t| the chunk can hold: the window's count range."""
    return int(np.abs(np.asarray(weights, dtype=object)).sum())


def _int8_ok(op: Operand, chunk: CountChunk | TrainChunk, weights: Sequence[int]) -> bool:
    """INT8 x INT8 -> INT32 GEMMs (``torch._int_mm``) hold the accumulators exactly when the
    summed planes fit INT8 (|count| <= 127) and the weights are INT8 (|acc_g| <= 127 * 127 *
    group_size < 2**31 for groups up to 2**17); the kernel wants more than 16 rows and
    inner/outer sizes that are multiples of 8."""
    return (
        _INT_MM_AVAILABLE
        and op.q.dtype == torch.int8
        and op.group_size % 8 == 0
        and op.group_size <= 2**17
        and op.out_features % 8 == 0
        and chunk.n > 16
        and _reach(chunk, weights) <= 127
    )


_INT_MM_AVAILABLE = hasattr(torch, "_int_mm")


def int8_grouped_table(op: Operand) -> torch.Tensor:
    """``q.T`` as int8 [n_groups, group_size, out], contiguous per group, built once per operand."""
    cache = op.__dict__.setdefault("_gemm_tables", {})
    if "int8" not in cache:
        pad = op.n_groups * op.group_size - op.in_features
        qt = F.pad(op.q.T, (0, 0, 0, pad))
        cache["int8"] = qt.reshape(op.n_groups, op.group_size, op.out_features).contiguous()
    return cache["int8"]


def _int8_groups(op: Operand, x8: torch.Tensor) -> torch.Tensor:
    """int32 [G, n, out] per-group accumulators of int8 summed planes [n, in]: one
    ``torch._int_mm`` per scale group (exact integer arithmetic)."""
    table = int8_grouped_table(op)
    xg = _grouped(x8, op).contiguous()  # [G, n, gs]
    out = torch.empty((op.n_groups, int(x8.shape[0]), op.out_features), dtype=torch.int32, device=x8.device)
    for g in range(op.n_groups):  # loop over scale groups (in_features / 128 of them)
        torch._int_mm(xg[g], table[g], out=out[g])
    return out


def run_gemm(op: Operand, chunk: CountChunk | TrainChunk, weights: Sequence[int], acc_dtype: torch.dtype,
             stacked: bool = False) -> Iterator[Block]:
    """One block of all output columns: accumulators ``[n, n_groups, out]`` in ``acc_dtype``."""
    dt = gemm_dtype(acc_dtype, op.device)
    table = grouped_table(op, dt) if stacked or not _int8_ok(op, chunk, weights) else None
    n = chunk.n
    if stacked:
        T = int(len(weights))
        x = chunk.planes().reshape(T * n, chunk.in_features).to(dt)
        r = torch.bmm(_grouped(x, op), table).view(op.n_groups, T, n, op.out_features)
        w = torch.as_tensor(np.asarray(weights, dtype=np.float64), dtype=dt, device=op.device)
        out = torch.einsum("gtno,t->gno", r, w)
    elif _int8_ok(op, chunk, weights):
        out = _int8_groups(op, chunk.summed(weights, torch.int32).to(torch.int8))
    else:
        out = torch.bmm(_grouped(chunk.summed(weights, dt), op), table)  # [G, n, out]
    if out.dtype != acc_dtype:
        out = out.to(acc_dtype)
    yield 0, op.out_features, out.transpose(0, 1)
