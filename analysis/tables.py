"""Tables written once: number formatting, markdown rendering and the headline statistics.

Numbers: floats with 4 significant digits (scientific when tiny or huge); fractions in
[0, 1] as percentages with 4 significant digits. Every report, CLI line and markdown file
formats through :func:`fmt` / :func:`fmt_fraction` and renders through :func:`markdown_table`.
"""
from __future__ import annotations

import math
from typing import Any, Mapping, Sequence

from .stats_reference import REPORT_7B, REPORT_WINDOW

# (summary key, label, is a fraction in [0, 1]); the sparsity label names the window.
HEADLINE: tuple[tuple[str, str, bool], ...] = (
    ("sparsity", "sparsity ({scheme}, {T} steps)", True),
    ("silence", "silent channels (s = 0 per token)", True),
    ("spikes_per_active_channel", "spikes per active channel", False),
    ("frac_abs_le_7", "counts with |s| <= 7", True),
    ("frac_abs_gt_16", "counts with |s| > 16", True),
    ("clipped_fraction", "counts clipped at {scheme}, T = {T}", True),
    ("temporal_sparsity", "counts unchanged from the previous token (temporal sparsity)", True),
)
FRACTION_KEYS = frozenset({
    "sparsity", "silence", "active_fraction", "frac_abs_le_7", "frac_abs_gt_16", "clipped_fraction",
    "never_firing_fraction", "sparsity_at_budget", "clipped_fraction_at_budget", "sparsity_identity",
    "token_silence_p50", "token_sparsity_p50", "temporal_sparsity",
})


def fmt(value: Any) -> str:
    """A table cell: floats with 4 significant digits (thousands separators from 1e4, scientific
    below 1e-3 or from 1e12); None -> ''."""
    if isinstance(value, bool) or value is None:
        return "" if value is None else str(value)
    if isinstance(value, float):
        if math.isnan(value):
            return "n/a"
        if 1e4 <= abs(value) < 1e12:  # 4 significant digits with thousands separators: 447,100
            return f"{float(f'{value:.4g}'):,.0f}"
        if value.is_integer() and abs(value) < 1e4:
            return f"{value:.0f}"
        if value != 0 and (abs(value) < 1e-3 or abs(value) >= 1e12):
            return f"{value:.3e}"
        return f"{value:.4g}"
    return str(value)


def fmt_fraction(value: Any) -> str:
    """A fraction in [0, 1] as a percentage with 4 significant digits (e.g. ``69.15%``)."""
    if value is None or (isinstance(value, float) and math.isnan(value)):
        return "n/a"
    return f"{100 * float(value):.4g}%"


def fmt_cell(key: str, value: Any) -> str:
    """Format ``value`` of column ``key``: percentages for known fractions, else :func:`fmt`."""
    return fmt_fraction(value) if key in FRACTION_KEYS and isinstance(value, float) else fmt(value)


# Headers of snake_case keys that tables show (units in parentheses); other keys get
# :func:`human_header`'s generic rules.
HEADERS: dict[str, str] = {
    "energy_per_token_j": "energy (J/token)", "latency_per_token_s": "latency (s/token)",
    "energy_vs_ref": "energy vs reference (x)", "latency_vs_ref": "latency vs reference (x)",
    "gpu_op_byte_view_j_per_token": "GPU op + byte view (J/token)", "devices": "devices (chips/GPUs)",
    "frac_abs_le_7": "counts with |s| <= 7", "frac_abs_gt_16": "counts with |s| > 16",
    "spikes_per_active_channel": "spikes per active channel", "max_abs_count": "largest |s|",
    "never_firing_channels": "never-firing channels", "vth_mean": "mean V_th",
    "temporal_sparsity": "temporal sparsity (unchanged from previous token)",
}
_SUFFIXES = (("_j_per_token", " (J/token)"), ("_per_token_j", " per token (J)"), ("_per_token_s", " per token (s)"),
             ("_uj", " (uJ)"), ("_j", " (J)"), ("_s", " (s)"), ("_vs_ref", " vs reference (x)"))


