"""Trace-level entry point: export one layer of a :class:`analysis.trace.SpikeTrace`."""
from __future__ import annotations

import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any, Callable

import numpy as np
import torch

import encoders
from analysis.fileio import check_target

from .aer import write_aer, write_aer_csv
from .formats import EXTENSIONS, FORMATS, check_format
from .nir_graph import import_nir, write_nir
from .selection import LayerSpikes, NeuronSelection, TokenSelection, resolve_tokens, select_layer
from .tonic_npy import sidecar_path, write_tonic
from .vcd import write_vcd



@dataclass(frozen=True)
class ExportSettings:
    """How a layer's spikes are coded, selected and written (one validated object, tonic-style).

    Attributes:
        scheme, T, bit_order: spike coding; ``T=None`` uses the Int2Spike default for the
            selected tokens.
        neurons: neuron (input channel) ids to export; None = all.
        tokens: contiguous token range (slice, range or (start, stop)); None = all.
        timescale, bipolar: VCD options; step_us: microseconds per step in the npy ``t``.
        device: where to run the encoder.
        overwrite: replace an existing file (otherwise FileExistsError, nothing written).
    """

    scheme: str = encoders.DEFAULT_SCHEME
    T: int | None = None
    bit_order: str = "msb"
    neurons: NeuronSelection = None
    tokens: TokenSelection = None
    timescale: str = "1ns"
    bipolar: str = "pair"
    step_us: int = 1
    device: str | torch.device | None = None
    overwrite: bool = False

    def __post_init__(self) -> None:
        encoders.get_scheme(self.scheme)
        encoders.check_bit_order(self.bit_order)


# The writer of each format (:mod:`.formats` names them): writer(ls, out, weight, settings).
_Writer = Callable[[LayerSpikes, Path, Any, ExportSettings], Path]
WRITERS: dict[str, _Writer] = {
    "aer": lambda ls, out, w, s: write_aer(ls, out, overwrite=s.overwrite),
    "csv": lambda ls, out, w, s: write_aer_csv(ls, out, overwrite=s.overwrite),
    "npy": lambda ls, out, w, s: write_tonic(ls, out, step_us=s.step_us, overwrite=s.overwrite),
    "nir": lambda ls, out, w, s: write_nir(ls, out, weight=w, overwrite=s.overwrite),
    "vcd": lambda ls, out, w, s: write_vcd(ls, out, timescale=s.timescale, bipolar=s.bipolar, overwrite=s.overwrite),
}
assert tuple(WRITERS) == FORMATS, "every format in .formats needs its writer here"


def _layer_names(trace: Any) -> list[str]:
    layers = trace.layers
    if isinstance(layers, dict):
        return list(layers)
    return [x if isinstance(x, str) else x.name for x in layers]


def _open_trace(trace: Any) -> tuple[Any, bool]:
    """``(trace object, opened here)``: paths are opened with ``SpikeTrace.open``."""
    if isinstance(trace, (str, os.PathLike)):
        from analysis.trace import SpikeTrace

        return SpikeTrace.open(trace), True
    for attr in ("layers", "layer", "counts", "vth", "n_tokens"):
        if not hasattr(trace, attr):
            raise TypeError(f"trace must be a SpikeTrace or a path, got {type(trace).__name__}")
    return trace, False


def default_filename(layer: str, scheme: str, fmt: str) -> str:
    """File name used when ``out`` is a directory: ``<layer>.<scheme><ext>`` (unsafe chars -> _)."""
    safe = re.sub(r"[^A-Za-z0-9_.-]", "_", layer)
    return f"{safe}.{scheme}{EXTENSIONS[fmt]}"


def resolve_output(out: str | os.PathLike, layer: str, scheme: str, fmt: str, overwrite: bool) -> Path:
    """The file an export will write (``out``, or a default name inside directory ``out``).

    Checks it up front, so that a bad destination fails before any work: FileExistsError
    if it (or the .npy sidecar) exists and ``overwrite`` is False, ValueError if its
    directory is missing.
    """
    fmt = check_format(fmt)
    if not isinstance(out, (str, os.PathLike)):
        raise TypeError(f"out must be a str or os.PathLike, got {type(out).__name__}")
    path = Path(out).expanduser()
    if path.is_dir():
        path = path / default_filename(layer, scheme, fmt)
    check_target(path, overwrite)
    if fmt == "npy":
        check_target(sidecar_path(path), overwrite)
    return path


