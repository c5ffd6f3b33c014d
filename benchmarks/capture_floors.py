"""Floors of a capture's host side: what the trace of a large model costs without the model.

For a model shape (default Qwen2.5-7B: 28 blocks, inputs of 3584, 3584, 3584 and 18944
channels stored per block) and a token count, measures on this machine:

  1. device-to-host copies of the int16 counts into page-locked memory (CUDA only);
  2. deflate (ISA-L level 1, plus the Fletcher-32 the writer appends: the writer's own
     chunk encoder) of counts like a random-weight model's (Gaussian inputs, k = 3) on
     1..N threads;
  3. writing and fsyncing a file of the compressed trace's size in --dir;
  4. the whole TraceWriter pipeline (lent rows, N compression threads, HDF5 direct chunk
     writes, commit with fsync) fed from memory: the host-side floor of a capture.

Usage:
    python benchmarks/capture_floors.py [--tokens 1024] [--dir /tmp] [--threads 1,2,4,8,14]
"""
from __future__ import annotations

import argparse
import os
import sys
import tempfile
import time
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import numpy as np
import torch

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT))

from analysis import trace_chunks  # noqa: E402
from analysis.trace import LayerInfo, TraceWriter  # noqa: E402

SHAPES = {  # stored input widths per block, blocks
    "qwen2.5-7b": ((3584, 3584, 3584, 18944), 28),
    "smollm2-135m": ((576, 576, 576, 1536), 30),
}


def _counts(rows: int, width: int, rng: np.random.Generator) -> np.ndarray:
    x = rng.standard_normal((rows, width), dtype=np.float32)
    vth = np.abs(x).mean(axis=1, keepdims=True) / 3.0
    return np.rint(x / vth).astype(np.int16)


