"""Figures: spike rasters, count and V_th histograms, per-layer bars, encoder comparison,
k sweep, step coverage and energy breakdown.

Every ``plot_*`` function returns a :class:`matplotlib.figure.Figure` (Agg canvas, no
pyplot global state, safe in threads and on headless machines); :func:`save_figure` writes
it as PNG and SVG atomically; :func:`write_all_plots` writes the whole set into a folder.
Reference values drawn on the figures are the SpikingBrain-7B report's
(SpikingBrain report, arXiv:2509.05276).
"""
import math
import os
import re
from pathlib import Path
from typing import Any, Sequence

import numpy as np
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter

import encoders

from .plot_base import (  # noqa: F401  (re-exported)
    DPI,
    ENERGY_COLORS,
    ENERGY_PARTS,
    NEG_COLOR,
    POS_COLOR,
    REPORT_GT16,
    REPORT_LE7,
    REPORT_SILENCE,
    REPORT_SPARSITY,
    ROLE_COLORS,
    SCHEME_COLORS,
    _figure,
    _role_color,
    save_figure,
)
from .energy_plots import plot_energy_breakdown  # noqa: F401  (re-exported)
from .plots_raster import plot_raster, plot_token_raster, token_texts  # noqa: F401  (re-exported)
from .stats import DEFAULT_BUDGETS, REPORT_WINDOW, SpikeStats, vth_bin_edges
from .sweep import REPORT_TABLE11

# ----------------------------------------------------------------------------- statistics


def plot_count_histogram(stats: SpikeStats, scope: str = "model", max_abs: int = 40) -> Figure:
    """Histogram of |s| (log y) with the [0, 7] and > 16 fractions and the report's values."""
    st = stats.group(scope)
    if not st.values:
        raise ValueError("no values in the statistics")
    h = st.abs_hist()
    frac = h / st.values
    shown = frac[: max_abs + 1]
    tail = 1.0 - shown.sum()
    fig = _figure(10, 5.5)
    ax = fig.add_subplot()
    tail_x = max_abs + 2.5  # the tail bar stands apart from the per-value bars
    ax.axvspan(-0.5, 7.5, color="#2ca02c", alpha=0.08)
    ax.axvspan(16.5, tail_x + 0.7, color="#ff7f0e", alpha=0.08)
    x = np.arange(max_abs + 1)
    colors = np.where(x <= 7, "#2ca02c", np.where(x > 16, "#ff7f0e", "#7f7f7f"))
    ax.bar(x, np.where(shown > 0, shown, np.nan), color=colors, width=0.85)
    ax.bar([tail_x], [tail if tail > 0 else np.nan], color="#d62728", width=0.85)
    ax.set_yscale("log")
    ax.set_xlim(-0.8, tail_x + 0.8)
    ticks = list(range(0, max_abs + 1, 4 if max_abs > 20 else 1))
    ax.set_xticks(ticks + [tail_x], [str(t) for t in ticks] + [f">{max_abs}"])
    legend = [("#2ca02c", "|s| <= 7 (fits 3 bits)"), ("#7f7f7f", "8 <= |s| <= 16"), ("#ff7f0e", "|s| > 16"),
              ("#d62728", f"|s| > {max_abs}, all in one bar")]
    ax.legend(handles=[Patch(color=c, label=t) for c, t in legend], loc="upper center", fontsize=9)
    ax.set_xlabel("|spike count| |s| per (token, channel)")
    ax.set_ylabel("fraction of values (log scale)")
    le7, gt16 = st.frac_abs_le(7), st.frac_abs_gt(16)
    ax.set_title(f"Spike count magnitudes - {scope} ({st.values:,} values, max |s| = {st.max_abs()})")
    text = (f"|s| in [0, 7]: {le7:.1%}   (7B report: {REPORT_LE7:.1%})\n"
            f"|s| > 16: {gt16:.2%}   (7B report: about {REPORT_GT16:.0%})\n"
            f"s = 0 (silent): {st.silence():.1%}   (7B report: {REPORT_SILENCE:.1%})")
    ax.text(0.98, 0.97, text, transform=ax.transAxes, ha="right", va="top", fontsize=10,
            bbox={"boxstyle": "round", "facecolor": "white", "edgecolor": "#999999"})
    ax.grid(axis="y", alpha=0.3)
    return fig


