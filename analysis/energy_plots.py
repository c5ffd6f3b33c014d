"""Energy figures: breakdown by component, J/token with ranges, tornado, break-even, waterfall.

Each function returns a :class:`matplotlib.figure.Figure` (Agg, no pyplot state); save it with
:func:`analysis.plots.save_figure`. Inputs are the plain rows of :mod:`hw_models.ranges` and
:mod:`hw_models.breakeven`.
"""
from __future__ import annotations

import math
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure

from .plot_base import DPI, ENERGY_COLORS, ENERGY_PARTS, _figure  # noqa: F401  (DPI, ENERGY_*: re-exported)

KIND_COLORS = {"chip": "#4c72b0", "gpu": "#c44e52"}
CHIP_COLORS = ["#4c72b0", "#dd8452", "#55a868", "#8172b2", "#937860", "#da8bc3"]
REF_STYLES = {"int8": "-", "fp16": "--"}


def _check_rows(rows: Sequence[dict], keys: Sequence[str], what: str) -> None:
    if not rows:
        raise ValueError(f"no {what} rows")
    for r in rows:
        for k in keys:
            if k not in r:
                raise ValueError(f"{what} row without {k!r}: {r}")


def plot_energy_ranges(rows: Sequence[dict[str, Any]], title: str | None = None) -> Figure:
    """J/token and s/token per platform as bars with [low, high] error bars (log scale).

    ``rows``: :func:`hw_models.ranges.platform_row` dicts. The bars are the table's values
    (chips: the op model incl. static power; GPUs: power x time in the row's regime).
    """
    _check_rows(rows, ("platform", "kind", "energy_per_token_j", "energy_per_token_j_low", "energy_per_token_j_high",
                       "latency_per_token_s", "latency_per_token_s_low", "latency_per_token_s_high"), "energy")
    fig = _figure(float(np.clip(4 + 1.6 * len(rows), 11, 18)), 5.0)
    axes = fig.subplots(1, 2)
    names = [r["platform"] + (f"\n({r['regime']})" if r.get("regime") else "") for r in rows]
    x = np.arange(len(rows))
    colors = [KIND_COLORS.get(r["kind"], "#777777") for r in rows]
    for ax, key, label in ((axes[0], "energy_per_token_j", "J per token"), (axes[1], "latency_per_token_s", "s per token")):
        v = np.array([float(r[key]) for r in rows])
        lo = np.array([float(r[f"{key}_low"]) for r in rows])
        hi = np.array([float(r[f"{key}_high"]) for r in rows])
        ax.bar(x, v, color=colors, width=0.6)
        ax.errorbar(x, v, yerr=[np.maximum(v - lo, 0), np.maximum(hi - v, 0)], fmt="none", ecolor="black", capsize=5,
                    lw=1.2)
        for xi, vi in zip(x, v):
            ax.text(xi + 0.32, vi, f"{vi:.3g}", fontsize=8, va="center", ha="left")
        ax.set_yscale("log")
        ax.set_xticks(x, names, rotation=20, ha="right", fontsize=9)
        ax.set_ylabel(f"{label} (log scale)")
        ax.grid(axis="y", which="both", alpha=0.3)
    axes[0].set_title("Energy per token: value and [low, high]", fontsize=11)
    axes[1].set_title("Latency per token: value and [low, high]", fontsize=11)
    from matplotlib.patches import Patch

    axes[0].legend(handles=[Patch(color=KIND_COLORS["chip"], label="chip (op model + static)"),
                            Patch(color=KIND_COLORS["gpu"], label="GPU (power x time)")], fontsize=8, loc="best")
    fig.suptitle(title or "Energy and latency per token, same view as the table (error bars: declared ranges)")
    return fig


