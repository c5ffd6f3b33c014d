"""GPU presets: peak dense throughput, HBM bandwidth, board power, idle power (SI units).

Datasheet figures (dense, i.e. WITHOUT 2:4 structured sparsity; NVIDIA quotes the sparse
figure first, dense = sparse / 2):

* A100 SXM4 80 GB: NVIDIA A100 Tensor Core GPU datasheet (2021): BF16 312 TFLOPS, INT8 624
  TOPS, HBM2e 2,039 GB/s, 80 GB, max TDP 400 W.
* H100 SXM5 80 GB: NVIDIA H100 Tensor Core GPU datasheet (2022/2023): BF16 1,979 TFLOPS and
  INT8 3,958 TOPS with sparsity -> 989.5 / 1,979 dense; HBM3 3.35 TB/s, 80 GB, max TDP 700 W.
* H200 SXM 141 GB: NVIDIA H200 Tensor Core GPU datasheet (2024): same compute as H100 SXM,
  HBM3e 4.8 TB/s, 141 GB, max TDP 700 W.

Not in any datasheet, so ASSUMPTIONS (each marked in ``sources``): idle power, the achievable
fractions of peak compute / bandwidth, the share of board power a bandwidth-bound kernel draws,
and the per-decoder-layer host (Python/launch) overhead of eager PyTorch + Hugging Face.

``h100_sxm`` is CALIBRATED: idle power measured, and compute efficiency, memory power fraction
and host overhead fitted (hw_models.gpu_model.fit_gpu_to_measurements) to NVML measurements
on an NVIDIA H100 80GB HBM3 on 2026-11-25 (benchmarks/gpu_energy.py,
hw_models/data/gpu_measurements.csv; docs/hardware.md, "Calibration on a real H100").
``H100_SXM_UNCALIBRATED`` keeps the previous datasheet + assumption values for comparison.
``h200_sxm`` is CALIBRATED the same way on an NVIDIA H200 on 2026-12-02. A100 remains
uncalibrated (datasheet + assumptions). The software regimes (a machine's host profile, host
time per layer in prefill and in decode, plus the GPU side) live in hw_models.gpu_regimes.
"""
from __future__ import annotations

from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping

from ._checks import dataclass_kwargs, finite_nonneg, fraction, positive

DTYPES: tuple[str, ...] = ("bf16", "int8")


