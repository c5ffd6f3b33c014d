"""Break-even spike rates and the waterfall from the report's 43.48x to ours.

* :func:`breakeven_curves`: the model's own layers re-priced at a uniform rate of ``r`` spikes
  per (token, input channel) slot, ``r`` from 0 to 3, on every chip, divided by dense engines
  doing the same layers: a GPU at INT8 and at 16-bit (its total J/token, hardware regime,
  batch 1) and the generic 45 nm engine (dense INT8 MAC + 1-byte weight fetch, FP16 MAC +
  2-byte fetch from the same 128 KB SRAM; dynamic energy, as the report compares). Chip rows
  divide total J/token by the GPU and dynamic J/token by the 45 nm engine.
  :func:`breakeven_table` gives, per chip and reference, the rate at which the ratio crosses 1.
* :func:`waterfall`: on the same activity, the FP16-dense / spiking ratio as the costs the
  report leaves out are added one at a time on ``generic_async`` at 45 nm (the report's table):
  compute only, + weight fetch, + accumulator read-modify-write, + routing, + static power.

Markers for plots: the report's 7B statistics (1.13 spikes per active channel, 18.4 % silent:
0.922 spikes per slot; arXiv:2509.05276) and the published band of Dampfhoffer et al., "Are
SNNs Really More Energy-Efficient Than ANNs? An In-Depth Hardware-Aware Study", IEEE TETCI
7(3), 2023: SNNs compete with efficient ANN hardware between 0.15 and 1.38 spikes per synapse
per inference.
"""
from __future__ import annotations

from typing import Sequence

import numpy as np

from .activity import Activity
from .chips import NeuromorphicChip, generic_async
from .gpu_model import run_on_gpu
from .gpus import GPUSpec
from .neuromorphic import run_on_chip
from .op_energy import HOROWITZ_45NM, KB
from .report import REPORT_SILENT_FRACTION, REPORT_SPIKES_PER_ACTIVE, report_estimate
from .workloads import at_rate

REPORT_7B_EVENTS_PER_SLOT = REPORT_SPIKES_PER_ACTIVE * (1.0 - REPORT_SILENT_FRACTION)  # 1.13 x 0.816 = 0.922
DAMPFHOFFER_BAND = (0.15, 1.38)  # Dampfhoffer et al., IEEE TETCI 2023: spikes per synapse per inference
REFERENCES = ("gpu_int8", "gpu_fp16", "engine45_int8", "engine45_fp16")
_ENGINE_SRAM = 128 * KB  # the generic engine's core SRAM (generic_async default)


def engine45_dense_j_per_token(acts: Sequence[Activity]) -> dict[str, float]:
    """Dense INT8 and FP16 on the generic 45 nm engine (J/token): MAC + weight bytes from 128 KB SRAM."""
    t = HOROWITZ_45NM
    macs = sum(a.dense_macs for a in acts) / acts[0].tokens
    b = t.sram_pj_per_byte(_ENGINE_SRAM)
    return {"int8": macs * (t.int8_mac + b) * 1e-12, "fp16": macs * (t.fp16_mac + 2.0 * b) * 1e-12}


def breakeven_curves(
    template: Sequence[Activity],
    chips: Sequence[NeuromorphicChip],
    gpu: GPUSpec,
    rates: Sequence[float] = (0.0, 0.05, 0.1, 0.15, 0.25, 0.375, 0.5, 0.75, 1.0, 1.25, 1.5, 2.0, 2.5, 3.0),
    tokens: int = 4,
    steps: int = 3,
) -> list[dict]:
    """Rows ``{"events_per_slot", "platform", "total_j", "dynamic_j", "vs_<reference>"}`` (J/token).

    ``template``: the model's per-layer records (shapes only are used); ``tokens`` tokens per
    point keep the sweep fast (the rate is uniform, so more tokens change nothing).
    """
    template = list(template)
    if not template:
        raise ValueError("breakeven_curves: no Activity records")
    base = at_rate(template, 1.0, tokens=tokens, steps=steps)
    refs = {"gpu_int8": run_on_gpu(base, gpu, dtype="int8").energy_per_token_j,
            "gpu_fp16": run_on_gpu(base, gpu, dtype="bf16").energy_per_token_j}
    eng = engine45_dense_j_per_token(base)
    refs["engine45_int8"], refs["engine45_fp16"] = eng["int8"], eng["fp16"]
    rows = []
    for r in rates:
        acts = at_rate(template, float(r), tokens=tokens, steps=steps)
        for chip in chips:
            res = run_on_chip(acts, chip)
            dyn = sum(l.compute_j + l.memory_j + l.routing_j for l in res.layers) / res.tokens
            tot = res.energy_per_token_j
            rows.append({"events_per_slot": float(r), "platform": chip.name, "total_j": tot, "dynamic_j": dyn,
                         "vs_gpu_int8": tot / refs["gpu_int8"], "vs_gpu_fp16": tot / refs["gpu_fp16"],
                         "vs_engine45_int8": dyn / refs["engine45_int8"],
                         "vs_engine45_fp16": dyn / refs["engine45_fp16"],
                         **{f"ref_{k}_j": v for k, v in refs.items()}, "gpu": gpu.name})
    return rows


