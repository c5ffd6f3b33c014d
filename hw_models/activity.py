"""The `Activity` record: what a spiking replay did, in counts a hardware model can price.

Produced by ``neurosim.sim`` (the event-driven replay), consumed by ``hw_models`` energy and
latency models. Plain numbers and numpy arrays only, so this package stays a leaf.
"""
from __future__ import annotations

from dataclasses import dataclass, field
from typing import Iterable, Sequence

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
        synaptic_ops: events x fan-out: accumulator updates of one weight each (additions,
            plus the multiply-accumulates of ``mac_ops``).
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
        clipped: counts clamped to what the window of ``steps`` can carry before replay
            (0 when the window was large enough).
        sign_split: True when an unsigned scheme (binary, bitwise) carried signed counts on
            two lines per channel (positive and negative part; negative events subtract).
        same_input_as: name of an earlier layer that receives the identical spikes (q/k/v,
            gate/up share one input): its events are sent once and fanned out to both.
        synops_per_token: int64 [tokens] synaptic ops of each token, or None (then derived
            as ``events_per_token * out_features``; sums over layers always store it).
        step_slots: (step, token, channel) slots of the window, summed over layers; 0 means
            ``tokens * in_features * steps`` (a single layer). Sums need it because layers
            may use different windows.
        mac_ops: the part of ``synaptic_ops`` that multiplies a graded spike's integer
            payload by the weight (an INT8 x INT8 multiply-accumulate instead of an INT8
            add); 0 for unit spikes.
        payload_bits: bits of the integer payload each event carries (graded spikes); 0 for
            unit (binary/ternary) spikes. Chips that cannot carry it refuse the record.
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
    clipped: int = 0
    sign_split: bool = False
    same_input_as: str | None = None
    synops_per_token: np.ndarray | None = None
    step_slots: int = 0
    mac_ops: int = 0
    payload_bits: int = 0

    @property
    def add_ops(self) -> int:
        """Synaptic ops that are plain additions of a weight (``synaptic_ops - mac_ops``)."""
        return int(self.synaptic_ops) - int(self.mac_ops)

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
    def slots_in_window(self) -> int:
        """(step, token, channel) slots of the window(s): the denominator of :attr:`sparsity`."""
        return int(self.step_slots) if self.step_slots > 0 else self.input_slots * self.steps

    @property
    def sparsity(self) -> float:
        """Fraction of (step, token, channel) slots with no spike."""
        slots = self.slots_in_window
        return 1.0 - self.events / slots if slots else 1.0

    @property
    def synaptic_ops_per_token(self) -> np.ndarray:
        """int64 [tokens]: synaptic ops (weight additions) spent on each token."""
        if self.synops_per_token is not None:
            return np.asarray(self.synops_per_token, dtype=np.int64)
        return np.asarray(self.events_per_token, dtype=np.int64) * int(self.out_features)

    @classmethod
    def combine(cls, activities: Iterable["Activity"], name: str = "total") -> "Activity":
        """Sum records of several layers over the same tokens into one (role "", features 0).

        Per-step arrays and ``event_hist`` are summed with zero padding to the longest
        window and ``steps`` is the longest window; ``step_slots`` keeps the exact
        denominator of :attr:`sparsity`. ``scheme``, ``block_columns`` and
        ``bytes_per_weight`` are kept where all records agree, else "mixed" / 0 / 0.
        Raises ValueError for no records or records over different token counts.
        """
        acts = list(activities)
        if not acts:
            raise ValueError("Activity.combine: no records to combine")
        for a in acts:
            if not isinstance(a, Activity):
                raise TypeError(f"Activity.combine: expected Activity records, got {type(a).__name__}")
        tokens = {int(a.tokens) for a in acts}
        if len(tokens) != 1:
            raise ValueError(f"Activity.combine: records cover different token counts {sorted(tokens)}")
        schemes = {a.scheme for a in acts}
        bc = {int(a.block_columns) for a in acts}
        bpw = {int(a.bytes_per_weight) for a in acts}
        return cls(
            name=name,
            role="",
            scheme=schemes.pop() if len(schemes) == 1 else "mixed",
            steps=max(int(a.steps) for a in acts),
            tokens=tokens.pop(),
            in_features=0,
            out_features=0,
            events_per_step=_pad_sum([a.events_per_step for a in acts]),
            events_per_token=np.sum([np.asarray(a.events_per_token, dtype=np.int64) for a in acts], axis=0),
            synaptic_ops=sum(int(a.synaptic_ops) for a in acts),
            acc_updates=sum(int(a.acc_updates) for a in acts),
            dense_macs=sum(int(a.dense_macs) for a in acts),
            active_inputs_per_step=_pad_sum([a.active_inputs_per_step for a in acts]),
            silent_inputs=sum(int(a.silent_inputs) for a in acts),
            weight_bytes_touched=sum(int(a.weight_bytes_touched) for a in acts),
            weight_bytes_dense=sum(int(a.weight_bytes_dense) for a in acts),
            block_columns=bc.pop() if len(bc) == 1 else 0,
            bytes_per_weight=bpw.pop() if len(bpw) == 1 else 0,
            event_hist=_pad_sum([a.event_hist for a in acts]),
            clipped=sum(int(a.clipped) for a in acts),
            sign_split=any(a.sign_split for a in acts),
            synops_per_token=np.sum([a.synaptic_ops_per_token for a in acts], axis=0),
            step_slots=sum(a.slots_in_window for a in acts),
            mac_ops=sum(int(a.mac_ops) for a in acts),
            payload_bits=max(int(a.payload_bits) for a in acts),
        )


def _pad_sum(arrays: Sequence[np.ndarray]) -> np.ndarray:
    """Sum 1-D integer arrays of different lengths, zero-padded at the end (int64)."""
    n = max((len(a) for a in arrays), default=0)
    out = np.zeros(n, dtype=np.int64)
    for a in arrays:
        out[: len(a)] += np.asarray(a, dtype=np.int64)
    return out
