"""Helpers over lists of :class:`~hw_models.activity.Activity`: sums and per-role statistics."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ._checks import check_layer_activity
from .activity import Activity, _pad_sum


def sum_activities(acts: Iterable[Activity], name: str = "total") -> Activity:
    """Sum layer records into one ``Activity`` (role "", in/out features 0).

    A thin alias of :meth:`Activity.combine` (the contract's own sum): per-step arrays and
    ``event_hist`` zero-padded to the longest window, ``step_slots`` keeping the sparsity
    denominator. Raises ValueError for no records or different token counts.
    """
    return Activity.combine(acts, name=name)


@dataclass(frozen=True)
class RoleStats:
    """Width-independent statistics of one layer role, pooled over the layers of a trace.

    Attributes:
        role: q, k, v, o, gate, up, down or lm_head.
        layers: records pooled.
        scheme, steps, block_columns, bytes_per_weight: coding and memory layout (must agree).
        events_per_slot: spikes per (token, input channel) slot over the whole window.
        step_fractions: share of the events sent at each step (sums to 1).
        silent_fraction: share of slots that never spike.
        spikes_per_active: spikes per non-silent slot.
        fetch_fraction: weight bytes touched / weight bytes of every (token, step) reading all
            columns; 1 = every block read at every step.
        acc_per_synop: accumulator updates per synaptic op.
        hist_fractions: share of slots with i events (index i = 0..steps).
    """

    role: str
    layers: int
    scheme: str
    steps: int
    block_columns: int
    bytes_per_weight: int
    events_per_slot: float
    step_fractions: tuple[float, ...]
    silent_fraction: float
    spikes_per_active: float
    fetch_fraction: float
    acc_per_synop: float
    hist_fractions: tuple[float, ...]

    @property
    def sparsity(self) -> float:
        """Fraction of (step, slot) positions without a spike."""
        return 1.0 - self.events_per_slot / self.steps


def role_statistics(acts: Iterable[Activity]) -> dict[str, RoleStats]:
    """Pool per-layer records by role into :class:`RoleStats` (totals, not means of ratios)."""
    groups: dict[str, list[Activity]] = {}
    for a in acts:
        check_layer_activity(a, "role_statistics")
        if not a.role:
            raise ValueError(f"role_statistics: record {a.name!r} has no role")
        groups.setdefault(a.role, []).append(a)
    if not groups:
        raise ValueError("role_statistics: no records")
    out: dict[str, RoleStats] = {}
    for role, recs in groups.items():
        for attr in ("scheme", "steps", "block_columns", "bytes_per_weight"):
            vals = {getattr(r, attr) for r in recs}
            if len(vals) != 1:
                raise ValueError(f"role_statistics: role {role!r} mixes {attr} values {sorted(map(str, vals))}")
        r0 = recs[0]
        slots = sum(r.tokens * r.in_features for r in recs)
        events = sum(r.events for r in recs)
        eps = _pad_sum([r.events_per_step for r in recs]).astype(float)
        hist = _pad_sum([r.event_hist for r in recs]).astype(float)
        silent = sum(int(r.silent_inputs) for r in recs)
        full = sum(r.tokens * r.steps * r.in_features * r.out_features * r.bytes_per_weight for r in recs)
        synops = sum(int(r.synaptic_ops) for r in recs)
        out[role] = RoleStats(
            role=role,
            layers=len(recs),
            scheme=r0.scheme,
            steps=r0.steps,
            block_columns=r0.block_columns,
            bytes_per_weight=r0.bytes_per_weight,
            events_per_slot=events / slots,
            step_fractions=tuple((eps / eps.sum()).tolist()) if eps.sum() > 0 else tuple([0.0] * len(eps)),
            silent_fraction=silent / slots,
            spikes_per_active=events / (slots - silent) if slots > silent else 0.0,
            fetch_fraction=sum(int(r.weight_bytes_touched) for r in recs) / full,
            acc_per_synop=sum(int(r.acc_updates) for r in recs) / synops if synops else 1.0,
            hist_fractions=tuple((hist / hist.sum()).tolist()) if hist.sum() > 0 else (1.0,),
        )
    return out
