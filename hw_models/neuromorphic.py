"""Price per-layer :class:`Activity` records on a neuromorphic chip: energy (J) and latency (s).

The model (docs/hardware.md has the derivation):

* Mapping: each layer's INT8 weight matrix is tiled over cores, ``i`` inputs x ``o`` outputs
  per core (``i*o*bytes <= synaptic memory``, and the chip's fan-in / neuron limits). An input
  event goes to the ``ceil(out/o)`` cores holding its fan-out (multicast packets); when the
  inputs are split over ``g = ceil(in/i)`` cores, each output's ``g`` partial sums are reduced
  once per token (``out*(g-1)`` messages, times the probability that a group carried a spike).
  The tile minimising packets per token at a design spike rate (1 event per input slot by
  default) is chosen once, like a compiler would.
* Energy per layer:
  compute = synaptic ops x (synop - fetch part) + encoder neuron updates (non-silent input
  slots x steps, + the firing surcharge per event; ASSUMPTION: silent channels are gated off,
  so no spikes cost no dynamic energy) + reduction adds. A record with ``same_input_as``
  (k/v after q, up after gate) shares its input spikes: its encoder neurons, firing
  surcharge and per-spike handshakes are counted once, at the first layer; its packets (the
  multicast to its own cores) and synaptic ops are its own;
  memory = synaptic ops x fetch part + block over-fetch
  (``weight_bytes_touched - synaptic_ops*bytes_per_weight``) x SRAM energy per byte;
  routing = packets x (delivery + mean hops x hop energy) + events x handshake
  + off-chip packets x bits x link energy;
  static = chips x static power x the model's latency per token x tokens, shared over layers
  by their latency.
* Latency per token: per time step, the busiest core's synaptic ops (events at that step,
  load-balanced over the layer's cores) and neuron updates, plus routing hops and the barrier
  sync (multi-chip barrier when the model spans several chips), at least the chip's tick;
  plus a reduction phase. Layers run in sequence, except q/k/v and gate/up of one decoder
  layer, which run in parallel.
* Not priced (as in the report): attention score/value products, norms, SiLU, the V_th
  computation and the embedding; only the nn.Linear layers that receive spikes.
"""
from __future__ import annotations

import math
import re
from dataclasses import dataclass
from typing import Iterable, Sequence

import numpy as np

from ._checks import check_layer_activity, finite_nonneg
from .activity import Activity
from .chips import NeuromorphicChip
from .results import LayerResult, PlatformResult

PJ = 1e-12
PARALLEL_GROUPS: dict[str, str] = {"q": "attn_in", "k": "attn_in", "v": "attn_in", "gate": "mlp_in", "up": "mlp_in"}
_LAYER_RE = re.compile(r"layers\.(\d+)\.")


@dataclass(frozen=True)
class LayerMapping:
    """How one weight matrix is tiled over cores.

    Attributes:
        in_per_core, out_per_core: tile shape (inputs x outputs per core).
        in_groups, out_groups: tiles along inputs and outputs.
    """

    in_per_core: int
    out_per_core: int
    in_groups: int
    out_groups: int

    @property
    def cores(self) -> int:
        return self.in_groups * self.out_groups

    @property
    def packets_per_event(self) -> int:
        """Cores an input spike is multicast to."""
        return self.out_groups

    def reduction_messages_per_token(self, out_features: int) -> int:
        """Partial-sum messages per token to combine ``in_groups`` partial accumulators."""
        return out_features * (self.in_groups - 1)