def _block_of(name: str) -> int | None:
    m = re.search(r"\.(\d+)\.", name)
    return int(m.group(1)) if m else None


def plot_layer_bars(stats: SpikeStats) -> Figure:
    """Per-layer sparsity (window) and silence as bars coloured by role, with model and report lines."""
    layers = stats.ordered_layers()
    if not layers:
        raise ValueError("no layers in the statistics")
    scheme, T = stats.window
    spars = np.array([ls.state.sparsity(scheme, T) for ls in layers])
    sil = np.array([ls.state.silence() for ls in layers])
    colors = [_role_color(ls.role) for ls in layers]
    x = np.arange(len(layers))
    fig = _figure(float(np.clip(6 + 0.045 * len(layers), 10, 16)), 7.5)
    ax1, ax2 = fig.subplots(2, 1, sharex=True)
    model = stats.summary()
    for ax, vals, ref, tot, label in (
        (ax1, spars, REPORT_SPARSITY, model["sparsity"], f"sparsity ({scheme}, T = {T})"),
        (ax2, sil, REPORT_SILENCE, model["silence"], "silence (fraction of channels with s = 0)"),
    ):
        ax.bar(x, vals, color=colors, width=0.85)
        ax.axhline(tot, color="black", lw=1.2, label=f"model: {tot:.1%}")
        ax.axhline(ref, color="black", lw=1.2, ls="--", label=f"7B report: {ref:.1%}")
        ax.set_ylabel(label.split(" (")[0] + " (fraction)")
        ax.set_ylim(0, min(1.0, 1.3 * max(float(np.nanmax(vals)), ref, tot)))
        ax.set_xlim(-1, len(layers))
        ax.grid(axis="y", alpha=0.3)
        ax.set_title(label, fontsize=10, loc="left")
        ax.legend(loc="upper right", fontsize=8, ncols=2)
    blocks = [_block_of(ls.name) for ls in layers]
    starts = [i for i, b in enumerate(blocks) if b is not None and (i == 0 or blocks[i - 1] != b)]
    if len(starts) > 1:
        every = max(1, len(starts) // 15)
        ax2.set_xticks([starts[j] for j in range(0, len(starts), every)],
                       [str(blocks[starts[j]]) for j in range(0, len(starts), every)])
        ax2.set_xlabel("transformer block (bars: that block's linear layers in order)")
    else:
        ax2.set_xlabel("layer (trace order)")
    roles = [r for r in stats.roles]
    fig.legend(handles=[Patch(color=_role_color(r), label=r) for r in roles], loc="outside right upper",
               title="role", fontsize=8)
    fig.suptitle(f"Per-layer sparsity and silence ({len(layers)} layers, {model['tokens']} tokens)")
    return fig


def plot_vth(stats: SpikeStats) -> Figure:
    """V_th distribution: per-role histograms (log x) and per-layer median with 5-95 % band."""
    layers = [ls for ls in stats.ordered_layers() if ls.state.vth_n]
    if not layers:
        raise ValueError("no V_th recorded in the statistics")
    fig = _figure(13, 5)
    ax1, ax2 = fig.subplots(1, 2, width_ratios=[1, 1.4])
    edges = vth_bin_edges()
    curves: dict[bytes, list[str]] = {}  # roles fed the same input (q/k/v, gate/up) share one curve
    for role in stats.roles:
        g = stats.group(role)
        if g.vth_n:
            curves.setdefault(g.vth_hist.tobytes() + str(g.vth_n).encode(), []).append(role)
    for roles in curves.values():
        g = stats.group(roles[0])
        name = roles[0] if len(roles) == 1 else " = ".join(roles) + " (same input)"
        ax1.stairs(g.vth_hist[1:-1] / g.vth_n, edges, label=f"{name}, mean {g.vth_mean():.3g}",
                   color=_role_color(roles[0]), lw=1.5)
    g = stats.group()
    lo, hi = g.vth_percentile(0), g.vth_percentile(100)
    ax1.set_xscale("log")
    ax1.set_xlim(lo / 2, hi * 2)
    ax1.set_xlabel("V_th (activation units, log scale)")
    ax1.set_ylabel("fraction of tokens per bin (20 bins/decade)")
    ax1.set_title("V_th distribution by role", fontsize=11)
    ax1.legend(fontsize=8)
    ax1.grid(alpha=0.3)
    x = np.arange(len(layers))
    med = np.array([ls.state.vth_percentile(50) for ls in layers])
    p5 = np.array([ls.state.vth_percentile(5) for ls in layers])
    p95 = np.array([ls.state.vth_percentile(95) for ls in layers])
    ax2.fill_between(x, p5, p95, color="#bbbbbb", alpha=0.5, label="5-95 %", step="mid")
    ax2.scatter(x, med, c=[_role_color(ls.role) for ls in layers], s=10, zorder=3, label="median")
    ax2.set_yscale("log")
    ax2.set_xlabel("layer (trace order)")
    ax2.set_ylabel("V_th (activation units, log scale)")
    ax2.set_title("V_th per layer (dots coloured by role)", fontsize=11)
    ax2.legend(fontsize=8, loc="upper left")
    ax2.grid(alpha=0.3)
    fig.suptitle(f"Adaptive threshold V_th = mean|x|/k "
                 f"(model mean {g.vth_mean():.3g}, median {g.vth_percentile(50):.3g})")
    return fig


def plot_steps_coverage(stats: SpikeStats, scope: str = "model", max_steps: int = 16) -> Figure:
    """Fraction of values each scheme carries exactly within T steps, for T = 0..max_steps."""
    st = stats.group(scope)
    if not st.values:
        raise ValueError("no values in the statistics")
    fig = _figure(9, 5.5)
    ax = fig.add_subplot()
    Ts = np.arange(max_steps + 1)
    for scheme in encoders.SCHEMES:
        edges, hist = st.steps_hist(scheme)
        cov = np.array([hist[edges <= t].sum() for t in Ts]) / st.values
        split = encoders.get_scheme(scheme).needs_sign_split
        twin = encoders.get_scheme(scheme).signed_twin
        ax.plot(Ts, cov, marker="x" if split else "o", ms=8 if split else 4, ls="--" if split else "-",
                zorder=3 if split else 2, color=SCHEME_COLORS[scheme],
                label=f"{scheme} (sign-split: same as {twin})" if split else scheme)
        b = DEFAULT_BUDGETS[scheme]
        if b <= max_steps:
            ax.plot([b], [cov[b]], marker="s", ms=9, mfc="none", color=SCHEME_COLORS[scheme])
    ax.axhline(REPORT_LE7, color="black", ls="--", lw=1, label=f"7B report: {REPORT_LE7:.1%} with |s| <= 7")
    ax.set_xlabel("steps T per token")
    ax.set_ylabel("fraction of values carried exactly")
    ax.set_ylim(0, 1.02)
    ax.set_xticks(Ts)
    ax.grid(alpha=0.3)
    ax.legend(fontsize=9, loc="lower right", title="scheme (square: default budget)")
    ax.set_title(f"Steps each value needs - {scope}")
    return fig


# ----------------------------------------------------------------------------- comparison, sweep, energy


def _short(v: float) -> str:
    """3 significant digits with a k/M/G suffix (bar labels)."""
    for scale, suffix in ((1e9, "G"), (1e6, "M"), (1e3, "k")):
        if abs(v) >= scale:
            return f"{v / scale:.3g}{suffix}"
    return f"{v:.3g}"


def plot_encoder_comparison(rows: list[dict[str, Any]]) -> Figure:
    """Bars from :func:`analysis.compare.compare_encoders` rows (model level)."""
    if not rows or "layer" in rows[0]:
        raise ValueError("give model-level comparison rows (compare_encoders(..., per_layer=False))")
    names = [r["scheme"] for r in rows]
    colors = [SCHEME_COLORS.get(n, "#777777") for n in names]
    labels = [f"{r['scheme']}\nneeds T={r['steps_needed']}\nbudget T={r['budget_steps']}" for r in rows]
    x = np.arange(len(rows))
    fig = _figure(13, 8.5)
    (a, b), (c, d) = fig.subplots(2, 2)
    w = 0.38
    for ax, key, title, ylabel, fmt in (
        (a, "events_per_token", "Spikes per token", "spikes per token (all layers)", _short),
        (b, "sparsity", "Sparsity", "fraction of silent (step, line) slots", "{:.1%}".format),
    ):
        v1 = [r[key] for r in rows]
        v2 = [r[key + "_at_budget"] for r in rows]
        bars1 = ax.bar(x - w / 2, v1, w, color=colors, label="lossless T (per layer)")
        bars2 = ax.bar(x + w / 2, v2, w, color=colors, alpha=0.45, hatch="//", label="at budget T (clipped)")
        for bars, vals in ((bars1, v1), (bars2, v2)):
            ax.bar_label(bars, [fmt(v) for v in vals], fontsize=7, padding=2)
        ax.set_xticks(x, labels, fontsize=8)
        ax.set_ylabel(ylabel)
        ax.set_title(title, fontsize=11)
        ax.legend(fontsize=8, loc="upper left", ncols=2)
        ax.grid(axis="y", alpha=0.3)
        ax.set_ylim(0, 1.3 * max(max(v1), max(v2), 1e-12))
    a.yaxis.set_major_formatter(EngFormatter(sep=""))
    vals = [100 * r["clipped_fraction_at_budget"] for r in rows]
    bars = c.bar(x, vals, color=colors)
    c.bar_label(bars, [f"{v:.2f} %" for v in vals], fontsize=8, padding=2)
    c.set_xticks(x, [f"{r['scheme']}\n{r['budget_range']}" for r in rows], fontsize=8)
    c.set_ylabel("values clipped at the budget (%)")
    c.set_title("Clipped values at the step budget (range carried below name)", fontsize=11)
    c.grid(axis="y", alpha=0.3)
    c.set_ylim(0, 1.2 * max(max(vals), 1e-3))
    for r in rows:
        rate = np.asarray(r["firing_rate_per_step"])
        d.plot(np.arange(len(rate)), rate, marker="o", label=f"{r['scheme']} (T={len(rate)})",
               color=SCHEME_COLORS.get(r["scheme"], "#777777"))
    d.set_xlabel("step within the token window (0 first; bitwise: MSB first)")
    d.set_ylabel("spikes per line per step")
    d.set_title("Firing rate per step at the budget", fontsize=11)
    d.legend(fontsize=8)
    d.grid(alpha=0.3)
    fig.suptitle("Encoder comparison on the same spike counts (binary and bitwise sign-split: 2 lines per channel)")
    return fig


def plot_k_sweep(rows: list[dict[str, Any]], model: str = "this model") -> Figure:
    """k-sweep curves (sparsity, |s| <= 7 fraction, perplexity if any) with the report's 7B points."""
    if not rows:
        raise ValueError("no k-sweep rows")
    ks = np.array([r["k"] for r in rows])
    has_ppl = any(not math.isnan(r.get("perplexity", math.nan)) for r in rows)
    fig = _figure(15 if has_ppl else 11, 4.8)
    axes = fig.subplots(1, 3 if has_ppl else 2)
    ref_k = np.array(sorted(REPORT_TABLE11))
    for ax, key, ref_i, ylabel in ((axes[0], "sparsity", 0, "sparsity (3-step bitwise-signed window)"),
                                   (axes[1], "frac_abs_le_7", 1, "fraction of values with |s| <= 7")):
        ax.plot(ks, [r[key] for r in rows], marker="o", lw=2, label=model, color="#1f77b4")
        ax.plot(ref_k, [REPORT_TABLE11[k][ref_i] for k in ref_k], marker="s", ls="--", mfc="none",
                color="black", label="SpikingBrain-7B (report Table 11)")
        ax.set_xlabel("k (V_th = mean|x| / k)")
        ax.set_ylabel(ylabel)
        ax.grid(alpha=0.3)
        ax.legend(fontsize=9)
    axes[0].set_title("Sparsity vs k", fontsize=11)
    axes[1].set_title("Counts that fit 3 bits vs k", fontsize=11)
    if has_ppl:
        axes[2].plot(ks, [r["perplexity"] for r in rows], marker="o", lw=2, color="#d62728", label=f"{model}, spiking")
        ref = rows[0].get("float_perplexity", math.nan)
        if not math.isnan(ref):
            axes[2].axhline(ref, color="black", ls="--", lw=1.2, label=f"{model}, float: {ref:.2f}")
        axes[2].legend(fontsize=9)
        axes[2].set_xlabel("k (V_th = mean|x| / k)")
        axes[2].set_ylabel("perplexity (spiking forward)")
        axes[2].set_title("Perplexity vs k", fontsize=11)
        axes[2].grid(alpha=0.3)
    fig.suptitle(f"k sweep: {model} vs the report's SpikingBrain-7B")
    return fig


def default_raster_layer(stats: SpikeStats) -> str:
    """A representative layer for rasters: the middle block's MLP up projection, else the middle layer."""
    layers = stats.ordered_layers()
    if not layers:
        raise ValueError("no layers in the statistics")
    ups = [ls for ls in layers if ls.role == "up"]
    pool = ups or layers
    return pool[len(pool) // 2].name


def write_all_plots(
    stats: SpikeStats,
    out_dir: str | os.PathLike,
    trace: Any = None,
    comparison: list[dict[str, Any]] | None = None,
    sweep: list[dict[str, Any]] | None = None,
    energy: list[dict[str, Any]] | None = None,
    raster_layer: str | None = None,
    raster_scheme: str = REPORT_WINDOW[0],
    raster_T: int | None = REPORT_WINDOW[1],
    model: str = "this model",
    formats: Sequence[str] = ("png", "svg"),
) -> dict[str, list[Path]]:
    """Write every figure the inputs allow into ``out_dir`` (created if missing).

    Args:
        stats: the statistics (count histogram, layer bars, V_th, step coverage; the
            encoder comparison is computed from them unless ``comparison`` is given).
        trace: a ``SpikeTrace`` (or anything with ``counts(name)``) for the rasters.
        sweep: :func:`analysis.sweep.k_sweep` rows; energy: rows for
            :func:`plot_energy_breakdown`.

    Returns:
        ``{figure name: [paths]}``.
    """
    from .compare import compare_encoders

    out = Path(os.fspath(out_dir))
    out.mkdir(parents=True, exist_ok=True)
    figs: dict[str, Figure] = {
        "count_histogram": plot_count_histogram(stats),
        "layer_sparsity_silence": plot_layer_bars(stats),
        "steps_coverage": plot_steps_coverage(stats),
        "encoder_comparison": plot_encoder_comparison(comparison or compare_encoders(stats)),
    }
    if any(ls.state.vth_n for ls in stats.layers.values()):
        figs["vth_distribution"] = plot_vth(stats)
    if trace is not None:
        name = raster_layer or default_raster_layer(stats)
        counts = np.asarray(trace.counts(name))
        mid = counts.shape[0] // 2
        labels = token_texts(trace, list(range(min(16, counts.shape[0]))) + [mid])
        figs["raster"] = plot_raster(counts, raster_scheme, raster_T, layer=name, token_labels=labels)
        figs["raster_token"] = plot_token_raster(counts, mid, raster_scheme, raster_T, layer=name,
                                                 token_label=None if labels is None else labels[mid])
    if sweep:
        figs["k_sweep"] = plot_k_sweep(sweep, model)
    if energy:
        figs["energy_breakdown"] = plot_energy_breakdown(energy)
    return {name: save_figure(fig, out / name, formats) for name, fig in figs.items()}
