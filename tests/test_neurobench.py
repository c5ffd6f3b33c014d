"""NeuroBench metrics of a trace agree with the ``neurobench`` package (test extra) itself."""
from __future__ import annotations

import json

import numpy as np
import pytest
import torch

from neurosim.neurobench import NB_SCHEMES, layer_inputs, layer_ops, metrics_markdown, neurobench_metrics, weight_fanout
from neurosim.weights import quantize_int8

nb = pytest.importorskip("neurobench", reason="neurobench: pip install --no-deps neurobench==2.3.0 (see pyproject.toml, peers)")
from neurobench.benchmarks import Benchmark  # noqa: E402
from neurobench.metrics.workload import ActivationSparsity, SynapticOperations  # noqa: E402
from neurobench.models import TorchModel  # noqa: E402


class _SpikeSource(torch.nn.Module):
    """An activation (neuron) layer: call ``t`` emits the stored input plane of step ``t``."""

    def __init__(self, planes: torch.Tensor) -> None:
        super().__init__()
        self.planes = planes

    def forward(self, t: int) -> torch.Tensor:
        return self.planes[t]


class _Net(torch.nn.Module):
    """Each source feeds its linear layers once per step, as an SNN runs its time steps."""

    def __init__(self, groups: list[tuple[torch.Tensor, list[torch.Tensor]]]) -> None:
        super().__init__()
        self.sources = torch.nn.ModuleList()
        self.linears = torch.nn.ModuleList()
        self.wiring: list[tuple[int, list[int]]] = []
        for planes, weights in groups:
            self.sources.append(_SpikeSource(planes))
            ids = []
            for w in weights:
                lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=True, dtype=torch.float64)
                with torch.no_grad():
                    lin.weight.copy_(w)
                    lin.bias.fill_(0.5)  # NeuroBench zeroes biases: they must not count
                ids.append(len(self.linears))
                self.linears.append(lin)
            self.wiring.append((len(self.sources) - 1, ids))
        self.steps = int(groups[0][0].shape[0])

    def forward(self, batch: torch.Tensor) -> torch.Tensor:
        for t in range(self.steps):
            for src, ids in self.wiring:
                x = self.sources[src](t)
                for i in ids:
                    self.linears[i](x)
        return torch.zeros(batch.shape[0])


def _neurobench_reference(groups: list[tuple[np.ndarray, list[torch.Tensor]]], scheme: str, T: int | None) -> dict:
    """Run the neurobench package's metrics on a model fed our layer inputs (float64: exact sums)."""
    built = []
    for counts, weights in groups:
        planes, _ = layer_inputs(counts, scheme, T)
        built.append((planes.to(torch.float64), [w.to(torch.float64) for w in weights]))
    n = int(built[0][0].shape[1])
    model = TorchModel(_Net(built))
    model.add_activation_module(_SpikeSource)
    data = torch.utils.data.TensorDataset(torch.zeros(n, 1), torch.zeros(n))
    loader = torch.utils.data.DataLoader(data, batch_size=n)
    bench = Benchmark(model, loader, [], [], [[], [SynapticOperations, ActivationSparsity]])
    return bench.run(quiet=True)


def _ours(groups: list[tuple[np.ndarray, list[torch.Tensor]]], scheme: str, T: int | None) -> dict:
    from neurosim.neurobench import NeuroBenchMetrics

    rows = []
    for g, (counts, weights) in enumerate(groups):
        for j, w in enumerate(weights):
            fan = weight_fanout(w, "float")
            rows.append(layer_ops(counts, fan, w.shape[0], scheme, T, name=f"g{g}.{j}",
                                  same_input_as=None if j == 0 else f"g{g}.0"))
    return NeuroBenchMetrics(scheme, rows[0].steps, "float", int(groups[0][0].shape[0]), rows).per_sample()


def _check_agree(ours: dict, ref: dict) -> None:
    syn = ref["SynapticOperations"]
    assert ours["Effective_ACs"] == syn["Effective_ACs"]
    assert ours["Effective_MACs"] == syn["Effective_MACs"]
    assert ours["Dense"] == syn["Dense"]
    # NeuroBench normalises a per-batch metric as (0.0 + x * batch) / dataset_len: at most 1 ulp apart
    assert ours["ActivationSparsity"] == pytest.approx(ref["ActivationSparsity"], rel=1e-15, abs=0)


