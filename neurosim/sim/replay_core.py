"""The reference replay of one layer: input checks, window, accumulators, output, Activity.

Arithmetic (SpikingBrain report, arXiv:2509.05276, W8ASpike): with INT8
weights ``q`` and one scale per group of ``group_size`` input channels, the layer output is

    y[token, o] = V_th[token] * sum_g scale[o, g] * acc_g[token, o],
    acc_g[token, o] = sum_{c in group g} q[o, c] * s[token, c]
                    = sum_t w_t * sum_{c in g} q[o, c] * spike_t[token, c].

The replay keeps one integer accumulator per (token, output, group), fills it event by
event, step by step, and returns ``acc = sum_g acc_g`` (equal to the dense integer matmul
``counts @ q.T`` exactly) and the float32 ``output`` above (scaled and summed over groups
in float32, as a float32 dense layer would). The accumulator registers are float32 (float64 when the window could exceed
2**24): every value they ever hold is an integer below that bound, which the format
represents exactly, so each addition is an exact integer addition (bound checked per
layer; see ``_acc_dtype``). Float weights are first quantized to the INT8 layout
(W8ASpike, :func:`neurosim.weights.quantize_int8`); integer weight tensors are used with
unit scale.

Signed counts and unsigned schemes (binary, bitwise): ``sign_split=True`` sends the
positive and the negative part of each count on two lines per channel, each encoded with
the scheme; events of the negative line subtract (polarity -1). Without it, negative counts
are an error.

This is the reference path on every device (:func:`replay_reference`; the public entry
points are in :mod:`neurosim.sim.layer`); the fused GPU path of the ``gemm`` engine
(:mod:`neurosim.sim.batch`) reuses its checks and is tested against it bit for bit.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any, Callable

import numpy as np
import torch

import encoders
from hw_models import Activity

from .counters import ActivityCounter
from .engine import Events, run_engine
from .events import PlaneEvents, RateEvents, spike_train  # noqa: F401  (spike_train re-exported)
from .operand import FLOAT32_EXACT, FLOAT64_EXACT, Operand, prepare_weight, weight_shape
from .settings import ReplaySettings, _check_common  # noqa: F401  (_check_common re-exported)

UNSIGNED_SCHEMES = frozenset(encoders.scheme_names(signed=False))  # sign-split candidates (old name)
CHUNK_BUDGET_BYTES = 256 << 20  # working memory of one token chunk (spike planes + accumulators)
VTH_MESSAGE = "vth must be finite and positive"


@dataclass
class LayerReplay:
    """Result of replaying one layer.

    Attributes:
        name, role: layer name and role (as given).
        scheme, steps, bit_order: how the counts were sent (``steps`` = T).
        acc: int64 [tokens, out_features]: integer accumulators summed over groups,
            equal to ``counts @ q.T`` (after clipping, if any).
        output: float32 [tokens, out_features]: ``V_th * sum_g scale_g * acc_g``.
        activity: what the replay did (events, synaptic ops, memory traffic).
        clipped: counts clamped to the window (0 unless ``clip=True`` was needed).
        group_acc: int64 [tokens, n_groups, out_features] per-group accumulators, kept only
            with ``keep_group_acc=True``.
    """

    name: str
    role: str
    scheme: str
    steps: int
    bit_order: str
    acc: torch.Tensor
    output: torch.Tensor
    activity: Activity
    clipped: int = 0
    group_acc: torch.Tensor | None = None


# ------------------------------------------------------------------------------ input checks


def as_counts(counts: Any, name: str = "counts") -> torch.Tensor:
    """Integer spike counts [tokens, in_features] -> int64 CPU/CUDA tensor (a copy for numpy).

    Raises TypeError for non-arrays and bool/complex dtypes, ValueError for a wrong rank or
    non-integral float values.
    """
    if isinstance(counts, np.ndarray):
        if counts.dtype == np.bool_ or counts.dtype.kind not in "iuf":
            raise TypeError(f"{name} must have an integer dtype, got {counts.dtype}")
        t = torch.from_numpy(np.array(counts, dtype=np.float64 if counts.dtype.kind == "f" else np.int64))
    elif isinstance(counts, torch.Tensor):
        if counts.dtype == torch.bool or counts.is_complex():
            raise TypeError(f"{name} must have an integer dtype, got {counts.dtype}")
        t = counts.detach()
    else:
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(counts).__name__}")
    if t.dim() != 2:
        raise ValueError(f"{name} must be 2-D [tokens, in_features], got shape {tuple(t.shape)}")
    if t.is_floating_point():
        if not bool(torch.isfinite(t).all()) or bool((t != torch.round(t)).any()):
            raise ValueError(f"{name} must be integer-valued and finite")
    return t.to(torch.int64)


def as_vth(vth: Any, tokens: int, check_values: bool = True) -> torch.Tensor:
    """Thresholds [tokens] -> float32 tensor; ValueError unless finite, positive and of the right length
    (``check_values=False``: the type and shape only, no host read of the values)."""
    if isinstance(vth, np.ndarray):
        v = torch.from_numpy(np.array(vth, dtype=np.float32))
    elif isinstance(vth, torch.Tensor):
        v = vth.detach().to(torch.float32)
    else:
        raise TypeError(f"vth must be a numpy array or a torch tensor, got {type(vth).__name__}")
    if v.dim() != 1 or v.shape[0] != tokens:
        raise ValueError(f"vth must have shape [{tokens}] (one threshold per token), got {tuple(v.shape)}")
    if check_values and v.numel() and (not bool(torch.isfinite(v).all()) or bool((v <= 0).any())):
        raise ValueError(VTH_MESSAGE)
    return v


def _check_sign_split(sch: encoders.Scheme, sign_split: bool, where: str = "") -> None:
    if sign_split and not sch.needs_sign_split:
        unsigned = ", ".join(encoders.scheme_names(signed=False))
        raise ValueError(f"{where}sign_split applies to the unsigned schemes ({unsigned}), not {sch.name!r}")


def _check_in_features(what: str, got: int, in_f: int, name: str) -> None:
    if got != in_f:
        where = f" of layer {name!r}" if name else ""
        raise ValueError(f"{what} have {got} input channels but the weight{where} has in_features={in_f}")


def window(scheme: str, counts: torch.Tensor, T: int | None, *, sign_split: bool, clip: bool, name: str = "") -> tuple[int, int, int]:
    """Choose the window and check the counts fit it.

    Returns ``(T, lo, hi)``: the number of steps and the inclusive count range it carries
    (for ``sign_split``, ``[-hi, hi]`` with ``hi`` the unsigned range). ``T=None`` is the
    smallest window for the data (at least 1 step). Raises ValueError for negative counts
    with an unsigned scheme and no sign split, or counts outside a given ``T`` without ``clip``.
    """
    where = f"layer {name!r}: " if name else ""
    lo, hi = (int(v) for v in torch.aminmax(counts)) if counts.numel() else (0, 0)
    sch = encoders.get_scheme(scheme)
    _check_sign_split(sch, sign_split, where)
    if lo < 0 and sch.needs_sign_split and not sign_split:
        raise ValueError(
            f"{where}scheme {scheme!r} carries only non-negative counts, found {lo}; pass sign_split=True "
            f"(positive and negative parts on two lines) or use {'/'.join(encoders.scheme_names(signed=True))}"
        )
    mag = max(abs(lo), abs(hi))
    if T is None:
        need = encoders.steps_needed(scheme, 0, mag) if sign_split else encoders.steps_needed(scheme, lo, hi)
        T = max(1, need)
    elif isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be a positive integer or None, got {T!r}")
    T = int(T)
    if sch.bitwise and T > encoders.MAX_ACCUMULATED_STEPS:
        raise ValueError(f"T={T} is too long for a bitwise scheme "
                         f"(at most {encoders.MAX_ACCUMULATED_STEPS} steps fit int64 accumulators)")
    rlo, rhi = encoders.count_range(scheme, T)
    if sign_split:
        rlo = -rhi
    if (lo < rlo or hi > rhi) and not clip:
        bad = lo if lo < rlo else hi
        need = max(encoders.steps_for_value(scheme, abs(bad) if sign_split else bad), 1)
        raise ValueError(
            f"{where}count {bad} is outside [{rlo}, {rhi}], the range {T} steps of {scheme!r} can carry; "
            f"use T >= {need}, or clip=True to clamp counts to the window"
        )
    return T, rlo, rhi


def _acc_dtype(weights: np.ndarray, op: Operand) -> torch.dtype:
    """Float type of the accumulator registers: every value they hold is an integer whose
    magnitude is at most ``sum_t |w_t| * group_size * max|q|``; float32 holds all integers
    below 2**24 exactly and float64 below 2**53, so no addition ever rounds."""
    bound = int(np.abs(weights.astype(object)).sum()) * op.group_size * op.max_abs
    if bound < FLOAT32_EXACT and op.kernel_dtype == torch.float32:
        return torch.float32
    if bound < FLOAT64_EXACT:
        return torch.float64
    raise ValueError(
        f"accumulators could reach {bound} >= 2**53 and lose exactness; use a shorter window or smaller counts"
    )


def _token_chunk(token_chunk: int | None, n: int, T: int, op: Operand, rate: bool, engine: str) -> int:
    """Tokens per chunk: as given, or sized so one chunk's working memory stays near 256 MiB."""
    if token_chunk is not None:
        if isinstance(token_chunk, bool) or not isinstance(token_chunk, (int, np.integer)) or token_chunk < 1:
            raise ValueError(f"token_chunk must be a positive integer or None, got {token_chunk!r}")
        return int(token_chunk)
    in_f, out_f, G = op.in_features, op.out_features, op.n_groups
    per_token = 24 * in_f + 16 * out_f  # counts, results
    if engine in ("gemm", "planes"):  # operand and per-group results (T of each for planes)
        steps = T if engine == "planes" else 1
        # GPUs: 8x the budget (2 GiB): fewer, larger GEMMs; launches dominate small chunks.
        budget = CHUNK_BUDGET_BYTES * (8 if op.device.type == "cuda" else 1)
        return max(1, min(max(n, 1), budget // (per_token + steps * (12 * in_f + 8 * G * out_f))))
    if rate:  # firing lists (<= 16 live copies' worth) and per-step bag offsets
        per_token += 24 * in_f * min(T, 16) + 8 * T * G
    else:  # dense train, flags, event lists
        per_token += 14 * T * in_f
    per_token += 8 * G * (out_f if engine == "dense" else max(b - a for a, b in op.bounds))
    return max(1, min(max(n, 1), CHUNK_BUDGET_BYTES // per_token))


# ------------------------------------------------------------------------------ replay core


def _output(op: Operand, block: torch.Tensor, vth: torch.Tensor, a: int, b: int) -> torch.Tensor:
    """float32 [n, b - a] = V_th * sum_g scale_g * acc_g for output columns a:b.

    Evaluated in the accumulators' float type (float32 normally), like a float32 dense
    layer: the exact integer parts are scaled and summed over groups with float rounding
    (error below ``n_groups * 2**-23`` of ``sum_g |scale_g * acc_g|``)."""
    if op.scale is None:
        y = block.sum(dim=1)
    else:
        scale = op.scale[a:b].T.to(block.dtype)  # [G, cols]
        y = block[:, 0, :] * scale[0]
        for g in range(1, op.n_groups):  # loop over scale groups (in_features / 128 of them)
            y.addcmul_(block[:, g, :], scale[g])
    return y.mul_(vth.to(y.dtype).unsqueeze(1)).to(torch.float32)


def _int_sum(block: torch.Tensor, op: Operand, acc_dtype: torch.dtype, weights: np.ndarray) -> torch.Tensor:
    """Exact int64 [n, cols] = sum over groups of the (integer-valued) accumulators."""
    bound = int(np.abs(weights.astype(object)).sum()) * op.group_size * op.max_abs * op.n_groups
    if bound < (FLOAT32_EXACT if acc_dtype == torch.float32 else FLOAT64_EXACT):
        return block.sum(dim=1).to(torch.int64)  # the float sum is exact below the bound
    return block.to(torch.int64).sum(dim=1)


def _accumulate(
    op: Operand,
    events: Callable[[int, int], Events],
    n: int,
    vth: torch.Tensor,
    scheme: str,
    T: int,
    bit_order: str,
    *,
    engine: str,
    token_chunk: int | None,
    keep_group_acc: bool,
    rate: bool,
    counter: ActivityCounter | None,
) -> tuple[torch.Tensor, torch.Tensor, torch.Tensor | None]:
    """The arithmetic of a replay, token chunk by token chunk: ``(acc, output, group_acc)``
    (see :class:`LayerReplay`); each chunk's events are counted into ``counter`` if given."""
    w = encoders.step_weights(scheme, T, bit_order)
    reach = w * encoders.get_scheme(scheme).payload_max  # graded events carry up to payload_max units each
    acc_dtype = _acc_dtype(reach, op)
    dev = op.device
    acc = torch.empty((n, op.out_features), dtype=torch.int64, device=dev)
    out = torch.empty((n, op.out_features), dtype=torch.float32, device=dev)
    gacc = torch.empty((n, op.n_groups, op.out_features), dtype=torch.int64, device=dev) if keep_group_acc else None
    chunk = _token_chunk(token_chunk, n, T, op, rate, engine)
    for a in range(0, n, chunk):  # loop over token chunks (bounded memory), not tokens
        b = min(n, a + chunk)
        ev = events(a, b)
        if counter is not None:
            counter.add(ev)
        for lo, hi, block in run_engine(engine, op, ev, w.tolist(), acc_dtype):  # output slices
            acc[a:b, lo:hi] = _int_sum(block, op, acc_dtype, reach)
            out[a:b, lo:hi] = _output(op, block, vth[a:b], lo, hi)
            if gacc is not None:
                gacc[a:b, :, lo:hi] = block.to(torch.int64)
    return acc, out, gacc


def _replay(
    op: Operand,
    events: Callable[[int, int], Events],
    n: int,
    vth: torch.Tensor,
    scheme: str,
    T: int,
    bit_order: str,
    *,
    engine: str,
    block_columns: int,
    token_chunk: int | None,
    keep_group_acc: bool,
    name: str,
    role: str,
    clipped: int,
    sign_split: bool,
    same_input_as: str | None,
    rate: bool,
) -> LayerReplay:
    sch = encoders.get_scheme(scheme)
    counter = ActivityCounter(op.in_features, op.out_features, T, int(block_columns), op.bytes_per_weight)
    acc, out, gacc = _accumulate(op, events, n, vth, scheme, T, bit_order, engine=engine, token_chunk=token_chunk,
                                 keep_group_acc=keep_group_acc, rate=rate, counter=counter)
    act = counter.activity(
        name=name, role=role, scheme=scheme, clipped=clipped, sign_split=sign_split, same_input_as=same_input_as,
        payload_bits=sch.payload_bits if sch.graded else 0,
    )
    return LayerReplay(name, role, scheme, T, bit_order, acc, out, act, clipped, gacc)


def replay_reference(
    weight: Any,
    counts: Any,
    vth: Any,
    settings: ReplaySettings,
    *,
    name: str = "",
    role: str = "",
    same_input_as: str | None = None,
    operand: Operand | None = None,
) -> LayerReplay:
    """:func:`replay_with` by the reference path on every device (torch ops, the checks read
    back to the host as they go); the fused GPU path of the ``gemm`` engine is tested against it."""
    s = settings
    scheme, T, bit_order, block_columns, device = s.scheme, s.T, s.bit_order, s.block_columns, s.device
    clip, sign_split, engine, token_chunk = s.clip, s.sign_split, s.engine, s.token_chunk
    out_chunk, keep_group_acc = s.out_chunk, s.keep_group_acc
    out_f, in_f = weight_shape(weight) if operand is None else (operand.out_features, operand.in_features)
    c = as_counts(counts)
    _check_in_features("counts", int(c.shape[1]), in_f, name)
    v = as_vth(vth, int(c.shape[0]))
    T, rlo, rhi = window(scheme, c, T, sign_split=sign_split, clip=clip, name=name)
    clipped = int(((c < rlo) | (c > rhi)).sum())
    if clipped:
        c = c.clamp(rlo, rhi)
    if operand is not None and engine == "events" and not operand.tables:
        raise ValueError("the operand was prepared without lookup tables (need_tables=False); the events engine needs them")
    op = operand if operand is not None else prepare_weight(weight, device, out_chunk, need_tables=engine == "events")
    dev = op.device
    c = c.to(dev)
    v = v.to(dev)
    kdt, G, gs = op.kernel_dtype, op.n_groups, op.group_size
    rate = encoders.get_scheme(scheme).rate
    if engine in ("gemm", "planes"):
        from .kernels_gemm import CountChunk
        from .tally_fast import check_covered

        check_covered(scheme)  # their Activity comes from count tallies (unit-spike rate and plain bit codes)

        def events(a: int, b: int) -> Events:  # counts only: no event lists (kernels_gemm)
            return CountChunk(c[a:b], scheme, T, bit_order, sign_split)
    elif rate:
        def events(a: int, b: int) -> Events:  # listed from the counts: work ~ events, any T
            return RateEvents(c[a:b], T, gs, G, kdt)
    else:
        def events(a: int, b: int) -> Events:
            return PlaneEvents(spike_train(c[a:b], scheme, T, bit_order, sign_split), gs, G, kdt)
    return _replay(
        op,
        events,
        int(c.shape[0]),
        v,
        scheme,
        T,
        bit_order,
        engine=engine,
        block_columns=block_columns,
        token_chunk=token_chunk,
        keep_group_acc=keep_group_acc,
        name=name,
        role=role,
        clipped=clipped,
        sign_split=sign_split,
        same_input_as=same_input_as,
        rate=rate,
    )
