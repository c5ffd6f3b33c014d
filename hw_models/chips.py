"""Neuromorphic chip presets: energy per synaptic op / routed spike / neuron update, static power.

Every number carries its source, in a comment beside it and in the preset's ``sources`` dict
(shown by :func:`describe_chip`). Where a figure is not public we say so and state the
assumption; those entries start with ``ASSUMPTION`` or ``DERIVED`` (arithmetic on published
figures, shown) or ``ESTIMATE`` (from the op-energy tables of :mod:`hw_models.op_energy`).

Units: energies in pJ, power in W, times in s, memory in bytes.

Presets (see docs/hardware.md for the full discussion):

* ``loihi``: M. Davies et al., "Loihi: A Neuromorphic Manycore Processor with On-Chip
  Learning", IEEE Micro 38(1), 2018, Table 2 ("pre-silicon SDF and SPICE simulations,
  consistent with early post-silicon characterization", 0.75 V, 14 nm). Static power from
  E. P. Frady et al., "Neuromorphic Nearest-Neighbor Search Using Intel's Pohoiki Springs",
  NICE 2020 (3.34 W static over 32 chips).
* ``loihi2``: Intel, "Taking Neuromorphic Computing to the Next Level with Loihi 2",
  technology brief, 2021 (128 cores, 1 M neurons, 120 M synapses, 31 mm2, Intel 4) and the
  Hala Point announcement (Intel newsroom, April 2024: 1,152 Loihi 2 chips, 140,544 cores,
  max 2,600 W, 380e12 synaptic ops/s, 240e12 neuron ops/s). Intel has not published
  per-op energies: ours are DERIVED upper bounds (max power / peak op rate).
* ``truenorth``: P. A. Merolla et al., "A million spiking-neuron integrated circuit with a
  scalable communication network and interface", Science 345(6197), 2014 (4,096 cores,
  256x256 binary crossbar per core, 28 nm; 72 mW at 20 Hz mean rate and 128 active synapses
  per neuron = 26 pJ per synaptic event; 46 GSOPS/W real-time, up to 400 GSOPS/W).
* ``spinnaker2``: S. Hoeppner et al., "The SpiNNaker 2 Processing Element Architecture for
  Hybrid Digital Neuromorphic Computing", arXiv:2103.08392, 2021 (22 nm FDSOI, ARM Cortex-M4F
  PEs with 128 KB SRAM each and an 8-bit MAC array) and C. Mayr, S. Hoeppner, S. Furber,
  arXiv:1911.02385, 2019. No per-event energy was found in the sources checked: the synaptic
  op is an ESTIMATE from the op tables at 22 nm.
* ``generic_async``: a chip built from the op-energy tables by :func:`generic_async`; every
  parameter is the caller's to set.
"""
from __future__ import annotations

import json
import math
import os
from dataclasses import asdict, dataclass, field, fields, replace
from typing import Any, Mapping

from ._checks import dataclass_kwargs, finite_nonneg, positive, positive_int
from .op_energy import KB, table_for_node

# Fields that hold non-negative physical quantities (pJ, W, s).
_FLOAT_FIELDS: tuple[str, ...] = (
    "node_nm", "synop_pj", "synop_fetch_pj", "neuron_update_pj", "neuron_spike_extra_pj",
    "spike_route_pj", "hop_pj", "handshake_pj", "interchip_pj_per_bit", "static_w",
    "sram_pj_per_byte", "synop_time_s", "neuron_update_time_s", "hop_latency_s",
    "step_sync_s", "multichip_sync_s", "min_step_s", "interchip_latency_s",
)
_INT_FIELDS: tuple[str, ...] = ("cores", "synaptic_bytes_per_core", "cores_per_tile", "spike_bits")
_LIMIT_FIELDS: tuple[str, ...] = ("max_axons_per_core", "max_neurons_per_core")


