#!/usr/bin/env python
"""Measure GPU energy per token with NVML and compare it with hw_models' GPU preset.

One command, about 3-6 minutes on an H100 (budget guard: --max-minutes, default 8):

    python benchmarks/gpu_energy.py                  # writes $OUT/gpu_measurements.csv if $OUT is set,
                                                     # else appends to hw_models/data/gpu_measurements.csv
    python benchmarks/gpu_energy.py --csv my.csv --preset h100_sxm

What it does, on one CUDA device:

1. Idle power: NVML energy counter (nvmlDeviceGetTotalEnergyConsumption, mJ since driver load)
   over ``--idle-seconds`` with a CUDA context and nothing running.
2. For two randomly initialised bfloat16 models (the real weights cannot travel; energy does
   not depend much on weight values):
   (a) SmolLM2-135M's architecture (LlamaConfig: hidden 576, 30 layers, 9/3 heads, MLP 1536,
       vocab 49152, tied embeddings);
   (b) Qwen2.5-7B's shape (Qwen2Config: hidden 3584, 28 layers, 28/4 heads, MLP 18944,
       vocab 152064);
   (c) with ``--models qwen05b``, Qwen2.5-0.5B's shape (Qwen2Config: hidden 896, 24 layers);
   it measures prefill of each ``--prefill-lens`` x ``--prefill-batches`` (logits of the last
   position only, as generate() does) and greedy decode of ``--decode-tokens`` tokens with a KV cache at each
   batch size of ``--batches``; each workload repeats until at least ``--min-seconds`` of
   measured time.
3. Prints measured J/token next to the preset's prediction (hw_models.predict_forward,
   power x time, with the preset's host overhead) and the error in %, plus the op + byte view,
   the pure-roofline prediction, the average power and the host overhead per decoder layer
   that the measurement implies (values to put in the preset), then appends one CSV row per
   workload (written atomically).

Offline re-check, no GPU and no torch needed: ``python -m benchmarks.gpu_energy --recheck CSV
[--preset h100_sxm] [--device-match H100]`` rebuilds every recorded workload from its name,
predicts it with the current preset and prints measured vs predicted J/token, s and W with
the errors in %, then the parameters that hw_models.gpu_model.fit_gpu_to_measurements fits to
those rows (to compare with the preset).

Needs only torch, transformers, numpy and pynvml (package ``nvidia-ml-py``); hw_models is
pure numpy. Without a CUDA device it stops with a clear error. ``--smoke`` runs tiny shapes on
the CPU without NVML (no energy, no CSV) to check the code path.
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import io
import json
import math
import os
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from analysis.fileio import write_text  # noqa: E402
from hw_models import ModelShape, fit_host_overhead, get_gpu  # noqa: E402
from hw_models.gpus import H100_SXM_UNCALIBRATED  # noqa: E402
from hw_models.gpu_calibration import (  # noqa: E402
    WORKLOAD_SHAPES,
    Workload,
    fit_gpu_to_measurements,
    fit_regime,
    rows_where,
    predict_workload,
    recheck_markdown,
    recheck_measurements,
)

CSV_COLUMNS = (
    "date", "device", "torch_version", "workload", "tokens", "j_per_token_measured", "j_per_token_predicted",
    "error_pct", "preset", "s_per_token_measured", "s_per_token_predicted", "avg_power_w", "idle_power_w",
    "j_per_token_opbyte_predicted", "host_overhead_s_per_layer_fit", "transformers_version", "regime", "driver",
)
#: --models: name -> (workload label of hw_models.gpu_calibration.WORKLOAD_SHAPES, transformers family)
MODEL_TABLE = {"smollm2": ("smollm2-135m-arch", "llama"), "qwen7b": ("qwen2.5-7b-shape", "qwen2"),
               "qwen05b": ("qwen2.5-0.5b-shape", "qwen2")}
#: software regimes this script measures (hw_models.gpu_regimes: "hardware" is the roofline itself)
MEASURED_REGIMES = ("eager", "hf-generate")
DEFAULT_CSV = REPO / "hw_models" / "data" / "gpu_measurements.csv"
SMOKE_SHAPE = ModelShape(name="smoke-tiny", hidden=64, layers=2, heads=4, kv_heads=2, head_dim=16,
                         intermediate=128, vocab=512, tie_embeddings=True)


class GPUError(RuntimeError):
    """No usable GPU / NVML energy counter."""


class NvmlMeter:
    """Board energy (J) from NVML's cumulative energy counter for one CUDA device."""

    def __init__(self, torch_device) -> None:
        try:
            import pynvml
        except ImportError:
            raise GPUError("pynvml is not installed: pip install nvidia-ml-py") from None
        import torch

        self.nvml = pynvml
        pynvml.nvmlInit()
        idx = torch_device.index if torch_device.index is not None else torch.cuda.current_device()
        props = torch.cuda.get_device_properties(idx)
        handle = None
        bus = getattr(props, "pci_bus_id", None)
        if bus is not None:  # map the CUDA device to its NVML handle through the PCI address
            pci = f"{getattr(props, 'pci_domain_id', 0):08X}:{bus:02X}:{getattr(props, 'pci_device_id', 0):02X}.0"
            try:
                handle = pynvml.nvmlDeviceGetHandleByPciBusId(pci)
            except pynvml.NVMLError:
                handle = None
        if handle is None:
            if os.environ.get("CUDA_VISIBLE_DEVICES"):
                print("warning: CUDA_VISIBLE_DEVICES is set and the PCI lookup failed; NVML index "
                      f"{idx} may be another GPU", file=sys.stderr)
            handle = pynvml.nvmlDeviceGetHandleByIndex(idx)
        self.handle = handle
        try:
            self.energy_j()
        except pynvml.NVMLError as exc:
            raise GPUError(f"this GPU/driver has no NVML energy counter ({exc}); Volta or newer is needed") from None
        name = pynvml.nvmlDeviceGetName(handle)
        self.name = name.decode() if isinstance(name, bytes) else str(name)
        drv = pynvml.nvmlSystemGetDriverVersion()
        self.driver = drv.decode() if isinstance(drv, bytes) else str(drv)

    def energy_j(self) -> float:
        return self.nvml.nvmlDeviceGetTotalEnergyConsumption(self.handle) / 1000.0

    def power_w(self) -> float:
        return self.nvml.nvmlDeviceGetPowerUsage(self.handle) / 1000.0

    def power_limit_w(self) -> float:
        try:
            return self.nvml.nvmlDeviceGetEnforcedPowerLimit(self.handle) / 1000.0
        except self.nvml.NVMLError:
            return math.nan


