"""One call from a trace to its statistics (HDF5), its figures (PNG/SVG) and a markdown summary."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from .compare import compare_encoders, comparison_markdown
from .plots import write_all_plots
from .fileio import atomic_file
from .stats import REPORT_7B, REPORT_WINDOW, SpikeStats, write_stats
from .sweep import sweep_markdown

_HEADLINE = [
    # (summary key, label, format)
    ("sparsity", "sparsity ({scheme}, {T}-step window)", "{:.2%}"),
    ("silence", "silence (channels with s = 0 per token)", "{:.1%}"),
    ("spikes_per_active_channel", "spikes per active channel", "{:.2f}"),
    ("frac_abs_le_7", "counts with abs(s) in [0, 7]", "{:.1%}"),
    ("frac_abs_gt_16", "counts with abs(s) > 16", "{:.2%}"),
]


def headline_markdown(stats: SpikeStats, model: str = "this model") -> str:
    """The headline statistics of ``stats`` beside the report's SpikingBrain-7B values (markdown)."""
    s = stats.summary()
    scheme, T = stats.window
    out = [f"| statistic | {model} | SpikingBrain-7B (report) |", "|---|---|---|"]
    for key, label, fmt in _HEADLINE:
        ref = fmt.format(REPORT_7B[key]) if (scheme, T) == REPORT_WINDOW or key != "sparsity" else "n/a"
        if key == "frac_abs_gt_16":
            ref = "about " + ref
        out.append(f"| {label.format(scheme=scheme, T=T)} | {fmt.format(s[key])} | {ref} |")
    out.append(f"| identity 1 - spikes/active x active / T | {s['sparsity_identity']:.2%} | "
               f"{1 - REPORT_7B['spikes_per_active_channel'] * (1 - REPORT_7B['silence']) / 3:.2%} |")
    out.append(f"| never-firing channels | {s['never_firing_channels']} of {s['channels']} | n/a |")
    out.append(f"| tokens x layers | {s['tokens']} x {s['layers']} | n/a |")
    return "\n".join(out)


def role_markdown(stats: SpikeStats) -> str:
    """Headline statistics per role and for the model (markdown)."""
    head = ["scope", "layers", "sparsity", "silence", "spikes/active", "abs(s)<=7", "abs(s)>16", "max abs(s)",
            "never-firing", "mean V_th"]
    out = ["| " + " | ".join(head) + " |", "|" + "---|" * len(head)]
    for r in stats.role_table():
        out.append(
            f"| {r['scope']} | {r['layers']} | {r['sparsity']:.2%} | {r['silence']:.1%} | "
            f"{r['spikes_per_active_channel']:.2f} | {r['frac_abs_le_7']:.1%} | {r['frac_abs_gt_16']:.2%} | "
            f"{r['max_abs_count']} | {r['never_firing_channels']} | {r['vth_mean']:.3g} |"
        )
    return "\n".join(out)


def analyze_trace(
    trace: Any,
    out_dir: str | os.PathLike,
    *,
    stats_out: str | os.PathLike | None = None,
    sweep: list[dict[str, Any]] | None = None,
    energy: list[dict[str, Any]] | None = None,
    window: tuple[str, int] = REPORT_WINDOW,
    budgets: dict[str, int] | None = None,
    model: str | None = None,
    formats: Sequence[str] = ("png", "svg"),
    overwrite: bool = False,
    progress: bool = True,
    chunk_rows: int = 2048,
) -> dict[str, Any]:
    """Statistics, encoder comparison and every figure of a trace, in one call.

    Args:
        trace: a ``SpikeTrace`` or the path of one.
        out_dir: folder for the figures and ``statistics.md`` (created if missing).
        stats_out: None writes ``/stats`` into the trace file itself (atomically); a path
            writes a separate HDF5 file. An in-memory trace needs ``stats_out`` (default
            ``out_dir/stats.h5``).
        sweep: k-sweep rows (:func:`analysis.sweep.k_sweep`) to plot and tabulate.
        energy: energy rows for :func:`analysis.plots.plot_energy_breakdown`.
        window / budgets: the statistics window and the comparison's step budgets.
        overwrite: let ``stats_out`` and ``statistics.md`` replace existing files.
        chunk_rows: token rows read at a time (bounds memory on long traces).

    Returns:
        ``{"stats", "summary", "comparison", "stats_path", "plots", "markdown", "markdown_path"}``.
    """
    from .trace import SpikeTrace

    opened = None
    if isinstance(trace, (str, os.PathLike)):
        trace = opened = SpikeTrace.open(trace)
    try:
        out = Path(os.fspath(out_dir))
        out.mkdir(parents=True, exist_ok=True)
        md_path = out / "statistics.md"
        if md_path.exists() and not overwrite:
            raise FileExistsError(f"{md_path} exists; pass overwrite=True to replace it")
        if stats_out is None and trace.path is None:
            stats_out = out / "stats.h5"
        stats = SpikeStats(window).update_trace(trace, progress, chunk_rows)
        comparison = compare_encoders(stats, budgets)
        name = model or trace.model_id
        figures = write_all_plots(stats, out, trace=trace, comparison=comparison, sweep=sweep, energy=energy,
                                  model=name, formats=formats)
        stats_path = write_stats(trace.path, stats, out=stats_out, overwrite=overwrite)
        parts = [
            f"# Spike statistics: {name}",
            f"{trace.n_tokens} tokens, {len(stats.layers)} layers, k = {trace.k:g}; statistics in `{stats_path}`.",
            "## Headline numbers", headline_markdown(stats, name),
            "## Per role", role_markdown(stats),
            "## Encoders", comparison_markdown(comparison),
        ]
        if sweep:
            parts += ["## k sweep", sweep_markdown(sweep, name)]
        markdown = "\n\n".join(parts) + "\n"
        with atomic_file(md_path, overwrite) as tmp:
            tmp.write_text(markdown, encoding="utf-8")
        return {"stats": stats, "summary": stats.summary(), "comparison": comparison, "stats_path": stats_path,
                "plots": figures, "markdown": markdown, "markdown_path": md_path}
    finally:
        if opened is not None:
            opened.close()
