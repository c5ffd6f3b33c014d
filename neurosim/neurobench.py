"""NeuroBench v2.3 workload metrics of a spike trace: activation sparsity and synaptic operations.

NeuroBench (arXiv:2304.04640; package ``neurobench`` 2.3.0, ``neurobench.metrics.workload``)
defines, for every connection layer (nn.Linear here) and every forward call of it:

- inputs and weights binarised (non-zero -> 1), bias zeroed, the layer re-run and its
  outputs summed: the *effective* synaptic operations. For a linear layer this is
  ``sum_rows sum_c [x_rc != 0] * nnz(W[:, c])``: one operation per non-zero input and
  non-zero weight of its column.
- the same with all inputs and weights set to 1: ``Dense`` = rows x in x out.
- the call counts as accumulates (``Effective_ACs``) when every input value is in
  {-1, 0, 1}, else as multiply-accumulates (``Effective_MACs``).
- every result is divided by the number of samples (the batch size).
- ``ActivationSparsity`` = zero outputs / all outputs of the activation (neuron) layers,
  over all layers, time steps and samples.

What a layer's input is here depends on ``scheme`` (see docs/neurobench.md):

- ``"counts"``: the integer spike count ``s`` itself enters the layer in one call (an ANN
  with integer activations): a layer with any ``|s| > 1`` is counted as MACs.
- a spike scheme (binary, ternary, bitwise, bitwise-signed, bitwise-twos): the layer is
  called once per time step with that step's spike plane, values in {-1, 0, 1}
  (:func:`neurosim.sim.spike_train`; unsigned schemes carry the sign on a second line,
  merged into -1 events): always ACs.

One sample is one token (the trace's tokens form one batch), so "per sample" values are
per token. The activation sparsity counts each distinct input once (q/k/v and gate/up
share their input neurons, ``same_input_as``). Effective operations need the non-zero
pattern of the weights (``weights="int8"``: the W8ASpike INT8 weights the simulator uses,
where small weights round to 0; ``"float"``: the model's weights); ``Dense`` and the
sparsity need only the layer shapes and the counts.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import torch

import encoders

from .sim import spike_train
from .weights import Int8Weight, quantize_int8

NB_SCHEMES: tuple[str, ...] = ("counts",) + tuple(encoders.SCHEMES)
WEIGHT_KINDS: tuple[str, ...] = ("int8", "float")
_CHUNK_TOKENS = 2048  # tokens per chunk in layer_ops (about 10 MB of spike planes per step)
_UNSIGNED = frozenset(s for s in encoders.SCHEMES if s not in encoders.SIGNED)


@dataclass
class LayerOps:
    """NeuroBench synaptic operations of one linear layer over a trace's tokens (totals).

    Attributes:
        name, role: the layer.
        in_features, out_features: its shape.
        steps: calls per token (T for spike schemes, 1 for counts).
        tokens: samples (tokens) in the batch.
        effective: effective synaptic operations, all tokens and steps.
        dense: ``steps * tokens * in_features * out_features``.
        spiking: True when every input was in {-1, 0, 1} (ACs), else MACs.
        nonzero: non-zero input values (all steps), ``slots``: all input values.
        effective_per_token: int64 [tokens] effective operations of each token.
        same_input_as: an earlier layer fed the identical input (its inputs count once in
            the activation sparsity).
        clipped: counts clamped to the window of ``steps`` before encoding.
    """

    name: str
    role: str
    in_features: int
    out_features: int
    steps: int
    tokens: int
    effective: int
    dense: int
    spiking: bool
    nonzero: int
    slots: int
    effective_per_token: np.ndarray = field(repr=False)
    same_input_as: str | None = None
    clipped: int = 0


@dataclass
class NeuroBenchMetrics:
    """NeuroBench workload metrics of a trace (see the module docstring)."""

    scheme: str
    steps: int
    weights: str
    tokens: int
    layers: list[LayerOps]

    def _sum(self, spiking: bool | None) -> int:
        return sum(l.effective for l in self.layers if spiking is None or l.spiking == spiking)

    @property
    def effective_acs(self) -> int:
        """Total effective accumulates (layers whose inputs were all in {-1, 0, 1})."""
        return self._sum(True)

    @property
    def effective_macs(self) -> int:
        """Total effective multiply-accumulates (layers with other input values)."""
        return self._sum(False)

    @property
    def dense(self) -> int:
        return sum(l.dense for l in self.layers)

    @property
    def activation_sparsity(self) -> float:
        """Zero inputs / all inputs over distinct layer inputs, steps and tokens (NeuroBench's formula)."""
        own = [l for l in self.layers if l.same_input_as is None]
        total = sum(l.slots for l in own)
        nz = sum(l.nonzero for l in own)
        return (total - nz) / total if total else 0.0

    @property
    def effective_per_token(self) -> np.ndarray:
        """int64 [tokens]: effective operations (ACs + MACs) of each token, all layers."""
        return np.sum([l.effective_per_token for l in self.layers], axis=0).astype(np.int64)

    def per_sample(self) -> dict[str, float]:
        """NeuroBench's output: ``Effective_MACs``, ``Effective_ACs``, ``Dense`` per sample
        (token) and ``ActivationSparsity``."""
        n = self.tokens
        return {
            "Effective_MACs": self.effective_macs / n if n else 0,
            "Effective_ACs": self.effective_acs / n if n else 0,
            "Dense": self.dense / n if n else 0,
            "ActivationSparsity": self.activation_sparsity,
        }

    def summary(self) -> dict[str, Any]:
        """JSON-able dict: per-token metrics, totals, per-token distribution and per-layer rows."""
        per_tok = self.effective_per_token
        return {
            "scheme": self.scheme,
            "steps": self.steps,
            "weights": self.weights,
            "tokens": self.tokens,
            "per_token": self.per_sample(),
            "totals": {"Effective_MACs": self.effective_macs, "Effective_ACs": self.effective_acs, "Dense": self.dense},
            "effective_ops_per_token": {
                "min": int(per_tok.min()) if per_tok.size else 0,
                "median": float(np.median(per_tok)) if per_tok.size else 0.0,
                "max": int(per_tok.max()) if per_tok.size else 0,
            },
            "clipped": sum(l.clipped for l in self.layers),
            "layers": [
                {
                    "name": l.name, "role": l.role, "in": l.in_features, "out": l.out_features,
                    "kind": "AC" if l.spiking else "MAC", "effective_per_token": l.effective / l.tokens if l.tokens else 0,
                    "dense_per_token": l.dense / l.tokens if l.tokens else 0,
                    "input_sparsity": 1 - l.nonzero / l.slots if l.slots else 1.0,
                    "same_input_as": l.same_input_as,
                }
                for l in self.layers
            ],
        }


def check_scheme(scheme: str) -> str:
    """Return ``scheme`` if it is ``"counts"`` or an encoder scheme, else raise ValueError."""
    if scheme not in NB_SCHEMES:
        raise ValueError(f"unknown scheme {scheme!r}; choose one of {', '.join(NB_SCHEMES)}")
    return scheme


def layer_inputs(counts: Any, scheme: str, T: int | None = None) -> tuple[torch.Tensor, int]:
    """What enters the layer in NeuroBench's view: int tensor [steps, tokens, in] and clipped count.

    ``"counts"``: the counts themselves (one step). A spike scheme: the spike planes of
    ``T`` steps (default: the scheme's budget in :data:`analysis.stats.DEFAULT_BUDGETS`),
    counts clamped to the window first; unsigned schemes carry negative counts as -1 events.
    """
    check_scheme(scheme)
    c = torch.as_tensor(np.asarray(counts)).to(torch.int64)
    if c.dim() != 2:
        raise ValueError(f"counts must be 2-D [tokens, in_features], got shape {tuple(c.shape)}")
    if scheme == "counts":
        return c.unsqueeze(0), 0
    T = default_steps(scheme) if T is None else T
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be a positive integer, got {T!r}")
    lo, hi = encoders.count_range(scheme, int(T))
    if scheme in _UNSIGNED:
        lo = -hi
    clipped = int(((c < lo) | (c > hi)).sum())
    c = c.clamp(lo, hi)
    return spike_train(c, scheme, int(T), "msb", sign_split=scheme in _UNSIGNED), clipped


def default_steps(scheme: str) -> int:
    """Steps per token of ``scheme`` (1 for counts; the analysis budget otherwise)."""
    from analysis.stats import DEFAULT_BUDGETS

    return 1 if check_scheme(scheme) == "counts" else int(DEFAULT_BUDGETS[scheme])


def weight_fanout(weight: Any, weights: str = "int8") -> torch.Tensor:
    """int64 [in_features]: non-zero weights in each input column (the binarised fan-out).

    ``weight``: an nn.Linear, a float tensor [out, in] or an :class:`Int8Weight`;
    ``weights="int8"`` quantizes float weights to W8ASpike INT8 first (zeros where a weight
    rounds to 0), ``"float"`` uses them as they are.
    """
    if weights not in WEIGHT_KINDS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_KINDS)}, got {weights!r}")
    if isinstance(weight, torch.nn.Linear):
        weight = weight.weight
    if isinstance(weight, Int8Weight):
        w = weight.q
    elif isinstance(weight, torch.Tensor):
        w = weight.detach()
        if weights == "int8" and w.is_floating_point():
            w = quantize_int8(w).q
    else:
        raise TypeError(f"weight must be an nn.Linear, a tensor or an Int8Weight, got {type(weight).__name__}")
    if w.dim() != 2:
        raise ValueError(f"weight must be 2-D [out, in], got shape {tuple(w.shape)}")
    return (w != 0).sum(dim=0).to(torch.int64).cpu()