class NoMeter:
    """--smoke: no energy counter (NaN)."""

    name = "cpu (smoke test, no NVML)"
    driver = "-"

    def energy_j(self) -> float:
        return math.nan

    def power_w(self) -> float:
        return math.nan


def _sync(device) -> None:
    import torch

    if device.type == "cuda":
        torch.cuda.synchronize(device)


def build_model(shape: ModelShape, family: str, device, dtype):
    """A randomly initialised causal LM of ``shape`` on ``device`` (created there, in ``dtype``)."""
    import torch
    from transformers import AutoModelForCausalLM, LlamaConfig, Qwen2Config

    common = dict(hidden_size=shape.hidden, intermediate_size=shape.intermediate,
                  num_hidden_layers=shape.layers, num_attention_heads=shape.heads,
                  num_key_value_heads=shape.kv_heads, vocab_size=shape.vocab,
                  tie_word_embeddings=shape.tie_embeddings, max_position_embeddings=8192)
    if family == "llama":
        cfg = LlamaConfig(head_dim=shape.head_dim, rope_theta=100000.0, **common)
    elif family == "qwen2":
        cfg = Qwen2Config(rope_theta=1000000.0, **common)
    else:
        raise ValueError(f"unknown family {family!r}")
    cfg.use_cache = True
    prev = torch.get_default_dtype()
    torch.set_default_dtype(dtype)
    try:
        with torch.device(device):
            model = AutoModelForCausalLM.from_config(cfg)
    finally:
        torch.set_default_dtype(prev)
    model = model.to(device=device, dtype=dtype).eval()
    n = sum(p.numel() for p in model.parameters())
    return model, n


