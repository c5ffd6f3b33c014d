"""Spike trace schema: constants, layer metadata and input checks shared by writer and reader.

Spike traces: per-layer integer spike counts and thresholds of a real model run, in HDF5.

Schema (version 1; user documentation in docs/trace.md)::

    /                       attrs: format="neurosim.spike-trace", schema_version=1,
                            schema_minor=1 (checksums; absent in 1.0 files), package_version, model_id, k, vth_clamp=[lo, hi], encoder,
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
"""
from __future__ import annotations

from dataclasses import dataclass, field
from importlib.metadata import PackageNotFoundError, version
from typing import Any

import h5py
import numpy as np

from .roles import ALL_ROLES

SCHEMA_VERSION = 1
# 1.1: every dataset carries HDF5 fletcher32 checksums (counts chunks included), the file uses
# the HDF5 1.10 format (checksummed metadata) and /stats carries a SHA-256 attribute. Readers
# accept 1.0 files (no checksums) and 1.1 alike; 1.0 readers read 1.1 files.
SCHEMA_MINOR = 1
FORMAT_NAME = "neurosim.spike-trace"
DEFAULT_ENCODER = "adaptive-threshold: V_th = clamp(mean(|x|) / k), s = round(x / V_th), per token"
COUNT_DTYPE = np.int16
_I16 = np.iinfo(np.int16)
_RESERVED_ATTRS = frozenset(
    {"format", "schema_version", "schema_minor", "layer_index_sha256", "prompt_text_sha256", "package_version", "model_id", "k", "vth_clamp", "encoder", "created"}
)
_CHUNK_BYTES = 1 << 20  # upper bound of one counts chunk (bytes): bounded writer buffers
_MAX_PENDING_BYTES = 64 << 20  # raw bytes of chunks queued for compression at most
_VTH_FLUSH_ROWS = 16384  # V_th rows buffered per layer before they are written

_STR = h5py.string_dtype("utf-8")
_INDEX_DTYPE = np.dtype(
    [("name", _STR), ("key", _STR), ("role", _STR), ("in_features", np.int64), ("out_features", np.int64),
     ("index", np.int64), ("same_input_as", _STR)]
)


class TraceError(ValueError):
    """A file is not a readable spike trace: corrupt, truncated, foreign or from a newer schema."""


@dataclass
class LayerInfo:
    """One hooked linear layer of the traced model.

    Attributes:
        name: module name in the model, e.g. ``model.layers.0.self_attn.q_proj``.
        role: one of :data:`analysis.roles.ALL_ROLES` (q, k, v, qkv, o, gate, up, down, lm_head, other).
        in_features: channels of the layer input (columns of its counts).
        out_features: channels of the layer output.
        index: position of the layer in model order (unique within a trace).
        same_input_as: name of an earlier layer that receives the identical input (its
            counts are stored once); ``None`` otherwise. Not part of equality.
    """

    name: str
    role: str
    in_features: int
    out_features: int
    index: int
    same_input_as: str | None = field(default=None, compare=False)

    def validate(self) -> "LayerInfo":
        """Return self after checking every field; raise ValueError/TypeError naming the problem."""
        if not isinstance(self.name, str) or not self.name:
            raise ValueError(f"layer name must be a non-empty string, got {self.name!r}")
        if self.role not in ALL_ROLES:
            raise ValueError(f"layer {self.name!r}: unknown role {self.role!r}; choose one of {', '.join(ALL_ROLES)}")
        for attr in ("in_features", "out_features", "index"):
            value = getattr(self, attr)
            if not isinstance(value, (int, np.integer)) or isinstance(value, bool):
                raise TypeError(f"layer {self.name!r}: {attr} must be an int, got {type(value).__name__}")
        if self.in_features <= 0 or self.out_features <= 0:
            raise ValueError(
                f"layer {self.name!r}: in/out features must be positive, got {self.in_features}/{self.out_features}"
            )
        if self.index < 0:
            raise ValueError(f"layer {self.name!r}: index must be >= 0, got {self.index}")
        if self.same_input_as is not None and (not isinstance(self.same_input_as, str) or self.same_input_as == self.name):
            raise ValueError(f"layer {self.name!r}: same_input_as must name another layer, got {self.same_input_as!r}")
        return self


def _package_version() -> str:
    try:
        return version("spikingbrain-neurosim")
    except PackageNotFoundError:  # source tree that is not installed
        return "0.0.0+unknown"


def layer_key(name: str) -> str:
    """HDF5 group name for a layer name (exact inverse: :func:`unescape_key`)."""
    key = name.replace("%", "%25").replace("/", "%2F").replace("\0", "%00")
    if key.strip(".") == "":  # "." and ".." are path components in HDF5
        key = key.replace(".", "%2E")
    return key


