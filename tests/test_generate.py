"""Closed-loop spiking generation: engines agree, Activity sums over tokens, activity files round-trip."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

import hw_models
from neurosim.activity_file import activity_to_dict, read_activity, write_activity
from neurosim.cli import main
from neurosim.generate import Generation, concat_tokens, generate, spiking_linears
from neurosim.sim import replay_layer
from neurosim.spiking import spiking_mode

PROMPT = "We hold these truths to be self-evident, that all men are created equal."


def _same_activity(a, b) -> None:
    da, db = activity_to_dict(a), activity_to_dict(b)
    assert da == db


@pytest.mark.parametrize("scheme", ["bitwise-signed", "ternary", "bitwise"])
def test_concat_tokens_equals_one_replay_over_all_tokens(scheme):
    rng = np.random.default_rng(0)
    w = torch.from_numpy(rng.standard_normal((24, 160)).astype(np.float32))
    counts = np.round(rng.standard_normal((7, 160)) * 3).astype(np.int64)
    vth = np.full(7, 0.1, dtype=np.float32)
    kw = dict(clip=True, sign_split=scheme == "bitwise", name="l", role="q")
    whole = replay_layer(w, counts, vth, scheme, 3, **kw).activity
    parts = [replay_layer(w, counts[a:b], vth[a:b], scheme, 3, **kw).activity for a, b in ((0, 4), (4, 5), (5, 7))]
    cat = concat_tokens(parts)
    assert cat.synaptic_ops_per_token.tolist() == whole.synaptic_ops_per_token.tolist()
    # a dense engine reads the weights once per call: three calls read them three times
    assert cat.weight_bytes_dense == 3 * whole.weight_bytes_dense
    d_cat, d_whole = activity_to_dict(cat), activity_to_dict(whole)
    for key in ("synops_per_token", "weight_bytes_dense"):
        d_cat.pop(key), d_whole.pop(key)
    assert d_cat == d_whole
    with pytest.raises(ValueError, match="no records"):
        concat_tokens([])


def _toy() -> torch.nn.Module:
    torch.manual_seed(0)
    return torch.nn.Sequential(torch.nn.Linear(160, 96), torch.nn.GELU(), torch.nn.Linear(96, 40, bias=True))


def test_events_and_dense_identical_and_close_to_float_twin():
    net, x = _toy(), torch.randn(5, 160)
    outs = {}
    for engine in ("events", "dense"):
        with torch.no_grad(), spiking_linears(net, "bitwise-signed", 3, engine=engine) as st:
            outs[engine] = net(x)
        assert set(st.records["prefill"]) == {"0", "2"} and st.calls == 2
        assert st.activities("prefill")[0].tokens == 5
    assert torch.equal(outs["events"], outs["dense"])
    with torch.no_grad(), spiking_mode(net, k=3.0, clip=("bitwise-signed", 3), int8_weights=True):
        twin = net(x)  # same counts, clip and INT8 weights in float arithmetic
    assert torch.allclose(outs["events"], twin, rtol=1e-4, atol=1e-4)
    with torch.no_grad():
        assert not torch.allclose(outs["events"], net(x), rtol=1e-4, atol=1e-4)  # restored: plain float again
    assert "forward" not in vars(net[0])


def test_spiking_linears_rejects_bad_arguments():
    net = _toy()
    with pytest.raises(ValueError, match="engine"):
        with spiking_linears(net, engine="float"):
            pass
    with pytest.raises(ValueError, match="unknown scheme|scheme"):
        with spiking_linears(net, "morse"):
            pass
    with pytest.raises(ValueError, match="T must"):
        with spiking_linears(net, T=0):
            pass
    with pytest.raises(ValueError, match="k must"):
        with spiking_linears(net, k=-1.0):
            pass


def test_activity_file_roundtrip_and_errors(tmp_path):
    w = torch.randn(8, 130)
    counts = np.array([[1, -2, 0] * 43 + [5]] * 3)
    acts = [replay_layer(w, counts, np.ones(3, np.float32), "ternary", None, name="a", role="q").activity]
    path = write_activity(tmp_path / "act.json", {"decode": acts}, {"engine": "events"})
    phases, meta = read_activity(path)
    assert meta == {"engine": "events"} and list(phases) == ["decode"]
    _same_activity(phases["decode"][0], acts[0])
    with pytest.raises(FileExistsError):
        write_activity(path, {"decode": acts})
    with pytest.raises(ValueError, match="unknown phase"):
        write_activity(tmp_path / "b.json", {"warmup": acts})
    (tmp_path / "bad.json").write_text(json.dumps({"format": "other"}))
    with pytest.raises(ValueError, match="not a neurosim activity file"):
        read_activity(tmp_path / "bad.json")
    with pytest.raises(FileNotFoundError):
        read_activity(tmp_path / "missing.json")


def test_cli_generate_and_energy_reject_bad_input(tmp_path, capsys):
    assert main(["generate", "--prompt", "  ", "--engine", "float"]) == 1
    assert "--prompt is empty" in capsys.readouterr().err
    assert main(["generate", "--prompt", "x", "--max-new-tokens", "0"]) == 2  # a bad value: usage error
    assert "--max-new-tokens must be at least 1" in capsys.readouterr().err
    assert main(["generate", "--prompt", "x", "--engine", "float", "--activity-out", str(tmp_path / "a.json")]) == 1
    assert "spiking engine" in capsys.readouterr().err
    assert main(["energy"]) == 1
    assert "--activity" in capsys.readouterr().err
    assert main(["energy", "--activity", str(tmp_path / "none.json")]) == 1
    assert "does not exist" in capsys.readouterr().err


@pytest.mark.slow
def test_embedded_model_events_and_dense_generate_identical_tokens(smollm, tmp_path, capsys):
    """Greedy decoding on SmolLM2 with every linear on the simulator: events == dense, token for token."""
    prompt = "We hold these truths"  # short: the spiking engines take seconds per token on CPU
    runs = {e: generate(smollm, prompt, 3, engine=e, scheme="bitwise-signed") for e in ("events", "dense")}
    ev, de = runs["events"], runs["dense"]
    assert isinstance(ev, Generation) and len(ev.new_ids) == 3
    assert ev.new_ids == de.new_ids and ev.text == de.text
    n_layers = sum(isinstance(m, torch.nn.Linear) for m in smollm.model.modules())
    assert len(ev.prefill) == len(ev.decode) == n_layers
    assert {a.tokens for a in ev.prefill} == {ev.prompt_tokens} and {a.tokens for a in ev.decode} == {2}
    for a, b in zip(ev.decode, de.decode):
        _same_activity(a, b)  # the engines send the same events
    assert ev.decode[0].events > 0 and sum(int(a.clipped) for a in ev.decode) == ev.clipped["decode"]
    assert any(a.same_input_as for a in ev.decode)  # q/k/v share their input spikes
    # the plain model runs the same loop
    fl = generate(smollm, prompt, 3, engine="float")
    assert fl.prefill is None and len(fl.new_ids) == 3 and fl.tokens_per_s > 0
    # the decode activity, written to a file, is priced by neurosim energy --activity
    out = write_activity(tmp_path / "decode.json", {"prefill": ev.prefill, "decode": ev.decode}, {"engine": "events"})
    assert main(["energy", "--activity", str(out), "--chip", "loihi2", "--gpu", "h100"]) == 0
    priced = capsys.readouterr().out
    assert "decode: 2 tokens" in priced and "loihi2" in priced.lower()
    res = hw_models.evaluate(ev.prefill, [hw_models.get_chip("loihi2")], [hw_models.get_gpu("h100_sxm")], mode="prefill")
    assert all(r.energy_per_token_j > 0 for r in res)
    # the CLI prints tokens/s and the text per engine
    assert main(["generate", "--prompt", prompt, "--max-new-tokens", "2", "--engine", "float"]) == 0
    text = capsys.readouterr().out
    assert "[float]" in text and "tokens/s" in text and "text:" in text
