"""Exports of a layer's spike events for hardware teams: AER binary and CSV, tonic .npy,
NIR graphs and VCD waveforms. Byte layouts: docs/export-formats.md.

>>> import numpy as np
>>> from neurosim.export import select_layer
>>> ls = select_layer(np.array([[3, -1]]), np.array([0.5]), scheme="bitwise-signed")
>>> ls.T, len(ls.events), ls.events.polarity.tolist()
(2, 3, [1, 1, -1])
"""
from .formats import FORMATS, check_format


# The writers need torch (seconds to import on a busy machine): loaded on first use, so that
# the command line can list the formats (:mod:`.formats`) without it.
_LAZY = {
    "aer": ('AER_HEADER_DTYPE', 'AER_MAGIC', 'AER_RECORD_DTYPE', 'AER_VERSION', 'AerFile', 'aer_records', 'read_aer', 'read_aer_csv', 'write_aer', 'write_aer_csv'),
    "layer": ('WRITERS', 'ExportSettings', 'default_filename', 'export_layer', 'export_with', 'resolve_output', 'trace_layer_spikes', 'write_layer_spikes'),
    "nir_graph": ('layer_graph', 'read_nir', 'write_nir'),
    "selection": ('SCHEME_CODES', 'LayerSpikes', 'SpikeEventTable', 'decode_events', 'expected_counts', 'resolve_neurons', 'resolve_tokens', 'select_layer'),
    "tonic_npy": ('TONIC_DTYPE', 'TonicFile', 'read_tonic', 'sidecar_path', 'tonic_events', 'write_tonic'),
    "vcd": ('VcdFile', 'read_vcd', 'write_vcd'),
}
_WHERE = {name: module for module, names in _LAZY.items() for name in names}


def __getattr__(name: str) -> object:
    from importlib import import_module

    module = _WHERE.get(name)
    if module is None:
        raise AttributeError(f"module 'neurosim.export' has no attribute {name!r}")
    value = getattr(import_module(f".{module}", __name__), name)
    globals()[name] = value  # later look-ups skip this hook
    return value


def __dir__() -> list[str]:
    return sorted(set(globals()) | set(_WHERE))


__all__ = [
    "AER_HEADER_DTYPE", "AER_MAGIC", "AER_RECORD_DTYPE", "AER_VERSION", "FORMATS", "SCHEME_CODES", "WRITERS",
    "TONIC_DTYPE", "AerFile", "LayerSpikes", "SpikeEventTable", "TonicFile", "VcdFile",
    "aer_records", "check_format", "decode_events", "default_filename", "expected_counts",
    "ExportSettings", "export_layer", "export_with", "layer_graph", "read_aer", "read_aer_csv", "read_nir", "read_tonic", "read_vcd",
    "resolve_neurons", "resolve_output", "resolve_tokens", "select_layer", "sidecar_path", "tonic_events",
    "trace_layer_spikes", "write_aer", "write_aer_csv", "write_layer_spikes", "write_nir",
    "write_tonic", "write_vcd",
]
