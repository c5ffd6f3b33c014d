"""The GPU presets and software regimes against real NVML measurements
(hw_models/data/gpu_measurements.csv: H100 2026-11-25, H200 2026-12-02), offline."""
from __future__ import annotations

import csv
import importlib.util
from pathlib import Path

import pytest

import hw_models as hm
from hw_models.gpu_calibration import (
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
    assert {r["regime"] for r in rows} == {"eager"}
    assert EXPECTED <= {r["workload"] for r in rows}
    return rows


def test_calibrated_h100_within_30_percent(h100_rows):
    res = recheck_measurements(h100_rows, hm.H100_SXM)   # regime None + host overhead = the preset's own fields
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


# ---------------------------------------------------------------------------------------------
# Software regimes (hw_models.gpu_regimes) and the out-of-sample checks of issue 12
# ---------------------------------------------------------------------------------------------
from hw_models.gpu_calibration import (  # noqa: E402
    OUT_OF_SAMPLE_CASES,
    pool_repeats,
    PROBE_DECODE,
    PROBE_PREFILL,
    PROBES,
    fit_regime,
    host_profile,
    out_of_sample,
    out_of_sample_markdown,
    prior_gpu,
    rows_where,
    transfer,
)
from hw_models.gpu_regimes import FITTED_REGIMES  # noqa: E402

S, Q, Q05 = "smollm2-135m-arch", "qwen2.5-7b-shape", "qwen2.5-0.5b-shape"


@pytest.fixture(scope="module")
def all_rows() -> list[dict]:
    with open(CSV_PATH, newline="", encoding="utf-8") as fh:
        return list(csv.DictReader(fh))


def test_h200_rows_cover_both_regimes_and_the_issue_workloads(all_rows):
    h200 = rows_where(all_rows, "H200")
    want = {f"{m}/prefill{p}/b{b}" for m in (S, Q, Q05) for p in (1024, 4096) for b in (1, 16)}
    want |= {f"{m}/decode128@1024/b{b}" for m in (S, Q, Q05) for b in (1, 16)}
    for regime in ("eager", "hf-generate"):
        rows = rows_where(h200, regime=regime)
        assert {r["workload"] for r in rows} == want, regime
        for r in rows:
            assert r["driver"] == "580.159.04" and r["torch_version"].startswith("2.11") and r["date"].startswith("2026-12-02")
        # every decode workload of SmolLM2 and the 7B was measured at least three times (runs 2-4); in
        # eager, the probes and the host-bound targets again in the interleaved rounds (4-11 repeats)
        pooled = {r["workload"]: int(r["repeats"]) for r in pool_repeats(rows)}
        for m in (S, Q):
            for b in (1, 16):
                assert pooled[f"{m}/decode128@1024/b{b}"] >= 3
        if regime == "eager":
            for w in (f"{S}/prefill1024/b1", f"{S}/prefill4096/b1", f"{S}/decode128@1024/b1",
                      f"{Q}/decode128@1024/b1", f"{Q}/decode128@1024/b16", f"{Q05}/prefill4096/b1"):
                assert pooled[w] >= 4, w


def test_pool_repeats_takes_medians_per_column():
    base = {"device": "NVIDIA H200", "regime": "eager", "workload": f"{S}/decode128@1024/b1", "idle_power_w": "120"}
    rows = [dict(base, j_per_token_measured=j, s_per_token_measured=t, avg_power_w=w)
            for j, t, w in (("3.0", "0.020", "130"), ("4.0", "0.031", "131"), ("3.5", "0.029", "150"))]
    rows.append(dict(rows[0], regime="hf-generate"))
    out = {r["regime"]: r for r in pool_repeats(rows)}
    assert float(out["eager"]["j_per_token_measured"]) == 3.5 and float(out["eager"]["s_per_token_measured"]) == 0.029
    assert float(out["eager"]["avg_power_w"]) == 131.0 and out["eager"]["repeats"] == "3"
    assert out["hf-generate"]["repeats"] == "1"
    assert pool_repeats(pool_repeats(rows))[0]["repeats"] == "3"       # pooling again keeps the count
    with pytest.raises(ValueError, match="not a number"):
        pool_repeats([dict(rows[0], avg_power_w="n/a")])


def test_h200_preset_is_the_fit_of_its_eager_rows(all_rows):
    """The preset (the old switch, regime None) is the fit of the first H200 run's eager rows."""
    prior = hm.H200_SXM.with_changes(idle_w=70.0, compute_efficiency=0.7, memory_power_fraction=0.6,
                                     host_overhead_s_per_layer=0.4e-3)
    first = [r for r in rows_where(all_rows, "H200", "eager") if r["date"].startswith("2026-12-02T04")]
    assert len(first) == 8
    fitted, _ = fit_gpu_to_measurements(first, prior)
    for field in ("idle_w", "host_overhead_s_per_layer", "compute_efficiency", "memory_power_fraction"):
        assert getattr(fitted, field) == pytest.approx(getattr(hm.H200_SXM, field), rel=0.005), field
    assert hm.H200_SXM.sources["idle_w"].startswith("MEASURED")


@pytest.mark.parametrize("key", sorted(FITTED_REGIMES))
def test_fitted_regimes_are_the_fits_of_the_rows_and_their_ranges_cover_them(all_rows, key):
    gpu_name, regime = key
    preset = hm.get_gpu(gpu_name)
    rows = rows_where(all_rows, "H100" if gpu_name == "h100_sxm" else "H200", regime)
    fit, info = fit_regime(rows, preset, regime)
    have = FITTED_REGIMES[key]
    assert have.calibrated and have.fitted_on == gpu_name and have.name == regime
    assert have.host_s_per_layer == pytest.approx(fit.host_s_per_layer, rel=0.01)
    assert have.decode_host_s_per_layer == pytest.approx(fit.decode_host_s_per_layer, rel=0.01)
    assert have.host_s_per_step == fit.host_s_per_step == 0.0
    assert have.compute_efficiency == fit.compute_efficiency
    assert have.memory_power_fraction == pytest.approx(fit.memory_power_fraction, abs=0.01)
    assert have.kernel_profile == "H200" and have.unfused_elementwise and have.compute_efficiency is None
    # the host profile IS the probe: SmolLM2 call time / 30 layers (prefill 1024, decode b1), repeats pooled
    probe = {r["workload"]: float(r["s_per_token_measured"]) for r in pool_repeats(rows)}
    assert have.decode_host_s_per_layer == pytest.approx(probe[PROBE_DECODE] / 30, rel=0.01)
    assert have.host_s_per_layer == pytest.approx(probe[PROBE_PREFILL] * 1024 / 30, rel=0.01)
    # the [low, high] range holds every (pooled) measurement it was fitted on
    for r in recheck_measurements(pool_repeats(rows), preset, regime=have):
        pred = r["j_predicted"]
        assert pred * have.energy_spread[0] * 0.99 <= r["j_measured"] <= pred * have.energy_spread[1] * 1.01, r
        assert r["s_predicted"] * have.time_spread[0] * 0.99 <= r["s_measured"] <= r["s_predicted"] * have.time_spread[1] * 1.01


# Out of sample (docs/gpu-regimes.md): the GPU side (memory power fraction) is fitted on the
# training rows; prefill compute comes from the GPU's kernel profile (measured without any model);
# the host profile of the predicted machine comes from its own SmolLM2 probe rows (prefill 1024,
# decode b1, repeats pooled), which are not scored. Target |error| < 30 % on J/token and s/token.
# KNOWN_MISSES holds measured limits (empty since the interleaved probe rounds of 2026-12-02,
# benchmarks/gpu_probe_rounds.sh: the four host-bound H200 rows that missed by 32-34 % on time came
# within 25 % once the probe and the targets were each the median of 4-13 repeats): a workload listed
# must stay a miss (an improved model has to shorten the list), every other one is held to 30 %.
CASES = OUT_OF_SAMPLE_CASES
KNOWN_MISSES = {
    "eager H100->H200": set(),
    "eager H200->H100": set(),
    "eager H100 smollm2->7b": set(),
    "eager H100 7b->smollm2": set(),
    "eager H200 smollm2->7b": set(),
    "eager H200 7b->smollm2": set(),
    "hf-generate H200 smollm2->7b": set(),
    "hf-generate H200 7b->smollm2": set(),
}


@pytest.mark.parametrize("case", sorted(CASES))
def test_out_of_sample_within_30_percent(all_rows, case):
    regime, train, test = CASES[case]
    fit, res = transfer(all_rows, regime, train, test)
    assert fit.fitted_on == prior_gpu(rows_where(all_rows, train[0])).name
    misses = {r["workload"] for r in res if abs(r["j_error_pct"]) >= 30.0 or abs(r["s_error_pct"]) >= 30.0}
    for r in res:       # every miss is a time miss of at most 35 %; J/token within 30 % everywhere
        if r["workload"] in misses:
            assert abs(r["j_error_pct"]) < 30.0 and 30.0 <= abs(r["s_error_pct"]) < 35.0, r
    assert misses == KNOWN_MISSES[case], {r["workload"]: (round(r["j_error_pct"], 1), round(r["s_error_pct"], 1))
                                          for r in res}
    # what passes is a real prediction: the fit saw none of these rows
    trained = {r["workload"] for r in rows_where(all_rows, train[0], regime, train[1])}
    scored = {r["workload"] for r in res}
    assert not scored & set(PROBES)                      # the probe rows calibrate, they are not scored
    if train[0] == test[0]:
        assert not trained & scored


def test_host_profile_is_the_probe_and_docs_hold_the_generated_table(all_rows):
    h100 = rows_where(all_rows, "H100", "eager")
    pre, dec = host_profile(h100)
    assert dec == pytest.approx(0.0181015 / 30) and pre == pytest.approx(2.17117e-05 * 1024 / 30)
    # without the prefill probe the decode value serves for both; without the decode probe: one clear error
    assert host_profile([r for r in h100 if r["workload"] != PROBE_PREFILL]) == (dec, dec)
    with pytest.raises(ValueError, match="no host probe row"):
        host_profile([r for r in h100 if r["workload"] != PROBE_DECODE])
    res = out_of_sample(all_rows)
    assert len(res) == 44 and sum(r["within"] for r in res) == 44 - sum(map(len, KNOWN_MISSES.values())) == 44
    doc = (ROOT / "docs" / "gpu-regimes.md").read_text(encoding="utf-8")
    assert out_of_sample_markdown(res) in doc          # docs/gpu-regimes.md holds the table the code makes


# README quotes H200 decode at batch 1 (1024-token prompt) per regime: J/token [low, high]
README_H200 = {("smollm2", "hardware"): "0.040 [0.028, 0.065]", ("smollm2", "eager"): "2.8\n  [2.4, 3.9]",
               ("smollm2", "hf-generate"): "3.3 [2.8, 4.6]", ("qwen7b", "hardware"): "1.95\n  [1.36, 3.11]",
               ("qwen7b", "eager"): "4.4 [3.8, 6.1]", ("qwen7b", "hf-generate"): "5.2 [4.4, 7.3]"}


@pytest.mark.parametrize("key", sorted(README_H200))
def test_readme_h200_numbers_are_the_model_s(key):
    model, regime = key
    quoted = README_H200[key]
    assert quoted in (ROOT / "README.md").read_text(encoding="utf-8")
    shape = hm.SMOLLM2_135M if model == "smollm2" else hm.QWEN25_7B
    p = hm.predict_forward(hm.get_gpu("h200"), shape, "decode", batch=1, prompt_len=1024, context=1088, regime=regime)
    nums = [float(x) for x in quoted.replace("[", " ").replace("]", " ").replace(",", " ").split()]
    for have, key_ in zip(nums, ("energy_per_token_j", "energy_per_token_j_low", "energy_per_token_j_high")):
        assert have == pytest.approx(float(p[key_]), rel=0.035), (key_, have, p[key_])


def test_regime_changes_the_answer_and_results_carry_it():
    h200 = hm.get_gpu("h200")
    hw = hm.predict_forward(h200, hm.SMOLLM2_135M, "decode", batch=1, prompt_len=1024, regime="hardware")
    eager = hm.predict_forward(h200, hm.SMOLLM2_135M, "decode", batch=1, prompt_len=1024, regime="eager")
    gen = hm.predict_forward(h200, hm.SMOLLM2_135M, "decode", batch=1, prompt_len=1024, regime="hf-generate")
    assert hw["bound"] == "memory" and eager["bound"] == gen["bound"] == "host"
    assert eager["latency_per_token_s"] > 100 * hw["latency_per_token_s"]
    reg = FITTED_REGIMES[("h200_sxm", "hf-generate")]
    assert gen["latency_per_token_s"] == pytest.approx(30 * reg.decode_host_s_per_layer + reg.host_s_per_step)
    for p in (hw, eager, gen):
        assert p["view"] == "power x time" and p["calibrated"] is True
        assert p["energy_per_token_j_low"] <= p["energy_per_token_j"] <= p["energy_per_token_j_high"]
        assert p["latency_per_token_s_low"] <= p["latency_per_token_s"] <= p["latency_per_token_s_high"]
    # A100 was never measured: every regime is marked uncalibrated, in the dict and the notes
    act = hm.synthetic_activity("model.layers.0.self_attn.q_proj", "q", 64, 64, 4)
    for regime in ("hardware", "eager", "hf-generate"):
        res = hm.run_on_gpu([act], hm.get_gpu("a100"), regime=regime)
        assert res.details["regime"] == regime and res.details["calibrated"] is False
        assert any("UNCALIBRATED" in n for n in res.notes) and any(f"[{regime}]" in n for n in res.notes)
        d = res.to_dict()["details"]
        assert d["energy_per_token_j_low"] < res.energy_per_token_j < d["energy_per_token_j_high"]
        assert d["view"] == "power x time" and d["other_view"].startswith("op + byte")
    h100 = hm.run_on_gpu([act], hm.get_gpu("h100"), regime="eager")
    assert h100.details["calibrated"] is True and not any("UNCALIBRATED" in n for n in h100.notes)
    assert hm.run_on_gpu([act], hm.get_gpu("h100"), regime="hf-generate").details["calibrated"] is False
    rows = hm.comparison_rows([h100], reference="h100_sxm")
    assert rows[0]["regime"] == "eager" and rows[0]["calibrated"] is True
    with pytest.raises(ValueError, match="unknown GPU regime 'vllm'"):
        hm.predict_forward(h200, hm.SMOLLM2_135M, "decode", regime="vllm")
    with pytest.raises(TypeError, match="regime must be"):
        hm.run_on_gpu([act], h200, regime=3)


def test_get_gpu_short_names_and_one_error():
    assert hm.get_gpu("h100") is hm.H100_SXM and hm.get_gpu("H200") is hm.H200_SXM
    assert hm.get_gpu("a100_sxm") is hm.A100_SXM
    with pytest.raises(ValueError, match=r"unknown GPU preset 'b200'; choose one of a100 \(a100_sxm\), h100"):
        hm.get_gpu("b200")
    with pytest.raises(TypeError, match="preset name"):
        hm.get_gpu(None)


def test_cli_takes_a_gpu_regime():
    from neurosim.cli import build_parser

    p = build_parser()
    assert p.parse_args(["energy", "t.h5"]).gpu_regime == "hardware"
    assert p.parse_args(["energy", "t.h5", "--gpu-regime", "hf-generate"]).gpu_regime == "hf-generate"
    assert p.parse_args(["run", "--prompt", "hi", "--out", "o", "--gpu-regime", "eager"]).gpu_regime == "eager"
    with pytest.raises(SystemExit):
        p.parse_args(["energy", "t.h5", "--gpu-regime", "vllm"])


@pytest.mark.parametrize("regime", ["hardware", "eager", "hf-generate"])
def test_headline_gpu_energy_is_power_x_time(regime):
    acts = hm.synthetic_model_activity(hm.SMOLLM2_135M, tokens=8)
    for g in ("h100", "h200", "a100"):
        for mode in ("decode", "prefill"):
            res = hm.run_on_gpu(acts, hm.get_gpu(g), mode=mode, regime=regime)
            assert res.energy_per_token_j == pytest.approx(res.details["power_time_j_per_token"])
            assert res.details["opbyte_j_per_token"] < res.energy_per_token_j      # the other, labelled view
            assert res.details["view"] == "power x time"


def test_benchmark_smoke_runs_both_regimes_and_writes_rows(tmp_path, capsys):
    """The measuring code path (manual KV-cache loop and transformers generate with the
    first-step energy mark) on a tiny CPU model; energies are NaN without NVML."""
    pytest.importorskip("transformers")
    spec = importlib.util.spec_from_file_location("gpu_energy", ROOT / "benchmarks" / "gpu_energy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    out = tmp_path / "m.csv"
    assert mod.main(["--smoke", "--regimes", "eager,hf-generate", "--prefill-lens", "8", "--decode-tokens", "3",
                     "--batches", "2", "--csv", str(out), "--json", str(tmp_path / "m.json")]) == 0
    new = [r for r in csv.DictReader(out.open()) if r["workload"].startswith("smoke/")]
    assert sorted((r["regime"], r["workload"]) for r in new) == [
        ("eager", "smoke/decode3@32/b2"), ("eager", "smoke/prefill8/b1"),
        ("hf-generate", "smoke/decode3@32/b2"), ("hf-generate", "smoke/prefill8/b1")]
    tokens = {(r["regime"], r["workload"]): int(r["tokens"]) for r in new}
    assert tokens[("hf-generate", "smoke/decode3@32/b2")] % (2 * 2) == 0    # (3 - 1) measured steps x batch 2
    assert tokens[("eager", "smoke/decode3@32/b2")] % (3 * 2) == 0
    assert "warm-up (first pass over these KV lengths)" in capsys.readouterr().out
    with pytest.raises(SystemExit):
        mod.parse_args(["--regimes", "vllm"])


def test_a_spec_renamed_for_display_keeps_its_fitted_regimes():
    """The command line shows h200, not h200_sxm (neurosim.platforms): the regime fit must follow."""
    import dataclasses

    from hw_models import get_gpu, get_regime

    spec = get_gpu("h200_sxm")
    shown = dataclasses.replace(spec, name="h200")
    for regime in ("hardware", "eager", "hf-generate"):
        assert get_regime(shown, regime) == get_regime(spec, regime)
        assert get_regime(shown, regime).calibrated
