"""Replay many layers with one host read: checks deferred, counters kept on the device.

The reference path (:func:`~neurosim.sim.replay_core.replay_reference`) reads back to the host
several times per layer (the count range for the window, the clip count, the thresholds'
finiteness, the Activity counters), so on a GPU a layer waits for the previous one and
a replay is bound by launches and round trips, not by the arithmetic. Here:

1. host checks of every layer (types, shapes), then the window: a given ``T`` needs no
   data; ``T=None`` reads the count extremes of all layers back at once;
2. per layer, the work is queued without a host read: the count extremes, the values
   outside the window and the bad thresholds are counted on the device, and the Activity
   counters (:func:`~neurosim.sim.tally_fast.tally_device`) are added into one int64
   buffer. Backends: ``"triton"`` runs two fused kernels per layer
   (:mod:`neurosim.sim.kernels_triton`); ``"torch"`` runs the reference's own torch ops;
3. one read of that buffer; each layer's deferred checks are applied in layer order
   (the first bad layer raises, by name, the reference's message) and its Activity built.

Results are equal bit for bit to the reference's (tests/test_replay_batch.py). The
``gemm`` engine on CUDA takes this path (``replay_with``, ``replay_trace``); elsewhere,
``backend=None`` is the reference, layer by layer.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable

import numpy as np
import torch

import encoders
from hw_models import Activity

from . import kernels_triton as kt
from .counters import ActivityCounter
from .kernels_gemm import CountChunk
from .replay_core import (VTH_MESSAGE, LayerReplay, _acc_dtype, _accumulate, _check_in_features, as_counts, as_vth,
                    replay_reference, window)
from .operand import Operand, prepare_weight, weight_shape
from .settings import ReplaySettings
from .tally_fast import check_covered, events_per_step, tally_device

BACKENDS: tuple[str, ...] = ("reference", "torch", "triton")
STATS = 4  # per layer: count minimum, maximum, values outside the window, bad thresholds


@dataclass
class LayerInput:
    """One layer of a :func:`replay_layers` call: the arguments of ``replay_with`` for it."""

    weight: Any
    counts: Any
    vth: Any
    name: str = ""
    role: str = ""
    same_input_as: str | None = None
    operand: Operand | None = None


@dataclass
class _Plan:
    src: LayerInput
    op: Operand
    c: torch.Tensor  # integer counts [n, in] on the operand's device
    v: torch.Tensor  # float32 thresholds [n] there
    T: int = 0
    rlo: int = 0
    rhi: int = 0
    kind: str = "torch"
    off: dict[str, int] = field(default_factory=dict)
    n_blocks: int = 0
    out: tuple[torch.Tensor, torch.Tensor, torch.Tensor | None] | None = None

    @property
    def n(self) -> int:
        return int(self.c.shape[0])


def _named(name: str, message: str) -> str:
    return message if not name or repr(name) in message else f"layer {name!r}: {message}"


def _counts(x: Any) -> torch.Tensor:
    """Integer tensors as they are (the kernels read any integer type); else ``as_counts``."""
    if (isinstance(x, torch.Tensor) and x.dim() == 2 and x.dtype != torch.bool and not x.is_floating_point()
            and not x.is_complex()):
        return x.detach()
    return as_counts(x)


def _value_checks(p: _Plan, s: ReplaySettings) -> None:
    """The reference's value checks of one layer (host reads): raise its error, named."""
    try:
        as_vth(p.v, p.n)
    except ValueError as e:
        raise ValueError(_named(p.src.name, str(e))) from None
    window(s.scheme, p.c, s.T, sign_split=s.sign_split, clip=s.clip, name=p.src.name)