def layer_ops(
    counts: Any,
    fanout: torch.Tensor,
    out_features: int,
    scheme: str,
    T: int | None = None,
    *,
    name: str = "",
    role: str = "",
    same_input_as: str | None = None,
) -> LayerOps:
    """NeuroBench operations of one layer from its counts [tokens, in] and weight fan-out [in].

    Tokens are processed in chunks of ``_CHUNK_TOKENS`` (bounded memory on long traces)."""
    c = np.asarray(counts)
    if c.ndim != 2:
        raise ValueError(f"counts must be 2-D [tokens, in_features], got shape {c.shape}")
    n, in_f = (int(v) for v in c.shape)
    if tuple(fanout.shape) != (in_f,):
        raise ValueError(f"layer {name!r}: fan-out has shape {tuple(fanout.shape)}, expected [{in_f}]")
    fan = fanout.to(torch.float64)
    steps = default_steps(scheme) if T is None or scheme == "counts" else int(T)
    parts, nonzero, clipped, spiking = [], 0, 0, True
    for a in range(0, n, _CHUNK_TOKENS):  # loop over token chunks, not tokens
        x, clip = layer_inputs(c[a : a + _CHUNK_TOKENS], scheme, steps)
        nz = x != 0
        # exact: float64 holds every integer below 2**53; a token's count is <= T * in * out
        parts.append((nz.to(torch.float64) @ fan).sum(dim=0).round().to(torch.int64))
        nonzero += int(nz.sum())
        clipped += clip
        spiking = spiking and bool((x.abs() <= 1).all())
    per_token = torch.cat(parts) if parts else torch.zeros(0, dtype=torch.int64)
    return LayerOps(
        name=name, role=role, in_features=in_f, out_features=int(out_features), steps=steps, tokens=n,
        effective=int(per_token.sum()), dense=steps * n * in_f * int(out_features), spiking=spiking,
        nonzero=nonzero, slots=steps * n * in_f, effective_per_token=per_token.numpy(),
        same_input_as=same_input_as, clipped=clipped,
    )


