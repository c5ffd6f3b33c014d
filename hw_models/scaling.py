"""Extrapolate a traced model's per-role spike statistics to a larger model's shape.

ASSUMPTION (stated in every result's notes): for each layer role (q, k, v, o, gate, up, down),
the events per input slot, their split over the T steps, the silent fraction and the fraction
of weight blocks fetched are properties of the coding scheme and of the activation statistics,
not of the layer width or depth, so the values pooled over the traced model's layers carry
over to every layer of the target model. The SpikingBrain report measured 69.15 % sparsity on
the 7B model (arXiv:2509.05276), so compare the traced sparsity with
that number before trusting the extrapolation; the block-fetch fraction is the least
transferable statistic (it depends on how many columns share a block in a wider matrix).
"""
from __future__ import annotations

from typing import Iterable

import numpy as np

from ._checks import positive_int
from .activity import Activity
from .aggregate import RoleStats, role_statistics
from .shapes import ModelShape

ASSUMPTION = (
    "extrapolated: per-role events per input slot, step split, silent fraction and block-fetch "
    "fraction of the traced model are assumed independent of layer width and depth"
)


def _split_int(total: int, fractions: np.ndarray) -> np.ndarray:
    """Integer split of ``total`` following ``fractions`` (largest-remainder rounding)."""
    raw = fractions * total
    out = np.floor(raw).astype(np.int64)
    rem = int(total - out.sum())
    if rem > 0:
        out[np.argsort(-(raw - out))[:rem]] += 1
    return out


def activity_from_stats(
    stats: RoleStats, name: str, in_features: int, out_features: int, tokens: int,
    same_input_as: str | None = None,
) -> Activity:
    """An Activity for one layer of a new shape carrying ``stats`` (expected counts, rounded)."""
    for f, v in (("in_features", in_features), ("out_features", out_features), ("tokens", tokens)):
        positive_int("activity_from_stats", f, v)
    slots = tokens * in_features
    events = int(round(stats.events_per_slot * slots))
    eps = _split_int(events, np.asarray(stats.step_fractions, dtype=np.float64))
    hist = _split_int(slots, np.asarray(stats.hist_fractions, dtype=np.float64))
    ept = _split_int(events, np.full(tokens, 1.0 / tokens))
    full = tokens * stats.steps * in_features * out_features * stats.bytes_per_weight
    synops = events * out_features
    touched = max(int(round(stats.fetch_fraction * full)), synops * stats.bytes_per_weight)
    return Activity(
        name=name, role=stats.role, scheme=stats.scheme, steps=stats.steps, tokens=tokens,
        in_features=in_features, out_features=out_features,
        events_per_step=eps, events_per_token=ept,
        synaptic_ops=synops, acc_updates=int(round(synops * stats.acc_per_synop)),
        dense_macs=tokens * in_features * out_features,
        active_inputs_per_step=eps.copy(),
        silent_inputs=int(round(stats.silent_fraction * slots)),
        weight_bytes_touched=touched,
        weight_bytes_dense=in_features * out_features * stats.bytes_per_weight,
        block_columns=stats.block_columns, bytes_per_weight=stats.bytes_per_weight,
        event_hist=hist, same_input_as=same_input_as,
    )


def extrapolate(
    acts: Iterable[Activity], target: ModelShape, tokens: int | None = None, include_lm_head: bool = False
) -> list[Activity]:
    """Per-layer Activity records for ``target`` built from ``acts``' per-role statistics.

    Args:
        acts: per-layer records of the traced model (every role of ``target`` must appear).
        target: shape to extrapolate to (e.g. :data:`hw_models.shapes.QWEN25_7B`).
        tokens: tokens per record (default: the traced records' token count).
        include_lm_head: also build the lm_head (needs an ``lm_head`` record in ``acts``).
    """
    acts = list(acts)
    stats = role_statistics(acts)
    n_tok = tokens if tokens is not None else acts[0].tokens
    positive_int("extrapolate", "tokens", n_tok)
    out = []
    shared = target.shared_inputs(include_lm_head)
    for name, role, a, b in target.linear_shapes(include_lm_head):
        if role not in stats:
            raise ValueError(f"extrapolate: the trace has no {role!r} layer to take statistics from")
        out.append(activity_from_stats(stats[role], name, a, b, n_tok, same_input_as=shared.get(name)))
    return out