def _forward_kwargs(model) -> dict:
    """Ask for the last position's logits only (the argument's name depends on the version)."""
    import inspect

    params = inspect.signature(model.forward).parameters
    if "logits_to_keep" in params:
        return {"logits_to_keep": 1}
    if "num_logits_to_keep" in params:
        return {"num_logits_to_keep": 1}
    return {}


def _cache_names(model) -> tuple[str, str]:
    """(forward argument, output attribute) of the KV cache: ``cache`` in transformers >= 5.x,
    ``past_key_values`` before."""
    import inspect

    params = inspect.signature(model.forward).parameters
    return ("cache", "cache") if "cache" in params else ("past_key_values", "past_key_values")


def measure_idle(meter, seconds: float) -> float:
    """Average idle board power (W) over ``seconds``."""
    e0, t0 = meter.energy_j(), time.perf_counter()
    time.sleep(seconds)
    return (meter.energy_j() - e0) / (time.perf_counter() - t0)


def run_prefill(model, device, prompt_len: int, min_seconds: float, meter, vocab: int, batch: int = 1):
    """Repeat a prefill of ``batch`` x ``prompt_len`` tokens; returns (J, s, tokens, reps)."""
    import torch

    kw = _forward_kwargs(model)
    ids = torch.randint(0, vocab, (batch, prompt_len), device=device)
    with torch.inference_mode():
        model(input_ids=ids, use_cache=True, **kw)  # warm-up (kernels, allocator)
        _sync(device)
        energy, secs, reps = _repeat_for(lambda: model(input_ids=ids, use_cache=True, **kw), device, meter, min_seconds)
    return energy, secs, reps * prompt_len * batch, reps


def _repeat_for(call, device, meter, min_seconds: float) -> tuple[float, float, int]:
    """Call ``call()`` (waiting for the GPU each time) until ``min_seconds`` have passed:
    (J from the energy counter, s, repetitions)."""
    reps, e0, t0 = 0, meter.energy_j(), time.perf_counter()
    while True:
        call()
        reps += 1
        _sync(device)
        if time.perf_counter() - t0 >= min_seconds:
            break
    return meter.energy_j() - e0, time.perf_counter() - t0, reps


def _warm_then_measure(once, steps: int, min_seconds: float) -> tuple[float, float, int]:
    """Run ``once()`` (returns J, s) once as a warm-up over every KV length the measurement meets
    (kernels picked per shape, e.g. a per-length attention plan, are set up there, not in the
    measured steady state), then repeat it for at least ``min_seconds``: (J, s, repetitions)."""
    _, s_warm = once()
    print(f"    warm-up (first pass over these KV lengths): {s_warm / steps * 1e3:.2f} ms/step")
    energy = secs = 0.0
    reps = 0
    cpu0 = time.process_time()
    while secs < min_seconds:
        e, s = once()
        energy += e
        secs += s
        reps += 1
    # host CPU seconds per wall second of the measured passes (prefills included): near the
    # thread count when the host is busy, well below 1 when it waits (GPU, OS, locks)
    print(f"    process CPU time / wall time: {(time.process_time() - cpu0) / max(secs, 1e-9):.2f}")
    return energy, secs, reps


def run_decode(model, device, prompt_len: int, new_tokens: int, batch: int, min_seconds: float, meter, vocab: int):
    """Greedy decode with a KV cache; only the decode steps are measured (prefill excluded).

    Returns (J, s, tokens, reps) with tokens = new_tokens x batch x reps.
    """
    import torch

    kw = _forward_kwargs(model)
    arg, attr = _cache_names(model)
    ids = torch.randint(0, vocab, (batch, prompt_len), device=device)

    def once(steps: int) -> tuple[float, float]:
        out = model(input_ids=ids, use_cache=True, **kw)
        pkv, nxt = getattr(out, attr), out.logits[:, -1:].argmax(-1)
        _sync(device)
        e0, t0 = meter.energy_j(), time.perf_counter()
        for _ in range(steps):
            out = model(input_ids=nxt, use_cache=True, **{arg: pkv})
            pkv, nxt = getattr(out, attr), out.logits[:, -1:].argmax(-1)
        _sync(device)
        t1, e1 = time.perf_counter(), meter.energy_j()
        del pkv, out
        return e1 - e0, t1 - t0

    with torch.inference_mode():
        energy, secs, reps = _warm_then_measure(lambda: once(new_tokens), new_tokens, min_seconds)
    return energy, secs, new_tokens * batch * reps, reps