def unescape_key(key: str) -> str:
    """Layer name from its HDF5 group name."""
    return key.replace("%2E", ".").replace("%00", "\0").replace("%2F", "/").replace("%25", "%")


def _py(value: Any) -> Any:
    """HDF5 attribute value -> plain Python (str, int, float, bool, tuple or ndarray)."""
    if isinstance(value, bytes):
        return value.decode("utf-8", "replace")
    if isinstance(value, np.generic):
        return value.item()
    if isinstance(value, np.ndarray) and value.dtype.kind in "OSU":
        return [v.decode() if isinstance(v, bytes) else str(v) for v in value.tolist()]
    return value


# --------------------------------------------------------------------------- validation


def _as_numpy(a: Any, what: str) -> np.ndarray:
    if hasattr(a, "detach") and hasattr(a, "cpu"):  # torch tensor, any device
        a = a.detach().cpu().numpy()
    if not isinstance(a, np.ndarray):
        if isinstance(a, (list, tuple)):
            a = np.asarray(a)
        else:
            raise TypeError(f"{what} must be a numpy array or torch tensor, got {type(a).__name__}")
    return a


def _check_counts(name: str, counts: Any, in_features: int) -> np.ndarray:
    """Validate counts [n, in_features] of integer dtype; return them as int16 (no copy if int16)."""
    c = _as_numpy(counts, f"layer {name!r}: counts")
    if c.dtype.kind not in "iu":
        raise TypeError(f"layer {name!r}: counts must have an integer dtype, got {c.dtype}")
    if c.ndim != 2 or c.shape[1] != in_features:
        raise ValueError(
            f"layer {name!r}: counts must have shape [tokens, {in_features}] (in_features), got {list(c.shape)}"
        )
    if c.dtype != np.int16 and c.size:
        lo, hi = int(c.min()), int(c.max())
        if lo < _I16.min or hi > _I16.max:
            bad = lo if lo < _I16.min else hi
            raise ValueError(
                f"layer {name!r}: spike count {bad} does not fit int16 [{_I16.min}, {_I16.max}]; "
                "clip the counts or use a smaller k"
            )
    return c.astype(np.int16, copy=False)


def _check_vth(name: str, vth: Any, n: int) -> np.ndarray:
    v = _as_numpy(vth, f"layer {name!r}: vth")
    if v.dtype.kind not in "fiu":
        raise TypeError(f"layer {name!r}: vth must be a real array, got dtype {v.dtype}")
    if v.shape != (n,):
        raise ValueError(f"layer {name!r}: vth must have shape [{n}] (one per token row), got {list(v.shape)}")
    v = v.astype(np.float32, copy=False)
    if n and not (np.isfinite(v).all() and (v > 0).all()):
        raise ValueError(f"layer {name!r}: vth must be finite and positive")
    return v


def _check_ids(ids: Any) -> np.ndarray:
    t = _as_numpy(ids, "token ids")
    if t.dtype.kind not in "iu":
        raise TypeError(f"token ids must have an integer dtype, got {t.dtype}")
    if t.ndim != 1:
        raise ValueError(f"token ids must be 1-D, got shape {list(t.shape)}")
    if t.size and int(t.min()) < 0:
        raise ValueError(f"token ids must be non-negative, found {int(t.min())}")
    return t.astype(np.int64, copy=False)


def _check_offsets(offsets: Any, n: int) -> np.ndarray:
    o = _as_numpy(offsets, "token offsets")
    if o.dtype.kind not in "iu":
        raise TypeError(f"token offsets must have an integer dtype, got {o.dtype}")
    if o.shape != (n, 2):
        raise ValueError(f"token offsets must have shape [{n}, 2] (start, end per token), got {list(o.shape)}")
    return o.astype(np.int64, copy=False)


def _check_k(k: Any) -> float:
    if not isinstance(k, (int, float, np.integer, np.floating)) or isinstance(k, bool):
        raise TypeError(f"k must be a number, got {type(k).__name__}")
    if not np.isfinite(k) or k <= 0:
        raise ValueError(f"k must be positive and finite, got {k}")
    return float(k)


def _check_clamp(vth_clamp: Any) -> tuple[float, float]:
    try:
        lo, hi = (float(v) for v in vth_clamp)
    except (TypeError, ValueError):
        raise TypeError(f"vth_clamp must be a pair (lo, hi) of numbers, got {vth_clamp!r}") from None
    if not (0 < lo < hi < np.inf):
        raise ValueError(f"vth_clamp must satisfy 0 < lo < hi < inf, got ({lo}, {hi})")
    return lo, hi