def map_layer(
    in_features: int, out_features: int, bytes_per_weight: int, chip: NeuromorphicChip, events_per_token: float
) -> LayerMapping:
    """Choose the core tile for a layer that minimises routed packets per token.

    Raises:
        ValueError: a single weight does not fit in a core.
    """
    cap = chip.synaptic_bytes_per_core // bytes_per_weight
    if cap < 1:
        raise ValueError(f"{chip.name}: a {bytes_per_weight}-byte weight does not fit in a core's synaptic memory")
    max_in = min(in_features, chip.max_axons_per_core or in_features, cap)
    max_out = min(out_features, chip.max_neurons_per_core or out_features)
    groups = np.unique(np.round(np.geomspace(1, in_features, num=min(in_features, 96))).astype(np.int64))
    cands = {int(min(max_in, math.ceil(in_features / g))) for g in groups.tolist()}
    cands |= {max_in, max(1, min(max_in, cap // max_out))}
    best: tuple[float, int, LayerMapping] | None = None
    for i in sorted(cands):
        o = min(max_out, cap // i)
        if o < 1:
            continue
        m = LayerMapping(i, o, math.ceil(in_features / i), math.ceil(out_features / o))
        cost = events_per_token * m.packets_per_event + m.reduction_messages_per_token(out_features)
        key = (cost, m.cores)
        if best is None or key < best[:2]:
            best = (cost, m.cores, m)
    assert best is not None  # i = 1 always fits since cap >= 1
    return best[2]


def mean_mesh_hops(tiles: float) -> float:
    """Mean Manhattan distance between two random tiles of a square mesh of ``tiles`` tiles."""
    if tiles <= 1:
        return 0.0
    s = math.sqrt(tiles)
    return 2.0 * (s * s - 1.0) / (3.0 * s)


def parallel_groups(acts: Sequence[Activity]) -> list[list[int]]:
    """Indices of records that run in parallel: q/k/v and gate/up of the same decoder layer."""
    out: list[list[int]] = []
    prev_key: tuple[str, str] | None = None
    for i, a in enumerate(acts):
        g = PARALLEL_GROUPS.get(a.role)
        m = _LAYER_RE.search(a.name)
        key = (g, m.group(1)) if (g is not None and m is not None) else None
        if key is not None and key == prev_key:
            out[-1].append(i)
        else:
            out.append([i])
        prev_key = key
    return out


def _group_active(act: Activity, m: LayerMapping) -> float:
    """Probability that an input group of ``m.in_per_core`` channels has at least one spike in a
    token (independent channels): partial sums of silent groups are not sent."""
    slots = act.input_slots
    if slots <= 0:
        return 0.0
    silent = act.silent_inputs / slots
    return 1.0 - silent ** m.in_per_core


@dataclass
class _LayerPlan:
    act: Activity
    mapping: LayerMapping
    latency_s: float          # per token
    hops: float
    p_off: float
    chip_hops: float


def run_on_chip(
    acts: Iterable[Activity], chip: NeuromorphicChip, design_events_per_slot: float = 1.0
) -> PlatformResult:
    """Energy and latency of per-layer ``acts`` on ``chip`` (see module docstring).

    Args:
        acts: per-layer records (one token set).
        chip: the chip preset.
        design_events_per_slot: spike rate (events per input slot per token) the weights are
            mapped for. The mapping is fixed at compile time, independent of the measured
            activity, so more events can never make the model cheaper.

    Returns:
        :class:`PlatformResult` with per-layer :class:`LayerResult` (J over all tokens,
        latency s/token) and ``devices`` = chips needed to hold all weights as mapped.
    """
    acts = list(acts)
    if not acts:
        raise ValueError("run_on_chip: no Activity records")
    if not isinstance(chip, NeuromorphicChip):
        raise TypeError(f"run_on_chip: expected a NeuromorphicChip, got {type(chip).__name__}")
    for a in acts:
        check_layer_activity(a, "run_on_chip")
        if int(a.payload_bits) > chip.payload_bits:
            can = "binary spikes only" if not chip.payload_bits else f"payloads of at most {chip.payload_bits} bits"
            raise ValueError(f"chip {chip.name!r} carries {can}; layer {a.name!r} sends graded spikes with "
                             f"{a.payload_bits}-bit payloads (scheme {a.scheme!r}): price another scheme or chip")
    tokens = {a.tokens for a in acts}
    if len(tokens) != 1:
        raise ValueError(f"run_on_chip: records cover different token counts {sorted(tokens)}")
    n_tok = tokens.pop()

    finite_nonneg("run_on_chip", "design_events_per_slot", design_events_per_slot)
    mappings = [map_layer(a.in_features, a.out_features, a.bytes_per_weight, chip,
                          design_events_per_slot * a.in_features) for a in acts]
    total_cores = sum(m.cores for m in mappings)
    n_chips = max(1, math.ceil(total_cores / chip.cores))
    multi = n_chips > 1

    plans: list[_LayerPlan] = []
    for a, m in zip(acts, mappings):
        region = min(2 * m.cores, chip.cores)  # this layer + its producer, packed contiguously
        hops = mean_mesh_hops(region / chip.cores_per_tile)
        if multi:
            span = 2.0 * m.cores
            p_off = span / (span + chip.cores)
            k = max(1.0, span / chip.cores)
            chip_hops = max(1.0, mean_mesh_hops(k))
        else:
            p_off, chip_hops = 0.0, 0.0
        # per-step critical path (per token), vectorised over the T steps
        eps = np.asarray(a.events_per_step, dtype=np.float64) / a.tokens
        synops_core = eps * a.out_features / m.cores
        shared = bool(a.same_input_as)  # encoder neurons and spike emission counted at the first layer
        neurons_core = 0.0 if shared else a.active_slots / a.tokens / m.cores
        busy = np.maximum(synops_core * chip.synop_time_s, neurons_core * chip.neuron_update_time_s)
        step = busy + hops * chip.hop_latency_s + chip.step_sync_s
        if multi:
            step = step + chip.multichip_sync_s + (chip.interchip_latency_s * chip_hops if p_off > 0 else 0.0)
        step = np.maximum(step, chip.min_step_s)
        red_msgs = m.reduction_messages_per_token(a.out_features) * _group_active(a, m)
        reduce_t = 0.0
        if red_msgs:
            reduce_t = max(red_msgs / m.cores * chip.synop_time_s + hops * chip.hop_latency_s + chip.step_sync_s,
                           chip.min_step_s)
        plans.append(_LayerPlan(a, m, float(step.sum()) + reduce_t, hops, p_off, chip_hops))

    # model latency: sequential groups, parallel branches counted once
    groups = parallel_groups(acts)
    latency = 0.0
    static_share = [0.0] * len(acts)
    for g in groups:
        lat = [plans[i].latency_s for i in g]
        g_lat = max(lat)
        latency += g_lat
        tot = sum(lat)
        for i, l in zip(g, lat):
            static_share[i] = g_lat * (l / tot if tot > 0 else 1.0 / len(g))
    static_power = n_chips * chip.static_w

    layers: list[LayerResult] = []
    for idx, p in enumerate(plans):
        a, m = p.act, p.mapping
        synops = float(a.synaptic_ops)
        events = float(a.events)
        red = float(m.reduction_messages_per_token(a.out_features)) * _group_active(a, m) * n_tok
        shared = bool(a.same_input_as)
        emitted = 0.0 if shared else events           # spikes emitted by this layer's encoder neurons
        neuron_updates = 0.0 if shared else float(a.active_slots) * a.steps
        needed = synops * a.bytes_per_weight
        overfetch = max(0.0, float(a.weight_bytes_touched) - needed)
        packets = events * m.packets_per_event + red
        syn_compute = (synops * (chip.synop_pj - chip.synop_fetch_pj) + float(a.mac_ops) * chip.mac_extra_pj) * PJ
        neuron = (neuron_updates * chip.neuron_update_pj + emitted * chip.neuron_spike_extra_pj) * PJ
        reduce_add = red * chip.synop_pj * PJ
        fetch = synops * chip.synop_fetch_pj * PJ
        over = overfetch * chip.sram_pj_per_byte * PJ
        deliver = packets * chip.spike_route_pj * PJ
        hop = packets * p.hops * chip.hop_pj * PJ
        handshake = (emitted + red) * chip.handshake_pj * PJ
        offchip_pk = packets * p.p_off
        interchip = offchip_pk * p.chip_hops * chip.spike_bits * chip.interchip_pj_per_bit * PJ
        static = static_power * static_share[idx] * n_tok
        layers.append(LayerResult(
            name=a.name, role=a.role, tokens=n_tok,
            compute_j=syn_compute + neuron + reduce_add,
            memory_j=fetch + over,
            routing_j=deliver + hop + handshake + interchip,
            static_j=static,
            other_j=0.0,
            latency_s=p.latency_s,
            details={
                "synaptic_j": syn_compute, "neuron_j": neuron, "reduction_j": reduce_add,
                "fetch_j": fetch, "overfetch_j": over, "overfetch_bytes": overfetch,
                "deliver_j": deliver, "hop_j": hop, "handshake_j": handshake, "interchip_j": interchip,
                "packets": packets, "offchip_packets": offchip_pk, "mean_hops": p.hops,
                "cores": float(m.cores), "in_per_core": float(m.in_per_core), "out_per_core": float(m.out_per_core),
                "reduction_messages": red,
            },
        ))
    weight_bytes = float(sum(a.in_features * a.out_features * a.bytes_per_weight for a in acts))
    notes = [
        f"{chip.name}: {total_cores} cores on {n_chips} chip(s) ({chip.cores} cores, "
        f"{chip.synaptic_bytes_per_core // 1024} KB synaptic memory per core)",
        "only the spiking nn.Linear layers are priced (attention products, norms, SiLU, V_th and embeddings are not)",
        "latency assumes one token at a time through all layers (no pipelining across tokens)",
    ]
    if multi:
        notes.append(f"model spans {n_chips} chips: per-step multi-chip barrier {chip.multichip_sync_s:g} s, "
                     f"off-chip spikes {chip.spike_bits} bits x {chip.interchip_pj_per_bit:g} pJ/bit per chip hop")
    return PlatformResult(
        platform=chip.name, kind="neuromorphic", tokens=n_tok, layers=layers, latency_s=latency,
        devices=n_chips, mode="event", notes=notes,
        details={"cores": float(total_cores), "chips": float(n_chips), "static_w": static_power,
                 "weight_bytes": weight_bytes,
                 "chips_by_capacity": float(chip.chips_for_bytes(weight_bytes))},
    )


def interchip_cost_per_spike_j(chip: NeuromorphicChip, chip_hops: float = 1.0) -> float:
    """Energy to move one spike message ``chip_hops`` chip-to-chip links (J)."""
    finite_nonneg("interchip_cost_per_spike_j", "chip_hops", chip_hops)
    return chip.spike_bits * chip.interchip_pj_per_bit * chip_hops * PJ
