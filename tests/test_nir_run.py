"""The NIR export runs in a third-party simulator: snnTorch's importer (with nirtorch), fed the
exported events of each token, returns the layer's output / V_th for that token."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import encoders
from neurosim.export import read_nir, select_layer, trace_layer_spikes, write_nir
from neurosim.export.nir_graph import spike_lines, to_snntorch
from neurosim.sim.layer import replay_layer
from neurosim.weights import quantize_int8

pytest.importorskip("nirtorch", reason="the test extra installs nirtorch (snnTorch's NIR importer)")


def run_tokens(net: torch.nn.Module, x: np.ndarray) -> np.ndarray:
    """Feed ``x`` [tokens, T, lines] step by step, a fresh integrator per token; the last outputs."""
    outs = []
    for token in range(x.shape[0]):
        out, state = net(torch.from_numpy(x[token, 0]))
        for b in range(1, x.shape[1]):
            out, state = net(torch.from_numpy(x[token, b]), state)
        outs.append(out.detach().numpy())
    return np.stack(outs)


@pytest.mark.parametrize("scheme", encoders.SCHEMES)
@pytest.mark.parametrize("bit_order", ["msb", "lsb"])
def test_snntorch_runs_every_scheme(tmp_path, scheme, bit_order):
    rng = np.random.default_rng(7)
    counts = np.round(rng.laplace(size=(6, 48)) * 3).astype(np.int64)
    if scheme not in encoders.SIGNED:
        counts = np.abs(counts)  # unsigned schemes carry non-negative counts only
    vth = rng.uniform(0.1, 0.4, 6).astype(np.float32)
    neurons = [0, 5, 6, 17, 40, 47]
    ls = select_layer(counts, vth, scheme=scheme, bit_order=bit_order, neurons=neurons, layer="l")
    q = quantize_int8(torch.randn(20, 48), group_size=16)
    path = write_nir(ls, tmp_path / "l.nir", weight=q)
    net = to_snntorch(path)
    got = run_tokens(net, spike_lines(ls))
    want = counts[:, neurons].astype(np.float64) @ q.dequantize().double().numpy()[:, neurons].T
    np.testing.assert_allclose(got, want, rtol=1e-5, atol=1e-5 * np.abs(want).max())
    assert isinstance(read_nir(path).nodes["integrator"], __import__("nir").I)


@pytest.mark.slow
def test_exported_real_layer_runs_in_snntorch(smollm, smollm_trace, tmp_path, monkeypatch, capsys):
    """CLI export of a real SmolLM2 layer; snnTorch output x V_th equals the event-driven replay."""
    import neurosim.models
    from neurosim.cli import main

    monkeypatch.setattr(neurosim.models, "load_model", lambda *a, **k: smollm)
    layer = "model.layers.3.mlp.down_proj"
    out = tmp_path / "down.nir"
    assert main(["export", str(smollm_trace.path), "--format", "nir", "--layer", layer, "--model", "embedded",
                 "--tokens", "0:6", "--out", str(out), "--quiet"]) == 0
    assert "lossless T" in capsys.readouterr().out
    graph = read_nir(out)
    T = int(graph.metadata["T"])
    ls = trace_layer_spikes(smollm_trace, layer, tokens=(0, 6), T=T)  # the events the export describes
    assert np.abs(ls.counts).max() > 7  # a real long tail: T > 3, nothing clipped
    y_over_vth = run_tokens(to_snntorch(graph), spike_lines(ls))
    vth = np.asarray(graph.metadata["vth"])
    weight = quantize_int8(dict(smollm.model.named_modules())[layer].weight.detach())
    rep = replay_layer(weight, ls.counts, ls.vth, "bitwise-signed", T)
    want = rep.output.numpy()
    np.testing.assert_allclose(vth[:, None] * y_over_vth, want, rtol=1e-4, atol=1e-4 * np.abs(want).max())
