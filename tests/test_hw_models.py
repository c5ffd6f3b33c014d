"""Chip and GPU energy models: hand-computed joules, monotonicity, zero activity, roofline."""
from __future__ import annotations

import numpy as np
import pytest

import hw_models as hm
from hw_models.gpus import H100_SXM_UNCALIBRATED
from hw_models import Activity


def _tiny_chip(**changes) -> hm.NeuromorphicChip:
    base = dict(
        name="tiny", node_nm=45.0, cores=4, synaptic_bytes_per_core=1024,
        synop_pj=2.0, synop_fetch_pj=0.5, neuron_update_pj=1.0, neuron_spike_extra_pj=0.25,
        spike_route_pj=0.1, hop_pj=0.3, handshake_pj=0.05, interchip_pj_per_bit=10.0, spike_bits=32,
        static_w=1e-3, sram_pj_per_byte=0.7, synop_time_s=1e-9, neuron_update_time_s=2e-9,
        hop_latency_s=5e-9, step_sync_s=10e-9, multichip_sync_s=1e-6, min_step_s=0.0,
        interchip_latency_s=0.0, cores_per_tile=2, max_axons_per_core=0, max_neurons_per_core=0,
    )
    base.update(changes)
    return hm.NeuromorphicChip(**base)


def _tiny_activity(events_per_step=(3, 5), hist=(10, 4, 2), touched=None) -> Activity:
    # 2 tokens x 8 inputs = 16 slots: 10 silent, 4 with one spike, 2 with two spikes -> 8 events
    eps = np.array(events_per_step, dtype=np.int64)
    ev = int(eps.sum())
    return Activity(
        name="model.layers.0.mlp.down_proj", role="down", scheme="bitwise-signed", steps=2, tokens=2,
        in_features=8, out_features=16, events_per_step=eps, events_per_token=np.array([ev // 2, ev - ev // 2]),
        synaptic_ops=ev * 16, acc_updates=ev * 16, dense_macs=2 * 8 * 16, active_inputs_per_step=eps.copy(),
        silent_inputs=hist[0], weight_bytes_touched=ev * 16 if touched is None else touched,
        weight_bytes_dense=128, block_columns=1, bytes_per_weight=1, event_hist=np.array(hist, dtype=np.int64),
    )


def test_hand_computed_joules():
    chip, act = _tiny_chip(), _tiny_activity()
    res = hm.run_on_chip([act], chip)
    layer = res.layers[0]
    assert layer.details["cores"] == 1 and res.devices == 1        # 8x16 INT8 = 128 B fits one core
    assert layer.details["mean_hops"] == 0.0                        # both cores of the region share a tile
    # compute: 128 synops x (2.0 - 0.5) + 6 active slots x 2 steps x 1.0 + 8 events x 0.25 = 206 pJ
    assert layer.compute_j == pytest.approx(206e-12)
    # memory: 128 synops x 0.5 pJ, no over-fetch
    assert layer.memory_j == pytest.approx(64e-12)
    # routing: 8 packets x 0.1 pJ + 8 handshakes x 0.05 pJ
    assert layer.routing_j == pytest.approx(1.2e-12)
    # latency per token: step 1: 1.5 events x 16 outputs x 1 ns = 24 ns (> 3 neurons x 2 ns) + 10 ns sync
    #                    step 2: 2.5 x 16 x 1 ns = 40 ns + 10 ns -> 84 ns
    assert layer.latency_s == pytest.approx(84e-9) and res.latency_s == pytest.approx(84e-9)
    # static: 1 chip x 1 mW x 84 ns x 2 tokens = 168 pJ
    assert layer.static_j == pytest.approx(168e-12)
    assert res.energy_j == pytest.approx(439.2e-12)
    assert res.energy_per_token_j == pytest.approx(219.6e-12)
    assert res.breakdown()["total"] == pytest.approx(219.6e-12)


def test_shared_input_counts_encoder_once():
    import dataclasses

    chip = _tiny_chip()
    own = hm.run_on_chip([_tiny_activity()], chip).layers[0]
    shared = hm.run_on_chip([dataclasses.replace(_tiny_activity(), same_input_as="q")], chip).layers[0]
    # no encoder neuron updates (12 pJ), firing surcharge (2 pJ) or spike handshakes (0.4 pJ)
    assert own.compute_j - shared.compute_j == pytest.approx(14e-12)
    assert own.routing_j - shared.routing_j == pytest.approx(0.4e-12)
    assert shared.memory_j == own.memory_j
    acts = hm.synthetic_model_activity(hm.SMOLLM2_135M, tokens=2)[:7]
    q, k, v, gate, up = acts[0], acts[1], acts[2], acts[4], acts[5]
    assert (k.same_input_as, v.same_input_as, up.same_input_as) == (q.name, q.name, gate.name)
    assert q.same_input_as is None and np.array_equal(k.events_per_step, q.events_per_step)
    assert np.array_equal(up.event_hist, gate.event_hist)


def test_block_overfetch_is_priced():
    chip = _tiny_chip()
    plain = hm.run_on_chip([_tiny_activity()], chip)
    blocky = hm.run_on_chip([_tiny_activity(touched=128 + 40)], chip)   # 40 bytes fetched but unused
    assert blocky.layers[0].memory_j - plain.layers[0].memory_j == pytest.approx(40 * 0.7e-12)


def test_zero_activity_costs_only_static_energy():
    act = _tiny_activity(events_per_step=(0, 0), hist=(16, 0, 0))
    for chip in [_tiny_chip(), *hm.CHIP_PRESETS.values()]:
        res = hm.run_on_chip([act], chip)
        bd = res.breakdown()
        assert bd["compute"] == bd["memory"] == bd["routing"] == bd["other"] == 0.0
        assert bd["static"] > 0 and bd["total"] == pytest.approx(bd["static"])
        assert bd["static"] == pytest.approx(res.devices * chip.static_w * res.latency_s)


def test_more_events_never_cost_less():
    # same seed, fewer silent slots: the active slots (and their spikes) are a superset
    kw = dict(in_features=576, out_features=1536, tokens=16, spikes_per_active=1.13, seed=3)
    acts = [hm.synthetic_activity("model.layers.0.mlp.gate_proj", "gate", silent_fraction=s, **kw)
            for s in (1.0, 0.9, 0.6, 0.184, 0.0)]
    events = [a.events for a in acts]
    assert events == sorted(events) and events[0] == 0 and events[-1] > events[1]
    for chip in hm.CHIP_PRESETS.values():
        totals = [hm.run_on_chip([a], chip).energy_j for a in acts]
        assert all(b > a for a, b in zip(totals, totals[1:])), (chip.name, totals)


def test_more_events_per_step_never_cost_less():
    base = _tiny_activity(events_per_step=(3, 5))
    more = _tiny_activity(events_per_step=(4, 7), hist=(10, 2, 4))
    for chip in [_tiny_chip(), *hm.CHIP_PRESETS.values()]:
        assert hm.run_on_chip([more], chip).energy_j > hm.run_on_chip([base], chip).energy_j


def test_mapping_fits_memory_and_limits():
    m = hm.map_layer(576, 1536, 1, hm.LOIHI, 576.0)
    assert m.in_per_core * m.out_per_core <= 128 * 1024
    assert m.out_per_core <= 1024 and m.in_per_core <= 4096
    assert m.in_groups * m.in_per_core >= 576 and m.out_groups * m.out_per_core >= 1536
    tn = hm.map_layer(576, 1536, 1, hm.TRUENORTH, 576.0)
    assert tn.in_per_core <= 256 and tn.out_per_core <= 256 and tn.in_groups >= 3
    with pytest.raises(ValueError, match="does not fit"):
        hm.map_layer(8, 8, 4, _tiny_chip(synaptic_bytes_per_core=2), 8.0)


def test_model_spanning_chips_pays_interchip_and_barrier():
    acts = [hm.synthetic_activity(f"model.layers.{i}.mlp.down_proj", "down", 1536, 576, 4, seed=i) for i in range(24)]
    res = hm.run_on_chip(acts, hm.LOIHI)
    assert res.devices >= 2
    assert sum(l.details["interchip_j"] for l in res.layers) > 0
    one = hm.run_on_chip(acts[:1], hm.LOIHI)
    assert one.devices == 1 and one.layers[0].details["interchip_j"] == 0
    # the multi-chip barrier makes each layer slower than on a single chip
    assert res.layers[0].latency_s > one.layers[0].latency_s


def test_parallel_branches_counted_once_in_latency():
    acts = hm.synthetic_model_activity(hm.SMOLLM2_135M, tokens=2)[:7]   # one decoder layer
    res = hm.run_on_chip(acts, hm.LOIHI)
    lat = [l.latency_s for l in res.layers]
    expected = max(lat[0:3]) + lat[3] + max(lat[4:6]) + lat[6]
    assert res.latency_s == pytest.approx(expected)
    assert sum(l.static_j for l in res.layers) == pytest.approx(res.devices * hm.LOIHI.static_w * expected * 2)


def test_run_on_chip_rejects_bad_input():
    act = _tiny_activity()
    total = hm.sum_activities([act, act])
    with pytest.raises(ValueError, match="per-layer records"):
        hm.run_on_chip([total], hm.LOIHI)
    with pytest.raises(ValueError, match="no Activity"):
        hm.run_on_chip([], hm.LOIHI)
    with pytest.raises(TypeError, match="NeuromorphicChip"):
        hm.run_on_chip([act], hm.H100_SXM)
    with pytest.raises(TypeError, match="hw_models.Activity"):
        hm.run_on_chip([{"name": "x"}], hm.LOIHI)


def test_sum_activities():
    a = _tiny_activity()
    b = _tiny_activity(events_per_step=(1, 1), hist=(14, 2, 0))
    s = hm.sum_activities([a, b])
    assert s.events == a.events + b.events and s.synaptic_ops == a.synaptic_ops + b.synaptic_ops
    assert s.event_hist.tolist() == [24, 6, 2] and s.in_features == 0 and s.role == ""
    assert s.sparsity == pytest.approx(1 - 10 / 64)
    with pytest.raises(ValueError, match="no records"):
        hm.sum_activities([])


def test_gpu_roofline_hand_checked():
    h = H100_SXM_UNCALIBRATED   # hand-checked against the datasheet + old assumption values
    act = Activity(name="x", role="o", scheme="bitwise-signed", steps=3, tokens=1, in_features=1000,
                   out_features=1000, events_per_step=np.zeros(3, np.int64), events_per_token=np.zeros(1, np.int64),
                   synaptic_ops=0, acc_updates=0, dense_macs=10**6, active_inputs_per_step=np.zeros(3, np.int64),
                   silent_inputs=1000, weight_bytes_touched=0, weight_bytes_dense=10**6)
    res = hm.run_on_gpu([act], h, mode="decode", batch=1)
    t_c = 2e6 / (989.5e12 * 0.7)                 # 2.887 ns
    t_m = (2e6 + 2000 * 2) / (3.35e12 * 0.8)     # 2 MB of bf16 weights + activations: 747.8 ns
    assert res.latency_s == pytest.approx(t_m) and t_m > t_c          # decode batch 1 is bandwidth-bound
    layer = res.layers[0]
    p = 70 + (700 - 70) * 0.6 * 1.0                                   # 448 W, fully bandwidth-bound
    assert layer.details["power_w"] == pytest.approx(p)
    assert res.energy_per_token_j == pytest.approx(p * t_m)
    assert layer.compute_j == pytest.approx(1e6 * (0.34 + 0.38) * 1e-12)   # FP16 mult + FP32 add at 7 nm
    assert layer.memory_j == pytest.approx(2.004e6 * 3.9 * 8 * 1e-12)      # HBM 3.9 pJ/bit
    assert layer.static_j == pytest.approx(70 * t_m)
    assert res.details["opbyte_j_per_token"] == pytest.approx(layer.compute_j + layer.memory_j + layer.static_j)
    # batch 16 shares the weight read: ~16x less time per token
    b16 = hm.run_on_gpu([act], h, mode="decode", batch=16)
    assert b16.latency_s == pytest.approx((2e6 + 16 * 4000) / (3.35e12 * 0.8) / 16)
    # int8 halves the weight bytes
    i8 = hm.run_on_gpu([act], h, mode="decode", batch=1, dtype="int8")
    assert i8.latency_s == pytest.approx((1e6 + 4000) / (3.35e12 * 0.8))


def test_gpu_prefill_becomes_compute_bound():
    h = H100_SXM_UNCALIBRATED   # hand-checked against the datasheet + old assumption values
    pred = hm.predict_forward(h, hm.QWEN25_7B, "prefill", prompt_len=1024)
    assert pred["bound"] == "compute"
    assert pred["power_w"] == pytest.approx(700.0)
    assert pred["t_compute_s"] == pytest.approx(pred["flops"] / (989.5e12 * 0.7))
    dec = hm.predict_forward(h, hm.QWEN25_7B, "decode", batch=1, prompt_len=1024, host_overhead=False)
    assert dec["bound"] == "memory"
    # 7B decode reads all bf16 decoder + lm_head weights (14.1 GB) once per step
    w = (hm.QWEN25_7B.decoder_linear_params + hm.QWEN25_7B.lm_head_params) * 2
    assert 14.0e9 < w < 14.2e9
    assert dec["time_s"] > w / (3.35e12 * 0.8)
    small = hm.predict_forward(h, hm.SMOLLM2_135M, "decode", batch=1)
    assert small["bound"] == "host" and small["time_s"] == pytest.approx(30 * h.host_overhead_s_per_layer)
    assert hm.fit_host_overhead(small["time_s"] + 0.003, small, 30) == pytest.approx(
        (small["time_s"] + 0.003 - max(small["t_compute_s"], small["t_memory_s"])) / 30)
    with pytest.raises(ValueError, match="mode"):
        hm.predict_forward(h, hm.SMOLLM2_135M, "train")


def test_model_shapes():
    assert hm.SMOLLM2_135M.decoder_linear_params == 30 * (576 * 576 * 2 + 576 * 192 * 2 + 3 * 576 * 1536)
    assert 134e6 < hm.SMOLLM2_135M.total_params < 136e6
    assert 7.0e9 < hm.QWEN25_7B.total_params < 7.7e9
    shapes = hm.QWEN25_7B.linear_shapes()
    assert len(shapes) == 28 * 7 and shapes[1] == ("model.layers.0.self_attn.k_proj", "k", 3584, 512)
    with pytest.raises(ValueError, match="multiple of kv_heads"):
        hm.ModelShape("bad", 64, 2, 5, 2, 16, 128, 100)


def test_compare_tables():
    acts = hm.synthetic_model_activity(hm.SMOLLM2_135M, tokens=4)[:14]
    results = hm.evaluate(acts)
    rows = hm.comparison_rows(results)
    ref = [r for r in rows if r["platform"] == "h100_sxm"][0]
    assert ref["energy_vs_ref"] == 1.0 and ref["latency_vs_ref"] == 1.0
    for r, res in zip(rows, results):
        assert r["energy_per_token_j"] == pytest.approx(res.energy_per_token_j)
        parts = sum(r[f"{c}_j_per_token"] for c in hm.CATEGORIES)
        assert parts == pytest.approx(r["energy_per_token_j"])
    md = hm.comparison_markdown(results, notes=False)
    assert md.count("\n") == len(results) + 1 and "| loihi |" in md
    assert "Notes:" in hm.comparison_markdown(results) and "hardware bound" in hm.comparison_markdown(results)
    bt = hm.breakdown_table(results)
    assert {b["platform"] for b in bt} == {r.platform for r in results}
    per_layer = hm.breakdown_table(results[:1], per_layer=True)
    assert len(per_layer) == 14 and sum(r["total"] for r in per_layer) == pytest.approx(results[0].energy_per_token_j)
    with pytest.raises(ValueError, match="reference"):
        hm.comparison_rows(results, reference="tpu")
