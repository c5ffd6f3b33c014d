"""GPU software regimes: what runs the model decides the host time, often more than the GPU.

A regime is a parameter set of :func:`hw_models.gpu_model.predict_forward`:

* ``hardware``: the roofline alone (no host time); the GPU preset's efficiencies. A lower
  bound: no host-free run (CUDA graphs, a serving engine) was measured.
* ``eager``: a plain PyTorch decode loop calling a Hugging Face model's ``forward`` with a KV
  cache (benchmarks/gpu_energy.py ``run_decode``).
* ``hf-generate``: transformers ``generate`` (greedy, dynamic cache).

Host time of one forward call = decoder layers x host s per layer (kernel launches, Python;
``host_s_per_layer`` in a prefill call, ``decode_host_s_per_layer`` in a decode step) [+
``host_s_per_step``, 0 in the fitted regimes]; it overlaps with GPU work:
``t = max(t_compute, t_memory, t_host)``.

A regime splits into a HOST PROFILE (the host s per layer: a property of the machine's CPU and
software stack, measured by the SmolLM2 host probe on that machine) and a GPU SIDE (compute
efficiency, memory power fraction: a property of the GPU). The ``eager`` and ``hf-generate``
constants are FITTED (hw_models.gpu_calibration.fit_regime) to NVML measurements in
hw_models/data/gpu_measurements.csv (benchmarks/gpu_energy.py); docs/gpu-regimes.md.
"""
from __future__ import annotations

from dataclasses import dataclass

from ._checks import finite_nonneg, fraction
from .gpus import GPU_ALIASES, GPUSpec

REGIMES: tuple[str, ...] = ("hardware", "eager", "hf-generate")

#: GPU preset -> the device whose kernel profile (hw_models/data/gpu_kernels.csv) its measured
#: regimes use for prefill GEMMs and attention. The H100 SXM uses the H200's: the same GH100
#: compute die (132 SMs, 1,980 MHz boost, 989.5 TFLOPS dense bf16 in both datasheets: NVIDIA
#: H100 Tensor Core GPU datasheet; NVIDIA H200 Tensor Core GPU datasheet) and the same 700 W
#: limit; only HBM differs, which the roofline's bandwidth term carries.
KERNEL_PROFILES: dict[str, str] = {"h100_sxm": "H200", "h200_sxm": "H200"}


@dataclass(frozen=True)
class Regime:
    """Parameters of one software regime on one GPU (s, fractions).

    Attributes:
        name: one of :data:`REGIMES`.
        fitted_on: GPU preset whose measurements fitted it ("" = none).
        host_s_per_layer: host time per decoder layer per forward call (s).
        host_s_per_step: extra host time per decode step (s); prefill calls do not pay it.
        decode_host_s_per_layer: host time per decoder layer per decode step (s), measured by
            the machine's host probe (None: ``host_s_per_layer`` in decode too).
        compute_efficiency: achieved fraction of dense peak on compute-bound calls (None = the
            GPU preset's).
        memory_power_fraction: fraction of (TDP - idle) drawn when bandwidth-bound (None = the
            GPU preset's).
        energy_spread: (low, high) factors on J/token: min and max of measured / predicted over
            the rows it was fitted on (hardware: over its parameters' plausible ranges).
        time_spread: the same for s/token.
        calibrated: True when fitted on measurements of the GPU it is used for.
        source: where the values come from.
        kernel_profile: NVML device name (e.g. "H200") whose kernel profile
            (hw_models/data/gpu_kernels.csv) gives a prefill's GEMM and attention time
            (:mod:`hw_models.gpu_kernels`); "" = FLOPs / (peak x compute efficiency).
        unfused_elementwise: the software runs a Hugging Face model eagerly, one kernel per
            elementwise op: their HBM traffic
            (:meth:`hw_models.shapes.ModelShape.eager_elementwise_bytes`) adds memory time.
    """

    name: str
    fitted_on: str
    host_s_per_layer: float
    host_s_per_step: float = 0.0
    compute_efficiency: float | None = None
    memory_power_fraction: float | None = None
    energy_spread: tuple[float, float] = (1.0, 1.0)
    time_spread: tuple[float, float] = (1.0, 1.0)
    calibrated: bool = False
    source: str = ""
    decode_host_s_per_layer: float | None = None
    kernel_profile: str = ""
    unfused_elementwise: bool = False

    def __post_init__(self) -> None:
        owner = f"Regime {self.name!r}"
        if self.name not in REGIMES:
            raise ValueError(f"unknown GPU regime {self.name!r}; choose one of {', '.join(REGIMES)}")
        finite_nonneg(owner, "host_s_per_layer", self.host_s_per_layer)
        finite_nonneg(owner, "host_s_per_step", self.host_s_per_step)
        if self.decode_host_s_per_layer is not None:
            finite_nonneg(owner, "decode_host_s_per_layer", self.decode_host_s_per_layer)
        if self.compute_efficiency is not None and not 0 < self.compute_efficiency <= 1:
            raise ValueError(f"{owner}: compute_efficiency must be in (0, 1], got {self.compute_efficiency}")
        if self.memory_power_fraction is not None:
            fraction(owner, "memory_power_fraction", self.memory_power_fraction)
        for name in ("energy_spread", "time_spread"):
            lo, hi = getattr(self, name)
            if not 0 < lo <= 1 <= hi:
                raise ValueError(f"{owner}: {name} must satisfy 0 < low <= 1 <= high, got {(lo, hi)}")

    def host_s(self, layers: int, mode: str) -> float:
        """Host time of one forward call (s) of a model of ``layers`` decoder layers in ``mode``."""
        if mode == "decode":
            per_layer = self.host_s_per_layer if self.decode_host_s_per_layer is None else self.decode_host_s_per_layer
            return layers * per_layer + self.host_s_per_step
        return layers * self.host_s_per_layer

    def gpu(self, gpu: GPUSpec) -> GPUSpec:
        """``gpu`` with this regime's efficiency and power overrides applied."""
        changes = {}
        if self.compute_efficiency is not None:
            changes["compute_efficiency"] = self.compute_efficiency
        if self.memory_power_fraction is not None:
            changes["memory_power_fraction"] = self.memory_power_fraction
        return gpu.with_changes(**changes, sources=gpu.sources) if changes else gpu


