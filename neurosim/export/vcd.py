"""VCD (IEEE 1364 value change dump) waveforms of selected neurons' spike lines, for GTKWave.

One time unit (``timescale``, default 1 ns) per spike step; token ``i`` occupies times
``[i*T, (i+1)*T)``. A spike at global step g drives its line to 1 during ``[g, g+1)``;
consecutive spikes keep the line high (no glitch between them). Signals, in scope
``module <layer>``:

* ``token``: integer 32, the current token index;
* ``vth``: real, the current token's V_th (when known);
* per neuron ``j``: ``n<j>`` (wire 1) for unipolar schemes; for bipolar schemes either two
  wires ``n<j>_p`` / ``n<j>_n`` (``bipolar="pair"``, default) or one 2-bit two's-complement
  wire ``n<j>`` (``bipolar="vector"``: b01 = +1, b11 = -1, b00 = 0).

The text is rendered with vectorized numpy (no Python loop over events); the size is about
8-12 bytes per value change plus one ``#time`` line per step with activity.
"""
from __future__ import annotations

import datetime as _dt
import json
import os
import re
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import numpy as np

import encoders

from analysis.fileio import atomic_paths
from ._text import IntField, Table, TableField, gather_lines, render_lines
from .selection import LayerSpikes, decode_events, mantissa_exponent

VCD_FORMAT = "neurosim-vcd"
VCD_VERSION = 1
_TIMESCALE = re.compile(r"^\s*(1|10|100)\s*(s|ms|us|ns|ps|fs)\s*$")
_ID_FIRST, _ID_BASE = 33, 94  # VCD identifier codes: printable ASCII '!'..'~'


def _check_timescale(timescale: str) -> str:
    m = _TIMESCALE.match(timescale) if isinstance(timescale, str) else None
    if m is None:
        raise ValueError(f"timescale must be 1, 10 or 100 followed by s, ms, us, ns, ps or fs (e.g. '1ns'), got {timescale!r}")
    return f"{m.group(1)} {m.group(2)}"


def id_codes(n: int) -> Table:
    """``n`` distinct VCD identifier codes (base-94 over '!'..'~'), vectorized."""
    i = np.arange(n, dtype=np.int64)
    width = np.ones(n, dtype=np.int64)
    q = i // _ID_BASE
    while (q > 0).any():
        width += q > 0
        q //= _ID_BASE
    chars = np.zeros((n, int(width.max()) if n else 1), dtype=np.uint8)
    q = i.copy()
    for j in range(chars.shape[1]):
        live = width > j
        chars[live, j] = _ID_FIRST + q[live] % _ID_BASE
        q //= _ID_BASE
    return Table(chars, width)


def _safe_scope(name: str) -> str:
    s = re.sub(r"[^A-Za-z0-9_]", "_", name)
    return s if s and not s[0].isdigit() else "l_" + s


def _wire_changes(ls: LayerSpikes, mode: str) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
    """Value changes ``(time, wire, value)`` of the neuron lines, sorted by time then wire."""
    if encoders.get_scheme(ls.scheme).graded:
        raise ValueError(f"this format carries unit spikes only; export scheme {ls.scheme!r} (graded payloads) "
                         "as aer or csv")
    ev = ls.events
    pos = np.searchsorted(ls.neurons, ev.neuron)
    g = ev.timestamp
    n_wires = 2 * ls.n_selected if mode == "pair" else ls.n_selected
    if mode == "pair":
        wire = 2 * pos + (ev.polarity < 0)
        val = np.ones(len(ev), dtype=np.int64)
    else:
        wire = pos
        val = ev.polarity.astype(np.int64)
    # Events come sorted by time; a stable sort on the wire alone makes them wire-major
    # with time order kept (radix sort for 16-bit keys).
    key = wire.astype(np.uint16) if n_wires <= 2**16 else wire
    order = np.argsort(key, kind="stable")
    g, wire, val = g[order], wire[order], val[order]
    n = g.shape[0]
    same_prev = np.zeros(n, dtype=bool)
    same_next = np.zeros(n, dtype=bool)
    if n > 1:
        cont = (wire[1:] == wire[:-1]) & (g[1:] == g[:-1] + 1)
        same_prev[1:] = cont & (val[1:] == val[:-1])
        same_next[:-1] = cont
    rise = ~same_prev  # line takes this event's value at g
    fall = ~same_next  # line returns to 0 at g + 1
    t = np.concatenate([g[rise], g[fall] + 1])
    w = np.concatenate([wire[rise], wire[fall]])
    v = np.concatenate([val[rise], np.zeros(int(fall.sum()), dtype=np.int64)])
    order = np.argsort(t * n_wires + w, kind="stable")
    return t[order], w[order], v[order]


