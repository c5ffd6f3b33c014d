"""One layer's spike counts, selected (tokens, neurons) and encoded into time-ordered events.

Every export format is written from a :class:`LayerSpikes`; the readers decode their files
back to counts with :func:`decode_events`, so a round trip is exact by construction of the
encoders (``encode`` then ``decode`` is the identity for every scheme and bit order).

Time: a token occupies ``T`` consecutive steps, so the global time of a spike is
``timestamp = token * T + step`` (token = absolute row of the trace, step in [0, T)).
"""
from __future__ import annotations

from dataclasses import dataclass, field
from functools import cached_property
from typing import Any, Sequence, Union

import numpy as np
import torch

import encoders

# Scheme codes stored in the binary formats: each scheme's pinned ``wire_id`` (encoders.code),
# never its position, so that a reordering of the registry can never change the file format.
SCHEME_CODES: dict[str, int] = {s.name: s.wire_id for s in encoders.REGISTRY.values()}
BIT_ORDER_CODES: dict[str, int] = {o: i for i, o in enumerate(encoders.BIT_ORDERS)}

# Bound on int8 spike slots encoded at once (T * tokens * neurons); larger selections are
# encoded in token chunks so memory stays bounded (about 16 MiB of spikes per chunk) whatever T is.
_CHUNK_SLOTS = 16 * 2**20

TokenSelection = Union[None, slice, range, tuple[int, int]]
NeuronSelection = Union[None, slice, range, Sequence[int], np.ndarray]


@dataclass(frozen=True)
class SpikeEventTable:
    """Spike events sorted by ``timestamp`` then ``neuron`` (all int64 except polarity).

    Attributes:
        timestamp: global step ``token * T + step``.
        token: absolute token (trace row) of the event.
        step: step within the token's window, in [0, T).
        neuron: absolute input channel (neuron address) of the layer.
        polarity: int8, +1 or -1 (only +1 for unipolar schemes); graded schemes: the signed
            integer payload (at most 8 bits).
    """

    timestamp: np.ndarray
    token: np.ndarray
    step: np.ndarray
    neuron: np.ndarray
    polarity: np.ndarray

    def __len__(self) -> int:
        return int(self.timestamp.shape[0])


@dataclass(frozen=True)
class LayerSpikes:
    """A selection of one layer's spike counts, ready to export.

    Attributes:
        layer: layer name (e.g. ``model.layers.0.mlp.up_proj``).
        layer_id: integer id of the layer in its trace (0..65535).
        scheme, T, bit_order: the spike coding (see :mod:`encoders`).
        token_start: absolute index of the first selected token.
        counts: int64 [n_tokens, n_selected] counts of the selected tokens and neurons.
        neurons: int64 [n_selected] absolute neuron ids, strictly increasing.
        n_neurons: width of the layer input (the neuron address space).
        vth: float32 [n_tokens] threshold of each selected token (activation units), or None.
        k: threshold divisor used at capture (V_th = mean|x| / k), or None.
        info: extra JSON-serialisable facts (model id, role, ...) copied into file metadata.
    """

    layer: str
    layer_id: int
    scheme: str
    T: int
    bit_order: str
    token_start: int
    counts: np.ndarray
    neurons: np.ndarray
    n_neurons: int
    vth: np.ndarray | None = None
    k: float | None = None
    info: dict[str, Any] = field(default_factory=dict)
    device: str | None = None

    @property
    def n_tokens(self) -> int:
        return int(self.counts.shape[0])

    @property
    def token_stop(self) -> int:
        return self.token_start + self.n_tokens

    @property
    def n_selected(self) -> int:
        return int(self.neurons.shape[0])

    @property
    def bipolar(self) -> bool:
        """True when spikes carry a sign (-1 events exist): ternary, bitwise-signed."""
        return encoders.get_scheme(self.scheme).bipolar

    @property
    def all_neurons(self) -> bool:
        return self.n_selected == self.n_neurons

    @property
    def n_steps(self) -> int:
        """Steps covered by the selection: ``n_tokens * T``."""
        return self.n_tokens * self.T

    def metadata(self, include_neurons: bool = True) -> dict[str, Any]:
        """The selection's description as a JSON-serialisable dict (used by text formats).

        ``neurons`` (the list of exported ids) is included only for a neuron subset.
        """
        meta: dict[str, Any] = dict(self.info)  # core fields below take precedence
        meta.update({
            "layer": self.layer,
            "layer_id": self.layer_id,
            "scheme": self.scheme,
            "T": self.T,
            "bit_order": self.bit_order,
            "token_start": self.token_start,
            "n_tokens": self.n_tokens,
            "n_neurons": self.n_neurons,
            "n_selected": self.n_selected,
        })
        if self.k is not None:
            meta["k"] = self.k
        if include_neurons and not self.all_neurons:
            meta["neurons"] = self.neurons.tolist()
        return meta

    @cached_property
    def events(self) -> SpikeEventTable:
        """The encoded spike events of the selection (computed once, then cached)."""
        return _encode_events(self)


