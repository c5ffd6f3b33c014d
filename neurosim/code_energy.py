"""Energy of each spike code from exact statistics, without replaying the weights.

``compare-encoders`` and the run report put an energy column beside every code (plain and
``+ delta``): per layer, an :class:`hw_models.Activity` is built from the exact counters of
:class:`analysis.stats.SpikeStats` at the code's budget window (events per step, the
histogram of events per (token, channel) slot, synaptic ops = events x fan-out, graded
payloads as multiply-accumulates) and priced with :func:`hw_models.run_on_chip`. Two
simplifications against a replay: weight blocks are assumed fetched only for the synapses
used (no block over-fetch), and events are spread evenly over the tokens (the per-token
split only shapes latency, not energy).
"""
from __future__ import annotations

from typing import Any

import numpy as np

import encoders
import hw_models
from analysis.stats import SpikeStats
from analysis.stats_counters import LayerStats, window_events_lut
from analysis.stats_reference import DEFAULT_BUDGETS


def activity_of(ls: LayerStats, scheme: str, T: int) -> hw_models.Activity:
    """An Activity for one layer's counts sent with ``scheme`` in ``T`` steps (clipped to the window)."""
    st = ls.state
    sch = encoders.get_scheme(scheme)
    ev_lut = window_events_lut(scheme, T)
    n_neg, n_pos = st._edge_counts()
    hist = np.bincount(ev_lut, weights=st.hist, minlength=T + 1).astype(np.int64)
    hist[ev_lut[0]] += n_neg
    hist[ev_lut[-1]] += n_pos
    per_step = st.events_per_step(scheme, T)
    events = int(per_step.sum())
    rows = max(st.rows, 1)
    ept = np.full(rows, events // rows, np.int64)
    ept[: events % rows] += 1
    out_f, in_f = ls.out_features, ls.in_features or ls.channels
    synops = events * out_f
    return hw_models.Activity(
        name=ls.name, role=ls.role, scheme=scheme, steps=T, tokens=rows, in_features=in_f, out_features=out_f,
        events_per_step=per_step, events_per_token=ept, synaptic_ops=synops, acc_updates=synops,
        dense_macs=rows * in_f * out_f, active_inputs_per_step=per_step.copy(), silent_inputs=int(hist[0]),
        weight_bytes_touched=synops, weight_bytes_dense=in_f * out_f, event_hist=hist,
        clipped=st.clipped(scheme, T), mac_ops=synops if sch.graded else 0,
        payload_bits=sch.payload_bits if sch.graded else 0,
    )


def energy_per_token(stats: SpikeStats, scheme: str, T: int | None = None, chip: str = "loihi2") -> float | None:
    """J/token of ``stats`` sent with ``scheme`` (budget T by default) on ``chip``; None when
    the chip cannot carry the code (graded payloads on a binary-spike chip) or fan-outs are unknown."""
    T = DEFAULT_BUDGETS[scheme] if T is None else T
    layers = stats.ordered_layers()
    if not layers or any(ls.out_features <= 0 for ls in layers):
        return None
    spec = hw_models.get_chip(chip)
    sch = encoders.get_scheme(scheme)
    if sch.graded and sch.payload_bits > spec.payload_bits:
        return None
    res = hw_models.run_on_chip([activity_of(ls, scheme, T) for ls in layers], spec)
    return float(res.energy_per_token_j)


def compare_with_energy(stats: SpikeStats, delta: SpikeStats | None = None, chip: str = "loihi2",
                        budgets: dict[str, int] | None = None,
                        bit_order: str = "msb") -> tuple[list[dict[str, Any]], dict[str, str]]:
    """Comparison rows of every scheme (then its ``+ delta`` variant) with an energy column.

    Returns ``(rows, extra)``: ``extra`` maps the energy key to its header, for
    :func:`analysis.compare.comparison_markdown`. Energy in uJ/token at the budget T.
    """
    from analysis.compare import compare_encoders

    key = f"energy_{chip}_uj"
    sets = [stats] + ([delta] if delta is not None else [])
    per_set = [compare_encoders(s, budgets, bit_order=bit_order) for s in sets]
    rows: list[dict[str, Any]] = []
    for i, scheme in enumerate(encoders.SCHEMES):
        for s, rs in zip(sets, per_set):
            r = rs[i]
            e = energy_per_token(s, scheme, r["budget_steps"], chip)
            r[key] = float("nan") if e is None else e * 1e6
            rows.append(r)
    return rows, {key: f"energy on {chip} at budget T (uJ/token; n/a: chip cannot carry the code)"}
