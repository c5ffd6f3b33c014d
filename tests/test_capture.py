"""neurosim.capture on the real embedded SmolLM2-135M: layers, shapes, V_th relation, decode, atomicity."""
from __future__ import annotations

import copy
from pathlib import Path

import h5py
import numpy as np
import pytest
import torch

import encoders
from analysis.trace import SpikeTrace
from neurosim import capture as capture_mod
from neurosim.capture import capture, counts_int16, role_of

pytestmark = pytest.mark.slow  # loads the real model (shared session fixture)

PROBES = ("model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.o_proj", "model.layers.14.mlp.down_proj",
          "model.layers.29.mlp.gate_proj")


def _linear_inputs(loaded, ids: np.ndarray, names) -> dict[str, np.ndarray]:
    """Independent reference: one plain forward over all tokens (no chunks, no cache), hooks
    that only copy the raw float inputs of the named layers."""
    mods = dict(loaded.model.named_modules())
    got: dict[str, np.ndarray] = {}
    handles = [
        mods[n].register_forward_pre_hook(lambda m, a, n=n: got.__setitem__(n, a[0][0].double().cpu().numpy()))
        for n in names
    ]
    try:
        with torch.inference_mode():
            loaded.model(torch.from_numpy(ids).unsqueeze(0), use_cache=False)
    finally:
        for h in handles:
            h.remove()
    return got


def test_layers_and_shapes_match_the_model(smollm, smollm_trace):
    linears = [(n, m) for n, m in smollm.model.named_modules() if isinstance(m, torch.nn.Linear) and n != "lm_head"]
    assert smollm_trace.layers == [n for n, _ in linears]  # every linear, model order, no lm_head
    assert len(linears) == 30 * 7
    for i, (name, mod) in enumerate(linears):
        info = smollm_trace.layer(name)
        assert (info.in_features, info.out_features, info.index) == (mod.in_features, mod.out_features, i)
        assert info.role == name.rsplit(".", 1)[-1].split("_")[0]  # q_proj -> q, down_proj -> down, ...
        c = smollm_trace.counts(name)
        assert c.dtype == np.int16 and c.shape == (smollm_trace.n_tokens, mod.in_features)
        assert smollm_trace.vth(name).shape == (smollm_trace.n_tokens,)
    roles = [smollm_trace.layer(n).role for n in smollm_trace.layers]
    assert {r: roles.count(r) for r in set(roles)} == {r: 30 for r in ("q", "k", "v", "o", "gate", "up", "down")}
    assert smollm_trace.model_id == smollm.model_id and smollm_trace.k == 3.0
    assert smollm_trace.vth_clamp == (encoders.VTH_MIN, encoders.VTH_MAX)


def test_tokens_and_offsets(smollm, smollm_trace, smollm_prompt):
    ids = smollm.tokenizer(smollm_prompt)["input_ids"]
    np.testing.assert_array_equal(smollm_trace.tokens, ids)
    off = smollm_trace.offsets
    pieces = "".join(smollm_prompt[a:b] for a, b in off)
    assert pieces == smollm_prompt  # the spans tile the prompt exactly
    assert smollm_trace.prompt_starts.tolist() == [0] and smollm_trace.prompt_text == [smollm_prompt]


def test_vth_relation_and_counts_vs_independent_forward(smollm, smollm_trace):
    """V_th == mean|x| / k per token and s == round(x / V_th) for inputs recomputed without chunks."""
    xs = _linear_inputs(smollm, smollm_trace.tokens, PROBES)
    k = smollm_trace.k
    for name in PROBES:
        x = xs[name]  # float64 [tokens, in_features]
        vth = smollm_trace.vth(name).astype(np.float64)
        np.testing.assert_allclose(vth, np.abs(x).mean(axis=1) / k, rtol=2e-5, err_msg=name)
        ref = np.round(x / vth[:, None])
        diff = np.abs(smollm_trace.counts(name) - ref)
        # Chunked (KV cache) and full forwards differ by float rounding: at most a rare +-1
        # where x / V_th sits on a .5 boundary.
        assert diff.max() <= 1 and (diff > 0).mean() < 1e-3, (name, diff.max(), (diff > 0).mean())


