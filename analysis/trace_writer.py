"""Trace writer: stream spike counts into a new HDF5 trace, committed atomically on close.

Counts are deflated chunk by chunk by the writer itself (Huffman-only deflate with numba, else ISA-L or zlib; all
release the GIL) in worker threads or inline, and stored with direct chunk writes.
"""
from __future__ import annotations

import contextlib
import datetime as _dt
import errno
import os
from collections import deque
from concurrent.futures import Future, ThreadPoolExecutor
from dataclasses import replace
from pathlib import Path
from typing import Any, Mapping

import h5py
import numpy as np

try:
    import resource  # POSIX: the file size limit (RLIMIT_FSIZE)
except ImportError:  # pragma: no cover - Windows
    resource = None  # type: ignore[assignment]

from encoders import VTH_MAX, VTH_MIN

from .checksums import TEXT_DIGEST_ATTRS, text_digest
from .fileio import (
    CommitOnExit, OutputError, Writeback, check_target, commit, disk_full_errno, disk_full_error, free_mib,
    temp_file,
)
from .trace_buffers import _GCPL, _Borrowed, _LayerBuffer, _link_name, _set_attrs
from .trace_chunks import _VTH_GZIP_LEVEL, _encode_chunk, vth_chunk
from .trace_schema import (
    _CHUNK_BYTES,
    _INDEX_DTYPE,
    _MAX_PENDING_BYTES,
    _VTH_FLUSH_ROWS,
    _RESERVED_ATTRS,
    DEFAULT_ENCODER,
    FORMAT_NAME,
    SCHEMA_MINOR,
    SCHEMA_VERSION,
    LayerInfo,
    _check_clamp,
    _check_counts,
    _check_ids,
    _check_k,
    _check_offsets,
    _check_vth,
    _package_version,
    layer_key,
)

# Room kept for what HDF5 writes when the file closes (metadata: measured ~2.3 KiB per layer,
# 70 KB for 30 layers): a chunk is refused, cleanly, when it would leave less than this free.
_ROOM_BYTES = 1 << 20
_ROOM_PER_LAYER = 8 << 10
# --------------------------------------------------------------------------- writer