def crossing(x: Sequence[float], y: Sequence[float]) -> float | None:
    """First ``x`` where ``y`` rises through 1 (linear interpolation); 0 if ``y[0] >= 1``; None if never."""
    x, y = np.asarray(x, float), np.asarray(y, float)
    if y[0] >= 1.0:
        return 0.0
    above = np.nonzero(y >= 1.0)[0]
    if not len(above):
        return None
    i = int(above[0])
    return float(x[i - 1] + (1.0 - y[i - 1]) * (x[i] - x[i - 1]) / (y[i] - y[i - 1]))


def breakeven_table(rows: Sequence[dict]) -> list[dict]:
    """Per chip: spikes per slot at which it stops being cheaper than each dense reference.

    Cell values: a number in (0, 3]; ``0`` = never cheaper at any rate; ``> 3`` = cheaper over
    the whole sweep (as text).
    """
    out = []
    for name in dict.fromkeys(r["platform"] for r in rows):
        pts = sorted((r for r in rows if r["platform"] == name), key=lambda r: r["events_per_slot"])
        x = [p["events_per_slot"] for p in pts]
        row: dict = {"platform": name}
        for ref in REFERENCES:
            c = crossing(x, [p[f"vs_{ref}"] for p in pts])
            row[f"breakeven_vs_{ref}"] = f"> {x[-1]:g}" if c is None else ("never cheaper" if c == 0.0 else round(c, 3))
        out.append(row)
    return out


def waterfall(acts: Sequence[Activity]) -> list[dict]:
    """The report's ratios, then ours with each omitted cost added (FP16 and INT8 dense / spiking).

    Returns rows ``{"step", "spiking_pj_per_mac", "fp16_pj_per_mac", "int8_pj_per_mac",
    "ratio_fp16", "ratio_int8"}``; energies per dense MAC of the priced layers, on
    ``generic_async`` at 45 nm (128 KB per core). Dense engines pay their MAC only in the
    compute-only step and their weight fetch from the next step on.
    """
    acts = list(acts)
    rep = report_estimate()
    t = HOROWITZ_45NM
    chip = generic_async(node_nm=45.0)
    res = run_on_chip(acts, chip)
    dense = float(sum(a.dense_macs for a in acts))
    weight_read = t.sram_pj_per_byte(chip.synaptic_bytes_per_core)
    acc_rmw = 2.0 * t.sram_read_pj(chip.max_neurons_per_core * 4, 32)
    wfrac = weight_read / (weight_read + acc_rmw)

    def tot(key: str) -> float:
        return sum(l.details.get(key, 0.0) for l in res.layers) * 1e12 / dense

    compute = sum(l.compute_j for l in res.layers) * 1e12 / dense
    weight = tot("fetch_j") * wfrac + tot("overfetch_j")
    acc = tot("fetch_j") * (1.0 - wfrac)
    routing = sum(l.routing_j for l in res.layers) * 1e12 / dense
    static = sum(l.static_j for l in res.layers) * 1e12 / dense
    b = t.sram_pj_per_byte(chip.synaptic_bytes_per_core)
    steps = [
        ("report: INT8 add x spikes per active channel", rep.spiking_pj, rep.fp16_mac_pj, rep.int8_mac_pj, True),
        ("compute only (32-bit accumulate, neurons, partial sums)", compute, t.fp16_mac, t.int8_mac, False),
        ("+ weight fetch (incl. block over-fetch)", compute + weight, t.fp16_mac + 2 * b, t.int8_mac + b, False),
        ("+ accumulator read-modify-write", compute + weight + acc, t.fp16_mac + 2 * b, t.int8_mac + b, False),
        ("+ routing (delivery, hops, handshakes)", compute + weight + acc + routing, t.fp16_mac + 2 * b,
         t.int8_mac + b, False),
        ("+ static power x latency", compute + weight + acc + routing + static, t.fp16_mac + 2 * b, t.int8_mac + b,
         False),
    ]
    rows = []
    for label, s, f16, i8, is_report in steps:
        rows.append({"step": label, "spiking_pj_per_mac": s, "fp16_pj_per_mac": f16, "int8_pj_per_mac": i8,
                     "ratio_fp16": rep.ratio_vs_fp16 if is_report else f16 / s,
                     "ratio_int8": rep.ratio_vs_int8 if is_report else i8 / s})
    return rows