def test_fast_counts_are_bit_identical_to_encoders(smollm, smollm_trace):
    xs = _linear_inputs(smollm, smollm_trace.tokens[:40], PROBES[:2])
    for x64 in xs.values():
        for dtype in (torch.float32, torch.bfloat16):
            x = torch.from_numpy(x64).to(dtype)
            work, out = torch.empty(x.shape), torch.empty(x.shape, dtype=torch.int16)
            for k in (2.0, 3.0, 4.0):
                ref = encoders.spike_counts(x, k)
                for counts, vth in (counts_int16(x, k), counts_int16(x, k, work=work, out=out)):
                    assert counts.dtype == torch.int16
                    assert torch.equal(counts.to(torch.int32), ref.counts) and torch.equal(vth, ref.vth)
    with pytest.raises(ValueError, match="NaN or inf"):
        counts_int16(torch.tensor([[1.0, float("nan")], [1.0, 2.0]]), 3.0)
    with pytest.raises(ValueError, match="does not fit int16"):
        counts_int16(torch.tensor([[1e9] + [0.0] * 40000]), 3.0)  # k * C >= 32767: checked


def test_counts_decode_back(smollm_trace):
    seen = set()
    for info, counts, _ in smollm_trace.iter_layers():
        src = smollm_trace.source_of(info.name)
        if src in seen:
            continue
        seen.add(src)
        for scheme in ("bitwise-signed", "bitwise-twos"):
            spikes = encoders.encode(np.array(counts), scheme)
            np.testing.assert_array_equal(encoders.decode(spikes, scheme), counts, err_msg=f"{info.name} {scheme}")
    assert len(seen) == 30 * 4  # attn-in, o-in, mlp-in, down-in per block


def test_real_trace_roundtrips_exactly(smollm_trace, tmp_path):
    mem = SpikeTrace.from_arrays(
        model_id=smollm_trace.model_id, k=smollm_trace.k, tokens=smollm_trace.tokens,
        layers=list(smollm_trace.iter_layers()), offsets=smollm_trace.offsets,
        prompt_starts=smollm_trace.prompt_starts, prompt_text=smollm_trace.prompt_text,
    )
    with SpikeTrace.open(mem.save(tmp_path / "copy.h5")) as back:
        assert back.layers == smollm_trace.layers and back.n_tokens == smollm_trace.n_tokens
        np.testing.assert_array_equal(back.tokens, smollm_trace.tokens)
        np.testing.assert_array_equal(back.offsets, smollm_trace.offsets)
        for (a, ca, va), (b, cb, vb) in zip(smollm_trace.iter_layers(), back.iter_layers()):
            assert a == b and a.same_input_as == b.same_input_as
            np.testing.assert_array_equal(ca, cb)
            np.testing.assert_array_equal(va.view(np.uint32), vb.view(np.uint32))  # bit-exact


def test_shared_inputs_are_stored_once(smollm_trace):
    for i in (0, 17):
        q, k, v = (f"model.layers.{i}.self_attn.{p}_proj" for p in "qkv")
        g, u = f"model.layers.{i}.mlp.gate_proj", f"model.layers.{i}.mlp.up_proj"
        assert smollm_trace.layer(k).same_input_as == q and smollm_trace.layer(v).same_input_as == q
        assert smollm_trace.layer(u).same_input_as == g and smollm_trace.layer(g).same_input_as is None
        np.testing.assert_array_equal(smollm_trace.counts(v), smollm_trace.counts(q))
    with h5py.File(smollm_trace.path, "r") as f:
        a = f["layers"]["model.layers.3.self_attn.q_proj"]["counts"].id
        b = f["layers"]["model.layers.3.self_attn.v_proj"]["counts"].id
        assert h5py.h5o.get_info(a).addr == h5py.h5o.get_info(b).addr