# ASSUMPTION (hardware regime range): the achieved fraction of peak on a host-free run is not
# measured here; 0.6-0.92 of peak HBM bandwidth and 0.45-0.85 of dense peak bracket published
# decode/GEMM efficiencies, so time at the bound spans about 0.87x-1.33x of the 0.8 / 0.7 priors,
# and board power at the bound (memory power fraction 0.5-1.0) another 0.8x-1.2x.
HARDWARE_TIME_SPREAD = (0.87, 1.33)
HARDWARE_ENERGY_SPREAD = (0.87 * 0.8, 1.33 * 1.2)
# ASSUMPTION (an eager regime on a GPU never measured, host time from the preset's
# host_overhead_s_per_layer): host time differs between machines by up to 2x in our own rows
# (H100 vs H200 machines, eager decode 18 vs 29-58 ms per step), so 0.5x-2x.
UNMEASURED_SPREAD = (0.5, 2.0)

_H100 = "hw_models/data/gpu_measurements.csv, NVIDIA H100 80GB HBM3, 2026-11-25, torch 2.11, transformers 5.17"
_H200 = ("hw_models/data/gpu_measurements.csv, NVIDIA H200 (driver 580.159.04), 2026-12-02, torch 2.11, "
         "transformers 5.17")

#: (GPU preset, regime) -> parameters FITTED by hw_models.gpu_calibration.fit_regime on that GPU's rows
#: (tests/test_hw_calibration.py re-fits them from the CSV and checks these values)
FITTED_REGIMES: dict[tuple[str, str], Regime] = {}


def _fitted(r: Regime) -> None:
    FITTED_REGIMES[(r.fitted_on, r.name)] = r


