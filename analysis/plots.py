"""Figures: spike rasters, count and V_th histograms, per-layer bars, encoder comparison,
k sweep, step coverage and energy breakdown.

Every ``plot_*`` function returns a :class:`matplotlib.figure.Figure` (Agg canvas, no
pyplot global state, safe in threads and on headless machines); :func:`save_figure` writes
it as PNG and SVG atomically; :func:`write_all_plots` writes the whole set into a folder.
Reference values drawn on the figures are the SpikingBrain-7B report's
(shared/reference/spikingbrain.md, section 3).
"""
from __future__ import annotations

import math
import os
import re
from pathlib import Path
from typing import Any, Mapping, Sequence

import numpy as np
from matplotlib.colors import ListedColormap
from matplotlib.figure import Figure
from matplotlib.patches import Patch
from matplotlib.ticker import EngFormatter

import encoders

from .energy_plots import ENERGY_COLORS, ENERGY_PARTS, plot_energy_breakdown  # noqa: F401 (re-exported)
from .stats import (
    DEFAULT_BUDGETS,
    REPORT_7B,
    REPORT_WINDOW,
    ROLES,
    SPLIT_SCHEMES,
    SpikeStats,
    atomic_output,
    vth_bin_edges,
    window_range,
)
from .sweep import REPORT_TABLE11

DPI = 100  # figures are sized in inches; PNG pixels = inches x DPI
REPORT_SPARSITY = REPORT_7B["sparsity"]  # report section 3: 3-step bitwise-ternary window
REPORT_SILENCE = REPORT_7B["silence"]  # report section 3: silent channels per token
REPORT_LE7 = REPORT_7B["frac_abs_le_7"]  # report section 3 / Fig. 9: |s| in [0, 7]
REPORT_GT16 = REPORT_7B["frac_abs_gt_16"]  # report section 3 / Fig. 9: about 1 % above 16

POS_COLOR, NEG_COLOR = "#c0392b", "#2166ac"  # spikes of positive / negative counts
ROLE_COLORS = dict(zip(ROLES, ["#1f77b4", "#ff7f0e", "#2ca02c", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]))
SCHEME_COLORS = dict(zip(encoders.SCHEMES, ["#4c72b0", "#55a868", "#c44e52", "#8172b2", "#ccb974"]))


def _figure(width: float, height: float) -> Figure:
    return Figure(figsize=(width, height), dpi=DPI, layout="constrained")


def _role_color(role: str) -> str:
    return ROLE_COLORS.get(role, "#17becf")


def save_figure(fig: Figure, path: str | os.PathLike, formats: Sequence[str] = ("png", "svg")) -> list[Path]:
    """Save ``fig`` as ``path`` with each suffix in ``formats`` (atomic: temp file, fsync, rename).

    Returns the written paths. The PNG has ``figsize * DPI`` pixels (no tight cropping).
    """
    base = Path(os.fspath(path))
    if base.suffix.lstrip(".") in ("png", "svg", "pdf"):
        base = base.with_suffix("")
    if not base.parent.is_dir():
        raise FileNotFoundError(f"folder {base.parent} does not exist")
    written = []
    for fmt in formats:
        if fmt not in ("png", "svg", "pdf"):
            raise ValueError(f"unsupported figure format {fmt!r}; use png, svg or pdf")
        target = base.with_name(base.name + "." + fmt)
        with atomic_output(target, overwrite=True) as tmp, open(tmp, "wb") as fh:
            fig.savefig(fh, format=fmt, dpi=DPI)
        written.append(target)
    return written


# ----------------------------------------------------------------------------- rasters


def _train_by_count_sign(counts: np.ndarray, scheme: str, T: int, bit_order: str) -> tuple[np.ndarray, int]:
    """Spike train [T, *shape] with each spike signed by its count's sign, and the clipped count."""
    lo, hi = window_range(scheme, T)
    c = counts.astype(np.int64)
    clipped = int(((c < lo) | (c > hi)).sum())
    c = np.clip(c, lo, hi)
    data = np.abs(c) if scheme in SPLIT_SCHEMES else c
    train = np.abs(encoders.encode(data, scheme, T=T, bit_order=bit_order)).astype(np.int8)
    return train * np.sign(c).astype(np.int8)[None], clipped


