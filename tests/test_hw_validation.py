"""validate-hw rows, peer estimators, ranges, break-even and the waterfall."""
from __future__ import annotations

import dataclasses
import json

import numpy as np
import pytest

import hw_models as hm
from hw_models import breakeven, peers, ranges, validation
from hw_models.workloads import at_rate, events_per_slot, rate_activity


@pytest.fixture(scope="module")
def acts():
    return hm.synthetic_model_activity(hm.SMOLLM2_135M, tokens=4)


# ----------------------------------------------------------------------------- workloads

def test_rate_activity_counts_are_consistent():
    a = rate_activity("layers.0.q", "q", 100, 7, 3, 1.5, steps=2)
    assert a.events == 450 and a.synaptic_ops == 450 * 7 and a.silent_inputs == 0
    assert a.event_hist.tolist() == [0, 150, 150] and a.events_per_token.sum() == 450
    b = rate_activity("x", "q", 100, 7, 3, 0.25)
    assert b.silent_inputs == 225 and b.active_slots == 75 and abs(b.sparsity - 0.75) < 1e-12
    assert rate_activity("x", "q", 10, 2, 1, 2.6, steps=1).steps == 3  # steps raised to carry the counts
    with pytest.raises(ValueError):
        rate_activity("x", "q", 10, 2, 1, -1.0)
    assert events_per_slot(at_rate([a, b], 0.5)) == pytest.approx(0.5)


# ----------------------------------------------------------------------------- validation

def test_every_checked_row_passes_and_rows_go_through_run_on_chip():
    rows, ok = validation.validate()
    assert ok
    chips = {r["chip"] for r in rows}
    assert chips == {"loihi", "loihi2", "truenorth", "spinnaker2"}
    for r in rows:
        if r["result"] == "PASS":
            assert abs(r["error_pct"]) <= r["tolerance_pct"]
        if r["status"] == "none published":
            assert r["result"] == "not checked"
    # each checked chip has an energy (J, W or pJ) and a throughput/latency row
    checked = [r for r in rows if r["result"] == "PASS"]
    for chip in ("loihi", "loihi2", "truenorth"):
        units = {r["unit"] for r in checked if r["chip"] == chip}
        assert units & {"pJ", "W"} and units & {"ns", "s", "op/s"}


def test_rows_follow_the_chip_not_a_constant():
    """A different chip moves 'ours': the rows are computed, not read back."""
    slow = hm.LOIHI.with_changes(synop_pj=30.0, synop_time_s=5e-9)
    e, t = validation.loihi_rows(slow)[:2]
    assert e["ours"] > 30.0 and e["result"] == "FAIL" and t["ours"] == pytest.approx(5.0, rel=0.01)
    leaky = hm.TRUENORTH.with_changes(static_w=0.1)
    assert validation.truenorth_rows(leaky)[0]["result"] == "FAIL"


def test_row_pass_fail_logic():
    assert validation._row("c", "f", "measured", 10.0, 10.9, "pJ", 10.0, "s", "w")["result"] == "PASS"
    assert validation._row("c", "f", "measured", 10.0, 11.1, "pJ", 10.0, "s", "w")["result"] == "FAIL"
    assert validation._row("c", "f", "measured", 10.0, 8.0, "pJ", None, "s", "w")["result"] == "not checked"
    assert validation._row("c", "f", "none published", None, None, "", 10.0, "s", "w")["result"] == "not checked"


def test_validate_hw_cli_exit_codes(monkeypatch, capsys):
    from neurosim.cli import main

    assert main(["validate-hw", "--no-peers"]) == 0
    out = capsys.readouterr().out
    assert "| loihi2 |" in out and "0 failed" in out
    bad = validation._row("loihi", "x", "measured", 1.0, 2.0, "pJ", 10.0, "s", "w")
    monkeypatch.setattr(validation, "validation_rows", lambda: [bad])
    assert main(["validate-hw", "--no-peers"]) == 1
    assert "1 failed" in capsys.readouterr().out


def test_docs_validation_table_is_current():
    from pathlib import Path

    doc = (Path(__file__).resolve().parents[1] / "docs" / "validation.md").read_text()
    rows, _ = validation.validate()
    table = validation.validation_markdown(rows)
    assert table in doc, "docs/validation.md is stale: regenerate with `neurosim validate-hw`"


# ----------------------------------------------------------------------------- peers

def test_keras_spiking_table_and_formula(acts):
    ks = peers.keras_spiking_energy_j(acts, "loihi")
    syn = sum(a.synaptic_ops for a in acts)
    neurons = sum(a.input_slots * a.steps for a in acts if not a.same_input_as)
    assert ks["synop_j"] == pytest.approx(syn * 27.1e-12) and ks["neuron_j"] == pytest.approx(neurons * 81e-12)
    gpu = peers.keras_spiking_energy_j(acts, "gpu")
    assert gpu["synop_j"] == pytest.approx(sum(a.dense_macs for a in acts) * 0.3e-9)
    with pytest.raises(ValueError):
        peers.keras_spiking_energy_j(acts, "tpu")


