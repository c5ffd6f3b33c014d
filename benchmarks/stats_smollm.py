"""Headline spike statistics of the embedded SmolLM2-135M beside the SpikingBrain-7B report's.

Captures the shipped public-domain text (neurosim/data/declaration_of_independence.txt)
at k = 3, then in one call (``analysis.report.analyze_trace``) writes the statistics into
the trace's ``/stats`` group, every figure and ``statistics.md`` into ``--out``. With
``--sweep`` it recaptures at k in {2, 2.5, 3, 3.5, 4} for the report's Table 11 (float
forward; counts of each layer's float input) and, with ``--perplexity``, adds the spiking
model's perplexity at each k (``neurosim.spiking.perplexity``, first 512 tokens).

Usage: python benchmarks/stats_smollm.py --out runs/stats [--max-tokens N] [--sweep] [--perplexity]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

os.environ.setdefault("HF_HUB_OFFLINE", "1")

import neurosim
from analysis.report import analyze_trace
from analysis.sweep import k_sweep
from neurosim.capture import capture
from neurosim.models import load_model


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--out", required=True, help="output folder (trace.h5, figures, statistics.md)")
    ap.add_argument("--max-tokens", type=int, default=None, help="keep the first N tokens of the text")
    ap.add_argument("--no-lm-head", action="store_true", help="leave the output head out")
    ap.add_argument("--sweep", action="store_true", help="k sweep by recapture (report Table 11)")
    ap.add_argument("--perplexity", action="store_true", help="spiking-model perplexity per k (with --sweep)")
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    text = (Path(neurosim.__file__).parent / "data" / "declaration_of_independence.txt").read_text(encoding="utf-8")
    lm = load_model(device=args.device)
    head = not args.no_lm_head
    t0 = time.perf_counter()
    trace = capture(lm, text, out / "trace.h5", k=3.0, include_lm_head=head, overwrite=True,
                    max_tokens=args.max_tokens)
    print(f"capture: {trace.n_tokens} tokens, {len(trace.layers)} layers, {time.perf_counter() - t0:.1f} s")
    sweep = None
    if args.sweep:
        ppl, ppl_float = None, None
        if args.perplexity:
            from neurosim.spiking import perplexity

            def ppl(k: float) -> float:
                return perplexity(lm, text, spiking={"k": k, "include_lm_head": head}, max_tokens=512)

            ppl_float = perplexity(lm, text, max_tokens=512)
            print(f"float-model perplexity (first 512 tokens): {ppl_float:.3f}")

        def counts_for_k(k: float):
            with tempfile.TemporaryDirectory(dir=out) as d:
                with capture(lm, text, Path(d) / "k.h5", k=k, include_lm_head=head, progress=False,
                             max_tokens=args.max_tokens) as t:
                    yield from t.iter_layers()

        sweep = k_sweep(counts_for_k, perplexity=ppl, float_perplexity=ppl_float)
    t0 = time.perf_counter()
    res = analyze_trace(trace, out, sweep=sweep, model="SmolLM2-135M", overwrite=True)
    print(f"analyze_trace (stats into the trace, figures, summary): {time.perf_counter() - t0:.1f} s")
    print(res["markdown"])


if __name__ == "__main__":
    main()