def human_header(key: str) -> str:
    """A table header for a snake_case key: :data:`HEADERS`, else units from its suffix, spaces for ``_``."""
    if key in HEADERS:
        return HEADERS[key]
    for suffix, unit in _SUFFIXES:
        if key.endswith(suffix) and len(key) > len(suffix):
            return key[: -len(suffix)].replace("_", " ") + unit
    return key.replace("_", " ")


def readable_cell(key: str, value: Any) -> str:
    """A cell for a report: :func:`fmt_cell`, and sequences summarised (count, range) instead of listed."""
    if isinstance(value, (list, tuple)) and not isinstance(value, str):
        nums = [float(v) for v in value if isinstance(v, (int, float))]
        if not nums:
            return f"{len(value)} values"
        cell = fmt_fraction if key in FRACTION_KEYS or key.endswith("rate_per_step") else fmt
        return f"{len(nums)} values, {cell(min(nums))} to {cell(max(nums))}"
    return fmt_cell(key, value) if not isinstance(value, str) else value


def readable_table(rows: Sequence[Mapping[str, Any]]) -> list[dict[str, str]]:
    """Rows with human headers (:func:`human_header`) and formatted cells (:func:`readable_cell`)."""
    return [{human_header(k): readable_cell(k, v) for k, v in r.items()} for r in rows]


def _md(cell: Any) -> str:
    """Escape a Markdown table cell (a bare '|' would end it)."""
    return str(cell).replace("|", "\\|").replace("\n", " ")


def columns_of(rows: Sequence[Mapping[str, Any]]) -> list[str]:
    """Keys of ``rows`` in first-seen order."""
    cols: list[str] = []
    for r in rows:
        cols += [k for k in r if k not in cols]
    return cols


def markdown_table(rows: Sequence[Mapping[str, Any]], columns: Sequence[str] | None = None,
                   headers: Mapping[str, str] | None = None) -> str:
    """A markdown table of ``rows``; cells formatted by :func:`fmt_cell` unless already strings."""
    cols = list(columns) if columns is not None else columns_of(rows)
    heads = [(headers or {}).get(c, c) for c in cols]
    out = ["| " + " | ".join(_md(h) for h in heads) + " |", "|" + "---|" * len(cols)]
    for r in rows:
        out.append("| " + " | ".join(_md(fmt_cell(c, r.get(c, ""))) for c in cols) + " |")
    return "\n".join(out)


def headline_rows(summary: Mapping[str, Any], window: tuple[str, int], model: str = "this model",
                  reference: str = "SpikingBrain-7B report") -> list[dict[str, str]]:
    """The headline statistics beside the report's SpikingBrain-7B values (formatted cells).

    The report's sparsity is for its own window (:data:`REPORT_WINDOW`); for another window
    it is shown as n/a. About 1 % of the report's counts exceed 16 (Fig. 9).
    """
    scheme, T = window
    rows = []
    for key, label, is_fraction in HEADLINE:
        if key not in summary:  # e.g. no window (clipped fraction) or no temporal counters
            continue
        render = fmt_fraction if is_fraction else fmt
        ref = REPORT_7B.get(key)
        if key == "clipped_fraction":  # the report's 3-step window carries |s| <= 7 (94.1 %)
            ref = 1 - REPORT_7B["frac_abs_le_7"]
        window_bound = key in ("sparsity", "clipped_fraction")
        ref_cell = "n/a" if ref is None or (window_bound and tuple(window) != REPORT_WINDOW) else render(ref)
        if key in ("frac_abs_gt_16", "clipped_fraction") and ref is not None:
            ref_cell = "about " + ref_cell
        rows.append({"statistic": label.format(scheme=scheme, T=T), model: render(summary[key]), reference: ref_cell})
    return rows


def headline_line(summary: Mapping[str, Any], window: tuple[str, int]) -> str:
    """The headline statistics on one line (for the CLI)."""
    return "   ".join(f"{r['statistic']}: {r['this model']}" for r in headline_rows(summary, window))
