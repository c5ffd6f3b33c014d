"""Calibration of the GPU model against NVML measurements (CSV rows; no GPU needed).

benchmarks/gpu_energy.py records one row per workload in hw_models/data/gpu_measurements.csv
(J/token, s/token, average W, idle W, device, regime). Here: :func:`parse_workload` rebuilds a
workload from its CSV name, :func:`recheck_measurements` compares a preset with the rows,
:func:`fit_gpu_to_measurements` fits a GPU preset's idle power, compute efficiency, memory
power fraction and host overhead (the H100 calibration), and :func:`fit_regime` fits one
software regime's host time per layer and per decode step, compute efficiency and memory
power fraction (:mod:`hw_models.gpu_regimes`); :func:`rows_where` and :func:`gpu_for_device`
select rows and the preset of the device that measured them.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Any, Iterable, Mapping

import numpy as np

from ._checks import positive_int
from .gpu_model import predict_forward
from .gpu_regimes import KERNEL_PROFILES, REGIMES, Regime
from .gpus import GPU_ALIASES, GPU_PRESETS, GPUSpec
from .shapes import QWEN25_05B, QWEN25_7B, SMOLLM2_135M, ModelShape

#: model label used in benchmarks/gpu_energy.py workload names -> the shape it builds
WORKLOAD_SHAPES: dict[str, ModelShape] = {"smollm2-135m-arch": SMOLLM2_135M, "qwen2.5-7b-shape": QWEN25_7B,
                                           "qwen2.5-0.5b-shape": QWEN25_05B}

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


def predict_workload(gpu: GPUSpec, workload: Workload, host_overhead: bool = True,
                     regime: str | Regime | None = None) -> dict[str, Any]:
    """:func:`predict_forward` of one measured workload, exactly as benchmarks/gpu_energy.py
    predicts it (decode at the mean context of the measured steps)."""
    return predict_forward(gpu, workload.shape, workload.mode, batch=workload.batch, prompt_len=workload.prompt_len,
                           context=workload.context, host_overhead=host_overhead, regime=regime)


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


def recheck_measurements(rows: Iterable[Mapping[str, Any]], gpu: GPUSpec,
                         regime: str | Regime | None = None) -> list[dict[str, Any]]:
    """Predict every recorded workload with ``gpu`` (no GPU needed) and compare.

    Args:
        rows: dicts with at least ``workload``, ``j_per_token_measured`` (J/token),
            ``s_per_token_measured`` (s) and ``avg_power_w`` (W), e.g. ``csv.DictReader`` rows
            of hw_models/data/gpu_measurements.csv.
        gpu: the preset to check.
        regime: the regime to predict with (None: the old switch, host overhead on = "eager").

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
        p = predict_workload(gpu, w, regime=regime)
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


# ---------------------------------------------------------------------------------------------
# Software regimes
# ---------------------------------------------------------------------------------------------

#: text in a CSV ``device`` column -> the preset of that GPU
DEVICE_PRESETS: dict[str, str] = {"H100": "h100_sxm", "H200": "h200_sxm", "A100": "a100_sxm"}


def gpu_for_device(device: str) -> GPUSpec:
    """The preset of a CSV ``device`` name (e.g. "NVIDIA H200" -> h200_sxm)."""
    for key, preset in DEVICE_PRESETS.items():
        if key.lower() in str(device).lower():
            return GPU_PRESETS[preset]
    raise ValueError(f"gpu_for_device: no preset for device {device!r}; known: {', '.join(DEVICE_PRESETS)}")


def row_regime(row: Mapping[str, Any]) -> str:
    """A CSV row's regime; rows recorded before the column existed were the eager loop."""
    r = str(row.get("regime") or "eager")
    if r not in REGIMES:
        raise ValueError(f"row {row.get('workload')!r}: unknown regime {r!r}")
    return r


def rows_where(rows: Iterable[Mapping[str, Any]], device: str = "", regime: str | None = None,
               label: str | None = None) -> list[Mapping[str, Any]]:
    """Rows whose device contains ``device``, of ``regime`` and model ``label`` (None: any)."""
    out = []
    for r in rows:
        if device.lower() not in str(r.get("device", "")).lower():
            continue
        if regime is not None and row_regime(r) != regime:
            continue
        if label is not None and not str(r.get("workload", "")).startswith(label + "/"):
            continue
        out.append(r)
    return out


