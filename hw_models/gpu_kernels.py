"""Kernel profile of a GPU: measured time of each GEMM and attention kernel of a prefill.

One compute efficiency per GPU cannot carry a prefill from a small model to a large one: on
the H200 a SmolLM2-135M prefill of 65,536 tokens ran at about 0.2 of dense bf16 peak, a
Qwen2.5-7B prefill of 1,024 tokens at about 0.46 (hw_models/data/gpu_measurements.csv): a GEMM
with K = 576 keeps the tensor cores far less busy than one with K = 3584, and causal attention
with head_dim 64 runs at its own rate. So the measured regimes take a prefill's compute time
from a **kernel profile** measured once per GPU without any model (benchmarks/gpu_kernels.py:
each GEMM ``[M, K] x [K, N]`` and causal ``scaled_dot_product_attention`` alone, CUDA events),
the method of operator-level simulators such as Vidur (Agrawal et al., MLSys 2024,
arXiv:2405.05465): profile the operators, then add them up.

Compute time of a prefill call = sum over layers of its GEMMs' and attention's profiled times;
the unfused elementwise work of an eager Hugging Face layer (RMSNorm in float32, rotary, SiLU,
residual adds, head transposes: :meth:`hw_models.shapes.ModelShape.eager_elementwise_bytes`) is
memory-bound and runs between them, so it adds its bytes / bandwidth.
"""
from __future__ import annotations

import csv
import math
import re
from functools import lru_cache
from pathlib import Path
from typing import Any, Iterable, Mapping

import numpy as np

from .shapes import ModelShape

KERNEL_COLUMNS = ("key", "op", "m", "k", "n", "batch", "heads", "length", "head_dim", "flops", "seconds", "tflops",
                  "seconds_eager", "device", "torch_version", "date")
#: prefill calls profiled: (batch, prompt length) of the measured workloads
PREFILL_CALLS: tuple[tuple[int, int], ...] = ((1, 1024), (1, 4096), (16, 1024), (16, 4096))
KERNELS_CSV = Path(__file__).resolve().parent / "data" / "gpu_kernels.csv"


def gemm_key(m: int, k: int, n: int) -> str:
    return f"gemm/{m}x{k}x{n}"


def sdpa_key(batch: int, heads: int, length: int, head_dim: int) -> str:
    return f"sdpa/b{batch}h{heads}L{length}d{head_dim}"


def prefill_kernels(shape: ModelShape, batch: int, length: int) -> list[dict[str, Any]]:
    """The distinct kernels of one decoder layer's prefill of ``batch`` x ``length`` tokens, each
    with ``count`` (calls per layer) and ``flops`` (per call)."""
    m = batch * length
    seen: dict[str, dict[str, Any]] = {}
    for _, _, k, n in shape.linear_shapes()[:7]:          # one layer's q, k, v, o, gate, up, down
        key = gemm_key(m, k, n)
        if key in seen:
            seen[key]["count"] += 1
        else:
            seen[key] = {"key": key, "op": "gemm", "m": m, "k": k, "n": n, "flops": 2.0 * m * k * n, "count": 1}
    key = sdpa_key(batch, shape.heads, length, shape.head_dim)
    # causal: QK^T and AV over half of L x L each (hw_models.shapes.ModelShape.dense_work)
    seen[key] = {"key": key, "op": "sdpa", "batch": batch, "heads": shape.heads, "length": length,
                 "head_dim": shape.head_dim, "flops": 2.0 * batch * shape.heads * shape.head_dim * length * length,
                 "count": 1}
    return list(seen.values())


def kernel_plan(shapes: Iterable[ModelShape],
                calls: Iterable[tuple[int, int]] = PREFILL_CALLS) -> list[dict[str, Any]]:
    """Every distinct kernel benchmarks/gpu_kernels.py times: the prefill kernels of ``shapes``
    for each (batch, length) of ``calls``."""
    plan: dict[str, dict[str, Any]] = {}
    for s in shapes:
        for b, L in calls:
            for k in prefill_kernels(s, b, L):
                plan.setdefault(k["key"], {c: v for c, v in k.items() if c != "count"})
    return list(plan.values())


@lru_cache(maxsize=None)
def _load(path: str) -> dict[str, dict[str, float]]:
    """{device: {kernel key: seconds}} of a kernel CSV (the last row of a key wins)."""
    out: dict[str, dict[str, float]] = {}
    p = Path(path)
    if not p.is_file():
        return out
    with open(p, newline="", encoding="utf-8") as fh:
        for r in csv.DictReader(fh):
            out.setdefault(r["device"], {})[r["key"]] = float(r["seconds"])
    return out


def kernel_profile(device: str, path: str | Path = KERNELS_CSV) -> dict[str, float]:
    """{kernel key: seconds} measured on the GPU whose NVML name contains ``device`` (e.g. "H200");
    empty if none."""
    for name, table in _load(str(path)).items():
        if device and device in name:
            return table
    return {}


_DIMS = {"gemm": ("m", "k", "n"), "sdpa": ("batch", "heads", "length", "head_dim")}
_KEY_RE = {"gemm": re.compile(r"^gemm/(\d+)x(\d+)x(\d+)$"), "sdpa": re.compile(r"^sdpa/b(\d+)h(\d+)L(\d+)d(\d+)$")}


def kernel_time_s(kernel: Mapping[str, Any], profile: Mapping[str, float]) -> float:
    """Seconds of one kernel call: its profiled time, or, for a kernel not in ``profile``, its
    FLOPs at the throughput of the nearest profiled kernel of the same op (distance in log2 of
    the dimensions: M, K, N for a GEMM; batch, heads, length, head_dim for attention)."""
    if kernel["key"] in profile:
        return float(profile[kernel["key"]])
    op = kernel["op"]
    want = np.log2([float(kernel[d]) for d in _DIMS[op]])
    best, best_d = None, math.inf
    for key, secs in profile.items():
        m = _KEY_RE[op].match(key)
        if m is None:
            continue
        dims = [float(x) for x in m.groups()]
        d = float(np.sum((np.log2(dims) - want) ** 2))
        if d < best_d:
            flops = 2.0 * math.prod(dims) if op == "gemm" else 2.0 * dims[0] * dims[1] * dims[3] * dims[2] ** 2
            best, best_d = flops / secs, d
    if best is None:
        raise ValueError(f"kernel_time_s: the profile has no {op} kernel to scale {kernel['key']!r} from")
    return float(kernel["flops"]) / best


def profiled_prefill_s(shape: ModelShape, batch: int, length: int, profile: Mapping[str, float]) -> float:
    """Compute time (s) of a whole prefill call from a kernel profile: layers x the layer's
    kernels (:func:`kernel_time_s`); the lm_head of the last positions is left to the roofline."""
    return shape.layers * sum(k["count"] * kernel_time_s(k, profile) for k in prefill_kernels(shape, batch, length))
