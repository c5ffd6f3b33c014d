"""One call from a trace to its statistics (HDF5), its figures (PNG/SVG) and a markdown summary."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any, Sequence

from .compare import COLUMN_NOTE, compare_encoders, comparison_markdown
from .fileio import atomic_file
from .plots import write_all_plots
from .stats import REPORT_7B, REPORT_WINDOW, SpikeStats, write_stats
from .sweep import sweep_markdown
from .tables import fmt_fraction, headline_rows, markdown_table

def headline_markdown(stats: SpikeStats, model: str = "this model") -> str:
    """The headline statistics of ``stats`` beside the report's SpikingBrain-7B values (markdown)."""
    s = stats.summary()
    rows = headline_rows(s, stats.window, model=model, reference="SpikingBrain-7B (report)")
    T = stats.window[1]
    ident = 1 - REPORT_7B["spikes_per_active_channel"] * (1 - REPORT_7B["silence"]) / REPORT_WINDOW[1]
    rows += [
        {"statistic": f"identity 1 - spikes/active x active / {T}", model: fmt_fraction(s["sparsity_identity"]),
         "SpikingBrain-7B (report)": fmt_fraction(ident)},
        {"statistic": "never-firing channels", model: f"{s['never_firing_channels']} of {s['channels']}",
         "SpikingBrain-7B (report)": "n/a"},
        {"statistic": "tokens x layers", model: f"{s['tokens']} x {s['layers']}", "SpikingBrain-7B (report)": "n/a"},
    ]
    return markdown_table(rows)


_ROLE_COLUMNS = {"scope": "scope", "layers": "layers", "sparsity": "sparsity", "silence": "silence",
                 "spikes_per_active_channel": "spikes/active", "frac_abs_le_7": "abs(s)<=7",
                 "frac_abs_gt_16": "abs(s)>16", "max_abs_count": "max abs(s)",
                 "never_firing_channels": "never-firing", "vth_mean": "mean V_th"}


def role_markdown(stats: SpikeStats) -> str:
    """Headline statistics per role and for the model (markdown)."""
    return markdown_table(stats.role_table(), list(_ROLE_COLUMNS), _ROLE_COLUMNS)


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
            "## Encoders", comparison_markdown(comparison), COLUMN_NOTE,
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
