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
    """

    def __init__(self, window: tuple[str, int] = REPORT_WINDOW) -> None:
        self.window = check_window(*window)
        self.layers: dict[str, LayerStats] = {}

    # -- accumulation -------------------------------------------------------------

    def update(self, layer: Any, role: str | None, counts: Any, vth: Any = None) -> None:
        """Add a chunk of token rows of one layer.

        Args:
            layer: a layer name or an object with ``name`` (and ``role``, ``in_features``,
                ``out_features``, ``index``), e.g. the trace's ``LayerInfo``.
            role: q, k, v, o, gate, up, down, lm_head; ``None`` takes it from ``layer`` or
                infers it from the name.
            counts: integer spike counts ``[tokens, channels]`` (numpy or torch).
            vth: ``[tokens]`` thresholds, or None.
        """
        self._update(layer, role, counts, vth)

    def _update(
        self, layer: Any, role: str | None, counts: Any, vth: Any, reuse: LayerStats | None = None
    ) -> LayerStats:
        """:meth:`update`; ``reuse`` is the chunk statistics of the very same counts and vth
        already computed for another layer (q/k/v and gate/up share their input)."""
        name, meta = self._layer_meta(layer, role)
        c = _as_counts(counts)
        if c.shape[1] == 0:
            raise ValueError(f"layer {name!r}: counts have no channels (shape {c.shape})")
        v = _as_vth(vth, c.shape[0])
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
            self._accumulate(chunk, c)
            if v is not None:
                chunk.state._add_vth(v)
        else:
            chunk = LayerStats(name, ls.role, ls.channels, state=reuse.state, channel_active=reuse.channel_active)
        ls.merge(chunk)
        self.layers[name] = ls  # only after every check passed: bad input loses nothing
        return chunk

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

    def _accumulate(self, ls: LayerStats, c: np.ndarray) -> None:
        st, C = ls.state, c.shape[1]
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
        last: tuple[Any, Any, LayerStats] | None = None
        for info, counts, vth in _progress(items, total, "statistics", progress):
            # the trace yields the very same arrays for layers sharing an input
            same = last is not None and counts is last[0] and vth is last[1]
            chunk = self._update(info, None, counts, vth, reuse=last[2] if same else None)
            last = (counts, vth, chunk)
        return self

    def _update_chunked(self, trace: Any, chunk_rows: int, progress: bool) -> "SpikeStats":
        groups: dict[str, list[Any]] = {}
        for name in trace.layers:
            src = trace.source_of(name) if hasattr(trace, "source_of") else name
            groups.setdefault(src, []).append(trace.layer(name))
        for src, infos in _progress(groups.items(), len(groups), "statistics", progress):
            for r0 in range(0, trace.n_tokens, chunk_rows):  # loop over row chunks
                rows = slice(r0, r0 + chunk_rows)
                counts, vth = trace.counts(src, rows), trace.vth(src, rows)
                chunk = None
                for info in infos:
                    chunk = self._update(info, None, counts, vth, reuse=chunk)
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
        """Add ``other`` into this accumulator, exactly; returns self."""
        if not isinstance(other, SpikeStats):
            raise TypeError(f"can only merge SpikeStats, got {type(other).__name__}")
        if other.window != self.window:
            raise ValueError(f"cannot merge statistics with window {other.window} into window {self.window}")
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


def _progress(items: Iterable, total: int | None, desc: str, enabled: bool) -> Iterator:
    if not enabled:
        return iter(items)
    from tqdm.auto import tqdm

    return iter(tqdm(items, total=total, desc=desc, unit="layer", leave=False, disable=None))  # None: terminal only
