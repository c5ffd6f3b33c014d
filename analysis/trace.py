"""Spike traces: per-layer integer spike counts and thresholds of a real model run, in HDF5.

Schema (version 1; shared/design.md, "The HDF5 trace")::

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
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
import shutil
import tempfile
import zlib
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import dataclass, field, replace
from importlib.metadata import PackageNotFoundError, version
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import h5py
import numpy as np

from encoders import VTH_MAX, VTH_MIN

SCHEMA_VERSION = 1
FORMAT_NAME = "neurosim.spike-trace"
ROLES: tuple[str, ...] = ("q", "k", "v", "o", "gate", "up", "down", "lm_head", "other")
DEFAULT_ENCODER = "adaptive-threshold: V_th = clamp(mean(|x|) / k), s = round(x / V_th), per token"
COUNT_DTYPE = np.int16
_I16 = np.iinfo(np.int16)
_RESERVED_ATTRS = frozenset(
    {"format", "schema_version", "package_version", "model_id", "k", "vth_clamp", "encoder", "created"}
)
_CHUNK_BYTES = 1 << 20  # upper bound of one counts chunk (bytes): bounded writer buffers
_MAX_PENDING_BYTES = 64 << 20  # raw bytes of chunks queued for compression at most
_VTH_FLUSH_ROWS = 16384  # V_th rows buffered per layer before they are written

try:  # ISA-L deflate (~4x faster than zlib here: 263 vs 47-66 MB/s on SmolLM2 counts); zlib format
    from isal import isal_zlib as _isal
except ImportError:  # pragma: no cover - depends on the environment
    _isal = None


def _deflate(data: Any) -> bytes:
    """zlib-format deflate stream of ``data`` at level 1 (what HDF5's deflate filter stores).

    Both implementations release the GIL. No byte shuffle: on SmolLM2 spike counts level-1
    deflate of plain little-endian int16 compresses better than of shuffled bytes (measured:
    ISA-L 2.73x vs 2.61x, zlib 2.75x vs 2.46x) and skips a pass.
    """
    if _isal is not None:
        return _isal.compress(data, 1)
    return zlib.compress(data, 1)


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
        role: one of :data:`ROLES` (q, k, v, o, gate, up, down, lm_head, other).
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
        if self.role not in ROLES:
            raise ValueError(f"layer {self.name!r}: unknown role {self.role!r}; choose one of {', '.join(ROLES)}")
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


# --------------------------------------------------------------------------- atomic files


def _fsync_path(path: Path, directory: bool = False) -> None:
    flags = os.O_RDONLY | (getattr(os, "O_DIRECTORY", 0) if directory else 0)
    try:
        fd = os.open(path, flags)
    except OSError:
        if directory:  # some platforms cannot open directories; the rename is still atomic
            return
        raise
    try:
        os.fsync(fd)
    except OSError:
        if not directory:
            raise
    finally:
        os.close(fd)


def _temp_path(final: Path) -> Path:
    fd, name = tempfile.mkstemp(prefix=f".{final.name}.", suffix=".tmp", dir=final.parent)
    os.close(fd)
    return Path(name)


def _check_destination(path: str | os.PathLike, overwrite: bool) -> Path:
    if not isinstance(path, (str, os.PathLike)):
        raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
    final = Path(path).expanduser().absolute()
    if not final.parent.is_dir():
        raise FileNotFoundError(f"directory {final.parent} does not exist (for trace file {final.name})")
    if final.is_dir():
        raise IsADirectoryError(f"{final} is a directory, not a trace file path")
    if final.exists() and not overwrite:
        raise FileExistsError(f"{final} already exists; pass overwrite=True to replace it")
    return final


def _commit(tmp: Path, final: Path, overwrite: bool) -> None:
    """fsync ``tmp`` and move it to ``final`` atomically (never clobbering unless ``overwrite``)."""
    _fsync_path(tmp)
    if overwrite:
        os.replace(tmp, final)
    else:
        try:
            os.link(tmp, final)  # atomic "create if absent"
        except FileExistsError:
            tmp.unlink(missing_ok=True)
            raise FileExistsError(f"{final} appeared while the trace was written; not overwritten") from None
        except OSError:  # file system without hard links: check, then rename
            if final.exists():
                tmp.unlink(missing_ok=True)
                raise FileExistsError(f"{final} already exists; pass overwrite=True to replace it") from None
            os.replace(tmp, final)
        else:
            tmp.unlink()
    _fsync_path(final.parent, directory=True)


# --------------------------------------------------------------------------- writer


def _encode_chunk(block: np.ndarray, compress: bool) -> bytes:
    """Bytes of one stored chunk: deflate (zlib format, HDF5 filter "gzip") or raw."""
    return _deflate(block) if compress else block.tobytes()


class _LayerBuffer:
    """Rows of one stored counts dataset waiting to fill a chunk."""

    def __init__(self, dset: h5py.Dataset, vth: h5py.Dataset, rows: int, in_features: int) -> None:
        self.dset, self.vth = dset, vth
        self.rows = rows
        self.block = np.empty((rows, in_features), dtype=np.int16)
        self.vblock = np.zeros(rows, dtype=np.float32)
        self.fill = 0  # rows in block
        self.stored = 0  # rows already handed to the compressor (whole chunks)
        self.extent = 0  # rows of the counts dataset's current extent
        self.vpending: list[np.ndarray] = []  # V_th rows not yet written
        self.vrows = 0  # rows in vpending
        self.vstored = 0  # V_th rows written
        self.vextent = 0  # rows of the vth dataset's current extent
        self.free: list[np.ndarray] = []  # recycled chunk blocks (no fresh allocations)

    @property
    def total(self) -> int:
        return self.stored + self.fill


class TraceWriter:
    """Stream spike counts into a new HDF5 trace, committed atomically on :meth:`close`.

    Use as a context manager: a clean exit commits (flush, fsync, rename); an exception
    deletes the temporary file and leaves any previous file under ``path`` untouched.

    Args:
        path: destination file (its directory must exist).
        model_id: identifier of the traced model.
        k: threshold divisor used for the counts (``V_th = mean|x| / k``).
        vth_clamp: V_th clamp (lo, hi) used (W8ASpike release: [1e-5, 1e4]).
        overwrite: replace an existing file; otherwise FileExistsError.
        attrs: extra root attributes (str, number, bool or numeric arrays).
        encoder: description of the float -> count quantizer.
        compression: ``"gzip"`` (deflate level 1, default) or ``None``.
        chunk_rows: token rows per stored chunk (capped so a chunk stays <= 1 MiB).
        workers: compression threads; 0 compresses in the calling thread (best when the
            caller already keeps every core busy: extra threads would preempt it). Default:
            up to 4, one less than the CPU count.
        expected_tokens: token count the caller expects (a hint: datasets are created at
            that size so no resize is needed while streaming; any final count is fine).
    """

    def __init__(
        self,
        path: str | os.PathLike,
        *,
        model_id: str,
        k: float,
        vth_clamp: tuple[float, float] = (VTH_MIN, VTH_MAX),
        overwrite: bool = False,
        attrs: Mapping[str, Any] | None = None,
        encoder: str = DEFAULT_ENCODER,
        compression: str | None = "gzip",
        chunk_rows: int = 256,
        workers: int | None = None,
        expected_tokens: int | None = None,
    ) -> None:
        if not isinstance(model_id, str) or not model_id:
            raise ValueError(f"model_id must be a non-empty string, got {model_id!r}")
        k = _check_k(k)
        lo, hi = _check_clamp(vth_clamp)
        if compression not in ("gzip", None):
            raise ValueError(f"compression must be 'gzip' or None, got {compression!r}")
        if not isinstance(chunk_rows, int) or isinstance(chunk_rows, bool) or chunk_rows <= 0:
            raise ValueError(f"chunk_rows must be a positive int, got {chunk_rows!r}")
        if expected_tokens is not None and (
            not isinstance(expected_tokens, int) or isinstance(expected_tokens, bool) or expected_tokens < 0
        ):
            raise ValueError(f"expected_tokens must be None or an int >= 0, got {expected_tokens!r}")
        self._expected = int(expected_tokens or 0)
        if attrs is not None and not isinstance(attrs, Mapping):
            raise TypeError(f"attrs must be a mapping, got {type(attrs).__name__}")
        clash = sorted(set(attrs or ()) & _RESERVED_ATTRS)
        if clash:
            raise ValueError(f"attrs may not set reserved root attributes: {', '.join(clash)}")
        self.path = _check_destination(path, overwrite)
        self.overwrite = bool(overwrite)
        self._compress = compression == "gzip"
        self._chunk_rows = chunk_rows
        self._tmp = _temp_path(self.path)
        self._closed = False
        self._layers: dict[str, LayerInfo] = {}
        self._buffers: dict[str, _LayerBuffer] = {}  # stored (non-linked) layers only
        self._indices: set[int] = set()
        self._n_tokens = 0
        self._has_offsets = False
        self._prompt_starts: list[int] = []
        self._prompt_text: list[str | None] = []
        if workers is None:
            workers = max(0, min(4, (os.cpu_count() or 1) - 1))
        if not isinstance(workers, int) or isinstance(workers, bool) or workers < 0:
            raise ValueError(f"workers must be None or an int >= 0, got {workers!r}")
        self._pool = (
            ThreadPoolExecutor(max_workers=workers, thread_name_prefix="trace-deflate") if workers else None
        )
        self._pending: deque[tuple[_LayerBuffer, np.ndarray, int, int, Future]] = deque()
        self._pending_bytes = 0
        try:
            self._f = h5py.File(self._tmp, "w")
            a = self._f.attrs
            a["format"] = FORMAT_NAME
            a["schema_version"] = SCHEMA_VERSION
            a["package_version"] = _package_version()
            a["model_id"] = model_id
            a["k"] = k
            a["vth_clamp"] = np.array([lo, hi], dtype=np.float64)
            a["encoder"] = str(encoder)
            a["created"] = _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds")
            for key, value in (attrs or {}).items():
                if not isinstance(key, str) or not key:
                    raise ValueError(f"attribute names must be non-empty strings, got {key!r}")
                if isinstance(value, str):
                    value = str(value)  # str subclasses (e.g. torch's version string)
                try:
                    a[key] = value
                except (TypeError, ValueError) as e:
                    raise TypeError(f"attribute {key!r}: value of type {type(value).__name__} cannot be stored ({e})") from None
            self._tokens = self._f.create_dataset(
                "tokens", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,), compression="gzip", shuffle=True
            )
            self._offsets: h5py.Dataset | None = None
            self._group = self._f.create_group("layers")
        except BaseException:
            self.abort()
            raise

    # -- context manager ------------------------------------------------------------
    def __enter__(self) -> "TraceWriter":
        return self

    def __exit__(self, exc_type, exc, tb) -> None:
        if exc_type is None:
            self.close()
        else:
            self.abort()

    def __del__(self) -> None:  # never leave a temp file behind if the writer is dropped
        try:
            if not self._closed:
                self.abort()
        except Exception:
            pass

    # -- properties -------------------------------------------------------------------
    @property
    def n_tokens(self) -> int:
        """Tokens appended so far."""
        return self._n_tokens

    @property
    def layers(self) -> list[str]:
        """Names of the layers added so far, in the order they were added."""
        return list(self._layers)

    def _check_open(self) -> None:
        if self._closed:
            raise ValueError(f"trace writer for {self.path} is closed")

    # -- layers -----------------------------------------------------------------------
    def add_layer(self, info: LayerInfo, *, same_input_as: str | None = None) -> None:
        """Declare a layer. With ``same_input_as`` (or ``info.same_input_as``) naming an added
        layer that receives the identical input, the counts are stored once (hard links) and
        :meth:`append` must not be called for this layer."""
        self._check_open()
        if not isinstance(info, LayerInfo):
            raise TypeError(f"info must be a LayerInfo, got {type(info).__name__}")
        share = same_input_as if same_input_as is not None else info.same_input_as
        info = replace(info, same_input_as=share).validate()
        if info.name in self._layers:
            raise ValueError(f"layer {info.name!r} was already added")
        if int(info.index) in self._indices:
            raise ValueError(f"layer {info.name!r}: index {info.index} is already used by another layer")
        layers = self._group
        group = layers.create_group(layer_key(info.name))
        group.attrs["name"] = info.name
        group.attrs["role"] = info.role
        group.attrs["in_features"] = int(info.in_features)
        group.attrs["out_features"] = int(info.out_features)
        group.attrs["index"] = int(info.index)
        if share is not None:
            src = self._layers.get(share)
            if src is None:
                del layers[layer_key(info.name)]
                raise ValueError(f"layer {info.name!r}: same_input_as={share!r} is not an added layer")
            while src.same_input_as is not None:  # link to the layer that owns the data
                src = self._layers[src.same_input_as]
            if src.in_features != info.in_features:
                del layers[layer_key(info.name)]
                raise ValueError(
                    f"layer {info.name!r} has in_features {info.in_features} but {src.name!r} has {src.in_features}; "
                    "they cannot share an input"
                )
            info = replace(info, same_input_as=src.name)
            group.attrs["same_input_as"] = src.name
            sbuf = self._buffers[src.name]
            group["counts"] = sbuf.dset  # hard links
            group["vth"] = sbuf.vth
        else:
            C = int(info.in_features)
            rows = max(1, min(self._chunk_rows, _CHUNK_BYTES // (2 * C)))
            filt = {"compression": "gzip", "compression_opts": 1} if self._compress else {}
            n0 = self._expected
            counts = group.create_dataset(
                "counts", shape=(n0, C), maxshape=(None, C), dtype=np.int16, chunks=(rows, C), **filt
            )
            vth = group.create_dataset(
                "vth", shape=(n0,), maxshape=(None,), dtype=np.float32, chunks=(max(rows, 1024),),
                compression="gzip" if self._compress else None,
            )
            buf = self._buffers[info.name] = _LayerBuffer(counts, vth, rows, C)
            buf.extent = buf.vextent = n0
        self._layers[info.name] = info
        self._indices.add(int(info.index))

    # -- data ---------------------------------------------------------------------------
    def append(self, name: str, counts: Any, vth: Any) -> None:
        """Append token rows of one layer: ``counts`` int [n, in_features], ``vth`` [n] (> 0).

        Raises ValueError for an unknown or linked layer, wrong shapes, counts outside int16
        or non-positive thresholds; TypeError for non-integer counts.
        """
        self._check_open()
        info = self._layers.get(name)
        if info is None:
            raise ValueError(f"unknown layer {name!r}; call add_layer first")
        if info.same_input_as is not None:
            raise ValueError(f"layer {name!r} shares its input with {info.same_input_as!r}; append to that layer")
        c = _check_counts(name, counts, info.in_features)
        v = _check_vth(name, vth, c.shape[0])
        buf = self._buffers[name]
        pos, n = 0, c.shape[0]
        while pos < n:  # loop over chunks (not tokens)
            take = min(n - pos, buf.rows - buf.fill)
            buf.block[buf.fill : buf.fill + take] = c[pos : pos + take]
            buf.vblock[buf.fill : buf.fill + take] = v[pos : pos + take]
            buf.fill += take
            pos += take
            if buf.fill == buf.rows:
                self._flush_block(buf)
        self._drain(block=False)

    def append_tokens(self, ids: Any, offsets: Any = None) -> None:
        """Append token ids (1-D ints) and optionally their character spans ``[n, 2]`` (start, end)."""
        self._check_open()
        t = _check_ids(ids)
        n = t.shape[0]
        o = None if offsets is None else _check_offsets(offsets, n)
        if not self._prompt_starts:
            self._prompt_starts.append(0)
            self._prompt_text.append(None)
        start = self._n_tokens
        self._tokens.resize((start + n,))
        self._tokens[start:] = t
        if o is not None and self._offsets is None:
            self._offsets = self._f.create_dataset(
                "token_offsets", shape=(start, 2), maxshape=(None, 2), dtype=np.int64, chunks=(4096, 2),
                compression="gzip", fillvalue=-1,
            )
        if self._offsets is not None:
            self._offsets.resize((start + n, 2))
            if o is not None:
                self._offsets[start:] = o
        self._n_tokens = start + n

    def begin_prompt(self, text: str | None = None) -> None:
        """Mark that the next appended tokens start a new prompt (optionally storing its text)."""
        self._check_open()
        if text is not None and not isinstance(text, str):
            raise TypeError(f"prompt text must be a str, got {type(text).__name__}")
        if self._prompt_starts and self._prompt_starts[-1] == self._n_tokens:
            self._prompt_text[-1] = text  # no tokens since the last mark: replace it
            return
        self._prompt_starts.append(self._n_tokens)
        self._prompt_text.append(text)

    # -- chunk pipeline -------------------------------------------------------------------
    def _flush_block(self, buf: _LayerBuffer) -> None:
        """Hand the buffer's rows (a whole chunk, zero padded if partial) to a compressor."""
        rows = buf.fill
        block = buf.block  # handed over; the layer continues in a recycled buffer
        buf.block = buf.free.pop() if buf.free else np.empty_like(block)
        if rows < buf.rows:
            block[rows:] = 0  # padding beyond the dataset extent of an edge chunk
        buf.vpending.append(buf.vblock[:rows].copy())
        buf.vrows += rows
        if buf.vrows >= _VTH_FLUSH_ROWS:
            self._flush_vth(buf)
        start = buf.stored
        buf.stored += rows
        buf.fill = 0
        end = buf.stored
        if self._pool is None:
            self._write_chunk(buf, block, start, end, _encode_chunk(block, self._compress))
            return
        fut = self._pool.submit(_encode_chunk, block, self._compress)
        self._pending.append((buf, block, start, end, fut))
        self._pending_bytes += block.nbytes
        while self._pending_bytes > _MAX_PENDING_BYTES:
            self._write_oldest()

    @staticmethod
    def _flush_vth(buf: _LayerBuffer) -> None:
        if not buf.vrows:
            return
        vals = np.concatenate(buf.vpending)
        end = buf.vstored + vals.shape[0]
        if buf.vextent < end:
            buf.vth.resize((end,))
            buf.vextent = end
        buf.vth[buf.vstored : end] = vals
        buf.vstored, buf.vpending, buf.vrows = end, [], 0

    def _write_oldest(self) -> None:
        buf, block, start, end, fut = self._pending.popleft()
        self._pending_bytes -= block.nbytes
        self._write_chunk(buf, block, start, end, fut.result())

    @staticmethod
    def _write_chunk(buf: _LayerBuffer, block: np.ndarray, start: int, end: int, data: bytes) -> None:
        if buf.extent < end:
            buf.dset.resize((end, block.shape[1]))
            buf.extent = end
        buf.dset.id.write_direct_chunk((start, 0), data, filter_mask=0)
        if not buf.free:  # one spare block per layer is enough: chunks return before the next fills
            buf.free.append(block)

    def _drain(self, block: bool) -> None:
        while self._pending and (block or self._pending[0][4].done()):
            self._write_oldest()

    # -- commit / abort -----------------------------------------------------------------
    def close(self) -> Path:
        """Finish, verify every layer has one row per token, fsync and rename into place.

        Returns the final path. On any error the temporary file is removed and the error raised.
        """
        if self._closed:
            return self.path
        try:
            for buf in self._buffers.values():
                # Pre-sized beyond the rows written: shrink first (no chunk lies past the end
                # yet), so the edge chunk written next is the last one.
                total = buf.total
                if buf.extent > total:
                    buf.dset.resize((total, buf.block.shape[1]))
                    buf.extent = total
                if buf.vextent > total:
                    buf.vth.resize((total,))
                    buf.vextent = total
                if buf.fill:
                    self._flush_block(buf)
                self._flush_vth(buf)
            self._drain(block=True)
            for name, buf in self._buffers.items():
                if buf.total != self._n_tokens:
                    raise ValueError(
                        f"layer {name!r} has {buf.total} token rows but {self._n_tokens} tokens were appended; "
                        "every layer needs one row per token"
                    )
            self._write_index()
            starts = self._prompt_starts or ([0] if self._n_tokens else [])
            self._f.create_dataset("prompt_starts", data=np.asarray(starts, dtype=np.int64))
            if any(t is not None for t in self._prompt_text):
                texts = [t if t is not None else "" for t in self._prompt_text]
                self._f.create_dataset("prompt_text", data=texts, dtype=h5py.string_dtype("utf-8"))
            self._f.flush()
            self._f.close()
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            _commit(self._tmp, self.path, self.overwrite)
            self._closed = True
        except BaseException:
            self.abort()
            raise
        return self.path

    def _write_index(self) -> None:
        infos = sorted(self._layers.values(), key=lambda i: i.index)
        table = np.empty(len(infos), dtype=_INDEX_DTYPE)
        for row, info in enumerate(infos):  # loop over layers
            table[row] = (info.name, layer_key(info.name), info.role, info.in_features, info.out_features,
                          info.index, info.same_input_as or "")
        self._f.create_dataset("layer_index", data=table)

    def abort(self) -> None:
        """Discard everything written: close and delete the temporary file."""
        self._closed = True
        pool = getattr(self, "_pool", None)
        if pool is not None:
            pool.shutdown(wait=True, cancel_futures=True)
        f = getattr(self, "_f", None)
        if f is not None:
            with contextlib.suppress(Exception):
                f.close()
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            with contextlib.suppress(OSError):
                Path(tmp).unlink(missing_ok=True)


# --------------------------------------------------------------------------- reader


def _wrap_read(path: Path | None, what: str):
    """Context manager turning low-level HDF5 read errors into TraceError."""

    @contextlib.contextmanager
    def guard():
        try:
            yield
        except (OSError, RuntimeError, KeyError) as e:
            raise TraceError(f"{path}: cannot read {what}: the file is corrupt or truncated ({e})") from e

    return guard()


class SpikeTrace:
    """Per-layer spike counts [tokens, in_features] (int16) and V_th [tokens] (float32) of a run.

    Open a file with :meth:`open` (lazy: only metadata is read; counts are read per layer
    and per row range on request) or build one in memory with :meth:`from_arrays`.
    """

    def __init__(self) -> None:  # use SpikeTrace.open / SpikeTrace.from_arrays
        self._path: Path | None = None
        self._file: h5py.File | None = None
        self._attrs: dict[str, Any] = {}
        self._infos: dict[str, LayerInfo] = {}
        self._mem: dict[str, tuple[np.ndarray, np.ndarray]] = {}
        self._tokens: np.ndarray | None = None
        self._offsets: np.ndarray | None = None
        self._prompt_starts: np.ndarray = np.zeros(0, dtype=np.int64)
        self._prompt_text: list[str] | None = None
        self._n_tokens = 0
        self._checked: set[str] = set()  # file-backed layers whose group was verified

    # -- construction ---------------------------------------------------------------------
    @classmethod
    def open(cls, path: str | os.PathLike) -> "SpikeTrace":
        """Open a trace file lazily. Raises FileNotFoundError if absent, PermissionError if it
        may not be read, TraceError if the file is corrupt, truncated, not a spike trace, or from
        a newer schema version."""
        if not isinstance(path, (str, os.PathLike)):
            raise TypeError(f"path must be a str or os.PathLike, got {type(path).__name__}")
        p = Path(path).expanduser().absolute()
        if not p.exists():
            raise FileNotFoundError(f"trace file {p} does not exist")
        if p.is_dir():
            raise IsADirectoryError(f"{p} is a directory, not a trace file")
        try:
            f = h5py.File(p, "r")
        except PermissionError:
            raise PermissionError(f"{p}: permission denied: this user may not read the trace (see its mode)") from None
        except OSError as e:
            raise TraceError(
                f"{p}: not a readable HDF5 file; it is corrupt, truncated or of another format ({e})"
            ) from e
        self = cls()
        self._path, self._file = p, f
        try:
            self._load_metadata()
        except BaseException:
            f.close()
            raise
        return self

    load = open  # ``SpikeTrace.load(path)``: same as open (lazy)

    def _load_metadata(self) -> None:
        f, p = self._file, self._path
        assert f is not None
        with _wrap_read(p, "root attributes"):
            attrs = {key: _py(f.attrs[key]) for key in f.attrs}
        if attrs.get("format") != FORMAT_NAME:
            raise TraceError(
                f"{p}: not a neurosim spike trace (HDF5 file without format={FORMAT_NAME!r}; "
                f"found {attrs.get('format')!r}): a foreign HDF5 file"
            )
        ver = attrs.get("schema_version")
        if not isinstance(ver, int) or isinstance(ver, bool) or ver < 1:
            raise TraceError(f"{p}: unknown trace schema version {ver!r}")
        if ver > SCHEMA_VERSION:
            raise TraceError(
                f"{p}: trace schema version {ver} is newer than this neurosim supports ({SCHEMA_VERSION}); "
                "upgrade spikingbrain-neurosim to read it"
            )
        for key in ("model_id", "k", "vth_clamp"):
            if key not in attrs:
                raise TraceError(f"{p}: incomplete trace: root attribute {key!r} is missing")
        if "tokens" not in f or "layers" not in f:
            missing = "tokens" if "tokens" not in f else "layers"
            raise TraceError(f"{p}: incomplete trace: /{missing} is missing")
        self._attrs = attrs
        with _wrap_read(p, "/tokens"):
            tok = f["tokens"]
            if not isinstance(tok, h5py.Dataset) or tok.ndim != 1:
                raise TraceError(f"{p}: /tokens must be a 1-D dataset")
            n = int(tok.shape[0])
            if "prompt_starts" in f:
                self._prompt_starts = np.asarray(f["prompt_starts"][()], dtype=np.int64)
            if "prompt_text" in f:
                self._prompt_text = [s.decode() if isinstance(s, bytes) else str(s) for s in f["prompt_text"][()]]
        self._n_tokens = n
        with _wrap_read(p, "/layers"):
            if "layer_index" in f:  # one read; each layer's group is checked on first use
                infos = self._read_index(f["layer_index"], len(f["layers"]))
            else:  # a file without the table: read and check every group now
                infos = []
                for key, group in f["layers"].items():
                    infos.append(self._read_info(key, group, n))
                self._checked = {i.name for i in infos}
        infos.sort(key=lambda i: i.index)
        if len({i.index for i in infos}) != len(infos):
            raise TraceError(f"{p}: two layers share the same index")
        self._infos = {i.name: i for i in infos}

    def _read_index(self, dset: Any, n_groups: int) -> list[LayerInfo]:
        p = self._path
        if not isinstance(dset, h5py.Dataset) or dset.dtype.names is None or set(dset.dtype.names) != set(
            _INDEX_DTYPE.names
        ):
            raise TraceError(f"{p}: /layer_index is not a layer table with fields {', '.join(_INDEX_DTYPE.names)}")
        table = dset[()]
        if table.shape != (n_groups,):
            raise TraceError(f"{p}: /layer_index lists {table.size} layers but /layers holds {n_groups}")
        text = lambda v: v.decode("utf-8") if isinstance(v, bytes) else str(v)  # noqa: E731
        infos = []
        for row in table:  # loop over layers
            try:
                info = LayerInfo(
                    text(row["name"]), text(row["role"]), int(row["in_features"]), int(row["out_features"]),
                    int(row["index"]), text(row["same_input_as"]) or None,
                ).validate()
            except (TypeError, ValueError) as e:
                raise TraceError(f"{p}: /layer_index has an invalid entry ({e})") from None
            if text(row["key"]) != layer_key(info.name):
                raise TraceError(f"{p}: /layer_index: layer {info.name!r} has group key {text(row['key'])!r}")
            infos.append(info)
        if len({i.name for i in infos}) != len(infos):
            raise TraceError(f"{p}: /layer_index names a layer twice")
        return infos

    def _check_layer(self, info: LayerInfo) -> None:
        """Verify a layer's group attributes and datasets against the index (once per layer)."""
        if info.name in self._checked:
            return
        f, p = self._h5(), self._path
        key = layer_key(info.name)
        with _wrap_read(p, f"layer {info.name!r}"):
            if key not in f["layers"]:
                raise TraceError(f"{p}: layer {info.name!r} is listed in /layer_index but /layers/{key} is missing")
            stored = self._read_info(key, f["layers"][key], self._n_tokens)
        if stored != info or stored.same_input_as != info.same_input_as:
            raise TraceError(f"{p}: layer {info.name!r}: group attributes {stored} disagree with /layer_index {info}")
        self._checked.add(info.name)

    def _read_info(self, key: str, group: Any, n: int) -> LayerInfo:
        p = self._path
        if not isinstance(group, h5py.Group):
            raise TraceError(f"{p}: /layers/{key} is not a group")
        a = group.attrs
        missing = [x for x in ("name", "role", "in_features", "out_features", "index") if x not in a]
        if missing:
            raise TraceError(f"{p}: layer /layers/{key} lacks attributes {', '.join(missing)}")
        try:
            info = LayerInfo(
                _py(a["name"]), _py(a["role"]), int(a["in_features"]), int(a["out_features"]), int(a["index"]),
                _py(a["same_input_as"]) if "same_input_as" in a else None,
            ).validate()
        except (TypeError, ValueError) as e:
            raise TraceError(f"{p}: layer /layers/{key} has invalid attributes ({e})") from None
        if "counts" not in group or "vth" not in group:
            raise TraceError(f"{p}: layer {info.name!r} lacks its counts or vth dataset")
        c, v = group["counts"], group["vth"]
        if c.dtype != np.int16 or c.shape != (n, info.in_features):
            raise TraceError(
                f"{p}: layer {info.name!r}: counts are {c.dtype} {list(c.shape)}, expected int16 [{n}, {info.in_features}]"
            )
        if v.shape != (n,):
            raise TraceError(f"{p}: layer {info.name!r}: vth has shape {list(v.shape)}, expected [{n}]")
        return info

    @classmethod
    def from_arrays(
        cls,
        *,
        model_id: str,
        k: float,
        tokens: Any,
        layers: Iterable[tuple[LayerInfo, Any, Any]],
        vth_clamp: tuple[float, float] = (VTH_MIN, VTH_MAX),
        attrs: Mapping[str, Any] | None = None,
        offsets: Any = None,
        prompt_starts: Sequence[int] | None = None,
        prompt_text: Sequence[str] | None = None,
    ) -> "SpikeTrace":
        """Build an in-memory trace (for tests and synthetic data).

        Args:
            layers: ``(LayerInfo, counts [tokens, in_features] int, vth [tokens])`` per layer,
                e.g. ``list(other.iter_layers())``; model order is ``LayerInfo.index``.
            tokens: token ids [tokens]; offsets: optional [tokens, 2] character spans.
            prompt_starts: index of each prompt's first token (default ``[0]``).
        Arrays are copied into read-only int16/float32 arrays.
        """
        if not isinstance(model_id, str) or not model_id:
            raise ValueError(f"model_id must be a non-empty string, got {model_id!r}")
        self = cls()
        lo, hi = _check_clamp(vth_clamp)
        if attrs is not None and not isinstance(attrs, Mapping):
            raise TypeError(f"attrs must be a mapping, got {type(attrs).__name__}")
        clash = sorted(set(attrs or ()) & _RESERVED_ATTRS)
        if clash:
            raise ValueError(f"attrs may not set reserved root attributes: {', '.join(clash)}")
        tok = _check_ids(tokens).copy()
        n = tok.shape[0]
        self._tokens = tok
        self._offsets = None if offsets is None else _check_offsets(offsets, n).copy()
        self._n_tokens = n
        if prompt_starts is None:
            starts = np.asarray([0] if n else [], dtype=np.int64)
        else:
            starts = np.asarray(prompt_starts, dtype=np.int64).reshape(-1)
        if starts.ndim != 1 or (starts.size and (starts[0] != 0 or np.any(np.diff(starts) < 0) or starts[-1] > n)):
            raise ValueError(f"prompt_starts must be non-decreasing, start at 0 and stay <= {n}, got {starts.tolist()}")
        self._prompt_starts = starts
        if prompt_text is not None:
            texts = list(prompt_text)
            if len(texts) != starts.size or not all(isinstance(t, str) for t in texts):
                raise ValueError(f"prompt_text must hold {starts.size} strings (one per prompt)")
            self._prompt_text = texts
        infos = []
        for item in layers:
            if not (isinstance(item, tuple) and len(item) == 3 and isinstance(item[0], LayerInfo)):
                raise TypeError("each layer must be a tuple (LayerInfo, counts, vth)")
            info = item[0].validate()
            if info.name in self._mem:
                raise ValueError(f"layer {info.name!r} appears twice")
            c = _check_counts(info.name, item[1], info.in_features)
            if c.shape[0] != n:
                raise ValueError(f"layer {info.name!r} has {c.shape[0]} token rows but there are {n} tokens")
            v = _check_vth(info.name, item[2], n)
            c, v = c.copy(), v.copy()
            c.setflags(write=False)
            v.setflags(write=False)
            self._mem[info.name] = (c, v)
            infos.append(info)
        for info in infos:
            src = info.same_input_as
            if src is None:
                continue
            if src not in self._mem:
                raise ValueError(f"layer {info.name!r}: same_input_as={src!r} is not a layer")
            a, b = self._mem[src], self._mem[info.name]
            if not (np.array_equal(a[0], b[0]) and np.array_equal(a[1], b[1])):
                raise ValueError(f"layer {info.name!r}: same_input_as={src!r} but their counts or vth differ")
        if len({i.index for i in infos}) != len(infos):
            raise ValueError("layer indices must be unique (they define model order)")
        infos.sort(key=lambda i: i.index)
        self._infos = {i.name: i for i in infos}
        self._attrs = {
            "format": FORMAT_NAME, "schema_version": SCHEMA_VERSION, "package_version": _package_version(),
            "model_id": model_id, "k": _check_k(k), "vth_clamp": np.array([lo, hi]), "encoder": DEFAULT_ENCODER,
            "created": _dt.datetime.now(_dt.timezone.utc).isoformat(timespec="seconds"), **dict(attrs or {}),
        }
        return self

    # -- lifecycle --------------------------------------------------------------------------
    def close(self) -> None:
        """Close the underlying file (no-op for in-memory traces)."""
        if self._file is not None:
            self._file.close()
            self._file = None

    def __enter__(self) -> "SpikeTrace":
        return self

    def __exit__(self, *exc: Any) -> None:
        self.close()

    def __repr__(self) -> str:
        where = str(self._path) if self._path else "in memory"
        return f"SpikeTrace({where}, model={self.model_id!r}, tokens={self.n_tokens}, layers={len(self._infos)}, k={self.k})"

    def _h5(self) -> h5py.File:
        if self._file is None:
            raise ValueError(f"trace {self._path} is closed")
        return self._file

    # -- metadata -----------------------------------------------------------------------------
    @property
    def path(self) -> Path | None:
        """File of a file-backed trace; ``None`` in memory."""
        return self._path

    @property
    def model_id(self) -> str:
        return str(self._attrs["model_id"])

    @property
    def k(self) -> float:
        """Threshold divisor: ``V_th = mean|x| / k``."""
        return float(self._attrs["k"])

    @property
    def vth_clamp(self) -> tuple[float, float]:
        lo, hi = (float(v) for v in np.asarray(self._attrs["vth_clamp"]).ravel()[:2])
        return lo, hi

    @property
    def attrs(self) -> dict[str, Any]:
        """All root attributes (schema and user ones) as plain Python values."""
        return dict(self._attrs)

    @property
    def n_tokens(self) -> int:
        return self._n_tokens

    @property
    def tokens(self) -> np.ndarray:
        """Token ids (int64 [tokens]), prompts concatenated."""
        if self._tokens is None:
            with _wrap_read(self._path, "/tokens"):
                self._tokens = np.asarray(self._h5()["tokens"][()], dtype=np.int64)
        return self._tokens

    @property
    def offsets(self) -> np.ndarray | None:
        """Character spans int64 [tokens, 2] of each token in its prompt's text, or None."""
        if self._offsets is None and self._file is not None and "token_offsets" in self._file:
            with _wrap_read(self._path, "/token_offsets"):
                self._offsets = np.asarray(self._file["token_offsets"][()], dtype=np.int64)
        return self._offsets

    @property
    def prompt_starts(self) -> np.ndarray:
        """Index in :attr:`tokens` of each prompt's first token (int64 [prompts])."""
        return self._prompt_starts.copy()

    @property
    def prompt_text(self) -> list[str] | None:
        """The prompts' text when stored, else None."""
        return None if self._prompt_text is None else list(self._prompt_text)

    @property
    def layers(self) -> list[str]:
        """Layer names in model order."""
        return list(self._infos)

    def layer(self, name: str) -> LayerInfo:
        """Metadata of one layer (KeyError naming the layer if absent)."""
        try:
            return self._infos[name]
        except KeyError:
            raise KeyError(f"no layer {name!r} in trace {self._path or '(in memory)'}") from None

    # -- data -------------------------------------------------------------------------------------
    def _dsets(self, name: str) -> tuple[h5py.Dataset, h5py.Dataset]:
        info = self.layer(name)
        self._check_layer(info)
        group = self._h5()["layers"][layer_key(info.name)]
        return group["counts"], group["vth"]

    def counts(self, name: str, rows: slice | None = None) -> np.ndarray:
        """Spike counts of layer ``name``: int16 [tokens, in_features] (only ``rows`` if given).

        File-backed traces read just the requested rows; in-memory traces return a read-only view.
        """
        info = self.layer(name)
        if rows is not None and not isinstance(rows, slice):
            raise TypeError(f"rows must be a slice or None, got {type(rows).__name__}")
        sel = slice(None) if rows is None else rows
        if self._file is None and self._path is None:
            return self._mem[info.name][0][sel]
        with _wrap_read(self._path, f"counts of layer {name!r}"):
            return self._dsets(name)[0][sel]

    def vth(self, name: str, rows: slice | None = None) -> np.ndarray:
        """V_th of layer ``name`` per token: float32 [tokens] (units of the layer input)."""
        info = self.layer(name)
        if rows is not None and not isinstance(rows, slice):
            raise TypeError(f"rows must be a slice or None, got {type(rows).__name__}")
        sel = slice(None) if rows is None else rows
        if self._file is None and self._path is None:
            return self._mem[info.name][1][sel]
        with _wrap_read(self._path, f"vth of layer {name!r}"):
            return self._dsets(name)[1][sel]

    def source_of(self, name: str) -> str:
        """Name of the layer whose stored data ``name`` uses (itself unless it shares an input)."""
        info = self.layer(name)
        return info.same_input_as or info.name

    def iter_layers(self) -> Iterator[tuple[LayerInfo, np.ndarray, np.ndarray]]:
        """Yield ``(info, counts, vth)`` one layer at a time, in model order.

        Layers sharing an input (q/k/v, gate/up) are read once and yield the same read-only arrays.
        """
        cached: tuple[str, np.ndarray, np.ndarray] | None = None
        for name, info in self._infos.items():
            src = self.source_of(name)
            if cached is None or cached[0] != src:
                c, v = self.counts(src), self.vth(src)
                c.setflags(write=False)
                v.setflags(write=False)
                cached = (src, c, v)
            yield info, cached[1], cached[2]

    # -- writing ------------------------------------------------------------------------------------
    def save(self, path: str | os.PathLike, overwrite: bool = False, *, compression: str | None = "gzip") -> Path:
        """Write this trace to ``path`` atomically (see :class:`TraceWriter`); returns the path."""
        user = {k: v for k, v in self._attrs.items() if k not in _RESERVED_ATTRS}
        with TraceWriter(
            path, model_id=self.model_id, k=self.k, vth_clamp=self.vth_clamp, overwrite=overwrite, attrs=user,
            encoder=str(self._attrs.get("encoder", DEFAULT_ENCODER)), compression=compression,
        ) as w:
            starts = self.prompt_starts.tolist() or [0]
            texts = self.prompt_text
            tok, off = self.tokens, self.offsets
            bounds = starts + [self.n_tokens]
            for i in range(len(starts)):  # loop over prompts
                w.begin_prompt(None if texts is None else texts[i])
                a, b = bounds[i], bounds[i + 1]
                w.append_tokens(tok[a:b], None if off is None else off[a:b])
            for info, c, v in self.iter_layers():
                w.add_layer(info)
                if info.same_input_as is None:
                    w.append(info.name, c, v)
        return w.path


@contextlib.contextmanager
def edit_trace(path: str | os.PathLike) -> Iterator[h5py.File]:
    """Edit a trace atomically: yields a writable h5py.File on a temporary copy, which replaces
    ``path`` (fsync + rename) when the block exits cleanly and is deleted on an exception.

    The file is validated first (TraceError if it is not a readable trace). Used to add
    ``/stats`` groups; do not alter the schema-defined datasets.
    """
    SpikeTrace.open(path).close()
    final = Path(path).expanduser().absolute()
    tmp = _temp_path(final)
    f: h5py.File | None = None
    try:
        shutil.copyfile(final, tmp)
        f = h5py.File(tmp, "r+")
        yield f
        f.flush()
        f.close()
        f = None
        _fsync_path(tmp)
        os.replace(tmp, final)
        _fsync_path(final.parent, directory=True)
    finally:
        if f is not None:
            with contextlib.suppress(Exception):
                f.close()
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