@dataclass(frozen=True)
class NeuromorphicChip:
    """One neuromorphic chip: per-event energies, static power, capacity and timing.

    Attributes:
        name: preset name.
        node_nm: process node (nm).
        cores: neuromorphic cores per chip.
        synaptic_bytes_per_core: synaptic (weight) memory per core (bytes).
        synop_pj: energy of one synaptic op: one weight added into one accumulator,
            including the core's own fetch of that synapse (pJ).
        synop_fetch_pj: the memory part of ``synop_pj`` (weight read + accumulator
            read-modify-write) where the source splits it; 0 = not split (all counted as compute).
        neuron_update_pj: one neuron (compartment) update in one time step (pJ).
        neuron_spike_extra_pj: extra energy of an update that fires a spike (pJ).
        spike_route_pj: delivering one spike packet within a tile / core (pJ).
        hop_pj: one router hop of the on-chip mesh (pJ).
        handshake_pj: asynchronous handshake / control overhead per event not already inside
            the figures above (pJ).
        interchip_pj_per_bit: chip-to-chip link energy (pJ/bit).
        spike_bits: bits of one spike message on a chip-to-chip link.
        static_w: static (leakage) power of one chip (W).
        sram_pj_per_byte: reading one byte of synaptic SRAM that no event needed (block
            over-fetch), pJ/B.
        synop_time_s: time per synaptic op in one core (s).
        neuron_update_time_s: time per neuron update in one core (s).
        hop_latency_s: latency of one mesh hop (s).
        step_sync_s: barrier synchronisation at the end of each time step, one chip (s).
        multichip_sync_s: barrier per time step when the model spans several chips (s).
        min_step_s: fixed minimum duration of a time step (a tick), 0 if free-running (s).
        interchip_latency_s: extra latency of one chip-to-chip crossing (s).
        cores_per_tile: cores that share a router (no mesh hop between them).
        max_axons_per_core: input (fan-in) limit per core, 0 = memory-limited only.
        max_neurons_per_core: output limit per core, 0 = memory-limited only.
        payload_bits: largest integer payload a spike can carry (graded spikes); 0 = binary
            spikes only (such a chip refuses graded-spike activity).
        mac_extra_pj: extra energy of a synaptic op that multiplies a graded payload by the
            weight instead of adding the weight (pJ).
        sources: field name -> citation, or the assumption made.
    """

    name: str
    node_nm: float
    cores: int
    synaptic_bytes_per_core: int
    synop_pj: float
    synop_fetch_pj: float
    neuron_update_pj: float
    neuron_spike_extra_pj: float
    spike_route_pj: float
    hop_pj: float
    handshake_pj: float
    interchip_pj_per_bit: float
    spike_bits: int
    static_w: float
    sram_pj_per_byte: float
    synop_time_s: float
    neuron_update_time_s: float
    hop_latency_s: float
    step_sync_s: float
    multichip_sync_s: float
    min_step_s: float
    interchip_latency_s: float
    cores_per_tile: int = 1
    max_axons_per_core: int = 0
    max_neurons_per_core: int = 0
    payload_bits: int = 0
    mac_extra_pj: float = 0.0
    sources: Mapping[str, str] = field(default_factory=dict)

    def __post_init__(self) -> None:
        owner = f"NeuromorphicChip {self.name!r}"
        if not isinstance(self.name, str) or not self.name.strip():
            raise ValueError("NeuromorphicChip: field 'name' must be a non-empty string")
        for name in _FLOAT_FIELDS:
            finite_nonneg(owner, name, getattr(self, name))
        positive(owner, "node_nm", self.node_nm)
        positive(owner, "synop_pj", self.synop_pj)
        finite_nonneg(owner, "mac_extra_pj", self.mac_extra_pj)
        if isinstance(self.payload_bits, bool) or not isinstance(self.payload_bits, int) or not 0 <= self.payload_bits <= 32:
            raise ValueError(f"{owner}: payload_bits must be an integer in [0, 32], got {self.payload_bits!r}")
        for name in _INT_FIELDS:
            positive_int(owner, name, getattr(self, name))
        for name in _LIMIT_FIELDS:
            v = getattr(self, name)
            if isinstance(v, bool) or not isinstance(v, int) or v < 0:
                raise ValueError(f"{owner}: field {name!r} must be an integer >= 0 (0 = unlimited), got {v!r}")
        if self.synop_fetch_pj > self.synop_pj:
            raise ValueError(
                f"{owner}: synop_fetch_pj ({self.synop_fetch_pj}) cannot exceed synop_pj ({self.synop_pj})"
            )
        if self.cores_per_tile > self.cores:
            raise ValueError(f"{owner}: cores_per_tile ({self.cores_per_tile}) exceeds cores ({self.cores})")
        if not isinstance(self.sources, Mapping) or not all(
            isinstance(k, str) and isinstance(v, str) for k, v in self.sources.items()
        ):
            raise TypeError(f"{owner}: field 'sources' must map field names to strings")
        object.__setattr__(self, "sources", dict(self.sources))

    @property
    def synaptic_bytes_per_chip(self) -> int:
        """Synaptic memory of the whole chip (bytes)."""
        return self.cores * self.synaptic_bytes_per_core

    def chips_for_bytes(self, weight_bytes: float) -> int:
        """Chips needed to hold ``weight_bytes`` of synaptic memory (ignoring mapping waste)."""
        finite_nonneg("chips_for_bytes", "weight_bytes", weight_bytes)
        return max(1, math.ceil(weight_bytes / self.synaptic_bytes_per_chip))

    def to_dict(self) -> dict[str, Any]:
        """Plain dict, loadable by :func:`chip_from_dict` (JSON-able)."""
        d = asdict(self)
        d["sources"] = dict(self.sources)
        return d

    def to_json(self) -> str:
        return json.dumps(self.to_dict(), indent=2, sort_keys=True)

    def with_changes(self, **changes: Any) -> "NeuromorphicChip":
        """A validated copy with some fields replaced (e.g. ``static_w=0.2``)."""
        names = {f.name for f in fields(self)}
        bad = sorted(set(changes) - names)
        if bad:
            raise ValueError(f"NeuromorphicChip.with_changes: unknown field(s): {', '.join(bad)}")
        src = dict(self.sources)
        for k in changes:
            if k != "sources":
                src[k] = "user override"
        if "sources" not in changes:
            changes["sources"] = src
        return replace(self, **changes)