def _no_eos(model) -> None:
    """Random weights: never stop early, so ``generate`` runs exactly ``max_new_tokens`` steps."""
    gc = model.generation_config
    gc.eos_token_id = None
    gc.pad_token_id = 0
    gc.do_sample = False


def run_prefill_generate(model, device, prompt_len: int, min_seconds: float, meter, vocab: int, batch: int = 1):
    """``generate(max_new_tokens=1)`` (prefill + one greedy selection, as a chat front end's
    first token); returns (J, s, tokens, reps) with tokens = batch x prompt_len x reps."""
    import torch

    _no_eos(model)
    ids = torch.randint(0, vocab, (batch, prompt_len), device=device)
    mask = torch.ones_like(ids)
    with torch.inference_mode():
        model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=1, do_sample=False)  # warm-up
        _sync(device)
        energy, secs, reps = _repeat_for(
            lambda: model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=1, do_sample=False),
            device, meter, min_seconds)
    return energy, secs, reps * prompt_len * batch, reps


class _FirstStepMark:
    """A logits processor that, at its first call (right after the prefill forward), waits for
    the GPU and reads the energy counter and the clock: the decode steps are measured from there."""

    def __init__(self, meter, device) -> None:
        self.meter, self.device, self.mark = meter, device, None

    def __call__(self, input_ids, scores):
        if self.mark is None:
            _sync(self.device)
            self.mark = (self.meter.energy_j(), time.perf_counter())
        return scores


def run_decode_generate(model, device, prompt_len: int, new_tokens: int, batch: int, min_seconds: float,
                        meter, vocab: int):
    """Greedy ``generate(max_new_tokens=new_tokens)`` with the default (dynamic) KV cache; the
    prefill is excluded (measured from the first logits processor call), so ``new_tokens - 1``
    forward steps are measured. Returns (J, s, tokens, reps), tokens = (new_tokens - 1) x batch x reps."""
    import torch
    from transformers import LogitsProcessorList

    if new_tokens < 2:
        raise ValueError("run_decode_generate: new_tokens must be >= 2")
    _no_eos(model)
    ids = torch.randint(0, vocab, (batch, prompt_len), device=device)
    mask = torch.ones_like(ids)

    def once(n: int) -> tuple[float, float]:
        mark = _FirstStepMark(meter, device)
        out = model.generate(input_ids=ids, attention_mask=mask, max_new_tokens=n, do_sample=False, logits_processor=LogitsProcessorList([mark]))
        _sync(device)
        t1, e1 = time.perf_counter(), meter.energy_j()
        if out.shape[1] != prompt_len + n:
            raise RuntimeError(f"generate made {out.shape[1] - prompt_len} tokens, expected {n}")
        return e1 - mark.mark[0], t1 - mark.mark[1]

    with torch.inference_mode():
        energy, secs, reps = _warm_then_measure(lambda: once(new_tokens), new_tokens - 1, min_seconds)
    return energy, secs, (new_tokens - 1) * batch * reps, reps


def _csv_base(path: Path, seed_from: Path | None) -> str:
    """The CSV text new rows go after: ``path`` if it exists, else ``seed_from``, else a header
    (an unexpected header -> ValueError)."""
    path = Path(path)
    src = path if path.exists() else (seed_from if seed_from is not None and seed_from.exists() else None)
    existing = src.read_text(encoding="utf-8") if src is not None else ""
    if not existing.strip():
        buf = io.StringIO()
        csv.writer(buf, lineterminator="\n").writerow(CSV_COLUMNS)
        return buf.getvalue()
    header = next(csv.reader(io.StringIO(existing)))
    if tuple(header) != CSV_COLUMNS:
        raise ValueError(f"{src}: unexpected CSV header {header}; expected {list(CSV_COLUMNS)}")
    return existing if existing.endswith("\n") else existing + "\n"