@dataclass(frozen=True)
class GPUSpec:
    """A GPU for roofline latency and energy models.

    Attributes:
        name: preset name.
        node_nm: process node (nm); the op-energy table used is the nearest published (7 nm).
        peak_bf16_flops: dense BF16 tensor throughput (FLOP/s; 1 MAC = 2 FLOP).
        peak_int8_ops: dense INT8 tensor throughput (OP/s).
        hbm_bytes_per_s: peak HBM bandwidth (B/s).
        hbm_bytes: HBM capacity (B).
        tdp_w: maximum board power (W).
        idle_w: board power with a CUDA context and no work (W).
        compute_efficiency: achievable fraction of peak throughput on large GEMMs.
        bandwidth_efficiency: achievable fraction of peak HBM bandwidth on streaming reads.
        memory_power_fraction: fraction of (TDP - idle) drawn when fully bandwidth-bound.
        host_overhead_s_per_layer: host-side time per decoder layer per forward call of eager
            PyTorch (kernel launches, Python); overlaps with GPU work (s).
        sources: field -> citation or assumption.
    """

    name: str
    node_nm: float
    peak_bf16_flops: float
    peak_int8_ops: float
    hbm_bytes_per_s: float
    hbm_bytes: float
    tdp_w: float
    idle_w: float
    compute_efficiency: float
    bandwidth_efficiency: float
    memory_power_fraction: float
    host_overhead_s_per_layer: float
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        owner = f"GPUSpec {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("GPUSpec: field 'name' must be a non-empty string")
        for name in ("node_nm", "peak_bf16_flops", "peak_int8_ops", "hbm_bytes_per_s", "hbm_bytes", "tdp_w"):
            positive(owner, name, getattr(self, name))
        finite_nonneg(owner, "idle_w", self.idle_w)
        finite_nonneg(owner, "host_overhead_s_per_layer", self.host_overhead_s_per_layer)
        for name in ("compute_efficiency", "bandwidth_efficiency"):
            if positive(owner, name, getattr(self, name)) > 1:
                raise ValueError(f"{owner}: field {name!r} must be in (0, 1], got {getattr(self, name)}")
        fraction(owner, "memory_power_fraction", self.memory_power_fraction)
        if self.idle_w >= self.tdp_w:
            raise ValueError(f"{owner}: idle_w ({self.idle_w}) must be below tdp_w ({self.tdp_w})")
        object.__setattr__(self, "sources", dict(self.sources))

    def peak_ops(self, dtype: str) -> float:
        """Dense peak of ``dtype`` ("bf16" FLOP/s or "int8" OP/s)."""
        if dtype == "bf16":
            return self.peak_bf16_flops
        if dtype == "int8":
            return self.peak_int8_ops
        raise ValueError(f"unknown GPU dtype {dtype!r}; choose one of {', '.join(DTYPES)}")

    def to_dict(self) -> dict[str, Any]:
        d = asdict(self)
        d["sources"] = dict(self.sources)
        return d

    def with_changes(self, **changes: Any) -> "GPUSpec":
        """A validated copy with some fields replaced (e.g. a measured ``idle_w``)."""
        names = {f.name for f in fields(self)}
        bad = sorted(set(changes) - names)
        if bad:
            raise ValueError(f"GPUSpec.with_changes: unknown field(s): {', '.join(bad)}")
        src = dict(self.sources)
        src.update({k: "user override" for k in changes if k != "sources"})
        changes.setdefault("sources", src)
        return replace(self, **changes)


def gpu_from_dict(data: Mapping[str, Any]) -> GPUSpec:
    """Build and validate a GPU from a dict (missing or unknown fields -> ValueError)."""
    return GPUSpec(**dataclass_kwargs(GPUSpec, data, "gpu_from_dict"))


_COMMON_ASSUMPTIONS = {
    "compute_efficiency": "ASSUMPTION: 0.7 of dense peak on large BF16 GEMMs (cuBLAS typical)",
    "bandwidth_efficiency": "ASSUMPTION: 0.8 of peak HBM bandwidth on streaming weight reads",
    "memory_power_fraction": "ASSUMPTION: a fully bandwidth-bound kernel draws 0.6 of (TDP - idle)",
    "host_overhead_s_per_layer": ("ASSUMPTION: 0.4 ms per decoder layer per forward call for eager "
                                  "PyTorch + Hugging Face (~40 kernels x ~10 us); calibrate with "
                                  "benchmarks/gpu_energy.py"),
}

A100_SXM = GPUSpec(
    name="a100_sxm",
    node_nm=7.0,                   # TSMC N7
    peak_bf16_flops=312e12,        # NVIDIA A100 datasheet 2021: BF16 Tensor Core 312 TFLOPS (dense; 624 sparse)
    peak_int8_ops=624e12,          # NVIDIA A100 datasheet 2021: INT8 Tensor Core 624 TOPS (dense; 1,248 sparse)
    hbm_bytes_per_s=2.039e12,      # NVIDIA A100 datasheet 2021: 80 GB HBM2e SXM, 2,039 GB/s
    hbm_bytes=80e9,                # NVIDIA A100 datasheet 2021: 80 GB
    tdp_w=400.0,                   # NVIDIA A100 datasheet 2021: max TDP 400 W (SXM)
    idle_w=55.0,                   # ASSUMPTION: not in datasheet; typical nvidia-smi reading with a context
    compute_efficiency=0.7,        # ASSUMPTION (see _COMMON_ASSUMPTIONS)
    bandwidth_efficiency=0.8,      # ASSUMPTION
    memory_power_fraction=0.6,     # ASSUMPTION
    host_overhead_s_per_layer=0.4e-3,  # ASSUMPTION
    sources={
        "node_nm": "TSMC N7",
        "peak_bf16_flops": "NVIDIA A100 datasheet (2021): BF16 312 TFLOPS dense",
        "peak_int8_ops": "NVIDIA A100 datasheet (2021): INT8 624 TOPS dense",
        "hbm_bytes_per_s": "NVIDIA A100 datasheet (2021): 2,039 GB/s (80 GB SXM)",
        "hbm_bytes": "NVIDIA A100 datasheet (2021): 80 GB",
        "tdp_w": "NVIDIA A100 datasheet (2021): max TDP 400 W",
        "idle_w": "ASSUMPTION: 55 W (not in datasheet)",
        **_COMMON_ASSUMPTIONS,
    },
)

