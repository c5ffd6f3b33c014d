#!/usr/bin/env python
"""Kernel profile of a GPU: achieved bf16 throughput of the GEMMs and causal attention that the
prefill of the model shapes in hw_models.gpu_calibration.WORKLOAD_SHAPES runs.

The whole-model compute efficiency of a prefill depends on the model's GEMM sizes (a K=576 GEMM
keeps the tensor cores far less busy than a K=3584 one), so one efficiency per GPU cannot carry
from a small model to a large one. This script times each kernel alone (CUDA events, after a
warm-up, repeated for ``--min-seconds``), with no model and no weights, and writes one CSV row
per kernel: ``op`` ("gemm": [M, K] x [K, N]; "sdpa": causal scaled_dot_product_attention of
``batch`` x ``heads`` x L x head_dim), its FLOPs and seconds. hw_models.gpu_calibration reads the
table (hw_models/data/gpu_kernels.csv) as the GPU's compute side. ``seconds`` is the kernel's
GPU time (calls replayed from a CUDA graph, so launch gaps do not count: a 20 us Python launch
would otherwise hide a 3 us GEMM); ``seconds_eager`` the same call launched one by one.

    python benchmarks/gpu_kernels.py --csv $OUT/gpu_kernels.csv
"""
from __future__ import annotations

import argparse
import csv
import datetime as _dt
import io
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from analysis.fileio import write_text  # noqa: E402
from hw_models.gpu_calibration import WORKLOAD_SHAPES  # noqa: E402
from hw_models.gpu_kernels import KERNEL_COLUMNS, kernel_plan  # noqa: E402


def _time(fn, min_seconds: float, inner: int = 20) -> tuple[float, float]:
    """(GPU seconds per call, launched-from-Python seconds per call) of ``fn``: the first from
    ``inner`` calls captured in a CUDA graph and replayed (no launch gaps: the kernel's own
    time), the second from back-to-back eager calls; each repeated for >= ``min_seconds``."""
    import torch

    side = torch.cuda.Stream()
    side.wait_stream(torch.cuda.current_stream())
    with torch.cuda.stream(side):
        for _ in range(3):
            fn()
    torch.cuda.current_stream().wait_stream(side)
    graph = torch.cuda.CUDAGraph()
    with torch.cuda.graph(graph):
        for _ in range(inner):
            fn()
    start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)

    def loop(call, per_call: int) -> float:
        n, total = 0, 0.0
        while total < min_seconds:
            reps = max(1, n)
            start.record()
            for _ in range(reps):
                call()
            end.record()
            end.synchronize()
            total += start.elapsed_time(end) / 1e3
            n += reps
        return total / (n * per_call)

    return loop(graph.replay, inner), loop(fn, 1)


def main(argv=None) -> int:
    p = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    p.add_argument("--csv", required=True, help="CSV to write (atomically)")
    p.add_argument("--min-seconds", type=float, default=0.25, help="measured seconds per kernel")
    a = p.parse_args(argv)
    import torch
    import torch.nn.functional as F

    if not torch.cuda.is_available():
        print("error: no CUDA device", file=sys.stderr)
        return 2
    dev = torch.device("cuda")
    name = torch.cuda.get_device_name(dev)
    date = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
    rows = []
    for k in kernel_plan(WORKLOAD_SHAPES.values()):
        if k["op"] == "gemm":
            x = torch.randn(k["m"], k["k"], device=dev, dtype=torch.bfloat16)
            w = torch.randn(k["n"], k["k"], device=dev, dtype=torch.bfloat16)
            fn = lambda x=x, w=w: F.linear(x, w)  # noqa: E731  (nn.Linear's call)
        else:
            q = torch.randn(k["batch"], k["heads"], k["length"], k["head_dim"], device=dev, dtype=torch.bfloat16)
            kv = torch.randn_like(q)
            fn = lambda q=q, kv=kv: F.scaled_dot_product_attention(q, kv, kv, is_causal=True)  # noqa: E731
        s, s_eager = _time(fn, a.min_seconds)
        rows.append({**k, "seconds": f"{s:.6g}", "tflops": f"{k['flops'] / s / 1e12:.4g}",
                     "seconds_eager": f"{s_eager:.6g}", "device": name, "torch_version": torch.__version__,
                     "date": date})
        print(f"{k['key']}: {s * 1e3:.4f} ms ({k['flops'] / s / 1e12:.1f} TFLOP/s) in a CUDA graph, "
              f"{s_eager * 1e3:.4f} ms launched one by one", flush=True)
        del fn
        torch.cuda.empty_cache()
    buf = io.StringIO()
    wr = csv.DictWriter(buf, fieldnames=KERNEL_COLUMNS, lineterminator="\n", extrasaction="ignore")
    wr.writeheader()
    wr.writerows(rows)
    Path(a.csv).parent.mkdir(parents=True, exist_ok=True)
    write_text(Path(a.csv), buf.getvalue(), overwrite=True)
    print(f"wrote {len(rows)} kernels to {a.csv}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
