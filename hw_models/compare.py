"""Chip-versus-GPU tables: energy per token, latency, breakdown, ratios (dicts and markdown)."""
from __future__ import annotations

from typing import Iterable, Sequence

from .activity import Activity
from .chips import CHIP_PRESETS, NeuromorphicChip
from .gpu_model import run_on_gpu
from .gpus import GPU_PRESETS, H100_SXM, GPUSpec
from .neuromorphic import run_on_chip
from .results import CATEGORIES, PlatformResult
from .scaling import ASSUMPTION as SCALING_ASSUMPTION
from .scaling import extrapolate
from .shapes import ModelShape


def evaluate(
    acts: Iterable[Activity],
    chips: Sequence[NeuromorphicChip] | None = None,
    gpus: Sequence[GPUSpec] | None = None,
    mode: str = "decode",
    batch: int = 1,
    dtype: str = "bf16",
    host_overhead: bool = False,
    regime: str | None = None,
) -> list[PlatformResult]:
    """Price ``acts`` on every chip and GPU (defaults: all presets); ``regime`` is the GPUs'
    software regime (hw_models.gpu_regimes; None: ``host_overhead`` True -> eager, else hardware)."""
    acts = list(acts)
    chips = list(CHIP_PRESETS.values()) if chips is None else list(chips)
    gpus = list(GPU_PRESETS.values()) if gpus is None else list(gpus)
    results = [run_on_chip(acts, c) for c in chips]
    results += [run_on_gpu(acts, g, mode=mode, batch=batch, dtype=dtype, host_overhead=host_overhead,
                          regime=regime) for g in gpus]
    return results


def evaluate_scaled(
    acts: Iterable[Activity],
    target: ModelShape,
    tokens: int | None = None,
    chips: Sequence[NeuromorphicChip] | None = None,
    gpus: Sequence[GPUSpec] | None = None,
    **kwargs,
) -> list[PlatformResult]:
    """Extrapolate ``acts`` to ``target`` (see :mod:`hw_models.scaling`) and price it everywhere.

    Every result's first note states the extrapolation assumption. ``kwargs`` go to
    :func:`evaluate` (mode, batch, dtype, host_overhead).
    """
    big = extrapolate(acts, target, tokens)
    results = evaluate(big, chips, gpus, **kwargs)
    for r in results:
        r.notes.insert(0, f"{SCALING_ASSUMPTION}; target {target.name}")
    return results


def comparison_rows(results: Sequence[PlatformResult], reference: str = H100_SXM.name) -> list[dict]:
    """One dict per platform: J/token, latency/token, devices, and ratios to ``reference``.

    ``energy_vs_ref`` = this platform's J/token / the reference's (< 1: cheaper than the
    reference); ``latency_vs_ref`` likewise for latency per token. For GPUs
    ``energy_per_token_j`` is the power x time view and ``gpu_op_byte_view_j_per_token`` the
    op + byte (+ idle) view; NaN for chips, whose model is op-based already.
    """
    by_name = {r.platform: r for r in results}
    if reference not in by_name:
        raise ValueError(f"comparison_rows: reference {reference!r} not among {', '.join(by_name)}")
    ref = by_name[reference]
    rows = []
    for r in results:
        rows.append({
            "platform": r.platform,
            "kind": r.kind,
            "regime": r.details.get("regime", ""),
            "mode": r.mode,
            "devices": r.devices,
            "energy_per_token_j": r.energy_per_token_j,
            "latency_per_token_s": r.latency_s,
            "energy_vs_ref": r.energy_per_token_j / ref.energy_per_token_j,
            "latency_vs_ref": r.latency_s / ref.latency_s if ref.latency_s > 0 else float("nan"),
            "reference": reference,
            "gpu_op_byte_view_j_per_token": r.details.get("opbyte_j_per_token", float("nan")),
            **({k: r.details[k] for k in ("energy_per_token_j_low", "energy_per_token_j_high", "latency_per_token_s_low",
                                          "latency_per_token_s_high", "view", "calibrated") if k in r.details}),
            **{f"{c}_j_per_token": v for c, v in r.breakdown().items() if c != "total"},
        })
    return rows


def breakdown_table(results: Sequence[PlatformResult], per_layer: bool = False) -> list[dict]:
    """Stacked-bar data: energy per token (J) by category for each platform (or layer).

    Returns dicts with ``platform``, ``layer`` (only when ``per_layer``), the categories
    compute, memory, routing, static, other and ``total``; analysis can plot them directly.
    """
    rows = []
    for r in results:
        if per_layer:
            for layer in r.layers:
                rows.append({"platform": r.platform, "layer": layer.name, **layer.per_token()})
        else:
            rows.append({"platform": r.platform, **r.breakdown()})
    return rows


def _fmt(v) -> str:
    if isinstance(v, float):
        if v != v:
            return ""
        if v == 0:
            return "0"
        if abs(v) >= 1e4 or abs(v) < 1e-3:
            return f"{v:.3e}"
        return f"{v:.4g}"
    return str(v)


def to_markdown(rows: Sequence[dict], columns: Sequence[str] | None = None) -> str:
    """Render a list of dicts as a GitHub markdown table (columns default to the first row's keys)."""
    if not rows:
        return ""
    cols = list(columns) if columns is not None else list(rows[0].keys())
    lines = ["| " + " | ".join(cols) + " |", "|" + "|".join("---" for _ in cols) + "|"]
    for r in rows:
        lines.append("| " + " | ".join(_fmt(r.get(c, "")) for c in cols) + " |")
    return "\n".join(lines)


COMPARISON_COLUMNS = (
    "platform", "regime", "devices", "energy_per_token_j", "latency_per_token_s", "energy_vs_ref", "latency_vs_ref",
    *(f"{c}_j_per_token" for c in CATEGORIES), "gpu_op_byte_view_j_per_token",
)


def comparison_markdown(
    results: Sequence[PlatformResult], reference: str = H100_SXM.name, notes: bool = True
) -> str:
    """Markdown comparison table (J/token, s/token, ratios to ``reference``, breakdown), followed
    by the results' notes (assumptions) as a bullet list when ``notes``."""
    md = to_markdown(comparison_rows(results, reference), COMPARISON_COLUMNS)
    if notes:
        seen: list[str] = []
        for r in results:
            for n in r.notes:
                if n not in seen:
                    seen.append(n)
        md += "\n\nNotes:\n" + "\n".join(f"- {n}" for n in seen)
    return md
