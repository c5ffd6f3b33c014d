"""Exports for hardware teams: every format is read back and compared event for event."""
from __future__ import annotations

import json
import os
import struct
import sys

import numpy as np
import pytest
import torch

import encoders
from analysis.trace import LayerInfo, SpikeTrace
from neurosim.export import (
    AER_HEADER_DTYPE,
    AER_RECORD_DTYPE,
    FORMATS,
    TONIC_DTYPE,
    decode_events,
    expected_counts,
    export_layer,
    read_aer,
    read_aer_csv,
    read_nir,
    read_tonic,
    read_vcd,
    select_layer,
    sidecar_path,
    write_aer,
    write_aer_csv,
    write_layer_spikes,
    write_nir,
    write_tonic,
    write_vcd,
)
from analysis import fileio as _atomic
from neurosim.export._text import IntField, Table, TableField, render_lines
from neurosim.export.selection import mantissa_exponent
from neurosim.export.vcd import id_codes
from neurosim.weights import quantize_int8

LAYER = "model.layers.3.mlp.down_proj"
BIT_ORDERS = ("msb", "lsb")
UNSIGNED = ("binary", "bitwise")


def laplace_counts(tokens: int = 24, channels: int = 40, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Laplace activations quantized with the SpikingBrain rule (k = 3): int16 counts, V_th."""
    rng = np.random.default_rng(seed)
    x = rng.laplace(size=(tokens, channels)).astype(np.float32)
    counts, vth = encoders.spike_counts(x, k=3.0)
    return counts.astype(np.int16), vth.astype(np.float32)


def counts_for(scheme: str, counts: np.ndarray) -> np.ndarray:
    """Unsigned schemes carry magnitudes only; binary/ternary T grows with the count, keep it small."""
    c = np.abs(counts) if scheme in UNSIGNED else counts
    if scheme in ("binary", "ternary"):
        c = np.clip(c, -6, 6)
    return c.astype(np.int16)


@pytest.fixture(scope="module")
def data() -> tuple[np.ndarray, np.ndarray]:
    return laplace_counts()


def make_ls(data, scheme="bitwise-signed", bit_order="msb", **kw):
    counts, vth = data
    return select_layer(counts_for(scheme, counts), vth, layer=LAYER, layer_id=17, scheme=scheme,
                        bit_order=bit_order, k=3.0, **kw)


def assert_same_events(ls, timestamp, neuron, polarity, token=None):
    ev = ls.events
    np.testing.assert_array_equal(np.asarray(timestamp, dtype=np.int64), ev.timestamp)
    np.testing.assert_array_equal(np.asarray(neuron, dtype=np.int64), ev.neuron)
    np.testing.assert_array_equal(np.asarray(polarity, dtype=np.int64), ev.polarity.astype(np.int64))
    if token is not None:
        np.testing.assert_array_equal(np.asarray(token, dtype=np.int64), ev.token)


# ------------------------------------------------------------------ events and decoding


@pytest.mark.parametrize("bit_order", BIT_ORDERS)
@pytest.mark.parametrize("scheme", encoders.SCHEMES)
def test_events_decode_to_the_counts(data, scheme, bit_order):
    ls = make_ls(data, scheme, bit_order)
    ev = ls.events
    assert len(ev) > 0
    assert np.all(np.diff(ev.timestamp) >= 0)
    same_t = np.diff(ev.timestamp) == 0
    assert np.all(np.diff(ev.neuron)[same_t] > 0)  # sorted by time, then neuron
    np.testing.assert_array_equal(ev.timestamp, ev.token * ls.T + ev.step)
    got = decode_events(ev.token, ev.step, ev.neuron, ev.polarity, scheme=scheme, T=ls.T,
                        bit_order=bit_order, token_start=0, n_tokens=ls.n_tokens, n_neurons=ls.n_neurons)
    np.testing.assert_array_equal(got, counts_for(scheme, data[0]))
    if scheme not in encoders.BIPOLAR:
        assert np.all(ev.polarity == 1)
    else:
        assert np.any(ev.polarity == -1)
    # same number of events as non-zero slots of the dense encoder output
    dense = encoders.encode(counts_for(scheme, data[0]), scheme, ls.T, bit_order)
    assert len(ev) == int(np.count_nonzero(dense))


def test_default_T_follows_int2spike_rule_on_selected_tokens(data):
    counts = counts_for("bitwise-signed", data[0])
    ls = make_ls(data, neurons=[0, 1])
    assert ls.T == encoders.default_steps(counts, "bitwise-signed")  # all channels, not just 2
    ls5 = make_ls(data, T=ls.T + 2)
    assert ls5.T == ls.T + 2
    np.testing.assert_array_equal(read_counts_via_events(ls5), counts)


def read_counts_via_events(ls):
    ev = ls.events
    return decode_events(ev.token, ev.step, ev.neuron, ev.polarity, scheme=ls.scheme, T=ls.T,
                         bit_order=ls.bit_order, token_start=ls.token_start, n_tokens=ls.n_tokens,
                         n_neurons=ls.n_neurons)


def test_encoding_in_chunks_matches_one_pass(data, monkeypatch):
    from neurosim.export import selection

    whole = make_ls(data).events
    monkeypatch.setattr(selection, "_CHUNK_SLOTS", 7 * 40 * 5)  # a few tokens per chunk
    chunked = make_ls(data).events
    for f in ("timestamp", "token", "step", "neuron", "polarity"):
        np.testing.assert_array_equal(getattr(chunked, f), getattr(whole, f))


# ------------------------------------------------------------------ AER binary


@pytest.mark.parametrize("bit_order", BIT_ORDERS)
@pytest.mark.parametrize("scheme", encoders.SCHEMES)
def test_aer_roundtrip_every_scheme(tmp_path, data, scheme, bit_order):
    ls = make_ls(data, scheme, bit_order)
    path = write_aer(ls, tmp_path / "l.aer")
    f = read_aer(path)
    assert f.meta["scheme"] == scheme and f.meta["bit_order"] == bit_order and f.meta["T"] == ls.T
    assert f.meta["layer"] == LAYER and f.meta["layer_id"] == 17 and f.meta["k"] == 3.0
    assert_same_events(ls, f.records["timestamp"], f.records["neuron"], f.records["polarity"], f.records["token"])
    assert np.all(f.records["layer"] == 17)
    np.testing.assert_array_equal(f.counts(), counts_for(scheme, data[0]))
    np.testing.assert_array_equal(f.vth.view(np.uint32), data[1].view(np.uint32))  # bit-exact
    assert os.path.getsize(path) == f.meta["data_offset"] + 16 * f.records.shape[0]
    assert f.meta["flags"] == 1 and f.meta["n_records"] == len(ls.events)


def test_aer_byte_layout_matches_the_documentation(tmp_path, data):
    """Parse with struct from the documented offsets, independently of the numpy dtypes."""
    ls = make_ls(data)
    path = write_aer(ls, tmp_path / "l.aer")
    raw = path.read_bytes()
    magic, version, hsize, rsize, flags, n_rec, data_offset = struct.unpack_from("<8sHHHHQQ", raw, 0)
    T, tok0, n_tok, n_neu, n_sel, layer_id, scheme, order, k, meta_len = struct.unpack_from("<IIIIIHBBfI", raw, 32)
    name = raw[64:128].rstrip(b"\0").decode()
    assert (magic, version, hsize, rsize) == (b"NSIM-AER", 1, 128, 16)
    assert flags == 1  # V_th table, no neuron table
    assert (T, tok0, n_tok, n_neu, n_sel, layer_id, scheme, order) == (ls.T, 0, 24, 40, 40, 17, 3, 0)
    assert k == 3.0 and name == LAYER
    assert n_rec == len(ls.events) and data_offset % 16 == 0
    assert len(raw) == data_offset + 16 * n_rec
    vth = np.frombuffer(raw[128:128 + 4 * n_tok], dtype="<f4")
    np.testing.assert_array_equal(vth, data[1])
    meta = json.loads(raw[128 + 4 * n_tok:128 + 4 * n_tok + meta_len])
    assert meta["scheme"] == "bitwise-signed" and meta["layer"] == LAYER
    ev = ls.events
    for i in (0, n_rec // 2, n_rec - 1):
        t, tok, neu, lay, pol, res = struct.unpack_from("<IIIHbB", raw, data_offset + 16 * i)
        assert (t, tok, neu, lay, pol, res) == (ev.timestamp[i], ev.token[i], ev.neuron[i], 17, ev.polarity[i], 0)
    assert AER_HEADER_DTYPE.itemsize == 128 and AER_RECORD_DTYPE.itemsize == 16


def test_aer_subset_of_tokens_and_neurons(tmp_path, data):
    neurons = [31, 2, 17, 5]
    ls = make_ls(data, neurons=neurons, tokens=slice(5, 19))
    f = read_aer(write_aer(ls, tmp_path / "s.aer"))
    assert f.meta["token_start"] == 5 and f.meta["n_tokens"] == 14 and f.meta["n_selected"] == 4
    np.testing.assert_array_equal(f.neurons, sorted(neurons))
    assert set(np.unique(f.records["neuron"]).tolist()) <= set(neurons)
    assert f.records["token"].min() >= 5 and f.records["token"].max() < 19
    counts = counts_for("bitwise-signed", data[0])
    want = np.zeros((14, 40), dtype=np.int64)
    want[:, sorted(neurons)] = counts[5:19][:, sorted(neurons)]
    np.testing.assert_array_equal(f.counts(), want)
    np.testing.assert_array_equal(f.counts(), expected_counts(ls))
    np.testing.assert_array_equal(f.vth, data[1][5:19])


def _corrupt(path, raw):
    path.write_bytes(raw)
    return path


def test_read_aer_refuses_bad_files(tmp_path, data):
    good = write_aer(make_ls(data), tmp_path / "g.aer").read_bytes()
    with pytest.raises(ValueError, match="truncated AER file: header declares"):
        read_aer(_corrupt(tmp_path / "a.aer", good[:-1]))
    with pytest.raises(ValueError, match="truncated AER file: header declares"):
        read_aer(_corrupt(tmp_path / "b.aer", good[:-160]))
    with pytest.raises(ValueError, match="truncated AER file .* header alone"):
        read_aer(_corrupt(tmp_path / "c.aer", good[:100]))
    with pytest.raises(ValueError, match="unexpected trailing bytes"):
        read_aer(_corrupt(tmp_path / "d.aer", good + b"\0" * 16))
    with pytest.raises(ValueError, match="not a neurosim AER file"):
        read_aer(_corrupt(tmp_path / "e.aer", b"XXXXXXXX" + good[8:]))
    with pytest.raises(ValueError, match="version 2 is not supported"):
        read_aer(_corrupt(tmp_path / "f.aer", good[:8] + struct.pack("<H", 2) + good[10:]))
    with pytest.raises(ValueError, match="record size"):
        read_aer(_corrupt(tmp_path / "g2.aer", good[:12] + struct.pack("<H", 12) + good[14:]))
    off = struct.unpack_from("<Q", good, 24)[0]
    bad = bytearray(good)
    struct.pack_into("<I", bad, off, 10**6)  # timestamp no longer token * T + step
    with pytest.raises(ValueError, match="corrupt records"):
        read_aer(_corrupt(tmp_path / "h.aer", bytes(bad)))


# ------------------------------------------------------------------ CSV


@pytest.mark.parametrize("scheme", ["bitwise-signed", "bitwise-twos", "ternary"])
def test_csv_matches_aer_event_for_event(tmp_path, data, scheme):
    ls = make_ls(data, scheme, neurons=range(3, 37), tokens=(2, 20))
    path = write_aer_csv(ls, tmp_path / "l.csv")
    lines = path.read_text().splitlines()
    assert lines[0].startswith("# neurosim-aer-csv ")
    meta = json.loads(lines[0][len("# neurosim-aer-csv "):])
    assert meta["T"] == ls.T and meta["scheme"] == scheme and meta["token_start"] == 2
    assert meta["neurons"] == list(range(3, 37))
    assert lines[1] == "timestamp,layer,token,neuron,polarity"
    # independent parse with numpy
    table = np.loadtxt(path, delimiter=",", skiprows=2, dtype=np.int64, ndmin=2)
    assert table.shape == (len(ls.events), 5)
    assert_same_events(ls, table[:, 0], table[:, 3], table[:, 4], table[:, 2])
    assert np.all(table[:, 1] == 17)
    aer = read_aer(write_aer(ls, tmp_path / "l.aer"))
    for col in ("timestamp", "token", "neuron", "polarity", "layer"):
        np.testing.assert_array_equal(read_aer_csv(path).records[col], aer.records[col].astype(np.int64))
    np.testing.assert_array_equal(read_aer_csv(path).counts(), expected_counts(ls))


def test_csv_reader_refuses_truncated_or_foreign(tmp_path, data):
    path = write_aer_csv(make_ls(data), tmp_path / "l.csv")
    raw = path.read_bytes()
    with pytest.raises(ValueError, match="truncated CSV"):
        read_aer_csv(_corrupt(tmp_path / "t.csv", raw[:-3]))
    with pytest.raises(ValueError, match="not a neurosim AER CSV"):
        read_aer_csv(_corrupt(tmp_path / "f.csv", b"timestamp,layer\n1,2\n"))


def test_csv_with_no_events(tmp_path):
    ls = select_layer(np.zeros((3, 4), dtype=np.int16), np.ones(3), scheme="bitwise")
    f = read_aer_csv(write_aer_csv(ls, tmp_path / "z.csv"))
    assert f.records.shape == (0,)
    np.testing.assert_array_equal(f.counts(), np.zeros((3, 4)))
    assert read_aer(write_aer(ls, tmp_path / "z.aer")).records.shape == (0,)


# ------------------------------------------------------------------ tonic npy


@pytest.mark.parametrize("scheme", ["bitwise-signed", "ternary", "bitwise", "bitwise-twos"])
def test_tonic_npy_roundtrip(tmp_path, data, scheme):
    ls = make_ls(data, scheme)
    path = write_tonic(ls, tmp_path / "l.npy", step_us=1000)
    ev = np.load(path)  # plain numpy, no tonic needed
    assert ev.dtype == TONIC_DTYPE and ev.dtype.names == ("x", "t", "p")
    assert all(ev.dtype[n] == np.dtype("<i8") for n in ("x", "t", "p"))
    assert np.all(np.diff(ev["t"]) >= 0)
    np.testing.assert_array_equal(ev["t"], ls.events.timestamp * 1000)
    np.testing.assert_array_equal(ev["x"], ls.events.neuron)
    np.testing.assert_array_equal(ev["p"], (ls.events.polarity > 0).astype(np.int64))
    meta = json.loads(sidecar_path(path).read_text())
    if scheme in encoders.BIPOLAR:
        assert set(np.unique(ev["p"]).tolist()) == {0, 1} and meta["sensor_size"] == [40, 1, 2]
    else:
        assert np.all(ev["p"] == 1) and meta["sensor_size"] == [40, 1, 1]
    np.testing.assert_array_equal(np.asarray(meta["vth"], dtype=np.float32), data[1])
    np.testing.assert_array_equal(read_tonic(path).counts(), counts_for(scheme, data[0]))


def test_tonic_sidecar_required(tmp_path, data):
    path = write_tonic(make_ls(data), tmp_path / "l.npy")
    sidecar_path(path).unlink()
    with pytest.raises(ValueError, match="sidecar"):
        read_tonic(path)


# ------------------------------------------------------------------ NIR


def _weight(out_f=12, in_f=40, seed=1):
    return np.random.default_rng(seed).normal(size=(out_f, in_f)).astype(np.float32)


def test_nir_graph_roundtrip(tmp_path, data):
    import nir

    ls = make_ls(data)
    w = _weight()
    path = write_nir(ls, tmp_path / "l.nir", weight=w)
    g = nir.read(path)
    assert set(g.nodes) == {"input", "affine", "integrator", "output"}
    assert sorted(g.edges) == sorted([("input", "affine"), ("affine", "integrator"), ("integrator", "output")])
    assert isinstance(g.nodes["integrator"], nir.I) and isinstance(g.nodes["affine"], nir.Affine)
    T = ls.T
    steps = encoders.step_weights("bitwise-signed", T, "msb")  # MSB first: 2^(T-1) .. 1
    A = g.nodes["affine"].weight
    assert A.shape == (12, 40 * T)
    for b in range(T):  # column i * T + b = W[:, i] * 2^(T-1-b), exactly
        np.testing.assert_array_equal(A[:, b::T], w * np.float32(steps[b]))
    np.testing.assert_array_equal(g.nodes["affine"].bias, np.zeros(12, np.float32))
    np.testing.assert_array_equal(g.nodes["integrator"].r, np.ones(12))
    np.testing.assert_array_equal(g.nodes["input"].input_type["input"], [40 * T])
    np.testing.assert_array_equal(g.nodes["output"].output_type["output"], [12])
    md = g.metadata
    np.testing.assert_array_equal(md["vth"], data[1])
    np.testing.assert_array_equal(md["step_weights"], steps)
    assert md["scheme"] == "bitwise-signed" and int(md["T"]) == ls.T and md["bit_order"] == "msb"
    assert md["format"] == "neurosim-nir" and md["layer"] == LAYER and int(md["layer_id"]) == 17
    assert int(md["format_version"]) == 2


def test_nir_neuron_subset_and_weight_kinds(tmp_path, data):
    neurons = [0, 7, 39]
    ls = make_ls(data, neurons=neurons, tokens=(4, 10))
    w = _weight()
    g = read_nir(write_nir(ls, tmp_path / "a.nir", weight=torch.from_numpy(w)))
    T = ls.T
    np.testing.assert_array_equal(g.nodes["affine"].weight[:, T - 1 :: T], w[:, neurons])  # LSB lines: weight 1
    np.testing.assert_array_equal(g.metadata["neurons"], neurons)
    q = quantize_int8(torch.from_numpy(w), group_size=8)
    g = read_nir(write_nir(make_ls(data), tmp_path / "b.nir", weight=q))
    np.testing.assert_array_equal(g.nodes["affine"].weight[:, T - 1 :: T], q.dequantize().numpy())
    with pytest.raises(ValueError, match="needs the layer's weights"):  # no weight: refused, nothing written
        write_nir(make_ls(data), tmp_path / "c.nir")
    assert not (tmp_path / "c.nir").exists()


def test_nir_bad_inputs(tmp_path, data):
    with pytest.raises(ValueError, match="in_features 39 but layer"):
        write_nir(make_ls(data), tmp_path / "a.nir", weight=_weight(in_f=39))
    with pytest.raises(ValueError, match="2-D"):
        write_nir(make_ls(data), tmp_path / "a.nir", weight=np.zeros(40))
    with pytest.raises(ValueError, match="NaN or inf"):
        write_nir(make_ls(data), tmp_path / "a.nir", weight=np.full((3, 40), np.nan))
    no_vth = select_layer(data[0], None, scheme="bitwise-signed")
    with pytest.raises(ValueError, match="needs V_th"):
        write_nir(no_vth, tmp_path / "a.nir", weight=_weight())
    assert not (tmp_path / "a.nir").exists()


def test_nir_missing_package_says_pip_install(tmp_path, data, monkeypatch):
    monkeypatch.setitem(sys.modules, "nir", None)  # makes `import nir` raise ImportError
    with pytest.raises(ImportError, match="pip install nir"):
        write_nir(make_ls(data), tmp_path / "a.nir", weight=_weight())
    trace = _trace(data)
    with pytest.raises(ImportError, match="pip install nir"):
        export_layer(trace, LAYER, "nir", tmp_path / "b.nir", weight=_weight())
    assert list(tmp_path.iterdir()) == []
    # the other formats do not need nir
    export_layer(trace, LAYER, "aer", tmp_path / "c.aer")


# ------------------------------------------------------------------ VCD


@pytest.mark.parametrize(
    "scheme, bipolar",
    [("bitwise-signed", "pair"), ("bitwise-signed", "vector"), ("ternary", "pair"), ("ternary", "vector"),
     ("bitwise", "pair"), ("bitwise-twos", "pair"), ("binary", "pair")],
)
def test_vcd_roundtrip_event_for_event(tmp_path, data, scheme, bipolar):
    neurons = [0, 3, 4, 20, 39]
    ls = make_ls(data, scheme, neurons=neurons, tokens=slice(3, 15))
    path = write_vcd(ls, tmp_path / "l.vcd", bipolar=bipolar)
    v = read_vcd(path)
    assert v.timescale == "1 ns"
    assert v.meta["scheme"] == scheme and v.meta["T"] == ls.T and v.meta["token_start"] == 3
    t, n, p = v.events()
    assert_same_events(ls, t, n, p)
    np.testing.assert_array_equal(v.counts(), expected_counts(ls))
    assert v.end_time == 15 * ls.T
    if scheme in encoders.BIPOLAR and bipolar == "pair":
        assert {"n3_p", "n3_n"} <= set(v.vars) and v.vars["n3_p"][:2] == ("wire", 1)
    elif scheme in encoders.BIPOLAR:
        assert v.vars["n3"][:2] == ("wire", 2)
    else:
        assert v.vars["n3"][:2] == ("wire", 1) and "n3_p" not in v.vars
    # token and V_th signals change at each token boundary, V_th bit-exact in float32
    times, tok = v.signal("token")
    np.testing.assert_array_equal(times, np.arange(3, 15) * ls.T)
    np.testing.assert_array_equal(tok, np.arange(3, 15))
    times, vth = v.signal("vth")
    np.testing.assert_array_equal(vth.astype(np.float32), data[1][3:15])


def test_vcd_consecutive_spikes_hold_the_line(tmp_path):
    # binary count 3 with T = 4: spikes at steps 0, 1, 2 -> one rise at 0, one fall at 3
    ls = select_layer(np.array([[3, 0], [0, 1]]), np.array([1.0, 2.0]), scheme="binary", T=4)
    path = write_vcd(ls, tmp_path / "b.vcd")
    v = read_vcd(path)
    times, values = v.signal("n0")
    assert times.tolist() == [0, 3] and values.tolist() == [1, 0]
    times, values = v.signal("n1")
    assert times.tolist() == [0, 4, 5] and values.tolist() == [0, 1, 0]
    text = path.read_text()
    assert "$timescale 1 ns $end" in text and "$var wire 1 " in text and "$dumpvars" in text
    assert text.rstrip().endswith("#8")


def test_vcd_timescale_and_mode_options(tmp_path, data):
    ls = make_ls(data, neurons=[1, 2])
    path = write_vcd(ls, tmp_path / "a.vcd", timescale="10 ps")
    assert "$timescale 10 ps $end" in path.read_text()
    assert read_vcd(path).timescale == "10 ps"
    with pytest.raises(ValueError, match="timescale"):
        write_vcd(ls, tmp_path / "b.vcd", timescale="2ns")
    with pytest.raises(ValueError, match="bipolar"):
        write_vcd(ls, tmp_path / "b.vcd", bipolar="both")
    assert not (tmp_path / "b.vcd").exists()


def test_vcd_identifier_codes_are_distinct_and_printable():
    t = id_codes(94 * 94 + 5)
    codes = {t.chars[i, : t.lengths[i]].tobytes() for i in range(t.lengths.shape[0])}
    assert len(codes) == 94 * 94 + 5
    assert all(33 <= b <= 126 for c in codes for b in c)
    assert t.lengths.max() == 3 and t.lengths[93] == 1 and t.lengths[94] == 2


# ------------------------------------------------------------------ vectorized text


def test_render_lines_matches_python_formatting():
    rng = np.random.default_rng(3)
    for _ in range(50):
        n = int(rng.integers(0, 40))
        a = rng.integers(-(10 ** int(rng.integers(1, 18))), 10 ** int(rng.integers(1, 18)), n)
        b = rng.integers(-3, 3000, n)
        idx = rng.integers(0, 3, n)
        names = ["ab", "", "xyz"]
        buf, lengths = render_lines(
            n, [IntField(b), b"|", IntField(a), b",", IntField(np.abs(a) % 70000, base=2),
                TableField(Table.of(names), idx), b"\n"]
        )
        want = [f"{y}|{x},{bin(abs(x) % 70000)[2:]}{names[i]}\n" for x, y, i in zip(a.tolist(), b.tolist(), idx.tolist())]
        assert buf.tobytes().decode() == "".join(want)
        assert lengths.tolist() == [len(s) for s in want]


def test_mantissa_exponent_roundtrips_float32():
    rng = np.random.default_rng(4)
    x = np.concatenate([
        (10.0 ** rng.uniform(-5, 4, 20000)).astype(np.float32),
        np.array([1e-5, 1e4, 1.0, 0.1, 3.4e38, 1.1754944e-38], dtype=np.float32),
    ])
    m, e = mantissa_exponent(x)
    back = np.array([float(f"{mi}e{ei}") for mi, ei in zip(m.tolist(), e.tolist())], dtype=np.float32)
    np.testing.assert_array_equal(back, x)
    assert m.min() >= 10**8 and m.max() < 10**9


# ------------------------------------------------------------------ bad input


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        ({"scheme": "quaternary"}, ValueError, "unknown scheme 'quaternary'"),
        ({"bit_order": "middle"}, ValueError, "bit_order must be 'msb' or 'lsb'"),
        ({"neurons": [0, 40]}, ValueError, "neuron id 40 is out of range \\[0, 40\\)"),
        ({"neurons": [-1]}, ValueError, "neuron id -1 is out of range"),
        ({"neurons": []}, ValueError, "empty neuron selection"),
        ({"neurons": [3, 3]}, ValueError, "neuron id 3 is selected more than once"),
        ({"neurons": [1.5]}, TypeError, "neuron ids must be integers"),
        ({"neurons": slice(50, 60)}, ValueError, "empty neuron selection"),
        ({"tokens": slice(5, 5)}, ValueError, "empty token selection"),
        ({"tokens": (0, 25)}, ValueError, "outside the 24 available tokens"),
        ({"tokens": slice(0, 10, 2)}, ValueError, "contiguous"),
        ({"tokens": [1, 2]}, TypeError, "tokens must be None, a slice"),
        ({"T": 2}, ValueError, "T=2 is too small for scheme 'bitwise-signed'"),
        ({"T": 0}, ValueError, "T must be a positive integer"),
        ({"layer_id": 70000}, ValueError, "layer_id must be an integer in \\[0, 65535\\]"),
        ({"k": -1.0}, ValueError, "k must be positive"),
    ],
)
def test_select_layer_rejects_bad_input(data, kwargs, exc, match):
    counts, vth = data
    args = dict(layer=LAYER, scheme="bitwise-signed")
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        select_layer(counts, vth, **args)


def test_select_layer_rejects_bad_arrays(data):
    counts, vth = data
    with pytest.raises(ValueError, match="carries only non-negative counts, found"):
        select_layer(counts, vth, scheme="binary")
    with pytest.raises(ValueError, match="carries only non-negative counts"):
        select_layer(counts, vth, scheme="bitwise", T=8)
    with pytest.raises(ValueError, match="one value per token"):
        select_layer(counts, vth[:-1])
    bad = vth.copy()
    bad[3] = np.nan
    with pytest.raises(ValueError, match="finite and positive"):
        select_layer(counts, bad)
    with pytest.raises(ValueError, match="2-D"):
        select_layer(counts[0], vth)
    with pytest.raises(ValueError, match="must be integers"):
        select_layer(counts + 0.5, vth)
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        select_layer(counts.tolist(), vth)


# ------------------------------------------------------------------ trace-level export


def _trace(data, n_layers: int = 2) -> SpikeTrace:
    counts, vth = data
    layers = [
        (LayerInfo(LAYER, "down", counts.shape[1], 12, 17), counts, vth),
        (LayerInfo("model.layers.3.mlp.up_proj", "up", counts.shape[1], 12, 16), np.abs(counts), vth),
    ][:n_layers]
    return SpikeTrace.from_arrays(model_id="synthetic-laplace", k=3.0, tokens=np.arange(counts.shape[0]), layers=layers)


@pytest.mark.parametrize("fmt", FORMATS)
def test_export_layer_from_a_trace_file(tmp_path, data, fmt):
    trace_path = _trace(data).save(tmp_path / "trace.h5")
    out_dir = tmp_path / "out"
    out_dir.mkdir()
    kw = {"weight": _weight()} if fmt == "nir" else {}
    path = export_layer(trace_path, LAYER, fmt, out_dir, tokens=(2, 22), neurons=range(0, 40, 3), **kw)
    assert path == out_dir / f"{LAYER}.bitwise-signed.{fmt}"
    counts = data[0]
    want = np.zeros((20, 40), dtype=np.int64)
    want[:, 0:40:3] = counts[2:22, 0:40:3]
    with SpikeTrace.open(trace_path) as tr:
        assert np.array_equal(tr.counts(LAYER)[2:22, 0:40:3], counts[2:22, 0:40:3])
    if fmt == "aer":
        f = read_aer(path)
        got, meta = f.counts(), f.meta
    elif fmt == "csv":
        f = read_aer_csv(path)
        got, meta = f.counts(), f.meta
    elif fmt == "npy":
        f = read_tonic(path)
        got, meta = f.counts(), f.meta
    elif fmt == "vcd":
        f = read_vcd(path)
        got, meta = f.counts(), f.meta
    else:
        g = read_nir(path)
        T = int(g.metadata["T"])
        np.testing.assert_array_equal(g.nodes["affine"].weight[:, T - 1 :: T], _weight()[:, 0:40:3])
        np.testing.assert_array_equal(g.metadata["vth"], data[1][2:22])
        assert g.metadata["model_id"] == "synthetic-laplace" and g.metadata["role"] == "down"
        return
    np.testing.assert_array_equal(got, want)
    assert meta["layer_id"] == 17 and meta["token_start"] == 2 and meta["model_id"] == "synthetic-laplace"
    assert meta["role"] == "down" and meta["k"] == 3.0


def test_export_layer_errors_and_overwrite(tmp_path, data):
    trace = _trace(data)
    with pytest.raises(ValueError, match="no layer 'model.layers.9.x' in the trace; it has 2 layers"):
        export_layer(trace, "model.layers.9.x", "aer", tmp_path / "a.aer")
    with pytest.raises(ValueError, match="unknown export format 'hdf'"):
        export_layer(trace, LAYER, "hdf", tmp_path / "a.hdf")
    with pytest.raises(ValueError, match="weight is only used by the 'nir' format"):
        export_layer(trace, LAYER, "aer", tmp_path / "a.aer", weight=_weight())
    with pytest.raises(ValueError, match="output directory .* does not exist"):
        export_layer(trace, LAYER, "aer", tmp_path / "missing" / "a.aer")
    with pytest.raises(ValueError, match="carries only non-negative counts"):
        export_layer(trace, LAYER, "aer", tmp_path / "a.aer", scheme="binary")
    with pytest.raises(TypeError, match="SpikeTrace or a path"):
        export_layer(object(), LAYER, "aer", tmp_path / "a.aer")
    assert list(tmp_path.iterdir()) == []
    target = tmp_path / "a.aer"
    target.write_bytes(b"keep me")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        export_layer(trace, LAYER, "aer", target)
    assert target.read_bytes() == b"keep me"
    export_layer(trace, LAYER, "aer", target, overwrite=True)
    np.testing.assert_array_equal(read_aer(target).counts(), data[0])
    npy = tmp_path / "b.npy"
    sidecar_path(npy).write_text("{}")  # the sidecar alone blocks the export too
    with pytest.raises(FileExistsError):
        export_layer(trace, LAYER, "npy", npy)
    assert not npy.exists()


def test_failed_write_leaves_no_file(tmp_path, data, monkeypatch):
    ls = make_ls(data)

    def boom(path):
        raise OSError("disk full (simulated)")

    monkeypatch.setattr(_atomic, "_fsync_file", boom)
    for fmt in FORMATS:
        with pytest.raises(OSError, match="disk full"):
            write_layer_spikes(ls, fmt, tmp_path / f"x.{fmt}", **({"weight": _weight()} if fmt == "nir" else {}))
    assert list(tmp_path.iterdir()) == []  # no target, no temp file, no sidecar


# ------------------------------------------------------------------ real model


@pytest.mark.slow
def test_export_real_smollm_layer(tmp_path, smollm):
    """Capture the input of a real SmolLM2 layer, trace it, export every format, read back."""
    model, tok = smollm.model, smollm.tokenizer
    layer = model.model.layers[2].mlp.down_proj
    seen = []
    handle = layer.register_forward_hook(lambda mod, inp, out: seen.append(inp[0].detach()))
    try:
        with torch.no_grad():
            ids = tok("Spiking neurons send events, not dense tensors.", return_tensors="pt").input_ids
            model(ids)
    finally:
        handle.remove()
    x = seen[0][0]  # [tokens, 1536]
    counts, vth = encoders.spike_counts(x, k=3.0)
    name = "model.layers.2.mlp.down_proj"
    trace = SpikeTrace.from_arrays(
        model_id=smollm.model_id, k=3.0, tokens=ids[0].numpy(),
        layers=[(LayerInfo(name, "down", 1536, 576, 16), counts.numpy(), vth.numpy())],
    )
    want = counts.numpy().astype(np.int64)
    assert want.shape == (ids.shape[1], 1536) and np.abs(want).max() > 7  # real long tail
    for fmt in FORMATS:
        kw = {"weight": layer.weight} if fmt == "nir" else {}
        neurons = list(range(0, 1536, 97)) if fmt == "vcd" else None
        path = export_layer(trace, name, fmt, tmp_path, neurons=neurons, **kw)
        if fmt == "nir":
            g = read_nir(path)
            T = int(g.metadata["T"])
            np.testing.assert_array_equal(g.nodes["affine"].weight[:, T - 1 :: T], layer.weight.detach().numpy())
            np.testing.assert_array_equal(g.metadata["vth"], vth.numpy())
            continue
        reader = {"aer": read_aer, "csv": read_aer_csv, "npy": read_tonic, "vcd": read_vcd}[fmt]
        got = reader(path).counts()
        if neurons is None:
            np.testing.assert_array_equal(got, want)
        else:
            np.testing.assert_array_equal(got[:, neurons], want[:, neurons])
            assert not got[:, [1, 2, 3]].any()


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs a CUDA device")
def test_encoding_on_cuda_matches_cpu(data):
    cpu = make_ls(data).events
    gpu = select_layer(torch.from_numpy(counts_for("bitwise-signed", data[0])).cuda(), torch.from_numpy(data[1]).cuda(),
                       layer=LAYER, layer_id=17, scheme="bitwise-signed", k=3.0, device="cuda").events
    for f in ("timestamp", "token", "step", "neuron", "polarity"):
        np.testing.assert_array_equal(getattr(gpu, f), getattr(cpu, f))


def test_export_settings_object(tmp_path, data):
    """export_with(ExportSettings) writes what export_layer's keywords write; settings validated once."""
    from neurosim.export import WRITERS, ExportSettings, export_with

    counts, vth = data
    info = LayerInfo(LAYER, "down", counts.shape[1], 4, 0)
    tr = SpikeTrace.from_arrays(model_id="t", k=3.0, tokens=np.arange(counts.shape[0]), layers=[(info, counts, vth)])
    a = export_layer(tr, LAYER, "aer", tmp_path / "a.aer", T=4, tokens=(0, 5))
    b = export_with(tr, LAYER, "aer", tmp_path / "b.aer", ExportSettings(T=4, tokens=(0, 5)))
    assert a.read_bytes() == b.read_bytes()
    assert set(WRITERS) == set(FORMATS)
    with pytest.raises(ValueError, match="bit_order"):
        ExportSettings(bit_order="x")