def plot_tornado(rows: Sequence[dict[str, Any]], chip: str, top: int = 12) -> Figure:
    """One-at-a-time sensitivity of ``chip``'s J/token (rows of :func:`hw_models.ranges.tornado`)."""
    _check_rows(rows, ("constant", "j_low", "j_high", "j_base", "low", "high"), "tornado")
    rows = list(rows)[:top][::-1]
    base = float(rows[0]["j_base"])
    fig = _figure(11, 1.0 + 0.45 * len(rows))
    ax = fig.subplots()
    y = np.arange(len(rows))
    for yi, r in zip(y, rows):
        lo, hi = float(r["j_low"]), float(r["j_high"])
        ax.barh(yi, lo - base, left=base, color="#4c72b0", height=0.6)
        ax.barh(yi, hi - base, left=base, color="#dd8452", height=0.6)
    ax.axvline(base, color="black", lw=1)
    ax.set_yticks(y, [f"{r['constant']}  [{r['low']:.3g} .. {r['high']:.3g}]" for r in rows], fontsize=9)
    ax.set_xscale("log")
    ax.set_xlabel(f"{chip} J per token with one constant at its low (blue) or high (orange) bound; line = preset")
    ax.grid(axis="x", which="both", alpha=0.3)
    ax.set_title(f"Tornado: which declared ranges move {chip}'s J/token most", fontsize=11)
    return fig


def plot_breakeven(
    rows: Sequence[dict[str, Any]],
    this_run: float | None = None,
    report_7b: float | None = None,
    band: tuple[float, float] | None = None,
) -> Figure:
    """Spiking / dense energy ratio versus spikes per input slot (rows of ``breakeven_curves``).

    Left: chip total J/token over the GPU's (INT8 solid, 16-bit dashed); right: chip dynamic
    J/token over the generic 45 nm dense engine's. Ratio < 1: the spiking chip is cheaper.
    """
    _check_rows(rows, ("events_per_slot", "platform", "vs_gpu_int8", "vs_gpu_fp16", "vs_engine45_int8",
                       "vs_engine45_fp16"), "break-even")
    fig = _figure(13, 5.2)
    axes = fig.subplots(1, 2)
    names = list(dict.fromkeys(r["platform"] for r in rows))
    gpu = rows[0].get("gpu", "GPU")
    for ax, pre, title in ((axes[0], "gpu", f"vs dense on {gpu} (total J/token, batch 1)"),
                           (axes[1], "engine45", "vs dense on the generic 45 nm engine (dynamic J/token)")):
        for i, name in enumerate(names):
            pts = sorted((r for r in rows if r["platform"] == name), key=lambda r: r["events_per_slot"])
            x = [p["events_per_slot"] for p in pts]
            for ref, ls in REF_STYLES.items():
                xy = [(xi, p[f"vs_{pre}_{ref}"]) for xi, p in zip(x, pts) if p[f"vs_{pre}_{ref}"] > 0]  # log axis: no zeros
                ax.plot([a for a, _ in xy], [b for _, b in xy], ls, color=CHIP_COLORS[i % len(CHIP_COLORS)],
                        label=f"{name} / {ref.upper() if ref == 'int8' else '16-bit'}" if pre == "gpu" else None)
        ax.axhline(1.0, color="black", lw=1)
        if band:
            ax.axvspan(band[0], band[1], color="#cccccc", alpha=0.4,
                       label="Dampfhoffer et al. 2023 band" if pre == "gpu" else None)
        if report_7b is not None:
            ax.axvline(report_7b, color="#2ca02c", lw=1.5, ls=":",
                       label=f"report's 7B: {report_7b:.2f}" if pre == "gpu" else None)
        if this_run is not None:
            ax.axvline(this_run, color="#d62728", lw=1.5, label=f"this run: {this_run:.2f}" if pre == "gpu" else None)
        ax.set_yscale("log")
        ax.set_xlabel("spikes per input slot (token x channel)")
        ax.set_title(title, fontsize=11)
        ax.grid(which="both", alpha=0.3)
    axes[0].set_ylabel("spiking / dense energy (< 1: spiking cheaper)")
    axes[1].set_ylabel("spiking / dense dynamic energy (0 spikes: 0, not drawn)")
    fig.legend(loc="outside right center", fontsize=8)
    fig.suptitle("Break-even: where each chip stops beating dense inference")
    return fig


