"""Spike traces: per-layer integer spike counts and thresholds of a real model run, in HDF5.

Schema (version 1; user documentation in docs/trace.md)::

    /                       attrs: format="neurosim.spike-trace", schema_version=1,
                            package_version, model_id, k, vth_clamp=[lo, hi], encoder,
                            created (ISO 8601, UTC), plus any user attrs
    /tokens                 int64 [tokens]        token ids, prompts concatenated
    /token_offsets          int64 [tokens, 2]     (optional) character span of each token
                                                  in its prompt's text; -1 where unknown
    /prompt_starts          int64 [prompts]       index in /tokens where each prompt starts
    /prompt_text            utf-8 str [prompts]   (optional) the prompts' text
    /layers/<key>/counts    int16 [tokens, in_features], chunked by token rows, compressed
    /layers/<key>/vth       float32 [tokens]      V_th of each token (units of the activation)
    /layers/<key>           attrs: name (exact module name), role, in_features,
                            out_features, index (model order), same_input_as (optional)
    /layer_index            compound [layers]: name, key, role, in_features, out_features,
                            index, same_input_as ("" if none): the same per-layer metadata
                            in one table, so a trace opens with one read (the group
                            attributes stay authoritative and are checked on first use)

``<key>`` is the layer name with ``%``, ``/`` and NUL percent-escaped (dots are kept, a
name made only of dots has them escaped); the ``name`` attribute is authoritative. Layers
that receive the very same input tensor (q/k/v, gate/up) store it once: their ``counts``
and ``vth`` are HDF5 hard links to the first layer's datasets, and ``same_input_as``
names that layer. Any HDF5 reader sees every layer's full datasets.

Counts are compressed with HDF5's standard deflate ("gzip") filter, readable by any HDF5
tool. The writer deflates whole chunks itself (ISA-L via the ``isal`` package, ~4x faster
than zlib here; stdlib zlib if it is missing; both release the GIL), in worker threads
when spare cores exist or inline otherwise, and stores them with direct chunk writes.

Files are written atomically: a temporary file in the destination directory, fsync,
then a rename; a crash or an exception never leaves a partial file under the final name.

Code: the schema and checks in :mod:`analysis.trace_schema`, the writer in
:mod:`analysis.trace_writer`, the reader in :mod:`analysis.trace_reader`; this module
re-exports their public names.
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
