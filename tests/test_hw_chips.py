"""Chip and GPU presets: sourced values, validation, dict/JSON round trips."""
from __future__ import annotations

import json
from dataclasses import fields

import pytest

import hw_models as hm
from hw_models.chips import NeuromorphicChip


@pytest.mark.parametrize("name", sorted(hm.CHIP_PRESETS))
def test_every_preset_field_has_a_source(name):
    chip = hm.get_chip(name)
    numeric = [f.name for f in fields(NeuromorphicChip) if f.name not in ("name", "sources")]
    if name != "generic_async":  # generic_async documents its estimates; the rest are caller parameters
        missing = [f for f in numeric if not chip.sources.get(f)]
        assert missing == []
    text = hm.describe_chip(chip)
    assert chip.name in text and "synop_pj" in text


def test_published_figures():
    assert hm.LOIHI.synop_pj == 23.6 and hm.LOIHI.neuron_update_pj == 52.0
    assert hm.LOIHI.neuron_update_pj + hm.LOIHI.neuron_spike_extra_pj == 81.0
    assert hm.LOIHI.spike_route_pj == 1.7 and hm.LOIHI.hop_pj == 3.5
    assert hm.LOIHI.static_w == pytest.approx(3.34 / 32, rel=0.01)
    assert hm.LOIHI.synaptic_bytes_per_chip == 16 * 1024 * 1024           # 16 MB synaptic memory
    assert hm.LOIHI2.synop_pj == pytest.approx(2600 / 380e12 * 1e12)      # derived upper bound, 6.84 pJ
    assert hm.TRUENORTH.cores == 4096 and hm.TRUENORTH.min_step_s == 1e-3
    # TrueNorth: dynamic 2.5 pJ (400 GSOPS/W) + static reproduce the 26 pJ/event real-time figure
    rate = 0.072 / 26e-12
    assert (hm.TRUENORTH.static_w + rate * hm.TRUENORTH.synop_pj * 1e-12) / rate == pytest.approx(26e-12)
    assert hm.SPINNAKER2.cores == 152
    assert hm.SPINNAKER2.sources["synop_pj"].startswith("ESTIMATE")


def test_chips_for_7b_weights():
    # INT8 Qwen2.5-7B decoder weights do not fit one chip
    w = hm.QWEN25_7B.decoder_linear_params
    assert hm.LOIHI.chips_for_bytes(w) == -(-w // (16 * 1024 * 1024)) > 300
    assert hm.LOIHI.chips_for_bytes(0) == 1


def test_dict_and_json_round_trip(tmp_path):
    d = hm.LOIHI.to_dict()
    assert hm.chip_from_dict(d) == hm.LOIHI
    assert hm.chip_from_json(json.dumps(d)) == hm.LOIHI
    p = tmp_path / "chip.json"
    p.write_text(hm.LOIHI.to_json())
    assert hm.chip_from_json(p) == hm.LOIHI


def test_user_preset_from_dict():
    d = hm.LOIHI.to_dict()
    d.update(name="my_chip", synop_pj=5.0, static_w=0.01)
    chip = hm.chip_from_dict(d)
    assert chip.synop_pj == 5.0 and chip.name == "my_chip"
    assert hm.LOIHI.with_changes(static_w=0.5).sources["static_w"] == "user override"


def test_missing_field_rejected():
    d = hm.LOIHI.to_dict()
    del d["synop_pj"], d["static_w"]
    with pytest.raises(ValueError, match="missing required field\\(s\\): static_w, synop_pj"):
        hm.chip_from_dict(d)


def test_unknown_field_rejected():
    d = hm.LOIHI.to_dict()
    d["energy_per_magic"] = 1.0
    with pytest.raises(ValueError, match="unknown field\\(s\\): energy_per_magic"):
        hm.chip_from_dict(d)


@pytest.mark.parametrize(
    "change, message",
    [
        ({"synop_pj": -1.0}, "'synop_pj' must be >= 0"),
        ({"hop_pj": float("nan")}, "'hop_pj' must be finite"),
        ({"static_w": float("inf")}, "'static_w' must be finite"),
        ({"synop_pj": 0.0}, "'synop_pj' must be > 0"),
        ({"cores": 0}, "'cores' must be >= 1"),
        ({"cores": 2.5}, "'cores' must be an integer"),
        ({"synop_fetch_pj": 30.0}, "synop_fetch_pj .* cannot exceed synop_pj"),
        ({"max_axons_per_core": -1}, "max_axons_per_core"),
        ({"neuron_update_pj": "52"}, "'neuron_update_pj' must be a number"),
        ({"name": ""}, "name"),
    ],
)
def test_bad_presets_rejected(change, message):
    d = hm.LOIHI.to_dict()
    d.update(change)
    with pytest.raises((ValueError, TypeError), match=message):
        hm.chip_from_dict(d)


def test_bad_json_rejected():
    with pytest.raises(ValueError, match="invalid JSON"):
        hm.chip_from_json("{not json")
    with pytest.raises(TypeError, match="expected a dict"):
        hm.chip_from_dict([1, 2])


def test_unknown_preset_names():
    with pytest.raises(ValueError, match="unknown chip preset 'loihi3'"):
        hm.get_chip("loihi3")
    with pytest.raises(ValueError, match="unknown GPU preset 'b200'"):
        hm.get_gpu("b200")


def test_generic_async_is_parametrised():
    c45 = hm.generic_async(node_nm=45)
    c7 = hm.generic_async(node_nm=7)
    assert c7.synop_pj < c45.synop_pj                       # newer node is cheaper
    assert c45.synop_pj == pytest.approx(
        0.1 + hm.HOROWITZ_45NM.sram_pj_per_byte(128 * 1024) + 2 * hm.HOROWITZ_45NM.sram_read_pj(4096, 32))
    big = hm.generic_async(synaptic_bytes_per_core=1024 * 1024)
    assert big.synop_fetch_pj > hm.generic_async().synop_fetch_pj   # bigger SRAM, dearer fetch
    assert hm.generic_async(static_w=0.3, hop_pj=9.0).hop_pj == 9.0
    with pytest.raises(ValueError, match="unknown field"):
        hm.generic_async(warp_drive=1)
    with pytest.raises(ValueError, match="within \\[7, 45\\]"):
        hm.generic_async(node_nm=130)


def test_gpu_presets_and_validation():
    h = hm.H100_SXM
    assert h.peak_bf16_flops == 989.5e12 and h.hbm_bytes_per_s == 3.35e12 and h.tdp_w == 700
    assert hm.H200_SXM.hbm_bytes_per_s == 4.8e12 and hm.A100_SXM.peak_bf16_flops == 312e12
    assert h.sources["idle_w"].startswith("MEASURED") and h.idle_w == 128.0
    assert hm.gpus.H100_SXM_UNCALIBRATED.sources["idle_w"].startswith("ASSUMPTION")
    d = h.to_dict()
    assert hm.gpu_from_dict(d) == h
    for change, msg in (({"tdp_w": -5.0}, "tdp_w"), ({"idle_w": 800.0}, "idle_w .* below tdp_w"),
                        ({"compute_efficiency": 1.5}, "compute_efficiency"),
                        ({"hbm_bytes_per_s": float("nan")}, "finite")):
        bad = dict(d, **change)
        with pytest.raises(ValueError, match=msg):
            hm.gpu_from_dict(bad)
    del d["tdp_w"]
    with pytest.raises(ValueError, match="missing required field\\(s\\): tdp_w"):
        hm.gpu_from_dict(d)
    with pytest.raises(ValueError, match="unknown GPU dtype"):
        h.peak_ops("fp8")
