"""One run from prompt to energy report: capture -> encode -> simulate -> analyse -> price.

``run_pipeline`` writes into a fresh folder:

* ``trace.h5``: the spike counts of every linear layer's input, and ``/stats``;
* ``plots/*.png`` (and ``.svg``): rasters, histograms, layer bars, encoder comparison, energy;
* ``report.md`` and ``report.html`` (self-contained): numbers, tables, plots, parameters,
  versions.

Everything is first written to a temporary sibling folder, which replaces the output
folder only when the run has finished, so a failed or interrupted run leaves nothing
half-written under the output name.
"""
from __future__ import annotations

import dataclasses
import os
import platform
import shutil
import time
from dataclasses import dataclass, field
from datetime import datetime, timezone
from pathlib import Path
from typing import Any, Callable, Sequence

import torch

import hw_models
from analysis.compare import COLUMN_NOTE, compare_encoders, comparison_display
from analysis.fileio import DiskFullError, publish_folder, stage_folder
from analysis.plots import write_all_plots
from analysis.stats import REPORT_7B, REPORT_WINDOW, SpikeStats, window_range, write_stats
from analysis.tables import fmt_fraction, headline_rows
from hw_models.ranges import ranged_rows

from . import __version__
from .code_energy import compare_with_energy
from .defaults import DEFAULT_CHIPS, DEFAULT_GPUS, DEFAULT_SCHEMES  # noqa: F401  (re-exported)
from .energy_report import energy_sections, with_ranges
from .platforms import gpu_choices, gpu_display_name, resolve_platforms  # noqa: F401  (re-exported)
from .report import Section, write_report



@dataclass
class RunResult:
    """What :func:`run_pipeline` produced (paths are under the final output folder)."""

    out: Path
    trace: Path
    report_md: Path
    report_html: Path
    plots: list[Path]
    summary: dict[str, Any]
    energy: dict[str, list[dict[str, Any]]] = field(default_factory=dict)


def _versions() -> dict[str, str]:
    import h5py
    import numpy
    import torch
    import transformers

    return {"neurosim": __version__, "python": platform.python_version(), "torch": torch.__version__,
            "transformers": transformers.__version__, "numpy": numpy.__version__, "h5py": h5py.__version__}