def _plan(L: LayerInput, s: ReplaySettings, earlier: list[_Plan]) -> _Plan:
    """Host checks of one layer (no host read of device data) and its weights on the device."""
    name = L.name
    in_f = weight_shape(L.weight)[1] if L.operand is None else L.operand.in_features
    c = _counts(L.counts)
    _check_in_features("counts", int(c.shape[1]), in_f, name)
    v = as_vth(L.vth, int(c.shape[0]), check_values=False)
    try:
        op = L.operand if L.operand is not None else prepare_weight(L.weight, s.device, s.out_chunk, need_tables=False)
    except Exception:
        for p in [*earlier, _Plan(L, None, c, v)]:  # errors the reference would have raised first
            _value_checks(p, s)
        raise
    if earlier and op.device != earlier[0].op.device:
        raise ValueError(f"layer {name!r} is on {op.device}, the batch on {earlier[0].op.device}: one device per call")
    return _Plan(L, op, c.to(op.device), v.to(op.device).contiguous())


def _windows(plans: list[_Plan], s: ReplaySettings) -> None:
    """Each layer's window ``(T, lo, hi)``; ``T=None`` reads all layers' count extremes and
    threshold checks back at once and raises the first bad layer's error."""
    if not plans:
        return
    if s.T is not None:  # the same window for every layer; the range is checked after the replay
        T, lo, hi = window(s.scheme, torch.zeros((0, 1), dtype=torch.int64), s.T, sign_split=s.sign_split,
                           clip=True, name=plans[0].src.name)
        for p in plans:
            p.T, p.rlo, p.rhi = T, lo, hi
        return
    dev = plans[0].op.device
    rows = []
    for p in plans:
        ext = torch.stack(torch.aminmax(p.c)).to(torch.int64) if p.c.numel() else torch.zeros(2, dtype=torch.int64, device=dev)
        bad = (~(torch.isfinite(p.v) & (p.v > 0))).sum().view(1)
        rows.append(torch.cat([ext, bad]))
    host = torch.stack(rows).cpu().numpy()  # one host read for all layers
    for p, (lo, hi, bad) in zip(plans, host.tolist()):
        if bad:
            raise ValueError(_named(p.src.name, VTH_MESSAGE))
        p.T, p.rlo, p.rhi = window(s.scheme, torch.tensor([lo, hi]), None, sign_split=s.sign_split, clip=s.clip,
                                   name=p.src.name)


def _triton_ok(p: _Plan, s: ReplaySettings, sch: encoders.Scheme, fma: bool | None, reaches: dict[int, int]) -> bool:
    """Whether the fused kernels hold this layer exactly: INT8 weights with group scales,
    clamped counts that fit INT8, float32 accumulators (below 2**24) and int32 group sums.
    ``reaches``: the largest |count| a window of T steps sends, by T (filled here)."""
    op = p.op
    if fma is None or op.q.dtype != torch.int8 or op.scale is None or op.q.dim() != 2:
        return False
    reach = reaches.get(p.T)
    if reach is None:
        reach = reaches[p.T] = int(np.abs(encoders.step_weights(s.scheme, p.T, s.bit_order).astype(object)).sum()) \
            * sch.payload_max
    if reach > 127 or _acc_dtype(np.array([reach], dtype=object), op) != torch.float32:
        return False
    return (reach * op.group_size * op.max_abs * op.n_groups < 2**31 and kt.tally_fits(sch.rate, p.T, s.block_columns)
            and kt.gemm_fits(p.n, op.in_features, op.out_features, op.n_groups, s.keep_group_acc))


