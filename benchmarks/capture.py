"""Capture cost and spiking quality on the embedded SmolLM2-135M.

Measures, in one run:
  1. capture overhead: wall time of ``neurosim.capture.capture`` on a 512-token prompt
     (including the HDF5 write and commit) as a ratio to a plain forward pass on the same
     tokens measured in the same run (interleaved repeats, best and median);
  2. trace size per token (bytes on disk, compressed and not);
  3. peak resident memory of a long (default 4,096-token) capture, against the bytes that
     all layers' float activations of that input would take;
  4. perplexity of the float model vs the spiking model (k in {2, 2.5, 3, 3.5, 4}, count
     budgets bitwise-signed T=3 and T=4, float or INT8 weights) on the shipped text.

Usage:
    python benchmarks/capture.py                       # CPU, float32, everything
    python benchmarks/capture.py --device cuda --dtype bfloat16
    python benchmarks/capture.py --skip-ppl --json out.json
"""
from __future__ import annotations

import argparse
import gc
import json
import os
import statistics
import sys
import tempfile
import threading
import time
from pathlib import Path

import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from neurosim.capture import capture, linear_layers, tokenize  # noqa: E402
from neurosim.models import DTYPES, load_model  # noqa: E402
from neurosim.spiking import perplexity_sweep  # noqa: E402

TEXT = ROOT / "neurosim" / "data" / "declaration_of_independence.txt"


# ----------------------------------------------------------------------------- memory probes
def _rss_bytes() -> int:
    with open("/proc/self/status") as f:
        for line in f:
            if line.startswith("VmRSS:"):
                return int(line.split()[1]) * 1024
    return 0


class PeakRSS:
    """Peak resident set size during a block (Linux). Resets the kernel's high-water mark
    (``/proc/self/clear_refs``) and also samples VmRSS every 2 ms as a fallback."""

    def __enter__(self) -> "PeakRSS":
        self.start = _rss_bytes()
        self.hwm_reset = False
        try:
            with open("/proc/self/clear_refs", "w") as f:
                f.write("5")
            self.hwm_reset = True
        except OSError:
            pass
        self.sampled = self.start
        self._stop = threading.Event()
        self._t = threading.Thread(target=self._sample, daemon=True)
        self._t.start()
        return self

    def _sample(self) -> None:
        while not self._stop.wait(0.002):
            self.sampled = max(self.sampled, _rss_bytes())

    def __exit__(self, *exc) -> None:
        self._stop.set()
        self._t.join()
        hwm = 0
        if self.hwm_reset:
            with open("/proc/self/status") as f:
                for line in f:
                    if line.startswith("VmHWM:"):
                        hwm = int(line.split()[1]) * 1024
        self.peak = max(hwm, self.sampled)


def _sync(device: torch.device) -> None:
    if device.type == "cuda":
        torch.cuda.synchronize(device)


def _mib(b: float) -> str:
    return f"{b / 2**20:,.1f} MiB"


