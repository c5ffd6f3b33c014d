"""Roofline latency and energy of dense inference on a GPU (s, J).

Latency of a kernel = max(FLOPs / (peak x compute_efficiency), bytes / (bandwidth x
bandwidth_efficiency)); a forward call also pays the host (Python / launch) time of its
software regime, which overlaps with GPU work: ``t = max(max(t_compute, t_memory) +
t_elementwise, layers x host_s_per_layer [+ host_s_per_step for a decode step])``. In the
measured regimes (eager, hf-generate) a prefill's ``t_compute`` is the sum of its GEMM and
attention kernels' measured times (:mod:`hw_models.gpu_kernels`) and ``t_elementwise`` the HBM
time of an eager model's unfused elementwise kernels; elsewhere ``t_elementwise`` is 0.

Energy, two views (both reported):

* power x time (the headline ``energy_per_token_j``): ``P = idle + (TDP - idle) x min(1,
  max(u_compute, memory_power_fraction x u_memory) + u_elementwise)`` with ``u = busy time / t``
  (:func:`call_power_w`); a host-bound call draws little above idle.
* op + byte (labelled ``opbyte``, the other view): MACs x MAC energy + HBM bytes x HBM energy (op tables of
  :mod:`hw_models.op_energy`, 7 nm: the nearest published node for A100/H100/H200), plus
  idle power x time. The difference to power x time is reported as ``other`` (clock tree,
  register files, caches, control: what the op + byte view leaves out).

Software regimes (:mod:`hw_models.gpu_regimes`): ``hardware`` (roofline, no host), ``eager``
and ``hf-generate`` (host time fitted to NVML measurements by :mod:`hw_models.gpu_calibration`).
Every result names its regime, its headline view (power x time), whether its parameters were
fitted on measurements of that GPU (``calibrated``) and a [low, high] range.
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from ._checks import check_layer_activity, finite_nonneg, positive_int
from .activity import Activity
from .gpu_kernels import gemm_key, kernel_profile, kernel_time_s, profiled_prefill_s
from .gpu_regimes import REGIMES, Regime, get_regime
from .gpus import DTYPES, GPUSpec
from .op_energy import JOUPPI_7NM, OpEnergyTable
from .results import LayerResult, PlatformResult
from .shapes import ModelShape, eager_elementwise_bytes_per_token

#: which energy view a GPU result's ``energy_per_token_j`` is (the other is in ``details``)
HEADLINE_VIEW = "power x time"
OTHER_VIEW = "op + byte (+ idle)"

PJ = 1e-12


def mac_energy_pj(dtype: str, table: OpEnergyTable = JOUPPI_7NM) -> float:
    """Energy of one dense MAC on tensor cores (pJ): bf16 -> FP16 mult + FP32 add (ESTIMATE);
    int8 -> INT8 mult + INT32 add (ESTIMATE: 32-bit accumulation)."""
    if dtype == "bf16":
        return table.bf16_mac_fp32_acc
    if dtype == "int8":
        return table.int8_mult + table.int32_add
    raise ValueError(f"unknown GPU dtype {dtype!r}; choose one of {', '.join(DTYPES)}")


def _bytes_per_weight(dtype: str) -> float:
    if dtype not in DTYPES:
        raise ValueError(f"unknown GPU dtype {dtype!r}; choose one of {', '.join(DTYPES)}")
    return 2.0 if dtype == "bf16" else 1.0


def roofline(gpu: GPUSpec, flops: float, nbytes: float, dtype: str = "bf16") -> tuple[float, float]:
    """(compute time, memory time) in s of work of ``flops`` and ``nbytes`` on ``gpu``."""
    finite_nonneg("roofline", "flops", flops)
    finite_nonneg("roofline", "nbytes", nbytes)
    t_c = flops / (gpu.peak_ops(dtype) * gpu.compute_efficiency)
    t_m = nbytes / (gpu.hbm_bytes_per_s * gpu.bandwidth_efficiency)
    return t_c, t_m


def board_power_w(gpu: GPUSpec, t_compute: float, t_memory: float, t_total: float) -> float:
    """Average board power (W) of a call that lasts ``t_total`` with the given busy times (no
    elementwise phase: :func:`call_power_w` with ``t_elementwise`` = 0)."""
    if t_total <= 0:
        return gpu.idle_w
    return float(call_power_w(gpu, t_compute, t_memory, 0.0, t_total))


def resolve_regime(gpu: GPUSpec, regime: str | Regime | None, host_overhead: bool = True) -> Regime:
    """The :class:`Regime` a call uses: a Regime as given, a name through
    :func:`hw_models.gpu_regimes.get_regime`, None -> "eager" if ``host_overhead`` else "hardware"."""
    if isinstance(regime, Regime):
        return regime
    if regime is None:
        if not host_overhead:
            return get_regime(gpu, "hardware")
        # the old switch: the preset's own per-layer host overhead (honours GPUSpec.with_changes)
        fit = get_regime(gpu, "eager")
        src = gpu.sources.get("host_overhead_s_per_layer", "")
        return Regime("eager", fit.fitted_on, gpu.host_overhead_s_per_layer, 0.0, None, None, fit.energy_spread,
                      fit.time_spread, calibrated=src.startswith("FITTED") and fit.calibrated,
                      source=f"{gpu.name} preset host_overhead_s_per_layer: {src or 'assumption'}")
    if not isinstance(regime, str):
        raise TypeError(f"regime must be a name ({', '.join(REGIMES)}) or a Regime, got {type(regime).__name__}")
    return get_regime(gpu, regime)


def call_power_w(gpu: GPUSpec, t_compute, t_memory, t_elementwise, t_total):
    """Average board power (W) of a call of ``t_total`` s: its GEMM / attention phase (compute
    busy ``t_compute``, HBM busy ``t_memory``, overlapped) draws ``max(u_c, f x u_m)`` of the span
    above idle (f = memory_power_fraction), its unfused elementwise phase (``t_elementwise``,
    serial) the whole span: ESTIMATE, those kernels keep the SMs (float32 casts, rsqrt, SiLU) and
    HBM busy at once; measured on the H200, the SmolLM2 batch-16 prefills, about half of them
    elementwise by our count, ran at the 700 W limit (hw_models/data/gpu_measurements.csv).
    u = busy / total; works on floats and numpy arrays."""
    u_c = np.minimum(1.0, t_compute / t_total)
    u_m = np.minimum(1.0, t_memory / t_total)
    u_e = np.minimum(1.0, t_elementwise / t_total)
    frac = np.minimum(1.0, np.maximum(u_c, gpu.memory_power_fraction * u_m) + u_e)
    return gpu.idle_w + (gpu.tdp_w - gpu.idle_w) * frac


def _prefill_profile(reg: Regime, mode: str, dtype: str) -> dict[str, float]:
    """The kernel profile that prices a bf16 prefill in ``reg`` ({} when none applies)."""
    return kernel_profile(reg.kernel_profile) if reg.kernel_profile and mode == "prefill" and dtype == "bf16" else {}


def call_times(gpu: GPUSpec, reg: Regime, shape: ModelShape, work: dict, mode: str, batch: int, prompt_len: int,
               dtype: str = "bf16") -> dict[str, float | bool]:
    """The parts of one call's time (s): ``t_compute_s`` (kernel profile for a profiled prefill,
    else FLOPs / (peak x efficiency)), ``t_memory_s`` (HBM bytes / bandwidth), ``t_elementwise_s``
    (unfused elementwise bytes / bandwidth, 0 unless the regime runs eagerly), ``t_host_s``, and
    ``profiled`` (whether the compute time came from the profile)."""
    g = reg.gpu(gpu)
    t_c, t_m = roofline(g, work["flops"], work["bytes"], dtype)
    profile = _prefill_profile(reg, mode, dtype)
    if profile:
        head, _ = roofline(g, work["lm_head_flops"], 0.0, dtype)
        t_c = profiled_prefill_s(shape, batch, prompt_len, profile) + head
    t_e = 0.0
    if reg.unfused_elementwise:
        t_e = roofline(g, 0.0, shape.eager_elementwise_bytes(work["tokens"]), dtype)[1]
    return {"t_compute_s": t_c, "t_memory_s": t_m, "t_elementwise_s": t_e,
            "t_host_s": reg.host_s(shape.layers, mode), "profiled": bool(profile)}


def _forward(gpu: GPUSpec, reg: Regime, shape: ModelShape, work: dict, mode: str, batch: int, prompt_len: int,
             dtype: str, table: OpEnergyTable) -> dict[str, float | str]:
    g = reg.gpu(gpu)
    parts = call_times(gpu, reg, shape, work, mode, batch, prompt_len, dtype)
    t_c, t_m, t_e, t_h = (float(parts[k]) for k in ("t_compute_s", "t_memory_s", "t_elementwise_s", "t_host_s"))
    t_gpu = max(t_c, t_m) + t_e
    t = max(t_gpu, t_h)
    bound = "host" if t_h > t_gpu else ("compute" if t_c >= t_m + t_e else "memory")
    p = float(call_power_w(g, t_c, t_m, t_e, t))
    n = work["tokens"]
    ew_bytes = shape.eager_elementwise_bytes(n) if reg.unfused_elementwise else 0.0
    opbyte = (work["flops"] / 2.0 * mac_energy_pj(dtype, table) + (work["bytes"] + ew_bytes) * table.hbm_pj_per_byte) * PJ
    opbyte += g.idle_w * t
    return {"time_s": t, "tokens": n, "latency_per_token_s": t if mode == "decode" else t / n, "power_w": p,
            "energy_per_token_j": p * t / n, "energy_per_token_opbyte_j": opbyte / n,
            "t_compute_s": t_c, "t_memory_s": t_m, "t_elementwise_s": t_e, "t_host_s": t_h, "bound": bound,
            "compute_profiled": bool(parts["profiled"])}


def predict_forward(
    gpu: GPUSpec,
    shape: ModelShape,
    mode: str,
    batch: int = 1,
    prompt_len: int = 1024,
    context: float | None = None,
    dtype: str = "bf16",
    host_overhead: bool = True,
    table: OpEnergyTable = JOUPPI_7NM,
    regime: str | Regime | None = None,
) -> dict[str, float | str | bool]:
    """Predict one forward call of a whole model (see :meth:`ModelShape.dense_work`).

    Args:
        regime: "hardware", "eager", "hf-generate" or a :class:`Regime`; None keeps the old
            switch: ``host_overhead`` True -> "eager" with the preset's own
            ``host_overhead_s_per_layer`` and efficiencies, False -> "hardware".

    Returns:
        dict: ``time_s`` (per call), ``tokens`` (new tokens per call), ``latency_per_token_s``
        (= time_s for decode, time_s / tokens for prefill) with ``latency_per_token_s_low`` /
        ``_high``, ``power_w``, ``energy_per_token_j`` (headline: power x time) with
        ``energy_per_token_j_low`` / ``_high``, ``energy_per_token_opbyte_j`` (op + byte + idle),
        ``t_compute_s``, ``t_memory_s``, ``t_host_s``, ``bound`` ("compute", "memory", "host"),
        ``regime``, ``calibrated``, ``view``.
    """
    wb = _bytes_per_weight(dtype)
    work = shape.dense_work(mode, batch=batch, prompt_len=prompt_len, context=context, weight_bytes=wb)
    reg = resolve_regime(gpu, regime, host_overhead)
    out: dict[str, float | str | bool] = dict(_forward(gpu, reg, shape, work, mode, batch, prompt_len, dtype, table))
    e, s = float(out["energy_per_token_j"]), float(out["latency_per_token_s"])
    out.update({
        "energy_per_token_j_low": e * reg.energy_spread[0], "energy_per_token_j_high": e * reg.energy_spread[1],
        "latency_per_token_s_low": s * reg.time_spread[0], "latency_per_token_s_high": s * reg.time_spread[1],
        "regime": reg.name, "calibrated": reg.calibrated, "view": HEADLINE_VIEW,
        "flops": work["flops"], "bytes": work["bytes"],
    })
    return out


def fit_host_overhead(measured_time_s: float, predicted: dict, layers: int) -> float:
    """Host overhead per decoder layer (s) implied by a measured call time: the time not
    explained by the GPU roofline, spread over the layers (0 if the GPU bound explains it).

    This is the serial view (host time added to GPU time), a lower bound; the preset is fitted
    with the overlap model of :func:`predict_forward` by :func:`fit_gpu_to_measurements`."""
    finite_nonneg("fit_host_overhead", "measured_time_s", measured_time_s)
    positive_int("fit_host_overhead", "layers", layers)
    hw = max(float(predicted["t_compute_s"]), float(predicted["t_memory_s"]))
    return max(0.0, measured_time_s - hw) / layers


def run_on_gpu(
    acts: Iterable[Activity],
    gpu: GPUSpec,
    mode: str = "decode",
    batch: int = 1,
    dtype: str = "bf16",
    host_overhead: bool = False,
    table: OpEnergyTable = JOUPPI_7NM,
    regime: str | Regime | None = None,
) -> PlatformResult:
    """The same linear layers as ``acts``, computed densely on ``gpu`` (roofline + host time).

    Args:
        acts: per-layer records; only their shapes and token counts are used (a dense engine
            does the same work whatever the spikes).
        mode: "decode" (one token per sequence per call, ``batch`` sequences share each weight
            read) or "prefill" (all ``tokens`` of the trace in one call, weights read once).
        batch: decode batch size.
        dtype: "bf16" (2-byte weights, BF16 peak) or "int8" (W8A8: 1-byte weights, INT8 peak).
        host_overhead: used only when ``regime`` is None: True -> "eager", False -> "hardware".
        regime: "hardware" (roofline, no host), "eager" or "hf-generate" (host time per decoder
            layer, counted from the q-projection records, and per decode step), or a
            :class:`Regime`.

    Returns:
        :class:`PlatformResult`; categories: compute (MAC energy), memory (HBM bytes),
        static (idle x time), other (power x time minus the rest; never negative). The
        headline ``energy_per_token_j`` is the power x time view; ``details`` carries
        ``regime``, ``view``, ``calibrated``, the other view (``opbyte_j_per_token``) and the
        ranges ``energy_per_token_j_low`` / ``_high``, ``latency_per_token_s_low`` / ``_high``.
    """
    acts = list(acts)
    if not acts:
        raise ValueError("run_on_gpu: no Activity records")
    if not isinstance(gpu, GPUSpec):
        raise TypeError(f"run_on_gpu: expected a GPUSpec, got {type(gpu).__name__}")
    positive_int("run_on_gpu", "batch", batch)
    if mode not in ("decode", "prefill"):
        raise ValueError(f"run_on_gpu: mode must be 'decode' or 'prefill', got {mode!r}")
    for a in acts:
        check_layer_activity(a, "run_on_gpu")
    tokens = {a.tokens for a in acts}
    if len(tokens) != 1:
        raise ValueError(f"run_on_gpu: records cover different token counts {sorted(tokens)}")
    n_tok = tokens.pop()
    wb = _bytes_per_weight(dtype)
    e_mac = mac_energy_pj(dtype, table)
    reg = resolve_regime(gpu, regime, host_overhead)
    gpu_used = reg.gpu(gpu)

    profile = _prefill_profile(reg, mode, dtype)
    per_layer = []
    for a in acts:
        w_bytes = a.in_features * a.out_features * wb
        act_bytes = (a.in_features + a.out_features) * 2.0  # bf16 activations in and out
        macs_tok = float(a.in_features * a.out_features)
        if mode == "decode":
            # one call per step of `batch` tokens; weights read once per call
            t_c, t_m = roofline(gpu_used, 2.0 * macs_tok * batch, w_bytes + act_bytes * batch, dtype)
            t_c, t_m = t_c / batch, t_m / batch                   # per token
            bytes_tok = w_bytes / batch + act_bytes
        else:
            t_c, t_m = roofline(gpu_used, 2.0 * macs_tok * n_tok, w_bytes + act_bytes * n_tok, dtype)
            if profile and a.role != "lm_head":                  # the GEMM's measured time (gpu_kernels)
                t_c = kernel_time_s({"key": gemm_key(n_tok, a.in_features, a.out_features), "op": "gemm",
                                     "m": n_tok, "k": a.in_features, "n": a.out_features,
                                     "flops": 2.0 * macs_tok * n_tok}, profile)
            t_c, t_m = t_c / n_tok, t_m / n_tok
            bytes_tok = w_bytes / n_tok + act_bytes
        per_layer.append((a, t_c, t_m, macs_tok, bytes_tok))

    # unfused elementwise kernels of an eager model (per token, all layers), from the layers' widths
    t_e = 0.0
    if reg.unfused_elementwise:
        width = {r: {a.name.rsplit(".", 2)[0]: a for a in acts if a.role == r} for r in ("q", "k", "gate")}
        ew = sum(eager_elementwise_bytes_per_token(q.in_features, q.out_features,
                                                   width["k"][blk].out_features if blk in width["k"] else 0,
                                                   width["gate"][blk].out_features if blk in width["gate"] else 0)
                 for blk, q in width["q"].items())
        t_e = roofline(gpu_used, 0.0, ew, dtype)[1]
    t_lin = sum(max(t_c, t_m) for _, t_c, t_m, _, _ in per_layer)
    t_hw = t_lin + t_e
    n_dec = sum(1 for a in acts if a.role == "q") or max(1, len(acts) // 7)
    calls_per_token = 1.0 / batch if mode == "decode" else 1.0 / n_tok
    t_call = reg.host_s(n_dec, mode)
    t_host = t_call * calls_per_token
    latency = max(t_hw, t_host)
    stretch = latency / t_hw if t_hw > 0 else 1.0

    layers: list[LayerResult] = []
    for a, t_c, t_m, macs_tok, bytes_tok in per_layer:
        share = max(t_c, t_m) / t_lin if t_lin > 0 else 0.0
        t_layer = (max(t_c, t_m) + t_e * share) * stretch       # wall time attributed to this layer
        p = float(call_power_w(gpu_used, t_c, t_m, t_e * share, t_layer)) if t_layer > 0 else gpu_used.idle_w
        pt = p * t_layer * n_tok
        compute = macs_tok * e_mac * PJ * n_tok
        memory = bytes_tok * table.hbm_pj_per_byte * PJ * n_tok
        static = gpu_used.idle_w * t_layer * n_tok
        other = max(0.0, pt - compute - memory - static)
        layers.append(LayerResult(
            name=a.name, role=a.role, tokens=n_tok, compute_j=compute, memory_j=memory, routing_j=0.0,
            static_j=static, other_j=other, latency_s=t_layer,
            details={"power_time_j": pt, "opbyte_j": compute + memory + static, "power_w": p,
                     "t_compute_s": t_c, "t_memory_s": t_m,
                     "bound": 1.0 if t_c >= t_m else 0.0},
        ))
    pt_total = sum(l.details["power_time_j"] for l in layers)
    ob_total = sum(l.details["opbyte_j"] for l in layers)
    e_tok = pt_total / n_tok
    notes = [
        f"{gpu.name} [{reg.name}]: dense {dtype} roofline, {mode}"
        + (f" batch {batch}" if mode == "decode" else f" of {n_tok} tokens") + f"; {regime_note(reg)}",
        f"{gpu.name} J/token headline view: {HEADLINE_VIEW} (board power model x time); the {OTHER_VIEW} view "
        "is opbyte_j_per_token (7 nm op table, nearest published node); 'other' = power x time - op/byte/idle",
    ]
    if not reg.calibrated:
        notes.append(f"{gpu.name} [{reg.name}]: UNCALIBRATED: no NVML measurement of this GPU in this regime "
                     "(hw_models/data/gpu_measurements.csv); values rest on datasheet figures and assumptions")
    return PlatformResult(
        platform=gpu.name, kind="gpu", tokens=n_tok, layers=layers, latency_s=latency, devices=1,
        mode=mode, notes=notes,
        details={"power_time_j_per_token": e_tok, "opbyte_j_per_token": ob_total / n_tok,
                 "t_hw_s": t_hw, "t_host_s": t_host, "batch": float(batch),
                 "regime": reg.name, "view": HEADLINE_VIEW, "other_view": OTHER_VIEW, "calibrated": reg.calibrated,
                 "energy_per_token_j_low": e_tok * reg.energy_spread[0],
                 "energy_per_token_j_high": e_tok * reg.energy_spread[1],
                 "latency_per_token_s_low": latency * reg.time_spread[0],
                 "latency_per_token_s_high": latency * reg.time_spread[1]},
    )


def regime_note(reg: Regime) -> str:
    """One line naming a regime's host time and where its parameters come from."""
    if reg.name == "hardware":
        return "regime hardware: host overhead excluded (hardware bound: roofline only; host-free execution not measured)"
    step = f" + {reg.host_s_per_step * 1e3:.3g} ms per decode step" if reg.host_s_per_step else ""
    dec = (f" ({reg.decode_host_s_per_layer * 1e3:.3g} ms per layer in a decode step)"
           if reg.decode_host_s_per_layer is not None else "")
    src = f"fitted on {reg.fitted_on} NVML measurements" if reg.fitted_on else "assumed"
    return f"regime {reg.name}: host {reg.host_s_per_layer * 1e3:.3g} ms per decoder layer per call{dec}{step} ({src})"
