"""Check a trace end to end: every dataset's checksum, and its stored statistics against
statistics re-derived from its counts (the engine of ``neurosim verify``)."""
from __future__ import annotations

import math
import os
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

import h5py

from .stats import NoStatsError, SpikeStats, StatsDamagedError, read_stats
from .trace_reader import SpikeTrace

__all__ = ["VerifyResult", "verify_trace"]


@dataclass
class VerifyResult:
    """Outcome of :func:`verify_trace`: ``ok`` when nothing differs."""

    path: Path
    checksums: bool  # the trace carries checksums (schema 1.1+); a 1.0 file is only read back
    has_stats: bool
    problems: list[str] = field(default_factory=list)  # one line each: what is damaged or differs
    layers: int = 0
    tokens: int = 0

    @property
    def ok(self) -> bool:
        return not self.problems


def _same(a: Any, b: Any) -> bool:
    if isinstance(a, float) and isinstance(b, float) and math.isnan(a) and math.isnan(b):
        return True
    return a == b


def _diff(stored: SpikeStats, derived: SpikeStats) -> list[str]:
    out = []
    if stored.window != derived.window:
        out.append(f"window: stored {stored.window}, derived {derived.window}")
    s_rows = {r["name"]: r for r in stored.layer_table()}
    d_rows = {r["name"]: r for r in derived.layer_table()}
    for name in sorted(set(s_rows) ^ set(d_rows)):
        out.append(f"layer {name}: {'only in /stats' if name in s_rows else 'missing from /stats'}")
    for name, d in d_rows.items():
        s = s_rows.get(name)
        if s is None:
            continue
        for key, val in d.items():
            if not _same(s.get(key), val):
                out.append(f"layer {name} {key}: stored {s.get(key)!r}, derived {val!r}")
    if stored.layers != derived.layers and not out:  # a difference the summaries do not show
        out.append("stored counters differ from the derived ones")
    return out


def _as_old_as(derived: SpikeStats, stored: SpikeStats) -> None:
    """Drop from ``derived`` the counters ``stored`` predates: statistics written before the
    temporal counters existed hold none (temporal sparsity n/a), which is not damage."""
    if derived.layers and not any(ls.state.temporal_pairs for ls in stored.layers.values()):
        for ls in derived.layers.values():
            ls.state.temporal_same = ls.state.temporal_pairs = 0


def verify_trace(path: str | os.PathLike) -> VerifyResult:
    """Read every dataset of the trace at ``path`` (HDF5 verifies each chunk's Fletcher-32) and
    compare its ``/stats`` with statistics re-derived from the counts, field by field.

    Raises TraceError when the trace itself cannot be opened (its header or metadata is damaged).
    """
    p = Path(os.fspath(path))
    with SpikeTrace.open(p) as tr:
        res = VerifyResult(p, tr.has_checksums, False, layers=len(tr.layers), tokens=tr.n_tokens)
        tr.verify_checksums()  # TraceError names the damaged dataset
        stored: SpikeStats | None = None
        try:
            stored = read_stats(p)
            res.has_stats = True
        except NoStatsError:
            pass
        except StatsDamagedError as e:
            res.has_stats = True
            res.problems.append(str(e))
            try:  # still say which fields differ, if the group reads at all
                with h5py.File(p, "r") as f:
                    stored = SpikeStats.from_hdf5(f["stats"])
            except Exception:  # noqa: BLE001 - unreadable: the line above says so
                stored = None
        if stored is not None:
            derived = SpikeStats.from_trace(tr, window=stored.window, progress=False)
            _as_old_as(derived, stored)
            res.problems += _diff(stored, derived)
    return res
