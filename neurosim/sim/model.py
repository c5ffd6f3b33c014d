"""Whole-model replay: every layer of a spike trace, streamed layer by layer from the file."""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Any, Iterable, Mapping

import numpy as np
import torch
from tqdm.auto import tqdm

import encoders
from hw_models import Activity

from .batch import LayerInput, replay_layers
from .layer import LayerReplay, _check_common, replay_with
from .settings import ReplaySettings
from .operand import weight_shape


BATCH_BYTES = 1 << 30  # gemm engine: counts and results of the layers replayed between two host reads


@dataclass
class ModelReplay:
    """Result of :func:`replay_trace`.

    Attributes:
        scheme, bit_order: how the spikes were sent.
        layers: per-layer :class:`hw_models.Activity`, in model order.
        total: the sum over layers (:meth:`Activity.combine`).
        steps: window T used for each layer.
        clipped: counts clamped to the window, all layers.
        model_id: the trace's model id.
        outputs: per-layer :class:`~neurosim.sim.layer.LayerReplay` (only with ``keep_outputs``).
    """

    scheme: str
    bit_order: str
    layers: dict[str, Activity]
    total: Activity
    steps: dict[str, int]
    clipped: int
    model_id: str
    outputs: dict[str, LayerReplay] = field(default_factory=dict)

    @property
    def tokens(self) -> int:
        return int(self.total.tokens)

    @property
    def events_per_token(self) -> np.ndarray:
        """int64 [tokens]: spikes delivered to layers per token (a spike fanned out to q, k and v counts 3 times)."""
        return np.asarray(self.total.events_per_token, dtype=np.int64)

    @property
    def events_sent_per_token(self) -> np.ndarray:
        """int64 [tokens]: spikes sent per token, counting once those shared by layers fed the same input."""
        own = [a.events_per_token for a in self.layers.values() if a.same_input_as is None]
        return np.sum(own, axis=0).astype(np.int64) if own else np.zeros(self.tokens, np.int64)

    @property
    def synaptic_ops_per_token(self) -> np.ndarray:
        """int64 [tokens]: synaptic ops (weight additions) per token, all layers."""
        return self.total.synaptic_ops_per_token


def _lookup(weights: Any) -> Mapping[str, Any]:
    if isinstance(weights, torch.nn.Module):
        return {name: mod for name, mod in weights.named_modules() if isinstance(mod, torch.nn.Linear)}
    if isinstance(weights, Mapping):
        return weights
    raise TypeError(f"weights must be a mapping name -> weight or an nn.Module, got {type(weights).__name__}")


