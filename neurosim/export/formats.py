"""The export formats by name, with file extensions (no torch: the command line lists them).

Byte layouts: docs/export-formats.md. A new format is one entry here and its writer in
:data:`neurosim.export.layer.WRITERS`.
"""
from __future__ import annotations

EXTENSIONS: dict[str, str] = {
    "aer": ".aer",  # 16-byte little-endian address events after a 128-byte header
    "csv": ".csv",  # the same events as text
    "npy": ".npy",  # tonic-style structured x/t/p events + JSON sidecar
    "nir": ".nir",  # NIR graph: spike lines -> Affine -> Integrator
    "vcd": ".vcd",  # waveforms for GTKWave
}
FORMATS: tuple[str, ...] = tuple(EXTENSIONS)
ALIASES: dict[str, str] = {"tonic": "npy"}  # tonic's events are the npy file


def check_format(fmt: str) -> str:
    """Return the format ``fmt`` names (an alias resolved), else raise ValueError listing them."""
    fmt = ALIASES.get(fmt, fmt)
    if fmt not in FORMATS:
        raise ValueError(f"unknown export format {fmt!r}; choose one of {', '.join(FORMATS)}")
    return fmt
