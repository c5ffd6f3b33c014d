"""Parameter object of a layer replay (norse-style: one frozen settings value, not 18 arguments)."""
from __future__ import annotations

from dataclasses import asdict, dataclass, fields, replace
from typing import Any

import numpy as np
import torch

import encoders

from .engine import check_engine


def _check_common(scheme: str, bit_order: str, engine: str, block_columns: int) -> None:
    encoders.check_scheme(scheme)
    encoders.check_bit_order(bit_order)
    check_engine(engine)
    if isinstance(block_columns, bool) or not isinstance(block_columns, (int, np.integer)) or block_columns < 1:
        raise ValueError(f"block_columns must be a positive integer, got {block_columns!r}")


@dataclass(frozen=True)
class ReplaySettings:
    """How spike counts are encoded and replayed through a layer; validated once on construction.

    Attributes:
        scheme: encoder scheme (:data:`encoders.REGISTRY`).
        T: window in steps; None = the smallest window for the counts (at least 1).
        bit_order: ``"msb"`` (step 0 carries the most significant bit) or ``"lsb"``.
        block_columns: memory-block width (input columns) for ``weight_bytes_touched``.
        device: where to run (``"cpu"``, ``"cuda"``); results stay there.
        clip: clamp counts outside the window instead of raising (reported as ``clipped``).
        sign_split: carry signed counts with an unsigned scheme on two lines per channel.
        engine: ``"events"`` (event list) or ``"dense"`` (per-step planes); identical results.
        token_chunk: tokens per chunk (None: sized to about 256 MiB of working memory).
        out_chunk: output columns per lookup table of the events engine (None: 256 on CPU).
        keep_group_acc: also return the per-group accumulators.
    """

    scheme: str = encoders.DEFAULT_SCHEME
    T: int | None = None
    bit_order: str = "msb"
    block_columns: int = 32
    device: str | torch.device = "cpu"
    clip: bool = False
    sign_split: bool = False
    engine: str = "events"
    token_chunk: int | None = None
    out_chunk: int | None = None
    keep_group_acc: bool = False

    def __post_init__(self) -> None:
        _check_common(self.scheme, self.bit_order, self.engine, self.block_columns)

    def with_(self, **changes: Any) -> "ReplaySettings":
        """A copy with ``changes`` applied (validated again)."""
        return replace(self, **changes)

    def as_dict(self) -> dict[str, Any]:
        """The settings as a plain dict (keyword arguments of :func:`~neurosim.sim.layer.replay_layer`)."""
        return asdict(self)

    @classmethod
    def names(cls) -> tuple[str, ...]:
        return tuple(f.name for f in fields(cls))
