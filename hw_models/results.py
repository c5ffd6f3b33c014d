"""Result records shared by the chip and GPU models: per-layer and per-platform energy (J)."""
from __future__ import annotations

from dataclasses import dataclass, field

CATEGORIES: tuple[str, ...] = ("compute", "memory", "routing", "static", "other")


@dataclass
class LayerResult:
    """Energy (J, totals over ``tokens``) and latency (s per token) of one layer on one platform.

    Categories: ``compute`` (synaptic adds, neuron updates, MACs), ``memory`` (weight and
    accumulator traffic, block over-fetch, HBM), ``routing`` (spike packets, hops, handshakes,
    chip-to-chip), ``static`` (leakage / idle power x time), ``other`` (GPU board power not
    explained by op + byte energies; 0 for chips).
    """

    name: str
    role: str
    tokens: int
    compute_j: float
    memory_j: float
    routing_j: float
    static_j: float
    other_j: float
    latency_s: float
    details: dict[str, float] = field(default_factory=dict)

    @property
    def total_j(self) -> float:
        return self.compute_j + self.memory_j + self.routing_j + self.static_j + self.other_j

    def per_token(self) -> dict[str, float]:
        """Energy per token by category (J/token) and the total."""
        d = {c: getattr(self, f"{c}_j") / self.tokens for c in CATEGORIES}
        d["total"] = self.total_j / self.tokens
        return d


@dataclass
class PlatformResult:
    """A model (list of layers) priced on one platform.

    Attributes:
        platform: preset name.
        kind: "neuromorphic" or "gpu".
        tokens: tokens priced.
        layers: per-layer results.
        latency_s: latency per token of the whole model (s); parallel branches counted once.
        devices: chips (or GPUs) needed.
        mode: "decode"/"prefill" for GPUs, "event" for chips.
        notes: assumptions that shaped this result.
        details: platform-level figures (cores, chips, power, alternative energy views).
    """

    platform: str
    kind: str
    tokens: int
    layers: list[LayerResult]
    latency_s: float
    devices: int
    mode: str = ""
    notes: list[str] = field(default_factory=list)
    details: dict[str, float] = field(default_factory=dict)

    @property
    def energy_j(self) -> float:
        """Total energy over all tokens (J)."""
        return sum(layer.total_j for layer in self.layers)

    @property
    def energy_per_token_j(self) -> float:
        return self.energy_j / self.tokens

    def breakdown(self) -> dict[str, float]:
        """Energy per token by category (J/token), plus ``total``."""
        d = {c: sum(getattr(layer, f"{c}_j") for layer in self.layers) / self.tokens for c in CATEGORIES}
        d["total"] = sum(d[c] for c in CATEGORIES)
        return d

    def to_dict(self) -> dict:
        """Plain dict (JSON-able) with per-token figures and the per-layer breakdown."""
        return {
            "platform": self.platform,
            "kind": self.kind,
            "mode": self.mode,
            "tokens": self.tokens,
            "devices": self.devices,
            "energy_per_token_j": self.energy_per_token_j,
            "latency_per_token_s": self.latency_s,
            "breakdown_j_per_token": self.breakdown(),
            "details": dict(self.details),
            "notes": list(self.notes),
            "layers": [
                {"name": l.name, "role": l.role, "latency_s": l.latency_s, **l.per_token(), "details": dict(l.details)}
                for l in self.layers
            ],
        }