def test_chunking_does_not_change_the_result(smollm, smollm_trace, smollm_prompt, tmp_path):
    whole = capture(smollm, smollm_prompt, tmp_path / "whole.h5", chunk_tokens=4096, progress=False)
    with whole:
        assert whole.layers == smollm_trace.layers and whole.attrs["chunk_tokens"] == 4096
        for name in PROBES:
            np.testing.assert_allclose(whole.vth(name), smollm_trace.vth(name), rtol=1e-5)
            diff = np.abs(whole.counts(name).astype(int) - smollm_trace.counts(name))
            assert diff.max() <= 1 and (diff > 0).mean() < 1e-3


def test_several_prompts_file_prompt_and_lm_head(smollm, smollm_text, tmp_path):
    first = "Four score and seven years ago."
    file_prompt = tmp_path / "p.txt"
    file_prompt.write_text(smollm_text[:300], encoding="utf-8")
    tr = capture(smollm, [first, file_prompt], tmp_path / "multi.h5", include_lm_head=True, chunk_tokens=16,
                 progress=False, attrs={"purpose": "test"})
    with tr:
        n1 = len(smollm.tokenizer(first)["input_ids"])
        n2 = len(smollm.tokenizer(smollm_text[:300])["input_ids"])
        assert tr.n_tokens == n1 + n2 and tr.prompt_starts.tolist() == [0, n1]
        assert tr.prompt_text == [first, smollm_text[:300]]
        assert tr.layers[-1] == "lm_head"
        head = tr.layer("lm_head")
        assert (head.role, head.in_features, head.out_features) == ("lm_head", 576, 49152)
        assert tr.counts("lm_head").shape == (n1 + n2, 576)
        assert tr.attrs["purpose"] == "test" and tr.attrs["include_lm_head"] is True
        # Each prompt is its own sequence: prompt 2's first token equals a fresh capture's.
        solo = _linear_inputs(smollm, tr.tokens[n1:], ["model.layers.5.mlp.down_proj"])["model.layers.5.mlp.down_proj"]
        np.testing.assert_allclose(tr.vth("model.layers.5.mlp.down_proj")[n1:], np.abs(solo).mean(1) / 3, rtol=2e-5)


def test_context_limit_and_truncation(smollm, smollm_prompt, tmp_path, monkeypatch):
    monkeypatch.setattr(smollm.model.config, "max_position_embeddings", 16)
    with pytest.raises(ValueError, match="prompt 0 has 92 tokens, more than the model's context of 16.*max_tokens"):
        capture(smollm, smollm_prompt, tmp_path / "long.h5", progress=False)
    assert not (tmp_path / "long.h5").exists()
    tr = capture(smollm, smollm_prompt, tmp_path / "cut.h5", max_tokens=16, progress=False)
    with tr:
        assert tr.n_tokens == 16 and tr.offsets.shape == (16, 2)


def test_bad_inputs(smollm, tmp_path):
    out = tmp_path / "x.h5"
    with pytest.raises(TypeError, match="prompts must be"):
        capture(smollm, 42, out, progress=False)
    with pytest.raises(ValueError, match="prompts is empty"):
        capture(smollm, [], out, progress=False)
    with pytest.raises(ValueError, match="prompt 1 is empty"):
        capture(smollm, ["ok", "  "], out, progress=False)
    with pytest.raises(TypeError, match="prompt 1 must be a str or os.PathLike"):
        capture(smollm, ["ok", 3], out, progress=False)
    with pytest.raises(FileNotFoundError, match="nope.txt"):
        capture(smollm, Path(tmp_path / "nope.txt"), out, progress=False)
    with pytest.raises(ValueError, match="k must be a positive"):
        capture(smollm, "hi", out, k=0, progress=False)
    with pytest.raises(ValueError, match="chunk_tokens must be a positive int"):
        capture(smollm, "hi", out, chunk_tokens=0, progress=False)
    with pytest.raises(ValueError, match="max_tokens must be a positive int"):
        capture(smollm, "hi", out, max_tokens=-1, progress=False)
    with pytest.raises(TypeError, match="LoadedModel"):
        capture(smollm.model, "hi", out, progress=False)
    assert list(tmp_path.iterdir()) == []
    out.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        capture(smollm, "hi", out, progress=False)
    assert out.read_bytes() == b"keep me"


