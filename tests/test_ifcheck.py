"""snnTorch IF neurons versus round(x / V_th): equal except at documented rounding boundaries."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import encoders
from neurosim.ifcheck import if_neurons, if_replay
from neurosim.sim import replay_layer
from neurosim.weights import quantize_int8


def test_ties_and_near_ties():
    # |x| / V_th exactly at k + 1/2: the IF neuron rounds toward zero, torch.round to even.
    x = torch.tensor([[3.5, 2.5, -3.5, 0.5, 0.49, 1.51, 7.2, -7.6, 0.0, 4.5]])
    chk = if_neurons(x, torch.ones(1))
    assert chk.counts[0].tolist() == [3, 2, -3, 0, 0, 2, 7, -8, 0, 4]
    assert chk.reference[0].tolist() == [4, 2, -4, 0, 0, 2, 7, -8, 0, 4]
    assert chk.boundary[0].tolist() == [True, True, True, True, False, False, False, False, False, True]
    assert chk.mismatches == 2 and chk.boundary_mismatches == 2 and chk.unexplained == 0
    assert chk.undrained == 0


def test_laplace_activations_match_and_train_is_ternary():
    """Realistic synthetic inputs (Laplace tails, per-token scale), SpikingBrain's V_th."""
    rng = np.random.default_rng(0)
    x = rng.laplace(size=(32, 256)) * rng.uniform(0.1, 10, size=(32, 1))
    x[5, 9] = 40.0 * np.abs(x[5]).mean()  # an outlier channel: a long window
    chk = if_neurons(x.astype(np.float32))
    counts, vth = encoders.spike_counts(x.astype(np.float32))
    np.testing.assert_array_equal(chk.reference.numpy(), counts)
    np.testing.assert_allclose(chk.vth.numpy(), vth)
    assert chk.unexplained == 0
    assert chk.mismatches == chk.boundary_mismatches
    assert chk.mismatches <= 2  # ties are rare in real-valued data
    assert chk.steps == int(np.abs(counts).max()) + 1 > 60
    assert chk.undrained == 0
    # The IF neurons emit the ternary train of their counts: ones first, then silence.
    assert torch.equal(chk.spikes, encoders.encode(chk.counts, "ternary", chk.steps))


def test_short_window_leaves_neurons_undrained():
    chk = if_neurons(torch.tensor([[5.2, -3.0, 0.2]]), torch.ones(1), T=3)
    assert chk.undrained == 1  # 5.2 needs 5 steps; -3.0 fires its 3 spikes and stops
    assert chk.counts[0].tolist() == [3, -3, 0]
    assert chk.unexplained == 1  # the truncated slot


def test_if_driven_replay_equals_counts_replay():
    rng = np.random.default_rng(1)
    x = (rng.standard_normal((20, 256)) * 2).astype(np.float32)
    W = torch.from_numpy(rng.standard_normal((48, 256)).astype(np.float32))
    r, chk = if_replay(W, x, engine="events", block_columns=16)
    qw = quantize_int8(W)
    assert torch.equal(r.acc, chk.counts @ qw.q.to(torch.int64).T)
    ref = replay_layer(qw, chk.reference, chk.vth, "ternary", chk.steps, block_columns=16)
    rows_agree = (chk.counts == chk.reference).all(dim=1)
    assert bool(rows_agree.any())
    assert torch.equal(r.acc[rows_agree], ref.acc[rows_agree])
    assert r.activity.events == int(chk.counts.abs().sum())


@pytest.mark.slow
def test_real_layer_inputs(smollm, smollm_prompt):
    """Inputs of real SmolLM2 layers (attention input and the heavy-tailed down_proj input)."""
    mods = dict(smollm.model.named_modules())
    names = ["model.layers.0.self_attn.q_proj", "model.layers.15.mlp.down_proj"]
    seen: dict[str, torch.Tensor] = {}
    hooks = [mods[n].register_forward_pre_hook(lambda m, inp, n=n: seen.__setitem__(n, inp[0][0].detach()))
             for n in names]
    try:
        ids = smollm.tokenizer(smollm_prompt, return_tensors="pt").input_ids
        with torch.no_grad():
            smollm.model(ids)
    finally:
        for h in hooks:
            h.remove()
    for n in names:
        x = seen[n][:16]  # 16 real tokens (windows of about 100+ steps: real tails)
        chk = if_neurons(x)
        assert chk.unexplained == 0, n
        assert chk.undrained == 0, n
        assert chk.mismatches <= max(2, chk.reference.numel() // 100_000), n
        assert int(chk.reference.abs().max()) > 7, n  # real tails: windows longer than 3 bits
        r, chk2 = if_replay(mods[n].weight, x)
        assert torch.equal(r.acc, chk2.counts @ quantize_int8(mods[n].weight.detach()).q.to(torch.int64).T)


@pytest.mark.parametrize(
    "args, match",
    [
        (dict(x=np.ones(5, np.float32)), "2-D"),
        (dict(x=np.array([[1.0, np.nan]], np.float32)), "NaN"),
        (dict(x=np.ones((2, 3), np.float32), vth=np.ones(3, np.float32)), r"shape \[2\]"),
        (dict(x=np.ones((2, 3), np.float32), vth=np.array([1.0, 0.0], np.float32)), "positive"),
        (dict(x=np.ones((2, 3), np.float32), T=0), "positive integer"),
    ],
)
def test_bad_input(args, match):
    with pytest.raises(ValueError, match=match):
        if_neurons(**args)