def _atomic_write_text(path: Path, text: str) -> None:
    """Write ``text`` to ``path`` atomically (analysis.fileio), creating its folder."""
    path = Path(path)
    path.parent.mkdir(parents=True, exist_ok=True)
    write_text(path, text, overwrite=True)


def _csv_text(base: str, rows: list[dict]) -> str:
    buf = io.StringIO()
    buf.write(base)
    w = csv.DictWriter(buf, fieldnames=CSV_COLUMNS, lineterminator="\n")
    for r in rows:
        w.writerow(r)
    return buf.getvalue()


def _atomic_append(path: Path, rows: list[dict], seed_from: Path | None) -> None:
    """Append ``rows`` to CSV ``path`` (header checked; seeded from ``seed_from`` if ``path`` does
    not exist), atomically."""
    _atomic_write_text(path, _csv_text(_csv_base(path, seed_from), rows))


def _csv_target(arg: str | None) -> tuple[Path, Path | None]:
    if arg:
        return Path(arg), DEFAULT_CSV
    out = os.environ.get("OUT")
    if out:
        return Path(out) / "gpu_measurements.csv", DEFAULT_CSV
    return DEFAULT_CSV, None


def _positive_ints(p: argparse.ArgumentParser, text: str, flag: str) -> list[int]:
    """A comma list of integers >= 1 (``p.error`` otherwise)."""
    try:
        vals = [int(b) for b in text.split(",") if b.strip()]
    except ValueError:
        p.error(f"{flag} must be a comma list of integers, got {text!r}")
    if not vals or min(vals) < 1:
        p.error(f"{flag} must list integers >= 1")
    return vals


def parse_args(argv=None) -> argparse.Namespace:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0], formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cuda:0", help="CUDA device (default cuda:0)")
    p.add_argument("--preset", default="h100_sxm", help="hw_models GPU preset to compare with "
                                                         "(--recheck also takes h100_sxm_uncalibrated)")
    p.add_argument("--models", default="smollm2,qwen7b", help="comma list of smollm2, qwen7b, qwen05b")
    p.add_argument("--prompt-len", type=int, default=1024, help="decode prompt length (tokens)")
    p.add_argument("--modes", default="prefill,decode", help="comma list of prefill, decode")
    p.add_argument("--prefill-lens", default="1024", help="prefill lengths (tokens), comma list")
    p.add_argument("--prefill-batches", default="1", help="prefill batch sizes, comma list (a large batch makes "
                   "a small model's prefill compute-bound)")
    p.add_argument("--regimes", default="eager", help=f"comma list of {', '.join(MEASURED_REGIMES)}: a plain "
                   "PyTorch decode loop with KV cache, or transformers generate()")
    p.add_argument("--json", default=None, help="also write every measurement with its metadata as JSON "
                                                 "(default $OUT/gpu_measurements.json when $OUT is set)")
    p.add_argument("--decode-tokens", type=int, default=128)
    p.add_argument("--batches", default="1,16", help="decode batch sizes, comma list")
    p.add_argument("--min-seconds", type=float, default=5.0, help="measured seconds per workload")
    p.add_argument("--idle-seconds", type=float, default=5.0)
    p.add_argument("--max-minutes", type=float, default=8.0, help="skip remaining workloads past this budget")
    p.add_argument("--csv", default=None, help="CSV to append to (default $OUT/gpu_measurements.csv or "
                                                 "hw_models/data/gpu_measurements.csv)")
    p.add_argument("--smoke", action="store_true", help="tiny CPU run without NVML (code-path check; energies "
                   "are NaN and a CSV is written only to an explicit --csv)")
    p.add_argument("--recheck", default=None, metavar="CSV",
                   help="no measurement: predict every row of CSV with --preset and print the errors (no GPU)")
    p.add_argument("--device-match", default="", help="--recheck: only rows whose device contains this text")
    p.add_argument("--regime", default=None, choices=["hardware", *MEASURED_REGIMES],
                   help="--recheck: only rows of this regime, predicted in it (default: all rows, preset host overhead)")
    a = p.parse_args(argv)
    for name in ("prompt_len", "decode_tokens"):
        if getattr(a, name) < 1:
            p.error(f"--{name.replace('_', '-')} must be >= 1")
    if a.min_seconds <= 0 or a.idle_seconds < 0 or a.max_minutes <= 0:
        p.error("--min-seconds and --max-minutes must be > 0, --idle-seconds >= 0")
    a.batch_list = _positive_ints(p, a.batches, "--batches")
    a.prefill_list = _positive_ints(p, a.prefill_lens, "--prefill-lens")
    a.prefill_batch_list = _positive_ints(p, a.prefill_batches, "--prefill-batches")
    a.mode_list = [m.strip() for m in a.modes.split(",") if m.strip()]
    if not a.mode_list or set(a.mode_list) - {"prefill", "decode"}:
        p.error(f"--modes must list prefill and/or decode, got {a.modes!r}")
    a.regime_list = [r.strip() for r in a.regimes.split(",") if r.strip()]
    bad = sorted(set(a.regime_list) - set(MEASURED_REGIMES))
    if bad or not a.regime_list:
        p.error(f"--regimes: unknown regime(s) {bad}; choose from {', '.join(MEASURED_REGIMES)}")
    if "hf-generate" in a.regime_list and a.decode_tokens < 2:
        p.error("--decode-tokens must be >= 2 with the hf-generate regime")
    a.model_list = [m.strip() for m in a.models.split(",") if m.strip()]
    bad = sorted(set(a.model_list) - set(MODEL_TABLE))
    if bad:
        p.error(f"unknown model(s) {bad}; choose from {', '.join(MODEL_TABLE)}")
    return a