# ----------------------------------------------------------------------------- sections
def bench_overhead(lm, text: str, tokens: int, repeats: int, workdir: Path, chunk_tokens: int | None = None) -> dict:
    ids_np, _ = tokenize(lm, text)
    ids = torch.from_numpy(ids_np[:tokens]).unsqueeze(0).to(lm.device)
    n = ids.shape[1]
    model = lm.model
    base = getattr(model, "base_model", model)

    def timed(fn) -> tuple[float, float]:
        """(wall s, process CPU s: all threads, compression workers included)."""
        _sync(lm.device)
        w, c = time.perf_counter(), time.process_time()
        fn()
        _sync(lm.device)
        return time.perf_counter() - w, time.process_time() - c

    def full_forward() -> None:
        with torch.inference_mode():
            model(input_ids=ids, use_cache=False)

    def decoder_forward() -> None:
        with torch.inference_mode():
            base(input_ids=ids, use_cache=False)

    sizes: dict[str, int] = {}

    def run_capture(compression) -> None:
        out = workdir / f"overhead_{compression}.h5"
        kw = {} if chunk_tokens is None else {"chunk_tokens": chunk_tokens}
        tr = capture(lm, text, out, max_tokens=n, overwrite=True, progress=False, compression=compression, **kw)
        tr.close()
        sizes["gzip" if compression else "raw"] = out.stat().st_size

    runs = {"forward": full_forward, "decoder": decoder_forward,
            "capture_gzip": lambda: run_capture("gzip"), "capture_raw": lambda: run_capture(None)}
    for fn in runs.values():  # warm-up
        fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    cpu: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(repeats):  # interleaved so machine-load drift hits all alike
        for key, fn in runs.items():
            w, c = timed(fn)
            times[key].append(w)
            cpu[key].append(c)
    best = {k: min(v) for k, v in times.items()}
    med = {k: statistics.median(v) for k, v in times.items()}
    cpu_best = {k: min(v) for k, v in cpu.items()}
    channels = sum(m.in_features for _, m in linear_layers(model, False))
    return {
        "tokens": n,
        "chunk_tokens": chunk_tokens,
        "workdir": str(workdir),
        "times_s": times,
        "best_s": best,
        "median_s": med,
        "cpu_s": cpu,
        "cpu_best_s": cpu_best,
        "cpu_ratio_best": {k: cpu_best[k] / cpu_best["forward"] for k in ("capture_gzip", "capture_raw", "decoder")},
        "ratio_best": {k: best[k] / best["forward"] for k in ("capture_gzip", "capture_raw", "decoder")},
        "ratio_median": {k: med[k] / med["forward"] for k in ("capture_gzip", "capture_raw", "decoder")},
        # each repeat's ratio to the forward of the same round (neighbours share the machine's load)
        "ratio_paired_median": {k: statistics.median(a / b for a, b in zip(times[k], times["forward"]))
                                for k in ("capture_gzip", "capture_raw", "decoder")},
        "bytes_per_token": {k: v / n for k, v in sizes.items()},
        "int16_bytes_per_token_all_layers": 2 * channels,
    }


def bench_memory(lm, text: str, tokens: int, workdir: Path) -> dict:
    body = text
    ids_np, _ = tokenize(lm, body)
    while ids_np.size < tokens:  # repeat the shipped text to reach the length
        body = body + "\n\n" + text
        ids_np, _ = tokenize(lm, body)
    layers = linear_layers(lm.model, False)
    all_float = tokens * sum(m.in_features for _, m in layers) * 4
    out = workdir / "long.h5"
    gc.collect()
    if lm.device.type == "cuda":
        torch.cuda.reset_peak_memory_stats(lm.device)
    with PeakRSS() as mem:
        t = time.perf_counter()
        tr = capture(lm, body, out, max_tokens=tokens, overwrite=True, progress=True)
        dt = time.perf_counter() - t
    n = tr.n_tokens
    tr.close()
    res = {
        "tokens": n,
        "seconds": dt,
        "rss_before": mem.start,
        "rss_peak": mem.peak,
        "rss_peak_increase": mem.peak - mem.start,
        "all_layers_float_activations": all_float,
        "file_bytes": out.stat().st_size,
    }
    if lm.device.type == "cuda":
        res["cuda_peak_allocated"] = torch.cuda.max_memory_allocated(lm.device)
    return res


def print_overhead(r: dict) -> None:
    chunk = r.get("chunk_tokens") or "default"
    print(f"\n## Capture overhead, {r['tokens']} tokens, chunk_tokens {chunk}, trace in {r['workdir']} "
          "(ratio to a plain forward with logits, same run)")
    print("| run | best s | median s | ratio (best) | ratio (median) | paired ratio (median) | CPU s (best) | CPU ratio |")
    print("|---|---|---|---|---|---|---|---|")
    labels = {"forward": "plain forward (model(ids), logits)", "decoder": "decoder-only forward (no lm_head)",
              "capture_gzip": "capture, gzip (default)", "capture_raw": "capture, uncompressed"}
    for key, label in labels.items():
        rb = r["best_s"][key] / r["best_s"]["forward"]
        rm = r["median_s"][key] / r["median_s"]["forward"]
        cb = r["cpu_best_s"][key]
        rp = r["ratio_paired_median"].get(key, 1.0)
        print(f"| {label} | {r['best_s'][key]:.3f} | {r['median_s'][key]:.3f} | {rb:.2f}x | {rm:.2f}x | {rp:.2f}x "
              f"| {cb:.2f} | {cb / r['cpu_best_s']['forward']:.2f}x |")
    b = r["bytes_per_token"]
    print(f"\ntrace size per token: gzip {b['gzip'] / 1024:.1f} KiB, uncompressed {b['raw'] / 1024:.1f} KiB "
          f"(int16 counts of all 210 layers without input sharing: {r['int16_bytes_per_token_all_layers'] / 1024:.1f} KiB)")


