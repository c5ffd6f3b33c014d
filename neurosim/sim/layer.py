"""Replay one linear layer: integer spike counts -> spike trains -> events -> accumulators.

The public entry points: :func:`replay_layer` (arguments), :func:`replay_with` (one
:class:`~neurosim.sim.settings.ReplaySettings`) and :func:`replay_spikes` (an explicit
train). The arithmetic, its exactness and the input checks are described and implemented
in :mod:`neurosim.sim.replay_core` (the reference path); the ``gemm`` engine on CUDA goes
through :mod:`neurosim.sim.batch` (fused kernels, one host read), equal to it bit for bit.
"""
from __future__ import annotations

from typing import Any, Callable

import numpy as np
import torch

import encoders

from .batch import LayerInput, replay_layers
from .engine import Events
from .events import PlaneEvents, spike_train  # noqa: F401  (spike_train re-exported)
from .operand import Operand, prepare_weight, weight_shape
from .replay_core import (  # noqa: F401  (re-exported: the names callers import from here)
    CHUNK_BUDGET_BYTES,
    UNSIGNED_SCHEMES,
    VTH_MESSAGE,
    LayerReplay,
    _acc_dtype,
    _accumulate,
    _check_in_features,
    _check_sign_split,
    _int_sum,
    _output,
    _replay,
    _token_chunk,
    as_counts,
    as_vth,
    replay_reference,
    window,
)
from .settings import ReplaySettings, _check_common  # noqa: F401  (_check_common re-exported)


# ------------------------------------------------------------------------------ public API


def replay_layer(
    weight: Any,
    counts: Any,
    vth: Any,
    scheme: str,
    T: int | None = None,
    bit_order: str = "msb",
    *,
    block_columns: int = 32,
    device: str | torch.device = "cpu",
    name: str = "",
    role: str = "",
    clip: bool = False,
    sign_split: bool = False,
    engine: str = "events",
    token_chunk: int | None = None,
    out_chunk: int | None = None,
    keep_group_acc: bool = False,
    same_input_as: str | None = None,
    operand: Operand | None = None,
) -> LayerReplay:
    """Replay a layer's spike counts, encoded with ``scheme``, through its integer weights.

    Args:
        weight: ``Int8Weight`` (INT8 per-group scales), a float tensor [out, in] (quantized
            to INT8 per group of 128 first), an integer tensor (unit scale) or ``nn.Linear``.
        counts: integer spike counts [tokens, in_features] (numpy or torch).
        vth: V_th per token [tokens] (units of the layer input; positive).
        scheme: encoder scheme (:data:`encoders.SCHEMES`).
        T: window in steps; None = the smallest window for these counts (at least 1).
        bit_order: ``"msb"`` (step 0 carries the most significant bit) or ``"lsb"``.
        block_columns: memory-block width (input columns) for ``weight_bytes_touched``.
        device: where to run (``"cpu"``, ``"cuda"``); results stay there.
        name, role: recorded in the Activity.
        clip: clamp counts outside the window instead of raising (reported as ``clipped``).
        sign_split: carry signed counts with an unsigned scheme on two lines per channel.
        engine: ``"events"`` (event list, work ~ synaptic ops), ``"dense"`` (per-step
            dense planes), ``"planes"`` (all planes in one batched GEMM) or ``"gemm"``
            (planes summed with their step weights, one GEMM; see
            :mod:`neurosim.sim.kernels_gemm`); identical results.
        token_chunk: tokens per chunk (None: sized to about 256 MiB of working memory).
        out_chunk: output columns per lookup table of the events engine (None: 256 on CPU).
        keep_group_acc: also return the per-group accumulators.
        same_input_as: recorded in the Activity (layers fed the identical spikes).
        operand: a :class:`~neurosim.sim.operand.Operand` prepared earlier for this weight
            (skips preparation; ``weight`` is then only used for its shape).

    The settings travel as one :class:`~neurosim.sim.settings.ReplaySettings`; callers that
    replay many layers build it once and call :func:`replay_with`.

    Returns:
        :class:`LayerReplay`. ``acc`` equals ``counts @ q.T`` exactly (clipped counts if ``clip``).

    Raises:
        ValueError: shapes that do not match, bad thresholds, counts outside the window,
            negative counts for an unsigned scheme without ``sign_split``, unknown scheme,
            bit order or engine.
        TypeError: unsupported argument types.
    """
    settings = ReplaySettings(scheme, T, bit_order, block_columns, device, clip, sign_split, engine,
                              token_chunk, out_chunk, keep_group_acc)
    return replay_with(weight, counts, vth, settings, name=name, role=role, same_input_as=same_input_as,
                       operand=operand)


