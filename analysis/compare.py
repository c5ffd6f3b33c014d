"""Encoder comparison: what each spike scheme costs for the same spike counts.

For each of binary, ternary, bitwise, bitwise-signed and bitwise-twos the table gives:

* ``steps_needed``: Int2Spike's default T for the data, computed per layer (max over the
  layer's tokens, as ``encoders.steps_needed``); the table shows the largest and smallest
  layer value;
* ``events`` / ``events_per_token`` / ``sparsity``: spikes sent when every layer uses its own
  lossless T (nothing clipped);
* ``*_at_budget``: the same at a fixed step budget for every layer, with the values that do
  not fit clipped (``clipped_at_budget`` counts them). Default budgets
  (:data:`analysis.stats.DEFAULT_BUDGETS`) all carry ``|s| <= 7``: binary/ternary 7 steps,
  bitwise/bitwise-signed 3, bitwise-twos 4 (range [-8, 7]);
* ``firing_rate_per_step``: spikes per line at each budget step (step 0 first).

Unsigned schemes (binary, bitwise) are **sign-split**: two unipolar lines per channel
(positive and negative part), so their events equal those of the signed variant of the
same code and their line count doubles (see :mod:`analysis.stats`).

Bit order (MSB first, Int2Spike's, or LSB first) never changes how many spikes are sent,
only at which step: LSB-first rates are the MSB-first rates reversed. The table states the
order it used. ``events`` here are spikes on the input lines; hw_models multiplies them by
fan-out for synaptic operations.
"""
from __future__ import annotations

from typing import Any, Sequence

import numpy as np

import encoders

from .stats_accumulator import SpikeStats
from .stats_counters import LayerStats, check_window, window_range
from .stats_reference import DEFAULT_BUDGETS
from .tables import fmt_cell, markdown_table


def lines_per_channel(scheme: str) -> int:
    """Input lines per channel: 2 for the sign-split unsigned schemes (binary, bitwise), else 1."""
    return encoders.get_scheme(scheme).lines


def train_sparsity(scheme: str, events: int | float, values: int, T: int) -> float:
    """Sparsity of spike trains: ``1 - events / (lines x values x T)``, the fraction of silent slots.

    ``values`` counts (token, channel) pairs and ``T`` is the window in steps; unsigned schemes
    are sign-split (two lines per channel, :func:`lines_per_channel`), as everywhere in the
    package. This is the report's sparsity (arXiv:2509.05276: 69.15 % for bitwise-signed,
    T = 3) and the one definition used by ``compare-encoders``, ``demo`` and the run report.
    NaN when there is no slot.
    """
    slots = lines_per_channel(scheme) * int(values) * int(T)
    return 1.0 - float(events) / slots if slots else float("nan")


def bit_order_note(scheme: str, bit_order: str = "msb") -> str:
    """How a scheme's steps are ordered (bitwise: MSB or LSB first; the other order sends the
    same events, steps reversed); n/a for rate and graded codes."""
    if not encoders.get_scheme(scheme).bitwise:
        return "n/a"
    return "MSB first" if bit_order == "msb" else "LSB first"


def as_stats(source: Any, progress: bool = False) -> SpikeStats:
    """SpikeStats from stats, a trace or its path, an iterable of (layer, counts, vth), or a counts array."""
    if isinstance(source, SpikeStats):
        return source
    if isinstance(source, np.ndarray) or (hasattr(source, "detach") and hasattr(source, "shape")):
        st = SpikeStats()
        st.update("counts", "other", source)
        return st
    return SpikeStats.from_trace(source, progress=progress)


def compare_encoders(
    source: Any,
    budgets: dict[str, int] | None = None,
    schemes: Sequence[str] = encoders.SCHEMES,
    bit_order: str = "msb",
    per_layer: bool = False,
) -> list[dict[str, Any]]:
    """Compare spike schemes on the same counts; one dict per scheme (per layer and scheme with ``per_layer``).

    Args:
        source: :class:`SpikeStats`, a trace (or path), an iterable of (layer, counts, vth),
            or one counts array ``[tokens, channels]``.
        budgets: step budget per scheme (defaults: :data:`DEFAULT_BUDGETS`); missing schemes
            use the default.
        schemes: which schemes to compare.
        bit_order: ``"msb"`` or ``"lsb"``; only the per-step rates of bitwise schemes change.
        per_layer: one row per (layer, scheme), with ``layer`` and ``role`` keys.

    Units: events = spikes (input line events); events_per_token = spikes per token, summed
    over layers; fractions in [0, 1]; steps = time steps.
    """
    stats = as_stats(source)
    encoders.check_bit_order(bit_order)
    chosen = dict(DEFAULT_BUDGETS)
    for scheme, T in (budgets or {}).items():
        chosen[scheme] = check_window(scheme, T)[1]
    for scheme in schemes:
        encoders.check_scheme(scheme)
    layers = stats.ordered_layers()
    if not layers:
        raise ValueError("no layers to compare: the statistics are empty")
    if per_layer:
        rows = []
        for ls in layers:
            for scheme in schemes:
                row = {"layer": ls.name, "role": ls.role}
                row.update(_row([ls], scheme, chosen[scheme], bit_order))
                rows.append(row)
        return rows
    rows = [_row(layers, scheme, chosen[scheme], bit_order) for scheme in schemes]
    for r in rows:  # the code: the scheme, sent plain or as temporal differences (sigma-delta)
        r["code"] = f"{r['scheme']} + delta" if stats.delta else r["scheme"]
        r["delta"] = stats.delta
    return rows


