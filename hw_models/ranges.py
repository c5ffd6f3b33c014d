"""Declared low / high bounds of the chip presets' uncertain constants, and what they do to J/token.

Every ASSUMPTION, ESTIMATE or DERIVED constant of a chip preset (and the pre-silicon figures
that the source itself gives as a span) has a ``(low, high, reason)`` entry below. Fields not
listed are published point values (node, cores, Table 2 figures) or shape parameters that
change the mapping (synaptic memory per core, fan-in limits): those are held fixed, because a
different value is a different chip, not an error bar.

Propagation is by **bounds** (corners), not Monte-Carlo: every ranged field is an energy, a
power or a time, and the chip model (:func:`hw_models.neuromorphic.run_on_chip`) is monotone
non-decreasing in each of them (more pJ per event or more seconds per step never lowers
J/token or s/token; tested in tests/test_hw_ranges.py). So the all-low chip gives the exact
lower bound and the all-high chip the exact upper bound of J/token and s/token over the box.

Op-table ESTIMATES (nodes between 7 and 45 nm, the 7 nm 32 KB SRAM row) are bounded by
:func:`hw_models.op_energy.table_bounds`; presets built from the tables take their bounds from
there. Chips without a declared entry (user chips, ``generic_async``) get a factor-2 band on
every field whose source says ASSUMPTION or ESTIMATE (:data:`DEFAULT_FACTOR`).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterable, Mapping

from .activity import Activity
from .chips import NeuromorphicChip
from .neuromorphic import run_on_chip
from .op_energy import KB, table_bounds, table_for_node
from .results import PlatformResult

DEFAULT_FACTOR = 2.0  # undeclared ASSUMPTION/ESTIMATE fields: value / 2 .. value x 2

# Fields the corner propagation may move: the model is monotone non-decreasing in each.
RANGEABLE: tuple[str, ...] = (
    "synop_pj", "synop_fetch_pj", "neuron_update_pj", "neuron_spike_extra_pj", "spike_route_pj", "hop_pj",
    "handshake_pj", "interchip_pj_per_bit", "static_w", "sram_pj_per_byte", "synop_time_s",
    "neuron_update_time_s", "hop_latency_s", "step_sync_s", "multichip_sync_s", "min_step_s", "interchip_latency_s",
)


@dataclass(frozen=True)
class Bound:
    """A declared range of one constant: ``low <= value <= high`` (same unit as the field)."""

    low: float
    high: float
    reason: str


def _sram_bounds(node_nm: float, size: int) -> tuple[float, float]:
    lo, hi = table_bounds(table_for_node(node_nm))
    return lo.sram_pj_per_byte(size), hi.sram_pj_per_byte(size)


def _op_bounds(node_nm: float, expr) -> tuple[float, float]:
    lo, hi = table_bounds(table_for_node(node_nm))
    return expr(lo), expr(hi)


_TABLE_REASON = ("ESTIMATE from the op tables: the true value at this node lies between the 7 nm (Jouppi 2021) "
                 "and 45 nm (Horowitz 2014) figures the interpolation starts from")
_LINK = Bound(2.0, 30.0, "ASSUMPTION 10 pJ/bit: on-package SerDes links reach ~2 pJ/bit, board-level links with "
                         "retimers tens of pJ/bit; no chip-to-chip energy is published for these chips")
_L14 = table_for_node(14.0).sram_8kb
_L7_SCALE = table_for_node(7.0).sram_8kb / _L14  # 8 KB SRAM energy ratio 7 nm / 14 nm (wire-dominated events)

DECLARED: dict[str, dict[str, Bound]] = {
    "loihi": {
        "synop_pj": Bound(23.6, 27.1, "Davies 2018 Table 2 gives 23.6 pJ as the minimum; KerasSpiking adds the "
                                      "3.5 pJ hop (27.1 pJ) for a typical op"),
        "hop_pj": Bound(3.0, 4.2, "Davies 2018 Table 2: 3.0 pJ east-west to 4.0 pJ (4.2 in the SPICE-derived "
                                  "config files) north-south per hop"),
        "interchip_pj_per_bit": _LINK,
        "static_w": Bound(0.05, 0.2, "DERIVED 104 mW from Pohoiki Springs (3.34 W / 32 chips, voltage not stated); "
                                     "leakage varies ~2x with voltage and temperature"),
        "sram_pj_per_byte": Bound(*_sram_bounds(14.0, 128 * KB), _TABLE_REASON),
        "hop_latency_s": Bound(4.1e-9, 6.5e-9, "Davies 2018 Table 2: 4.1 ns east-west, 6.5 ns north-south"),
        "step_sync_s": Bound(113e-9, 465e-9, "Davies 2018 Table 2: barrier 113-465 ns for 1-32 tiles"),
        "multichip_sync_s": Bound(1e-6, 14.3e-6, "Frady 2020: 14.3 us per 256-chip column, pessimistic for a few "
                                                 "chips; 1 us = a handful of chip-to-chip hops"),
    },
    "loihi2": {
        "synop_pj": Bound(0.27, 6.84, "high: DERIVED upper bound, Hala Point max 2,600 W / 380e12 synops/s; low: "
                                      "Hala Point's >15 TOPS/W on DNNs (Intel 2024) = 0.133 pJ per 8-bit op x 2 ops "
                                      "per synaptic MAC"),
        "neuron_update_pj": Bound(1.0, 10.8, "high: DERIVED upper bound 2,600 W / 240e12 neuron ops/s; low: "
                                             "ASSUMPTION an order of magnitude lower (the bound charges all power to "
                                             "one kind of op)"),
        "spike_route_pj": Bound(1.7 * _L7_SCALE, 1.7, "ASSUMPTION Loihi's 14 nm 1.7 pJ as the upper bound; low: "
                                                      "scaled to 7 nm by the 8 KB SRAM energy ratio"),
        "hop_pj": Bound(3.0 * _L7_SCALE, 4.2, "ASSUMPTION Loihi's 14 nm 3.0-4.2 pJ per hop; low scaled to 7 nm by "
                                              "the 8 KB SRAM energy ratio"),
        "interchip_pj_per_bit": _LINK,
        "static_w": Bound(0.02, 0.2, "ASSUMPTION 54 mW (Loihi leakage x area ratio); Intel 4 leakage is not "
                                     "published: from 0.4x to about 4x (1 W typical chip power, Loihi 2 brief)"),
        "sram_pj_per_byte": Bound(*_sram_bounds(7.0, 128 * KB), _TABLE_REASON),
        "synop_time_s": Bound(140_544 / 380e12, 3.5e-9, "low: DERIVED from the peak rate (cannot be faster); high: "
                                                         "Loihi's 3.5 ns per synaptic op (no Loihi 2 figure)"),
        "neuron_update_time_s": Bound(140_544 / 240e12, 5.3e-9, "low: DERIVED from the peak rate; high: Loihi's "
                                                                 "5.3 ns per update"),
        "hop_latency_s": Bound(2e-9, 6.5e-9, "ASSUMPTION Loihi's 4.1-6.5 ns; 2 ns for a faster Intel 4 router"),
        "step_sync_s": Bound(113e-9, 465e-9, "ASSUMPTION Loihi's 113-465 ns barrier (Davies 2018 Table 2)"),
        "multichip_sync_s": Bound(1e-6, 14.3e-6, "ASSUMPTION Pohoiki Springs' 14.3 us, pessimistic for a few "
                                                 "chips; 1 us = a handful of chip-to-chip hops"),
    },
    "truenorth": {
        "synop_pj": Bound(2.5, 26.0, "low: DERIVED 1/400 GSOPS/W, the best published efficiency; high: 26 pJ per "
                                     "synaptic event at real time (Merolla 2014), which includes static power"),
        "interchip_pj_per_bit": _LINK,
        "static_w": Bound(0.042, 0.072, "DERIVED 65 mW = 72 mW minus dynamic; high: the whole 72 mW; low: 63 mW "
                                        "(the video workload, Merolla 2014) minus the same dynamic share"),
        "sram_pj_per_byte": Bound(*_sram_bounds(28.0, 8 * KB), _TABLE_REASON),
        "synop_time_s": Bound(1e-3 / (256 * 256) / 4, 1e-3 / (256 * 256), "DERIVED: a full crossbar within the 1 ms "
                                                                         "tick is the slowest real-time rate; ASSUMPTION "
                                                                         "up to 4x faster"),
    },
    "spinnaker2": {
        "synop_pj": Bound(*_op_bounds(22.0, lambda t: t.int8_mac + t.sram_pj_per_byte(128 * KB)), _TABLE_REASON),
        "synop_fetch_pj": Bound(*_sram_bounds(22.0, 128 * KB), _TABLE_REASON),
        "neuron_update_pj": Bound(25.0, 100.0, "ASSUMPTION 50 pJ (~20 ARM M4F instructions), factor 2 either way; "
                                               "the measured software path of the 28 nm prototype (2.19 nJ, "
                                               "Hoeppner 2019) is another regime (docs/validation.md)"),
        "spike_route_pj": Bound(0.85, 3.4, "ASSUMPTION Loihi's 1.7 pJ, factor 2 either way"),
        "hop_pj": Bound(1.75, 7.0, "ASSUMPTION Loihi's 3.5 pJ, factor 2 either way"),
        "interchip_pj_per_bit": _LINK,
        "static_w": Bound(0.03, 0.3, "ASSUMPTION 0.1 W per chip, not published; 22 nm FDSOI with body bias "
                                     "spans several x in leakage"),
        "sram_pj_per_byte": Bound(*_sram_bounds(22.0, 128 * KB), _TABLE_REASON),
        "synop_time_s": Bound(1.0 / (64 * 400e6), 1.0 / (16 * 200e6), "ASSUMPTION 64 MAC/cycle at 200 MHz; low: "
                                                                       "400 MHz; high: a quarter of the array busy"),
        "neuron_update_time_s": Bound(50e-9, 200e-9, "ASSUMPTION 20 cycles at 200 MHz, factor 2 either way"),
        "hop_latency_s": Bound(2.5e-9, 10e-9, "ASSUMPTION one router cycle, factor 2 either way"),
        "step_sync_s": Bound(0.5e-6, 5e-6, "ASSUMPTION 1 us software barrier; 5 us for an interrupt-driven one"),
        "multichip_sync_s": Bound(2e-6, 20e-6, "ASSUMPTION 10 us across chips, factor 2-5"),
    },
}


def bounds_for(chip: NeuromorphicChip) -> dict[str, Bound]:
    """Declared bounds of ``chip``'s uncertain fields (field -> :class:`Bound`).

    Presets use :data:`DECLARED` (fields a user overrode keep their value, no range); other
    chips get ``value / DEFAULT_FACTOR .. value x DEFAULT_FACTOR`` on each rangeable field whose
    source is an ASSUMPTION or ESTIMATE.
    """
    declared = DECLARED.get(chip.name, {})
    out: dict[str, Bound] = {}
    for name in RANGEABLE:
        value = float(getattr(chip, name))
        src = str(chip.sources.get(name, ""))
        if src == "user override":
            continue
        if name in declared and chip.name in DECLARED:
            b = declared[name]
            out[name] = Bound(min(b.low, value), max(b.high, value), b.reason)
        elif chip.name not in DECLARED and value > 0 and src.startswith(("ASSUMPTION", "ESTIMATE")):
            out[name] = Bound(value / DEFAULT_FACTOR, value * DEFAULT_FACTOR,
                              f"undeclared {src.split(':')[0]}: factor {DEFAULT_FACTOR:g} either way")
    return out


def _corner(chip: NeuromorphicChip, bounds: Mapping[str, Bound], side: str) -> NeuromorphicChip:
    vals = {k: (b.low if side == "low" else b.high) for k, b in bounds.items()}
    # keep the fetch part of a synaptic op no larger than the op itself
    if "synop_fetch_pj" in vals or "synop_pj" in vals:
        syn = vals.get("synop_pj", chip.synop_pj)
        vals["synop_fetch_pj"] = min(vals.get("synop_fetch_pj", chip.synop_fetch_pj), syn)
    return _replace(chip, vals)


def _replace(chip: NeuromorphicChip, vals: Mapping[str, float]) -> NeuromorphicChip:
    from dataclasses import replace

    return replace(chip, **vals)


def corner_chips(chip: NeuromorphicChip) -> tuple[NeuromorphicChip, NeuromorphicChip]:
    """The all-low and all-high chips of ``chip``'s declared box."""
    b = bounds_for(chip)
    return _corner(chip, b, "low"), _corner(chip, b, "high")