def chip_from_dict(data: Mapping[str, Any]) -> NeuromorphicChip:
    """Build and validate a chip from a dict (missing or unknown fields -> ValueError)."""
    kwargs = dataclass_kwargs(NeuromorphicChip, data, "chip_from_dict")
    return NeuromorphicChip(**kwargs)


def chip_from_json(source: str | os.PathLike) -> NeuromorphicChip:
    """Build a chip from a JSON file path or a JSON string."""
    text = str(source)
    if not text.lstrip().startswith("{"):
        with open(source, encoding="utf-8") as fh:
            text = fh.read()
    try:
        data = json.loads(text)
    except json.JSONDecodeError as exc:
        raise ValueError(f"chip_from_json: invalid JSON ({exc})") from None
    return chip_from_dict(data)


def _sram_byte_estimate(node_nm: float, bytes_per_core: int) -> float:
    """ESTIMATE: SRAM read energy per byte at ``node_nm`` for a memory of that size (pJ/B)."""
    return table_for_node(node_nm).sram_pj_per_byte(bytes_per_core)


# ----------------------------------------------------------------------------------------
# Intel Loihi (2018), 14 nm
# ----------------------------------------------------------------------------------------
_LOIHI_SRC = "Davies et al., IEEE Micro 38(1) 2018, Table 2 (0.75 V, pre-silicon SDF/SPICE)"
LOIHI = NeuromorphicChip(
    name="loihi",
    node_nm=14.0,                  # Davies 2018 p.95: Intel 14 nm FinFET
    cores=128,                     # Davies 2018 p.86: 128 neuromorphic cores
    synaptic_bytes_per_core=128 * KB,  # Davies 2018 p.89 (constraint 2) / Davies 2021: 128 KB synaptic state per core
    synop_pj=23.6,                 # Davies 2018 Table 2: energy per synaptic spike op (min) 23.6 pJ
    synop_fetch_pj=0.0,            # not split by the source: all counted as compute
    neuron_update_pj=52.0,         # Davies 2018 Table 2: neuron update inactive 52 pJ
    neuron_spike_extra_pj=29.0,    # Davies 2018 Table 2: active update 81 pJ = 52 + 29
    spike_route_pj=1.7,            # Davies 2018 Table 2: within-tile spike energy 1.7 pJ
    hop_pj=3.5,                    # Davies 2018 Table 2: per tile hop 3.0 (E-W) / 4.0 (N-S) pJ; mean 3.5
    handshake_pj=0.0,              # asynchronous design: handshake energy is inside the figures above
    interchip_pj_per_bit=10.0,     # ASSUMPTION: no published chip-to-chip energy; 10 pJ/bit board-level link
    spike_bits=32,                 # Davies et al., Proc. IEEE 109(5) 2021: spikes are 32-bit messages
    static_w=0.104,                # DERIVED: Frady et al. NICE 2020, Table 1: static 3.34 W over 32 chips
    sram_pj_per_byte=_sram_byte_estimate(14.0, 128 * KB),  # ESTIMATE: op table scaled to 14 nm, 128 KB
    synop_time_s=3.5e-9,           # Davies 2018 Table 2: time per synaptic spike op (max) 3.5 ns
    neuron_update_time_s=5.3e-9,   # Davies 2018 Table 2: neuron update inactive 5.3 ns (active 8.4 ns)
    hop_latency_s=5.3e-9,          # Davies 2018 Table 2: tile hop latency 4.1 (E-W) / 6.5 (N-S) ns; mean
    step_sync_s=465e-9,            # Davies 2018 Table 2: mesh-wide barrier sync 113-465 ns (1-32 tiles)
    multichip_sync_s=14.3e-6,      # Frady et al. 2020 s4.3: barrier per 256-chip column 14.3 us (pessimistic for fewer chips)
    min_step_s=0.0,                # unthrottled mode (Davies et al. 2021): steps run as fast as traffic allows
    interchip_latency_s=0.0,       # not published; the multi-chip barrier above dominates
    cores_per_tile=4,              # DERIVED: 128 cores / 32 tiles (Table 2 barrier range 1-32 tiles)
    max_axons_per_core=4096,       # Davies 2018 p.89 constraint 4: N_axin <= 4,096
    max_neurons_per_core=1024,     # Davies 2018 p.89 constraint 1: 1,024 compartments per core
    sources={
        "payload_bits": "Davies et al., IEEE Micro 2018: binary spike messages (no payload): 0",
        "mac_extra_pj": "0: no graded payloads to multiply",
        "node_nm": "Davies 2018 p.95: Intel 14 nm FinFET",
        "cores": "Davies 2018 p.86: 128 neuromorphic cores",
        "synaptic_bytes_per_core": "Davies 2018 p.89 / Davies et al. Proc. IEEE 2021: 128 KB synaptic state per core",
        "synop_pj": _LOIHI_SRC + ": energy per synaptic spike op (min) 23.6 pJ",
        "synop_fetch_pj": "not split by the source (0: all counted as compute)",
        "neuron_update_pj": _LOIHI_SRC + ": neuron update inactive 52 pJ",
        "neuron_spike_extra_pj": _LOIHI_SRC + ": active 81 pJ - inactive 52 pJ",
        "spike_route_pj": _LOIHI_SRC + ": within-tile spike energy 1.7 pJ",
        "hop_pj": _LOIHI_SRC + ": tile hop 3.0 pJ (E-W) / 4.0 pJ (N-S), mean 3.5",
        "handshake_pj": "asynchronous bundled-data design: included in the per-op figures",
        "interchip_pj_per_bit": "ASSUMPTION: 10 pJ/bit; no chip-to-chip energy published",
        "spike_bits": "Davies et al., Proc. IEEE 109(5) 2021: 32-bit spike messages",
        "static_w": "DERIVED: Frady et al., NICE 2020, Table 1: static 3.34 W / 32 chips = 104 mW (voltage not stated)",
        "sram_pj_per_byte": "ESTIMATE: op table scaled to 14 nm (hw_models.op_energy.table_for_node), 128 KB SRAM",
        "synop_time_s": _LOIHI_SRC + ": time per synaptic spike op (max) 3.5 ns",
        "neuron_update_time_s": _LOIHI_SRC + ": neuron update inactive 5.3 ns",
        "hop_latency_s": _LOIHI_SRC + ": tile hop 4.1 ns (E-W) / 6.5 ns (N-S), mean",
        "step_sync_s": _LOIHI_SRC + ": mesh-wide barrier sync 113-465 ns (1-32 tiles); 465 ns",
        "multichip_sync_s": "Frady et al. 2020 s4.3: 14.3 us barrier per 256-chip column (pessimistic for small systems)",
        "min_step_s": "unthrottled: no fixed tick (Davies et al. 2021)",
        "interchip_latency_s": "not published; folded into multichip_sync_s",
        "cores_per_tile": "DERIVED: 128 cores / 32 tiles",
        "max_axons_per_core": "Davies 2018 p.89 constraint 4 (N_axin 4,096)",
        "max_neurons_per_core": "Davies 2018 p.89 constraint 1 (1,024 compartments)",
    },
)