def write_vcd(
    ls: LayerSpikes,
    out: str | os.PathLike,
    *,
    timescale: str = "1ns",
    bipolar: str = "pair",
    overwrite: bool = False,
) -> Path:
    """Write the spike lines of the selected neurons as a VCD file; return the path.

    Args:
        timescale: time per step: 1, 10 or 100 of s/ms/us/ns/ps/fs (IEEE 1364), e.g. ``"1ns"``.
        bipolar: ``"pair"`` (two 1-bit wires per neuron) or ``"vector"`` (one 2-bit signed
            wire); ignored for unipolar schemes.
    """
    ts = _check_timescale(timescale)
    if bipolar not in ("pair", "vector"):
        raise ValueError(f"bipolar must be 'pair' or 'vector', got {bipolar!r}")
    mode = bipolar if ls.bipolar else "unipolar"
    n_wires = 2 * ls.n_selected if mode == "pair" else ls.n_selected
    has_vth = ls.vth is not None
    first_wire = 2 if has_vth else 1  # id 0: token, id 1: vth (if any), then the neuron wires
    ids = id_codes(first_wire + n_wires)
    t0, t_end = ls.token_start * ls.T, ls.token_stop * ls.T

    t, w, v = _wire_changes(ls, mode)
    init = np.zeros(n_wires, dtype=np.int64)
    at0 = t == t0
    init[w[at0]] = v[at0]
    t, w, v = t[~at0], w[~at0], v[~at0]

    blocks: list[tuple[np.ndarray, int, np.ndarray, np.ndarray]] = []  # (time, rank, buf, lens)
    tok_t = np.arange(ls.token_start + 1, ls.token_stop, dtype=np.int64) * ls.T
    tok_v = np.arange(ls.token_start + 1, ls.token_stop, dtype=np.int64)
    idx_tok = np.zeros(tok_t.shape[0], dtype=np.int64)
    buf, ln = render_lines(tok_t.shape[0], [b"b", IntField(tok_v, base=2), b" ", TableField(ids, idx_tok), b"\n"])
    blocks.append((tok_t, 1, buf, ln))
    if has_vth:
        m, e = mantissa_exponent(ls.vth[1:])
        buf, ln = render_lines(
            tok_t.shape[0], [b"r", IntField(m), b"e", IntField(e), b" ", TableField(ids, idx_tok + 1), b"\n"]
        )
        blocks.append((tok_t, 2, buf, ln))
    if mode == "vector":
        values = Table.of(["b11 ", "b0 ", "b1 "])  # index = value + 1
    else:
        values = Table.of(["0", "1"])
    val_idx = v + 1 if mode == "vector" else v
    buf, ln = render_lines(t.shape[0], [TableField(values, val_idx), TableField(ids, w + first_wire), b"\n"])
    blocks.append((t, 3, buf, ln))
    times = np.union1d(np.union1d(t, tok_t), np.array([t_end], dtype=np.int64))
    buf, ln = render_lines(times.shape[0], [b"#", IntField(times), b"\n"])
    blocks.append((times, 0, buf, ln))

    all_t = np.concatenate([b[0] for b in blocks])
    rank = np.concatenate([np.full(b[0].shape[0], b[1], dtype=np.int64) for b in blocks])
    all_buf = np.concatenate([b[2] for b in blocks])
    all_len = np.concatenate([b[3] for b in blocks])
    # Each block is sorted by time: a stable sort of the concatenation is a cheap merge, and
    # keeps wire changes in wire order within a time.
    order = np.argsort(all_t * 4 + rank, kind="stable")
    body = gather_lines(all_buf, all_len, order)

    head = _header(ls, ts, mode, ids, first_wire, has_vth, init)
    with atomic_paths([out], overwrite) as (tmp,):
        with open(tmp, "wb") as f:
            f.write(head)
            body.tofile(f)
    return Path(out)


