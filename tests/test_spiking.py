"""neurosim.spiking: spiking forward mode and float vs spiking perplexity on the real SmolLM2."""
from __future__ import annotations

import math

import pytest
import torch
import torch.nn.functional as F

import encoders
from neurosim.spiking import perplexity, perplexity_sweep, spiking_mode
from neurosim.weights import quantize_int8

pytestmark = pytest.mark.slow  # loads the real model (shared session fixture)

N_TOK = 96  # tokens of the shipped text used for perplexities in tests (keeps them fast)


def _ids(smollm, text, n):
    return torch.tensor(smollm.tokenizer(text)["input_ids"][:n])


def test_linear_computes_from_spike_counts(smollm):
    mods = dict(smollm.model.named_modules())
    layer = mods["model.layers.3.mlp.down_proj"]
    x = torch.randn(5, 1536) * torch.linspace(0.1, 4, 1536)
    with torch.inference_mode():
        plain = layer(x)
        with spiking_mode(smollm.model, k=2.5) as stats:
            spiked = layer(x)
        after = layer(x)
    counts, vth = encoders.spike_counts(x, 2.5)
    expected = F.linear(counts.float() * vth[:, None], layer.weight)  # W @ (V_th * s)
    torch.testing.assert_close(spiked, expected, rtol=0, atol=0)
    assert not torch.allclose(spiked, plain, atol=1e-3)  # quantization is visible
    assert torch.equal(after, plain)
    assert stats.calls == 1 and stats.values == x.numel() and stats.clipped == 0


def test_clip_limits_counts_to_the_scheme_budget(smollm):
    mods = dict(smollm.model.named_modules())
    layer = mods["model.layers.0.self_attn.q_proj"]
    seen = {}
    x = torch.randn(7, 576) * 3
    with torch.inference_mode(), spiking_mode(smollm.model, k=3.0, clip=("bitwise-signed", 1)) as stats:
        # A forward hook sees the input the layer actually computed from.
        hook = layer.register_forward_hook(lambda m, a, out: seen.__setitem__("x", a[0].clone()))
        try:
            layer(x)
        finally:
            hook.remove()
    counts, vth = encoders.spike_counts(x, 3.0)
    torch.testing.assert_close(seen["x"], counts.clamp(-1, 1).float() * vth[:, None], rtol=0, atol=0)
    assert stats.clipped == int((counts.abs() > 1).sum()) > 0
    assert stats.clipped_fraction == pytest.approx(stats.clipped / x.numel())


def test_model_is_restored_after_exit_and_after_errors(smollm):
    model = smollm.model
    ids = torch.tensor([[504, 3258, 282, 1345, 2743]])
    params = dict(model.named_parameters())
    with torch.inference_mode():
        before = model(ids).logits
        with pytest.raises(RuntimeError, match="inside"):
            with spiking_mode(model, k=2.0, int8_weights=True):
                assert not torch.equal(model(ids).logits, before)
                raise RuntimeError("inside")
        after = model(ids).logits
    assert torch.equal(before, after)
    assert all(p is params[n] for n, p in model.named_parameters())
    assert all(not m._forward_pre_hooks for m in model.modules() if isinstance(m, torch.nn.Linear))
    assert model.lm_head.weight is model.model.embed_tokens.weight  # tie intact


def test_int8_weights_follow_w8aspike(smollm):
    model = smollm.model
    w_down = model.model.layers[2].mlp.down_proj.weight.detach().clone()
    emb = model.model.embed_tokens.weight.detach().clone()
    with spiking_mode(model, int8_weights=True):
        inside = model.model.layers[2].mlp.down_proj.weight
        ref = quantize_int8(w_down).dequantize()
        assert torch.equal(inside, ref)
        assert not torch.equal(inside, w_down)
        # lm_head is tied to the embedding: only the head's copy is quantized.
        assert torch.equal(model.model.embed_tokens.weight, emb)
        assert torch.equal(model.lm_head.weight, quantize_int8(emb).dequantize())
    assert torch.equal(model.model.layers[2].mlp.down_proj.weight, w_down)


