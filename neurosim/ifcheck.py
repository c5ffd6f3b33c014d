"""IF-neuron cross-check: snnTorch integrate-and-fire neurons reproduce the spike counts.

SpikingBrain's count ``s = round(x / V_th)`` is the collapsed form of an integrate-and-fire
neuron with soft reset (SpikingBrain report, arXiv:2509.05276, eqs. 19-23).
This module runs that neuron for real, with snnTorch, and compares:

Neuron: ``snntorch.Leaky(beta=1, threshold=V_th, reset_mechanism="subtract")``: beta = 1
means no leak (IF). snnTorch's update (``reset_delay=True``, the default) is, per step t::

    reset_t = [U_{t-1} > V_th];   U_t = U_{t-1} + I_t - reset_t * V_th;   S_t = [U_t > V_th]

Drive: the layer input ``x`` is the current, delivered whole at step 0 (``I_0 = x``,
``I_t = 0`` after: the window integrates x once, as in the collapsed form), with the
membrane starting at ``U = V_th / 2`` (half-threshold initial potential, as in Bu et al.,
"Optimal ANN-SNN Conversion for High-accuracy and Ultra-low-latency Spiking Neural
Networks", ICLR 2022, which turns the IF neuron's floor into rounding). The neuron then
fires at steps 0 .. n-1 with ``n = #{t >= 0 : V_th/2 + x - t V_th > V_th} = ceil(x/V_th - 1/2)``
for ``x > V_th / 2`` (else 0): ``round(x / V_th)`` for every x not at a rounding boundary.

Signs: a Leaky neuron only emits positive spikes, so a signed input needs a sign split:
two neurons per channel, one fed ``+x`` and one fed ``-x`` (for x > 0 the second never
reaches threshold, and vice versa); the count is ``n(+x) - n(-x)``, and the folded train
(+1 from the first, -1 from the second) is exactly the ternary train
``encoders.encode(count, "ternary", T)``: ones first, then silence. A bipolar neuron with
thresholds at +-V_th would give the same train; snnTorch has none, hence the split.

Rounding-boundary cases (documented mismatches):
- exact ties ``|x| / V_th = k + 1/2``: the IF neuron rounds toward zero (strict ``>``
  threshold) while ``torch.round`` rounds half to even, so they differ when k is odd
  (e.g. 3.5 -> IF 3, round 4; 2.5 -> both 2);
- float32 near a tie: the membrane ``V_th/2 + x - t V_th`` is computed step by step in
  float32, ``x / V_th`` by one division; within a few ulps of a half-integer the two
  roundings can land on different sides.
Both are flagged in :attr:`IFCheck.boundary` (``| |x|/V_th - (floor(|x|/V_th) + 1/2) |``
within ``tol`` relative); any other mismatch is counted in :attr:`IFCheck.unexplained`
(it should be 0).
"""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

import numpy as np
import torch

import encoders


@dataclass
class IFCheck:
    """IF-neuron spike counts versus ``round(x / V_th)``.

    Attributes:
        spikes: int8 [T, tokens, C] folded IF train (+1 positive neuron, -1 negative neuron).
        counts: int64 [tokens, C] spike totals of the IF neurons (positive minus negative).
        reference: int64 [tokens, C] ``round(x / V_th)`` (``encoders.spike_counts`` when V_th
            is derived from x).
        vth: float32 [tokens] thresholds used.
        boundary: bool [tokens, C] inputs at a rounding boundary (see module docstring).
        undrained: neurons still above threshold after the last step (T too short; 0 normally).
    """

    spikes: torch.Tensor
    counts: torch.Tensor
    reference: torch.Tensor
    vth: torch.Tensor
    boundary: torch.Tensor
    undrained: int

    @property
    def steps(self) -> int:
        return int(self.spikes.shape[0])

    @property
    def mismatches(self) -> int:
        """Slots whose IF count differs from the reference."""
        return int((self.counts != self.reference).sum())

    @property
    def boundary_mismatches(self) -> int:
        """Mismatches at documented rounding boundaries."""
        return int(((self.counts != self.reference) & self.boundary).sum())

    @property
    def unexplained(self) -> int:
        """Mismatches not at a rounding boundary (a correct neuron model gives 0)."""
        return int(((self.counts != self.reference) & ~self.boundary).sum())


def _as_float(x: Any, name: str) -> torch.Tensor:
    if isinstance(x, np.ndarray):
        x = torch.from_numpy(np.array(x, dtype=np.float32))
    if not isinstance(x, torch.Tensor):
        raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(x).__name__}")
    if x.is_complex() or x.dtype == torch.bool:
        raise TypeError(f"{name} must be real-valued, got {x.dtype}")
    x = x.detach().to(torch.float32)
    if not bool(torch.isfinite(x).all()):
        raise ValueError(f"{name} contains NaN or inf")
    return x