def _row(layers: list[LayerStats], scheme: str, budget: int, bit_order: str) -> dict[str, Any]:
    lines = lines_per_channel(scheme)
    needed = [ls.state.steps_needed(scheme) for ls in layers]
    events = [ls.state.lossless_events(scheme, T) for ls, T in zip(layers, needed)]
    slots = sum(lines * ls.state.values * T for ls, T in zip(layers, needed))  # layers differ in T
    values = sum(ls.state.values for ls in layers)
    active = sum(ls.state.active for ls in layers)
    ev_b = [ls.state.window_events(scheme, budget) for ls in layers]
    per_step = sum(ls.state.events_per_step(scheme, budget, bit_order) for ls in layers)
    clipped = sum(ls.state.clipped(scheme, budget) for ls in layers)
    lo, hi = window_range(scheme, budget)
    return {
        "scheme": scheme,
        "bit_order": bit_order_note(scheme, bit_order),
        "lines_per_channel": lines,
        "steps_needed": max(needed),
        "steps_needed_min": min(needed),
        "events": sum(events),
        "events_per_token": sum(e / ls.state.rows for e, ls in zip(events, layers) if ls.state.rows),
        "sparsity": 1.0 - sum(events) / slots if slots else float("nan"),
        "spikes_per_active": sum(events) / active if active else float("nan"),
        "budget_steps": budget,
        "budget_range": f"[{lo}, {hi}]",
        "events_at_budget": sum(ev_b),
        "events_per_token_at_budget": sum(e / ls.state.rows for e, ls in zip(ev_b, layers) if ls.state.rows),
        "sparsity_at_budget": train_sparsity(scheme, sum(ev_b), values, budget),
        "clipped_at_budget": clipped,
        "clipped_fraction_at_budget": clipped / values if values else float("nan"),
        # events x fan-out (0 for layers whose fan-out is unknown)
        "synops_per_token_at_budget": sum(e * ls.out_features / ls.state.rows
                                          for e, ls in zip(ev_b, layers) if ls.state.rows),
        "firing_rate_per_step": (per_step / (lines * values)).tolist() if values else [],
    }


_MD_COLUMNS = {
    "code": "scheme",
    "lines_per_channel": "lines per channel",
    "steps_needed": "lossless T (steps, largest layer)",
    "events_per_token": "events/token at lossless T",
    "sparsity": "sparsity at lossless T",
    "budget_steps": "budget T (steps)",
    "budget_range": "counts carried at budget T",
    "events_per_token_at_budget": "events/token at budget T",
    "sparsity_at_budget": "sparsity at budget T",
    "clipped_fraction_at_budget": "counts clipped at budget T",
    "synops_per_token_at_budget": "synaptic ops/token at budget T",
    "bit_order": "bit order",
}
COLUMN_NOTE = (
    "Lossless T: each layer at the fewest steps that carry all its counts (nothing clipped); budget T: every "
    "layer at the scheme's fixed budget (each carries at least |s| <= 7), counts beyond it clipped. Events: non-zero "
    "spikes on the input lines, summed over layers (sign-split schemes use 2 lines per channel; a graded event "
    "carries its count as an integer payload); sparsity = 1 - events / (lines x T x counts); synaptic ops = "
    "events x fan-out; bit order: reversing it sends the same events, steps reversed. '+ delta' sends s_t - s_(t-1) per channel (the first token of a prompt sends s_0)."
)


def comparison_caption(rows: list[dict[str, Any]]) -> str:
    """One line saying which window each column group uses and how much the budgets clip."""
    clip = ", ".join(f"{r.get('code', r['scheme'])} T = {r['budget_steps']}: {r['clipped_fraction_at_budget']:.2%}"
                     for r in rows if "layer" not in r)
    return ("Lossless columns: every layer at its own lossless T (nothing clipped). @budget columns: every layer "
            f"at the budget T, counts outside its range clipped ({clip}). Sparsity = 1 - events / "
            "(lines x values x T); binary and bitwise are sign-split (2 lines per channel).")


def comparison_display(rows: list[dict[str, Any]], extra: dict[str, str] | None = None) -> list[dict[str, str]]:
    """Rows of :func:`compare_encoders` as formatted cells under human headers (percentages,
    4 significant digits); ``extra`` maps further keys (e.g. an energy column) to headers.
    The per-step firing rates stay in the HDF5 output, not in the table."""
    cols = {"layer": "layer"} if rows and "layer" in rows[0] else {}
    cols.update(_MD_COLUMNS)
    cols.update(extra or {})
    out = []
    for r in rows:
        r = dict(r, code=r.get("code", r["scheme"]))
        out.append({h: fmt_cell(k, r.get(k)) for k, h in cols.items()})
    return out


def comparison_markdown(rows: list[dict[str, Any]], extra: dict[str, str] | None = None) -> str:
    """Markdown table of :func:`compare_encoders` rows (model rows; per-layer rows get a layer column);
    :data:`COLUMN_NOTE` says what the columns mean (print it under the table)."""
    return markdown_table(comparison_display(rows, extra))


def comparison_to_hdf5(group: Any, rows: list[dict[str, Any]]) -> None:
    """Write comparison rows into an h5py group: one subgroup per scheme, scalars as attributes."""
    group.attrs["units"] = "events: spikes on input lines; events_per_token: spikes/token; fractions in [0, 1]"
    group.attrs["definition"] = __doc__
    group.attrs["table_markdown"] = comparison_markdown(rows)
    for r in rows:
        code = r.get("code", r["scheme"])
        name = code if "layer" not in r else f"{r['layer']}:{code}"
        g = group.create_group(name)
        for key, val in r.items():
            if key == "firing_rate_per_step":
                d = g.create_dataset(key, data=np.asarray(val, dtype=np.float64))
                d.attrs["units"] = "spikes per line per step, step 0 first"
            else:
                g.attrs[key] = val
