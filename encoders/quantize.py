"""Float activations -> integer spike counts with the SpikingBrain adaptive threshold.

SpikingBrain report, arXiv:2509.05276, eqs. 19-23: per activation vector,
``V_th = mean(|x|) / k`` (k = 3 by default), clamped to [1e-5, 1e4] as in the released
W8ASpike code, and ``s = round(x / V_th)``.
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Iterator

import numpy as np
import torch

from ._arrays import ArrayLike, as_tensor, integer_counts, like_input
from .schemes import count_range

VTH_MIN = 1e-5  # W8ASpike release: lower clamp of V_th
VTH_MAX = 1e4  # W8ASpike release: upper clamp of V_th


@dataclass
class SpikeCounts:
    """Result of :func:`spike_counts`. Unpacks as ``counts, vth = spike_counts(x)``.

    Attributes:
        counts: signed integer counts (int32), same shape as the input.
        vth: threshold per vector (float32), the input shape without ``dim``; same units as x.
        n_clipped: how many counts were clamped to the scheme's range (0 without ``clip``).
    """

    counts: ArrayLike
    vth: ArrayLike
    n_clipped: int = 0

    def __iter__(self) -> Iterator[ArrayLike]:
        return iter((self.counts, self.vth))


def spike_counts(
    x: ArrayLike,
    k: float = 3.0,
    dim: int = -1,
    clip: tuple[str, int] | None = None,
) -> SpikeCounts:
    """Quantize activations ``x`` to integer spike counts with an adaptive threshold.

    Args:
        x: float activations (numpy or torch, any device); ``dim`` is the hidden dimension.
        k: threshold divisor, ``V_th = mean(|x|) / k``; must be positive and finite.
        dim: axis over which the mean is taken (one threshold per remaining index, e.g.
            per token).
        clip: optional ``(scheme, T)``: clamp counts to what ``T`` steps of ``scheme`` can
            carry (e.g. ``("bitwise-signed", 3)`` -> [-7, 7]) and report how many were clipped.

    Returns:
        :class:`SpikeCounts` with int32 ``counts`` and float32 ``vth``.

    Raises:
        ValueError: NaN/inf in ``x``, or (without ``clip``) a count beyond int32, which needs
            mean|x| above ``k * VTH_MAX`` in its vector (V_th is clamped there).
    """
    if not isinstance(k, (int, float, np.floating, np.integer)) or isinstance(k, bool):
        raise TypeError(f"k must be a number, got {type(k).__name__}")
    if not np.isfinite(k) or k <= 0:
        raise ValueError(f"k must be positive and finite, got {k}")
    t, was_numpy = as_tensor(x, "x")
    if not t.is_floating_point():
        t = t.to(torch.float32)
    if t.dim() == 0:
        raise ValueError("x must have at least one dimension")
    if not bool(torch.isfinite(t).all()):
        raise ValueError("x contains NaN or inf; spike counts are undefined")
    xf = t.float()
    vth = (xf.abs().mean(dim=dim, keepdim=True) / float(k)).clamp_(VTH_MIN, VTH_MAX)
    counts = torch.round(xf / vth)
    n_clipped = 0
    if clip is not None:
        scheme, T = clip
        lo, hi = count_range(scheme, T)
        outside = (counts < lo) | (counts > hi)
        n_clipped = int(outside.sum())
        counts.clamp_(lo, hi)
    elif xf.numel() and (float(k) * xf.shape[dim] >= _I32.max or bool((vth >= VTH_MAX).any())):
        # |s| <= k * n_channels unless V_th hit its upper clamp (mean|x| > k * VTH_MAX): only
        # then (or for absurd k * n) can a count leave int32, where the cast would wrap.
        _check_int32(counts, t, vth)
    return SpikeCounts(
        like_input(counts.to(torch.int32), was_numpy),
        like_input(vth.squeeze(dim), was_numpy),
        n_clipped,
    )


_I32 = torch.iinfo(torch.int32)


def _check_int32(counts: torch.Tensor, x: torch.Tensor, vth: torch.Tensor) -> None:
    """Raise ValueError naming the largest |x / V_th| if a count does not fit int32."""
    mag = counts.abs()
    if float(mag.max()) <= _I32.max:
        return
    i = int(mag.flatten().argmax())
    x_at = float(x.flatten()[i])
    v_at = float(vth.expand_as(counts).flatten()[i])
    big = abs(x_at) / v_at  # in float64: x may exceed the float32 range
    why = (f"V_th is clamped to at most {VTH_MAX:g}, so |x| above {VTH_MAX * _I32.max:.3g} cannot be counted: "
           "scale x down" if v_at >= VTH_MAX else "use a smaller k")
    raise ValueError(
        f"spike count overflow: |x / V_th| reaches {big:.4g} (x = {x_at:.4g}, V_th = {v_at:.4g}), beyond "
        f"the int32 limit {_I32.max}; {why}, or pass clip=(scheme, T) to saturate"
    )


def clip_counts(counts: ArrayLike, scheme: str, T: int) -> tuple[ArrayLike, int]:
    """Clamp integer counts to the range ``T`` steps of ``scheme`` can carry.

    Returns ``(clipped counts, number of values changed)``; the input is not modified.
    """
    t, was_numpy = integer_counts(counts)
    lo, hi = count_range(scheme, T)
    n = int(((t < lo) | (t > hi)).sum())
    return like_input(t.clamp(lo, hi), was_numpy), n