def _layout(plans: list[_Plan], s: ReplaySettings, sch: encoders.Scheme) -> int:
    """Offsets of every layer's counters in the batch buffer (stats first, all layers); its size."""
    at = STATS * len(plans)
    for i, p in enumerate(plans):
        p.n_blocks = -(-p.op.in_features // s.block_columns)
        shift = 0 if sch.rate else p.T
        p.off = dict(stats=STATS * i, shift=at, hist=at + shift, ept=at + shift + p.T + 1,
                     fetch=at + shift + p.T + 1 + p.n)
        at = p.off["fetch"] + p.n_blocks
    return at


def _queue_torch(p: _Plan, s: ReplaySettings, buf: torch.Tensor) -> None:
    """The reference's torch ops for one layer, the checks and counters written into ``buf``."""
    c = p.c.to(torch.int64)
    o = p.off
    st = buf[o["stats"]:o["stats"] + STATS]
    if c.numel():
        st[0:2] = torch.stack(torch.aminmax(c))
    st[2] = ((c < p.rlo) | (c > p.rhi)).sum()
    st[3] = (~(torch.isfinite(p.v) & (p.v > 0))).sum()
    cc = c.clamp(p.rlo, p.rhi)
    by_shift, hist, ept, fetch = tally_device(cc, s.scheme, p.T, p.n_blocks, s.block_columns)
    if by_shift is not None:
        buf[o["shift"]:o["shift"] + p.T] = by_shift
    buf[o["hist"]:o["hist"] + p.T + 1] = hist
    buf[o["ept"]:o["ept"] + p.n] = ept
    buf[o["fetch"]:o["fetch"] + p.n_blocks] = fetch
    rate = encoders.get_scheme(s.scheme).rate
    p.out = _accumulate(p.op, lambda a, b: CountChunk(cc[a:b], s.scheme, p.T, s.bit_order, s.sign_split), p.n, p.v,
                        s.scheme, p.T, s.bit_order, engine="gemm", token_chunk=s.token_chunk,
                        keep_group_acc=s.keep_group_acc, rate=rate, counter=None)


def _queue_triton(p: _Plan, s: ReplaySettings, sch: encoders.Scheme, buf: torch.Tensor, fma: bool) -> None:
    """Two fused kernels for one layer (:mod:`neurosim.sim.kernels_triton`)."""
    op, n, dev = p.op, p.n, p.op.device
    x8 = torch.empty((n, op.in_features), dtype=torch.int8, device=dev)
    acc = torch.empty((n, op.out_features), dtype=torch.int64, device=dev)
    out = torch.empty((n, op.out_features), dtype=torch.float32, device=dev)
    gacc = torch.empty((n, op.n_groups, op.out_features), dtype=torch.int64, device=dev) if s.keep_group_acc else None
    kt.launch_tally(p.c, x8, buf, lo=p.rlo, hi=p.rhi, T=p.T, rate=sch.rate, twos=sch.twos,
                    block_columns=s.block_columns, n_blocks=p.n_blocks, offsets=p.off)
    kt.launch_gemm(x8, op.q.contiguous(), op.scale.contiguous(), p.v, acc, out, gacc, buf,
                   group_size=op.group_size, n_groups=op.n_groups, stats_off=p.off["stats"], fma=fma)
    p.out = (acc, out, gacc)


def _finish(p: _Plan, s: ReplaySettings, host: np.ndarray, rate: bool) -> LayerReplay:
    """Apply the layer's deferred checks (raising the reference's error) and build its result."""
    o, name = p.off, p.src.name
    lo, hi, outside, bad = (int(x) for x in host[o["stats"]:o["stats"] + STATS])
    if bad:
        raise ValueError(_named(name, VTH_MESSAGE))
    if not p.c.numel():
        lo = hi = 0
    if lo < p.rlo or hi > p.rhi:  # outside the window (negative counts of unsigned schemes too): the reference's error
        window(s.scheme, torch.tensor([lo, hi]), p.T if s.T is None else s.T, sign_split=s.sign_split, clip=s.clip,
               name=name)
    by_shift = None if rate else host[o["shift"]:o["shift"] + p.T]
    hist = host[o["hist"]:o["hist"] + p.T + 1]
    counter = ActivityCounter(p.op.in_features, p.op.out_features, p.T, int(s.block_columns), p.op.bytes_per_weight)
    counter.add_arrays(events_per_step(by_shift, hist, p.T, s.bit_order), host[o["ept"]:o["ept"] + p.n], hist,
                       host[o["fetch"]:o["fetch"] + p.n_blocks])
    act: Activity = counter.activity(name=name, role=p.src.role, scheme=s.scheme, clipped=outside,
                                     sign_split=s.sign_split, same_input_as=p.src.same_input_as)
    acc, out, gacc = p.out
    return LayerReplay(name, p.src.role, s.scheme, p.T, s.bit_order, acc, out, act, outside, gacc)


def default_backend(device: torch.device) -> str:
    """``triton`` on CUDA where Triton imports, ``torch`` on CUDA without it, else ``reference``."""
    if device.type == "cuda":
        return "triton" if kt.available() else "torch"
    return "reference"


def replay_layers(layers: Iterable[LayerInput], settings: ReplaySettings, *,
                  backend: str | None = None) -> list[LayerReplay]:
    """Replay several layers with the same settings; equal to ``[replay_reference(...) for
    each layer]`` bit for bit (accumulators, outputs, Activity), raising the same error for
    the first bad layer (named), but with one host read for the whole batch.

    Args:
        layers: :class:`LayerInput` per layer, on one device.
        settings: how to replay (``engine="gemm"`` takes the deferred path; other engines
            run the reference layer by layer).
        backend: ``"triton"`` (fused kernels where a layer fits them, else ``"torch"``),
            ``"torch"`` (the reference's torch ops, counters on the device) or
            ``"reference"``; None picks :func:`default_backend` for the settings' device.
            Triton on CPU tensors needs its interpreter (``TRITON_INTERPRET=1``; it rounds
            the group sums of ``output`` as an unfused multiply-add).
    """
    if not isinstance(settings, ReplaySettings):
        raise TypeError(f"settings must be ReplaySettings, got {type(settings).__name__}")
    s, layers = settings, list(layers)
    if backend is None:
        first = layers[0].operand if layers else None
        backend = default_backend(first.device if first is not None else torch.device(s.device))
    if backend not in BACKENDS:
        raise ValueError(f"unknown backend {backend!r}; choose one of {', '.join(BACKENDS)}")
    if backend == "triton" and not kt.available():
        raise ValueError("backend 'triton' needs the triton package (it ships with CUDA builds of torch)")
    if backend == "reference" or s.engine != "gemm":
        return [replay_reference(L.weight, L.counts, L.vth, s, name=L.name, role=L.role,
                                 same_input_as=L.same_input_as, operand=L.operand) for L in layers]
    check_covered(s.scheme)  # the counters come from count tallies
    sch = encoders.get_scheme(s.scheme)
    plans: list[_Plan] = []
    for L in layers:
        try:
            plans.append(_plan(L, s, plans))
        except Exception:
            for p in plans:
                _value_checks(p, s)
            raise
    _windows(plans, s)
    if not plans:
        return []
    dev = plans[0].op.device
    fma = kt.addcmul_fuses(dev) if dev.type == "cuda" else False  # interpreter: unfused
    use_triton = backend == "triton" and (dev.type == "cuda" or kt.interpreting())
    reaches: dict[int, int] = {}
    for p in plans:
        p.kind = "triton" if use_triton and _triton_ok(p, s, sch, fma, reaches) else "torch"
    buf = torch.zeros(_layout(plans, s, sch), dtype=torch.int64, device=dev)
    stats = buf[:STATS * len(plans)].view(len(plans), STATS)
    stats[:, 0] = kt.INT64_MAX  # atomic minimum / maximum start values
    stats[:, 1] = kt.INT64_MIN
    for i, p in enumerate(plans):
        try:
            if p.kind == "triton":
                _queue_triton(p, s, sch, buf, bool(fma))
            else:
                _queue_torch(p, s, buf)
        except Exception:
            host = buf.cpu().numpy()
            for q in plans[:i]:  # an earlier layer's deferred error comes first
                _finish(q, s, host, sch.rate)
            raise
    host = buf.cpu().numpy()  # the one host read of the batch
    return [_finish(p, s, host, sch.rate) for p in plans]