def get_regime(gpu: GPUSpec, name: str) -> Regime:
    """The parameters of regime ``name`` on ``gpu``.

    ``hardware``: no host time, the preset's efficiencies (calibrated when the preset's idle
    power and efficiencies were fitted on measurements, i.e. some regime was fitted on it).
    ``eager`` / ``hf-generate``: the fit on this GPU's measurements if there is one
    (calibrated); else, uncalibrated, ``eager`` uses the preset's ``host_overhead_s_per_layer``
    and ``hf-generate`` borrows the host times fitted on another GPU's machine.
    """
    if not isinstance(name, str) or name not in REGIMES:
        raise ValueError(f"unknown GPU regime {name!r}; choose one of {', '.join(REGIMES)}")
    if not isinstance(gpu, GPUSpec):
        raise TypeError(f"get_regime: expected a GPUSpec, got {type(gpu).__name__}")
    preset = GPU_ALIASES.get(gpu.name, gpu.name)  # a spec renamed for display (h200) is still its preset
    measured_gpu = any(g == preset for g, _ in FITTED_REGIMES)
    if name == "hardware":
        return Regime("hardware", "", 0.0, 0.0, None, None, HARDWARE_ENERGY_SPREAD, HARDWARE_TIME_SPREAD,
                      calibrated=measured_gpu,
                      source="roofline, no host time; efficiencies and idle power of the GPU preset")
    fit = FITTED_REGIMES.get((preset, name))
    if fit is not None:
        return fit
    profile = KERNEL_PROFILES.get(preset, "")
    if name == "eager":
        return Regime("eager", "", gpu.host_overhead_s_per_layer, 0.0, None, None, UNMEASURED_SPREAD,
                      UNMEASURED_SPREAD, calibrated=False, kernel_profile=profile, unfused_elementwise=True,
                      source=f"{gpu.name} preset host_overhead_s_per_layer ({gpu.sources.get('host_overhead_s_per_layer', 'assumption')})")
    donors = [r for (g, n), r in FITTED_REGIMES.items() if n == name]
    if not donors:
        raise ValueError(f"get_regime: no measurements of regime {name!r} on any GPU")
    d = donors[-1]
    lo = min(d.energy_spread[0], d.time_spread[0], UNMEASURED_SPREAD[0])
    hi = max(d.energy_spread[1], d.time_spread[1], UNMEASURED_SPREAD[1])
    return Regime(name, d.fitted_on, d.host_s_per_layer, d.host_s_per_step, None, None, (lo, hi), (lo, hi),
                  calibrated=False, source=f"host times fitted on {d.fitted_on}'s machine ({d.source}); "
                  f"not measured on {gpu.name}", decode_host_s_per_layer=d.decode_host_s_per_layer,
                  kernel_profile=profile, unfused_elementwise=True)


# FITTED by hw_models.gpu_calibration.fit_regime: host profile from the machine's SmolLM2 probe rows
# (prefill 1024 and decode b1, repeats pooled by their median: call time / 30 layers); prefill GEMMs
# and attention from the H200 kernel profile (hw_models/data/gpu_kernels.csv, not fitted); unfused
# elementwise traffic of the eager model; memory power fraction by least squares given those. No
# fitted regime pins a compute efficiency any more (every prefill is profiled): None = the preset's.
# H100: the 6 eager rows (2026-11-25): SmolLM2-135M-arch and Qwen2.5-7B-shape bf16, prefill 1024,
# decode 128 steps at 1024, batch 1 / 16.
_fitted(Regime("eager", "h100_sxm", host_s_per_layer=0.7411e-3, decode_host_s_per_layer=0.6034e-3,
               memory_power_fraction=0.656, energy_spread=(0.868, 1.240), time_spread=(1.0, 1.167),
               calibrated=True, source=_H100, kernel_profile="H200", unfused_elementwise=True))
# H200: the 69 eager rows of six runs on 2026-12-02 (SmolLM2-135M-arch, Qwen2.5-0.5B-shape and
# Qwen2.5-7B-shape; prefill 1024 / 4096 at batch 1 / 16, decode 128 at 1024, batch 1 / 16; 18
# workloads; the host probes and the host-bound targets repeated 4-13 times in interleaved rounds,
# benchmarks/gpu_probe_rounds.sh): host time on that VM drifted by up to 1.9x between runs minutes
# apart, hence the spreads (docs/gpu-regimes.md)
_fitted(Regime("eager", "h200_sxm", host_s_per_layer=0.7690e-3, decode_host_s_per_layer=0.7507e-3,
               memory_power_fraction=0.862, energy_spread=(0.863, 1.374), time_spread=(0.927, 1.323),
               calibrated=True, source=_H200, kernel_profile="H200", unfused_elementwise=True))
# FITTED as above to the 30 H200 transformers-generate rows (2026-12-02), same workloads
_fitted(Regime("hf-generate", "h200_sxm", host_s_per_layer=0.8524e-3, decode_host_s_per_layer=0.8787e-3,
               memory_power_fraction=1.0, energy_spread=(0.853, 1.409), time_spread=(0.819, 1.351),
               calibrated=True, source=_H200, kernel_profile="H200", unfused_elementwise=True))
