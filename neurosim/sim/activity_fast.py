"""Activity straight from spike counts: what a replay would count, without replaying.

Every field of :class:`hw_models.Activity` is a function of the counts, the scheme and
window, and the layer shape, never of the weights: a slot with count ``c`` fires at the
steps whose bit is set in its *pattern* (bitwise schemes: ``|c|``, or the ``T``-bit two's
complement of ``c``; a sign-split slot fires on one line only, so its pattern is ``|c|``
too) or at steps ``0 .. |c|-1`` (binary/ternary). So

- events per slot = popcount(pattern) (rate codes: ``|c|``) -> ``event_hist`` and
  ``events_per_token``;
- events per step = number of slots with that step's bit set (rate codes: slots with
  ``|c| > t``, a reversed cumulative histogram);
- a memory block of ``block_columns`` input columns is fetched at a (step, token) when any
  of its columns fires then: ``popcount(OR of the block's patterns)`` (rate codes:
  ``max |c|`` of the block) summed over tokens.

:func:`layer_activity` and :func:`trace_activity` return records equal field for field to
``replay_layer(...).activity`` and ``replay_trace(...)`` (tests/test_activity_fast.py),
in one vectorized pass over the counts (loops run over steps at most). ``neurosim energy``
prices traces with them, so it needs neither the model nor its weights.
"""
from __future__ import annotations

from typing import Any, Iterable

import numpy as np
import torch
from tqdm.auto import tqdm

import encoders
from hw_models import Activity

from .counters import ActivityCounter
from .replay_core import _check_common, as_counts, window
from .tally_fast import check_covered, count_tally, count_tally_torch, covers, spike_patterns  # noqa: F401  (re-exported)

def _as_numpy_counts(counts: Any) -> np.ndarray:
    """Integer counts [tokens, in] as a numpy array (no copy for numpy integer input);
    the replay's checks and messages (:func:`~neurosim.sim.replay_core.as_counts`) otherwise."""
    if isinstance(counts, np.ndarray) and counts.dtype.kind in "iu" and counts.ndim == 2:
        return counts
    return as_counts(counts).cpu().numpy()


def layer_activity(
    counts: Any,
    in_features: int,
    out_features: int,
    scheme: str,
    T: int | None = None,
    bit_order: str = "msb",
    *,
    block_columns: int = 32,
    bytes_per_weight: int = 1,
    name: str = "",
    role: str = "",
    clip: bool = False,
    sign_split: bool = False,
    same_input_as: str | None = None,
) -> tuple[Activity, int]:
    """Activity of replaying ``counts`` [tokens, in_features] through an ``out_features``
    layer, without the replay. Same arguments, checks and errors as ``replay_layer``.

    Returns ``(activity, T)``: the record (equal to ``replay_layer(...).activity``) and the
    window used.
    """
    _check_common(scheme, bit_order, "events", block_columns)
    check_covered(scheme)
    c = _as_numpy_counts(counts)
    if int(c.shape[1]) != int(in_features):
        where = f" of layer {name!r}" if name else ""
        raise ValueError(f"counts have {int(c.shape[1])} input channels but the layer{where} has in_features={in_features}")
    lo, hi = (int(c.min()), int(c.max())) if c.size else (0, 0)
    # The window and its checks are the replay's own (it reads only the extremes).
    T, rlo, rhi = window(scheme, torch.tensor([lo, hi], dtype=torch.int64), T, sign_split=sign_split, clip=clip, name=name)
    clipped = 0
    if lo < rlo or hi > rhi:
        clipped = int(np.count_nonzero((c < rlo) | (c > rhi)))
        c = np.clip(c.astype(np.int64), rlo, rhi)
    counter = ActivityCounter(int(in_features), int(out_features), T, int(block_columns), int(bytes_per_weight))
    counter.add_tally(count_tally(c, scheme, T, bit_order, counter.n_blocks, int(block_columns)))
    act = counter.activity(name=name, role=role, scheme=scheme, clipped=clipped, sign_split=sign_split,
                           same_input_as=same_input_as)
    return act, T


def trace_activity(
    trace: Any,
    scheme: str,
    T: int | None = None,
    bit_order: str = "msb",
    *,
    clip: bool = False,
    sign_split: bool | None = None,
    block_columns: int = 32,
    bytes_per_weight: int = 1,
    layers: Iterable[str] | None = None,
    progress: bool = False,
) -> Any:
    """Activity of every layer of a spike trace, as :func:`~neurosim.sim.model.replay_trace`
    would record it for INT8 weights (``bytes_per_weight=1``), from the counts alone.

    Returns a :class:`~neurosim.sim.model.ModelReplay` without outputs. Same defaults and
    errors as ``replay_trace`` (``sign_split=None``: on for binary and bitwise).
    """
    from .model import ModelReplay

    _check_common(scheme, bit_order, "events", block_columns)
    check_covered(scheme)
    if sign_split is None:
        sign_split = encoders.get_scheme(scheme).needs_sign_split
    all_names = list(trace.layers)
    names = all_names if layers is None else list(layers)
    unknown = [n for n in names if n not in set(all_names)]
    if unknown:
        raise ValueError(f"layers not in the trace: {', '.join(map(repr, unknown[:5]))}")
    if not names:
        raise ValueError("the trace has no layers to replay")
    acts: dict[str, Activity] = {}
    steps: dict[str, int] = {}
    for name in tqdm(names, desc=f"activity {scheme}", unit="layer", disable=not progress):
        info = trace.layer(name)
        acts[name], steps[name] = layer_activity(
            trace.counts(name), info.in_features, info.out_features, scheme, T, bit_order,
            block_columns=block_columns, bytes_per_weight=bytes_per_weight, name=name, role=info.role,
            clip=clip, sign_split=sign_split, same_input_as=getattr(info, "same_input_as", None),
        )
    total = Activity.combine(acts.values(), name="total")
    return ModelReplay(scheme, bit_order, acts, total, steps, int(total.clipped), str(getattr(trace, "model_id", "")))


__all__ = ["count_tally", "count_tally_torch", "layer_activity", "spike_patterns", "trace_activity"]