def run_pipeline(
    prompts: str | os.PathLike | Sequence[str],
    out: str | os.PathLike,
    *,
    model: str | None = None,
    loaded: Any = None,
    k: float = 3.0,
    schemes: Sequence[str] = DEFAULT_SCHEMES,
    window: tuple[str, int] = REPORT_WINDOW,
    chips: Sequence[str] = DEFAULT_CHIPS,
    gpus: Sequence[str] = DEFAULT_GPUS,
    gpu_regime: str = "hardware",
    device: str = "cpu",
    dtype: str = "auto",
    max_tokens: int | None = None,
    block_columns: int = 32,
    extrapolate_7b: bool = True,
    overwrite: bool = False,
    progress: bool = True,
    log: Callable[[str], None] = print,
) -> RunResult:
    """Capture ``prompts`` on a real model, replay the spikes, analyse them and price them.

    Args:
        prompts: a text, a text file, or a list of texts.
        out: output folder (must be empty or absent unless ``overwrite``).
        model: local model path (None: the embedded SmolLM2-135M); ``loaded`` skips loading.
        k: threshold divisor of the quantizer (V_th = mean|x|/k).
        schemes: schemes replayed through the layers' INT8 weights; the first is the one
            priced on the chips. Each uses its step budget from
            :data:`analysis.stats.DEFAULT_BUDGETS` (report: bitwise-signed, 3 steps), counts
            beyond it clipped and reported.
        window: (scheme, T) of the sparsity statistics (report: bitwise-signed, 3).
        chips, gpus: preset names (see ``hw_models.CHIP_PRESETS`` / ``GPU_PRESETS``).
        gpu_regime: GPU software regime, "hardware", "eager" or "hf-generate" (hw_models.gpu_regimes).
        device: "cpu" or "cuda" for capture and replay.
        dtype: parameter dtype of the loaded model, "auto" (float32 on the CPU, the
            checkpoint's own on CUDA), "float32" or "bfloat16".
        extrapolate_7b: also price the statistics extrapolated to Qwen2.5-7B's shape.
    """
    from analysis.stats import DEFAULT_BUDGETS

    from .capture import capture
    from .models import load_model, resolve_dtype
    from .sim.model import replay_trace
    from .sim.tally_fast import covers
    from .weights import quantize_int8

    folder = Path(out)
    chip_specs, gpu_specs = resolve_platforms(chips, gpus)
    if not schemes:
        raise ValueError("give at least one scheme")
    t_start = time.perf_counter()
    tmp = stage_folder(folder, overwrite)
    try:
        if loaded is None:
            log("loading model ...")
            loaded = load_model(model, device=device, dtype=resolve_dtype(model, device, dtype), progress=progress)
        log(f"capturing spike counts ({loaded.model_id}) ...")
        trace_path = tmp / "trace.h5"
        trace = capture(loaded, prompts, trace_path, k=k, progress=progress, max_tokens=max_tokens)
        with trace:
            log(f"statistics over {trace.n_tokens} tokens x {len(trace.layers)} layers ...")
            stats = SpikeStats.from_trace(trace, window=window, progress=progress)
            comparison = compare_encoders(stats)
            log("statistics of the temporal differences (delta codes) ...")
            delta_stats = SpikeStats(window, delta=True).update_trace(trace, progress, chunk_rows=2048)
            code_rows, code_extra = compare_with_energy(stats, delta_stats)
            # Quantize each layer to INT8 (per group of 128) once, for every scheme's replay.
            modules = dict(loaded.model.named_modules())
            weights = {name: quantize_int8(modules[name].weight) for name in trace.layers}
            replays = {}
            for scheme in schemes:
                T = DEFAULT_BUDGETS[scheme]
                log(f"replaying {scheme} (T = {T}) through INT8 weights ...")
                # On a GPU the gemm engine (one INT8 GEMM per scale group; accumulators and
                # Activity equal to the events engine's) where it covers the scheme: the event
                # lists of a 7B-sized layer cost minutes there.
                engine = "gemm" if torch.device(device).type == "cuda" and covers(scheme) else "events"
                replays[scheme] = replay_trace(trace, weights, scheme, T, clip=True, device=device,
                                               block_columns=block_columns, engine=engine, progress=progress)
            main = replays[schemes[0]]
            acts = list(main.layers.values())
            results = hw_models.evaluate(acts, chip_specs, gpu_specs, regime=gpu_regime)
            reference = gpu_specs[0].name if gpu_specs else results[0].platform
            energy_rows = hw_models.comparison_rows(results, reference=reference)
            breakdown = hw_models.breakdown_table(results)
            scaled_rows: list[dict[str, Any]] = []
            if extrapolate_7b:
                scaled = hw_models.evaluate_scaled(acts, hw_models.QWEN25_7B, chips=chip_specs, gpus=gpu_specs,
                                                   regime=gpu_regime)
                scaled_rows = hw_models.comparison_rows(scaled, reference=reference)
                big = hw_models.extrapolate(acts, hw_models.QWEN25_7B)  # the records evaluate_scaled priced
                scaled_rows = with_ranges(scaled_rows, ranged_rows(scaled, big, {c.name: c for c in chip_specs}))
            plots_dir = tmp / "plots"
            figs = write_all_plots(stats, plots_dir, trace=trace, comparison=comparison, energy=breakdown,
                                   model=_short_model(loaded.model_id))
            log("energy: report's estimate vs ours, ranges, break-even ...")
            e_sections, e_data, e_paths = energy_sections(acts, results, chip_specs, gpu_specs, plots_dir)
            figs["energy_report"] = e_paths
            energy_rows = with_ranges(energy_rows, e_data["ranges"])
            tokens = trace.n_tokens
            n_layers = len(trace.layers)
            prompt_text = list(trace.prompt_text or [])
        write_stats(trace_path, stats)
        summary = _summary(stats, tokens, n_layers, main, results)
        pngs = sorted(p for paths in figs.values() for p in paths if p.suffix == ".png")
        params = {
            "model": loaded.model_id, "prompt": _prompt_line(prompt_text), "prompt tokens": tokens, "k": k, "statistics window": f"{window[0]}, T = {window[1]}",
            "schemes replayed": ", ".join(f"{s} (T = {DEFAULT_BUDGETS[s]})" for s in schemes),
            "chips": ", ".join(chips), "gpus": ", ".join(gpus), "GPU regime": gpu_regime, "device": device,
            "created": datetime.now(timezone.utc).isoformat(timespec="seconds"),
            "run time (s)": round(time.perf_counter() - t_start, 1),
            **{f"version {k_}": v for k_, v in _versions().items()},
        }
        sections = e_sections + _sections(summary, stats, comparison_display(code_rows, code_extra), replays,
                                          energy_rows, scaled_rows, results, tmp, pngs)
        sections.append(_caveats(summary, _short_model(loaded.model_id), replays))
        md, page = write_report(tmp, "neurosim run report", params, sections)
        publish_folder(tmp, folder)
    except BaseException as e:
        shutil.rmtree(tmp, ignore_errors=True)
        if isinstance(e, DiskFullError) and str(tmp) in e.reason:  # name the folder asked for, not the staging one
            raise DiskFullError(folder, e.reason.replace(str(tmp), str(folder.absolute())), e.errno) from None
        raise
    moved = [folder / p.relative_to(tmp) for p in pngs]
    return RunResult(folder, folder / "trace.h5", folder / md.name, folder / page.name, moved, summary,
                     {"platforms": energy_rows, "qwen2.5-7b": scaled_rows, "ranges": e_data["ranges"],
                      "breakeven": e_data["breakeven"], "waterfall": e_data["waterfall"]})


