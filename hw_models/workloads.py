"""Deterministic :class:`Activity` records at a chosen spike rate: published workloads and sweeps.

A published benchmark ("N neurons at 20 Hz with 128 active synapses", "a core at its peak
synaptic rate") or a break-even sweep ("r spikes per input slot") is written as the same
per-layer records a replayed trace produces, so it is priced by the same code path
(:func:`hw_models.run_on_chip`, :func:`hw_models.run_on_gpu`).

Spikes are spread evenly: ``r`` events per (token, input channel) slot, ``r <= 1`` as one
spike in a fraction ``r`` of the slots (the rest silent), ``r > 1`` as ``floor(r)`` or
``ceil(r)`` spikes per slot; the events of a token are spread evenly over its ``steps`` time
steps. Weight blocks are one column wide (no over-fetch).
"""
from __future__ import annotations

import math
from typing import Iterable, Sequence

import numpy as np

from ._checks import finite_nonneg, positive_int
from .activity import Activity


def _spread(total: int, n: int) -> np.ndarray:
    """``total`` split into ``n`` integers that differ by at most one (int64)."""
    base, extra = divmod(int(total), int(n))
    out = np.full(int(n), base, dtype=np.int64)
    out[:extra] += 1
    return out


def rate_activity(
    name: str,
    role: str,
    in_features: int,
    out_features: int,
    tokens: int,
    events_per_slot: float,
    steps: int = 1,
    bytes_per_weight: int = 1,
    same_input_as: str | None = None,
    scheme: str = "rate",
) -> Activity:
    """One layer with ``events_per_slot`` spikes per (token, input) slot, spread evenly.

    ``steps`` is raised to ``ceil(events_per_slot)`` when a slot needs more steps than that.
    Raises ValueError for non-positive shapes or a negative / non-finite rate.
    """
    for f, v in (("in_features", in_features), ("out_features", out_features), ("tokens", tokens),
                 ("steps", steps), ("bytes_per_weight", bytes_per_weight)):
        positive_int("rate_activity", f, v)
    r = finite_nonneg("rate_activity", "events_per_slot", events_per_slot)
    steps = max(int(steps), math.ceil(r)) if r > 0 else int(steps)
    slots = tokens * in_features
    events = int(round(r * slots))
    hist = np.zeros(steps + 1, dtype=np.int64)
    k, rem = divmod(events, slots)
    if k == 0:
        hist[1], hist[0] = rem, slots - rem
    else:
        hist[min(k + 1, steps)] += rem
        hist[k] += slots - rem
    per_step = _spread(events, steps)
    return Activity(
        name=name, role=role, scheme=scheme, steps=steps, tokens=tokens,
        in_features=in_features, out_features=out_features,
        events_per_step=per_step,
        events_per_token=_spread(events, tokens),
        synaptic_ops=events * out_features,
        acc_updates=events * out_features,
        dense_macs=tokens * in_features * out_features,
        active_inputs_per_step=per_step.copy(),
        silent_inputs=int(hist[0]),
        weight_bytes_touched=events * out_features * bytes_per_weight,
        weight_bytes_dense=in_features * out_features * bytes_per_weight,
        block_columns=1,
        bytes_per_weight=bytes_per_weight,
        event_hist=hist,
        same_input_as=same_input_as,
    )


def at_rate(template: Iterable[Activity], events_per_slot: float, tokens: int | None = None,
            steps: int | None = None) -> list[Activity]:
    """The layers of ``template`` (shapes, names, roles, shared inputs) at a uniform spike rate.

    Used by the break-even sweep: the same model, only the spikes per input slot change.
    """
    out = []
    for a in template:
        out.append(rate_activity(a.name, a.role, a.in_features, a.out_features,
                                 tokens if tokens is not None else a.tokens, events_per_slot,
                                 steps=steps if steps is not None else a.steps,
                                 bytes_per_weight=a.bytes_per_weight, same_input_as=a.same_input_as))
    return out


def events_per_slot(acts: Sequence[Activity]) -> float:
    """Spikes per (token, input channel) slot over ``acts`` (shared inputs counted once)."""
    own = [a for a in acts if not a.same_input_as]
    slots = sum(a.input_slots for a in own)
    return sum(a.events for a in own) / slots if slots else 0.0