def d2h(total_bytes: int, piece: int) -> dict:
    dev = torch.device("cuda")
    src = torch.zeros(piece // 2, dtype=torch.int16, device=dev)
    host = torch.empty(piece // 2, dtype=torch.int16, pin_memory=True)
    side = torch.cuda.Stream()
    n = max(1, total_bytes // piece)
    for _ in range(3):
        host.copy_(src, non_blocking=True)
    torch.cuda.synchronize()
    t = time.perf_counter()
    with torch.cuda.stream(side):
        for _ in range(n):
            host.copy_(src, non_blocking=True)
    side.synchronize()
    dt = time.perf_counter() - t
    return {"bytes": n * piece, "seconds": dt, "GB_per_s": n * piece / dt / 1e9}


def deflate(chunks: list[np.ndarray], threads: list[int]) -> list[dict]:
    raw = sum(c.nbytes for c in chunks)
    rows = []
    for n in threads:
        with ThreadPoolExecutor(n) as pool:
            list(pool.map(lambda c: trace_chunks._encode_chunk(c, True), chunks[: 4 * n]))  # warm-up
            t = time.perf_counter()
            out = list(pool.map(lambda c: trace_chunks._encode_chunk(c, True), chunks))
            dt = time.perf_counter() - t
        comp = sum(len(o) for o in out)
        rows.append({"threads": n, "seconds": dt, "GB_per_s": raw / dt / 1e9, "ratio": raw / comp})
    return rows


def disk(folder: Path, nbytes: int) -> dict:
    block = os.urandom(1 << 20)
    fd, name = tempfile.mkstemp(dir=folder, prefix=".floor-")
    try:
        t = time.perf_counter()
        for _ in range(nbytes >> 20):
            os.write(fd, block)
        w = time.perf_counter() - t
        t = time.perf_counter()
        os.fsync(fd)
        s = time.perf_counter() - t
    finally:
        os.close(fd)
        os.unlink(name)
    return {"bytes": nbytes, "write_s": w, "fsync_s": s, "GB_per_s_write": nbytes / w / 1e9,
            "GB_per_s_total": nbytes / (w + s) / 1e9}


def pipeline(folder: Path, arrays: list[np.ndarray], blocks: int, tokens: int, workers: int, chunk: int) -> dict:
    path = folder / "floor_trace.h5"
    t = time.perf_counter()
    with TraceWriter(path, model_id="floor", k=3.0, overwrite=True, workers=workers, expected_tokens=tokens) as w:
        idx = 0
        names = []
        for b in range(blocks):
            for j, a in enumerate(arrays):
                name = f"model.layers.{b}.in{j}"
                w.add_layer(LayerInfo(name, "other", a.shape[1], 8, idx))
                names.append((name, a))
                idx += 1
        w.append_tokens(np.zeros(tokens, dtype=np.int64))
        vth = np.ones(chunk, dtype=np.float32)
        for lo in range(0, tokens, chunk):
            for name, a in names:
                w.append(name, a[lo : lo + chunk], vth[: min(chunk, tokens - lo)], release=lambda: None)
        t_close = time.perf_counter()
    dt = time.perf_counter() - t
    size = path.stat().st_size
    raw = sum(a.nbytes for _, a in names)
    path.unlink()
    return {"workers": workers, "seconds": dt, "close_s": time.perf_counter() - t_close, "raw_bytes": raw,
            "file_bytes": size, "GB_per_s_raw": raw / dt / 1e9}


def main(argv: list[str] | None = None) -> int:
    p = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--shape", default="qwen2.5-7b", choices=list(SHAPES))
    p.add_argument("--tokens", type=int, default=1024)
    p.add_argument("--chunk-tokens", type=int, default=256)
    p.add_argument("--dir", type=Path, default=Path(tempfile.gettempdir()))
    p.add_argument("--threads", default="")
    args = p.parse_args(argv)
    cpus = len(os.sched_getaffinity(0))
    threads = [int(t) for t in args.threads.split(",") if t] or sorted({1, 2, 4, 8, max(1, cpus - 2), cpus})
    widths, blocks = SHAPES[args.shape]
    rng = np.random.default_rng(0)
    arrays = [_counts(args.tokens, w, rng) for w in widths]
    total = sum(a.nbytes for a in arrays) * blocks
    print(f"{args.shape}, {args.tokens} tokens: int16 counts {total / 1e9:.3f} GB; {cpus} CPUs; "
          f"deflate: {trace_chunks.deflate_name()}; dir {args.dir}")
    if torch.cuda.is_available():
        r = d2h(total, 2 * args.chunk_tokens * widths[-1])
        print(f"D2H into page-locked memory: {r['GB_per_s']:.1f} GB/s -> {total / r['GB_per_s'] / 1e9 * 1e3:.1f} ms "
              f"for the trace's counts")
    rows_per_chunk = 1 << ((1 << 20) // (2 * widths[-1])).bit_length() - 1
    chunks = [np.ascontiguousarray(a[i : i + rows_per_chunk]) for a in arrays
              for i in range(0, a.shape[0] - rows_per_chunk + 1, rows_per_chunk)]
    reps = max(1, int(total // sum(c.nbytes for c in chunks)))
    sample = chunks * min(reps, 4)  # deflate throughput on a quarter or more of the trace
    print("| threads | deflate+fletcher GB/s (raw) | ratio | time for the whole trace |")
    print("|---|---|---|---|")
    comp_ratio = 1.0
    for r in deflate(sample, threads):
        comp_ratio = r["ratio"]
        print(f"| {r['threads']} | {r['GB_per_s']:.2f} | {r['ratio']:.2f} | {total / r['GB_per_s'] / 1e9 * 1e3:.0f} ms |")
    size = int(total / comp_ratio) >> 20 << 20
    r = disk(args.dir, max(size, 1 << 20))
    print(f"disk ({args.dir}): write {r['bytes'] / 1e6:.0f} MB in {r['write_s'] * 1e3:.0f} ms "
          f"({r['GB_per_s_write']:.2f} GB/s), fsync {r['fsync_s'] * 1e3:.0f} ms; together {r['GB_per_s_total']:.2f} GB/s")
    for workers in (max(1, cpus - 2),):  # as a CUDA capture sets it (main and writer threads beside)
        r = pipeline(args.dir, arrays, blocks, args.tokens, workers, args.chunk_tokens)
        print(f"TraceWriter from memory, {workers} compression threads: {r['seconds'] * 1e3:.0f} ms "
              f"({r['GB_per_s_raw']:.2f} GB/s of counts; close+commit {r['close_s'] * 1e3:.0f} ms; "
              f"file {r['file_bytes'] / 1e6:.0f} MB)")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