def _prompt_line(texts: Sequence[str], width: int = 600) -> str:
    """The prompt as the report shows it: whitespace collapsed, long texts cut with their length stated."""
    if not texts:
        return "(not stored in the trace)"
    one = " ".join(texts[0].split())
    if len(one) > width:
        one = f"{one[:width]}... ({len(texts[0])} characters)"
    return one + (f" (and {len(texts) - 1} more prompts)" if len(texts) > 1 else "")


def _caveats(summary: dict[str, Any], model: str, replays: dict[str, Any]) -> Section:
    """The closing section: what the numbers above mean, and what they do not."""
    main = replays[summary["scheme"]]
    T = min(main.steps.values())
    lo, hi = window_range(summary["window_scheme"], summary["window_steps"])
    points = [
        f"What this run shows: on {summary['tokens']} tokens, {model} quantized with the SpikingBrain rule "
        f"(s = round(x / V_th), V_th = mean|x| / k) has {summary['sparsity']:.1%} sparsity at "
        f"{summary['window_scheme']}, T = {summary['window_steps']} (SpikingBrain-7B: "
        f"{REPORT_7B['sparsity']:.2%}), {summary['silence']:.1%} silent channels and "
        f"{summary['spikes_per_active_channel']:.2f} spikes per active channel; replayed as {summary['scheme']} "
        f"spike trains, the INT8 accumulators equal the dense integer matmul of the (clipped) counts.",
        f"Clipping: {summary['clipped_fraction']:.1%} of counts do not fit the {summary['window_steps']}-step window "
        f"(outside [{lo}, {hi}]); the window statistics and the {summary['scheme']} replay (T = {T}) clip "
        f"them ({summary['clipped']} counts in the replay), so they are not lossless for those values.",
        f"Not a spiking-trained model: {model} was neither trained nor converted for spiking; these are its "
        "activations under the SpikingBrain quantizer, on one short text. Statistics vary with the text; "
        "a corpus run (neurosim run --corpus) measures many prompts.",
        "Energy and latency are model estimates (counted operations and bytes priced with published per-operation "
        "energies and chip figures; docs/hardware.md), not measurements on neuromorphic hardware. The Qwen2.5-7B rows "
        "assume this model's per-role statistics carry over to a larger model.",
    ]
    return Section("What this run shows, and caveats", "\n\n".join(points))


def _short_model(model_id: str) -> str:
    return model_id.split(" (")[0]


