"""AER (address-event representation) exports: a flat little-endian binary file and CSV.

Byte layout (version 1; version 2 is the same bytes for graded schemes, whose ``polarity``
byte holds the signed 8-bit payload; docs/export-formats.md is the normative description):

* fixed header, 128 bytes (:data:`AER_HEADER_DTYPE`);
* V_th table: float32 [n_tokens] if flag bit 0;
* neuron table: uint32 [n_selected] if flag bit 1 (a neuron subset was exported);
* JSON metadata: ``meta_len`` bytes of UTF-8;
* zero padding up to ``data_offset`` (a multiple of 16);
* ``n_records`` records of 16 bytes (:data:`AER_RECORD_DTYPE`), sorted by timestamp, neuron.
"""
from __future__ import annotations

import io
import json
import os
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import encoders

from analysis.fileio import atomic_paths
from ._text import IntField, render_lines
from .selection import BIT_ORDER_CODES, SCHEME_CODES, LayerSpikes, SpikeEventTable, decode_events

AER_MAGIC = b"NSIM-AER"
AER_VERSION = 1  # unit spikes (polarity +1/-1)
AER_VERSION_PAYLOAD = 2  # graded spikes: the polarity byte is the signed payload (issue 16)
AER_HEADER_SIZE = 128
AER_RECORD_SIZE = 16
LAYER_NAME_BYTES = 64
FLAG_VTH = 1 << 0
FLAG_NEURONS = 1 << 1

AER_HEADER_DTYPE = np.dtype(
    {
        "names": [
            "magic", "version", "header_size", "record_size", "flags", "n_records", "data_offset",
            "T", "token_start", "n_tokens", "n_neurons", "n_selected", "layer_id", "scheme",
            "bit_order", "k", "meta_len", "layer_name",
        ],
        "formats": [
            "S8", "<u2", "<u2", "<u2", "<u2", "<u8", "<u8",
            "<u4", "<u4", "<u4", "<u4", "<u4", "<u2", "u1",
            "u1", "<f4", "<u4", f"S{LAYER_NAME_BYTES}",
        ],
        "offsets": [0, 8, 10, 12, 14, 16, 24, 32, 36, 40, 44, 48, 52, 54, 55, 56, 60, 64],
        "itemsize": AER_HEADER_SIZE,
    }
)
AER_RECORD_DTYPE = np.dtype(
    {
        "names": ["timestamp", "token", "neuron", "layer", "polarity", "reserved"],
        "formats": ["<u4", "<u4", "<u4", "<u2", "i1", "u1"],
        "offsets": [0, 4, 8, 12, 14, 15],
        "itemsize": AER_RECORD_SIZE,
    }
)
CSV_MAGIC = "# neurosim-aer-csv "
CSV_COLUMNS = ("timestamp", "layer", "token", "neuron", "polarity")
_SCHEME_BY_CODE = {v: k for k, v in SCHEME_CODES.items()}
_ORDER_BY_CODE = {v: k for k, v in BIT_ORDER_CODES.items()}


@dataclass(frozen=True)
class AerFile:
    """Contents of an AER binary or CSV export.

    Attributes:
        meta: header fields (layer, layer_id, scheme, T, bit_order, token_start, n_tokens,
            n_neurons, n_selected, k, ...) plus the JSON metadata.
        records: structured array with :data:`AER_RECORD_DTYPE` fields (CSV: int64 fields
            ``timestamp, layer, token, neuron, polarity``).
        vth: float32 [n_tokens] thresholds, or None if the file has none.
        neurons: int64 [n_selected] exported neuron ids.
    """

    meta: dict[str, Any]
    records: np.ndarray
    vth: np.ndarray | None
    neurons: np.ndarray

    @property
    def step(self) -> np.ndarray:
        """Step within the token window of each record: ``timestamp - token * T``."""
        return self.records["timestamp"].astype(np.int64) - self.records["token"].astype(np.int64) * self.meta["T"]

    def counts(self) -> np.ndarray:
        """Decode the records to int64 counts [n_tokens, n_neurons] (rows from token_start)."""
        m = self.meta
        return decode_events(
            self.records["token"], self.step, self.records["neuron"], self.records["polarity"],
            scheme=m["scheme"], T=m["T"], bit_order=m["bit_order"], token_start=m["token_start"],
            n_tokens=m["n_tokens"], n_neurons=m["n_neurons"],
        )