def test_lemaire_memory_curve():
    f = peers.lemaire_memory_pj_per_byte
    assert f(0) == 0 and f(8192) == pytest.approx(2.5) and f(32768) == pytest.approx(5.0)
    assert f(1 << 20) == pytest.approx(25.0) and f(1 << 30) == pytest.approx(25.0)
    assert f(4096) == pytest.approx(1.25)


def test_lemaire_matches_spikingjelly():
    """Our Lemaire formula on Activity counts equals SpikingJelly's estimate_lemaire_energy."""
    torch = pytest.importorskip("torch")
    ae = pytest.importorskip("spikingjelly.activation_based.op_counter.analytical_energy")
    import warnings

    gen = torch.Generator().manual_seed(1)
    for in_f, out_f in ((96, 40), (300, 700)):
        lin = torch.nn.Linear(in_f, out_f, bias=False)
        x = (torch.rand(3, in_f, generator=gen) < 0.3).float()  # 3 steps of one token
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")
            theirs = sum(ae.estimate_lemaire_energy(lin, x[t:t + 1]).total_pj for t in range(3))
        ev = x.sum(1).long().numpy()
        a = dataclasses.replace(rate_activity("l", "q", in_f, out_f, 1, 0.0, steps=3), events_per_step=ev,
                                synaptic_ops=int(ev.sum()) * out_f)
        assert peers.lemaire_energy_pj([a])["total_pj"] == pytest.approx(theirs, rel=1e-9)


def test_peer_rows(acts):
    rows = validation.peer_rows(acts)
    assert [r["estimator"].split()[0] for r in rows] == ["KerasSpiking"] * 3 + ["SpikingJelly"]
    for r in rows:
        assert r["theirs_j_per_token"] > 0 and r["ours_total_j_per_token"] >= r["ours_dynamic_j_per_token"] > 0


# ----------------------------------------------------------------------------- ranges

@pytest.mark.parametrize("name", ["loihi", "loihi2", "truenorth", "spinnaker2", "generic_async"])
def test_ranges_bracket_the_preset(acts, name):
    chip = hm.get_chip(name)
    b = ranges.bounds_for(chip)
    assert b, "every preset declares ranges"
    for field, bound in b.items():
        assert bound.low <= getattr(chip, field) <= bound.high and bound.reason
    r = ranges.run_on_chip_ranged(acts, chip)
    assert r.energy_low <= r.result.energy_per_token_j <= r.energy_high
    assert r.latency_low <= r.result.latency_s <= r.latency_high
    assert r.energy_high > r.energy_low


def test_every_assumption_of_a_preset_is_ranged():
    for name in ("loihi", "loihi2", "truenorth", "spinnaker2"):
        chip = hm.get_chip(name)
        declared = ranges.bounds_for(chip)
        for field in ranges.RANGEABLE:
            src = chip.sources.get(field, "")
            if src.startswith(("ASSUMPTION", "ESTIMATE", "DERIVED")) and getattr(chip, field) > 0:
                assert field in declared, f"{name}.{field} ({src}) has no declared range"


def test_model_is_monotone_in_each_ranged_constant(acts):
    """What makes corner propagation exact: raising one constant never lowers J or s per token."""
    chip = hm.LOIHI2
    base = hm.run_on_chip(acts, chip)
    for field, b in ranges.bounds_for(chip).items():
        lo = hm.run_on_chip(acts, dataclasses.replace(chip, **{field: b.low}))
        hi = hm.run_on_chip(acts, dataclasses.replace(chip, **{field: b.high}))
        assert lo.energy_per_token_j <= base.energy_per_token_j * (1 + 1e-12) <= hi.energy_per_token_j * (1 + 1e-12)
        assert lo.latency_s <= base.latency_s * (1 + 1e-12) <= hi.latency_s * (1 + 1e-12)


def test_user_override_has_no_range():
    chip = hm.LOIHI2.with_changes(static_w=0.3)
    assert "static_w" not in ranges.bounds_for(chip)


def test_tornado_sorted_and_json_rows(acts):
    rows = ranges.tornado(acts, hm.LOIHI2)
    swings = [r["swing"] for r in rows]
    assert swings == sorted(swings, reverse=True) and swings[0] > 0
    res = hm.evaluate(acts, [hm.LOIHI2], [hm.H100_SXM])
    out = ranges.ranged_rows(res, acts, {"loihi2": hm.LOIHI2})
    chip, gpu = out
    for key in ("energy_per_token_j", "energy_per_token_j_low", "energy_per_token_j_high", "latency_per_token_s",
                "latency_per_token_s_low", "latency_per_token_s_high", "platform", "kind"):
        assert key in chip and key in gpu
    assert chip["kind"] == "chip" and gpu["kind"] == "gpu" and gpu["regime"]
    assert chip["energy_per_token_j_low"] < chip["energy_per_token_j"] < chip["energy_per_token_j_high"]
    json.dumps(out)


