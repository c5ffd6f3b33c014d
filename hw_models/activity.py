"""The `Activity` record: what a spiking replay did, in counts a hardware model can price.

Produced by ``neurosim.sim`` (the event-driven replay), consumed by ``hw_models`` energy and
latency models. Plain numbers and numpy arrays only, so this package stays a leaf.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np


@dataclass
class Activity:
    """Event counts of one linear layer (or a sum of layers) replayed as spike trains.

    All counts are totals over ``tokens`` tokens. Units: events, operations, bytes.

    Attributes:
        name: layer name (or "total").
        role: q, k, v, o, gate, up, down, lm_head (or "" for sums).
        scheme: encoder scheme the spikes were sent with.
        steps: time steps T of the window.
        tokens: tokens replayed.
        in_features, out_features: layer fan-in and fan-out (0 for sums over layers).
        events_per_step: int64 [T], spikes (non-zero slots) sent at each step.
        events_per_token: int64 [tokens], spikes sent for each token (all steps).
        synaptic_ops: events x fan-out: accumulator additions of one weight each.
        acc_updates: accumulator read-modify-writes (equal to synaptic_ops for a
            one-adder-per-synapse core; kept separate for cores that batch them).
        dense_macs: tokens x in_features x out_features: what a dense engine computes.
        active_inputs_per_step: int64 [T], (token, channel) slots with an event at each step.
        silent_inputs: (token, channel) slots whose count is 0 (never spike in the window).
        weight_bytes_touched: bytes of weights fetched when a whole memory block of
            ``block_columns`` input columns is read if any column in it has an event
            (per token, per step).
        weight_bytes_dense: bytes a dense engine reads for the same work (weights once per
            token batch: in x out x bytes_per_weight).
        block_columns: memory-block granularity in input columns used for the above.
        bytes_per_weight: 1 for INT8 weights, 2 for BF16, 4 for FP32.
        event_hist: int64 [T + 1], histogram over (token, channel) slots of how many of
            the T steps carried an event (index i = i events).
    """

    name: str
    role: str
    scheme: str
    steps: int
    tokens: int
    in_features: int
    out_features: int
    events_per_step: np.ndarray
    events_per_token: np.ndarray
    synaptic_ops: int
    acc_updates: int
    dense_macs: int
    active_inputs_per_step: np.ndarray
    silent_inputs: int
    weight_bytes_touched: int
    weight_bytes_dense: int
    block_columns: int = 1
    bytes_per_weight: int = 1
    event_hist: np.ndarray = field(default_factory=lambda: np.zeros(1, dtype=np.int64))

    @property
    def events(self) -> int:
        """Total spikes sent."""
        return int(self.events_per_step.sum())

    @property
    def input_slots(self) -> int:
        """(token, channel) input slots: tokens x in_features (summed over layers for totals)."""
        return int(self.silent_inputs + self.active_slots)

    @property
    def active_slots(self) -> int:
        return int(self.event_hist[1:].sum())

    @property
    def sparsity(self) -> float:
        """Fraction of (step, token, channel) slots with no spike."""
        slots = self.input_slots * self.steps
        return 1.0 - self.events / slots if slots else 1.0