def trace_layer_spikes(
    trace: Any,
    layer: str,
    *,
    scheme: str = encoders.DEFAULT_SCHEME,
    T: int | None = None,
    bit_order: str = "msb",
    neurons: NeuronSelection = None,
    tokens: TokenSelection = None,
    device: str | torch.device | None = None,
) -> LayerSpikes:
    """Read one layer's selected tokens from a trace (object or path) as :class:`LayerSpikes`.

    Only the selected token rows are read from the file. Raises ValueError for an unknown
    layer (naming the available ones) and for bad selections or coding parameters.
    """
    tr, opened = _open_trace(trace)
    try:
        names = _layer_names(tr)
        if layer not in names:
            shown = ", ".join(names[:8]) + (", ..." if len(names) > 8 else "")
            raise ValueError(f"no layer {layer!r} in the trace; it has {len(names)} layers: {shown}")
        lay = tr.layer(layer)
        start, stop = resolve_tokens(tokens, int(tr.n_tokens))
        counts = np.asarray(tr.counts(layer, rows=slice(start, stop)))
        vth = np.asarray(tr.vth(layer, rows=slice(start, stop)))
        info: dict[str, Any] = {"role": getattr(lay, "role", None), "out_features": getattr(lay, "out_features", None)}
        model_id = getattr(tr, "model_id", None)
        if model_id:
            info["model_id"] = str(model_id)
        info = {key: v for key, v in info.items() if v is not None}
        # Recorded in every format: a T the caller chose, or the lossless one (nothing clipped).
        info["T_rule"] = "given" if T is not None else "lossless: Int2Spike default for the exported tokens"
        k = getattr(tr, "k", None)
    finally:
        if opened:
            tr.close()
    return select_layer(
        counts, vth, layer=layer, layer_id=int(lay.index), scheme=scheme, T=T, bit_order=bit_order,
        neurons=neurons, token_offset=start, k=None if k is None else float(k), info=info, device=device,
    )


def write_layer_spikes(
    ls: LayerSpikes,
    fmt: str,
    out: str | os.PathLike,
    *,
    weight: Any = None,
    overwrite: bool = False,
    timescale: str = "1ns",
    bipolar: str = "pair",
    step_us: int = 1,
) -> Path:
    """Write ``ls`` in format ``fmt`` (see :data:`FORMATS`); ``out`` may be a directory."""
    settings = ExportSettings(ls.scheme, overwrite=overwrite, timescale=timescale, bipolar=bipolar, step_us=step_us)
    return _write(ls, fmt, out, weight, settings)


def _write(ls: LayerSpikes, fmt: str, out: str | os.PathLike, weight: Any, settings: ExportSettings) -> Path:
    fmt = check_format(fmt)
    path = resolve_output(out, ls.layer, ls.scheme, fmt, settings.overwrite)
    if weight is not None and fmt != "nir":
        raise ValueError(f"weight is only used by the 'nir' format, not {fmt!r}")
    return WRITERS[fmt](ls, path, weight, settings)


def export_layer(
    trace: Any,
    layer: str,
    fmt: str,
    out: str | os.PathLike,
    *,
    scheme: str = encoders.DEFAULT_SCHEME,
    T: int | None = None,
    bit_order: str = "msb",
    neurons: NeuronSelection = None,
    tokens: TokenSelection = None,
    weight: Any = None,
    overwrite: bool = False,
    timescale: str = "1ns",
    bipolar: str = "pair",
    step_us: int = 1,
    device: str | torch.device | None = None,
) -> Path:
    """Export one layer of a spike trace for hardware teams; return the written file's path.

    Args:
        trace: a ``SpikeTrace`` or the path of a trace file.
        layer: layer name (see ``trace.layers``).
        fmt: ``"aer"`` (binary events), ``"csv"``, ``"npy"`` (tonic x/t/p + JSON sidecar),
            ``"nir"`` (IF -> Affine graph), ``"vcd"`` (waveforms); docs/export-formats.md.
        out: output file, or an existing directory (file named ``<layer>.<scheme><ext>``).
        scheme, T, bit_order: spike coding; ``T=None`` uses the Int2Spike default for the
            selected tokens.
        neurons: neuron (input channel) ids to export; None = all.
        tokens: contiguous token range (slice, range or (start, stop)); None = all.
        weight: the layer's float weight [out, in] (numpy, torch or Int8Weight), nir only.
        overwrite: replace an existing file (otherwise FileExistsError, nothing written).
        timescale, bipolar: VCD options; step_us: microseconds per step in the npy ``t``.
        device: where to run the encoder.

    Raises:
        ValueError: unknown format, layer, scheme or bit order; empty or out-of-range
            selections; T too small; counts a unipolar scheme cannot carry.
        FileExistsError: ``out`` exists and ``overwrite`` is False.
        ImportError: ``fmt="nir"`` without the ``nir`` package (``pip install nir``).
    """
    settings = ExportSettings(scheme, T, bit_order, neurons, tokens, timescale, bipolar, step_us, device, overwrite)
    return export_with(trace, layer, fmt, out, settings, weight=weight)


def export_with(trace: Any, layer: str, fmt: str, out: str | os.PathLike, settings: ExportSettings,
                *, weight: Any = None) -> Path:
    """:func:`export_layer` with its settings as one :class:`ExportSettings`; returns the path written."""
    if not isinstance(settings, ExportSettings):
        raise TypeError(f"settings must be ExportSettings, got {type(settings).__name__}")
    s = settings
    resolve_output(out, layer, s.scheme, fmt, s.overwrite)  # fail fast, before reading the trace
    if weight is not None and fmt != "nir":
        raise ValueError(f"weight is only used by the 'nir' format, not {fmt!r}")
    if fmt == "nir":
        import_nir()
    ls = trace_layer_spikes(trace, layer, scheme=s.scheme, T=s.T, bit_order=s.bit_order, neurons=s.neurons,
                            tokens=s.tokens, device=s.device)
    return _write(ls, fmt, out, weight, s)