def test_table_bounds():
    lo, hi = hm.op_energy.table_bounds(hm.table_for_node(14.0))
    assert lo.int8_add == hm.JOUPPI_7NM.int8_add and hi.int8_add == hm.HOROWITZ_45NM.int8_add
    lo7, hi7 = hm.op_energy.table_bounds(hm.JOUPPI_7NM)
    assert lo7.sram_32kb == hm.JOUPPI_7NM.sram_8kb and hi7.sram_32kb == hm.JOUPPI_7NM.sram_1mb
    assert lo7.int8_add == hm.JOUPPI_7NM.int8_add  # published fields are not moved
    lo45, hi45 = hm.op_energy.table_bounds(hm.HOROWITZ_45NM)
    assert lo45.fp16_mac == hi45.fp16_mac == 1.5


# ----------------------------------------------------------------------------- break-even, waterfall

def test_crossing():
    assert breakeven.crossing([0, 1, 2], [0.5, 0.9, 1.3]) == pytest.approx(1.25)
    assert breakeven.crossing([0, 1], [1.2, 2.0]) == 0.0
    assert breakeven.crossing([0, 1], [0.2, 0.5]) is None


def test_breakeven_curves_and_table(acts):
    chips = [hm.LOIHI2, hm.generic_async(node_nm=45.0, name="g45")]
    rows = breakeven.breakeven_curves(acts, chips, hm.H100_SXM, rates=(0.0, 1.0, 2.0, 3.0), tokens=2)
    g = [r for r in rows if r["platform"] == "g45"]
    assert g[0]["vs_engine45_int8"] == 0.0  # no spikes: no dynamic energy
    assert all(b["vs_engine45_int8"] > a["vs_engine45_int8"] for a, b in zip(g, g[1:]))
    table = {r["platform"]: r for r in breakeven.breakeven_table(rows)}
    c = table["g45"]["breakeven_vs_engine45_int8"]
    assert isinstance(c, float) and 0 < c < 3
    assert breakeven.REPORT_7B_EVENTS_PER_SLOT == pytest.approx(1.13 * 0.816)


def test_waterfall_starts_at_the_report_and_ends_near_parity():
    acts = hm.synthetic_model_activity(hm.SMOLLM2_135M, tokens=8)
    w = breakeven.waterfall(acts)
    assert (w[0]["ratio_fp16"], w[0]["ratio_int8"], w[0]["spiking_pj_per_mac"]) == (43.48, 6.76, 0.034)
    spk = [r["spiking_pj_per_mac"] for r in w[1:]]
    assert spk == sorted(spk)  # each step adds a cost
    assert 0.7 < w[4]["ratio_fp16"] < 1.4  # docs/hardware.md: about 1x vs FP16 once memory is priced


# ----------------------------------------------------------------------------- CLI on a real trace

@pytest.fixture()
def fast_model(smollm, monkeypatch):
    import neurosim.models

    monkeypatch.setattr(neurosim.models, "load_model", lambda *a, **k: smollm)
    return smollm


@pytest.mark.slow
def test_energy_json_and_text_carry_ranges(fast_model, smollm_trace, capsys):
    from neurosim.cli import main

    assert main(["energy", str(smollm_trace.path), "--chip", "loihi2", "--gpu", "h100", "--quiet",
                 "--format", "json"]) == 0
    data = json.loads(capsys.readouterr().out)
    rows = {r["platform"]: r for r in data["platforms"]}
    chip, gpu = rows["loihi2"], rows["h100"]
    assert chip["kind"] == "chip" and gpu["kind"] == "gpu" and gpu["regime"]
    for r in (chip, gpu):
        assert r["energy_per_token_j_low"] <= r["energy_per_token_j"] <= r["energy_per_token_j_high"]
        assert r["latency_per_token_s_low"] <= r["latency_per_token_s"] <= r["latency_per_token_s_high"]
    assert chip["energy_per_token_j_low"] < chip["energy_per_token_j_high"]
    assert main(["energy", str(smollm_trace.path), "--chip", "loihi2", "--gpu", "h100", "--quiet"]) == 0
    text = capsys.readouterr().out
    assert "[low, high]" in text and "h100 (" in text


def test_gpu_rows_take_regime_and_ranges_from_the_gpu_model(acts):
    """The GPU model reports regime, calibration and [low, high] in PlatformResult.details."""
    g = hm.run_on_gpu(acts, hm.H100_SXM)
    g.details.update({"regime": "eager", "calibrated": True, "energy_per_token_j_low": 0.5 * g.energy_per_token_j,
                      "energy_per_token_j_high": 2.0 * g.energy_per_token_j,
                      "latency_per_token_s_low": 0.5 * g.latency_s, "latency_per_token_s_high": 2.0 * g.latency_s})
    row = ranges.platform_row(g)
    assert row["regime"] == "eager" and row["calibrated"] is True and row["range_method"] == "from the GPU model"
    assert row["energy_per_token_j_low"] == pytest.approx(0.5 * row["energy_per_token_j"])
    assert row["latency_per_token_s_high"] == pytest.approx(2.0 * row["latency_per_token_s"])
