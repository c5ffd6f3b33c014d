#!/usr/bin/env python
"""Where a CPU capture's time goes, stage by stage, against a plain forward (docs/performance.md).

    python benchmarks/capture_breakdown.py [--tokens 512] [--repeats 7]

Times, interleaved in one process on the embedded SmolLM2: the plain forward (logits, one call),
the decoder in the capture's chunks with the KV cache, the same with a pre-hook on every linear
layer that only computes the int16 counts (reused buffers, no writer), and the whole capture
(gzip and uncompressed). Prints best and median of each with its ratio to the plain forward.
"""
from __future__ import annotations

import argparse
import inspect
import statistics
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import torch  # noqa: E402

from neurosim.capture import capture, counts_int16, linear_layers, tokenize  # noqa: E402
from neurosim.models import load_model  # noqa: E402

TEXT = REPO / "neurosim" / "data" / "declaration_of_independence.txt"


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--tokens", type=int, default=512)
    p.add_argument("--chunk-tokens", type=int, default=inspect.signature(capture).parameters["chunk_tokens"].default,
                   help="the capture's default chunk")
    p.add_argument("--repeats", type=int, default=7)
    a = p.parse_args(argv)
    lm = load_model()
    text = TEXT.read_text(encoding="utf-8")
    ids = torch.from_numpy(tokenize(lm, text)[0][: a.tokens]).unsqueeze(0)
    n = ids.shape[1]
    model = lm.model
    base = getattr(model, "base_model", model)
    layers = linear_layers(model, False)
    from transformers import DynamicCache

    def forward() -> None:
        with torch.inference_mode():
            model(input_ids=ids, use_cache=False)

    def decoder_chunked() -> None:
        with torch.inference_mode():
            cache = DynamicCache(config=model.config)
            for s in range(0, n, a.chunk_tokens):
                base(input_ids=ids[:, s : s + a.chunk_tokens], use_cache=True, cache=cache)

    bufs: dict[tuple[int, int], tuple[torch.Tensor, torch.Tensor]] = {}

    def counts_hook(_mod: torch.nn.Module, args: tuple) -> None:
        x = args[0].reshape(-1, args[0].shape[-1])
        key = tuple(x.shape)
        if key not in bufs:
            bufs[key] = (torch.empty(key), torch.empty(key, dtype=torch.int16))
        work, out = bufs[key]
        counts_int16(x, 3.0, work=work, out=out)

    def decoder_counts() -> None:
        handles = [m.register_forward_pre_hook(counts_hook) for _, m in layers]
        try:
            decoder_chunked()
        finally:
            for h in handles:
                h.remove()

    work = Path(tempfile.mkdtemp(prefix="neurosim-breakdown-"))

    def run_capture(compression: str | None) -> None:
        capture(lm, text, work / "t.h5", max_tokens=n, overwrite=True, progress=False, compression=compression,
                chunk_tokens=a.chunk_tokens).close()

    runs = {"plain forward (logits)": forward, f"decoder, {a.chunk_tokens}-token chunks + KV cache": decoder_chunked,
            "  + counts (hook, no writer)": decoder_counts, "capture, gzip": lambda: run_capture("gzip"),
            "capture, uncompressed": lambda: run_capture(None)}
    for fn in runs.values():  # warm-up (numba compiles, page cache)
        fn()
    times: dict[str, list[float]] = {k: [] for k in runs}
    for _ in range(a.repeats):  # interleaved: load drift hits every stage alike
        for key, fn in runs.items():
            t = time.perf_counter()
            fn()
            times[key].append(time.perf_counter() - t)
    b = min(times["plain forward (logits)"])
    m = statistics.median(times["plain forward (logits)"])
    print(f"{n} tokens, torch threads {torch.get_num_threads()}")
    print("| stage | best s | median s | x forward (best) | x forward (median) |\n|---|---|---|---|---|")
    for key, v in times.items():
        print(f"| {key} | {min(v):.3f} | {statistics.median(v):.3f} | {min(v) / b:.2f}x | {statistics.median(v) / m:.2f}x |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