def _header(
    ls: LayerSpikes, ts: str, mode: str, ids: Table, first_wire: int, has_vth: bool, init: np.ndarray
) -> bytes:
    from neurosim import __version__

    meta = ls.metadata()
    meta.update(format=VCD_FORMAT, version=VCD_VERSION, bipolar=mode, timescale=ts)
    comment = json.dumps(meta, sort_keys=True, separators=(",", ":")).replace("$", "\\u0024")
    idstr = [ids.chars[i, : ids.lengths[i]].tobytes() for i in range(first_wire)]  # token, vth
    lines = [
        f"$date {_dt.datetime.now(_dt.timezone.utc).strftime('%Y-%m-%d %H:%M:%S UTC')} $end",
        f"$version neurosim {__version__} ({VCD_FORMAT} v{VCD_VERSION}) $end",
        f"$comment {comment} $end",
        f"$timescale {ts} $end",
        f"$scope module {_safe_scope(ls.layer)} $end",
        f"$var integer 32 {idstr[0].decode()} token $end",
    ]
    if has_vth:
        lines.append(f"$var real 64 {idstr[1].decode()} vth $end")
    head = ("\n".join(lines) + "\n").encode()
    n_sel = ls.n_selected
    if mode == "pair":
        neuron = np.repeat(ls.neurons, 2)
        suffix = Table.of(["_p", "_n"]), np.tile(np.array([0, 1], dtype=np.int64), n_sel)
        size = b"1"
    else:
        neuron = ls.neurons
        suffix = Table.of([""]), np.zeros(n_sel, dtype=np.int64)
        size = b"2" if mode == "vector" else b"1"
    n_w = neuron.shape[0]
    wid = np.arange(n_w, dtype=np.int64) + first_wire
    decl, _ = render_lines(
        n_w,
        [b"$var wire ", size, b" ", TableField(ids, wid), b" n", IntField(neuron),
         TableField(suffix[0], suffix[1]), b" $end\n"],
    )
    t0 = ls.token_start * ls.T
    start = [f"$upscope $end\n$enddefinitions $end\n#{t0}\n$dumpvars\n".encode()]
    start.append(f"b{ls.token_start:b} ".encode() + idstr[0] + b"\n")
    if has_vth:
        m, e = mantissa_exponent(ls.vth[:1])
        start.append(f"r{int(m[0])}e{int(e[0])} ".encode() + idstr[1] + b"\n")
    if mode == "vector":
        values = Table.of(["b11 ", "b0 ", "b1 "])
        vi = init + 1
    else:
        values = Table.of(["0", "1"])
        vi = init
    dump, _ = render_lines(n_w, [TableField(values, vi), TableField(ids, wid), b"\n"])
    return head + decl.tobytes() + b"".join(start) + dump.tobytes() + b"$end\n"


@dataclass(frozen=True)
class VcdFile:
    """A VCD file parsed by :func:`read_vcd`.

    Attributes:
        timescale: e.g. ``"1 ns"``.
        meta: the neurosim JSON comment (scheme, T, bit order, layer, token range, ...).
        vars: ``{name: (type, size, id)}`` of the declared variables.
        changes: ``{id: (times int64, values)}``; values are int64 for wires and integers,
            float64 for reals. Changes inside ``$dumpvars`` are at the dump time.
        end_time: the last ``#time`` in the file.
    """

    timescale: str
    meta: dict[str, Any]
    vars: dict[str, tuple[str, int, str]]
    changes: dict[str, tuple[np.ndarray, np.ndarray]]
    end_time: int

    def signal(self, name: str) -> tuple[np.ndarray, np.ndarray]:
        """``(times, values)`` of the value changes of variable ``name``."""
        return self.changes.get(self.vars[name][2], (np.empty(0, np.int64), np.empty(0, np.int64)))

    def events(self) -> tuple[np.ndarray, np.ndarray, np.ndarray]:
        """Spike events ``(timestamp, neuron, polarity)`` of the neuron lines, sorted by time, neuron."""
        ts, nr, pl = [], [], []
        for name, (_, _, _) in self.vars.items():  # loop over signals, not events
            m = re.fullmatch(r"n(\d+)(_p|_n)?", name)
            if m is None:
                continue
            times, values = self.signal(name)
            nxt = np.append(times[1:], self.end_time)
            live = values != 0
            width = (nxt - times)[live]
            ts.append(np.repeat(times[live], width) + _ramp(width))
            nr.append(np.full(int(width.sum()), int(m.group(1)), dtype=np.int64))
            sign = -1 if m.group(2) == "_n" else 1
            pol = values[live] if self.vars[name][1] == 2 else np.ones(int(live.sum()), np.int64)
            pl.append(np.repeat(pol * sign, width))
        if not ts:
            return np.empty(0, np.int64), np.empty(0, np.int64), np.empty(0, np.int64)
        t, n, p = np.concatenate(ts), np.concatenate(nr), np.concatenate(pl)
        order = np.lexsort((n, t))
        return t[order], n[order], p[order]

    def counts(self) -> np.ndarray:
        """Decode the neuron lines to int64 counts [n_tokens, n_neurons] (rows from token_start)."""
        m = self.meta
        t, n, p = self.events()
        tok = t // m["T"]
        return decode_events(
            tok, t - tok * m["T"], n, p, scheme=m["scheme"], T=m["T"], bit_order=m["bit_order"],
            token_start=m["token_start"], n_tokens=m["n_tokens"], n_neurons=m["n_neurons"],
        )