# The datasheet + assumption prior of the H100 preset, kept to show what the calibration changed
# (docs/hardware.md, "Calibration on a real H100"); not in GPU_PRESETS.
H100_SXM_UNCALIBRATED = GPUSpec(
    name="h100_sxm_uncalibrated",
    node_nm=4.0,                   # TSMC 4N; energy estimates use the 7 nm table (nearest published)
    peak_bf16_flops=989.5e12,      # NVIDIA H100 datasheet: BF16 1,979 TFLOPS with sparsity -> 989.5 dense
    peak_int8_ops=1979e12,         # NVIDIA H100 datasheet: INT8 3,958 TOPS with sparsity -> 1,979 dense
    hbm_bytes_per_s=3.35e12,       # NVIDIA H100 datasheet: HBM3 3.35 TB/s (SXM)
    hbm_bytes=80e9,                # NVIDIA H100 datasheet: 80 GB (SXM)
    tdp_w=700.0,                   # NVIDIA H100 datasheet: max TDP up to 700 W (SXM)
    idle_w=70.0,                   # ASSUMPTION: not in datasheet; measured by benchmarks/gpu_energy.py
    compute_efficiency=0.7,        # ASSUMPTION
    bandwidth_efficiency=0.8,      # ASSUMPTION
    memory_power_fraction=0.6,     # ASSUMPTION
    host_overhead_s_per_layer=0.4e-3,  # ASSUMPTION; calibrate with benchmarks/gpu_energy.py
    sources={
        "node_nm": "TSMC 4N (7 nm op table used as nearest published)",
        "peak_bf16_flops": "NVIDIA H100 datasheet (2022/23): BF16 1,979 TFLOPS sparse = 989.5 dense (SXM)",
        "peak_int8_ops": "NVIDIA H100 datasheet: INT8 3,958 TOPS sparse = 1,979 dense (SXM)",
        "hbm_bytes_per_s": "NVIDIA H100 datasheet: 3.35 TB/s HBM3 (SXM)",
        "hbm_bytes": "NVIDIA H100 datasheet: 80 GB (SXM)",
        "tdp_w": "NVIDIA H100 datasheet: up to 700 W (SXM)",
        "idle_w": "ASSUMPTION: 70 W (not in datasheet); measured by benchmarks/gpu_energy.py",
        **_COMMON_ASSUMPTIONS,
    },
)

_H100_MEASURED = "measured 2026-11-25 on NVIDIA H100 80GB HBM3, benchmarks/gpu_energy.py, hw_models/data/gpu_measurements.csv"