def _spread(ratios: np.ndarray) -> tuple[float, float]:
    return (float(min(1.0, ratios.min())), float(max(1.0, ratios.max())))


#: lowest compute efficiency a fit may choose: whole-model bf16 prefill on Hopper measured 0.44-0.48
#: here; below 0.3 a fit would be explaining host time (a host-bound row) with slow GEMMs
E_MIN = 0.3


#: the host probe of a machine and regime (docs/gpu-regimes.md, "Host profile"): SmolLM2-135M
#: architecture, whose GPU work is < 3 % of every call, so the call time IS the host time.
#: One command measures both rows: ``python benchmarks/gpu_energy.py --models smollm2 --modes
#: prefill,decode --batches 1 --prefill-lens 1024 --decode-tokens 128 --prompt-len 1024 --regimes R``
PROBE_DECODE = "smollm2-135m-arch/decode128@1024/b1"
PROBE_PREFILL = "smollm2-135m-arch/prefill1024/b1"
PROBES: tuple[str, ...] = (PROBE_PREFILL, PROBE_DECODE)


def _pooled(rows: Iterable[Mapping[str, Any]], where: str) -> list[tuple[Workload, float, float, float, Mapping]]:
    """:func:`_measured` with repeated measurements of one workload (same device and regime)
    pooled: the median of each of J/token, call time and W (host time on a VM drifts by +-25 %
    between runs minutes apart, docs/gpu-regimes.md; a median of repeats is what a probe quotes)."""
    groups: dict[tuple[str, str, str], list] = {}
    for item in _measured(list(rows), where):
        r = item[4]
        groups.setdefault((str(r.get("device", "")), row_regime(r), item[0].name), []).append(item)
    out = []
    for items in groups.values():
        w, r = items[0][0], items[0][4]
        med = [float(np.median([it[i] for it in items])) for i in (1, 2, 3)]
        n = sum(int(it[4].get("repeats") or 1) for it in items)      # pooling pooled rows keeps the count
        out.append((w, med[0], med[1], med[2], dict(r, repeats=str(n))))
    return out


def pool_repeats(rows: Iterable[Mapping[str, Any]]) -> list[dict[str, Any]]:
    """CSV rows with repeated workloads (same device, regime, workload) pooled into one row each:
    median J/token, s/token and W; column ``repeats`` = how many rows were pooled."""
    out = []
    for w, j, t_call, watts, r in _pooled(rows, "pool_repeats"):
        s_tok = t_call / (w.batch * w.prompt_len) if w.mode == "prefill" else t_call
        out.append(dict(r, j_per_token_measured=repr(j), s_per_token_measured=repr(s_tok), avg_power_w=repr(watts)))
    return out


def host_profile(rows: Iterable[Mapping[str, Any]]) -> tuple[float, float]:
    """(host s per decoder layer per prefill call, per decode step) of one machine and regime,
    from its probe rows (:data:`PROBES`, repeats pooled): call time / layers. Without the
    prefill probe the decode value serves for both. ``rows``: rows of ONE machine and regime."""
    data = {w.name: (w, t) for w, _, t, _, _ in _pooled(list(rows), "host_profile")}
    if PROBE_DECODE not in data:
        raise ValueError(f"host_profile: no host probe row {PROBE_DECODE!r}; measure it with "
                         "python benchmarks/gpu_energy.py --models smollm2 --modes prefill,decode --batches 1")
    w, t = data[PROBE_DECODE]
    h_dec = t / w.shape.layers
    if PROBE_PREFILL in data:
        w, t = data[PROBE_PREFILL]
        return t / w.shape.layers, h_dec
    return h_dec, h_dec