@dataclass
class RangedResult:
    """A chip result and the bounds of its J/token and s/token over the declared box."""

    result: PlatformResult
    energy_low: float
    energy_high: float
    latency_low: float
    latency_high: float
    method: str = "corner bounds of the declared ranges"

    def row(self) -> dict:
        """The fields of ``neurosim energy --format json`` for this platform."""
        return platform_row(self.result, (self.energy_low, self.energy_high), (self.latency_low, self.latency_high),
                            self.method)


def run_on_chip_ranged(acts: Iterable[Activity], chip: NeuromorphicChip, **kwargs) -> RangedResult:
    """:func:`run_on_chip` at the preset's values and at both corners of its declared box."""
    acts = list(acts)
    mid = run_on_chip(acts, chip, **kwargs)
    lo_chip, hi_chip = corner_chips(chip)
    lo, hi = run_on_chip(acts, lo_chip, **kwargs), run_on_chip(acts, hi_chip, **kwargs)
    return RangedResult(mid, min(lo.energy_per_token_j, mid.energy_per_token_j),
                        max(hi.energy_per_token_j, mid.energy_per_token_j),
                        min(lo.latency_s, mid.latency_s), max(hi.latency_s, mid.latency_s))


def tornado(acts: Iterable[Activity], chip: NeuromorphicChip, **kwargs) -> list[dict]:
    """One-at-a-time sensitivity of J/token: each ranged constant at its low and at its high.

    Returns rows ``{"constant", "value", "low", "high", "j_low", "j_high", "swing", "reason"}``
    sorted by ``swing`` = |j_high - j_low| (J/token), largest first.
    """
    acts = list(acts)
    base = run_on_chip(acts, chip, **kwargs).energy_per_token_j
    rows = []
    for name, b in bounds_for(chip).items():
        js = []
        for v in (b.low, b.high):
            vals = {name: v}
            if name == "synop_pj" and chip.synop_fetch_pj > v:
                vals["synop_fetch_pj"] = v
            if name == "synop_fetch_pj" and v > chip.synop_pj:
                continue
            js.append(run_on_chip(acts, _replace(chip, vals), **kwargs).energy_per_token_j)
        if len(js) < 2:
            js = js + [base] * (2 - len(js))
        rows.append({"constant": name, "value": float(getattr(chip, name)), "low": b.low, "high": b.high,
                     "j_low": js[0], "j_high": js[1], "j_base": base, "swing": abs(js[1] - js[0]), "reason": b.reason})
    rows.sort(key=lambda r: r["swing"], reverse=True)
    return rows