def if_neurons(
    x: Any,
    vth: Any = None,
    k: float = 3.0,
    T: int | None = None,
    *,
    device: str | torch.device = "cpu",
    tol: float = 1e-5,
) -> IFCheck:
    """Drive snnTorch IF neurons with layer inputs ``x`` [tokens, C] and count their spikes.

    Args:
        x: layer input (float), one row per token, in the units of the activation.
        vth: thresholds [tokens]; None = SpikingBrain's ``mean|x| / k`` clamped to
            [1e-5, 1e4] (:func:`encoders.spike_counts`).
        k: threshold divisor when ``vth`` is None.
        T: steps to run; None = ``max|round(x / V_th)| + 1`` (enough to drain every neuron).
        device: where to run.
        tol: relative distance to a half-integer below which a slot counts as a boundary case.

    Raises:
        ValueError: x not 2-D or not finite, vth of the wrong shape or not positive, T < 1.
        ImportError: snnTorch is not installed (``pip install snntorch``).
    """
    xt = _as_float(x, "x").to(device)
    if xt.dim() != 2:
        raise ValueError(f"x must be 2-D [tokens, channels], got shape {tuple(xt.shape)}")
    if vth is None:
        sc = encoders.spike_counts(xt, k=k)
        ref, v = sc.counts.to(torch.int64), sc.vth.to(torch.float32)
    else:
        v = _as_float(vth, "vth").to(device)
        if v.dim() != 1 or v.shape[0] != xt.shape[0]:
            raise ValueError(f"vth must have shape [{xt.shape[0]}], got {tuple(v.shape)}")
        if bool((v <= 0).any()):
            raise ValueError("vth must be positive")
        ref = torch.round(xt / v.unsqueeze(1)).to(torch.int64)
    if T is None:
        T = int(ref.abs().max()) + 1 if ref.numel() else 1
    if isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be a positive integer or None, got {T!r}")
    try:
        import snntorch as snn
    except ImportError as e:  # pragma: no cover - depends on the environment
        raise ImportError("the IF cross-check needs snnTorch: pip install snntorch") from e

    thr = v.view(1, -1, 1)  # one threshold per token, shared by its channels and both signs
    neuron = snn.Leaky(beta=1.0, threshold=thr, reset_mechanism="subtract").to(device)
    current = torch.stack([xt, -xt])  # sign split: [2, tokens, C]
    mem = (thr / 2).expand_as(current).clone()  # half-threshold initial membrane
    zero = torch.zeros_like(current)
    spikes = torch.empty((int(T),) + tuple(xt.shape), dtype=torch.int8, device=xt.device)
    with torch.no_grad():
        for t in range(int(T)):  # loop over steps only
            spk, mem = neuron(current if t == 0 else zero, mem)
            spikes[t] = (spk[0] - spk[1]).to(torch.int8)
        # A neuron whose membrane, after its pending reset, is still above threshold would fire again.
        undrained = int(((mem - spk * thr) > thr).sum())
    counts = spikes.sum(dim=0, dtype=torch.int64)
    r = xt.abs() / v.unsqueeze(1)
    boundary = (r - (torch.floor(r) + 0.5)).abs() <= tol * (r + 1.0)
    return IFCheck(spikes, counts, ref, v, boundary, undrained)


def if_replay(weight: Any, x: Any, vth: Any = None, k: float = 3.0, T: int | None = None, **replay_kwargs: Any):
    """Drive the layer replay from snnTorch IF neurons: returns ``(LayerReplay, IFCheck)``.

    The folded IF train is replayed as a ternary train (step weight 1) with
    :func:`neurosim.sim.replay_spikes`; its accumulators equal ``counts_IF @ q.T``, hence
    ``replay_layer(..., reference counts, "ternary")`` wherever the counts agree.
    ``replay_kwargs`` go to ``replay_spikes`` (device, engine, block_columns, name, ...).
    """
    from neurosim.sim import replay_spikes

    chk = if_neurons(x, vth, k, T, device=replay_kwargs.get("device", "cpu"))
    return replay_spikes(weight, chk.spikes, chk.vth, _bipolar_rate_code(), **replay_kwargs), chk


def _bipolar_rate_code() -> str:
    """The registered bipolar rate code (ternary): what a folded IF train is, step weight 1."""
    return next(s.name for s in encoders.REGISTRY.values() if s.rate and s.bipolar)
