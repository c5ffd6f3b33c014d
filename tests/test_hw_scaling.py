"""Synthetic records, per-role statistics and the 7B extrapolation; the GPU calibration script's I/O."""
from __future__ import annotations

import csv
import importlib.util
import io
from pathlib import Path

import numpy as np
import pytest

import hw_models as hm

ROOT = Path(__file__).resolve().parents[1]


@pytest.fixture(scope="module")
def small_trace():
    return hm.synthetic_model_activity(hm.SMOLLM2_135M, tokens=4)


def test_synthetic_matches_requested_statistics():
    a = hm.synthetic_activity("l", "gate", 576, 1536, 200, silent_fraction=0.184, spikes_per_active=1.13)
    slots = a.input_slots
    assert slots == 200 * 576
    assert a.silent_inputs / slots == pytest.approx(0.184, abs=0.01)
    assert a.events / (slots - a.silent_inputs) == pytest.approx(1.13, abs=0.01)
    assert a.sparsity == pytest.approx(1 - 1.13 * 0.816 / 3, abs=0.01)     # the report's ~69 %
    assert a.events_per_step.sum() == a.events_per_token.sum() == a.event_hist @ np.arange(4)
    assert a.synaptic_ops == a.events * 1536 and a.weight_bytes_touched == a.synaptic_ops
    # MSB first: the most significant bit (step 0) is the rarest
    assert a.events_per_step[0] < a.events_per_step[1] < a.events_per_step[2]


def test_synthetic_block_fetch_counts_whole_blocks():
    acts = [hm.synthetic_activity("l", "up", 100, 10, 3, block_columns=bc, seed=1) for bc in (1, 16, 100)]
    assert len({a.events for a in acts}) == 1                      # same spikes, different block sizes
    one, sixteen, whole = (a.weight_bytes_touched for a in acts)
    assert one == acts[0].synaptic_ops < sixteen < whole            # wider blocks over-fetch more
    # a single 100-column block: every (token, step) with a spike fetches all 100 x 10 weights
    assert whole % 1000 == 0 and whole <= 3 * 3 * 1000


def test_synthetic_rejects_unreachable_statistics():
    with pytest.raises(ValueError, match="not reachable"):
        hm.synthetic_activity("l", "q", 8, 8, 2, spikes_per_active=3.5)
    with pytest.raises(ValueError, match="unsupported scheme"):
        hm.synthetic_activity("l", "q", 8, 8, 2, scheme="bitwise-twos")
    with pytest.raises(ValueError, match="silent_fraction"):
        hm.synthetic_activity("l", "q", 8, 8, 2, silent_fraction=1.5)


def test_role_statistics(small_trace):
    stats = hm.role_statistics(small_trace)
    assert set(stats) == {"q", "k", "v", "o", "gate", "up", "down"}
    g = stats["gate"]
    assert g.layers == 30 and g.steps == 3
    events = sum(a.events for a in small_trace if a.role == "gate")
    assert g.events_per_slot == pytest.approx(events / (30 * 4 * 576))
    assert sum(g.step_fractions) == pytest.approx(1.0)
    assert g.fetch_fraction == pytest.approx(g.events_per_slot / 3)       # block_columns = 1
    assert g.sparsity == pytest.approx(1 - g.events_per_slot / 3)


def test_extrapolate_to_7b_preserves_per_role_rates(small_trace):
    big = hm.extrapolate(small_trace, hm.QWEN25_7B, tokens=4)
    assert len(big) == 28 * 7
    stats_small = hm.role_statistics(small_trace)
    stats_big = hm.role_statistics(big)
    for role in stats_small:
        assert stats_big[role].events_per_slot == pytest.approx(stats_small[role].events_per_slot, rel=1e-4)
        assert stats_big[role].silent_fraction == pytest.approx(stats_small[role].silent_fraction, rel=1e-3)
    down = big[6]
    assert (down.in_features, down.out_features, down.role) == (18944, 3584, "down")
    assert down.synaptic_ops == down.events * 3584


def test_7b_on_chips_needs_hundreds_of_chips(small_trace):
    big = hm.extrapolate(small_trace, hm.QWEN25_7B, tokens=2)
    res = hm.run_on_chip(big, hm.LOIHI)
    min_chips = -(-hm.QWEN25_7B.decoder_linear_params // (128 * 128 * 1024))
    assert res.devices >= min_chips >= 389
    assert res.details["chips_by_capacity"] == min_chips
    assert sum(l.details["interchip_j"] for l in res.layers) > 0
    assert res.energy_per_token_j > 0 and res.latency_s > 0
    gpu = hm.run_on_gpu(big, hm.H100_SXM)
    assert gpu.energy_per_token_j > 0


def test_evaluate_scaled_states_the_assumption(small_trace):
    res = hm.evaluate_scaled(small_trace, hm.QWEN25_7B, tokens=2, chips=[hm.LOIHI2], gpus=[hm.H100_SXM])
    assert all(r.notes[0].startswith("extrapolated: per-role") for r in res)
    assert "independent of layer width and depth" in hm.comparison_markdown(res)


def test_extrapolate_needs_every_role(small_trace):
    with pytest.raises(ValueError, match="no 'lm_head' layer"):
        hm.extrapolate(small_trace, hm.QWEN25_7B, include_lm_head=True)
    with pytest.raises(ValueError, match="no role"):
        hm.role_statistics([hm.synthetic_activity("x", "", 8, 8, 2)])


def _load_script():
    spec = importlib.util.spec_from_file_location("gpu_energy", ROOT / "benchmarks" / "gpu_energy.py")
    mod = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(mod)
    return mod


def test_calibration_csv_append_is_atomic_and_checked(tmp_path):
    mod = _load_script()
    repo_csv = ROOT / "hw_models" / "data" / "gpu_measurements.csv"
    header = next(csv.reader(io.StringIO(repo_csv.read_text())))
    assert tuple(header) == mod.CSV_COLUMNS
    out = tmp_path / "m.csv"
    row = {c: "" for c in mod.CSV_COLUMNS}
    row.update(workload="qwen/decode128@1024/b1", tokens=128, j_per_token_measured="3.1", error_pct="-5.0")
    mod._atomic_append(out, [row], repo_csv)
    mod._atomic_append(out, [dict(row, tokens=256)], repo_csv)
    rows = list(csv.DictReader(io.StringIO(out.read_text())))
    assert [r["tokens"] for r in rows[-2:]] == ["128", "256"]
    assert not list(tmp_path.glob(".gpu_measurements.*"))          # no temp file left behind
    bad = tmp_path / "bad.csv"
    bad.write_text("a,b\n1,2\n")
    with pytest.raises(ValueError, match="unexpected CSV header"):
        mod._atomic_append(bad, [row], None)
    assert bad.read_text() == "a,b\n1,2\n"                          # nothing lost


def test_calibration_script_without_gpu_stops_clearly(capsys):
    mod = _load_script()
    torch = pytest.importorskip("torch")
    if torch.cuda.is_available():
        pytest.skip("a GPU is present")
    assert mod.main(["--idle-seconds", "0"]) == 2
    assert "no CUDA device" in capsys.readouterr().err
    with pytest.raises(SystemExit):
        mod.parse_args(["--batches", "x"])