def platform_row(
    result: PlatformResult,
    energy_bounds: tuple[float, float] | None = None,
    latency_bounds: tuple[float, float] | None = None,
    method: str = "",
) -> dict:
    """One platform as the JSON row of ``neurosim energy --format json``.

    Fields: ``platform``, ``kind`` ("chip" or "gpu"), ``energy_per_token_j`` (+ ``_low`` /
    ``_high``), ``latency_per_token_s`` (+ ``_low`` / ``_high``), ``devices``, ``range_method``,
    and for GPUs ``regime`` (and ``calibrated`` when the GPU model reports it). GPU bounds are
    taken from the GPU result where it carries them; otherwise low = high = value.
    """
    d = {**dict(result.details), **result.to_dict()}  # the GPU model keeps regime and ranges in ``details``
    kind = "gpu" if result.kind == "gpu" else "chip"
    e, t = float(result.energy_per_token_j), float(result.latency_s)
    row = {"platform": result.platform, "kind": kind, "devices": result.devices,
           "energy_per_token_j": e, "latency_per_token_s": t}
    if energy_bounds is None:
        energy_bounds = (float(d.get("energy_per_token_j_low", e)), float(d.get("energy_per_token_j_high", e)))
        method = method or ("from the GPU model" if "energy_per_token_j_low" in d else "point value (no range declared)")
    if latency_bounds is None:
        latency_bounds = (float(d.get("latency_per_token_s_low", t)), float(d.get("latency_per_token_s_high", t)))
    row["energy_per_token_j_low"], row["energy_per_token_j_high"] = energy_bounds
    row["latency_per_token_s_low"], row["latency_per_token_s_high"] = latency_bounds
    if kind == "gpu":
        row["regime"] = str(d.get("regime") or "hardware")
        if "calibrated" in d:
            row["calibrated"] = d["calibrated"]
        row["mode"] = result.mode
    row["range_method"] = method
    return row


