"""Chip and GPU presets by name, for the CLI and the pipeline (no plotting imports)."""
from __future__ import annotations

import dataclasses
from typing import Any, Sequence

import hw_models


def gpu_display_name(preset: str) -> str:
    """The name users type and read for a GPU preset: ``h100_sxm`` -> ``h100`` (the SXM form is the only one)."""
    short = preset[: -len("_sxm")] if preset.endswith("_sxm") else preset
    return short if short == preset or short not in hw_models.GPU_PRESETS else preset


def gpu_choices() -> list[str]:
    """GPU names the command line accepts, as shown in help, errors and tables."""
    return [gpu_display_name(g) for g in hw_models.GPU_PRESETS]


def resolve_platforms(chips: Sequence[str], gpus: Sequence[str]) -> tuple[list[Any], list[Any]]:
    """Look up chip and GPU presets by name; ValueError names the unknown one and the choices.

    GPU names may drop the form factor: ``h100`` means ``h100_sxm``. The returned GPU specs
    carry the short name (``h100``), so tables, plots and reports show the name users type.
    """
    specs = []
    for g in gpus:
        preset = g if g in hw_models.GPU_PRESETS else f"{g}_sxm"
        if preset not in hw_models.GPU_PRESETS:
            raise ValueError(f"unknown GPU preset {g!r}; choose one of {', '.join(gpu_choices())}")
        spec = hw_models.get_gpu(preset)
        specs.append(dataclasses.replace(spec, name=gpu_display_name(spec.name)))
    return [hw_models.get_chip(c) for c in chips], specs