def replay_with(
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
    """:func:`replay_layer` with its settings as one validated :class:`ReplaySettings`.

    ``name``, ``role`` and ``same_input_as`` label the Activity; ``operand`` is a weight
    prepared earlier (see :func:`replay_layer` for every argument).
    """
    if not isinstance(settings, ReplaySettings):
        raise TypeError(f"settings must be ReplaySettings, got {type(settings).__name__}")
    dev = operand.device if operand is not None else torch.device(settings.device)
    if settings.engine == "gemm" and dev.type == "cuda":  # fused GPU kernels, one host read (batch.py)
        return replay_layers([LayerInput(weight, counts, vth, name, role, same_input_as, operand)], settings)[0]
    return replay_reference(weight, counts, vth, settings, name=name, role=role, same_input_as=same_input_as,
                            operand=operand)


def replay_spikes(
    weight: Any,
    spikes: Any,
    vth: Any,
    scheme: str,
    bit_order: str = "msb",
    *,
    block_columns: int = 32,
    device: str | torch.device = "cpu",
    name: str = "",
    role: str = "",
    sign_split: bool = False,
    engine: str = "events",
    token_chunk: int | None = None,
    out_chunk: int | None = None,
    keep_group_acc: bool = False,
) -> LayerReplay:
    """Replay an explicit spike train int [T, tokens, in_features] (values in {-1, 0, 1}).

    Step ``t`` carries weight ``encoders.step_weights(scheme, T, bit_order)[t]``. Use it for
    trains that do not come from :func:`encoders.encode`, e.g. IF-neuron output
    (:mod:`neurosim.ifcheck`). -1 spikes are allowed for ternary and bitwise-signed, and for
    unsigned schemes with ``sign_split``. Raises ValueError for other values or shapes.
    """
    _check_common(scheme, bit_order, engine, block_columns)
    _, in_f = weight_shape(weight)
    if isinstance(spikes, np.ndarray):
        s = torch.from_numpy(np.array(spikes))
    elif isinstance(spikes, torch.Tensor):
        s = spikes.detach()
    else:
        raise TypeError(f"spikes must be a numpy array or a torch tensor, got {type(spikes).__name__}")
    if s.dim() != 3:
        raise ValueError(f"spikes must be 3-D [T, tokens, in_features], got shape {tuple(s.shape)}")
    if s.dtype == torch.bool or s.is_floating_point() or s.is_complex():
        raise TypeError(f"spikes must have an integer dtype, got {s.dtype}")
    _check_in_features("spikes", int(s.shape[2]), in_f, name)
    if s.shape[0] < 1:
        raise ValueError("spikes must have at least one time step")
    sch = encoders.get_scheme(scheme)
    _check_sign_split(sch, sign_split)
    lo_allowed = -1 if (sch.bipolar or sign_split) else 0
    if s.numel():
        lo, hi = (int(x) for x in torch.aminmax(s))
        if lo < lo_allowed or hi > 1:
            raise ValueError(f"spike values for scheme {scheme!r} must lie in [{lo_allowed}, 1]; found {lo if lo < lo_allowed else hi}")
    v = as_vth(vth, int(s.shape[1]))
    op = prepare_weight(weight, device, out_chunk, need_tables=engine == "events")
    s = s.to(device=op.device, dtype=torch.int8)
    if engine in ("gemm", "planes"):
        from .kernels_gemm import TrainChunk

        chunk_of: Callable[[int, int], Events] = lambda a, b: TrainChunk(s[:, a:b])
    else:
        chunk_of = lambda a, b: PlaneEvents(s[:, a:b], op.group_size, op.n_groups, op.kernel_dtype)
    return _replay(
        op,
        chunk_of,
        int(s.shape[1]),
        v.to(op.device),
        scheme,
        int(s.shape[0]),
        bit_order,
        engine=engine,
        block_columns=block_columns,
        token_chunk=token_chunk,
        keep_group_acc=keep_group_acc,
        name=name,
        role=role,
        clipped=0,
        sign_split=sign_split,
        same_input_as=None,
        rate=False,
    )
