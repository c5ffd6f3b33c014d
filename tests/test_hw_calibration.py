"""The H100 preset against real NVML measurements (hw_models/data/gpu_measurements.csv), offline."""
from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

import hw_models as hm
from hw_models.gpu_model import (
    WORKLOAD_SHAPES,
    Workload,
    fit_gpu_to_measurements,
    parse_workload,
    predict_workload,
    recheck_markdown,
    recheck_measurements,
)
from hw_models.gpus import H100_SXM_UNCALIBRATED

ROOT = Path(__file__).resolve().parents[1]
CSV_PATH = ROOT / "hw_models" / "data" / "gpu_measurements.csv"
FIRST_RUN = "2026-11-25T12:23:51"   # the run recorded with the uncalibrated preset
EXPECTED = {
    "smollm2-135m-arch/prefill1024/b1", "smollm2-135m-arch/decode128@1024/b1", "smollm2-135m-arch/decode128@1024/b16",
    "qwen2.5-7b-shape/prefill1024/b1", "qwen2.5-7b-shape/decode128@1024/b1", "qwen2.5-7b-shape/decode128@1024/b16",
}


@pytest.fixture(scope="module")
def h100_rows() -> list[dict]:
    with open(CSV_PATH, newline="", encoding="utf-8") as fh:
        rows = [r for r in csv.DictReader(fh) if "H100" in r["device"]]
    assert EXPECTED <= {r["workload"] for r in rows}
    return rows


def test_calibrated_h100_within_30_percent(h100_rows):
    res = recheck_measurements(h100_rows, hm.H100_SXM)
    assert len(res) == len(h100_rows)
    for r in res:
        assert abs(r["j_error_pct"]) < 30.0, r
        assert abs(r["s_error_pct"]) < 30.0, r
        assert r["j_predicted"] == pytest.approx(r["j_measured"], rel=0.30)
    # the 7B prefill is the compute-bound row; everything else is host-bound in eager mode
    bounds = {r["workload"]: r["bound"] for r in res}
    assert bounds["qwen2.5-7b-shape/prefill1024/b1"] == "compute"
    assert bounds["qwen2.5-7b-shape/decode128@1024/b1"] == "host"


def test_old_assumptions_are_more_than_30_percent_off(h100_rows):
    old = recheck_measurements(h100_rows, H100_SXM_UNCALIBRATED)
    assert max(abs(r["j_error_pct"]) for r in old) > 30.0
    assert max(abs(r["s_error_pct"]) for r in old) > 30.0
    # reverting only the host overhead, or only the compute efficiency, breaks the 30 % goal too
    for field in ("host_overhead_s_per_layer", "compute_efficiency"):
        g = hm.H100_SXM.with_changes(**{field: getattr(H100_SXM_UNCALIBRATED, field)})
        assert max(abs(r["j_error_pct"]) for r in recheck_measurements(h100_rows, g)) > 30.0, field


def test_recheck_reproduces_the_predictions_recorded_by_the_benchmark(h100_rows):
    """The first run was predicted on the GPU machine with the uncalibrated preset: rebuilding
    each workload from its name alone must give the same numbers (shape, mode, batch, context)."""
    first = [r for r in h100_rows if r["date"].startswith(FIRST_RUN)]
    assert len(first) == 6
    res = recheck_measurements(first, H100_SXM_UNCALIBRATED)
    for row, r in zip(first, res):
        assert r["j_predicted"] == pytest.approx(float(row["j_per_token_predicted"]), rel=1e-4)
        assert r["s_predicted"] == pytest.approx(float(row["s_per_token_predicted"]), rel=1e-4)
        assert r["j_error_pct"] == pytest.approx(float(row["error_pct"]), abs=0.01)


def test_preset_is_the_fit_of_the_recorded_data(h100_rows):
    fitted, info = fit_gpu_to_measurements(h100_rows, H100_SXM_UNCALIBRATED)
    h = hm.H100_SXM
    assert h.idle_w == pytest.approx(128.0) and fitted.idle_w == pytest.approx(h.idle_w)
    for field in ("host_overhead_s_per_layer", "compute_efficiency", "memory_power_fraction"):
        assert getattr(fitted, field) == pytest.approx(getattr(h, field), rel=0.005), field
        assert "measured 2026-11-25 on NVIDIA H100 80GB HBM3" in h.sources[field]
    # datasheet values untouched, the unpinned bandwidth efficiency still an assumption
    assert (h.peak_bf16_flops, h.hbm_bytes_per_s, h.tdp_w) == (989.5e12, 3.35e12, 700.0)
    assert h.bandwidth_efficiency == 0.8 and h.sources["bandwidth_efficiency"].startswith("ASSUMPTION")
    assert info["time_rms_log_error"] < 0.1 and info["bounds"]["qwen2.5-7b-shape/prefill1024/b1"] == "compute"