def _lookup(model: Any) -> Mapping[str, Any]:
    if isinstance(model, torch.nn.Module):
        return {n: m for n, m in model.named_modules() if isinstance(m, torch.nn.Linear)}
    if isinstance(model, Mapping):
        return model
    raise TypeError(f"model must be an nn.Module or a mapping name -> weight, got {type(model).__name__}")


def neurobench_metrics(
    trace: Any,
    model: Any,
    scheme: str,
    T: int | None = None,
    *,
    weights: str = "int8",
    layers: Iterable[str] | None = None,
) -> NeuroBenchMetrics:
    """NeuroBench workload metrics of every layer of ``trace`` (an ``analysis.trace.SpikeTrace``).

    Args:
        model: the traced model (its nn.Linear modules, matched by name) or a mapping
            ``{layer name: nn.Linear | weight tensor | Int8Weight}``.
        scheme: ``"counts"`` or an encoder scheme (what enters each layer; module docstring).
        T: steps of a spike scheme (default: its budget, bitwise-signed 3); counts outside
            the window are clamped (reported as ``clipped``).
        weights: ``"int8"`` (W8ASpike weights, as the simulator) or ``"float"``.
        layers: only these layers (default: all).

    Raises ValueError for unknown schemes, layers without weights or shape mismatches.
    """
    check_scheme(scheme)
    if weights not in WEIGHT_KINDS:
        raise ValueError(f"weights must be one of {', '.join(WEIGHT_KINDS)}, got {weights!r}")
    steps = default_steps(scheme) if T is None or scheme == "counts" else T
    table = _lookup(model)
    names = list(trace.layers) if layers is None else list(layers)
    for name in names:
        if name not in trace.layers:
            raise ValueError(f"layer {name!r} is not in the trace")
        if name not in table:
            raise ValueError(f"no weights for layer {name!r} of the trace")
    fanouts: dict[int, torch.Tensor] = {}  # tied weights (lm_head = embedding) are binarised once
    rows = []
    for name in names:
        info = trace.layer(name)
        w = table[name]
        key = id(w.weight if isinstance(w, torch.nn.Linear) else w)
        if key not in fanouts:
            fanouts[key] = weight_fanout(w, weights)
        fan = fanouts[key]
        if fan.shape[0] != info.in_features:
            raise ValueError(f"weights of layer {name!r} have {fan.shape[0]} input columns, the trace {info.in_features}")
        share = getattr(info, "same_input_as", None)
        rows.append(layer_ops(trace.counts(name), fan, info.out_features, scheme, steps, name=name,
                              role=info.role, same_input_as=share if share in names else None))
    return NeuroBenchMetrics(scheme, int(steps), weights, int(trace.n_tokens), rows)