def _summary(stats: SpikeStats, tokens: int, n_layers: int, main: Any, results: list[Any]) -> dict[str, Any]:
    s = stats.summary()
    out = {
        "tokens": tokens, "layers": n_layers,
        "sparsity": s["sparsity"], "silence": s["silence"],
        "spikes_per_active_channel": s["spikes_per_active_channel"], "frac_abs_le_7": s["frac_abs_le_7"],
        "frac_abs_gt_16": s["frac_abs_gt_16"], "temporal_sparsity": s["temporal_sparsity"], "window": tuple(stats.window),
        "window_scheme": s["window_scheme"], "window_steps": s["window_steps"], "clipped_fraction": s["clipped_fraction"],
        "scheme": main.scheme, "events_per_token": float(main.events_sent_per_token.mean()),
        "clipped": int(main.clipped),
    }
    out["energy_per_token_j"] = {r.platform: r.energy_per_token_j for r in results}
    out["latency_per_token_s"] = {r.platform: r.latency_s for r in results}
    return out


def _sections(summary, stats, comparison, replays, energy_rows, scaled_rows, results, base: Path, pngs) -> list[Section]:
    def figs(*names: str) -> list[Path]:
        return [p for n in names for p in pngs if p.stem == n]  # in the order named

    headline = headline_rows(summary, stats.window)
    sim_rows = [{"scheme": s, "T (steps)": min(r.steps.values()),
                 "events/token sent": float(r.events_sent_per_token.mean()),
                 "events/token on lines": float(r.events_per_token.mean()),
                 "synaptic ops/token": float(r.synaptic_ops_per_token.mean()), "counts clipped": int(r.clipped),
                 "sparsity": fmt_fraction(r.total.sparsity)} for s, r in replays.items()]
    return [
        Section("Spike statistics", "Definitions as in the SpikingBrain report (arXiv:2509.05276); "
                "the 7B figures are the report's, for a much larger model on other text.", headline,
                figs("count_histogram", "layer_sparsity_silence", "vth_distribution", "steps_coverage"),
                note="Sparsity: spike-free (step, line) slots in the named window; silent: counts equal to 0; "
                     "spikes per active channel: spikes / non-zero counts; temporal sparsity: counts equal to the "
                     "same channel's count at the previous token of the prompt."),
        Section("Spike rasters", "Time runs along x (token x step); sampled input channels along y.", [],
                [p for p in pngs if p.stem.startswith("raster")]),
        Section("Encoder comparison", "Every scheme on the same counts, at the lossless T of each layer and at "
                "the scheme's step budget; unsigned schemes carry the sign on a second line; each scheme is "
                "followed by its '+ delta' variant (sigma-delta: differences between consecutive tokens). "
                "Energy: Loihi 2 model priced from the exact statistics (no weight replay, no block over-fetch).",
                comparison, figs("encoder_comparison"), note=COLUMN_NOTE),
        Section("Event-driven replay", "Spike trains replayed step by step through the layers' INT8 weights "
                "(per-group-128 scales, as W8ASpike); accumulators equal the dense integer matmul exactly.", sim_rows,
                note="Events/token sent: spikes emitted once per input (q/k/v and gate/up share theirs); on lines: "
                     "spikes summed over every layer's input lines; synaptic ops = events x fan-out; sparsity: "
                     "spike-free (step, line) slots of the window; clipped: counts beyond the window, clamped."),
        Section("Energy and latency per token", "Priced from the replay's activity records; GPU rows are the roofline "
                "model in the software regime named in their regime column (H100 and H200 calibrated on NVML "
                "measurements, A100 uncalibrated; docs/hardware.md). Ratios are against the reference GPU. For GPUs the "
                "table's J/token is the power x time view; the stacked bars split the op + byte view (compute, "
                "HBM traffic, idle power) by component, so a GPU bar can be lower than its table value; the first figure "
                "shows the table's view with the declared ranges.", energy_rows,
                figs("energy_ranges", "energy_breakdown"),
                note="Energy and latency per token of the first replayed scheme, value [low, high] over the declared "
                     "ranges; 'vs reference': ratio to the reference GPU; component columns split the energy "
                     "(J/token); devices: chips or GPUs needed."),
        Section("Extrapolated to Qwen2.5-7B's shape", "Per-role spike statistics of this model applied to a model of "
                "Qwen2.5-7B's shape (hidden 3584, 28 layers, MLP 18944, GQA 28/4); an assumption, not a measurement.",
                scaled_rows, note="Columns as in the table above, for the extrapolated shape."),
    ]
