"""The streaming accumulator :class:`SpikeStats`: per layer, role and model, mergeable exactly."""
from __future__ import annotations

import os
from typing import Any, Iterable, Iterator

import numpy as np

from .stats_counters import (
    EXACT_MAX,
    MAX_ABS_COUNT,
    ROW_BLOCK,
    VTH_LIMIT,
    _NV,
    CountState,
    LayerStats,
    _fraction_hist,
    _lines,
    check_window,
    window_events_lut,
)
from .roles import ROLES
from .roles import role_of as infer_role
from .stats_reference import REPORT_WINDOW
from .stats_storage import stats_from_hdf5, stats_to_hdf5
from .trace import SpikeTrace

# ----------------------------------------------------------------------------- input checks


def _as_counts(counts: Any) -> np.ndarray:
    if hasattr(counts, "detach") and hasattr(counts, "cpu"):  # torch tensor
        counts = counts.detach().cpu().numpy()
    if not isinstance(counts, np.ndarray):
        raise TypeError(f"counts must be a numpy array or torch tensor, got {type(counts).__name__}")
    if counts.ndim != 2:
        raise ValueError(f"counts must be 2-D [tokens, channels], got shape {counts.shape}")
    if counts.dtype.kind == "f":
        if not np.isfinite(counts).all() or (counts != np.round(counts)).any():
            raise ValueError("counts must be integers; found non-integral or non-finite floats")
        if counts.size and np.abs(counts).max() > MAX_ABS_COUNT:
            raise ValueError(f"counts magnitude {np.abs(counts).max():g} exceeds {MAX_ABS_COUNT}")
        counts = counts.astype(np.int64)
    elif counts.dtype.kind == "u":
        counts = counts.astype(np.int64)
    elif counts.dtype.kind != "i":
        raise TypeError(f"counts must have an integer dtype, got {counts.dtype}")
    if counts.dtype.itemsize < 2:
        counts = counts.astype(np.int16)
    if counts.size and counts.dtype.itemsize > 4:
        lo, hi = int(counts.min()), int(counts.max())
        if max(-lo, hi) > MAX_ABS_COUNT:
            raise ValueError(f"counts magnitude {max(-lo, hi)} exceeds {MAX_ABS_COUNT}")
    return counts


def _as_vth(vth: Any, rows: int) -> np.ndarray | None:
    if vth is None:
        return None
    if hasattr(vth, "detach") and hasattr(vth, "cpu"):
        vth = vth.detach().cpu().numpy()
    v = np.asarray(vth)
    if v.dtype.kind not in "fiu":
        raise TypeError(f"vth must be a float array, got dtype {v.dtype}")
    v = v.reshape(-1).astype(np.float32)
    if v.size != rows:
        raise ValueError(f"vth has {v.size} values but counts has {rows} token rows")
    if v.size and (not np.isfinite(v).all() or v.min() <= 0 or v.max() > VTH_LIMIT):
        raise ValueError(f"vth must be finite and in (0, {VTH_LIMIT:g}]; got min {v.min()}, max {v.max()}")
    return v


# ----------------------------------------------------------------------------- accumulator