def _ramp(width: np.ndarray) -> np.ndarray:
    """Concatenated ``arange(w)`` for each w in ``width`` (vectorized)."""
    total = int(width.sum())
    if total == 0:
        return np.empty(0, dtype=np.int64)
    starts = np.cumsum(width) - width
    return np.arange(total, dtype=np.int64) - np.repeat(starts, width)


def read_vcd(path: str | os.PathLike) -> VcdFile:
    """Parse a VCD file (the subset :func:`write_vcd` produces: scalar, vector, real changes).

    A minimal reference reader for verification: the body is parsed token by token in
    Python (about 1-2 million changes per second). Raises ValueError on malformed input.
    """
    text = Path(path).read_text()
    marker = "$enddefinitions"
    cut = text.find(marker)
    if cut < 0:
        raise ValueError(f"{path}: not a VCD file ($enddefinitions missing)")
    head = text[:cut]
    body = text[text.index("$end", cut + len(marker)) + 4:]
    ts_m = re.search(r"\$timescale\s+(.*?)\s*\$end", head, re.S)
    timescale = " ".join(ts_m.group(1).split()) if ts_m else ""
    meta: dict[str, Any] = {}
    for c in re.finditer(r"\$comment\s+(.*?)\s*\$end", head, re.S):
        try:
            cand = json.loads(c.group(1))
        except json.JSONDecodeError:
            continue
        if isinstance(cand, dict) and cand.get("format") == VCD_FORMAT:
            meta = cand
    variables: dict[str, tuple[str, int, str]] = {}
    for v in re.finditer(r"\$var\s+(\S+)\s+(\d+)\s+(\S+)\s+(\S+)(?:\s+\[[^\]]*\])?\s+\$end", head):
        variables[v.group(4)] = (v.group(1), int(v.group(2)), v.group(3))
    kinds = {code: (typ, size) for typ, size, code in variables.values()}
    raw: dict[str, tuple[list[int], list[Any]]] = {code: ([], []) for code in kinds}
    tokens = body.split()
    now, i, n = 0, 0, len(tokens)
    end_time = 0
    while i < n:
        tok = tokens[i]
        c = tok[0]
        if c == "#":
            now = int(tok[1:])
            end_time = max(end_time, now)
        elif c == "$":
            pass  # $dumpvars / $end / $dumpon ...: values inside are dumps at the current time
        elif c in "01xzXZ":
            code = tok[1:]
            if code not in raw:
                raise ValueError(f"{path}: value change for undeclared id {code!r}")
            raw[code][0].append(now)
            raw[code][1].append(int(c) if c in "01" else 0)
        elif c in "bBrR":
            if i + 1 >= n:
                raise ValueError(f"{path}: truncated value change {tok!r}")
            code = tokens[i + 1]
            i += 1
            if code not in raw:
                raise ValueError(f"{path}: value change for undeclared id {code!r}")
            if c in "rR":
                val: Any = float(tok[1:])
            else:
                bits = tok[1:]
                val = int(bits, 2)
                size = kinds[code][1]
                if kinds[code][0] == "wire" and size > 1 and bits[0] == "1" and len(bits) == size:
                    val -= 1 << size  # two's-complement signed wire (spike lines)
            raw[code][0].append(now)
            raw[code][1].append(val)
        else:
            raise ValueError(f"{path}: cannot parse {tok!r}")
        i += 1
    changes = {
        code: (np.array(tv[0], dtype=np.int64), np.array(tv[1], dtype=np.float64 if kinds[code][0] == "real" else np.int64))
        for code, tv in raw.items()
    }
    return VcdFile(timescale, meta, variables, changes, end_time)