def test_failure_mid_capture_leaves_no_file(smollm, smollm_prompt, tmp_path, monkeypatch):
    out = tmp_path / "old.h5"
    out.write_bytes(b"previous good file")
    calls = {"n": 0}
    real = capture_mod.counts_int16

    def flaky(x, k, **kw):
        calls["n"] += 1
        if calls["n"] == 200:  # deep inside the second chunk
            raise RuntimeError("simulated failure")
        return real(x, k, **kw)

    monkeypatch.setattr(capture_mod, "counts_int16", flaky)
    with pytest.raises(RuntimeError, match="simulated failure"):
        capture(smollm, smollm_prompt, out, chunk_tokens=32, overwrite=True, progress=False)
    assert out.read_bytes() == b"previous good file"
    assert [p.name for p in tmp_path.iterdir()] == ["old.h5"]
    # The hooks were removed: a plain forward afterwards runs no capture code.
    n = calls["n"]
    with torch.inference_mode():
        smollm.model(torch.tensor([[1, 2, 3]]))
    assert calls["n"] == n


def test_bfloat16_capture(smollm, tmp_path):
    from neurosim.models import LoadedModel

    bf = LoadedModel(copy.deepcopy(smollm.model).to(torch.bfloat16), smollm.tokenizer, smollm.model_id)
    text = "We hold these truths to be self-evident, that all men are created equal."
    tr = capture(bf, text, tmp_path / "bf16.h5", chunk_tokens=8, progress=False)
    ref = capture(smollm, text, tmp_path / "fp32.h5", chunk_tokens=8, progress=False)
    with tr, ref:
        assert tr.attrs["capture_dtype"] == "bfloat16" and ref.attrs["capture_dtype"] == "float32"
        assert tr.layers == ref.layers
        for name in PROBES:
            assert tr.counts(name).shape == ref.counts(name).shape
            # bfloat16 keeps ~3 significant digits: thresholds agree to a few percent.
            np.testing.assert_allclose(tr.vth(name), ref.vth(name), rtol=0.1)
            assert np.mean(np.abs(tr.counts(name).astype(int) - ref.counts(name)) <= 1) > 0.9


@pytest.mark.skipif(not torch.cuda.is_available(), reason="no CUDA device")
def test_cuda_capture_matches_cpu(smollm, smollm_trace, smollm_prompt, tmp_path):
    from neurosim.models import LoadedModel

    gpu = LoadedModel(copy.deepcopy(smollm.model).to("cuda"), smollm.tokenizer, smollm.model_id)
    tr = capture(gpu, smollm_prompt, tmp_path / "cuda.h5", chunk_tokens=32, progress=False)
    with tr:
        assert tr.attrs["capture_device"].startswith("cuda")
        for name in PROBES:
            np.testing.assert_allclose(tr.vth(name), smollm_trace.vth(name), rtol=1e-3)


def test_role_of():
    assert role_of("model.layers.0.self_attn.q_proj") == "q"
    assert role_of("model.layers.0.self_attn.k_proj") == "k"
    assert role_of("model.layers.0.self_attn.v_proj") == "v"
    assert role_of("model.layers.0.self_attn.o_proj") == "o"
    assert role_of("model.layers.0.mlp.gate_proj") == "gate"
    assert role_of("model.layers.0.mlp.up_proj") == "up"
    assert role_of("model.layers.0.mlp.down_proj") == "down"
    assert role_of("lm_head") == "lm_head"
    assert role_of("layers.3.attention.wq") == "q" and role_of("layers.3.feed_forward.w2") == "down"
    assert role_of("model.layers.0.mlp.router") == "other"
    with pytest.raises(TypeError):
        role_of(3)