def _resolve_tokens(tokens: TokenSelection, n: int) -> tuple[int, int]:
    if tokens is None:
        start, stop = 0, n
    elif isinstance(tokens, (slice, range)):
        if tokens.step not in (None, 1):
            raise ValueError(f"tokens must be a contiguous range (step 1), got step {tokens.step}")
        if isinstance(tokens, slice):
            start, stop, _ = tokens.indices(n)
            if tokens.stop is not None and not -n <= tokens.stop <= n:
                raise ValueError(f"tokens stop {tokens.stop} is outside the {n} available tokens")
            if tokens.start is not None and not -n <= tokens.start < n:
                raise ValueError(f"tokens start {tokens.start} is outside [0, {n})")
        else:
            start, stop = tokens.start, tokens.stop
    elif isinstance(tokens, tuple) and len(tokens) == 2:
        start, stop = tokens
    else:
        raise TypeError(
            f"tokens must be None, a slice, a range or a (start, stop) pair, got {type(tokens).__name__}"
        )
    for v in (start, stop):
        if isinstance(v, bool) or not isinstance(v, (int, np.integer)):
            raise TypeError(f"token bounds must be integers, got {v!r}")
    start, stop = int(start), int(stop)
    if not 0 <= start < n or not start < stop <= n:
        if start >= stop:
            raise ValueError(f"empty token selection [{start}, {stop}) (the layer has {n} tokens)")
        raise ValueError(f"token selection [{start}, {stop}) is outside the {n} available tokens [0, {n})")
    return start, stop


def resolve_tokens(tokens: TokenSelection, n_tokens: int) -> tuple[int, int]:
    """Validate a token selection against ``n_tokens`` rows; return ``(start, stop)``.

    Accepts None (all), a slice or range with step 1 (negative slice bounds count from the
    end), or a ``(start, stop)`` pair. Raises ValueError for empty or out-of-range selections.
    """
    if n_tokens <= 0:
        raise ValueError("the layer has no tokens to export")
    return _resolve_tokens(tokens, n_tokens)


def resolve_neurons(neurons: NeuronSelection, n_neurons: int) -> np.ndarray:
    """Validate a neuron selection; return sorted unique int64 ids in [0, n_neurons).

    Accepts None (all), a slice or range, or a 1-D sequence of integers (any order, no
    duplicates). Raises ValueError for an empty selection, duplicates or an id out of range.
    """
    if n_neurons <= 0:
        raise ValueError("the layer has no neurons (input channels) to export")
    if neurons is None:
        return np.arange(n_neurons, dtype=np.int64)
    if isinstance(neurons, slice):
        ids = np.arange(n_neurons, dtype=np.int64)[neurons]
    elif isinstance(neurons, range):
        ids = np.asarray(neurons, dtype=np.int64)
    else:
        if isinstance(neurons, torch.Tensor):
            neurons = neurons.detach().cpu().numpy()
        arr = np.asarray(neurons)
        if arr.ndim != 1:
            raise ValueError(f"neurons must be a 1-D list of ids, got shape {arr.shape}")
        if arr.size and arr.dtype.kind not in "iu":
            raise TypeError(f"neuron ids must be integers, got dtype {arr.dtype}")
        ids = arr.astype(np.int64)
    if ids.size == 0:
        raise ValueError("empty neuron selection: select at least one neuron")
    bad = ids[(ids < 0) | (ids >= n_neurons)]
    if bad.size:
        raise ValueError(f"neuron id {int(bad[0])} is out of range [0, {n_neurons}) for this layer")
    ids = np.sort(ids)
    dup = ids[1:][ids[1:] == ids[:-1]]
    if dup.size:
        raise ValueError(f"neuron id {int(dup[0])} is selected more than once")
    return ids


