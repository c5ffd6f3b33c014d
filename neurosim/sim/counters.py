"""Count what a replay did, from its spike trains, into a :class:`hw_models.Activity`.

Counting is separate from the arithmetic: both engines deliver the same events, so the
record depends only on the spike trains, the layer shape and the memory layout.
"""
from __future__ import annotations

from dataclasses import dataclass, field

import numpy as np

from hw_models import Activity

from .events import Events, Tally


@dataclass
class ActivityCounter:
    """Accumulates counters over token chunks of one layer's replay.

    Attributes:
        in_features, out_features: layer shape.
        steps: window T.
        block_columns: memory-block width in input columns: a block is fetched whole for a
            (token, step) if any of its columns carries an event.
        bytes_per_weight: storage of one weight (1 for INT8).
    """

    in_features: int
    out_features: int
    steps: int
    block_columns: int
    bytes_per_weight: int
    events_per_step: np.ndarray = field(init=False)
    event_hist: np.ndarray = field(init=False)
    block_fetches: np.ndarray = field(init=False)
    events_per_token: list[np.ndarray] = field(default_factory=list)

    def __post_init__(self) -> None:
        if self.block_columns <= 0:
            raise ValueError(f"block_columns must be a positive integer, got {self.block_columns}")
        self.n_blocks = -(-self.in_features // self.block_columns)
        self.events_per_step = np.zeros(self.steps, dtype=np.int64)
        self.event_hist = np.zeros(self.steps + 1, dtype=np.int64)
        self.block_fetches = np.zeros(self.n_blocks, dtype=np.int64)
        width = np.full(self.n_blocks, self.block_columns, dtype=np.int64)
        width[-1] = self.in_features - (self.n_blocks - 1) * self.block_columns
        self.block_width = width  # the last block holds only the columns that exist

    def add(self, ev: Events) -> None:
        """Count one token chunk's events."""
        self.add_tally(ev.tally(self.n_blocks, self.block_columns))

    def add_tally(self, tally: Tally) -> None:
        """Count one token chunk from its counters (e.g. computed from counts, without events)."""
        self.add_arrays(tally.events_per_step.numpy(), tally.events_per_token.numpy(), tally.event_hist.numpy(),
                        tally.block_fetches.numpy())

    def add_arrays(self, events_per_step: np.ndarray, events_per_token: np.ndarray, event_hist: np.ndarray,
                   block_fetches: np.ndarray) -> None:
        """:meth:`add_tally` of a tally's counters as int64 numpy arrays (no tensors in between)."""
        self.events_per_step += events_per_step
        self.events_per_token.append(events_per_token)
        self.event_hist += event_hist
        self.block_fetches += block_fetches

    def activity(
        self,
        *,
        name: str,
        role: str,
        scheme: str,
        clipped: int = 0,
        sign_split: bool = False,
        same_input_as: str | None = None,
        payload_bits: int = 0,
    ) -> Activity:
        """The finished record (totals over every chunk added); ``payload_bits`` > 0 marks
        graded spikes, whose synaptic ops are all multiply-accumulates (payload x weight)."""
        ept = np.concatenate(self.events_per_token) if self.events_per_token else np.zeros(0, np.int64)
        tokens = int(ept.shape[0])
        events = int(self.events_per_step.sum())
        synops = events * self.out_features
        touched_cols = int((self.block_fetches * self.block_width).sum())
        return Activity(
            name=name,
            role=role,
            scheme=scheme,
            steps=self.steps,
            tokens=tokens,
            in_features=self.in_features,
            out_features=self.out_features,
            events_per_step=self.events_per_step.copy(),
            events_per_token=ept.astype(np.int64),
            synaptic_ops=synops,
            # One accumulator read-modify-write per synaptic op (per-group accumulators).
            acc_updates=synops,
            dense_macs=tokens * self.in_features * self.out_features,
            # At most one event per (token, channel) slot per step: active slots == events.
            active_inputs_per_step=self.events_per_step.copy(),
            silent_inputs=int(self.event_hist[0]),
            weight_bytes_touched=touched_cols * self.out_features * self.bytes_per_weight,
            weight_bytes_dense=self.in_features * self.out_features * self.bytes_per_weight,
            block_columns=self.block_columns,
            bytes_per_weight=self.bytes_per_weight,
            event_hist=self.event_hist.copy(),
            clipped=int(clipped),
            sign_split=bool(sign_split),
            same_input_as=same_input_as,
            mac_ops=synops if payload_bits else 0,
            payload_bits=int(payload_bits),
        )