class TraceWriter(CommitOnExit):
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
        self.path = check_target(path, overwrite)
        self.overwrite = bool(overwrite)
        self._compress = compression == "gzip"
        self._chunk_rows = chunk_rows
        self._tmp = temp_file(self.path)
        self._writeback = Writeback(self._tmp)
        self._closed = False
        self._free_at_abort: float | None = None
        self._slack = 0  # bytes that may be written before free space is measured again
        self._layers: dict[str, LayerInfo] = {}
        self._buffers: dict[str, _LayerBuffer] = {}  # stored (non-linked) layers only
        self._dcpls: dict[tuple[int, int], tuple] = {}  # (C, rows) -> creation plists and types
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
        self._pending: deque[tuple[_LayerBuffer, np.ndarray, int, int, Future, _Borrowed | None]] = deque()
        self._pending_bytes = 0
        try:
            # HDF5 1.10 file format: object headers (attributes) carry checksums too.
            self._f = h5py.File(self._tmp, "w", libver=("v110", "latest"))
            a = self._f.attrs
            a["format"] = FORMAT_NAME
            a["schema_version"] = SCHEMA_VERSION
            a["schema_minor"] = SCHEMA_MINOR
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
                "tokens", shape=(0,), maxshape=(None,), dtype=np.int64, chunks=(4096,), compression="gzip", shuffle=True,
                fletcher32=True,
            )
            self._offsets: h5py.Dataset | None = None
            self._group = self._f.create_group("layers")
        except BaseException as e:
            self.abort()
            code = disk_full_errno(e) if isinstance(e, Exception) else None
            if code is not None:
                raise disk_full_error(self.path, code, f"the trace {self.path}", self._free_at_abort) from None
            raise

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

    @contextlib.contextmanager
    def _io(self):
        """Turn a full disk (ENOSPC/EDQUOT/EFBIG, also inside h5py's messages) into one
        :class:`analysis.fileio.DiskFullError` naming the trace, after discarding the temp file."""
        try:
            yield
        except Exception as e:
            code = None if isinstance(e, OutputError) else disk_full_errno(e)
            if code is None:
                raise
            self.abort()
            raise disk_full_error(self.path, code, f"the trace {self.path}", self._free_at_abort) from None

    # -- layers -----------------------------------------------------------------------
    def add_layer(self, info: LayerInfo, *, same_input_as: str | None = None) -> None:
        """Declare a layer. With ``same_input_as`` (or ``info.same_input_as``) naming an added
        layer that receives the identical input, the counts are stored once (hard links) and
        :meth:`append` must not be called for this layer."""
        with self._io():
            self._add_layer(info, same_input_as=same_input_as)

    def append(self, name: str, counts: Any, vth: Any, *, release: Any = None) -> None:
        """Append token rows of one layer: ``counts`` int [n, in_features], ``vth`` [n] (> 0).

        With ``release`` (a callable), int16 ``counts`` are lent: whole chunks are compressed
        straight from them (no copy), and ``release()`` is called once nothing reads them any
        more; the caller must not modify them before. Without it the rows are copied.

        Raises ValueError for an unknown or linked layer, wrong shapes, counts outside int16
        or non-positive thresholds; TypeError for non-integer counts; DiskFullError (an
        OSError) when the disk fills up (the temp file is then gone).
        """
        with self._io():
            self._append(name, counts, vth, release)

    def append_tokens(self, ids: Any, offsets: Any = None) -> None:
        """Append token ids (1-D ints) and optionally their character spans ``[n, 2]`` (start, end)."""
        with self._io():
            self._append_tokens(ids, offsets)

    def _add_layer(self, info: LayerInfo, *, same_input_as: str | None = None) -> None:
        self._check_open()
        if not isinstance(info, LayerInfo):
            raise TypeError(f"info must be a LayerInfo, got {type(info).__name__}")
        share = same_input_as if same_input_as is not None else info.same_input_as
        info = replace(info, same_input_as=share).validate()
        if info.name in self._layers:
            raise ValueError(f"layer {info.name!r} was already added")
        if int(info.index) in self._indices:
            raise ValueError(f"layer {info.name!r}: index {info.index} is already used by another layer")
        src = None
        if share is not None:  # checked before anything is created
            src = self._layers.get(share)
            if src is None:
                raise ValueError(f"layer {info.name!r}: same_input_as={share!r} is not an added layer")
            while src.same_input_as is not None:  # link to the layer that owns the data
                src = self._layers[src.same_input_as]
            if src.in_features != info.in_features:
                raise ValueError(
                    f"layer {info.name!r} has in_features {info.in_features} but {src.name!r} has {src.in_features}; "
                    "they cannot share an input"
                )
            info = replace(info, same_input_as=src.name)
        # h5py's low-level calls with the property lists its high-level calls use (same file
        # objects; about half the Python time per layer)
        layers = self._group
        name, lcpl = _link_name(layers, layer_key(info.name))
        gid = h5py.h5g.create(layers.id, name, lcpl=lcpl, gcpl=_GCPL)
        _set_attrs(gid, name=info.name, role=info.role, in_features=int(info.in_features),
                   out_features=int(info.out_features), index=int(info.index))
        if src is not None:
            _set_attrs(gid, same_input_as=src.name)
            sbuf = self._buffers[src.name]
            link, llcpl = _link_name(layers, "counts")  # hard links, as group["counts"] = dset makes them
            h5py.h5o.link(sbuf.dset.id, gid, link, lcpl=llcpl)
            h5py.h5o.link(sbuf.vth.id, gid, b"vth", lcpl=llcpl)
        else:
            C = int(info.in_features)
            cap = _CHUNK_BYTES // (2 * C)
            rows = max(1, min(self._chunk_rows, cap))
            if cap < self._chunk_rows:  # capped by bytes: a power of two, so that appends of
                rows = 1 << (rows.bit_length() - 1)  # 2**n token rows fill whole chunks (no copy)
            counts, vth = self._new_datasets(h5py.Group(gid), C, rows)
            buf = self._buffers[info.name] = _LayerBuffer(counts, vth, rows, C)
            buf.extent = buf.vextent = self._expected
        self._layers[info.name] = info
        self._indices.add(int(info.index))

    def _new_datasets(self, group: h5py.Group, C: int, rows: int) -> tuple[h5py.Dataset, h5py.Dataset]:
        """The counts [n, C] and vth [n] datasets of a stored layer. The first of each shape is made
        by h5py's create_dataset; later ones reuse its creation property list and type."""
        n0 = self._expected
        made = self._dcpls.get((C, rows))
        if made is None:
            filt = {"compression": "gzip", "compression_opts": 1} if self._compress else {}
            counts = group.create_dataset(
                "counts", shape=(n0, C), maxshape=(None, C), dtype=np.int16, chunks=(rows, C), fletcher32=True, **filt
            )
            vth = group.create_dataset(
                "vth", shape=(n0,), maxshape=(None,), dtype=np.float32, chunks=(max(rows, 1024),),
                compression="gzip" if self._compress else None, fletcher32=True,
                compression_opts=_VTH_GZIP_LEVEL if self._compress else None,
            )
            self._dcpls[(C, rows)] = tuple((d.id.get_create_plist(), d.id.get_type()) for d in (counts, vth))
            return counts, vth
        (cp, ct), (vp, vt) = made
        un = h5py.h5s.UNLIMITED
        counts = h5py.h5d.create(group.id, b"counts", ct, h5py.h5s.create_simple((n0, C), (un, C)), dcpl=cp)
        vth = h5py.h5d.create(group.id, b"vth", vt, h5py.h5s.create_simple((n0,), (un,)), dcpl=vp)
        return h5py.Dataset(counts), h5py.Dataset(vth)

    # -- data ---------------------------------------------------------------------------
    def _append(self, name: str, counts: Any, vth: Any, release: Any = None) -> None:
        lent = None
        try:  # ``release`` runs exactly once, whatever happens
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
            lent = _Borrowed(release) if release is not None and c is counts and c.flags.c_contiguous else None
            while pos < n:  # loop over chunks (not tokens)
                if lent is not None and buf.fill == 0 and n - pos >= buf.rows:  # a whole chunk, in place
                    lent.count += 1  # held until the chunk is written
                    self._submit(buf, c[pos : pos + buf.rows], v[pos : pos + buf.rows].copy(), buf.rows, lent)
                    pos += buf.rows
                    continue
                take = min(n - pos, buf.rows - buf.fill)
                buf.block[buf.fill : buf.fill + take] = c[pos : pos + take]
                buf.vblock[buf.fill : buf.fill + take] = v[pos : pos + take]
                buf.fill += take
                pos += take
                if buf.fill == buf.rows:
                    self._flush_block(buf)
        finally:
            if lent is not None:
                lent.drop()
            elif release is not None:  # rows copied (or refused): free at once
                release()
        self._drain(block=False)

    def _append_tokens(self, ids: Any, offsets: Any = None) -> None:
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
                compression="gzip", fillvalue=-1, fletcher32=True,
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
        buf.fill = 0
        self._submit(buf, block, buf.vblock[:rows].copy(), rows, None)

    def _submit(self, buf: _LayerBuffer, block: np.ndarray, vth: np.ndarray, rows: int, lent: _Borrowed | None) -> None:
        """Queue one chunk (``block``: the writer's own buffer if ``lent`` is None, else a lent view)."""
        buf.vpending.append(vth)
        buf.vrows += rows
        if buf.vrows >= _VTH_FLUSH_ROWS:
            self._flush_vth(buf)
        start = buf.stored
        buf.stored += rows
        end = buf.stored
        if self._pool is None:
            self._finish(buf, block, start, end, _encode_chunk(block, self._compress), lent)
            return
        fut = self._pool.submit(_encode_chunk, block, self._compress)
        self._pending.append((buf, block, start, end, fut, lent))
        self._pending_bytes += block.nbytes
        while self._pending_bytes > _MAX_PENDING_BYTES:
            self._write_oldest()

    def _finish(self, buf: _LayerBuffer, block: np.ndarray, start: int, end: int, data: bytes, lent: _Borrowed | None) -> None:
        self._ensure_room(len(data))
        self._write_chunk(buf, block, start, end, data)
        self._writeback.wrote(len(data))
        if lent is not None:
            lent.drop()
        elif not buf.free:  # one spare block per layer is enough: chunks return before the next fills
            buf.free.append(block)

    def _flush_vth(self, buf: _LayerBuffer, final: bool = False) -> None:
        """Write the buffered V_th rows that fill whole chunks (``final``: all of them, the last
        chunk zero padded as HDF5 pads an edge chunk) by direct chunk writes (:func:`vth_chunk`:
        deflated, by ISA-L level 1 where present, then Fletcher-32, as the dataset's filters
        read them back), without the per-call overhead of h5py's slicing."""
        if not buf.vrows:
            return
        vals = np.concatenate(buf.vpending) if len(buf.vpending) > 1 else buf.vpending[0]
        R = buf.vth.chunks[0]
        n = vals.shape[0] if final else vals.shape[0] - vals.shape[0] % R
        end = buf.vstored + n
        if buf.vextent < end:
            buf.vth.resize((end,))
            buf.vextent = end
        for s in range(0, n, R):  # loop over chunks
            data = vth_chunk(vals[s : s + R], R, self._compress)
            self._ensure_room(len(data))
            buf.vth.id.write_direct_chunk((buf.vstored + s,), data, filter_mask=0)
        rest = vals[n:]
        buf.vstored, buf.vpending, buf.vrows = end, [rest] if rest.shape[0] else [], rest.shape[0]

    def _write_oldest(self) -> None:
        buf, block, start, end, fut, lent = self._pending.popleft()
        self._pending_bytes -= block.nbytes
        self._finish(buf, block, start, end, fut.result(), lent)

    def _ensure_room(self, nbytes: int) -> None:
        """Refuse a chunk (DiskFullError after abort) that would leave too little room for HDF5 to
        close the file: HDF5 left without room on close fails again and again, and may crash.
        Free space is measured again once a quarter of the room last measured (16 MiB at most)
        is used up, not for every chunk (two system calls per chunk were ~10% of a capture's
        writer time)."""
        if self._slack > nbytes:
            self._slack -= nbytes
            return
        need = nbytes + _ROOM_BYTES + _ROOM_PER_LAYER * len(self._layers)
        try:
            st = os.statvfs(self._tmp)
            free = st.f_bavail * st.f_frsize
            size = os.stat(self._tmp).st_size
        except OSError:
            return
        code = None
        room = free - need
        if free < need:
            code = errno.ENOSPC
        else:
            limit = resource.getrlimit(resource.RLIMIT_FSIZE)[0] if resource is not None else -1
            if limit not in (-1, getattr(resource, "RLIM_INFINITY", -1)):
                room = min(room, limit - size - need)
                if size + need > limit:
                    code = errno.EFBIG
        if code is not None:
            raise OSError(code, os.strerror(code))
        self._slack = max(0, min(room // 4, 16 << 20))

    @staticmethod
    def _write_chunk(buf: _LayerBuffer, block: np.ndarray, start: int, end: int, data: bytes) -> None:
        if buf.extent < end:
            buf.dset.resize((end, block.shape[1]))
            buf.extent = end
        buf.dset.id.write_direct_chunk((start, 0), data, filter_mask=0)

    def flush(self) -> None:
        """Wait for the compressors and write every chunk handed to them (lent arrays are then
        released); rows short of a whole chunk stay buffered."""
        with self._io():
            self._drain(block=True)

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
        with self._io():
            return self._close()

    def _close(self) -> Path:
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
                self._flush_vth(buf, final=True)
            self._drain(block=True)
            self._writeback.start()  # the last chunks go to disk while the metadata is written
            for name, buf in self._buffers.items():
                if buf.total != self._n_tokens:
                    raise ValueError(
                        f"layer {name!r} has {buf.total} token rows but {self._n_tokens} tokens were appended; "
                        "every layer needs one row per token"
                    )
            self._write_index()
            starts = self._prompt_starts or ([0] if self._n_tokens else [])
            self._f.create_dataset("prompt_starts", data=np.asarray(starts, dtype=np.int64), fletcher32=True)
            if any(t is not None for t in self._prompt_text):
                texts = [t if t is not None else "" for t in self._prompt_text]
                self._f.create_dataset("prompt_text", data=texts, dtype=h5py.string_dtype("utf-8"))
            # variable-length strings cannot take HDF5 filters: hash them instead
            for name, attr in TEXT_DIGEST_ATTRS.items():
                if name in self._f:
                    self._f.attrs[attr] = text_digest(self._f, name)
            self._f.flush()
            self._f.close()
            self._writeback.close()
            if self._pool is not None:
                self._pool.shutdown(wait=True)
            commit(self._tmp, self.path, self.overwrite)
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
        pending = getattr(self, "_pending", ())
        while pending:  # nothing reads lent arrays any more: hand them back
            lent = pending.popleft()[5]
            if lent is not None:
                lent.drop()
        if getattr(self, "_free_at_abort", None) is None:  # free space (MiB) when it went wrong
            self._free_at_abort = free_mib(self.path.parent)
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:  # empty it first: frees the space, so HDF5 can close cleanly on a full disk
            with contextlib.suppress(OSError):
                os.truncate(tmp, 0)
        f = getattr(self, "_f", None)
        if f is not None:
            with contextlib.suppress(Exception):
                f.close()
        wb = getattr(self, "_writeback", None)
        if wb is not None:
            wb.close()
        tmp = getattr(self, "_tmp", None)
        if tmp is not None:
            with contextlib.suppress(OSError):
                Path(tmp).unlink(missing_ok=True)