def _as_numpy(a: Any, name: str) -> np.ndarray:
    if isinstance(a, torch.Tensor):
        return a.detach().cpu().numpy()
    if isinstance(a, np.ndarray):
        return a
    raise TypeError(f"{name} must be a numpy array or a torch tensor, got {type(a).__name__}")


def _check_sign(sch: encoders.Scheme, lo: int, layer: str) -> None:
    try:
        sch.check_counts_sign(lo)
    except ValueError as e:
        raise ValueError(f"layer {layer!r}: {e}") from None


def select_layer(
    counts: Any,
    vth: Any = None,
    *,
    layer: str = "layer",
    layer_id: int = 0,
    scheme: str = encoders.DEFAULT_SCHEME,
    T: int | None = None,
    bit_order: str = "msb",
    tokens: TokenSelection = None,
    neurons: NeuronSelection = None,
    token_offset: int = 0,
    k: float | None = None,
    info: dict[str, Any] | None = None,
    device: str | torch.device | None = None,
) -> LayerSpikes:
    """Select and validate a layer's counts for export (plain-array entry point).

    Args:
        counts: integer spike counts [tokens, channels] (numpy or torch; int16 in traces).
        vth: float V_th per token [tokens] (activation units), or None if unknown.
        layer, layer_id: name and integer id written into every file.
        scheme, T, bit_order: spike coding; ``T=None`` applies the Int2Spike default rule to
            the selected tokens (all channels), so a neuron subset keeps the layer's T.
        tokens: contiguous token selection (rows of ``counts``), see :func:`resolve_tokens`.
        neurons: neuron (channel) selection, see :func:`resolve_neurons`.
        token_offset: absolute token index of ``counts`` row 0 (when ``counts`` holds a slice
            of a longer trace); exported token ids and timestamps are absolute.
        k: the V_th divisor used at capture, recorded in metadata.
        info: extra JSON-serialisable metadata (e.g. ``{"model_id": ..., "role": "up"}``).
        device: where to run the encoder (``"cpu"``, ``"cuda"``); events come back to the host.

    Raises:
        ValueError: unknown scheme or bit order, T too small or not positive, counts that the
            scheme cannot carry (e.g. negative counts for ``binary``), bad selections,
            non-finite or non-positive V_th, a layer id outside 0..65535.
        TypeError: non-array inputs or non-integer counts.
    """
    sch = encoders.get_scheme(scheme)
    encoders.check_bit_order(bit_order)
    if not isinstance(layer, str) or not layer:
        raise ValueError("layer name must be a non-empty string")
    if isinstance(layer_id, bool) or not isinstance(layer_id, (int, np.integer)) or not 0 <= layer_id <= 0xFFFF:
        raise ValueError(f"layer_id must be an integer in [0, 65535], got {layer_id!r}")
    c = _as_numpy(counts, "counts")
    if c.ndim != 2:
        raise ValueError(f"counts must be 2-D [tokens, channels], got shape {c.shape}")
    if c.dtype.kind not in "iu":
        if c.dtype.kind == "f":
            if not np.isfinite(c).all() or (c != np.round(c)).any():
                raise ValueError("counts must be integers (found fractional or non-finite values)")
        else:
            raise TypeError(f"counts must have an integer dtype, got {c.dtype}")
    start, stop = resolve_tokens(tokens, c.shape[0])
    ids = resolve_neurons(neurons, c.shape[1])
    rows = c[start:stop]
    if T is None:
        lo, hi = (int(rows.min()), int(rows.max())) if rows.size else (0, 0)
        _check_sign(sch, lo, layer)
        T = max(1, sch.steps_needed(lo, hi))
    elif isinstance(T, bool) or not isinstance(T, (int, np.integer)) or T < 1:
        raise ValueError(f"T must be a positive integer number of steps per token, got {T!r}")
    T = int(T)
    encoders.SpikeCode(sch, T, bit_order)  # checks T and the bit order once
    sel = rows if ids.shape[0] == c.shape[1] else rows[:, ids]
    sel = sel.astype(np.int64)
    if sel.size:
        lo, hi = int(sel.min()), int(sel.max())
        _check_sign(sch, lo, layer)
        rlo, rhi = encoders.count_range(scheme, T)
        if lo < rlo or hi > rhi:
            raise ValueError(
                f"layer {layer!r}: T={T} is too small for scheme {scheme!r}: counts span [{lo}, {hi}] "
                f"but T={T} carries [{rlo}, {rhi}]"
            )
    if vth is not None:
        v = _as_numpy(vth, "vth").astype(np.float32, copy=False)
        if v.shape != (c.shape[0],):
            raise ValueError(f"vth must have one value per token: shape ({c.shape[0]},), got {v.shape}")
        v = v[start:stop].copy()
        if not np.isfinite(v).all() or (v <= 0).any():
            raise ValueError("vth must be finite and positive for every selected token")
    else:
        v = None
    if k is not None and (not np.isfinite(k) or k <= 0):
        raise ValueError(f"k must be positive and finite, got {k}")
    if isinstance(token_offset, bool) or not isinstance(token_offset, (int, np.integer)) or token_offset < 0:
        raise ValueError(f"token_offset must be a non-negative integer, got {token_offset!r}")
    token_start = int(token_offset) + start
    last_time = (token_start + (stop - start)) * T
    if last_time > 2**32 - 1:
        raise ValueError(
            f"timestamps up to {last_time} exceed the 32-bit timestamp field; export fewer tokens or a smaller T"
        )
    return LayerSpikes(
        layer=layer,
        layer_id=int(layer_id),
        scheme=scheme,
        T=T,
        bit_order=bit_order,
        token_start=token_start,
        counts=sel,
        neurons=ids,
        n_neurons=int(c.shape[1]),
        vth=v,
        k=None if k is None else float(k),
        info=dict(info or {}),
        device=None if device is None else str(device),
    )