def aer_records(ls: LayerSpikes) -> np.ndarray:
    """The selection's events as an array of :data:`AER_RECORD_DTYPE` records."""
    ev: SpikeEventTable = ls.events
    rec = np.zeros(len(ev), dtype=AER_RECORD_DTYPE)
    rec["timestamp"] = ev.timestamp
    rec["token"] = ev.token
    rec["neuron"] = ev.neuron
    rec["layer"] = ls.layer_id
    rec["polarity"] = ev.polarity
    return rec


def _json_meta(ls: LayerSpikes) -> bytes:
    return json.dumps(ls.metadata(include_neurons=False), sort_keys=True, separators=(",", ":")).encode()


def write_aer(ls: LayerSpikes, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write ``ls`` as an AER binary file (layout in the module docstring); return the path.

    Raises FileExistsError if ``out`` exists and ``overwrite`` is False, ValueError for a
    layer name longer than 64 UTF-8 bytes; nothing is written on error.
    """
    name = ls.layer.encode()
    if len(name) > LAYER_NAME_BYTES:
        raise ValueError(f"layer name {ls.layer!r} is longer than {LAYER_NAME_BYTES} UTF-8 bytes")
    rec = aer_records(ls)
    meta = _json_meta(ls)
    flags = (FLAG_VTH if ls.vth is not None else 0) | (0 if ls.all_neurons else FLAG_NEURONS)
    tables = AER_HEADER_SIZE
    tables += 4 * ls.n_tokens if ls.vth is not None else 0
    tables += 4 * ls.n_selected if not ls.all_neurons else 0
    data_offset = -(-(tables + len(meta)) // AER_RECORD_SIZE) * AER_RECORD_SIZE
    hdr = np.zeros(1, dtype=AER_HEADER_DTYPE)
    hdr["magic"] = AER_MAGIC
    hdr["version"] = AER_VERSION_PAYLOAD if encoders.get_scheme(ls.scheme).graded else AER_VERSION
    hdr["header_size"] = AER_HEADER_SIZE
    hdr["record_size"] = AER_RECORD_SIZE
    hdr["flags"] = flags
    hdr["n_records"] = rec.shape[0]
    hdr["data_offset"] = data_offset
    hdr["T"] = ls.T
    hdr["token_start"] = ls.token_start
    hdr["n_tokens"] = ls.n_tokens
    hdr["n_neurons"] = ls.n_neurons
    hdr["n_selected"] = ls.n_selected
    hdr["layer_id"] = ls.layer_id
    hdr["scheme"] = SCHEME_CODES[ls.scheme]
    hdr["bit_order"] = BIT_ORDER_CODES[ls.bit_order]
    hdr["k"] = np.nan if ls.k is None else ls.k
    hdr["meta_len"] = len(meta)
    hdr["layer_name"] = name
    with atomic_paths([out], overwrite) as (tmp,):
        with open(tmp, "wb") as f:
            f.write(hdr.tobytes())
            if ls.vth is not None:
                f.write(ls.vth.astype("<f4").tobytes())
            if not ls.all_neurons:
                f.write(ls.neurons.astype("<u4").tobytes())
            f.write(meta)
            f.write(b"\0" * (data_offset - tables - len(meta)))
            rec.tofile(f)
    return Path(out)


def read_aer(path: str | os.PathLike) -> AerFile:
    """Read and validate an AER binary file written by :func:`write_aer`.

    Raises ValueError naming the problem for a wrong magic, an unsupported version, an
    unexpected header or record size, a truncated file (fewer bytes than the header
    declares) or trailing bytes, and for records inconsistent with the header.
    """
    p = Path(path)
    size = p.stat().st_size
    if size < AER_HEADER_SIZE:
        raise ValueError(f"{p}: truncated AER file ({size} bytes, the header alone is {AER_HEADER_SIZE})")
    with open(p, "rb") as f:
        hdr = np.frombuffer(f.read(AER_HEADER_SIZE), dtype=AER_HEADER_DTYPE)[0]
        if bytes(hdr["magic"]) != AER_MAGIC:
            raise ValueError(f"{p}: not a neurosim AER file (magic {bytes(hdr['magic'])!r}, expected {AER_MAGIC!r})")
        version = int(hdr["version"])
        graded = int(hdr["scheme"]) in _SCHEME_BY_CODE and encoders.get_scheme(_SCHEME_BY_CODE[int(hdr["scheme"])]).graded
        if version not in (AER_VERSION, AER_VERSION_PAYLOAD):
            raise ValueError(f"{p}: AER format version {version} is not supported (this reader: "
                             f"{AER_VERSION} and {AER_VERSION_PAYLOAD})")
        if (version == AER_VERSION_PAYLOAD) != graded:
            raise ValueError(f"{p}: AER format version {version} is not supported for this file's scheme "
                             f"(version {AER_VERSION_PAYLOAD}: graded payloads; version {AER_VERSION}: unit spikes)")
        if int(hdr["header_size"]) != AER_HEADER_SIZE or int(hdr["record_size"]) != AER_RECORD_SIZE:
            raise ValueError(
                f"{p}: unexpected header/record size {int(hdr['header_size'])}/{int(hdr['record_size'])} "
                f"(version 1 uses {AER_HEADER_SIZE}/{AER_RECORD_SIZE})"
            )
        flags = int(hdr["flags"])
        n_tok, n_sel, n_rec = int(hdr["n_tokens"]), int(hdr["n_selected"]), int(hdr["n_records"])
        data_offset = int(hdr["data_offset"])
        tables = AER_HEADER_SIZE + (4 * n_tok if flags & FLAG_VTH else 0) + (4 * n_sel if flags & FLAG_NEURONS else 0)
        meta_len = int(hdr["meta_len"])
        if data_offset < tables + meta_len or data_offset % AER_RECORD_SIZE:
            raise ValueError(f"{p}: corrupt header (data_offset {data_offset} inconsistent with its tables)")
        expected = data_offset + n_rec * AER_RECORD_SIZE
        if size < expected:
            raise ValueError(
                f"{p}: truncated AER file: header declares {n_rec} records ({expected} bytes), file has {size} bytes"
            )
        if size > expected:
            raise ValueError(f"{p}: {size - expected} unexpected trailing bytes after {n_rec} records")
        vth = np.frombuffer(f.read(4 * n_tok), dtype="<f4").astype(np.float32) if flags & FLAG_VTH else None
        if flags & FLAG_NEURONS:
            neurons = np.frombuffer(f.read(4 * n_sel), dtype="<u4").astype(np.int64)
        else:
            neurons = np.arange(int(hdr["n_neurons"]), dtype=np.int64)
        extra = json.loads(f.read(meta_len).decode()) if meta_len else {}
        f.seek(data_offset)
        records = np.fromfile(f, dtype=AER_RECORD_DTYPE, count=n_rec)
    code, order = int(hdr["scheme"]), int(hdr["bit_order"])
    if code not in _SCHEME_BY_CODE or order not in _ORDER_BY_CODE:
        raise ValueError(f"{p}: unknown scheme code {code} or bit order code {order}")
    meta = dict(extra)
    meta.update(
        version=int(hdr["version"]), layer=bytes(hdr["layer_name"]).rstrip(b"\0").decode(),
        layer_id=int(hdr["layer_id"]), scheme=_SCHEME_BY_CODE[code], T=int(hdr["T"]),
        bit_order=_ORDER_BY_CODE[order], token_start=int(hdr["token_start"]), n_tokens=n_tok,
        n_neurons=int(hdr["n_neurons"]), n_selected=n_sel,
        k=None if np.isnan(hdr["k"]) else float(hdr["k"]),
        flags=flags, n_records=n_rec, data_offset=data_offset,
    )
    _check_records(p, meta, records)
    return AerFile(meta, records, vth, neurons)


def _check_records(p: Path, meta: dict[str, Any], rec: np.ndarray) -> None:
    if rec.shape[0] == 0:
        return
    t = rec["timestamp"].astype(np.int64)
    tok = rec["token"].astype(np.int64)
    step = t - tok * meta["T"]
    if (step < 0).any() or (step >= meta["T"]).any():
        raise ValueError(f"{p}: corrupt records: timestamp is not token * T + step with step in [0, T)")
    if (tok < meta["token_start"]).any() or (tok >= meta["token_start"] + meta["n_tokens"]).any():
        raise ValueError(f"{p}: corrupt records: token outside the header's token range")
    if (rec["neuron"].astype(np.int64) >= meta["n_neurons"]).any() or (rec["neuron"].astype(np.int64) < 0).any():
        raise ValueError(f"{p}: corrupt records: neuron outside [0, {meta['n_neurons']})")
    graded = encoders.get_scheme(meta["scheme"]).graded
    if not graded and not np.isin(rec["polarity"], (-1, 1)).all():
        raise ValueError(f"{p}: corrupt records: polarity must be +1 or -1")
    if graded and (rec["polarity"] == 0).any():
        raise ValueError(f"{p}: corrupt records: a graded event's payload must be non-zero")
    if (rec["layer"] != meta["layer_id"]).any():
        raise ValueError(f"{p}: corrupt records: layer id differs from the header's {meta['layer_id']}")
    if (np.diff(t) < 0).any():
        raise ValueError(f"{p}: corrupt records: timestamps are not sorted")


def write_aer_csv(ls: LayerSpikes, out: str | os.PathLike, *, overwrite: bool = False) -> Path:
    """Write the AER records of ``ls`` as CSV; return the path.

    Line 1 is ``# neurosim-aer-csv {JSON metadata}``, line 2 the column names
    ``timestamp,layer,token,neuron,polarity``, then one event per line (decimal integers).
    Rendering is vectorized (no Python loop over events).
    """
    ev = ls.events
    n = len(ev)
    buf, _ = render_lines(
        n,
        [
            IntField(ev.timestamp), b",", IntField(np.full(n, ls.layer_id, dtype=np.int64)), b",",
            IntField(ev.token), b",", IntField(ev.neuron), b",", IntField(ev.polarity.astype(np.int64)), b"\n",
        ],
    )
    head = (CSV_MAGIC + json.dumps(ls.metadata(), sort_keys=True) + "\n" + ",".join(CSV_COLUMNS) + "\n").encode()
    with atomic_paths([out], overwrite) as (tmp,):
        with open(tmp, "wb") as f:
            f.write(head)
            buf.tofile(f)
    return Path(out)


def read_aer_csv(path: str | os.PathLike) -> AerFile:
    """Read a CSV written by :func:`write_aer_csv` (vectorized parse with numpy).

    Raises ValueError for a missing or foreign first line, wrong columns, or malformed rows.
    """
    p = Path(path)
    with open(p, "rb") as f:
        first = f.readline().decode()
        second = f.readline().decode().strip()
        body = f.read()
    if not first.startswith(CSV_MAGIC):
        raise ValueError(f"{p}: not a neurosim AER CSV (first line must start with {CSV_MAGIC.strip()!r})")
    try:
        meta = json.loads(first[len(CSV_MAGIC):])
    except json.JSONDecodeError as e:
        raise ValueError(f"{p}: corrupt metadata line: {e}") from None
    if tuple(second.split(",")) != CSV_COLUMNS:
        raise ValueError(f"{p}: expected columns {','.join(CSV_COLUMNS)}, found {second!r}")
    if body and not body.endswith(b"\n"):
        raise ValueError(f"{p}: truncated CSV (last line has no newline)")
    if body.strip():
        try:
            table = np.loadtxt(io.BytesIO(body), delimiter=",", dtype=np.int64, ndmin=2)
        except ValueError as e:
            raise ValueError(f"{p}: malformed CSV row: {e}") from None
        if table.shape[1] != len(CSV_COLUMNS):
            raise ValueError(f"{p}: malformed CSV: rows have {table.shape[1]} values, expected {len(CSV_COLUMNS)}")
    else:
        table = np.empty((0, len(CSV_COLUMNS)), dtype=np.int64)
    rec = np.empty(table.shape[0], dtype=[(c, np.int64) for c in CSV_COLUMNS])
    for i, c in enumerate(CSV_COLUMNS):
        rec[c] = table[:, i]
    _check_records(p, meta, rec)
    neurons = np.asarray(meta.get("neurons", np.arange(meta["n_neurons"])), dtype=np.int64)
    return AerFile(meta, rec, None, neurons)
