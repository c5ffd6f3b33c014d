"""Shared figure plumbing: the Agg figure factory, colours, report reference lines, atomic saving."""
from __future__ import annotations

import os
from pathlib import Path
from typing import Sequence

from matplotlib.figure import Figure

import encoders

from .fileio import atomic_file
from .roles import ROLES
from .stats_reference import REPORT_7B


DPI = 100  # figures are sized in inches; PNG pixels = inches x DPI
REPORT_SPARSITY = REPORT_7B["sparsity"]  # arXiv:2509.05276: 3-step bitwise-ternary window
REPORT_SILENCE = REPORT_7B["silence"]  # arXiv:2509.05276: silent channels per token
REPORT_LE7 = REPORT_7B["frac_abs_le_7"]  # arXiv:2509.05276, Fig. 9: |s| in [0, 7]
REPORT_GT16 = REPORT_7B["frac_abs_gt_16"]  # arXiv:2509.05276, Fig. 9: about 1 % above 16

POS_COLOR, NEG_COLOR = "#c0392b", "#2166ac"  # spikes of positive / negative counts
ROLE_COLORS = dict(zip(ROLES, ["#1f77b4", "#ff7f0e", "#2ca02c", "#bcbd22", "#d62728", "#9467bd", "#8c564b", "#e377c2", "#7f7f7f"]))
SCHEME_COLORS = {s.name: s.color for s in encoders.REGISTRY.values()}  # keyed by name (encoders.Scheme.color)
ENERGY_PARTS = ("compute", "memory", "routing", "static")
ENERGY_COLORS = dict(zip(ENERGY_PARTS, ["#4c72b0", "#dd8452", "#55a868", "#8c8c8c"]))


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
        with atomic_file(target, overwrite=True) as tmp, open(tmp, "wb") as fh:
            fig.savefig(fh, format=fmt, dpi=DPI)
        written.append(target)
    return written