def print_memory(r: dict) -> None:
    print(f"\n## Long capture: {r['tokens']} tokens in {r['seconds']:.1f} s")
    print(f"peak RSS {_mib(r['rss_peak'])} (before {_mib(r['rss_before'])}, increase {_mib(r['rss_peak_increase'])}); "
          f"all layers' float activations would be {_mib(r['all_layers_float_activations'])}; "
          f"file {_mib(r['file_bytes'])}")
    if "cuda_peak_allocated" in r:
        print(f"CUDA peak allocated {_mib(r['cuda_peak_allocated'])}")


def print_ppl(rows: list[dict]) -> None:
    print(f"\n## Perplexity, float vs spiking (float model: {rows[0]['ppl_float']:.3f})")
    print("| weights | count budget | k | spiking ppl | ratio | clipped |")
    print("|---|---|---|---|---|---|")
    for r in rows:
        budget = "none" if r["T"] is None else f"{r['scheme']} T={r['T']}"
        w = "INT8 g128" if r["int8_weights"] else "float"
        print(f"| {w} | {budget} | {r['k']:g} | {r['ppl_spiking']:.3f} | {r['ratio']:.3f} | {100 * r['clipped_fraction']:.3g} % |")


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--device", default="cpu")
    p.add_argument("--dtype", default="float32", choices=["float32", "bfloat16"])
    p.add_argument("--model", default=None, help="GGUF file or HF directory (default: embedded SmolLM2)")
    p.add_argument("--tokens", type=int, default=512, help="prompt length for the overhead measurement")
    p.add_argument("--repeats", type=int, default=5)
    p.add_argument("--chunk-tokens", default="", help="comma-separated capture chunk sizes to time (default: capture's)")
    p.add_argument("--workdir", type=Path, default=None, help="folder for the traces (default: a temporary folder)")
    p.add_argument("--long-tokens", type=int, default=4096)
    p.add_argument("--ppl-tokens", type=int, default=512)
    p.add_argument("--skip-overhead", action="store_true")
    p.add_argument("--skip-memory", action="store_true")
    p.add_argument("--skip-ppl", action="store_true")
    p.add_argument("--int8", choices=["no", "yes", "both"], default="both", help="INT8 weights in the sweep")
    p.add_argument("--clip-steps", default="3,4,8",
                   help="bitwise-signed step budgets T to clip counts to in the sweep (plus no clip)")
    p.add_argument("--json", type=Path, default=None, help="also write all results to this JSON file")
    args = p.parse_args(argv)

    dtype = DTYPES[args.dtype]
    t = time.perf_counter()
    lm = load_model(args.model, device=args.device, dtype=dtype)
    print(f"model {lm.model_id} on {lm.device} ({args.dtype}), loaded in {time.perf_counter() - t:.1f} s; "
          f"torch threads {torch.get_num_threads()}, CPUs {os.cpu_count()}")
    from analysis.trace_chunks import deflate_name

    print(f"deflate implementation for the trace writer's count chunks: {deflate_name()}")
    print(f"load average at start (other processes compete for the CPUs): {os.getloadavg()}")
    text = TEXT.read_text(encoding="utf-8")
    results: dict = {"device": str(lm.device), "dtype": args.dtype, "model": lm.model_id}
    with tempfile.TemporaryDirectory(prefix="neurosim-bench-", dir=args.workdir) as tmp:
        work = Path(tmp)
        if not args.skip_memory:
            results["memory"] = bench_memory(lm, text, args.long_tokens, work)
            print_memory(results["memory"])
        if not args.skip_overhead:
            results["overhead"] = []
            for chunk in [int(c) for c in args.chunk_tokens.split(",") if c.strip()] or [None]:
                results["overhead"].append(bench_overhead(lm, text, args.tokens, args.repeats, work, chunk))
                print_overhead(results["overhead"][-1])
    if not args.skip_ppl:
        int8 = {"no": (False,), "yes": (True,), "both": (False, True)}[args.int8]
        clips = [None] + [("bitwise-signed", int(t)) for t in args.clip_steps.split(",") if t.strip()]
        rows = perplexity_sweep(lm, text, max_tokens=args.ppl_tokens, int8_weights=int8, clips=clips)
        results["perplexity"] = rows
        print_ppl(rows)
    print(f"\nload average at end: {os.getloadavg()}")
    results["loadavg_end"] = os.getloadavg()
    if args.json:
        args.json.write_text(json.dumps(results, indent=2, default=str))
        print(f"\nwrote {args.json}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