def metrics_markdown(m: NeuroBenchMetrics) -> str:
    """A short text report of :class:`NeuroBenchMetrics` (per token = per NeuroBench sample)."""
    s = m.summary()
    p = s["per_token"]
    lines = [
        f"NeuroBench v2.3 workload metrics: scheme {m.scheme}, {m.steps} step(s)/token, {m.weights} weights, "
        f"{m.tokens} tokens (one sample = one token)",
        "",
        "| metric | per token | total |",
        "|---|---:|---:|",
        f"| ActivationSparsity | {p['ActivationSparsity']:.4f} | |",
        f"| Effective_ACs | {p['Effective_ACs']:.6g} | {s['totals']['Effective_ACs']} |",
        f"| Effective_MACs | {p['Effective_MACs']:.6g} | {s['totals']['Effective_MACs']} |",
        f"| Dense | {p['Dense']:.6g} | {s['totals']['Dense']} |",
        "",
        f"effective ops per token: min {s['effective_ops_per_token']['min']}, median "
        f"{s['effective_ops_per_token']['median']:.0f}, max {s['effective_ops_per_token']['max']}; "
        f"{sum(1 for l in m.layers if l.spiking)} of {len(m.layers)} layers count as ACs; "
        f"{s['clipped']} counts clipped to the window",
    ]
    return "\n".join(lines)