def recheck(path: str | Path, preset: str = "h100_sxm", device_match: str = "", regime: str | None = None) -> list[dict]:
    """Print measured vs predicted J/token and s for every row of CSV ``path`` (no GPU needed);
    with ``regime``, only that regime's rows, predicted in that regime, plus the regime's fit.
    Returns :func:`hw_models.gpu_calibration.recheck_measurements` rows."""
    path = Path(path)
    if not path.is_file():
        raise ValueError(f"--recheck: no such CSV file: {path}")
    with open(path, newline="", encoding="utf-8") as fh:
        rows = rows_where(csv.DictReader(fh), device_match, regime)
    if not rows:
        raise ValueError(f"--recheck: {path} has no rows" + (f" with device matching {device_match!r}" if device_match else ""))
    gpu = H100_SXM_UNCALIBRATED if preset == H100_SXM_UNCALIBRATED.name else get_gpu(preset)
    res = recheck_measurements(rows, gpu, regime=regime)
    devices = sorted({str(r.get("device", "?")) for r in rows})
    print(f"{len(rows)} row(s) of {path} ({', '.join(devices)}) against preset {gpu.name}"
          + (f", regime {regime}" if regime else "") + ":\n")
    print(recheck_markdown(res))
    worst_j = max(abs(r["j_error_pct"]) for r in res)
    worst_s = max(abs(r["s_error_pct"]) for r in res)
    print(f"\nworst |error|: {worst_j:.1f} % J/token, {worst_s:.1f} % time")
    _, info = fit_gpu_to_measurements(rows, gpu)
    print("fit to these rows (hw_models.gpu_model.fit_gpu_to_measurements) vs preset:")
    for k in ("idle_w", "compute_efficiency", "memory_power_fraction", "host_overhead_s_per_layer"):
        if k in info:
            print(f"  {k}: fit {info[k]:.4g}, preset {getattr(gpu, k):.4g}")
    if regime not in (None, "hardware"):
        try:
            reg, rinfo = fit_regime(rows, gpu, regime)
        except ValueError as exc:       # no SmolLM2 host probe among these rows
            print(f"regime {regime}: no fit ({exc})")
            return res
        print(f"regime {regime} fit (hw_models.gpu_calibration.fit_regime): host profile (SmolLM2 probe) "
              f"{reg.host_s_per_layer * 1e3:.4g} ms per layer in prefill, {reg.decode_host_s_per_layer * 1e3:.4g} ms "
              f"per layer in a decode step; compute efficiency {reg.compute_efficiency}, memory power fraction "
              f"{reg.memory_power_fraction}, time rms log error {rinfo['time_rms_log_error']:.3f}")
    return res


