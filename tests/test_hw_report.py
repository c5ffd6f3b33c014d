"""The report's energy figures, reproduced exactly, and the op-energy tables behind them."""
from __future__ import annotations

import math

import pytest

import hw_models as hm
from hw_models.op_energy import KB, MB, with_overrides


def test_report_numbers_exact():
    r = hm.report_estimate()
    assert r.spiking_pj == 0.034
    assert r.spiking_pj_exact == pytest.approx(0.0339, abs=1e-12)
    assert r.reduction_vs_fp16 == 0.977          # -97.7 %
    assert r.reduction_vs_int8 == 0.852          # -85.2 %
    assert r.ratio_vs_fp16 == 43.48
    assert r.ratio_vs_int8 == 6.76
    assert (r.fp16_mac_pj, r.int8_mac_pj, r.add_pj) == (pytest.approx(1.5), pytest.approx(0.23), 0.03)


def test_report_constants_match_reproduction():
    r = hm.report_estimate()
    from hw_models import report as rp

    assert r.spiking_pj == rp.REPORT_SPIKING_PJ
    assert r.ratio_vs_fp16 == rp.REPORT_RATIO_VS_FP16 and r.ratio_vs_int8 == rp.REPORT_RATIO_VS_INT8


def test_ratios_come_from_rounded_reductions_not_energy_ratio():
    # 1.5 / 0.034 would be 44.12x: the report's 43.48x is 1 / (1 - 0.977)
    assert round(1.5 / 0.034, 2) == 44.12
    assert hm.report_estimate().ratio_vs_fp16 == round(1 / (1 - 0.977), 2)


def test_spikes_per_active_from_report_sparsity():
    spa = hm.spikes_per_active_from_sparsity(0.6915, 3, 0.184)
    assert spa == pytest.approx(1.134, abs=1e-3)
    assert round(0.03 * spa, 3) == 0.034          # the same 0.034 pJ through the sparsity route
    with pytest.raises(ValueError, match="silent_fraction"):
        hm.spikes_per_active_from_sparsity(0.5, 3, 1.0)
    with pytest.raises(ValueError, match="sparsity"):
        hm.spikes_per_active_from_sparsity(1.5, 3, 0.1)


def test_more_spikes_per_channel_costs_more_in_report_formula():
    assert hm.report_estimate(spikes_per_active=2.0).spiking_pj > hm.report_estimate().spiking_pj


def test_horowitz_table_rows():
    t = hm.HOROWITZ_45NM
    assert t.fp16_mac == pytest.approx(1.5) and t.int8_mac == pytest.approx(0.23)
    assert (t.sram_read_pj(8 * KB), t.sram_read_pj(32 * KB), t.sram_read_pj(1 * MB)) == pytest.approx((10, 20, 100))
    assert t.sram_read_pj(8 * KB, bits=32) == pytest.approx(5.0)
    assert t.sram_pj_per_byte(8 * KB) == pytest.approx(1.25)
    # between anchors: log-log interpolation, strictly between the neighbours
    assert 20 < t.sram_read_pj(128 * KB) < 100
    assert t.sram_read_pj(128 * KB) == pytest.approx(20 * 4 ** (math.log(5) / math.log(32)))
    assert t.hbm_pj_per_byte == pytest.approx(31.2)
    assert t.estimated == ()


def test_7nm_table_and_interpolated_rows_are_flagged():
    t = hm.JOUPPI_7NM
    assert (t.int8_add, t.fp32_add, t.fp32_mult, t.sram_8kb, t.sram_1mb) == (0.007, 0.38, 1.31, 7.5, 14.0)
    assert t.estimated == ("sram_32kb",)
    assert 7.5 < t.sram_32kb < 14.0


def test_table_for_node_endpoints_and_scaling():
    assert hm.table_for_node(45) is hm.HOROWITZ_45NM
    assert hm.table_for_node(7) is hm.JOUPPI_7NM
    t14 = hm.table_for_node(14)
    assert hm.JOUPPI_7NM.int8_add < t14.int8_add < hm.HOROWITZ_45NM.int8_add
    assert t14.dram_64b == hm.HOROWITZ_45NM.dram_64b           # DRAM does not scale with logic
    assert "int8_add" in t14.estimated and "dram_64b" not in t14.estimated
    # geometric interpolation: exponent f = ln(45/14)/ln(45/7)
    f = math.log(45 / 14) / math.log(45 / 7)
    assert t14.int8_add == pytest.approx(0.03 * (0.007 / 0.03) ** f)
    with pytest.raises(ValueError, match="within \\[7, 45\\]"):
        hm.table_for_node(3)


def test_bad_table_values_rejected():
    with pytest.raises(ValueError, match="int8_add"):
        with_overrides(hm.HOROWITZ_45NM, int8_add=-1.0)
    with pytest.raises(ValueError, match="unknown energy field"):
        with_overrides(hm.HOROWITZ_45NM, int9_add=1.0)
    with pytest.raises(ValueError, match="finite"):
        with_overrides(hm.HOROWITZ_45NM, sram_8kb=float("nan"))


def test_report_table_rows_at_report_statistics():
    acts = hm.synthetic_model_activity(hm.SMOLLM2_135M, tokens=8)
    rows = {r["quantity"]: r for r in hm.report_table(acts)}
    spa = rows["spikes per active channel"]["ours"]
    assert spa == pytest.approx(1.13, abs=0.01)
    formula = rows["spiking pJ/MAC, INT8 ADD x spikes per active channel"]
    assert formula["report"] == 0.034
    assert formula["ours"] == pytest.approx(0.03 * spa)
    # the fuller estimate only adds terms: each cumulative row is >= the previous one
    compute = rows["compute: 32-bit accumulate, encoder neurons, partial-sum adds"]["ours"]
    memory = rows["+ memory: weight fetch, accumulator RMW, block over-fetch"]["ours"]
    dynamic = rows["+ routing: spike delivery, hops, handshakes, off-chip (= spiking dynamic)"]["ours"]
    assert 0.034 < compute < memory < dynamic
    # dense baselines gain their weight fetch; INT8 = 0.23 + one byte of 128 KB SRAM at 45 nm
    assert rows["INT8 dense MAC"]["ours"] == pytest.approx(0.23 + hm.HOROWITZ_45NM.sram_pj_per_byte(128 * KB))
    assert rows["ratio INT8 / spiking"]["ours"] == pytest.approx(rows["INT8 dense MAC"]["ours"] / dynamic)
    assert rows["ratio FP16 / spiking"]["report"] == 43.48
    md = hm.report_table_markdown(hm.report_table(acts))
    assert md.startswith("| quantity | report | ours | note |") and "43.48" in md
