"""NIR (Neuromorphic Intermediate Representation) export of one layer, runnable by a NIR simulator.

In SpikingBrain (arXiv:2509.05276) every activation x entering a linear layer becomes an
integer spike count ``s = round(x / V_th)``, sent as a spike train of T steps, and the layer
computes ``y = V_th * W @ s``; for bitwise codes ``s = sum_b w_b * spike_b`` with step
weights ``w_b`` (2^(T-1-b) MSB first; the two's-complement MSB weighs -2^(T-1); 1 for binary
and ternary). The graph puts those weights into the synapses, so that plain integration of
the spikes computes the layer::

    input [n_sel * T] -> affine: Affine(A, b=0) [n_out] -> integrator: I(r=1) [n_out] -> output [n_out]

* **Input lines**: one line per (selected channel i, step b), line ``i * T + b``. A spike of
  channel i at step b arrives on line ``i * T + b`` with value +1 or -1 (its polarity; -1
  only for the signed schemes ternary and bitwise-signed). Unsigned schemes send +1 only.
* **Affine**: ``A[:, i * T + b] = W[:, i] * w_b``, with ``W`` the layer's weights as the
  replay uses them (INT8 x per-group scale, dequantized to float32; multiplying by a power
  of two is exact). The bias is 0.
* **Integrator** (NIR ``I``, ``dv/dt = R I``, R = 1): the membrane sums its input over the
  token's T steps; reset it between tokens. After the last step it holds ``W @ s``, the
  layer output divided by that token's V_th. Multiply by ``metadata["vth"][token]`` for y.

V_th is adaptive (one value per token) and only scales the output, so it is stored in the
metadata (``vth``), not in the graph. snnTorch's ``import_from_nir`` maps NIR Affine but has
no converter for ``I``; :func:`to_snntorch` registers one (a 1-line integrator) for the
duration of the import and calls ``snntorch.import_nir.import_from_nir``.
``nir`` is imported lazily: it is only needed for this format; ``nirtorch`` only for
:func:`to_snntorch`.
"""
from __future__ import annotations

import contextlib
import io
import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

import encoders
from analysis.fileio import atomic_paths

from .selection import LayerSpikes

NIR_FORMAT = "neurosim-nir"
NIR_VERSION = 2  # 2: spike lines per (channel, step) -> Affine -> Integrator (1 was IF -> Affine)
_NIR_HINT = "NIR export needs the 'nir' package (Neuromorphic Intermediate Representation): pip install nir"
_NIRTORCH_HINT = "running a NIR graph in snnTorch needs 'nirtorch': pip install nirtorch"


def import_nir() -> Any:
    """Import and return the ``nir`` module, or raise ImportError saying ``pip install nir``."""
    try:
        import nir
    except ImportError as e:
        raise ImportError(_NIR_HINT) from e
    return nir


def weight_array(weight: Any) -> np.ndarray:
    """A float32 [out, in] numpy copy of ``weight`` (numpy, torch on any device, or Int8Weight)."""
    if hasattr(weight, "dequantize") and hasattr(weight, "q"):  # neurosim.weights.Int8Weight
        weight = weight.dequantize()
    if isinstance(weight, torch.Tensor):
        weight = weight.detach().to("cpu", torch.float32).numpy()
    if not isinstance(weight, np.ndarray):
        raise TypeError(f"weight must be a numpy array, a torch tensor or an Int8Weight, got {type(weight).__name__}")
    if weight.dtype.kind not in "fiu":
        raise TypeError(f"weight must be numeric, got dtype {weight.dtype}")
    w = np.asarray(weight, dtype=np.float32)
    if w.ndim != 2:
        raise ValueError(f"weight must be 2-D [out_features, in_features], got shape {w.shape}")
    if not np.isfinite(w).all():
        raise ValueError("weight contains NaN or inf")
    return w


def line_step_weights(ls: LayerSpikes) -> np.ndarray:
    """float32 [T]: the value one spike at each step adds to its count (see the module docstring)."""
    if ls.scheme in encoders.BITWISE:
        return np.asarray(encoders.step_weights(ls.scheme, ls.T, ls.bit_order), dtype=np.float32)
    return np.ones(ls.T, dtype=np.float32)


def spike_lines(ls: LayerSpikes) -> np.ndarray:
    """float32 [tokens, T, n_sel * T]: the graph's input, built from the exported events.

    ``out[t, b, i * T + b]`` is the polarity of the spike of selected channel i at step b of
    token t (0 without one). Feed ``out[t]`` step by step (or summed over steps: lines are
    disjoint in time) to the integrator reset for each token.
    """
    ev = ls.events
    T = ls.T
    out = np.zeros((ls.n_tokens, T, ls.n_selected * T), dtype=np.float32)
    pos = np.searchsorted(ls.neurons, ev.neuron)  # position of each event's channel in the selection
    out[ev.token - ls.token_start, ev.step, pos * T + ev.step] = ev.polarity
    return out