def _payload_bound(scheme: str) -> int:
    """Largest |value| an exported event carries: 1, or a graded payload of at most 8 bits."""
    sch = encoders.get_scheme(scheme)
    if sch.graded and sch.payload_bits > 8:
        raise ValueError(f"exports carry graded payloads of at most 8 bits; scheme {scheme!r} has {sch.payload_bits}")
    return sch.payload_max


def _encode_events(ls: LayerSpikes) -> SpikeEventTable:
    n_tok, n_sel, T = ls.n_tokens, ls.n_selected, ls.T
    bound = _payload_bound(ls.scheme)
    rows_per_chunk = max(1, _CHUNK_SLOTS // max(1, T * n_sel))
    parts: list[tuple[np.ndarray, np.ndarray, np.ndarray]] = []
    starts = range(0, n_tok, rows_per_chunk)
    if len(starts) > 1:
        from tqdm.auto import tqdm

        starts = tqdm(starts, desc=f"encoding {ls.layer}", unit="chunk", leave=False, disable=None)  # terminal only
    for r0 in starts:
        block = ls.counts[r0 : r0 + rows_per_chunk]
        t = torch.from_numpy(block)
        if ls.device is not None:
            t = t.to(ls.device)
        spikes = encoders.encode(t, ls.scheme, T, ls.bit_order)  # int8 [T, rows, n_sel]
        # Token-major time axis: row g = token * T + step, so events come out time-ordered.
        ev = encoders.to_events(spikes.permute(1, 0, 2).reshape(-1, n_sel), max_value=bound)
        parts.append((ev.step + r0 * T, ev.index, ev.polarity))
    local = np.concatenate([p[0] for p in parts]) if parts else np.empty(0, np.int64)
    idx = np.concatenate([p[1] for p in parts]) if parts else np.empty(0, np.int64)
    pol = np.concatenate([p[2] for p in parts]) if parts else np.empty(0, np.int8)
    token_local = local // T
    return SpikeEventTable(
        timestamp=local + ls.token_start * T,
        token=token_local + ls.token_start,
        step=local - token_local * T,
        neuron=ls.neurons[idx],
        polarity=pol.astype(np.int8, copy=False),
    )


def decode_events(
    token: np.ndarray,
    step: np.ndarray,
    neuron: np.ndarray,
    polarity: np.ndarray,
    *,
    scheme: str,
    T: int,
    bit_order: str,
    token_start: int,
    n_tokens: int,
    n_neurons: int,
) -> np.ndarray:
    """Events back to integer counts: int64 [n_tokens, n_neurons], rows from ``token_start``.

    ``counts[token, neuron] = sum over its events of polarity * step_weight[step]``, with the
    step weights of :func:`encoders.step_weights` (all 1 for binary/ternary). Raises
    ValueError if an event lies outside the declared tokens, neurons or steps.
    """
    token = np.asarray(token, dtype=np.int64)
    step = np.asarray(step, dtype=np.int64)
    neuron = np.asarray(neuron, dtype=np.int64)
    pol = np.asarray(polarity, dtype=np.int64)
    if not (token.shape == step.shape == neuron.shape == pol.shape) or token.ndim != 1:
        raise ValueError("token, step, neuron and polarity must be 1-D arrays of equal length")
    if token.size:
        if token.min() < token_start or token.max() >= token_start + n_tokens:
            raise ValueError(f"event token outside [{token_start}, {token_start + n_tokens})")
        if step.min() < 0 or step.max() >= T:
            raise ValueError(f"event step outside [0, {T})")
        if neuron.min() < 0 or neuron.max() >= n_neurons:
            raise ValueError(f"event neuron outside [0, {n_neurons})")
        bound = _payload_bound(scheme)
        if bound == 1 and not np.isin(pol, (-1, 1)).all():
            raise ValueError("event polarity must be +1 or -1")
        if bound > 1 and ((pol == 0).any() or (np.abs(pol) > bound).any()):
            raise ValueError(f"graded event payloads must be non-zero and within [-{bound}, {bound}]")
    w = encoders.get_scheme(scheme).step_weights(T, bit_order)
    out = np.zeros(n_tokens * n_neurons, dtype=np.int64)
    np.add.at(out, (token - token_start) * n_neurons + neuron, pol * w[step])
    return out.reshape(n_tokens, n_neurons)


def expected_counts(ls: LayerSpikes) -> np.ndarray:
    """What a reader should decode for ``ls``: int64 [n_tokens, n_neurons], zero off-selection."""
    out = np.zeros((ls.n_tokens, ls.n_neurons), dtype=np.int64)
    out[:, ls.neurons] = ls.counts
    return out


def mantissa_exponent(x: np.ndarray, digits: int = 9) -> tuple[np.ndarray, np.ndarray]:
    """Positive floats as ``m * 10**e`` with a ``digits``-digit integer m (vectorized).

    Nine significant digits round-trip every float32 exactly.
    """
    x = np.asarray(x, dtype=np.float64)
    e10 = np.floor(np.log10(x)).astype(np.int64) - (digits - 1)
    m = np.rint(x / np.power(10.0, e10)).astype(np.int64)
    over = m >= 10**digits
    m[over] //= 10  # rounding carried into a new digit (e.g. 9.999999999 -> 10.00000000)
    e10[over] += 1
    return m, e10


__all__ = [
    "BIT_ORDER_CODES", "LayerSpikes", "SCHEME_CODES", "SpikeEventTable", "decode_events",
    "expected_counts", "mantissa_exponent", "resolve_neurons", "resolve_tokens", "select_layer",
]
