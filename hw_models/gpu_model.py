"""Roofline latency and energy of dense inference on a GPU (s, J).

Latency of a kernel = max(FLOPs / (peak x compute_efficiency), bytes / (bandwidth x
bandwidth_efficiency)); a forward call also pays the host (Python / launch) overhead per
decoder layer, which overlaps with GPU work: ``t = max(sum of kernel times, layers x
host_overhead)``.

Energy, two views (both reported):

* power x time: ``P = idle + (TDP - idle) x max(u_compute, memory_power_fraction x u_memory)``
  with ``u = busy time / t``; a host-bound call draws little above idle.
* op + byte: MACs x MAC energy + HBM bytes x HBM energy (op tables of
  :mod:`hw_models.op_energy`, 7 nm: the nearest published node for A100/H100/H200), plus
  idle power x time. The difference to power x time is reported as ``other`` (clock tree,
  register files, caches, control: what the op + byte view leaves out).

Calibration: :func:`parse_workload` rebuilds a workload of benchmarks/gpu_energy.py from its
CSV name, :func:`recheck_measurements` compares a preset with recorded rows (no GPU) and
:func:`fit_gpu_to_measurements` fits idle power, compute efficiency, memory power fraction and
host overhead to them (docs/hardware.md, "Calibration on a real H100").
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from ._checks import check_layer_activity, finite_nonneg, positive_int
from .activity import Activity
from .gpus import DTYPES, GPUSpec
from .op_energy import JOUPPI_7NM, OpEnergyTable
from .results import LayerResult, PlatformResult
from .shapes import QWEN25_7B, SMOLLM2_135M, ModelShape

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
    """Average board power (W) of a call that lasts ``t_total`` with the given busy times."""
    if t_total <= 0:
        return gpu.idle_w
    u_c = min(1.0, t_compute / t_total)
    u_m = min(1.0, t_memory / t_total)
    return gpu.idle_w + (gpu.tdp_w - gpu.idle_w) * max(u_c, gpu.memory_power_fraction * u_m)


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
) -> dict[str, float | str]:
    """Predict one forward call of a whole model (see :meth:`ModelShape.dense_work`).

    Returns:
        dict: ``time_s`` (per call), ``tokens`` (new tokens per call), ``latency_per_token_s``
        (= time_s for decode, time_s / tokens for prefill), ``power_w``,
        ``energy_per_token_j`` (power x time), ``energy_per_token_opbyte_j`` (op + byte + idle),
        ``t_compute_s``, ``t_memory_s``, ``t_host_s``, ``bound`` ("compute", "memory", "host").
    """
    wb = _bytes_per_weight(dtype)
    work = shape.dense_work(mode, batch=batch, prompt_len=prompt_len, context=context, weight_bytes=wb)
    t_c, t_m = roofline(gpu, work["flops"], work["bytes"], dtype)
    t_h = shape.layers * gpu.host_overhead_s_per_layer if host_overhead else 0.0
    t = max(t_c, t_m, t_h)
    bound = "compute" if t == t_c else ("memory" if t == t_m else "host")
    p = board_power_w(gpu, t_c, t_m, t)
    n = work["tokens"]
    opbyte = (work["flops"] / 2.0 * mac_energy_pj(dtype, table) + work["bytes"] * table.hbm_pj_per_byte) * PJ
    opbyte += gpu.idle_w * t
    return {
        "time_s": t,
        "tokens": n,
        "latency_per_token_s": t if mode == "decode" else t / n,
        "power_w": p,
        "energy_per_token_j": p * t / n,
        "energy_per_token_opbyte_j": opbyte / n,
        "t_compute_s": t_c,
        "t_memory_s": t_m,
        "t_host_s": t_h,
        "bound": bound,
        "flops": work["flops"],
        "bytes": work["bytes"],
    }


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
) -> PlatformResult:
    """The same linear layers as ``acts``, computed densely on ``gpu`` (roofline).

    Args:
        acts: per-layer records; only their shapes and token counts are used (a dense engine
            does the same work whatever the spikes).
        mode: "decode" (one token per sequence per call, ``batch`` sequences share each weight
            read) or "prefill" (all ``tokens`` of the trace in one call, weights read once).
        batch: decode batch size.
        dtype: "bf16" (2-byte weights, BF16 peak) or "int8" (W8A8: 1-byte weights, INT8 peak).
        host_overhead: add the preset's eager host overhead per decoder layer (decoder layers
            counted from the q-projection records); False = the hardware bound.

    Returns:
        :class:`PlatformResult`; categories: compute (MAC energy), memory (HBM bytes),
        static (idle x time), other (power x time minus the rest; never negative).
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

    per_layer = []
    for a in acts:
        w_bytes = a.in_features * a.out_features * wb
        act_bytes = (a.in_features + a.out_features) * 2.0  # bf16 activations in and out
        macs_tok = float(a.in_features * a.out_features)
        if mode == "decode":
            # one call per step of `batch` tokens; weights read once per call
            t_c, t_m = roofline(gpu, 2.0 * macs_tok * batch, w_bytes + act_bytes * batch, dtype)
            t_c, t_m = t_c / batch, t_m / batch                   # per token
            bytes_tok = w_bytes / batch + act_bytes
        else:
            t_c, t_m = roofline(gpu, 2.0 * macs_tok * n_tok, w_bytes + act_bytes * n_tok, dtype)
            t_c, t_m = t_c / n_tok, t_m / n_tok
            bytes_tok = w_bytes / n_tok + act_bytes
        per_layer.append((a, t_c, t_m, macs_tok, bytes_tok))

    t_hw = sum(max(t_c, t_m) for _, t_c, t_m, _, _ in per_layer)
    n_dec = sum(1 for a in acts if a.role == "q") or max(1, len(acts) // 7)
    if host_overhead:
        calls_per_token = 1.0 / batch if mode == "decode" else 1.0 / n_tok
        t_host = n_dec * gpu.host_overhead_s_per_layer * calls_per_token
    else:
        t_host = 0.0
    latency = max(t_hw, t_host)
    stretch = latency / t_hw if t_hw > 0 else 1.0

    layers: list[LayerResult] = []
    for a, t_c, t_m, macs_tok, bytes_tok in per_layer:
        t_layer = max(t_c, t_m) * stretch                       # wall time attributed to this layer
        p = board_power_w(gpu, t_c, t_m, t_layer)
        pt = p * t_layer * n_tok
        compute = macs_tok * e_mac * PJ * n_tok
        memory = bytes_tok * table.hbm_pj_per_byte * PJ * n_tok
        static = gpu.idle_w * t_layer * n_tok
        other = max(0.0, pt - compute - memory - static)
        layers.append(LayerResult(
            name=a.name, role=a.role, tokens=n_tok, compute_j=compute, memory_j=memory, routing_j=0.0,
            static_j=static, other_j=other, latency_s=t_layer,
            details={"power_time_j": pt, "opbyte_j": compute + memory + static, "power_w": p,
                     "t_compute_s": t_c, "t_memory_s": t_m,
                     "bound": 1.0 if t_c >= t_m else 0.0},
        ))
    notes = [
        f"{gpu.name}: dense {dtype} roofline, {mode}" + (f" batch {batch}" if mode == "decode" else f" of {n_tok} tokens"),
        "op + byte energies from the 7 nm table (nearest published node); 'other' = power x time - op/byte/idle",
        "host overhead " + ("included" if host_overhead else "excluded (hardware bound)"),
    ]
    pt_total = sum(l.details["power_time_j"] for l in layers)
    ob_total = sum(l.details["opbyte_j"] for l in layers)
    return PlatformResult(
        platform=gpu.name, kind="gpu", tokens=n_tok, layers=layers, latency_s=latency, devices=1,
        mode=mode, notes=notes,
        details={"power_time_j_per_token": pt_total / n_tok, "opbyte_j_per_token": ob_total / n_tok,
                 "t_hw_s": t_hw, "t_host_s": t_host, "batch": float(batch)},
    )


# ---------------------------------------------------------------------------------------------
# Calibration against measurements recorded by benchmarks/gpu_energy.py (CSV rows, no GPU needed)
# ---------------------------------------------------------------------------------------------

#: model label used in benchmarks/gpu_energy.py workload names -> the shape it builds
WORKLOAD_SHAPES: dict[str, ModelShape] = {"smollm2-135m-arch": SMOLLM2_135M, "qwen2.5-7b-shape": QWEN25_7B}

_MEASURED_COLUMNS = ("workload", "j_per_token_measured", "s_per_token_measured", "avg_power_w")


@dataclass(frozen=True)
class Workload:
    """One measured workload of benchmarks/gpu_energy.py.

    Attributes:
        label: model label (a key of :data:`WORKLOAD_SHAPES`).
        shape: the model shape.
        mode: "prefill" (one call of ``batch`` x ``prompt_len`` tokens) or "decode" (one call
            per step of ``batch`` new tokens after a ``prompt_len`` prompt).
        batch: sequences per call.
        prompt_len: prompt tokens.
        decode_tokens: decode steps measured (0 for prefill).
    """

    label: str
    shape: ModelShape
    mode: str
    batch: int
    prompt_len: int
    decode_tokens: int = 0

    @property
    def name(self) -> str:
        """``label/prefill{P}/b{B}`` or ``label/decode{D}@{P}/b{B}`` (the CSV ``workload`` column)."""
        return workload_name(self.label, self.mode, self.batch, self.prompt_len, self.decode_tokens)

    @property
    def context(self) -> float | None:
        """Decode: mean cached tokens over the measured steps (prompt + half the new tokens)."""
        return self.prompt_len + self.decode_tokens / 2.0 if self.mode == "decode" else None

    def call_time_s(self, s_per_token: float) -> float:
        """Wall time of one forward call (s) from the CSV's ``s_per_token_measured`` (prefill:
        s per token, ``batch x prompt_len`` tokens a call; decode: s per step = per call)."""
        return s_per_token * self.batch * self.prompt_len if self.mode == "prefill" else s_per_token


def workload_name(label: str, mode: str, batch: int, prompt_len: int, decode_tokens: int = 0) -> str:
    """The workload name benchmarks/gpu_energy.py writes (parsed back by :func:`parse_workload`)."""
    positive_int("workload_name", "batch", batch)
    positive_int("workload_name", "prompt_len", prompt_len)
    if mode == "prefill":
        return f"{label}/prefill{prompt_len}/b{batch}"
    if mode == "decode":
        positive_int("workload_name", "decode_tokens", decode_tokens)
        return f"{label}/decode{decode_tokens}@{prompt_len}/b{batch}"
    raise ValueError(f"workload_name: mode must be 'prefill' or 'decode', got {mode!r}")


_WORKLOAD_RE = re.compile(r"^(?P<label>[^/]+)/(?:prefill(?P<pp>\d+)|decode(?P<dt>\d+)@(?P<dp>\d+))/b(?P<batch>\d+)$")


def parse_workload(name: str, shapes: Mapping[str, ModelShape] = WORKLOAD_SHAPES) -> Workload:
    """Rebuild a :class:`Workload` from its CSV name, e.g. ``qwen2.5-7b-shape/decode128@1024/b16``."""
    if not isinstance(name, str):
        raise TypeError(f"parse_workload: expected a string, got {type(name).__name__}")
    m = _WORKLOAD_RE.match(name.strip())
    if m is None:
        raise ValueError(f"parse_workload: cannot parse workload {name!r}; expected "
                         "'LABEL/prefillP/bB' or 'LABEL/decodeD@P/bB'")
    label = m["label"]
    if label not in shapes:
        raise ValueError(f"parse_workload: unknown model label {label!r} in {name!r}; known: {', '.join(shapes)}")
    batch = int(m["batch"])
    if m["pp"] is not None:
        w = Workload(label, shapes[label], "prefill", batch, int(m["pp"]), 0)
    else:
        w = Workload(label, shapes[label], "decode", batch, int(m["dp"]), int(m["dt"]))
    workload_name(w.label, w.mode, w.batch, w.prompt_len, w.decode_tokens)  # validates values >= 1
    return w


def predict_workload(gpu: GPUSpec, workload: Workload, host_overhead: bool = True) -> dict[str, float | str]:
    """:func:`predict_forward` of one measured workload, exactly as benchmarks/gpu_energy.py
    predicts it (decode at the mean context of the measured steps)."""
    return predict_forward(gpu, workload.shape, workload.mode, batch=workload.batch,
                           prompt_len=workload.prompt_len, context=workload.context, host_overhead=host_overhead)


def _measured(rows: Iterable[Mapping[str, Any]], where: str) -> list[tuple[Workload, float, float, float, Mapping]]:
    """(workload, J/token, s per call, W, row) of every CSV row, validated."""
    out = []
    for i, r in enumerate(rows):
        if not isinstance(r, Mapping):
            raise TypeError(f"{where}: row {i} must be a dict (csv.DictReader row), got {type(r).__name__}")
        missing = [c for c in _MEASURED_COLUMNS if c not in r or r[c] in (None, "")]
        if missing:
            raise ValueError(f"{where}: row {i} lacks column(s) {', '.join(missing)}")
        w = parse_workload(str(r["workload"]))
        vals = []
        for c in _MEASURED_COLUMNS[1:]:
            try:
                v = float(r[c])
            except (TypeError, ValueError):
                raise ValueError(f"{where}: row {i} ({w.name}): column {c!r} is not a number: {r[c]!r}") from None
            if not math.isfinite(v) or v <= 0:
                raise ValueError(f"{where}: row {i} ({w.name}): column {c!r} must be finite and > 0, got {r[c]!r}")
            vals.append(v)
        out.append((w, vals[0], w.call_time_s(vals[1]), vals[2], r))
    if not out:
        raise ValueError(f"{where}: no measurement rows")
    return out


def recheck_measurements(rows: Iterable[Mapping[str, Any]], gpu: GPUSpec) -> list[dict[str, Any]]:
    """Predict every recorded workload with ``gpu`` (no GPU needed) and compare.

    Args:
        rows: dicts with at least ``workload``, ``j_per_token_measured`` (J/token),
            ``s_per_token_measured`` (s) and ``avg_power_w`` (W), e.g. ``csv.DictReader`` rows
            of hw_models/data/gpu_measurements.csv.
        gpu: the preset to check.

    Returns:
        one dict per row: ``workload``, ``j_measured`` / ``j_predicted`` (J/token),
        ``j_error_pct``, ``s_measured`` / ``s_predicted`` (s per call = latency per token for
        decode, s per token for prefill, as in the CSV), ``s_error_pct``, ``w_measured`` /
        ``w_predicted`` (W), ``bound``, ``host_s_per_layer_implied`` (s; call time / layers,
        the overlap model's value when the call is host-bound).
    """
    if not isinstance(gpu, GPUSpec):
        raise TypeError(f"recheck_measurements: expected a GPUSpec, got {type(gpu).__name__}")
    out = []
    for w, j, t_call, watts, _ in _measured(rows, "recheck_measurements"):
        p = predict_workload(gpu, w)
        jp, sp = float(p["energy_per_token_j"]), float(p["latency_per_token_s"])
        s_meas = t_call / (w.batch * w.prompt_len) if w.mode == "prefill" else t_call
        out.append({
            "workload": w.name, "j_measured": j, "j_predicted": jp, "j_error_pct": 100.0 * (jp - j) / j,
            "s_measured": s_meas, "s_predicted": sp, "s_error_pct": 100.0 * (sp - s_meas) / s_meas,
            "w_measured": watts, "w_predicted": float(p["power_w"]), "bound": str(p["bound"]),
            "host_s_per_layer_implied": t_call / w.shape.layers,
        })
    return out


def recheck_markdown(results: Iterable[Mapping[str, Any]]) -> str:
    """Markdown table of :func:`recheck_measurements` output (J/token, ms, W, errors in %)."""
    lines = ["| workload | J/token measured | J/token predicted | error % | ms measured | ms predicted | "
             "error % | W measured | W predicted | bound |", "|---|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['workload']} | {r['j_measured']:.4g} | {r['j_predicted']:.4g} | {r['j_error_pct']:+.1f} | "
                     f"{r['s_measured'] * 1e3:.4g} | {r['s_predicted'] * 1e3:.4g} | {r['s_error_pct']:+.1f} | "
                     f"{r['w_measured']:.0f} | {r['w_predicted']:.0f} | {r['bound']} |")
    return "\n".join(lines)


def _grid_argmin(sse: np.ndarray, *axes: np.ndarray) -> tuple[float, ...]:
    idx = np.unravel_index(int(np.argmin(sse)), sse.shape)
    return tuple(float(a[i]) for a, i in zip(axes, idx))


def fit_gpu_to_measurements(
    rows: Iterable[Mapping[str, Any]],
    gpu: GPUSpec,
    fit_idle: bool = True,
) -> tuple[GPUSpec, dict[str, Any]]:
    """Fit the preset's non-datasheet parameters to recorded measurements (no GPU needed).

    Method (the datasheet peak, bandwidth and TDP are kept; ``bandwidth_efficiency`` is kept
    because no measured call is bandwidth-bound in time):

    1. ``idle_w`` = median of the rows' ``idle_power_w`` (NVML energy counter over a quiet
       interval with a CUDA context), if ``fit_idle`` and the column is present.
    2. ``host_overhead_s_per_layer`` h and ``compute_efficiency`` e jointly by least squares on
       log call time over all rows, with the model of :func:`predict_forward`:
       ``t = max(FLOPs / (peak e), bytes / (bw x bw_eff), layers x h)``; grid search (log grid
       on h, linear on e in (0, 1]) refined twice around the minimum. If no row is
       compute-bound at the optimum, e is not pinned by the data and is kept.
    3. ``memory_power_fraction`` m by least squares on log average power (W) over all rows with
       the fitted times, ``P = idle + (TDP - idle) max(u_c, m u_m)``; grid on [0, 1]; kept if no
       row's power depends on m.

    Returns:
        (fitted copy of ``gpu`` with ``sources`` naming the fit, info dict with the fitted
        values, the per-row fitted bounds and the rms log errors).
    """
    if not isinstance(gpu, GPUSpec):
        raise TypeError(f"fit_gpu_to_measurements: expected a GPUSpec, got {type(gpu).__name__}")
    data = _measured(list(rows), "fit_gpu_to_measurements")
    info: dict[str, Any] = {"rows": len(data)}
    changes: dict[str, Any] = {}
    src = dict(gpu.sources)
    fit_note = f"FITTED to {len(data)} measured rows by hw_models.fit_gpu_to_measurements"

    if fit_idle:
        idles = []
        for _, _, _, _, r in data:
            try:
                v = float(r.get("idle_power_w", "nan"))
            except (TypeError, ValueError):
                v = math.nan
            if math.isfinite(v) and v > 0:
                idles.append(v)
        if idles:
            changes["idle_w"] = float(np.median(idles))
            src["idle_w"] = f"MEASURED: median idle_power_w of {len(idles)} rows (NVML energy counter)"
    idle = changes.get("idle_w", gpu.idle_w)
    if idle >= gpu.tdp_w:
        raise ValueError(f"fit_gpu_to_measurements: measured idle {idle} W is not below TDP {gpu.tdp_w} W")

    # per-row GPU work at compute_efficiency = 1 (t_c scales as 1 / e)
    hw = [predict_workload(gpu.with_changes(compute_efficiency=1.0), w, host_overhead=False) for w, *_ in data]
    tc1 = np.array([float(p["t_compute_s"]) for p in hw])
    tm = np.array([float(p["t_memory_s"]) for p in hw])
    layers = np.array([float(w.shape.layers) for w, *_ in data])
    t_meas = np.array([t for _, _, t, _, _ in data])
    w_meas = np.array([p for _, _, _, p, _ in data])
    log_t = np.log(t_meas)

    def time_sse(h: np.ndarray, e: np.ndarray) -> np.ndarray:
        t = np.maximum(np.maximum(tc1 / e[None, :, None], tm), layers * h[:, None, None])
        return ((np.log(t) - log_t) ** 2).sum(axis=-1)

    h_ax = np.geomspace(1e-6, 1e-1, 401)
    e_ax = np.linspace(0.01, 1.0, 397)
    h_fit, e_fit = _grid_argmin(time_sse(h_ax, e_ax), h_ax, e_ax)
    for _ in range(2):  # refine: +-1 coarse step, 201 points each way
        dh = h_ax[1] / h_ax[0] if len(h_ax) > 1 else 1.0
        h_ax = np.geomspace(h_fit / dh, h_fit * dh, 201)
        de = e_ax[1] - e_ax[0]
        e_ax = np.linspace(max(1e-3, e_fit - de), min(1.0, e_fit + de), 201)
        h_fit, e_fit = _grid_argmin(time_sse(h_ax, e_ax), h_ax, e_ax)
    t_c = tc1 / e_fit
    t_fit = np.maximum(np.maximum(t_c, tm), layers * h_fit)
    compute_bound = t_c >= np.maximum(tm, layers * h_fit)
    changes["host_overhead_s_per_layer"] = h_fit
    src["host_overhead_s_per_layer"] = f"{fit_note}: least squares on log call time (overlap model)"
    if compute_bound.any():
        changes["compute_efficiency"] = e_fit
        src["compute_efficiency"] = (f"{fit_note}: least squares on log call time; pinned by "
                                     f"{int(compute_bound.sum())} compute-bound row(s)")
    else:
        t_c = tc1 / gpu.compute_efficiency
        t_fit = np.maximum(np.maximum(t_c, tm), layers * h_fit)
    info["time_rms_log_error"] = float(np.sqrt(np.mean((np.log(t_fit) - log_t) ** 2)))

    u_c = np.minimum(1.0, t_c / t_fit)
    u_m = np.minimum(1.0, tm / t_fit)
    m_ax = np.linspace(0.0, 1.0, 10001)
    p_pred = idle + (gpu.tdp_w - idle) * np.maximum(u_c[None, :], m_ax[:, None] * u_m[None, :])
    sse = ((np.log(p_pred) - np.log(w_meas)) ** 2).sum(axis=1)
    if np.ptp(sse) > 0:
        m_fit = float(m_ax[int(np.argmin(sse))])
        changes["memory_power_fraction"] = m_fit
        src["memory_power_fraction"] = f"{fit_note}: least squares on log average power (W), given the fitted times"
        info["power_rms_log_error"] = float(np.sqrt(sse.min() / len(data)))
    info.update({k: changes[k] for k in changes})
    info["bounds"] = {w.name: ("compute" if cb else ("memory" if tm[i] >= layers[i] * h_fit else "host"))
                      for i, ((w, *_), cb) in enumerate(zip(data, compute_bound))}
    changes["sources"] = src
    return gpu.with_changes(**changes), info