def test_float_perplexity_matches_direct_cross_entropy(smollm, smollm_text):
    ids = _ids(smollm, smollm_text, N_TOK)
    with torch.inference_mode():
        logits = smollm.model(ids[None]).logits[0]
    ref = math.exp(float(F.cross_entropy(logits[:-1], ids[1:])))
    assert perplexity(smollm, smollm_text, max_tokens=N_TOK) == pytest.approx(ref, rel=1e-5)
    # Two non-overlapping windows: each scores its tokens after the first, with in-window context.
    with torch.inference_mode():
        a = smollm.model(ids[None, :48]).logits[0]
        b = smollm.model(ids[None, 48:]).logits[0]
    nll = F.cross_entropy(a[:-1], ids[1:48], reduction="sum") + F.cross_entropy(b[:-1], ids[49:], reduction="sum")
    windows = perplexity(smollm, smollm_text, max_tokens=N_TOK, window=48)
    assert windows == pytest.approx(math.exp(float(nll) / (N_TOK - 2)), rel=1e-5)
    # Overlapping windows (stride < window) score every token once, with more context.
    strided = perplexity(smollm, smollm_text, max_tokens=N_TOK, window=64, stride=32)
    assert strided != pytest.approx(windows, rel=1e-3)


def test_spiking_perplexity_depends_on_k_and_budget(smollm, smollm_text):
    f = perplexity(smollm, smollm_text, max_tokens=N_TOK)
    p2 = perplexity(smollm, smollm_text, max_tokens=N_TOK, spiking={"k": 2.0})
    p4 = perplexity(smollm, smollm_text, max_tokens=N_TOK, spiking={"k": 4.0})
    p4_t1 = perplexity(smollm, smollm_text, max_tokens=N_TOK, spiking={"k": 4.0, "clip": ("bitwise-signed", 1)})
    assert p2 != f and p4 != f
    # Finer thresholds (larger k) track the float model more closely; a 1-step budget hurts.
    assert abs(math.log(p4 / f)) < abs(math.log(p2 / f))
    assert p4_t1 > 1.5 * p4


def test_sweep_table(smollm, smollm_text):
    rows = perplexity_sweep(smollm, smollm_text, ks=(2.0, 4.0), clips=(None, ("bitwise-signed", 2)),
                            max_tokens=48, progress=False)
    assert [(r["k"], r["T"]) for r in rows] == [(2.0, None), (4.0, None), (2.0, 2), (4.0, 2)]
    ppl_f = perplexity(smollm, smollm_text, max_tokens=48)
    for r in rows:
        assert r["ppl_float"] == pytest.approx(ppl_f, rel=1e-6)
        assert r["ratio"] == pytest.approx(r["ppl_spiking"] / r["ppl_float"])
        assert (r["clipped_fraction"] > 0) == (r["T"] is not None)
    direct = perplexity(smollm, smollm_text, max_tokens=48, spiking={"k": 4.0, "clip": ("bitwise-signed", 2)})
    assert rows[3]["ppl_spiking"] == pytest.approx(direct, rel=1e-6)
    # At T=2 (|s| <= 3) a larger k clips more counts.
    assert rows[3]["clipped_fraction"] > rows[2]["clipped_fraction"]


def test_bad_inputs(smollm, smollm_text):
    with pytest.raises(ValueError, match="k must be a positive"):
        with spiking_mode(smollm.model, k=0):
            pass
    with pytest.raises(ValueError, match="unknown scheme 'nope'"):
        with spiking_mode(smollm.model, clip=("nope", 3)):
            pass
    with pytest.raises(ValueError, match="clip T must be a positive int"):
        with spiking_mode(smollm.model, clip=("bitwise-signed", 0)):
            pass
    with pytest.raises(TypeError, match="clip must be None or a pair"):
        with spiking_mode(smollm.model, clip="bitwise"):
            pass
    with pytest.raises(TypeError, match="torch.nn.Module"):
        with spiking_mode("model"):
            pass
    with pytest.raises(ValueError, match=r"unknown spiking options \['kk'\]"):
        perplexity(smollm, smollm_text, spiking={"kk": 3})
    with pytest.raises(ValueError, match="max_tokens must be an int >= 2"):
        perplexity(smollm, smollm_text, max_tokens=1)
    with pytest.raises(ValueError, match="at least 2"):
        perplexity(smollm, "")
    with pytest.raises(ValueError, match="stride must be an int in"):
        perplexity(smollm, smollm_text, max_tokens=32, window=16, stride=17)
    with pytest.raises(ValueError, match="window must be an int in"):
        perplexity(smollm, smollm_text, window=10**6)
    with pytest.raises(TypeError, match="text must be a str"):
        perplexity(smollm, 3)
    assert all(not m._forward_pre_hooks for m in smollm.model.modules() if isinstance(m, torch.nn.Linear))