def plot_waterfall(rows: Sequence[dict[str, Any]]) -> Figure:
    """Dense / spiking ratio (FP16 and INT8) at each step of :func:`hw_models.breakeven.waterfall`."""
    _check_rows(rows, ("step", "ratio_fp16", "ratio_int8"), "waterfall")
    fig = _figure(12, 5.2)
    ax = fig.subplots()
    x = np.arange(len(rows))
    w = 0.38
    f16 = [float(r["ratio_fp16"]) for r in rows]
    i8 = [float(r["ratio_int8"]) for r in rows]
    import textwrap

    ax.bar(x - w / 2, f16, w, color="#4c72b0", label="dense FP16 / spiking")
    ax.bar(x + w / 2, i8, w, color="#dd8452", label="dense INT8 / spiking")
    for xi, a, b in zip(x, f16, i8):
        ax.text(xi - w / 2, a, f"{a:.4g}x", ha="center", va="bottom", fontsize=8)
        ax.text(xi + w / 2, b, f"{b:.4g}x", ha="center", va="bottom", fontsize=8)
    ax.axhline(1.0, color="black", lw=1)
    ax.set_yscale("log")
    ax.set_xticks(x, [textwrap.fill(r["step"], 24) for r in rows], fontsize=8, rotation=0)
    ax.set_ylabel("how many times cheaper spiking is (log; < 1: dearer)")
    ax.grid(axis="y", which="both", alpha=0.3)
    ax.legend(fontsize=9)
    ax.set_title("From the report's 43.48x to ours: each cost the report leaves out, added in turn "
                 "(generic engine, 45 nm)", fontsize=11)
    return fig


_SI = [(1.0, "J"), (1e-3, "mJ"), (1e-6, "uJ"), (1e-9, "nJ"), (1e-12, "pJ")]


def plot_energy_breakdown(rows: list[dict[str, Any]], per: str = "token", title: str | None = None) -> Figure:
    """Stacked bars of energy by component per platform.

    Args:
        rows: ``[{"platform": str, "compute": J, "memory": J, "routing": J, "static": J}, ...]``
            (energies in joules; missing parts count as 0, other numeric keys are ignored).
        per: what the energies are per (axis label), e.g. ``"token"``.
    """
    if not rows:
        raise ValueError("no energy rows")
    for r in rows:
        if "platform" not in r:
            raise ValueError(f"energy row without 'platform': {r}")
        for p in ENERGY_PARTS:
            v = r.get(p, 0.0)
            if not isinstance(v, (int, float, np.integer, np.floating)) or not math.isfinite(v) or v < 0:
                raise ValueError(f"{r['platform']}: {p} must be a finite non-negative number of joules, got {v!r}")
    totals = np.array([sum(float(r.get(p, 0.0)) for p in ENERGY_PARTS) for r in rows])
    top = totals.max() if totals.max() > 0 else 1.0
    scale, unit = next(((s, u) for s, u in _SI if top >= s), _SI[-1])
    fig = _figure(float(np.clip(6 + 1.8 * len(rows), 11, 20)), 5.5)
    ax, share = fig.subplots(1, 2)
    x = np.arange(len(rows))
    parts = {p: np.array([float(r.get(p, 0.0)) for r in rows]) for p in ENERGY_PARTS}
    names = [r["platform"] for r in rows]
    rot = {"rotation": 20, "ha": "right"} if len(rows) > 4 else {}
    bottom, bottom_share = np.zeros(len(rows)), np.zeros(len(rows))
    safe_tot = np.where(totals > 0, totals, 1.0)
    for p in ENERGY_PARTS:
        ax.bar(x, parts[p] / scale, bottom=bottom, color=ENERGY_COLORS[p], label=p, width=0.65)
        share.bar(x, 100 * parts[p] / safe_tot, bottom=bottom_share, color=ENERGY_COLORS[p], width=0.65)
        bottom += parts[p] / scale
        bottom_share += 100 * parts[p] / safe_tot
    for xi, t in zip(x, totals / scale):
        ax.text(xi, t, f"{t:.3g}", ha="center", va="bottom", fontsize=9)
    ax.set_xticks(x, names, **rot)
    ax.set_ylabel(f"energy per {per} ({unit})")
    ax.set_xlabel("platform")
    ax.margins(y=0.12)
    ax.grid(axis="y", alpha=0.3)
    ax.legend(title="component", fontsize=9)
    ax.set_title(f"Total (numbers: {unit} per {per})", fontsize=11)
    share.set_xticks(x, names, **rot)
    share.set_ylim(0, 100)
    share.set_ylabel("share of the platform's energy (%)")
    share.set_xlabel("platform")
    share.set_title("Composition (each bar = 100 %)", fontsize=11)
    fig.suptitle(title or f"Energy per {per} by component (GPU bars: op + byte view; the table's GPU J/{per} is "
                 "power x time, shown in energy_ranges)")
    return fig