# ----------------------------------------------------------------------------------------
# Intel Loihi 2 (2021), Intel 4
# ----------------------------------------------------------------------------------------
# Hala Point (Intel newsroom, 17 April 2024): 1,152 Loihi 2 chips, 140,544 cores, max 2,600 W,
# 380e12 8-bit synaptic ops/s and 240e12 neuron ops/s at peak.
_HALA_POWER_W = 2600.0          # Intel Hala Point announcement 2024: maximum system power 2,600 W
_HALA_SYNOPS_PER_S = 380e12     # Intel Hala Point 2024: over 380 trillion 8-bit synapse ops per second
_HALA_NEURON_OPS_PER_S = 240e12  # Intel Hala Point 2024: over 240 trillion neuron ops per second
_HALA_CORES = 140_544           # Intel Hala Point 2024: 140,544 neuromorphic cores
_HALA_CHIPS = 1152              # Intel Hala Point 2024: 1,152 Loihi 2 chips

LOIHI2 = NeuromorphicChip(
    name="loihi2",
    node_nm=7.0,                   # Intel 4 (7 nm class); op tables at 7 nm used for estimates
    cores=128,                     # Intel Loihi 2 technology brief 2021: 128 neuromorphic cores
    synaptic_bytes_per_core=128 * KB,  # ASSUMPTION: 128 KB/core (press: 128 KB flexibly partitioned SRAM; ~120 M 1-bit synapses/128 cores)
    synop_pj=_HALA_POWER_W / _HALA_SYNOPS_PER_S * 1e12,  # DERIVED upper bound: 2600 W / 380e12 = 6.84 pJ
    synop_fetch_pj=0.0,            # not split
    neuron_update_pj=_HALA_POWER_W / _HALA_NEURON_OPS_PER_S * 1e12,  # DERIVED upper bound: 2600 W / 240e12 = 10.8 pJ
    neuron_spike_extra_pj=0.0,     # not published
    spike_route_pj=1.7,            # ASSUMPTION: Loihi (14 nm) within-tile value as an upper bound
    hop_pj=3.5,                    # ASSUMPTION: Loihi (14 nm) hop value as an upper bound
    handshake_pj=0.0,              # asynchronous design: inside the derived per-op figures
    interchip_pj_per_bit=10.0,     # ASSUMPTION: 10 pJ/bit board-level link
    spike_bits=32,                 # ASSUMPTION: as Loihi (graded spikes can carry up to 32-bit payloads)
    static_w=0.104 * 31.0 / 60.0,  # ASSUMPTION: Loihi leakage scaled by die area 31/60 mm2 = 54 mW
    sram_pj_per_byte=_sram_byte_estimate(7.0, 128 * KB),  # ESTIMATE: 7 nm op table, 128 KB
    synop_time_s=_HALA_CORES / _HALA_SYNOPS_PER_S,  # DERIVED: 140,544 cores / 380e12 ops/s = 0.37 ns per op per core
    neuron_update_time_s=_HALA_CORES / _HALA_NEURON_OPS_PER_S,  # DERIVED: 0.585 ns per update per core
    hop_latency_s=5.3e-9,          # ASSUMPTION: Loihi value
    step_sync_s=465e-9,            # ASSUMPTION: Loihi value
    multichip_sync_s=14.3e-6,      # ASSUMPTION: Loihi/Pohoiki Springs value
    min_step_s=0.0,
    interchip_latency_s=0.0,
    cores_per_tile=1,              # ASSUMPTION: not published; every core its own router stop
    max_axons_per_core=0,          # not published
    max_neurons_per_core=8192,     # DERIVED: 1 M neurons / 128 cores (tech brief 2021)
    payload_bits=32,               # Intel Loihi 2 technology brief 2021: graded spikes with integer payloads up to 32 bits
    mac_extra_pj=table_for_node(7.0).int8_mult,  # ESTIMATE: payload x weight adds an INT8 multiply (7 nm op table, 0.07 pJ)
    sources={
        "payload_bits": "Intel Loihi 2 technology brief 2021: graded spikes, integer payloads up to 32 bits",
        "mac_extra_pj": "ESTIMATE: INT8 multiply of the 7 nm op table (Jouppi et al. ISCA 2021), 0.07 pJ",
        "node_nm": "Intel Loihi 2 technology brief 2021: Intel 4 process (7 nm class)",
        "cores": "Intel Loihi 2 technology brief 2021: 128 neuromorphic cores",
        "synaptic_bytes_per_core": ("ASSUMPTION: 128 KB per core; press coverage of the brief: 128 KB flexibly "
                                    "partitioned SRAM per core; consistent with 120 M 1-bit synapses / 128 cores"),
        "synop_pj": "DERIVED upper bound: Hala Point (Intel 2024) max 2,600 W / 380e12 synaptic ops/s = 6.84 pJ",
        "synop_fetch_pj": "not split",
        "neuron_update_pj": "DERIVED upper bound: 2,600 W / 240e12 neuron ops/s = 10.8 pJ",
        "neuron_spike_extra_pj": "not published (0)",
        "spike_route_pj": "ASSUMPTION: Loihi 14 nm value 1.7 pJ (upper bound)",
        "hop_pj": "ASSUMPTION: Loihi 14 nm value 3.5 pJ (upper bound)",
        "handshake_pj": "inside the derived per-op figures",
        "interchip_pj_per_bit": "ASSUMPTION: 10 pJ/bit",
        "spike_bits": "ASSUMPTION: 32-bit messages as Loihi",
        "static_w": "ASSUMPTION: Loihi 104 mW x die area 31/60 = 54 mW (not published)",
        "sram_pj_per_byte": "ESTIMATE: 7 nm op table (Jouppi 2021), 128 KB SRAM",
        "synop_time_s": "DERIVED: Hala Point 140,544 cores / 380e12 ops/s = 0.37 ns",
        "neuron_update_time_s": "DERIVED: 140,544 cores / 240e12 ops/s = 0.59 ns",
        "hop_latency_s": "ASSUMPTION: Loihi value 5.3 ns",
        "step_sync_s": "ASSUMPTION: Loihi value 465 ns",
        "multichip_sync_s": "ASSUMPTION: Loihi Pohoiki Springs value 14.3 us",
        "min_step_s": "free-running",
        "interchip_latency_s": "not published; folded into multichip_sync_s",
        "cores_per_tile": "ASSUMPTION: 1",
        "max_axons_per_core": "not published (0 = memory-limited)",
        "max_neurons_per_core": "DERIVED: 1 M neurons / 128 cores = 8,192",
    },
)

