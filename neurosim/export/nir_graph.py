"""NIR (Neuromorphic Intermediate Representation) export of one layer.

In SpikingBrain every activation x entering a linear layer is encoded by integrate-and-fire
neurons with threshold V_th into spike counts s, and the linear layer consumes the spikes:
``y = V_th * W @ s``. The traced counts and V_th belong to the layer's *input* neurons, so
the graph is::

    input [n_in] -> if: IF(r=1, v_threshold=V_th, v_reset=0) [n_in] -> affine: Affine(W, b=0) -> output [n_out]

(without a weight: ``input -> if -> output``). V_th is adaptive, one value per token; a
static NIR graph holds one threshold per neuron, so ``v_threshold`` is the mean V_th over
the exported tokens and the exact per-token values are stored in the graph metadata
(``vth``), with the coding (scheme, T, bit order) needed to interpret the spikes.
``nir`` is imported lazily: it is only needed for this format.
"""
from __future__ import annotations

import os
from pathlib import Path
from typing import Any

import numpy as np
import torch

from analysis.fileio import atomic_paths
from .selection import LayerSpikes

NIR_FORMAT = "neurosim-nir"
NIR_VERSION = 1
_NIR_HINT = "NIR export needs the 'nir' package (Neuromorphic Intermediate Representation): pip install nir"


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


def layer_graph(ls: LayerSpikes, weight: Any = None) -> Any:
    """Build the ``nir.NIRGraph`` of the layer (see the module docstring).

    Raises ValueError if the selection has no V_th or the weight's in_features differ from
    the layer width; ImportError (``pip install nir``) if nir is missing.
    """
    nir = import_nir()
    if ls.vth is None:
        raise ValueError("NIR export needs V_th per token (the IF threshold); none was given")
    n_in = ls.n_selected
    v_mean = np.float32(ls.vth.astype(np.float64).mean())
    nodes: dict[str, Any] = {
        "input": nir.Input(input_type=np.array([n_in])),
        "if": nir.IF(
            r=np.ones(n_in, dtype=np.float32),
            v_threshold=np.full(n_in, v_mean, dtype=np.float32),
            v_reset=np.zeros(n_in, dtype=np.float32),
        ),
    }
    edges = [("input", "if")]
    n_out = n_in
    if weight is not None:
        w = weight_array(weight)
        if w.shape[1] != ls.n_neurons:
            raise ValueError(
                f"weight has in_features {w.shape[1]} but layer {ls.layer!r} has {ls.n_neurons} input channels"
            )
        if not ls.all_neurons:
            w = np.ascontiguousarray(w[:, ls.neurons])
        n_out = w.shape[0]
        nodes["affine"] = nir.Affine(weight=w, bias=np.zeros(n_out, dtype=np.float32))
        edges.append(("if", "affine"))
    nodes["output"] = nir.Output(output_type=np.array([n_out]))
    edges.append((edges[-1][1], "output"))
    meta: dict[str, Any] = {k: v for k, v in ls.metadata(include_neurons=False).items() if v is not None}
    meta.update(
        format=NIR_FORMAT,
        format_version=NIR_VERSION,
        vth=ls.vth.astype(np.float32),
        vth_reduction="mean",
        neurons=ls.neurons.astype(np.int64),
        semantics=(
            "IF nodes are the layer's input spike encoders; per-token threshold is vth[token]; "
            "v_threshold holds mean(vth). Output y = vth[token] * affine(spike counts)."
        ),
    )
    return nir.NIRGraph(nodes=nodes, edges=edges, metadata=meta)


def write_nir(ls: LayerSpikes, out: str | os.PathLike, *, weight: Any = None, overwrite: bool = False) -> Path:
    """Write the layer as a NIR graph (HDF5, via ``nir.write``) atomically; return the path."""
    graph = layer_graph(ls, weight)
    nir = import_nir()
    with atomic_paths([out], overwrite) as (tmp,):
        nir.write(tmp, graph)
    return Path(out)


def read_nir(path: str | os.PathLike) -> Any:
    """Read a NIR file back with ``nir.read`` (a ``nir.NIRGraph``)."""
    return import_nir().read(path)