def _regime_template(name: str, gpu: GPUSpec, host: tuple[float, float], e: float | None = None,
                     m: float | None = None, **kw: Any) -> Regime:
    """A measured regime (eager / hf-generate) on ``gpu``: unfused elementwise kernels, the
    GPU's kernel profile (:data:`hw_models.gpu_regimes.KERNEL_PROFILES`), host profile ``host``."""
    preset = GPU_ALIASES.get(gpu.name, gpu.name)
    return Regime(name, kw.pop("fitted_on", gpu.name), host[0], 0.0, e, m, decode_host_s_per_layer=host[1],
                  kernel_profile=KERNEL_PROFILES.get(preset, ""), unfused_elementwise=True, **kw)


def fit_gpu_side(rows: Iterable[Mapping[str, Any]], gpu: GPUSpec, host: tuple[float, float],
                 name: str = "eager") -> tuple[float | None, float | None]:
    """(compute efficiency, memory power fraction) of ``gpu`` fitted on ``rows`` (repeats pooled)
    given the host profile ``host`` (s per layer: prefill, decode); None where no row pins the
    value. A prefill whose GEMMs and attention come from the GPU's kernel profile does not
    depend on the efficiency (only unprofiled compute-bound rows pin it). Least squares on log
    call time ``max(max(t_c, t_m) + t_e, t_h)`` (efficiency in [:data:`E_MIN`, 1]), then on log
    average power (the model of :func:`hw_models.gpu_model.call_power_w`, vectorised over f)."""
    data = _pooled(list(rows), "fit_gpu_side")
    probe = _regime_template(name, gpu, host, e=1.0)
    parts = [predict_workload(gpu, w, regime=probe) for w, *_ in data]
    tc = np.array([float(p["t_compute_s"]) for p in parts])
    scal = np.array([not p["compute_profiled"] for p in parts])
    tm = np.array([float(p["t_memory_s"]) for p in parts])
    te = np.array([float(p["t_elementwise_s"]) for p in parts])
    th = np.array([float(p["t_host_s"]) for p in parts])
    log_t = np.log(np.array([t for _, _, t, _, _ in data]))

    def times(e: np.ndarray) -> np.ndarray:
        t_c = np.where(scal, tc / e[..., None], tc)
        return np.maximum(np.maximum(t_c, tm) + te, th), t_c

    e_ax = np.linspace(E_MIN, 1.0, 7001)
    t_all, _ = times(e_ax[:, None])
    e = float(e_ax[int(np.argmin(((np.log(t_all) - log_t) ** 2).sum(axis=1)))])
    _, t_c_e = times(np.array(e))
    pinned = scal & (t_c_e >= tm) & (np.maximum(t_c_e, tm) + te >= th)
    e_used = e if pinned.any() else gpu.compute_efficiency
    t_fit, t_c = times(np.array(e_used))
    watts = np.array([p for _, _, _, p, _ in data])
    m_ax = np.linspace(0.0, 1.0, 1001)[:, None]
    u_c, u_m, u_e = (np.minimum(1.0, x / t_fit) for x in (t_c, tm, te))
    p_pred = gpu.idle_w + (gpu.tdp_w - gpu.idle_w) * np.minimum(1.0, np.maximum(u_c, m_ax * u_m) + u_e)
    p_sse = ((np.log(p_pred) - np.log(watts)) ** 2).sum(axis=1)
    m = float(m_ax[int(np.argmin(p_sse)), 0]) if np.ptp(p_sse) > 1e-12 else None
    return (e if pinned.any() else None), m