def main(argv=None) -> int:
    args = parse_args(argv)
    start = time.perf_counter()
    if args.recheck:
        try:
            recheck(args.recheck, args.preset, args.device_match, args.regime)
        except ValueError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        return 0
    try:
        import torch
        import transformers
    except ImportError as exc:
        print(f"error: {exc}; this script needs torch and transformers", file=sys.stderr)
        return 2
    os.environ.setdefault("HF_HUB_OFFLINE", "1")
    gpu = get_gpu(args.preset)
    if args.smoke:
        device = torch.device("cpu")
        meter = NoMeter()
        models = [("smoke", SMOKE_SHAPE, "llama")]
        args.prompt_len, args.decode_tokens = min(args.prompt_len, 32), min(args.decode_tokens, 4)
        args.min_seconds, args.idle_seconds = min(args.min_seconds, 0.2), 0.0
        args.batch_list = args.batch_list[:2]
        dtype = torch.float32
    else:
        if not torch.cuda.is_available():
            print("error: no CUDA device is available; this script measures GPU energy with NVML and "
                  "needs an NVIDIA GPU (use --smoke for a CPU code-path check)", file=sys.stderr)
            return 2
        device = torch.device(args.device)
        if device.type != "cuda":
            print(f"error: --device must be a CUDA device, got {args.device}", file=sys.stderr)
            return 2
        torch.cuda.set_device(device)
        try:
            meter = NvmlMeter(device)
        except GPUError as exc:
            print(f"error: {exc}", file=sys.stderr)
            return 2
        dtype = torch.bfloat16
        models = [(MODEL_TABLE[m][0], WORKLOAD_SHAPES[MODEL_TABLE[m][0]], MODEL_TABLE[m][1]) for m in args.model_list]
    print(f"device: {meter.name} (driver {meter.driver}); torch {torch.__version__}, "
          f"transformers {transformers.__version__}; preset {gpu.name}")
    torch.empty(1, device=device)  # create the CUDA context before measuring idle
    _sync(device)
    idle_w = measure_idle(meter, args.idle_seconds) if args.idle_seconds > 0 else math.nan
    print(f"idle power: {idle_w:.1f} W measured; preset assumes {gpu.idle_w:.1f} W")

    rows, lines, failures = [], [], []
    date = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    budget = args.max_minutes * 60.0
    path, seed = _csv_target(args.csv)
    csv_base = _csv_base(path, seed)  # checked before anything is measured
    json_path = Path(args.json) if args.json else (Path(os.environ["OUT"]) / "gpu_measurements.json"
                                                   if os.environ.get("OUT") else None)
    meta = {"date": date, "device": meter.name, "driver": meter.driver, "torch": torch.__version__,
            "transformers": transformers.__version__, "idle_power_w": idle_w, "preset": gpu.name,
            "power_limit_w": getattr(meter, "power_limit_w", lambda: math.nan)(),
            "args": {k: v for k, v in vars(args).items() if isinstance(v, (int, float, str, list))}}
    for label, shape, family in models:
        if time.perf_counter() - start > budget:
            print(f"budget of {args.max_minutes} min reached: skipping {label}")
            break
        t_build = time.perf_counter()
        model, n_params = build_model(shape, family, device, dtype)
        print(f"\n{label}: {n_params / 1e6:.1f} M parameters, built in {time.perf_counter() - t_build:.1f} s")
        workloads = [(r, "prefill", b, p) for r in args.regime_list for p in args.prefill_list
                     for b in args.prefill_batch_list if "prefill" in args.mode_list]
        workloads += [(r, "decode", b, args.prompt_len) for r in args.regime_list for b in args.batch_list
                      if "decode" in args.mode_list]
        for regime, mode, batch, plen in workloads:
            if time.perf_counter() - start > budget:
                print(f"budget of {args.max_minutes} min reached: skipping the rest")
                break
            # the workload name encodes model, mode, prompt, decode steps and batch: --recheck
            # rebuilds the prediction from it (hw_models.gpu_model.parse_workload)
            wl = Workload(label, shape, mode, batch, plen, args.decode_tokens if mode == "decode" else 0)
            pred = predict_workload(gpu, wl, regime=regime)
            pred_hw = predict_workload(gpu, wl, regime="hardware")
            name = wl.name
            try:
                if mode == "prefill":
                    run = run_prefill if regime == "eager" else run_prefill_generate
                    e, s, n, reps = run(model, device, plen, args.min_seconds, meter, shape.vocab, batch)
                    time_per_call = s / reps
                    s_tok = s / n
                else:
                    run = run_decode if regime == "eager" else run_decode_generate
                    e, s, n, reps = run(model, device, plen, args.decode_tokens, batch, args.min_seconds, meter,
                                        shape.vocab)
                    time_per_call = s / (n / batch)
                    s_tok = time_per_call
            except Exception as exc:  # one failed workload must not lose the others' measurements
                import traceback

                traceback.print_exc()
                failures.append(f"{regime} {name}: {type(exc).__name__}: {exc}")
                if device.type == "cuda":
                    torch.cuda.empty_cache()
                continue
            j_tok = e / n
            err = 100.0 * (float(pred["energy_per_token_j"]) - j_tok) / j_tok if j_tok == j_tok and j_tok > 0 else math.nan
            host_fit = fit_host_overhead(time_per_call, pred, shape.layers)
            avg_p = e / s if s > 0 else math.nan
            lines.append((regime, name, n, j_tok, float(pred["energy_per_token_j"]), err,
                          float(pred_hw["energy_per_token_j"]), float(pred["energy_per_token_opbyte_j"]), s_tok,
                          float(pred["latency_per_token_s"]), avg_p, host_fit, str(pred["bound"])))
            print(f"  [{regime}] {name}: {n} tokens in {s:.2f} s ({reps} reps); measured {j_tok:.4g} J/token, "
                  f"predicted {float(pred['energy_per_token_j']):.4g} ({err:+.1f} %); avg {avg_p:.0f} W; "
                  f"{s_tok * 1e3:.4g} ms/token (pred {float(pred['latency_per_token_s']) * 1e3:.4g}, "
                  f"{pred['bound']}-bound); {time_per_call * 1e3:.3f} ms/call", flush=True)
            rows.append({
                "date": date, "device": meter.name, "torch_version": torch.__version__, "workload": name,
                "tokens": n, "j_per_token_measured": f"{j_tok:.6g}",
                "j_per_token_predicted": f"{float(pred['energy_per_token_j']):.6g}", "error_pct": f"{err:.2f}",
                "preset": gpu.name, "s_per_token_measured": f"{s_tok:.6g}",
                "s_per_token_predicted": f"{float(pred['latency_per_token_s']):.6g}", "avg_power_w": f"{avg_p:.1f}",
                "idle_power_w": f"{idle_w:.1f}", "j_per_token_opbyte_predicted": f"{float(pred['energy_per_token_opbyte_j']):.6g}",
                "host_overhead_s_per_layer_fit": f"{host_fit:.4g}", "transformers_version": transformers.__version__,
                "regime": regime, "driver": meter.driver,
            })
            if not args.smoke or args.csv:  # after every workload: a run cut short keeps what it measured
                _atomic_write_text(path, _csv_text(csv_base, rows))
                if json_path is not None:
                    _atomic_write_text(json_path, json.dumps(dict(meta, rows=rows, failures=failures), indent=1))
        del model
        if device.type == "cuda":
            torch.cuda.empty_cache()

    print("\n| regime | workload | tokens | J/token measured | J/token predicted | error % | roofline-only J/token | "
          "op+byte J/token | ms/token measured | ms/token predicted | avg W | host s/layer (fit) | bound |")
    print("|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for (regime, name, n, j, jp, err, jhw, job, st, stp, p, hf, b) in lines:
        print(f"| {regime} | {name} | {n} | {j:.4g} | {jp:.4g} | {err:+.1f} | {jhw:.4g} | {job:.4g} | {st * 1e3:.4g} | "
              f"{stp * 1e3:.4g} | {p:.0f} | {hf:.3g} | {b} |")
    if args.smoke and not args.csv:
        print("\nsmoke run: no energy measured, CSV not written (pass --csv to check the writer)")
        return 0
    for f in failures:
        print(f"FAILED: {f}", file=sys.stderr)
    print(f"\nappended {len(rows)} row(s) to {path}  (total {time.perf_counter() - start:.0f} s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main())
