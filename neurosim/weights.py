"""INT8 weights as in the released W8ASpike checkpoint: symmetric, per-group scales.

W8ASpike (SpikingBrain report, arXiv:2509.05276): symmetric INT8 weights with one scale
per group of 128 consecutive input channels. Each spike then adds an INT8 weight column
into the accumulators; the float output is recovered as ``V_th * scale * acc``.
"""
from __future__ import annotations

from dataclasses import dataclass

import torch

GROUP_SIZE = 128  # W8ASpike per-group quantization group (input channels)


@dataclass
class Int8Weight:
    """Symmetric per-group INT8 weight of a linear layer ``y = W x``.

    Attributes:
        q: int8 [out_features, in_features], values in [-127, 127].
        scale: float32 [out_features, n_groups], ``W ~= q * scale`` group-wise.
        group_size: input channels per scale group.
    """

    q: torch.Tensor
    scale: torch.Tensor
    group_size: int = GROUP_SIZE

    @property
    def shape(self) -> tuple[int, int]:
        return tuple(self.q.shape)  # type: ignore[return-value]

    def dequantize(self) -> torch.Tensor:
        """Float32 weight ``q * scale`` (scale broadcast over each group)."""
        scale = self.scale.repeat_interleave(self.group_size, dim=1)[:, : self.q.shape[1]]
        return self.q.float() * scale


def quantize_int8(weight: torch.Tensor, group_size: int = GROUP_SIZE) -> Int8Weight:
    """Quantize a float weight ``[out, in]`` to symmetric INT8 with per-group scales.

    The last group may be shorter when ``in_features`` is not a multiple of ``group_size``.
    Raises ValueError for non-2-D or non-finite weights, or a non-positive group size.
    """
    if weight.dim() != 2:
        raise ValueError(f"weight must be 2-D [out, in], got shape {tuple(weight.shape)}")
    if group_size <= 0:
        raise ValueError(f"group_size must be positive, got {group_size}")
    w = weight.detach().float()
    if not bool(torch.isfinite(w).all()):
        raise ValueError("weight contains NaN or inf")
    out_f, in_f = w.shape
    n_groups = -(-in_f // group_size)
    pad = n_groups * group_size - in_f
    wp = torch.nn.functional.pad(w, (0, pad)).view(out_f, n_groups, group_size)
    scale = (wp.abs().amax(dim=2) / 127.0).clamp_min(torch.finfo(torch.float32).tiny)
    q = torch.round(wp / scale.unsqueeze(2)).clamp_(-127, 127).to(torch.int8)
    return Int8Weight(q.view(out_f, -1)[:, :in_f].contiguous(), scale, group_size)