def fit_regime(
    rows: Iterable[Mapping[str, Any]],
    gpu: GPUSpec,
    name: str,
    source: str = "",
) -> tuple[Regime, dict[str, Any]]:
    """Regime ``name`` on ``gpu`` from measured rows of that regime on one machine (no GPU needed;
    repeated workloads pooled by their median).

    Host side: the machine's host profile from its probe rows (:func:`host_profile`). GPU side:
    the kernel profile of the GPU for prefill compute (measured, not fitted), the unfused
    elementwise traffic of an eager model, and the compute efficiency (rows the profile does not
    cover) and memory power fraction by least squares given that host profile
    (:func:`fit_gpu_side`). Spreads: min / max of measured / predicted J/token and s/token.

    Returns:
        (:class:`Regime` with ``calibrated=True`` and ``fitted_on=gpu.name``, info dict with
        the rms log error of time, per-row bounds).
    """
    if name not in REGIMES or name == "hardware":
        raise ValueError(f"fit_regime: regime must be one of eager, hf-generate; got {name!r}")
    if not isinstance(gpu, GPUSpec):
        raise TypeError(f"fit_regime: expected a GPUSpec, got {type(gpu).__name__}")
    rows = pool_repeats(rows)
    h_pre, h_dec = host_profile(rows)
    e, m = fit_gpu_side(rows, gpu, (h_pre, h_dec), name)
    reg = make_regime(name, gpu, (h_pre, h_dec), e, m, rows, source)
    data = _measured(rows, "fit_regime")
    preds = [predict_workload(gpu, w, regime=reg) for w, *_ in data]
    log_err = [math.log(float(p["time_s"]) / t) for (_, _, t, _, _), p in zip(data, preds)]
    info = {"rows": len(data), "host_s_per_layer": h_pre, "decode_host_s_per_layer": h_dec,
            "compute_efficiency": reg.compute_efficiency, "memory_power_fraction": m,
            "energy_spread": reg.energy_spread, "time_spread": reg.time_spread,
            "time_rms_log_error": float(np.sqrt(np.mean(np.square(log_err)))),
            "bounds": {w.name: str(p["bound"]) for (w, *_), p in zip(data, preds)}}
    return reg, info


def make_regime(name: str, gpu: GPUSpec, host: tuple[float, float], e: float | None, m: float | None,
                rows: Iterable[Mapping[str, Any]], source: str = "") -> Regime:
    """A calibrated :class:`Regime` of host profile ``host`` and GPU side (e, m) whose spreads are
    the min / max of measured / predicted over ``rows`` (measured on ``gpu``, repeats pooled)."""
    reg = _regime_template(name, gpu, host, e, m, calibrated=True, source=source)
    res = recheck_measurements(pool_repeats(rows), gpu, regime=reg)
    j_ratio = np.array([r["j_measured"] / r["j_predicted"] for r in res])
    s_ratio = np.array([r["s_measured"] / r["s_predicted"] for r in res])
    return _regime_template(name, gpu, host, e, m, energy_spread=_spread(j_ratio), time_spread=_spread(s_ratio),
                            calibrated=True, source=source)


def prediction_errors(rows: Iterable[Mapping[str, Any]], gpu: GPUSpec, regime: Regime) -> list[dict[str, Any]]:
    """:func:`recheck_measurements` of ``rows`` (measured on ``gpu``) with ``regime``: J/token and
    s/token errors in % per workload (the out-of-sample check of tests/test_hw_calibration.py)."""
    return recheck_measurements(rows, gpu, regime=regime)


#: the datasheet-era assumptions of every preset (hw_models.gpus._COMMON_ASSUMPTIONS): what a
#: fit starts from and keeps when its rows do not pin a value
PRIOR = {"compute_efficiency": 0.7, "memory_power_fraction": 0.6, "host_overhead_s_per_layer": 0.4e-3}


def prior_gpu(rows: Iterable[Mapping[str, Any]]) -> GPUSpec:
    """The preset of the device that measured ``rows`` with datasheet figures, the measured idle
    power (median ``idle_power_w``, a separate quiet-interval reading) and the PRIOR assumptions:
    nothing fitted on workload rows."""
    rows = list(rows)
    devices = {gpu_for_device(str(r.get("device", ""))).name for r in rows}
    if len(devices) != 1:
        raise ValueError(f"prior_gpu: rows must come from one GPU, got {sorted(devices) or 'none'}")
    gpu = GPU_PRESETS[devices.pop()]
    idles = [float(r["idle_power_w"]) for r in rows if str(r.get("idle_power_w", "")) not in ("", "nan")]
    changes = dict(PRIOR)
    if idles:
        changes["idle_w"] = float(np.median(idles))
    return gpu.with_changes(**changes)