def _synthetic_rows(gpu: hm.GPUSpec) -> list[dict]:
    rows = []
    for name in sorted(EXPECTED):
        w = parse_workload(name)
        p = predict_workload(gpu, w)
        rows.append({"workload": name, "j_per_token_measured": repr(float(p["energy_per_token_j"])),
                     "s_per_token_measured": repr(float(p["latency_per_token_s"])),
                     "avg_power_w": repr(float(p["power_w"])), "idle_power_w": repr(gpu.idle_w)})
    return rows


def test_fit_recovers_known_parameters():
    truth = H100_SXM_UNCALIBRATED.with_changes(idle_w=100.0, host_overhead_s_per_layer=0.5e-3,
                                               compute_efficiency=0.5, memory_power_fraction=0.7)
    fitted, info = fit_gpu_to_measurements(_synthetic_rows(truth), H100_SXM_UNCALIBRATED)
    assert fitted.idle_w == pytest.approx(100.0)
    assert fitted.host_overhead_s_per_layer == pytest.approx(0.5e-3, rel=1e-3)
    assert fitted.compute_efficiency == pytest.approx(0.5, rel=1e-3)
    assert fitted.memory_power_fraction == pytest.approx(0.7, abs=1e-3)
    assert info["time_rms_log_error"] < 1e-3
    # without a compute-bound row the efficiency is not pinned: the prior is kept
    host_only = [r for r in _synthetic_rows(truth) if "prefill" not in r["workload"]]
    kept, _ = fit_gpu_to_measurements(host_only, H100_SXM_UNCALIBRATED)
    assert kept.compute_efficiency == H100_SXM_UNCALIBRATED.compute_efficiency
    assert kept.host_overhead_s_per_layer == pytest.approx(0.5e-3, rel=1e-3)


def test_workload_names_round_trip_and_bad_input():
    for name in EXPECTED:
        assert parse_workload(name).name == name
    w = parse_workload("qwen2.5-7b-shape/decode128@1024/b16")
    assert (w.shape, w.mode, w.batch, w.prompt_len, w.decode_tokens) == (hm.QWEN25_7B, "decode", 16, 1024, 128)
    assert w.context == 1088.0 and w.call_time_s(0.02) == 0.02
    pre = Workload("smollm2-135m-arch", WORKLOAD_SHAPES["smollm2-135m-arch"], "prefill", 1, 1024)
    assert pre.context is None and pre.call_time_s(2e-5) == pytest.approx(2e-5 * 1024)
    with pytest.raises(ValueError, match="unknown model label 'llama-70b'"):
        parse_workload("llama-70b/prefill1024/b1")
    with pytest.raises(ValueError, match="cannot parse workload"):
        parse_workload("qwen2.5-7b-shape/decode@1024/b1")
    with pytest.raises(ValueError, match="batch"):
        parse_workload("qwen2.5-7b-shape/prefill1024/b0")
    with pytest.raises(TypeError, match="string"):
        parse_workload(7)


def test_recheck_rejects_bad_rows(h100_rows):
    good = dict(h100_rows[0])
    with pytest.raises(ValueError, match="lacks column\\(s\\) avg_power_w"):
        recheck_measurements([{k: v for k, v in good.items() if k != "avg_power_w"}], hm.H100_SXM)
    with pytest.raises(ValueError, match="'j_per_token_measured' is not a number"):
        recheck_measurements([dict(good, j_per_token_measured="n/a")], hm.H100_SXM)
    with pytest.raises(ValueError, match="finite and > 0"):
        recheck_measurements([dict(good, s_per_token_measured="nan")], hm.H100_SXM)
    with pytest.raises(ValueError, match="no measurement rows"):
        recheck_measurements([], hm.H100_SXM)
    with pytest.raises(TypeError, match="GPUSpec"):
        recheck_measurements([good], hm.LOIHI)
    assert recheck_markdown(recheck_measurements([good], hm.H100_SXM)).count("\n") == 2


def test_benchmark_recheck_cli(capsys, tmp_path):
    spec = importlib.util.spec_from_file_location("gpu_energy", ROOT / "benchmarks" / "gpu_energy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    assert mod.main(["--recheck", str(CSV_PATH), "--device-match", "H100"]) == 0
    out = capsys.readouterr().out
    assert out.count("| qwen2.5-7b-shape/") == 3 and "against preset h100_sxm:" in out
    assert "host_overhead_s_per_layer: fit 0.000676" in out
    assert mod.main(["--recheck", str(CSV_PATH), "--preset", "h100_sxm_uncalibrated"]) == 0
    assert "| -70.1 |" in capsys.readouterr().out                    # the recorded error of the first run
    assert mod.main(["--recheck", str(tmp_path / "missing.csv")]) == 2
    assert "no such CSV file" in capsys.readouterr().err
