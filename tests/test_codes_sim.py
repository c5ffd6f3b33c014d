"""Issue 16: graded and NAF codes through the simulator, the Activity record and the chip models."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch

import encoders
import hw_models
from analysis.stats import SpikeStats
from neurosim.code_energy import activity_of, energy_per_token
from neurosim.sim.layer import replay_layer
from neurosim.weights import quantize_int8


def _layer(seed: int = 0, tokens: int = 12, in_f: int = 256, out_f: int = 48):
    g = torch.Generator().manual_seed(seed)
    w = quantize_int8(torch.randn(out_f, in_f, generator=g))
    c = torch.round(torch.distributions.Laplace(0.0, 2.0).sample((tokens, in_f))).to(torch.int64)
    c[0, 0] = 300  # beyond the 8-bit payload: clipped and reported
    return w, c, torch.ones(tokens)


@pytest.mark.parametrize("engine", ["events", "dense"])
def test_graded_replay_is_exact_and_counts_macs(engine):
    w, c, v = _layer()
    r = replay_layer(w, c, v, "graded", 1, clip=True, engine=engine)
    clipped = c.clamp(-127, 127)
    assert r.clipped == 1
    assert torch.equal(r.acc, clipped @ w.q.to(torch.int64).T)
    a = r.activity
    assert a.events == int((clipped != 0).sum()) and a.steps == 1
    assert a.mac_ops == a.synaptic_ops == a.events * 48 and a.add_ops == 0 and a.payload_bits == 8
    ternary = replay_layer(w, c, v, "bitwise-signed", 3, clip=True, engine=engine).activity
    assert ternary.mac_ops == 0 and ternary.add_ops == ternary.synaptic_ops and ternary.payload_bits == 0
    total = hw_models.Activity.combine([a, ternary])
    assert total.mac_ops == a.mac_ops and total.payload_bits == 8


def test_naf_replay_exact_and_never_more_events_than_sign_magnitude():
    w, c, v = _layer(1)
    naf = replay_layer(w, c, v, "bitwise-naf")
    sm = replay_layer(w, c, v, "bitwise-signed")
    assert torch.equal(naf.acc, c @ w.q.to(torch.int64).T)
    assert naf.activity.events <= sm.activity.events


def test_chips_price_macs_and_refuse_payloads_they_cannot_carry():
    w, c, v = _layer(2)
    a = replay_layer(w, c, v, "graded", 1, clip=True, name="model.layers.0.mlp.down_proj", role="down").activity
    loihi2 = hw_models.get_chip("loihi2")
    with_mac = hw_models.run_on_chip([a], loihi2)
    plain = hw_models.run_on_chip([dataclasses.replace(a, mac_ops=0)], loihi2)
    extra = with_mac.layers[0].compute_j - plain.layers[0].compute_j
    assert extra == pytest.approx(a.mac_ops * loihi2.mac_extra_pj * 1e-12, rel=1e-9) and extra > 0
    for chip in ("loihi", "truenorth"):
        with pytest.raises(ValueError, match="binary spikes only.*graded"):
            hw_models.run_on_chip([a], hw_models.get_chip(chip))
    hw_models.run_on_chip([a], hw_models.get_chip("spinnaker2"))  # 32-bit packet payloads


def test_activity_from_statistics_matches_the_replay():
    w, c, v = _layer(3)
    st = SpikeStats()
    st.update(type("L", (), {"name": "model.layers.0.mlp.down_proj", "role": "down", "in_features": 256,
                             "out_features": 48, "index": 0})(), None, c.numpy())
    ls = st.layers["model.layers.0.mlp.down_proj"]
    for scheme, T in (("bitwise-signed", 3), ("bitwise-naf", 4), ("graded", 1), ("ternary", 7)):
        rep = replay_layer(w, c, v, scheme, T, clip=True).activity
        est = activity_of(ls, scheme, T)
        np.testing.assert_array_equal(est.events_per_step, rep.events_per_step)
        np.testing.assert_array_equal(est.event_hist, rep.event_hist)
        assert (est.synaptic_ops, est.mac_ops, est.clipped) == (rep.synaptic_ops, rep.mac_ops, rep.clipped)
    assert energy_per_token(st, "graded", chip="truenorth") is None
    assert energy_per_token(st, "graded", chip="loihi2") > 0
