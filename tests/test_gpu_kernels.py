"""The H200 kernel profile (hw_models/data/gpu_kernels.csv) and the eager elementwise traffic that
the measured GPU regimes add to a prefill (hw_models.gpu_kernels, ModelShape.eager_elementwise_bytes)."""
from __future__ import annotations

import csv
from pathlib import Path

import pytest

import hw_models as hm
from hw_models.gpu_calibration import WORKLOAD_SHAPES
from hw_models.gpu_kernels import (
    KERNELS_CSV,
    gemm_key,
    kernel_plan,
    kernel_profile,
    kernel_time_s,
    prefill_kernels,
    profiled_prefill_s,
    sdpa_key,
)

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def h200() -> dict[str, float]:
    prof = kernel_profile("H200")
    assert prof, "no H200 rows in hw_models/data/gpu_kernels.csv"
    return prof


def test_profile_covers_every_planned_kernel_and_was_timed_without_launch_gaps(h200):
    plan = kernel_plan(WORKLOAD_SHAPES.values())
    assert len(plan) == 60 and {k["key"] for k in plan} == set(h200)
    with open(KERNELS_CSV, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    for r in rows:
        assert float(r["flops"]) / float(r["seconds"]) < 989.5e12            # never above the bf16 dense peak
        assert float(r["seconds_eager"]) >= 0.9 * float(r["seconds"])        # a CUDA graph removes launch gaps only
    small = {r["key"]: r for r in rows}[gemm_key(1024, 576, 576)]
    assert float(small["seconds_eager"]) > 3 * float(small["seconds"])       # the 3 us GEMM behind a 20 us launch


def test_prefill_time_is_the_sum_of_the_layer_kernels(h200):
    shape = hm.QWEN25_7B
    ks = prefill_kernels(shape, 1, 1024)
    assert [(k["key"], k["count"]) for k in ks] == [
        (gemm_key(1024, 3584, 3584), 2), (gemm_key(1024, 3584, 512), 2), (gemm_key(1024, 3584, 18944), 2),
        (gemm_key(1024, 18944, 3584), 1), (sdpa_key(1, 28, 1024, 128), 1)]
    want = 28 * sum(c * h200[k] for k, c in [(k["key"], k["count"]) for k in ks])
    assert profiled_prefill_s(shape, 1, 1024, h200) == pytest.approx(want, rel=1e-12)
    # causal attention FLOPs as in ModelShape.dense_work (per layer)
    work = shape.dense_work("prefill", batch=1, prompt_len=1024)
    assert ks[-1]["flops"] * shape.layers == pytest.approx(work["attn_flops"])


def test_unprofiled_kernel_scales_from_its_nearest_neighbour():
    prof = {gemm_key(1024, 4096, 4096): 1e-4, gemm_key(65536, 576, 576): 1e-4, sdpa_key(1, 8, 1024, 64): 5e-5}
    k = {"key": gemm_key(2048, 4096, 4096), "op": "gemm", "m": 2048, "k": 4096, "n": 4096,
         "flops": 2.0 * 2048 * 4096 * 4096}
    rate = 2.0 * 1024 * 4096 * 4096 / 1e-4                                    # the nearer one in log2 dims
    assert kernel_time_s(k, prof) == pytest.approx(k["flops"] / rate)
    assert kernel_time_s({**k, "key": gemm_key(1024, 4096, 4096)}, prof) == 1e-4   # exact key: its own time
    with pytest.raises(ValueError, match="no sdpa kernel"):
        kernel_time_s({"key": sdpa_key(1, 8, 2048, 64), "op": "sdpa", "batch": 1, "heads": 8, "length": 2048,
                       "head_dim": 64, "flops": 1.0}, {gemm_key(1, 1, 1): 1.0})
    assert kernel_profile("B200") == {}


def test_eager_elementwise_bytes_counted_from_the_layer_code():
    s = hm.SMOLLM2_135M                      # 84 h + 24 q + 20 kv + 10 I bytes per token and layer (bf16)
    per = 84 * 576 + 24 * 576 + 20 * 192 + 10 * 1536
    assert per == 81408
    assert s.eager_elementwise_bytes(1024) == 1024 * 30 * per
    assert hm.QWEN25_7B.eager_elementwise_bytes(1) == 28 * (84 * 3584 + 24 * 3584 + 20 * 512 + 10 * 18944)


def test_measured_regimes_price_profiled_compute_and_elementwise_traffic():
    h200 = hm.get_gpu("h200")
    eager = hm.predict_forward(h200, hm.QWEN25_7B, "prefill", prompt_len=4096, regime="eager")
    hw = hm.predict_forward(h200, hm.QWEN25_7B, "prefill", prompt_len=4096, regime="hardware")
    assert eager["compute_profiled"] and not hw["compute_profiled"] and hw["t_elementwise_s"] == 0.0
    bw = h200.hbm_bytes_per_s * h200.bandwidth_efficiency
    assert eager["t_elementwise_s"] == pytest.approx(hm.QWEN25_7B.eager_elementwise_bytes(4096) / bw)
    assert eager["time_s"] == pytest.approx(max(eager["t_compute_s"], eager["t_memory_s"]) + eager["t_elementwise_s"])
    # measured 2026-12-02 on the H200: 112.4 ms per call (eager, hw_models/data/gpu_measurements.csv)
    assert eager["time_s"] == pytest.approx(0.1124, rel=0.15)
    # decode is memory- or host-bound: the profile is not used there
    dec = hm.predict_forward(h200, hm.QWEN25_7B, "decode", prompt_len=1024, regime="eager")
    assert not dec["compute_profiled"]
    # the A100 has no profile: FLOPs / (peak x efficiency), still with the eager elementwise traffic
    a100 = hm.predict_forward(hm.get_gpu("a100"), hm.QWEN25_7B, "prefill", prompt_len=4096, regime="eager")
    assert not a100["compute_profiled"] and a100["t_elementwise_s"] > 0


def test_run_on_gpu_prefill_uses_the_profile_and_the_elementwise_traffic():
    """The per-layer path that prices a trace agrees with the whole-model prediction on the GPU
    work (it lacks attention and prices the lm_head at every position)."""
    h200 = hm.get_gpu("h200")
    acts = hm.synthetic_model_activity(hm.QWEN25_7B, tokens=64)
    res = hm.run_on_gpu(acts, h200, mode="prefill", regime="eager")
    whole = hm.predict_forward(h200, hm.QWEN25_7B, "prefill", prompt_len=64, regime="eager")
    head = 2.0 * 64 * hm.QWEN25_7B.lm_head_params / (h200.peak_bf16_flops * h200.compute_efficiency)
    gpu_work = max(whole["t_compute_s"] + head, whole["t_memory_s"]) + whole["t_elementwise_s"]
    assert res.details["t_hw_s"] * 64 == pytest.approx(gpu_work, rel=0.15)
    hw = hm.run_on_gpu(acts, h200, mode="prefill", regime="hardware")
    assert hw.details["t_hw_s"] < res.details["t_hw_s"]          # no elementwise traffic in a fused engine
    assert res.energy_per_token_j == pytest.approx(res.details["power_time_j_per_token"])
