"""Trace reader: :class:`SpikeTrace` (file-backed or in memory) and :func:`edit_trace`."""
from __future__ import annotations

import contextlib
import datetime as _dt
import os
import shutil
from pathlib import Path
from typing import Any, Iterable, Iterator, Mapping, Sequence

import h5py
import numpy as np

from encoders import VTH_MAX, VTH_MIN

from .checksums import TEXT_DIGEST_ATTRS, text_digest
from .fileio import OutputError, commit, disk_full_errno, disk_full_error, free_mib, temp_file
from .trace_schema import (
    _INDEX_DTYPE,
    _RESERVED_ATTRS,
    DEFAULT_ENCODER,
    FORMAT_NAME,
    SCHEMA_VERSION,
    LayerInfo,
    TraceError,
    _check_clamp,
    _check_counts,
    _check_ids,
    _check_k,
    _check_offsets,
    _check_vth,
    _package_version,
    _py,
    layer_key,
)
from .trace_writer import TraceWriter

# --------------------------------------------------------------------------- reader


def damage(e: BaseException) -> str:
    """What a low-level read error means, in words (no raw library message)."""
    text = str(e)
    if "filter returned failure" in text or "fletcher32" in text.lower() or "checksum" in text.lower():
        return "damaged: its checksum does not match (the file was altered or corrupted)"
    if isinstance(e, UnicodeDecodeError):
        return "damaged: a stored text is not valid UTF-8"
    if "truncated" in text or "end of file" in text.lower() or "eof" in text.lower():
        return "truncated"
    return "unreadable: the file is corrupt or truncated"


def _wrap_read(path: Path | None, what: str):
    """Context manager turning low-level HDF5 read errors into one-line TraceErrors naming the file."""

    @contextlib.contextmanager
    def guard():
        try:
            yield
        except TraceError:
            raise
        except (OSError, RuntimeError, KeyError, UnicodeDecodeError) as e:
            raise TraceError(f"{path}: {what} is {damage(e)}") from e

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
            if "checksum" in str(e).lower():
                raise TraceError(f"{p}: the HDF5 file header is {damage(e)}") from e
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
        # after the structural checks (they say more); then any remaining change is damage
        for name, attr in TEXT_DIGEST_ATTRS.items():
            if attr in self._attrs and name in f:
                with _wrap_read(p, f"/{name}"):
                    ok = text_digest(f, name) == self._attrs[attr]
                if not ok:
                    raise TraceError(f"{p}: /{name} is damaged: its SHA-256 does not match")
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

    @property
    def has_checksums(self) -> bool:
        """True for schema 1.1+ traces (fletcher32 on every dataset; 1.0 files have none)."""
        return int(self._attrs.get("schema_minor", 0) or 0) >= 1

    def verify_checksums(self, rows: int = 4096) -> None:
        """Read every stored dataset once (``rows`` token rows at a time), so HDF5 checks each
        chunk's Fletcher-32; TraceError naming the file and the layer on a mismatch. Also reads
        1.0 files (no checksums: then only readability is checked)."""
        if self._file is None:
            return
        f = self._h5()
        for what in ("tokens", "token_offsets", "prompt_starts", "prompt_text", "layer_index"):
            if what in f:
                with _wrap_read(self._path, f"/{what}"):
                    f[what][()]
        seen = set()
        for name in self._infos:
            src = self.source_of(name)
            if src in seen:
                continue
            seen.add(src)
            for start in range(0, max(self._n_tokens, 1), rows):  # loop over row blocks
                self.counts(src, slice(start, start + rows))
                self.vth(src, slice(start, start + rows))

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
    tmp = temp_file(final)
    f: h5py.File | None = None
    try:
        try:
            shutil.copyfile(final, tmp)
            shutil.copymode(final, tmp)  # an edit keeps the file's mode
            f = h5py.File(tmp, "r+")
            yield f
            f.flush()
            f.close()
            f = None
        except Exception as e:
            code = None if isinstance(e, OutputError) else disk_full_errno(e)
            if code is None:
                raise
            free = free_mib(final.parent)
            with contextlib.suppress(OSError):
                os.truncate(tmp, 0)  # give the space back so HDF5 closes cleanly
            raise disk_full_error(final, code, f"the trace {final}", free) from None
        commit(tmp, final, overwrite=True)
    finally:
        if f is not None:
            with contextlib.suppress(Exception):
                f.close()
        with contextlib.suppress(OSError):
            tmp.unlink(missing_ok=True)