@pytest.mark.parametrize("scheme", ["counts", "ternary", "bitwise-signed", "bitwise", "binary", "bitwise-twos"])
def test_agrees_with_neurobench_on_random_layers(scheme):
    rng = np.random.default_rng(1)
    counts = np.round(rng.standard_normal((9, 40)) * 2).astype(np.int64)
    counts[:, :5] = 0  # silent channels
    w1 = torch.from_numpy(rng.standard_normal((7, 40)))
    w1[w1.abs() < 0.5] = 0  # zero weights are skipped by NeuroBench
    w2 = torch.from_numpy(rng.standard_normal((3, 40)))
    counts2 = np.clip(counts, -1, 1)  # a counts-layer entirely in {-1, 0, 1}: ACs, not MACs
    w3 = torch.from_numpy(rng.standard_normal((5, 40)))
    groups = [(counts, [w1, w2]), (counts2, [w3])]
    ours = _ours(groups, scheme, None)
    ref = _neurobench_reference(groups, scheme, None)
    _check_agree(ours, ref)
    if scheme == "counts":
        assert ours["Effective_MACs"] > 0 and ours["Effective_ACs"] > 0
    else:
        assert ours["Effective_MACs"] == 0 and ours["Effective_ACs"] > 0


def test_known_values_by_hand():
    counts = np.array([[2, 0, -1], [0, 0, 1]])
    w = torch.tensor([[1.0, 0.0, 3.0], [0.0, 0.0, 2.0]])  # column fan-out [1, 0, 2]
    r = layer_ops(counts, weight_fanout(w, "float"), 2, "counts")
    assert (r.effective, r.dense, r.spiking) == (1 + 2 + 2, 2 * 3 * 2, False)
    assert r.effective_per_token.tolist() == [3, 2]
    t = layer_ops(counts, weight_fanout(w, "float"), 2, "ternary", 2)  # 2 -> two steps with a spike
    assert (t.effective, t.dense, t.spiking, t.nonzero) == (1 + 1 + 2 + 2, 2 * 2 * 3 * 2, True, 4)
    with pytest.raises(ValueError, match="unknown scheme"):
        layer_ops(counts, weight_fanout(w, "float"), 2, "morse")
    with pytest.raises(ValueError, match="fan-out"):
        layer_ops(counts, torch.ones(4, dtype=torch.int64), 2, "counts")
    assert set(NB_SCHEMES) >= {"counts", "bitwise-signed"}


@pytest.mark.slow
@pytest.mark.parametrize("scheme", ["counts", "bitwise-signed", "ternary"])
def test_agrees_with_neurobench_on_real_smollm_layers(smollm, smollm_trace, scheme):
    """Real SmolLM2 layers (INT8 weights) fed the real captured counts: the package agrees."""
    mods = dict(smollm.model.named_modules())
    q, k, down = "model.layers.0.self_attn.q_proj", "model.layers.0.self_attn.k_proj", "model.layers.3.mlp.down_proj"
    deq = {n: quantize_int8(mods[n].weight.detach()).dequantize() for n in (q, k, down)}
    groups = [(smollm_trace.counts(q), [deq[q], deq[k]]), (smollm_trace.counts(down), [deq[down]])]
    ref = _neurobench_reference(groups, scheme, None)
    m = neurobench_metrics(smollm_trace, smollm.model, scheme, layers=[q, k, down], weights="int8")
    _check_agree(m.per_sample(), ref)
    assert m.layers[1].same_input_as == q
    summary = json.loads(json.dumps(m.summary()))
    assert summary["tokens"] == smollm_trace.n_tokens and summary["per_token"]["Dense"] > 0
    assert "Effective_ACs" in metrics_markdown(m)


@pytest.mark.slow
def test_cli_neurobench_json_on_real_trace(smollm_trace, capsys):
    from neurosim.cli import main

    assert main(["neurobench", str(smollm_trace.path), "--scheme", "bitwise-signed", "--format", "json"]) == 0
    out = json.loads(capsys.readouterr().out)
    assert out["steps"] == 3 and out["tokens"] == smollm_trace.n_tokens and len(out["layers"]) == len(smollm_trace.layers)
    p = out["per_token"]
    assert p["Effective_MACs"] == 0 and 0 < p["Effective_ACs"] < p["Dense"] and 0 < p["ActivationSparsity"] < 1
    assert main(["neurobench", "/nonexistent/trace.h5"]) == 1
    assert "does not exist" in capsys.readouterr().err