def transfer(rows: Iterable[Mapping[str, Any]], regime: str, train: tuple[str, str | None],
             test: tuple[str, str | None]) -> tuple[Regime, list[dict[str, Any]]]:
    """Out-of-sample check. GPU side (memory power fraction; compute efficiency where a row is
    not covered by the kernel profile) fitted on the ``regime`` rows of ``train`` = (device
    text, model label or None), given the train machine's host profile (its probe rows);
    predicted: the rows of ``test`` (device, label), repeats pooled, on the test device's
    :func:`prior_gpu` with that GPU side, the test GPU's kernel profile and the TEST machine's
    host profile (its probe rows, which are not scored). Returns (the regime used on the test
    rows, :func:`recheck_measurements` rows)."""
    rows = pool_repeats(rows)
    tr = rows_where(rows, train[0], regime, train[1])
    te = [r for r in rows_where(rows, test[0], regime, test[1]) if r["workload"] not in PROBES]
    if not tr or not te:
        raise ValueError(f"transfer: no {regime} rows for train {train} or test {test}")
    e, m = fit_gpu_side(tr, prior_gpu(tr), host_profile(rows_where(rows, train[0], regime)), regime)
    test_gpu = prior_gpu(te)
    host = host_profile(rows_where(rows, test[0], regime))
    reg = _regime_template(regime, test_gpu, host, e, m, fitted_on=prior_gpu(tr).name, calibrated=True,
                           source=f"GPU side fitted on {train}, host profile probed on {test[0]}")
    return reg, recheck_measurements(te, test_gpu, regime=reg)


_S, _Q = "smollm2-135m-arch", "qwen2.5-7b-shape"
#: the out-of-sample checks of issue 12: name -> (regime, train (device, label), test (device, label))
OUT_OF_SAMPLE_CASES: dict[str, tuple[str, tuple[str, str | None], tuple[str, str | None]]] = {
    "eager H100->H200": ("eager", ("H100", None), ("H200", None)),
    "eager H200->H100": ("eager", ("H200", None), ("H100", None)),
    "eager H100 smollm2->7b": ("eager", ("H100", _S), ("H100", _Q)),
    "eager H100 7b->smollm2": ("eager", ("H100", _Q), ("H100", _S)),
    "eager H200 smollm2->7b": ("eager", ("H200", _S), ("H200", _Q)),
    "eager H200 7b->smollm2": ("eager", ("H200", _Q), ("H200", _S)),
    "hf-generate H200 smollm2->7b": ("hf-generate", ("H200", _S), ("H200", _Q)),
    "hf-generate H200 7b->smollm2": ("hf-generate", ("H200", _Q), ("H200", _S)),
}


def out_of_sample(rows: Iterable[Mapping[str, Any]], bound_pct: float = 30.0) -> list[dict[str, Any]]:
    """Every :data:`OUT_OF_SAMPLE_CASES` case through :func:`transfer`: one dict per scored
    workload with ``case`` and ``within`` (both |errors| < ``bound_pct``) added."""
    rows = list(rows)
    out = []
    for case, (regime, train, test) in OUT_OF_SAMPLE_CASES.items():
        for r in transfer(rows, regime, train, test)[1]:
            ok = abs(r["j_error_pct"]) < bound_pct and abs(r["s_error_pct"]) < bound_pct
            out.append({"case": case, **r, "within": ok})
    return out


def out_of_sample_markdown(results: Iterable[Mapping[str, Any]]) -> str:
    """Markdown table of :func:`out_of_sample` (J/token, s/token with units, errors in %)."""
    def fmt_s(v: float) -> str:
        return f"{v * 1e6:.4g} us" if v < 1e-3 else f"{v * 1e3:.4g} ms"
    lines = ["| fitted on -> predicts | workload | J/token measured | predicted | error % | s/token measured | "
             "predicted | error % | within 30 % |", "|---|---|---|---|---|---|---|---|---|"]
    for r in results:
        lines.append(f"| {r['case']} | {r['workload'].replace('-arch', '').replace('-shape', '')} | "
                     f"{r['j_measured']:.4g} | {r['j_predicted']:.4g} | {r['j_error_pct']:+.1f} | "
                     f"{fmt_s(r['s_measured'])} | {fmt_s(r['s_predicted'])} | {r['s_error_pct']:+.1f} | "
                     f"{'yes' if r['within'] else '**no**'} |")
    return "\n".join(lines)