def replay_trace(
    trace: Any,
    weights: Mapping[str, Any] | torch.nn.Module,
    scheme: str,
    T: int | None = None,
    bit_order: str = "msb",
    *,
    clip: bool = False,
    sign_split: bool | None = None,
    block_columns: int = 32,
    device: str | torch.device = "cpu",
    engine: str = "events",
    layers: Iterable[str] | None = None,
    keep_outputs: bool = False,
    token_chunk: int | None = None,
    progress: bool = True,
) -> ModelReplay:
    """Replay every layer of ``trace`` (an ``analysis.trace.SpikeTrace``) through its weights.

    Layers are read from the trace one at a time and replayed with
    :func:`~neurosim.sim.layer.replay_layer`; only the Activity records are kept (and the
    outputs if ``keep_outputs``), so memory holds one layer at a time. The ``gemm`` engine
    replays consecutive layers together (:func:`~neurosim.sim.batch.replay_layers`: on CUDA,
    fused kernels and one host read per batch of about 1 GiB of counts and results).

    Args:
        weights: ``{layer name: Int8Weight | float tensor | integer tensor | nn.Linear}`` or
            the model itself (its ``nn.Linear`` modules, matched by name; float weights are
            quantized to INT8 per group of 128, one layer at a time).
        scheme, bit_order: how spikes are sent.
        T: None = each layer's smallest exact window (no clipping; binary/ternary windows
            follow the largest count, which can be long for heavy-tailed layers); an int =
            the same window for every layer (the report uses ``T=3`` with
            ``bitwise-signed``, range [-7, 7]); counts outside it raise unless ``clip``.
        clip: clamp counts to a fixed window; how many is reported per layer and in total.
        sign_split: carry signed counts on two lines for the unsigned schemes; None = True
            for ``binary`` and ``bitwise`` (signed activations need it), False otherwise.
        block_columns, device, engine, token_chunk: see ``replay_layer``.
        layers: replay only these layers (default: all, in model order).
        keep_outputs: keep each layer's :class:`LayerReplay` (accumulators and outputs).
        progress: show a tqdm progress bar over layers.

    Raises:
        ValueError: a layer without weights, weights whose shape differs from the trace's
            layer, unknown layer names, or any ``replay_layer`` error (naming the layer).
        TypeError: ``weights`` of another type.
    """
    _check_common(scheme, bit_order, engine, block_columns)
    if sign_split is None:
        sign_split = encoders.get_scheme(scheme).needs_sign_split
    table = _lookup(weights)
    all_names = list(trace.layers)
    if layers is None:
        names = all_names
    else:
        names = list(layers)
        unknown = [n for n in names if n not in set(all_names)]
        if unknown:
            raise ValueError(f"layers not in the trace: {', '.join(map(repr, unknown[:5]))}")
    if not names:
        raise ValueError("the trace has no layers to replay")
    # Check every layer's weights before replaying anything (fail fast, lose nothing).
    for name in names:
        info = trace.layer(name)
        if name not in table or table[name] is None:
            raise ValueError(f"no weights for layer {name!r} of the trace (weights hold {len(table)} layers)")
        shape = weight_shape(table[name])
        if shape != (info.out_features, info.in_features):
            raise ValueError(
                f"weights of layer {name!r} have shape [{shape[0]}, {shape[1]}] but the trace's layer is "
                f"[{info.out_features}, {info.in_features}] (out_features, in_features)"
            )
    acts: dict[str, Activity] = {}
    steps: dict[str, int] = {}
    outputs: dict[str, LayerReplay] = {}
    dev = torch.device(device)
    settings = ReplaySettings(scheme, T, bit_order, block_columns, dev, clip, sign_split, engine, token_chunk)
    bar = tqdm(total=len(names), desc=f"replay {scheme}", unit="layer", disable=None if progress else True)
    pending: list[LayerInput] = []  # gemm engine: layers replayed together, one host read per batch
    held = 0

    def keep(r: LayerReplay) -> None:
        acts[r.name], steps[r.name] = r.activity, r.steps
        if keep_outputs:
            outputs[r.name] = r
        bar.update(1)

    try:
        for name in names:
            info = trace.layer(name)
            counts, vth = trace.counts(name), trace.vth(name)
            w = table[name]
            if isinstance(w, torch.nn.Linear):
                w = w.weight
            if isinstance(w, torch.Tensor) and w.is_floating_point():
                w = w.detach().to(dev)  # quantize where the replay runs
            same = getattr(info, "same_input_as", None)
            if engine != "gemm":
                keep(replay_with(w, counts, vth, settings, name=name, role=info.role, same_input_as=same))
                continue
            pending.append(LayerInput(w, counts, vth, name, info.role, same))
            held += int(np.prod(np.shape(counts))) * 8 + int(np.shape(counts)[0]) * info.out_features * 12
            if held >= BATCH_BYTES:
                for r in replay_layers(pending, settings):
                    keep(r)
                pending, held = [], 0
        for r in replay_layers(pending, settings) if pending else []:
            keep(r)
    finally:
        bar.close()
    total = Activity.combine(acts.values(), name="total")
    return ModelReplay(
        scheme, bit_order, acts, total, steps, int(total.clipped), str(getattr(trace, "model_id", "")), outputs
    )
