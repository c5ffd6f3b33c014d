"""Chip and GPU presets by name, for the CLI and the pipeline (no plotting imports)."""
from __future__ import annotations

from typing import Any, Sequence

import hw_models


def resolve_platforms(chips: Sequence[str], gpus: Sequence[str]) -> tuple[list[Any], list[Any]]:
    """Look up chip and GPU presets by name; ValueError names the unknown one and the choices.

    GPU names may drop the form factor: ``h100`` means ``h100_sxm``.
    """
    gpu_names = [g if g in hw_models.GPU_PRESETS or f"{g}_sxm" not in hw_models.GPU_PRESETS else f"{g}_sxm"
                 for g in gpus]
    return [hw_models.get_chip(c) for c in chips], [hw_models.get_gpu(g) for g in gpu_names]
