"""Synthetic :class:`Activity` records with chosen spike statistics (numpy, vectorised).

Used until the simulator produces real records, in tests, and to price a model at the
report's statistics (SpikingBrain report, arXiv:2509.05276, SpikingBrain-7B: 18.4 % silent channels,
1.13 spikes per active channel, 3-step window -> 69.15 % sparsity).

Per (token, channel) slot a spike-count magnitude ``m`` is drawn: 0 with probability
``silent_fraction``, else ``P(m) ~ q**m`` over the magnitudes the scheme can carry in
``steps`` steps, with ``q`` solved so that the mean number of spikes per active slot equals
``spikes_per_active``. Spikes then follow the scheme: bitwise schemes send the bits of ``m``
most significant bit first (step 0 = MSB, as Int2Spike); binary/ternary send ``m`` spikes in
the first ``m`` steps. The sign of the count is irrelevant to the hardware cost.
"""
from __future__ import annotations

import math

import numpy as np

from ._checks import fraction, positive_int
from .activity import Activity
from .shapes import ModelShape

SCHEMES = ("binary", "ternary", "bitwise", "bitwise-signed")


def _magnitudes(scheme: str, steps: int) -> tuple[np.ndarray, np.ndarray]:
    """Possible non-zero magnitudes and the spikes each costs."""
    if scheme in ("bitwise", "bitwise-signed"):
        if steps > 30:
            raise ValueError(f"synthetic: steps={steps} too large for bitwise schemes (max 30)")
        m = np.arange(1, 2**steps, dtype=np.int64)
        spikes = np.array([bin(int(v)).count("1") for v in m], dtype=np.int64)
    elif scheme in ("binary", "ternary"):
        m = np.arange(1, steps + 1, dtype=np.int64)
        spikes = m.copy()
    else:
        raise ValueError(f"synthetic: unsupported scheme {scheme!r}; choose one of {', '.join(SCHEMES)}")
    return m, spikes


def _solve_q(spikes: np.ndarray, m: np.ndarray, target: float) -> np.ndarray:
    """Probabilities over magnitudes, P ~ q**m, with mean spikes == target (bisection on log q;
    the mean grows monotonically with q for these schemes, from spikes[0] to spikes[-1])."""
    def probs(logq: float) -> np.ndarray:
        w = np.exp(logq * (m - m[0]).astype(np.float64))
        return w / w.sum()

    lo_mean, hi_mean = float(spikes[0]), float(spikes[-1])
    if len(m) == 1 or abs(target - lo_mean) < 1e-12:
        if abs(target - lo_mean) > 1e-9:
            raise ValueError(f"synthetic: spikes_per_active must be {lo_mean:g} for this scheme and window")
        return probs(-60.0)
    if not lo_mean < target < hi_mean:
        raise ValueError(
            f"synthetic: spikes_per_active={target} is not reachable; with this scheme and window it must "
            f"lie in [{lo_mean:g}, {hi_mean:g})"
        )
    lo, hi = -60.0, 60.0
    for _ in range(200):
        mid = 0.5 * (lo + hi)
        if (spikes * probs(mid)).sum() < target:
            lo = mid
        else:
            hi = mid
    return probs(0.5 * (lo + hi))