H100_SXM = GPUSpec(
    name="h100_sxm",
    node_nm=4.0,                   # TSMC 4N; energy estimates use the 7 nm table (nearest published)
    peak_bf16_flops=989.5e12,      # NVIDIA H100 datasheet: BF16 1,979 TFLOPS with sparsity -> 989.5 dense
    peak_int8_ops=1979e12,         # NVIDIA H100 datasheet: INT8 3,958 TOPS with sparsity -> 1,979 dense
    hbm_bytes_per_s=3.35e12,       # NVIDIA H100 datasheet: HBM3 3.35 TB/s (SXM)
    hbm_bytes=80e9,                # NVIDIA H100 datasheet: 80 GB (SXM)
    tdp_w=700.0,                   # NVIDIA H100 datasheet: max TDP up to 700 W (SXM)
    # MEASURED 2026-11-25 on NVIDIA H100 80GB HBM3, benchmarks/gpu_energy.py,
    # hw_models/data/gpu_measurements.csv: NVML energy counter over 5 s, CUDA context, no work
    idle_w=128.0,
    # FITTED from measured 2026-11-25 on NVIDIA H100 80GB HBM3, benchmarks/gpu_energy.py,
    # hw_models/data/gpu_measurements.csv: joint least squares on log call time over the 6 rows
    # (hw_models.gpu_model.fit_gpu_to_measurements gives 0.4361); pinned by the one compute-bound
    # row (Qwen2.5-7B-shape prefill 1024): eager HF prefill incl. non-GEMM kernels, at ~666 W
    compute_efficiency=0.436,
    bandwidth_efficiency=0.8,      # ASSUMPTION: no measured call is bandwidth-bound in time
    # FITTED from measured 2026-11-25 on NVIDIA H100 80GB HBM3, benchmarks/gpu_energy.py,
    # hw_models/data/gpu_measurements.csv: least squares on log average power over the 6 rows
    # given the fitted times (fit 0.7461; depends on bandwidth_efficiency 0.8)
    memory_power_fraction=0.746,
    # FITTED from measured 2026-11-25 on NVIDIA H100 80GB HBM3, benchmarks/gpu_energy.py,
    # hw_models/data/gpu_measurements.csv: joint least squares on log call time over the 6 rows,
    # overlap model t = max(GPU roofline, layers x h) (fit 0.6761 ms; 5 of 6 rows host-bound);
    # eager PyTorch 2.11 + transformers 5.17 on that machine's host CPU
    host_overhead_s_per_layer=0.676e-3,
    sources={
        "node_nm": "TSMC 4N (7 nm op table used as nearest published)",
        "peak_bf16_flops": "NVIDIA H100 datasheet (2022/23): BF16 1,979 TFLOPS sparse = 989.5 dense (SXM)",
        "peak_int8_ops": "NVIDIA H100 datasheet: INT8 3,958 TOPS sparse = 1,979 dense (SXM)",
        "hbm_bytes_per_s": "NVIDIA H100 datasheet: 3.35 TB/s HBM3 (SXM)",
        "hbm_bytes": "NVIDIA H100 datasheet: 80 GB (SXM)",
        "tdp_w": "NVIDIA H100 datasheet: up to 700 W (SXM)",
        "idle_w": f"MEASURED: 128.0 W, NVML energy counter over 5 s with a CUDA context; {_H100_MEASURED}",
        "compute_efficiency": ("FITTED: 0.436, least squares on log call time over the 6 rows (pinned by the "
                               f"compute-bound 7B prefill; eager HF incl. non-GEMM kernels); {_H100_MEASURED}"),
        "bandwidth_efficiency": _COMMON_ASSUMPTIONS["bandwidth_efficiency"] + " (no measured call is "
                                "bandwidth-bound in time, so the data do not pin it)",
        "memory_power_fraction": ("FITTED: 0.746, least squares on log average power over the 6 rows given the "
                                  f"fitted times (with bandwidth_efficiency 0.8); {_H100_MEASURED}"),
        "host_overhead_s_per_layer": ("FITTED: 0.676 ms per decoder layer per forward call, least squares on log "
                                      "call time over the 6 rows, overlap model (eager PyTorch 2.11 + transformers "
                                      f"5.17); {_H100_MEASURED}"),
    },
)

_H200_MEASURED = ("measured 2026-12-02 on NVIDIA H200 (driver 580.159.04), benchmarks/gpu_energy.py, "
                  "hw_models/data/gpu_measurements.csv")