# ----------------------------------------------------------------------------------------
# IBM TrueNorth (2014), 28 nm
# ----------------------------------------------------------------------------------------
_TN_EVENT_PJ_REALTIME = 26.0    # Merolla 2014: 72 mW at 20 Hz, 128 active synapses -> 26 pJ per synaptic event
_TN_POWER_W = 0.072             # Merolla 2014: total power 72 mW at that operating point (0.775 V)
_TN_BEST_GSOPS_PER_W = 400.0    # Merolla 2014 / Cassidy 2014: up to 400 GSOPS/W (46 GSOPS/W real-time)
_TN_DYN_PJ = 1e3 / _TN_BEST_GSOPS_PER_W  # DERIVED: 1 / 400 GSOPS/W = 2.5 pJ per op (includes some leakage)

TRUENORTH = NeuromorphicChip(
    name="truenorth",
    node_nm=28.0,                  # Merolla 2014: Samsung 28 nm, 5.4 B transistors, 4.3 cm2
    cores=4096,                    # Merolla 2014: 4,096 neurosynaptic cores
    synaptic_bytes_per_core=256 * 256 // 8,  # Merolla 2014: 256x256 binary crossbar = 8 KB per core
    synop_pj=_TN_DYN_PJ,           # DERIVED: 1/400 GSOPS/W = 2.5 pJ (dynamic, all-in: routing and neurons inside)
    synop_fetch_pj=0.0,
    neuron_update_pj=0.0,          # inside the aggregate per-op figure
    neuron_spike_extra_pj=0.0,
    spike_route_pj=0.0,            # inside the aggregate per-op figure
    hop_pj=0.0,                    # inside the aggregate per-op figure
    handshake_pj=0.0,
    interchip_pj_per_bit=10.0,     # ASSUMPTION: 10 pJ/bit
    spike_bits=32,                 # ASSUMPTION
    static_w=_TN_POWER_W - _TN_POWER_W / _TN_EVENT_PJ_REALTIME * _TN_DYN_PJ,  # DERIVED: 72 mW - 2.77e9 ev/s x 2.5 pJ = 65 mW
    sram_pj_per_byte=_sram_byte_estimate(28.0, 8 * KB),  # ESTIMATE: 28 nm op table, 8 KB crossbar
    synop_time_s=1e-3 / (256 * 256),  # DERIVED: a full 256x256 crossbar within one 1 ms tick = 15 ns
    neuron_update_time_s=0.0,      # inside the tick
    hop_latency_s=0.0,             # inside the tick
    step_sync_s=0.0,               # global tick, see min_step_s
    multichip_sync_s=0.0,          # global tick across chips
    min_step_s=1e-3,               # Merolla 2014: real-time operation with a 1 kHz tick (1 ms per step)
    interchip_latency_s=0.0,       # inside the tick
    cores_per_tile=1,
    max_axons_per_core=256,        # Merolla 2014: 256 axons per core
    max_neurons_per_core=256,      # Merolla 2014: 256 neurons per core
    sources={
        "payload_bits": "Merolla et al., Science 2014: binary spikes only: 0",
        "mac_extra_pj": "0: no graded payloads to multiply",
        "node_nm": "Merolla et al., Science 345(6197) 2014: Samsung 28 nm",
        "cores": "Merolla 2014: 4,096 neurosynaptic cores, 1 M neurons, 256 M synapses",
        "synaptic_bytes_per_core": ("Merolla 2014: 256x256 binary synapse crossbar per core = 8 KB; we count its "
                                    "capacity in INT8-weight bytes (8 bit-planes per weight), OPTIMISTIC: "
                                    "arbitrary INT8 matrices do not map natively (4 axon types per neuron)"),
        "synop_pj": ("DERIVED: 1 / 400 GSOPS/W = 2.5 pJ per synaptic op, the best published efficiency "
                     "(Merolla 2014; Cassidy et al. SC 2014); dynamic energy incl. routing and neurons"),
        "synop_fetch_pj": "not split",
        "neuron_update_pj": "inside the aggregate per-op figure (0)",
        "neuron_spike_extra_pj": "inside the aggregate per-op figure (0)",
        "spike_route_pj": "inside the aggregate per-op figure (0)",
        "hop_pj": "inside the aggregate per-op figure (0)",
        "handshake_pj": "inside the aggregate per-op figure (0)",
        "interchip_pj_per_bit": "ASSUMPTION: 10 pJ/bit",
        "spike_bits": "ASSUMPTION: 32 bits",
        "static_w": ("DERIVED: Merolla 2014, 72 mW at 26 pJ/event (2.77e9 events/s); minus 2.77e9 x 2.5 pJ dynamic "
                     "= 65 mW static/tick overhead"),
        "sram_pj_per_byte": "ESTIMATE: op table scaled to 28 nm, 8 KB",
        "synop_time_s": "DERIVED: a full 256x256 crossbar per 1 ms tick = 15 ns per synaptic op",
        "neuron_update_time_s": "inside the 1 ms tick",
        "hop_latency_s": "inside the 1 ms tick",
        "step_sync_s": "global tick (see min_step_s)",
        "multichip_sync_s": "global tick",
        "min_step_s": "Merolla 2014: real-time 1 kHz tick (1 ms per step); faster-than-real-time not modelled",
        "interchip_latency_s": "inside the tick",
        "cores_per_tile": "1 (every core has a router)",
        "max_axons_per_core": "Merolla 2014: 256 axons per core",
        "max_neurons_per_core": "Merolla 2014: 256 neurons per core",
    },
)