def synthetic_activity(
    name: str,
    role: str,
    in_features: int,
    out_features: int,
    tokens: int,
    steps: int = 3,
    silent_fraction: float = 0.184,
    spikes_per_active: float = 1.13,
    scheme: str = "bitwise-signed",
    block_columns: int = 1,
    bytes_per_weight: int = 1,
    seed: int = 0,
    same_input_as: str | None = None,
) -> Activity:
    """One layer's Activity with the requested statistics (defaults: the report's, k=3, T=3).

    Args:
        name, role: layer name and role (q, k, v, o, gate, up, down, lm_head).
        in_features, out_features: layer shape.
        tokens: tokens replayed.
        steps: window T.
        silent_fraction: share of (token, channel) slots that never spike.
        spikes_per_active: mean spikes of a non-silent slot.
        scheme: binary, ternary, bitwise or bitwise-signed.
        block_columns: memory block width (input columns) for ``weight_bytes_touched``.
        bytes_per_weight: 1 for INT8.
        seed: random seed (the spikes depend only on seed, tokens, in_features and the
            statistics, so layers sharing an input get identical spikes from the same seed).
        same_input_as: name of the earlier layer with the identical input (see Activity).
    """
    for f, v in (("in_features", in_features), ("out_features", out_features), ("tokens", tokens),
                 ("steps", steps), ("block_columns", block_columns), ("bytes_per_weight", bytes_per_weight)):
        positive_int("synthetic_activity", f, v)
    fraction("synthetic_activity", "silent_fraction", silent_fraction)
    m, spikes = _magnitudes(scheme, steps)
    p = _solve_q(spikes, m, float(spikes_per_active)) if silent_fraction < 1 else np.full(len(m), 1.0 / len(m))
    rng = np.random.default_rng(seed)
    active = rng.random((tokens, in_features)) >= silent_fraction
    mag = np.where(active, rng.choice(m, size=(tokens, in_features), p=p), 0)
    t_idx = np.arange(steps, dtype=np.int64)[:, None, None]
    if scheme in ("bitwise", "bitwise-signed"):
        ev = ((mag[None] >> (steps - 1 - t_idx)) & 1).astype(bool)          # [T, tokens, in], MSB first
    else:
        ev = t_idx < mag[None]                                              # m spikes in the first m steps
    per_slot = ev.sum(axis=0)
    events_per_step = ev.sum(axis=(1, 2)).astype(np.int64)
    events = int(events_per_step.sum())
    nb = math.ceil(in_features / block_columns)
    pad = nb * block_columns - in_features
    evp = np.pad(ev, ((0, 0), (0, 0), (0, pad))).reshape(steps, tokens, nb, block_columns)
    width = np.full(nb, block_columns, dtype=np.int64)
    width[-1] = block_columns - pad
    touched_cols = int((evp.any(axis=3) * width).sum())
    return Activity(
        name=name, role=role, scheme=scheme, steps=steps, tokens=tokens,
        in_features=in_features, out_features=out_features,
        events_per_step=events_per_step,
        events_per_token=per_slot.sum(axis=1).astype(np.int64),
        synaptic_ops=events * out_features,
        acc_updates=events * out_features,
        dense_macs=tokens * in_features * out_features,
        active_inputs_per_step=events_per_step.copy(),
        silent_inputs=int((per_slot == 0).sum()),
        weight_bytes_touched=touched_cols * out_features * bytes_per_weight,
        weight_bytes_dense=in_features * out_features * bytes_per_weight,
        block_columns=block_columns,
        bytes_per_weight=bytes_per_weight,
        event_hist=np.bincount(per_slot.ravel(), minlength=steps + 1).astype(np.int64),
        same_input_as=same_input_as,
    )


def synthetic_model_activity(
    shape: ModelShape,
    tokens: int = 32,
    include_lm_head: bool = False,
    seed: int = 0,
    **kwargs,
) -> list[Activity]:
    """Synthetic records for every nn.Linear of ``shape`` (kwargs as :func:`synthetic_activity`).

    k/v reuse q's spikes and up reuses gate's (same seed, ``same_input_as`` set), as in the
    real model where they read the same activation.
    """
    out = []
    shared = shape.shared_inputs(include_lm_head)
    seeds: dict[str, int] = {}
    for i, (name, role, a, b) in enumerate(shape.linear_shapes(include_lm_head)):
        src = shared.get(name)
        seeds[name] = seeds[src] if src is not None else seed + i
        out.append(synthetic_activity(name, role, a, b, tokens, seed=seeds[name], same_input_as=src, **kwargs))
    return out