def _pick_channels(counts: np.ndarray, neurons: int, select: str, seed: int) -> np.ndarray:
    C = counts.shape[1]
    n = min(neurons, C)
    if select == "random":
        return np.sort(np.random.default_rng(seed).choice(C, size=n, replace=False))
    if select == "active":
        return np.sort(np.argsort(-np.count_nonzero(counts, axis=0), kind="stable")[:n])
    if select == "first":
        return np.arange(n)
    raise ValueError(f"select must be 'random', 'active' or 'first', got {select!r}")


def _window_T(counts: np.ndarray, scheme: str, T: int | None) -> int:
    if T is not None:
        return int(T)
    data = np.abs(counts) if scheme in SPLIT_SCHEMES else counts
    return max(1, encoders.default_steps(data, scheme))


_RASTER_CMAP = ListedColormap([NEG_COLOR, "#ffffff", POS_COLOR])


def plot_raster(
    counts: Any,
    scheme: str = REPORT_WINDOW[0],
    T: int | None = REPORT_WINDOW[1],
    layer: str = "",
    tokens: int | slice = 16,
    neurons: int = 64,
    select: str = "random",
    seed: int = 0,
    bit_order: str = "msb",
    token_labels: Mapping[int, str] | Sequence[str] | None = None,
) -> Figure:
    """Spike raster of one layer: x = time (token x step), y = sampled input channels.

    Spikes are coloured by the sign of the count they carry (red positive, blue negative):
    the spike polarity for ternary / bitwise-signed, the active line for sign-split schemes,
    the value's sign for two's complement. Counts outside the T-step window are clipped
    (the title says how many); ``T=None`` uses the Int2Spike default for the shown data.

    Args:
        counts: ``[tokens, channels]`` integer counts of one layer.
        tokens: the first N tokens, or a slice of token rows.
        neurons / select / seed: how many channels, chosen ``"random"`` (seeded), the most
            ``"active"``, or the ``"first"`` ones.
        token_labels: text of the token rows of ``counts``, indexed by row (a sequence, or a
            mapping such as :func:`token_texts` returns), shown under the token indices.
    """
    c = _as_2d(counts)
    rows = slice(0, tokens) if isinstance(tokens, (int, np.integer)) else tokens
    c = c[rows]
    if c.shape[0] == 0:
        raise ValueError("no tokens selected for the raster")
    ch = _pick_channels(c, neurons, select, seed)
    sub = c[:, ch]
    T = _window_T(sub, scheme, T)
    train, clipped = _train_by_count_sign(sub, scheme, T, bit_order)  # [T, tok, n]
    n_tok = sub.shape[0]
    img = train.transpose(2, 1, 0).reshape(len(ch), n_tok * T)  # column = token * T + step
    width = float(np.clip(4 + 0.12 * n_tok * T, 8, 18))
    height = float(np.clip(2.2 + 0.11 * len(ch), 4, 11))
    fig = _figure(width, height)
    ax = fig.add_subplot()
    ax.imshow(img, aspect="auto", interpolation="nearest", cmap=_RASTER_CMAP, vmin=-1, vmax=1,
              extent=(0, n_tok * T, len(ch), 0))
    for b in range(1, n_tok):
        ax.axvline(b * T, color="#bbbbbb", lw=0.6)
    step = max(1, n_tok // 16)
    tick_tokens = np.arange(0, n_tok, step)
    first = rows.start or 0
    names = [str(int(t) + first) for t in tick_tokens]
    if token_labels is not None:
        names = [f"{n}\n{_short_token(token_labels[int(t) + first])}" for n, t in zip(names, tick_tokens)]
    ax.set_xticks(tick_tokens * T + T / 2, names, fontsize=8 if token_labels is not None else 10)
    if len(ch) <= 40:
        ax.set_yticks(np.arange(len(ch)) + 0.5, [str(int(i)) for i in ch], fontsize=7)
    else:
        ticks = np.arange(0, len(ch), max(1, len(ch) // 16))
        ax.set_yticks(ticks + 0.5, [str(int(ch[i])) for i in ticks], fontsize=8)
    order = ", MSB first" if scheme in encoders.BITWISE and bit_order == "msb" else ""
    ax.set_xlabel(f"time: token index (each token = {T} steps, step 0 first{order})")
    ax.set_ylabel(f"input channel ({len(ch)} of {c.shape[1]}, {select})")
    spikes = int(np.count_nonzero(train))
    sparsity = 1 - spikes / (train.size * (2 if scheme in SPLIT_SCHEMES else 1))
    ax.set_title(f"Spike raster {layer} - {scheme}, T = {T}\n"
                 f"{spikes} spikes, sparsity {sparsity:.1%}, {clipped} counts clipped to the window")
    _polarity_legend(fig)
    return fig


def _polarity_legend(fig: Figure) -> None:
    fig.legend(handles=[Patch(color=POS_COLOR, label="spike of a\npositive count"),
                        Patch(color=NEG_COLOR, label="spike of a\nnegative count")],
               loc="outside right upper", fontsize=8)


def plot_token_raster(
    counts: Any,
    token: int = 0,
    scheme: str = REPORT_WINDOW[0],
    T: int | None = REPORT_WINDOW[1],
    layer: str = "",
    neurons: int = 32,
    select: str = "random",
    seed: int = 0,
    bit_order: str = "msb",
    token_label: str | None = None,
) -> Figure:
    """Spike trains of one token: x = step (with its weight), y = channels, counts annotated."""
    c = _as_2d(counts)
    if not 0 <= token < c.shape[0]:
        raise ValueError(f"token {token} is outside [0, {c.shape[0]})")
    row = c[token : token + 1]
    ch = _pick_channels(row, neurons, select, seed)
    sub = row[:, ch]
    T = _window_T(sub, scheme, T)
    train, clipped = _train_by_count_sign(sub, scheme, T, bit_order)  # [T, 1, n]
    img = train[:, 0, :].T  # [n, T]
    w = encoders.step_weights(scheme, T, bit_order)
    fig = _figure(float(np.clip(5 + 0.55 * T, 8, 14)), float(np.clip(1.8 + 0.22 * len(ch), 4, 11)))
    ax = fig.add_subplot()
    ax.imshow(img, aspect="auto", interpolation="nearest", cmap=_RASTER_CMAP, vmin=-1, vmax=1,
              extent=(0, T, len(ch), 0))
    for t in range(1, T):
        ax.axvline(t, color="#dddddd", lw=0.6)
    for y in range(1, len(ch)):
        ax.axhline(y, color="#eeeeee", lw=0.4)
    ax.set_xticks(np.arange(T) + 0.5, [f"{t}\n(x{int(w[t])})" for t in range(T)], fontsize=8)
    ax.set_yticks(np.arange(len(ch)) + 0.5, [f"ch {int(i)}" for i in ch], fontsize=7)
    lo, hi = window_range(scheme, T)
    for y, v in enumerate(sub[0]):
        note = f" (sent as {int(np.clip(v, lo, hi))})" if not lo <= v <= hi else ""
        ax.text(T + 0.08, y + 0.5, f"s = {int(v)}{note}", va="center", fontsize=7, clip_on=False)
    ax.set_xlim(0, T)
    ax.set_xlabel("step (weight of the step)")
    ax.set_ylabel(f"input channel ({len(ch)} of {c.shape[1]}, {select})")
    label = f" '{token_label}'" if token_label else ""
    ax.set_title(f"One token's spike trains: token {token}{label}\n{layer} - {scheme}, T = {T}: "
                 f"{int(np.count_nonzero(train))} spikes, {clipped} counts clipped", fontsize=10)
    _polarity_legend(fig)
    return fig


def _short_token(text: str, width: int = 8) -> str:
    t = text.replace("\n", "\\n").replace("\t", "\\t").strip() or "' '"
    return t if len(t) <= width else t[: width - 1] + "~"


def token_texts(trace: Any, indices: Sequence[int]) -> dict[int, str] | None:
    """Text of the tokens ``indices`` of a trace, from its stored character offsets and prompt
    text; None when the trace stores neither."""
    offsets, texts = getattr(trace, "offsets", None), getattr(trace, "prompt_text", None)
    if offsets is None or texts is None:
        return None
    idx = np.asarray(indices, dtype=np.int64)
    prompt = np.searchsorted(np.asarray(trace.prompt_starts), idx, side="right") - 1
    out = {}
    for i, p in zip(idx.tolist(), prompt.tolist()):  # only the few tokens a figure labels
        a, b = (int(v) for v in offsets[i])
        out[i] = texts[p][a:b] if 0 <= a <= b else "?"
    return out


def _as_2d(counts: Any) -> np.ndarray:
    if hasattr(counts, "detach"):
        counts = counts.detach().cpu().numpy()
    c = np.asarray(counts)
    if c.ndim != 2 or c.dtype.kind not in "iu":
        raise ValueError(f"counts must be a 2-D integer array [tokens, channels], got {c.dtype} {c.shape}")
    return c


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
        split = scheme in SPLIT_SCHEMES
        twin = {"binary": "ternary", "bitwise": "bitwise-signed"}.get(scheme)
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


# ----------------------------------------------------------------------------- all of them


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
