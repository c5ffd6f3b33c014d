"""Spike traces: per-layer integer spike counts and thresholds of a real model run, in HDF5.

The file layout (schema 1.x) is documented once, in :mod:`analysis.trace_schema` and for
users in docs/trace.md. Code: the schema and checks in :mod:`analysis.trace_schema`, the
writer (atomic, deflate with ISA-L, Fletcher-32 per chunk) in :mod:`analysis.trace_writer`,
the reader in :mod:`analysis.trace_reader`; this module re-exports their public names.
"""
from __future__ import annotations

from .roles import ALL_ROLES as ROLES  # the roles a LayerInfo may carry (old name)
from .trace_reader import SpikeTrace, edit_trace
from .trace_schema import (
    COUNT_DTYPE,
    DEFAULT_ENCODER,
    FORMAT_NAME,
    SCHEMA_VERSION,
    LayerInfo,
    TraceError,
    _check_k,
    layer_key,
    unescape_key,
)
from .trace_writer import TraceWriter

__all__ = [
    "COUNT_DTYPE", "DEFAULT_ENCODER", "FORMAT_NAME", "ROLES", "SCHEMA_VERSION", "LayerInfo", "SpikeTrace",
    "TraceError", "TraceWriter", "edit_trace", "layer_key", "unescape_key",
]
