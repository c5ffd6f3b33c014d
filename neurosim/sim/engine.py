"""Per-step kernels: apply the events of each time step to a layer's per-group accumulators.

Both engines compute, for each step ``t`` in order and each event ``(token, channel, polarity)``
of that step, ``acc[token, group(channel), :] += w_t * polarity * q[:, channel]``, where
``w_t`` is the step's integer weight (1 for binary/ternary, the bit weight for bitwise,
negative for the two's-complement MSB). They differ only in how a step is vectorized:

- ``events``: the step's events are listed (:mod:`neurosim.sim.events`) and each one fetches its
  weight column from a lookup table and adds it into its (token, group) accumulator row
  (``embedding_bag`` with the polarity as per-sample weight). Work is proportional to the
  events (the synaptic ops), as on an event-driven core. Output columns are processed in
  slices (one lookup table each, like the neuron slices owned by separate cores); every
  slice runs the steps in order.
- ``dense``: the step's spike plane is multiplied as a dense matrix (batched per input
  group); zero slots add nothing. Work is ``T x`` the dense matmul. A reference engine and
  the fast one on GPUs for small layers.

Neither loops in Python over events, tokens or channels: loops run over steps and over
output slices only. Consecutive steps with identical events (the tail of a long
binary/ternary window) form a run whose events are summed once and added with the run's
total step weight. All arithmetic is exact (see :mod:`neurosim.sim.operand`).
"""
from __future__ import annotations

from typing import Iterator, Sequence, Tuple, Union

import torch
import torch.nn.functional as F

from .events import Events, PlaneEvents, RateEvents  # noqa: F401  (Events re-exported)
from .operand import Operand

ENGINES: tuple[str, ...] = ("events", "dense", "gemm", "planes")  # gemm, planes: kernels_gemm.py


def check_engine(engine: str) -> str:
    """Return ``engine`` if known, else raise ValueError naming the choices."""
    if engine not in ENGINES:
        raise ValueError(f"unknown engine {engine!r}; choose one of {', '.join(ENGINES)}")
    return engine


def _bag_sums(op: Operand, table: torch.Tensor, ch: torch.Tensor, pol: torch.Tensor, offsets: torch.Tensor) -> torch.Tensor:
    """Sum over each bag of ``polarity * table[channel]`` -> [bags, columns] (exact)."""
    # offsets hold every bag's start plus the end (include_last_offset).
    if op.table_kind == "int8":
        return torch.ops.quantized.embedding_bag_byte_rowwise_offsets(
            table, ch, offsets, False, 0, False, pol, None, True
        )
    return F.embedding_bag(ch, table, offsets, mode="sum", per_sample_weights=pol, include_last_offset=True)


Block = Tuple[int, int, torch.Tensor]  # (first output column, end column, accumulators [n, G, cols])


def run_events(op: Operand, ev: Events, weights: Sequence[int], acc_dtype: torch.dtype) -> Iterator[Block]:
    """Event engine: yields the finished accumulators of each output slice, ``[n, n_groups, cols]``."""
    n = ev.n
    G = op.n_groups
    runs = [(int(sum(weights[t0:t1])), lst) for t0, t1, lst in ev.runs()]
    device = op.device
    for table, (a, b) in zip(op.tables, op.bounds):  # output slices (cores), each runs every step
        block: torch.Tensor | None = None
        for w, lst in runs:  # steps in order (runs of identical steps: their summed weight)
            if w == 0:
                continue
            r = _bag_sums(op, table, *lst)
            r = r if r.dtype == acc_dtype else r.to(acc_dtype)
            if block is None:
                block = r if w == 1 else r.mul_(w)
            else:
                block.add_(r, alpha=w)
        if block is None:
            block = torch.zeros((n * G, b - a), dtype=acc_dtype, device=device)
        yield a, b, block.view(n, G, b - a)


def run_dense(op: Operand, ev: Events, weights: Sequence[int], acc_dtype: torch.dtype) -> Iterator[Block]:
    """Dense engine: one block of all output columns, ``[n, n_groups, out]``."""
    n, in_f = ev.n, ev.in_features
    G, gs = op.n_groups, op.group_size
    table = op.grouped_table()  # [G, gs, out]
    pad = G * gs - in_f
    out = torch.zeros((G, n, op.out_features), dtype=acc_dtype, device=op.device)
    for t0, t1, _ in ev.runs():  # steps in order (runs of identical steps: their summed weight)
        x = F.pad(ev.plane(t0).to(op.kernel_dtype), (0, pad)).view(n, G, gs).transpose(0, 1)  # [G, n, gs]
        r = torch.bmm(x, table)  # [G, n, out]
        out.add_(r if r.dtype == acc_dtype else r.to(acc_dtype), alpha=int(sum(weights[t0:t1])))
    yield 0, op.out_features, out.transpose(0, 1)


def run_engine(
    engine: str, op: Operand, ev: Events, weights: Sequence[int], acc_dtype: torch.dtype
) -> Iterator[Block]:
    """Run ``engine`` on a chunk's events; yields ``(start, stop, acc [n, G, stop - start])``
    for consecutive output column ranges covering all outputs."""
    if check_engine(engine) == "events":
        return run_events(op, ev, weights, acc_dtype)
    if engine in ("gemm", "planes"):  # one batched GEMM per chunk (neurosim.sim.kernels_gemm)
        from .kernels_gemm import run_gemm

        return run_gemm(op, ev, weights, acc_dtype, stacked=engine == "planes")
    return run_dense(op, ev, weights, acc_dtype)