def ranged_rows(results: Iterable[PlatformResult], acts: Iterable[Activity],
                chips: Mapping[str, NeuromorphicChip]) -> list[dict]:
    """JSON rows for already-priced ``results``: chips get corner bounds (re-priced on ``acts``)."""
    acts = list(acts)
    rows = []
    for r in results:
        if r.kind != "gpu" and r.platform in chips:
            lo_chip, hi_chip = corner_chips(chips[r.platform])
            lo, hi = run_on_chip(acts, lo_chip), run_on_chip(acts, hi_chip)
            rows.append(platform_row(r, (min(lo.energy_per_token_j, r.energy_per_token_j),
                                         max(hi.energy_per_token_j, r.energy_per_token_j)),
                                     (min(lo.latency_s, r.latency_s), max(hi.latency_s, r.latency_s)),
                                     RangedResult.method))
        else:
            rows.append(platform_row(r))
    return rows


def ranges_markdown(chip: NeuromorphicChip) -> str:
    """Markdown table of ``chip``'s declared ranges: field, preset value, low, high, reason."""
    from .compare import to_markdown

    rows = [{"field": k, "value": float(getattr(chip, k)), "low": b.low, "high": b.high, "reason": b.reason}
            for k, b in bounds_for(chip).items()]
    return to_markdown(rows, ("field", "value", "low", "high", "reason"))