# ----------------------------------------------------------------------------------------
# SpiNNaker 2 (2021-2024), 22 nm FDSOI
# ----------------------------------------------------------------------------------------
_SP2_TABLE = table_for_node(22.0)  # ESTIMATE: op table scaled to 22 nm
_SP2_SRAM = 128 * KB               # Hoeppner et al. arXiv:2103.08392 (2021): 128 KB SRAM per PE
_SP2_FETCH = _SP2_TABLE.sram_pj_per_byte(_SP2_SRAM)  # ESTIMATE: one INT8 weight byte from 128 KB SRAM
_SP2_CLOCK_HZ = 200e6              # ASSUMPTION: PE clock 200 MHz (DVFS operating points: see Hoeppner et al. 2021)
_SP2_MACS_PER_CYCLE = 64           # Hoeppner et al. 2021: 16x4 8-bit MAC array per PE (ASSUMPTION: used at full rate)

SPINNAKER2 = NeuromorphicChip(
    name="spinnaker2",
    node_nm=22.0,                  # Hoeppner et al. 2021: GlobalFoundries 22 nm FDSOI
    cores=152,                     # Hoeppner et al. 2021 / Gonzalez et al. arXiv:2401.04491 (2024): 152 PEs per chip
    synaptic_bytes_per_core=_SP2_SRAM,  # Hoeppner 2021: 128 KB SRAM per PE (OPTIMISTIC: all of it for weights)
    synop_pj=_SP2_TABLE.int8_mac + _SP2_FETCH,  # ESTIMATE: INT8 MAC + 1-byte SRAM read at 22 nm
    synop_fetch_pj=_SP2_FETCH,     # ESTIMATE: the SRAM read part
    neuron_update_pj=50.0,         # ASSUMPTION: ~20 ARM M4F instructions per LIF update at ~2.5 pJ (not published)
    neuron_spike_extra_pj=0.0,
    spike_route_pj=1.7,            # ASSUMPTION: Loihi 14 nm within-tile value (SpiNNaker 2 NoC energy not found)
    hop_pj=3.5,                    # ASSUMPTION: Loihi 14 nm hop value
    handshake_pj=0.0,              # clocked (GALS) design: inside the per-op figures
    interchip_pj_per_bit=10.0,     # ASSUMPTION: 10 pJ/bit
    spike_bits=40,                 # ASSUMPTION: SpiNNaker 1 multicast packet without payload is 40 bits (Furber et al. 2014)
    static_w=0.1,                  # ASSUMPTION: 0.1 W per chip (not published in the sources checked)
    sram_pj_per_byte=_SP2_FETCH,   # ESTIMATE
    synop_time_s=1.0 / (_SP2_MACS_PER_CYCLE * _SP2_CLOCK_HZ),  # ASSUMPTION: 64 MAC/cycle at 200 MHz = 78 ps
    neuron_update_time_s=20.0 / _SP2_CLOCK_HZ,  # ASSUMPTION: 20 cycles at 200 MHz = 100 ns
    hop_latency_s=5.0e-9,          # ASSUMPTION: one router cycle at 200 MHz
    step_sync_s=1e-6,              # ASSUMPTION: 1 us software barrier per step
    multichip_sync_s=10e-6,        # ASSUMPTION: 10 us per step across chips
    min_step_s=0.0,                # ASSUMPTION: as fast as possible (SpiNNaker usually runs 1 ms real-time steps)
    interchip_latency_s=0.0,
    cores_per_tile=4,              # Hoeppner et al. 2021: quad-PE (QPE) shares a router
    max_axons_per_core=0,
    max_neurons_per_core=0,
    payload_bits=32,               # Furber et al., Proc. IEEE 2014: multicast packets carry an optional 32-bit payload
    mac_extra_pj=0.0,              # synop_pj above is already an INT8 MAC (the PE's MAC array)
    sources={
        "payload_bits": "Furber et al., Proc. IEEE 2014: multicast packets with an optional 32-bit payload",
        "mac_extra_pj": "0: synop_pj is already an INT8 MAC of the PE MAC array",
        "node_nm": "Hoeppner et al., arXiv:2103.08392 (2021): 22 nm FDSOI",
        "cores": "Hoeppner et al. 2021; Gonzalez et al., arXiv:2401.04491 (2024): 152 PEs per chip",
        "synaptic_bytes_per_core": "Hoeppner et al. 2021: 128 KB SRAM per PE (OPTIMISTIC: all used for weights)",
        "synop_pj": "ESTIMATE: INT8 MAC + one byte of 128 KB SRAM, op table scaled to 22 nm (no per-event figure found)",
        "synop_fetch_pj": "ESTIMATE: the SRAM part of synop_pj",
        "neuron_update_pj": "ASSUMPTION: 50 pJ (~20 ARM M4F instructions); not published",
        "neuron_spike_extra_pj": "0",
        "spike_route_pj": "ASSUMPTION: Loihi 14 nm value 1.7 pJ",
        "hop_pj": "ASSUMPTION: Loihi 14 nm value 3.5 pJ",
        "handshake_pj": "GALS clocked design: inside the per-op figures",
        "interchip_pj_per_bit": "ASSUMPTION: 10 pJ/bit",
        "spike_bits": "ASSUMPTION: 40-bit SpiNNaker 1 multicast packet (Furber et al., Proc. IEEE 2014)",
        "static_w": "ASSUMPTION: 0.1 W per chip",
        "sram_pj_per_byte": "ESTIMATE: op table scaled to 22 nm, 128 KB",
        "synop_time_s": "ASSUMPTION: 16x4 MAC array (Hoeppner 2021) at full rate, 200 MHz clock: 78 ps",
        "neuron_update_time_s": "ASSUMPTION: 20 cycles at 200 MHz",
        "hop_latency_s": "ASSUMPTION: 5 ns",
        "step_sync_s": "ASSUMPTION: 1 us",
        "multichip_sync_s": "ASSUMPTION: 10 us",
        "min_step_s": "ASSUMPTION: free-running (real-time 1 ms steps are common on SpiNNaker)",
        "interchip_latency_s": "0",
        "cores_per_tile": "Hoeppner et al. 2021: quad-PE (QPE)",
        "max_axons_per_core": "software-defined (0)",
        "max_neurons_per_core": "software-defined (0)",
    },
)


