"""Energy and latency models: neuromorphic chips versus GPUs. Leaf package (numpy only).

>>> from hw_models import report_estimate
>>> r = report_estimate()
>>> (r.spiking_pj, r.ratio_vs_fp16, r.ratio_vs_int8)
(0.034, 43.48, 6.76)

Main entry points: :func:`run_on_chip` and :func:`run_on_gpu` price per-layer
:class:`Activity` records; :func:`evaluate`, :func:`comparison_rows`,
:func:`comparison_markdown` and :func:`breakdown_table` compare platforms;
:func:`extrapolate` scales a trace to a larger :class:`ModelShape`; :func:`predict_forward`
predicts a whole-model GPU forward pass (used by benchmarks/gpu_energy.py).
"""
from .activity import Activity
from .aggregate import RoleStats, role_statistics, sum_activities
from .chips import (
    CHIP_PRESETS,
    LOIHI,
    LOIHI2,
    SPINNAKER2,
    TRUENORTH,
    NeuromorphicChip,
    chip_from_dict,
    chip_from_json,
    describe_chip,
    generic_async,
    get_chip,
)
from .compare import breakdown_table, comparison_markdown, comparison_rows, evaluate, evaluate_scaled, to_markdown
from .gpu_model import board_power_w, fit_host_overhead, mac_energy_pj, predict_forward, roofline, run_on_gpu
from .gpu_regimes import REGIMES, Regime, get_regime
from .gpus import A100_SXM, GPU_ALIASES, GPU_PRESETS, H100_SXM, H200_SXM, GPUSpec, get_gpu, gpu_from_dict
from .neuromorphic import LayerMapping, interchip_cost_per_spike_j, map_layer, run_on_chip
from .op_energy import HOROWITZ_45NM, JOUPPI_7NM, OpEnergyTable, table_for_node
from .report import (
    ReportEstimate,
    report_estimate,
    report_table,
    report_table_markdown,
    spikes_per_active_from_sparsity,
)
from .results import CATEGORIES, LayerResult, PlatformResult
from .scaling import activity_from_stats, extrapolate
from .shapes import QWEN25_7B, SMOLLM2_135M, ModelShape
from .synthetic import synthetic_activity, synthetic_model_activity

__all__ = [
    "Activity",
    "A100_SXM", "CATEGORIES", "CHIP_PRESETS", "GPU_ALIASES", "GPU_PRESETS", "REGIMES", "Regime", "get_regime", "H100_SXM", "H200_SXM", "HOROWITZ_45NM",
    "JOUPPI_7NM", "LOIHI", "LOIHI2", "QWEN25_7B", "SMOLLM2_135M", "SPINNAKER2", "TRUENORTH",
    "GPUSpec", "LayerMapping", "LayerResult", "ModelShape", "NeuromorphicChip", "OpEnergyTable",
    "PlatformResult", "ReportEstimate", "RoleStats",
    "activity_from_stats", "board_power_w", "breakdown_table", "chip_from_dict", "chip_from_json",
    "comparison_markdown", "comparison_rows", "describe_chip", "evaluate", "evaluate_scaled", "extrapolate",
    "fit_host_overhead", "generic_async", "get_chip", "get_gpu", "gpu_from_dict",
    "interchip_cost_per_spike_j", "mac_energy_pj", "map_layer", "predict_forward", "report_estimate",
    "report_table", "report_table_markdown", "role_statistics", "roofline", "run_on_chip", "run_on_gpu",
    "spikes_per_active_from_sparsity", "sum_activities", "synthetic_activity", "synthetic_model_activity",
    "table_for_node", "to_markdown",
]