class SpikeStats:
    """Streaming, mergeable statistics of spike counts, per layer, role and model.

    >>> import numpy as np
    >>> st = SpikeStats()
    >>> st.update("model.layers.0.mlp.up_proj", None, np.array([[0, 1, -9, 3]]), np.array([0.5]))
    >>> st.summary()["silence"]
    0.25

    Args:
        window: the (scheme, T) window of the headline sparsity and of the per-token sparsity
            histogram; default the report's bitwise-signed 3-step window.
        delta: count the temporal differences ``s_t - s_(t-1)`` (same layer and channel; the
            first token of a prompt keeps ``s_0``) that a sigma-delta sender transmits,
            instead of the counts themselves.
    """

    def __init__(self, window: tuple[str, int] = REPORT_WINDOW, delta: bool = False) -> None:
        self.window = check_window(*window)
        self.delta = bool(delta)
        self.layers: dict[str, LayerStats] = {}

    # -- accumulation -------------------------------------------------------------

    def update(self, layer: Any, role: str | None, counts: Any, vth: Any = None,
               prompt_starts: Any = None) -> None:
        """Add a chunk of token rows of one layer.

        Args:
            layer: a layer name or an object with ``name`` (and ``role``, ``in_features``,
                ``out_features``, ``index``), e.g. the trace's ``LayerInfo``.
            role: q, k, v, o, gate, up, down, lm_head; ``None`` takes it from ``layer`` or
                infers it from the name.
            counts: integer spike counts ``[tokens, channels]`` (numpy or torch).
            vth: ``[tokens]`` thresholds, or None.
            prompt_starts: rows of this chunk that begin a new prompt (temporal statistics
                never compare across them). None: the chunk continues the previous chunk of
                this layer, if any (streaming one prompt in pieces gives the same result).
        """
        self._update(layer, role, counts, vth, starts=prompt_starts)

    def _update(
        self, layer: Any, role: str | None, counts: Any, vth: Any, reuse: LayerStats | None = None,
        starts: Any = None,
    ) -> LayerStats:
        """:meth:`update`; ``reuse`` is the chunk statistics of the very same counts and vth
        already computed for another layer (q/k/v and gate/up share their input)."""
        name, meta = self._layer_meta(layer, role)
        c = _as_counts(counts)
        if c.shape[1] == 0:
            raise ValueError(f"layer {name!r}: counts have no channels (shape {c.shape})")
        v = _as_vth(vth, c.shape[0])
        st = _as_starts(starts, c.shape[0])
        raw = c
        if self.delta and reuse is None:
            prev = self._raw_tail(name)
            c = delta_counts(c, st, prev if prev is not None and prev.shape[0] == c.shape[1] else None)
        ls = self.layers.get(name)
        if ls is None:
            ls = LayerStats(name, meta["role"], c.shape[1], meta["index"], meta["in_features"], meta["out_features"])
        elif ls.channels != c.shape[1] or ls.role != meta["role"]:
            raise ValueError(
                f"layer {name!r} has {ls.channels} channels and role {ls.role!r}; "
                f"got {c.shape[1]} channels and role {meta['role']!r}"
            )
        if reuse is None:
            chunk = LayerStats(name, ls.role, ls.channels)
            self._accumulate(chunk, c, st)
            if v is not None:
                chunk.state._add_vth(v)
            if self.delta and raw.shape[0]:
                chunk.raw_tail = raw[-1].astype(np.int64)
        else:
            chunk = LayerStats(name, ls.role, ls.channels, state=reuse.state, channel_active=reuse.channel_active,
                               head=reuse.head, tail=reuse.tail)
            if hasattr(reuse, "raw_tail"):
                chunk.raw_tail = reuse.raw_tail
        ls.merge(chunk)
        if self.delta and hasattr(chunk, "raw_tail"):
            self._raw_tails[name] = chunk.raw_tail
        self.layers[name] = ls  # only after every check passed: bad input loses nothing
        return chunk

    @property
    def _raw_tails(self) -> dict[str, np.ndarray]:
        if not hasattr(self, "_raw_tail_map"):
            self._raw_tail_map: dict[str, np.ndarray] = {}
        return self._raw_tail_map

    def _raw_tail(self, name: str) -> np.ndarray | None:
        """The last token's raw counts of ``name`` (delta statistics difference against it)."""
        return self._raw_tails.get(name)

    def _layer_meta(self, layer: Any, role: str | None) -> tuple[str, dict]:
        if isinstance(layer, str):
            name, info = layer, None
        elif hasattr(layer, "name"):
            name, info = str(layer.name), layer
        else:
            raise TypeError(f"layer must be a name or a LayerInfo, got {type(layer).__name__}")
        if not name:
            raise ValueError("layer name must be a non-empty string")
        if role is None:
            role = getattr(info, "role", None) or infer_role(name)
        if not isinstance(role, str):
            raise TypeError(
                f"role must be a string or None, got {type(role).__name__} (argument order: layer, role, counts, vth)"
            )
        meta = {
            "role": role,
            "index": int(getattr(info, "index", -1) if info is not None else -1),
            "in_features": int(getattr(info, "in_features", 0) or 0),
            "out_features": int(getattr(info, "out_features", 0) or 0),
        }
        return name, meta

    def _accumulate(self, ls: LayerStats, c: np.ndarray, starts: np.ndarray) -> None:
        st, C = ls.state, c.shape[1]
        if c.shape[0]:
            ls.head = None if (starts.size and starts[0] == 0) else c[0].copy()
            ls.tail = c[-1].copy()
        begins = np.zeros(c.shape[0], dtype=bool)
        begins[starts] = True
        scheme, T = self.window
        ev_lut = window_events_lut(scheme, T)
        ev_ext = np.concatenate([ev_lut[:1], ev_lut, ev_lut[-1:]]).astype(np.int16)
        slots = _lines(scheme) * C * T
        rows_per_block = max(1, ROW_BLOCK // max(C, 1))
        for r0 in range(0, c.shape[0], rows_per_block):  # loop over row blocks: bounded memory
            blk = c[r0 : r0 + rows_per_block]
            idx = np.clip(blk, -EXACT_MAX - 1, EXACT_MAX + 1).astype(np.int16)
            idx += EXACT_MAX + 1
            h = np.bincount(idx.ravel(), minlength=_NV + 2)
            st.hist += h[1:-1]
            if h[0] or h[-1]:
                st._add_overflow(blk[(blk < -EXACT_MAX) | (blk > EXACT_MAX)].astype(np.int64))
            nz = idx != EXACT_MAX + 1
            ls.channel_active += nz.sum(axis=0, dtype=np.int64)
            lo_row = max(r0, 1)  # temporal: each row against the previous one, not across prompts
            if lo_row < r0 + blk.shape[0]:
                keep = ~begins[lo_row : r0 + blk.shape[0]]
                same = (c[lo_row : r0 + blk.shape[0]] == c[lo_row - 1 : r0 + blk.shape[0] - 1]).sum(axis=1)
                st.temporal_same += int(same[keep].sum())
                st.temporal_pairs += int(keep.sum()) * C
            zeros = C - nz.sum(axis=1, dtype=np.int64)
            st.token_silence_hist += _fraction_hist(zeros, C)
            ev = ev_ext[idx].sum(axis=1, dtype=np.int64)
            st.token_sparsity_hist += _fraction_hist(slots - ev, slots)
            if blk.size:
                lo, hi = int(blk.min()), int(blk.max())
                st.lo = lo if st.lo is None else min(st.lo, lo)
                st.hi = hi if st.hi is None else max(st.hi, hi)
        st.rows += c.shape[0]
        st.values += c.size

    def update_trace(self, trace: Any, progress: bool = True, chunk_rows: int | None = None) -> "SpikeStats":
        """Add every layer of a :class:`analysis.trace.SpikeTrace` (or a (layer, counts, vth) iterable).

        ``chunk_rows`` reads a trace ``chunk_rows`` token rows at a time (bounded memory for
        long traces); the result is identical. Layers fed the same input (q/k/v, gate/up)
        are computed once.
        """
        if chunk_rows is not None:
            if isinstance(chunk_rows, bool) or not isinstance(chunk_rows, (int, np.integer)) or chunk_rows < 1:
                raise ValueError(f"chunk_rows must be a positive int, got {chunk_rows!r}")
            if not hasattr(trace, "counts"):
                raise TypeError("chunk_rows needs a SpikeTrace (something with counts(name, rows) and vth(name, rows))")
            return self._update_chunked(trace, int(chunk_rows), progress)
        items = trace.iter_layers() if hasattr(trace, "iter_layers") else trace
        total = len(trace.layers) if hasattr(trace, "layers") else None
        starts = _trace_starts(trace)
        last: tuple[Any, Any, LayerStats] | None = None
        for info, counts, vth in _progress(items, total, "statistics", progress):
            # the trace yields the very same arrays for layers sharing an input
            same = last is not None and counts is last[0] and vth is last[1]
            chunk = self._update(info, None, counts, vth, reuse=last[2] if same else None, starts=starts)
            last = (counts, vth, chunk)
        return self

    def _update_chunked(self, trace: Any, chunk_rows: int, progress: bool) -> "SpikeStats":
        groups: dict[str, list[Any]] = {}
        for name in trace.layers:
            src = trace.source_of(name) if hasattr(trace, "source_of") else name
            groups.setdefault(src, []).append(trace.layer(name))
        starts = _trace_starts(trace)
        starts = np.zeros(1, np.int64) if starts is None else starts
        for src, infos in _progress(groups.items(), len(groups), "statistics", progress):
            for r0 in range(0, trace.n_tokens, chunk_rows):  # loop over row chunks
                rows = slice(r0, r0 + chunk_rows)
                counts, vth = trace.counts(src, rows), trace.vth(src, rows)
                here = starts[(starts >= r0) & (starts < r0 + chunk_rows)] - r0
                chunk = None
                for info in infos:
                    chunk = self._update(info, None, counts, vth, reuse=chunk, starts=here)
        return self

    @classmethod
    def from_trace(
        cls, trace: Any, window: tuple[str, int] = REPORT_WINDOW, progress: bool = True, chunk_rows: int | None = None
    ) -> "SpikeStats":
        """Statistics of a trace: a ``SpikeTrace``, a path to one, or an iterable of (layer, counts, vth)."""
        if isinstance(trace, (str, os.PathLike)):
            with SpikeTrace.open(trace) as opened:
                return cls(window).update_trace(opened, progress, chunk_rows)
        return cls(window).update_trace(trace, progress, chunk_rows)

    def merge(self, other: "SpikeStats") -> "SpikeStats":
        """Add ``other`` into this accumulator, exactly; returns self.

        Temporal counters: a layer of ``other`` whose first token continues a prompt (no
        ``prompt_starts`` at its row 0) is compared with this accumulator's last token of
        that layer, so pieces of one prompt merge exactly in token order; statistics of
        separate prompts merge in any order.
        """
        if not isinstance(other, SpikeStats):
            raise TypeError(f"can only merge SpikeStats, got {type(other).__name__}")
        if other.window != self.window:
            raise ValueError(f"cannot merge statistics with window {other.window} into window {self.window}")
        if other.delta != self.delta:
            raise ValueError("cannot merge statistics of temporal differences (delta) with statistics of counts")
        for name, ols in other.layers.items():  # check everything before changing anything
            mine = self.layers.get(name)
            if mine is not None and (mine.channels, mine.role) != (ols.channels, ols.role):
                raise ValueError(
                    f"layer {name!r}: {ols.channels} channels/role {ols.role!r} vs {mine.channels}/{mine.role!r}"
                )
        for name, ols in other.layers.items():
            if name in self.layers:
                self.layers[name].merge(ols)
            else:
                fresh = LayerStats(name, ols.role, ols.channels, ols.index, ols.in_features, ols.out_features)
                fresh.merge(ols)
                self.layers[name] = fresh
        return self

    def __eq__(self, other: object) -> bool:
        if not isinstance(other, SpikeStats):
            return NotImplemented
        return self.window == other.window and self.layers == other.layers

    # -- views ----------------------------------------------------------------------

    def ordered_layers(self) -> list[LayerStats]:
        """Layers by trace index (layers without an index keep insertion order, last)."""
        items = list(self.layers.values())
        keyed = [((0, ls.index) if ls.index >= 0 else (1, i), ls) for i, ls in enumerate(items)]
        return [ls for _, ls in sorted(keyed, key=lambda kv: kv[0])]

    @property
    def roles(self) -> list[str]:
        """Roles present, in the canonical order q, k, v, o, gate, up, down, lm_head, others."""
        present = {ls.role for ls in self.layers.values()}
        return [r for r in ROLES if r in present] + sorted(present - set(ROLES))

    def scope_layers(self, scope: str = "model") -> list[LayerStats]:
        """Layers of ``"model"`` (all), a role (``"q"``, ...) or one layer name, in trace order."""
        if scope in self.layers:
            return [self.layers[scope]]
        chosen = [ls for ls in self.ordered_layers() if scope == "model" or ls.role == scope]
        if not chosen and scope != "model":
            raise ValueError(f"unknown scope {scope!r}: not 'model', a role ({', '.join(self.roles)}) or a layer")
        return chosen

    def group(self, scope: str = "model") -> CountState:
        """Summed state of ``"model"``, a role or one layer name (see :meth:`scope_layers`)."""
        chosen = self.scope_layers(scope)
        if len(chosen) == 1:
            return chosen[0].state
        out = CountState()
        for ls in chosen:
            out.add(ls.state)
        return out

    def summary(self, scope: str = "model") -> dict[str, Any]:
        """Headline numbers of ``scope`` (model, a role, or a layer name); fractions in [0, 1]."""
        chosen = self.scope_layers(scope)
        st = self.group(scope)
        scheme, T = self.window
        spa = st.spikes_per_active(scheme, T)
        af = st.active_fraction()
        return {
            "scope": scope,
            "layers": len(chosen),
            "tokens": max((ls.state.rows for ls in chosen), default=0),
            "values": st.values,
            "window_scheme": scheme,
            "window_steps": T,
            "sparsity": st.sparsity(scheme, T),
            "sparsity_identity": 1.0 - spa * af / (_lines(scheme) * T),
            "silence": st.silence(),
            "active_fraction": af,
            "spikes_per_active_channel": spa,
            "frac_abs_le_7": st.frac_abs_le(7),
            "frac_abs_gt_16": st.frac_abs_gt(16),
            "max_abs_count": st.max_abs(),
            "clipped_fraction": st.clipped(scheme, T) / st.values if st.values else float("nan"),
            "temporal_sparsity": st.temporal_sparsity(),
            "channels": st.channels,
            "never_firing_channels": st.never_firing,
            "never_firing_fraction": st.never_firing / st.channels if st.channels else float("nan"),
            "token_silence_p50": st.token_fraction_percentile("silence", 50),
            "token_sparsity_p50": st.token_fraction_percentile("sparsity", 50),
            "vth_mean": st.vth_mean(),
            "vth_p05": st.vth_percentile(5),
            "vth_p50": st.vth_percentile(50),
            "vth_p95": st.vth_percentile(95),
        }

    def layer_table(self) -> list[dict[str, Any]]:
        """One summary row per layer, in trace order (adds ``name``, ``role``, ``index``)."""
        rows = []
        for ls in self.ordered_layers():
            row = {"name": ls.name, "role": ls.role, "index": ls.index}
            row.update(self.summary(ls.name))
            rows.append(row)
        return rows

    def role_table(self) -> list[dict[str, Any]]:
        """One summary row per role, then the model row."""
        return [self.summary(r) for r in self.roles] + [self.summary("model")]

    # -- HDF5 ---------------------------------------------------------------------
    def to_hdf5(self, group: Any) -> None:
        """Write into an open, writable h5py group (layout: :func:`analysis.stats_storage.stats_to_hdf5`)."""
        stats_to_hdf5(self, group)

    @classmethod
    def from_hdf5(cls, group: Any) -> "SpikeStats":
        """Read what :meth:`to_hdf5` wrote (exactly; derived summaries are recomputed, not read)."""
        return stats_from_hdf5(cls, group)


def _as_starts(starts: Any, rows: int) -> np.ndarray:
    """Prompt-start rows of a chunk as a sorted int64 array inside ``[0, rows)`` (ValueError otherwise)."""
    if starts is None:
        return np.zeros(0, np.int64)
    s = np.unique(np.asarray(starts, dtype=np.int64).reshape(-1))
    s = s[s < rows] if rows else s[:0]  # a prompt starting at the chunk's end begins in the next one
    if s.size and s[0] < 0:
        raise ValueError(f"prompt_starts must be non-negative row indices, got {s[0]}")
    return s


def _trace_starts(trace: Any) -> np.ndarray | None:
    """A trace's prompt starts (None for a plain iterable of (layer, counts, vth))."""
    st = getattr(trace, "prompt_starts", None)
    return None if st is None else np.asarray(st, dtype=np.int64).reshape(-1)


def delta_counts(counts: np.ndarray, starts: np.ndarray, prev: np.ndarray | None) -> np.ndarray:
    """Temporal differences ``d_t = s_t - s_(t-1)`` of ``[tokens, channels]`` counts (int64).

    A row in ``starts`` begins a prompt and keeps ``s_t`` (a sigma-delta sender's first
    token); row 0 differences against ``prev`` (the previous chunk's last row) unless it
    begins a prompt or ``prev`` is None.
    """
    c = np.asarray(counts, dtype=np.int64)
    d = c.copy()
    d[1:] -= c[:-1]
    if c.shape[0] and prev is not None:
        d[0] -= np.asarray(prev, dtype=np.int64)
    if starts.size:
        d[starts] = c[starts]
    return d


def _progress(items: Iterable, total: int | None, desc: str, enabled: bool) -> Iterator:
    if not enabled:
        return iter(items)
    from tqdm.auto import tqdm

    return iter(tqdm(items, total=total, desc=desc, unit="layer", leave=False, disable=None))  # None: terminal only