def layer_graph(ls: LayerSpikes, weight: Any) -> Any:
    """Build the ``nir.NIRGraph`` of the layer (see the module docstring).

    Raises ValueError without a weight or V_th, or if the weight's in_features differ from
    the layer width; ImportError (``pip install nir``) if nir is missing.
    """
    nir = import_nir()
    if weight is None:
        raise ValueError("NIR export needs the layer's weights (a graph without them cannot compute the layer); "
                         "pass weight= (the CLI: --model)")
    if ls.vth is None:
        raise ValueError("NIR export needs V_th per token (it scales the graph's output); none was given")
    w = weight_array(weight)
    if w.shape[1] != ls.n_neurons:
        raise ValueError(f"weight has in_features {w.shape[1]} but layer {ls.layer!r} has {ls.n_neurons} input channels")
    if not ls.all_neurons:
        w = w[:, ls.neurons]
    n_out, T = w.shape[0], ls.T
    steps = line_step_weights(ls)
    affine = (w[:, :, None] * steps[None, None, :]).reshape(n_out, ls.n_selected * T)  # column i * T + b
    nodes: dict[str, Any] = {
        "input": nir.Input(input_type=np.array([ls.n_selected * T])),
        "affine": nir.Affine(weight=np.ascontiguousarray(affine), bias=np.zeros(n_out, dtype=np.float32)),
        "integrator": nir.I(r=np.ones(n_out, dtype=np.float32)),
        "output": nir.Output(output_type=np.array([n_out])),
    }
    edges = [("input", "affine"), ("affine", "integrator"), ("integrator", "output")]
    meta: dict[str, Any] = {k: v for k, v in ls.metadata(include_neurons=False).items() if v is not None}
    meta.update(
        format=NIR_FORMAT,
        format_version=NIR_VERSION,
        vth=ls.vth.astype(np.float32),
        neurons=ls.neurons.astype(np.int64),
        step_weights=steps,
        lines="line i * T + b carries the spikes of selected channel neurons[i] at step b (polarity +1/-1)",
        semantics=(
            "Reset the integrator for each token and feed its T steps; the integrator then holds W @ s, "
            "the layer output / V_th of that token; y = vth[token] * output."
        ),
    )
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def write_nir(ls: LayerSpikes, out: str | os.PathLike, *, weight: Any = None, overwrite: bool = False) -> Path:
    """Write the layer as a NIR graph (HDF5, via ``nir.write``) atomically; return the path.

    ``weight`` is required (ValueError without it): see :func:`layer_graph`.
    """
    graph = layer_graph(ls, weight)
    nir = import_nir()
    with atomic_paths([out], overwrite) as (tmp,):
        nir.write(tmp, graph)
    return Path(out)


def read_nir(path: str | os.PathLike) -> Any:
    """Read a NIR file back with ``nir.read`` (a ``nir.NIRGraph``)."""
    return import_nir().read(path)


class Integrator(torch.nn.Module):
    """NIR ``I`` in discrete steps: ``v[t] = v[t-1] + r * x[t]``, output v (state: v, for nirtorch)."""

    def __init__(self, r: Any) -> None:
        super().__init__()
        self.register_buffer("r", torch.as_tensor(np.asarray(r, dtype=np.float32)))

    def forward(self, x: torch.Tensor, state: torch.Tensor | None = None) -> tuple[torch.Tensor, torch.Tensor]:
        v = self.r * x if state is None else state + self.r * x
        return v, v


def to_snntorch(graph: Any) -> torch.nn.Module:
    """Import a graph (or a .nir path) with ``snntorch.import_nir.import_from_nir``, ``I`` included.

    snnTorch converts the Affine itself; NIR ``I`` gets :class:`Integrator` through nirtorch's
    default node map, registered only for this call. The module is called as
    ``out, state = net(x)`` for the first step and ``net(x, state)`` after.
    """
    nir = import_nir()
    try:
        from nirtorch import nir_interpreter
        from snntorch.import_nir import import_from_nir
    except ImportError as e:
        raise ImportError(_NIRTORCH_HINT) from e
    if isinstance(graph, (str, os.PathLike)):
        graph = read_nir(graph)
    added = nir.I not in nir_interpreter.DEFAULT_MAP
    if added:
        nir_interpreter.DEFAULT_MAP[nir.I] = lambda node: Integrator(node.r)
    try:
        with contextlib.redirect_stdout(io.StringIO()):  # snnTorch prints its RNN-subgraph pass
            return import_from_nir(graph)
    finally:
        if added:
            del nir_interpreter.DEFAULT_MAP[nir.I]
