"""Streaming, mergeable spike statistics with the SpikingBrain report's definitions.

Definitions as in the SpikingBrain report, arXiv:2509.05276 (statistics of SpikingBrain-7B). A *value* is one integer spike
count ``s`` of one (token, channel) input of a linear layer.

* **silence**: fraction of values with ``s == 0`` (per token: fraction of the layer's
  channels silent for that token; aggregated over tokens and layers it is weighted by
  channels). Report, SpikingBrain-7B: 18.4 %.
* **never-firing channels**: channels whose count is 0 for every token seen.
* **spikes of a value in a T-step window** of a scheme: the non-zero slots of the spike
  train of ``s`` clipped to what T steps carry. Bitwise-signed: ``popcount(min(|s|, 2**T-1))``;
  ternary: ``min(|s|, T)``; two's complement: popcount of the T-bit pattern of ``s``
  clipped to ``[-2**(T-1), 2**(T-1)-1]``.
* **sparsity** (scheme, T): fraction of (step, line) slots with no spike,
  ``1 - spikes / (lines * T)``. Report: 69.15 % for bitwise-signed with T = 3.
  It obeys ``sparsity = 1 - spikes_per_active_channel * active_fraction / T`` (one line per
  channel).
* **spikes per active channel**: spikes / values with ``s != 0`` (report: 1.13).
* **firing rate per step**: spikes at step t / lines (step 0 first in time; bitwise
  schemes MSB first, as Int2Spike).
* **|count| histogram**: report Fig. 9, 94.1 % of values with ``|s| <= 7``, about 1 %
  with ``|s| > 16``.

Unsigned schemes (``binary``, ``bitwise``) cannot carry negative counts. Here they are
**sign-split**: each channel drives two unipolar lines, one for the positive part and one
for the negative part, so a count ``s`` costs the spikes of ``|s|`` on one of the lines
and the scheme has ``2 * channels`` lines (slots for sparsity). We do not use
Int2Spike's zero-point shift by ``min(x)``: the shift depends on each tensor's minimum (so
statistics would depend on how the input is chunked, and could not be merged exactly) and
turns every silent channel into ``|min|`` spikes, which no event-driven design would send.

Everything is kept as integer counters and fixed-bin histograms, never as stored samples,
so :meth:`SpikeStats.merge` of two partial results equals one pass over their union
bit for bit, whatever the chunking (token rows, prompts, machines).

Code: counters in :mod:`analysis.stats_counters`, the accumulator in
:mod:`analysis.stats_accumulator`, the HDF5 layout in :mod:`analysis.stats_storage`, the
report's reference values in :mod:`analysis.stats_reference`; this module re-exports them
and writes/reads statistics files.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import h5py

from .checksums import DIGEST_ATTR, group_digest
from .compare import compare_encoders, comparison_to_hdf5
from .fileio import atomic_file, check_target
from .fileio import atomic_file as atomic_output  # noqa: F401  (the old name, kept for callers)
from .stats_accumulator import SpikeStats
from .trace_reader import damage
from .stats_counters import (  # noqa: F401  (re-exported)
    EXACT_MAX,
    FRACTION_BINS,
    MAX_ABS_COUNT,
    MAX_BITS,
    ROW_BLOCK,
    STATS_SCHEMA_VERSION,
    VTH_BINS,
    VTH_BINS_PER_DECADE,
    VTH_FIXED_SHIFT,
    VTH_LIMIT,
    VTH_LOG10_MAX,
    VTH_LOG10_MIN,
    CountState,
    LayerStats,
    bit_length,
    check_window,
    popcount,
    vth_bin_edges,
    window_events_lut,
    window_range,
    window_steps_lut,
)
from .stats_reference import (  # noqa: F401  (re-exported)
    DEFAULT_BUDGETS,
    DEFINITIONS,
    REPORT_7B,
    REPORT_WINDOW,
    ROLES,
    SPLIT_SCHEMES,
    infer_role,
)
from .trace import edit_trace

# ----------------------------------------------------------------------------- writing


def write_stats(
    trace_or_path: Any,
    stats: SpikeStats,
    out: Any = None,
    overwrite: bool = False,
    comparison: bool = True,
) -> Path:
    """Write ``stats`` (and the encoder comparison) to HDF5 atomically; returns the path written.

    Args:
        trace_or_path: the trace (``SpikeTrace`` or its path) the statistics belong to; may
            be None when ``out`` is given.
        stats: the statistics.
        out: None writes the ``/stats`` group *into the trace* (through
            ``analysis.trace.edit_trace``: temp copy, then atomic rename); a path writes a new
            HDF5 file with a ``/stats`` group (temp file in the same folder, fsync, rename).
        overwrite: allow ``out`` to replace an existing file.
        comparison: also write ``/stats/encoders`` (:func:`analysis.compare.compare_encoders`).
    """
    if not isinstance(stats, SpikeStats):
        raise TypeError(f"stats must be SpikeStats, got {type(stats).__name__}")
    source = None if trace_or_path is None else _trace_path(trace_or_path)

    def fill(f: Any) -> None:
        if "stats" in f:
            del f["stats"]
        g = f.create_group("stats")
        stats.to_hdf5(g)
        if source is not None:
            g.attrs["trace"] = str(source)
        if comparison and stats.layers:
            comparison_to_hdf5(g.create_group("encoders"), compare_encoders(stats))
        g.attrs[DIGEST_ATTR] = group_digest(g)  # verified by read_stats

    if out is None:
        if source is None:
            raise ValueError("give a trace to write into, or an output path `out`")
        with edit_trace(source) as f:
            fill(f)
        return source
    final = check_target(out, overwrite)
    if source is not None and final == source.expanduser().absolute():
        raise ValueError(f"out {final} is the trace itself; use out=None to write into the trace")
    with atomic_file(final, overwrite) as tmp, h5py.File(tmp, "w") as f:
        fill(f)
    return final


class StatsDamagedError(ValueError):
    """Stored statistics whose SHA-256 no longer matches their content (or cannot be read)."""


class NoStatsError(ValueError):
    """The file holds no ``/stats`` group."""


def read_stats(path: Any) -> SpikeStats:
    """Read the ``/stats`` group of a trace or stats file, checking its SHA-256 when stored.

    Raises NoStatsError (a ValueError) without ``/stats``, StatsDamagedError (a ValueError)
    when the stored statistics do not match their hash or cannot be read.
    """
    p = Path(os.fspath(path))
    try:
        f = h5py.File(p, "r")
    except OSError as e:
        if "checksum" in str(e).lower():
            raise StatsDamagedError(f"{p}: the HDF5 file header is {damage(e)}") from None
        raise ValueError(f"{p}: not a readable HDF5 file ({e})") from None
    with f:
        try:
            if "stats" not in f:
                raise NoStatsError(f"{p} has no /stats group; run write_stats first")
            g = f["stats"]
            stored = g.attrs.get(DIGEST_ATTR)
            if stored is not None:
                stored = stored.decode() if isinstance(stored, bytes) else str(stored)
                if group_digest(g) != stored:
                    raise StatsDamagedError(
                        f"{p}: the stored statistics (/stats) are damaged: their SHA-256 does not match; "
                        "`neurosim verify` re-derives them from the counts"
                    )
            return SpikeStats.from_hdf5(g)
        except (OSError, RuntimeError, KeyError, UnicodeDecodeError) as e:
            raise StatsDamagedError(f"{p}: the stored statistics (/stats) are {damage(e)}") from None


def _trace_path(trace_or_path: Any) -> Path:
    if isinstance(trace_or_path, (str, os.PathLike)):
        return Path(trace_or_path).expanduser().absolute()
    if hasattr(trace_or_path, "iter_layers"):
        if trace_or_path.path is None:
            raise ValueError("the trace lives in memory; save it first or give `out` to write a stats file")
        return Path(trace_or_path.path)
    raise TypeError(f"expected a SpikeTrace or a path, got {type(trace_or_path).__name__}")