def generic_async(
    node_nm: float = 7.0,
    cores: int = 128,
    synaptic_bytes_per_core: int = 128 * KB,
    static_w: float = 0.05,
    neurons_per_core: int = 1024,
    name: str = "generic_async",
    **overrides: Any,
) -> NeuromorphicChip:
    """A user-parametrised asynchronous chip priced from the op-energy tables (ESTIMATES).

    Per synaptic op: a 32-bit accumulator add (``int32_add``; accumulators are wider than the
    INT8 weights) + one weight byte read from the core's synaptic SRAM + a 32-bit accumulator
    read-modify-write in a ``neurons_per_core`` x 4 B SRAM (2 x 32-bit accesses). Per neuron
    update: 3 x int32 add (integrate, compare, soft reset) + a 32-bit state read-modify-write.
    Spike delivery: a 32-bit input-queue write + read (8 KB SRAM). Mesh hop: Loihi's 3.5 pJ
    scaled by the 8 KB-SRAM ratio between nodes. Handshake: ASSUMPTION 10 x int32 add per
    event. Static power and all timings are ASSUMPTIONS to be set by the caller.

    Args:
        node_nm: process node in [7, 45] nm (op table of :func:`table_for_node`).
        cores, synaptic_bytes_per_core, static_w (W per chip), neurons_per_core: chip shape.
        name: preset name.
        **overrides: any other :class:`NeuromorphicChip` field (validated).
    """
    t = table_for_node(node_nm)
    positive_int("generic_async", "neurons_per_core", neurons_per_core)
    acc_sram = neurons_per_core * 4
    weight_read = t.sram_pj_per_byte(synaptic_bytes_per_core)
    acc_rmw = 2.0 * t.sram_read_pj(acc_sram, 32)
    hop = 3.5 * t.sram_8kb / table_for_node(14.0).sram_8kb
    base = dict(
        name=name,
        node_nm=float(node_nm),
        cores=cores,
        synaptic_bytes_per_core=synaptic_bytes_per_core,
        synop_pj=t.int32_add + weight_read + acc_rmw,
        synop_fetch_pj=weight_read + acc_rmw,
        neuron_update_pj=3.0 * t.int32_add + 2.0 * t.sram_read_pj(acc_sram, 32),
        neuron_spike_extra_pj=0.0,
        spike_route_pj=2.0 * t.sram_read_pj(8 * KB, 32),
        hop_pj=hop,
        handshake_pj=10.0 * t.int32_add,
        interchip_pj_per_bit=10.0,
        spike_bits=32,
        static_w=static_w,
        sram_pj_per_byte=weight_read,
        synop_time_s=1e-9,
        neuron_update_time_s=2e-9,
        hop_latency_s=2e-9,
        step_sync_s=100e-9,
        multichip_sync_s=5e-6,
        min_step_s=0.0,
        interchip_latency_s=0.0,
        cores_per_tile=1,
        max_axons_per_core=0,
        max_neurons_per_core=neurons_per_core,
        sources={
            "synop_pj": f"ESTIMATE ({t.name}): int32 add + 1 B SRAM read + 32-bit accumulator RMW",
            "synop_fetch_pj": "ESTIMATE: weight read + accumulator RMW",
            "neuron_update_pj": "ESTIMATE: 3 x int32 add + 32-bit state RMW",
            "spike_route_pj": "ESTIMATE: 32-bit input queue write + read (8 KB SRAM)",
            "hop_pj": "ESTIMATE: Loihi 3.5 pJ/hop scaled by 8 KB-SRAM energy ratio to this node",
            "handshake_pj": "ASSUMPTION: 10 x int32 add of control logic per event",
            "interchip_pj_per_bit": "ASSUMPTION: 10 pJ/bit",
            "static_w": "ASSUMPTION: caller-set static power per chip",
            "synop_time_s": "ASSUMPTION: 1 ns", "neuron_update_time_s": "ASSUMPTION: 2 ns",
            "hop_latency_s": "ASSUMPTION: 2 ns", "step_sync_s": "ASSUMPTION: 100 ns",
            "multichip_sync_s": "ASSUMPTION: 5 us",
        },
    )
    unknown = sorted(set(overrides) - {f.name for f in fields(NeuromorphicChip)})
    if unknown:
        raise ValueError(f"generic_async: unknown field(s): {', '.join(unknown)}")
    for k in overrides:
        base["sources"][k] = "user override"
    base.update(overrides)
    return NeuromorphicChip(**base)


CHIP_PRESETS: dict[str, NeuromorphicChip] = {
    c.name: c for c in (LOIHI, LOIHI2, TRUENORTH, SPINNAKER2, generic_async())
}


def get_chip(name: str) -> NeuromorphicChip:
    """Preset by name (``loihi``, ``loihi2``, ``truenorth``, ``spinnaker2``, ``generic_async``)."""
    try:
        return CHIP_PRESETS[name]
    except KeyError:
        raise ValueError(f"unknown chip preset {name!r}; choose one of {', '.join(CHIP_PRESETS)}") from None


def describe_chip(chip: NeuromorphicChip) -> str:
    """Multi-line text: each field, its value and its source or assumption."""
    lines = [f"{chip.name} ({chip.node_nm:g} nm)"]
    for f in fields(chip):
        if f.name in ("name", "sources"):
            continue
        lines.append(f"  {f.name} = {getattr(chip, f.name)!r}  [{chip.sources.get(f.name, '')}]")
    return "\n".join(lines)