H200_SXM = GPUSpec(
    name="h200_sxm",
    node_nm=4.0,                   # TSMC 4N
    peak_bf16_flops=989.5e12,      # NVIDIA H200 datasheet (2024): BF16 1,979 TFLOPS sparse -> 989.5 dense
    peak_int8_ops=1979e12,         # NVIDIA H200 datasheet (2024): INT8 3,958 TOPS sparse -> 1,979 dense
    hbm_bytes_per_s=4.8e12,        # NVIDIA H200 datasheet (2024): HBM3e 4.8 TB/s
    hbm_bytes=141e9,               # NVIDIA H200 datasheet (2024): 141 GB
    tdp_w=700.0,                   # NVIDIA H200 datasheet (2024): max TDP up to 700 W (SXM); NVML limit 700 W
    # MEASURED 2026-12-02 on NVIDIA H200, benchmarks/gpu_energy.py: NVML energy counter over 5 s
    # with a CUDA context, two runs (121.8 W, 124.5 W); median of the rows' idle_power_w
    idle_w=123.15,
    # FITTED (hw_models.gpu_calibration.fit_gpu_to_measurements on the 8 H200 eager rows, prior
    # 0.7): pinned by the compute-bound Qwen2.5-7B-shape prefill 4096 (eager HF incl. non-GEMM kernels)
    compute_efficiency=0.502,
    bandwidth_efficiency=0.8,      # ASSUMPTION: no measured call is bandwidth-bound in time
    # FITTED as above: least squares on log average power given the fitted times
    memory_power_fraction=0.700,
    # FITTED as above: one per-layer host time for prefill and decode (the regimes of
    # hw_models.gpu_regimes use the machine's probed host profile instead); eager PyTorch 2.11 +
    # transformers 5.17 on that machine's CPU
    host_overhead_s_per_layer=1.072e-3,
    sources={
        "node_nm": "TSMC 4N (7 nm op table used as nearest published)",
        "peak_bf16_flops": "NVIDIA H200 datasheet (2024): BF16 1,979 TFLOPS sparse = 989.5 dense",
        "peak_int8_ops": "NVIDIA H200 datasheet (2024): INT8 3,958 TOPS sparse = 1,979 dense",
        "hbm_bytes_per_s": "NVIDIA H200 datasheet (2024): 4.8 TB/s HBM3e",
        "hbm_bytes": "NVIDIA H200 datasheet (2024): 141 GB",
        "tdp_w": "NVIDIA H200 datasheet (2024): up to 700 W (SXM)",
        "idle_w": f"MEASURED: 123.15 W, median of two 5 s NVML idle readings (121.8, 124.5 W); {_H200_MEASURED}",
        "compute_efficiency": ("FITTED: 0.502, least squares on log call time over the 8 eager rows (pinned by the "
                               f"compute-bound 7B prefill 4096); {_H200_MEASURED}"),
        "bandwidth_efficiency": _COMMON_ASSUMPTIONS["bandwidth_efficiency"] + " (no measured call is "
                                "bandwidth-bound in time, so the data do not pin it)",
        "memory_power_fraction": f"FITTED: 0.700, least squares on log average power over the 8 eager rows; {_H200_MEASURED}",
        "host_overhead_s_per_layer": ("FITTED: 1.072 ms per decoder layer per forward call (one value for prefill and "
                                      f"decode; hw_models.gpu_regimes uses the probed host profile); {_H200_MEASURED}"),
    },
)

GPU_PRESETS: dict[str, GPUSpec] = {g.name: g for g in (A100_SXM, H100_SXM, H200_SXM)}

#: the short names the CLI uses -> preset names
GPU_ALIASES: dict[str, str] = {"a100": "a100_sxm", "h100": "h100_sxm", "h200": "h200_sxm"}


def get_gpu(name: str) -> GPUSpec:
    """Preset by name: ``a100_sxm``, ``h100_sxm``, ``h200_sxm`` or the short ``a100``, ``h100``, ``h200``."""
    if not isinstance(name, str):
        raise TypeError(f"get_gpu: expected a preset name, got {type(name).__name__}")
    key = GPU_ALIASES.get(name.strip().lower(), name.strip().lower())
    try:
        return GPU_PRESETS[key]
    except KeyError:
        raise ValueError(f"unknown GPU preset {name!r}; choose one of "
                         f"{', '.join(f'{a} ({p})' for a, p in GPU_ALIASES.items())}") from None
