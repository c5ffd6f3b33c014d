"""analysis.trace: HDF5 schema, exact roundtrip, atomic writes, corrupt-file handling, bad input."""
from __future__ import annotations

import os
import signal
import subprocess
import sys
import textwrap
from pathlib import Path

import h5py
import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.trace import (
    FORMAT_NAME,
    SCHEMA_VERSION,
    LayerInfo,
    SpikeTrace,
    TraceError,
    TraceWriter,
    edit_trace,
    layer_key,
    unescape_key,
)

N = 300  # tokens of the synthetic traces (more than one 256-row chunk)


def _layers(rng: np.random.Generator, n: int = N) -> list[tuple[LayerInfo, np.ndarray, np.ndarray]]:
    q = LayerInfo("model.layers.0.self_attn.q_proj", "q", 48, 48, 0)
    k = LayerInfo("model.layers.0.self_attn.k_proj", "k", 48, 16, 1, same_input_as=q.name)
    odd = LayerInfo("weird/name%with.dots", "other", 33, 7, 2)
    dots = LayerInfo("..", "down", 20, 48, 3)
    cq = rng.integers(-40, 41, size=(n, 48))
    cq[0, :2] = [-32768, 32767]  # the int16 extremes survive
    vq = rng.random(n).astype(np.float32) + 1e-3
    return [
        (q, cq, vq),
        (k, cq, vq),
        (odd, rng.integers(-3, 4, size=(n, 33)).astype(np.int32), rng.random(n) + 0.5),
        (dots, rng.integers(-1000, 1000, size=(n, 20)), np.full(n, 1e-5)),
    ]


def _trace(rng: np.random.Generator, n: int = N) -> SpikeTrace:
    offsets = np.stack([np.arange(n) * 3, np.arange(n) * 3 + 2], axis=1)
    return SpikeTrace.from_arrays(
        model_id="synthetic-model",
        k=2.5,
        tokens=rng.integers(0, 49152, size=n),
        layers=_layers(rng, n),
        offsets=offsets,
        prompt_starts=[0, 100],
        prompt_text=["first prompt", "second prompt ü"],
        attrs={"note": "hello", "seed": 7, "ratio": 0.25, "vec": np.arange(3)},
    )


@pytest.fixture
def rng() -> np.random.Generator:
    return np.random.default_rng(1234)


def _assert_same(a: SpikeTrace, b: SpikeTrace) -> None:
    assert b.model_id == a.model_id and b.k == a.k and b.vth_clamp == a.vth_clamp
    assert b.n_tokens == a.n_tokens
    np.testing.assert_array_equal(b.tokens, a.tokens)
    assert b.layers == a.layers
    for (ia, ca, va), (ib, cb, vb) in zip(a.iter_layers(), b.iter_layers()):
        assert ib == ia and ib.same_input_as == ia.same_input_as
        assert cb.dtype == np.int16 and vb.dtype == np.float32
        np.testing.assert_array_equal(cb, ca)
        np.testing.assert_array_equal(vb, va)  # bit-exact floats


def test_roundtrip_exact(tmp_path, rng):
    mem = _trace(rng)
    path = mem.save(tmp_path / "t.h5")
    with SpikeTrace.open(path) as tr:
        _assert_same(mem, tr)
        np.testing.assert_array_equal(tr.offsets, mem.offsets)
        np.testing.assert_array_equal(tr.prompt_starts, [0, 100])
        assert tr.prompt_text == ["first prompt", "second prompt ü"]
        assert tr.attrs["note"] == "hello" and tr.attrs["seed"] == 7 and tr.attrs["ratio"] == 0.25
        np.testing.assert_array_equal(tr.attrs["vec"], [0, 1, 2])
        assert tr.attrs["schema_version"] == SCHEMA_VERSION and tr.attrs["format"] == FORMAT_NAME
        assert tr.layer("weird/name%with.dots") == LayerInfo("weird/name%with.dots", "other", 33, 7, 2)
        assert tr.counts("model.layers.0.self_attn.q_proj")[0, :2].tolist() == [-32768, 32767]
    # Saving the file-backed trace again gives the same content.
    again = SpikeTrace.open(path).save(tmp_path / "again.h5")
    with SpikeTrace.open(again) as tr2:
        _assert_same(mem, tr2)


def test_file_layout_follows_schema(tmp_path, rng):
    path = _trace(rng).save(tmp_path / "t.h5")
    with h5py.File(path, "r") as f:  # plain h5py: no neurosim objects needed
        for key in ("format", "schema_version", "package_version", "model_id", "k", "vth_clamp", "encoder", "created"):
            assert key in f.attrs, key
        assert f["tokens"].dtype == np.int64 and f["tokens"].shape == (N,)
        g = f["layers"]["weird%2Fname%25with.dots"]
        assert g.attrs["name"] == "weird/name%with.dots" and g.attrs["role"] == "other"
        c = g["counts"]
        assert c.dtype == np.int16 and c.shape == (N, 33)
        assert c.compression == "gzip" and c.chunks[1] == 33 and c.chunks[0] <= 256
        assert c.maxshape == (None, 33)
        assert g["vth"].dtype == np.float32
        # q and k share one stored dataset (hard links), k names its source.
        q, k = f["layers"]["model.layers.0.self_attn.q_proj"], f["layers"]["model.layers.0.self_attn.k_proj"]
        assert h5py.h5o.get_info(q["counts"].id).addr == h5py.h5o.get_info(k["counts"].id).addr
        assert k.attrs["same_input_as"] == "model.layers.0.self_attn.q_proj"
        assert "%2E%2E" in f["layers"]


def test_uncompressed_roundtrip(tmp_path, rng):
    mem = _trace(rng)
    path = mem.save(tmp_path / "raw.h5", compression=None)
    with SpikeTrace.open(path) as tr:
        _assert_same(mem, tr)
        with h5py.File(path, "r") as f:
            assert f["layers"]["..".replace(".", "%2E")]["counts"].compression is None


def test_stdlib_zlib_fallback_roundtrip(tmp_path, rng, monkeypatch):
    import analysis.trace_chunks as trace_mod  # the deflate implementations of the writer

    monkeypatch.setattr(trace_mod, "_isal", None)  # as on a machine without the optional isal
    monkeypatch.setattr(trace_mod, "_HUFFMAN", False)  # nor numba (no Huffman-only deflate)
    mem = _trace(rng)
    with SpikeTrace.open(mem.save(tmp_path / "zlib.h5")) as tr:
        _assert_same(mem, tr)


@pytest.mark.parametrize(("expected", "workers"), [(None, 2), (100, 0), (403, 1), (2000, 0)])  # hint vs 403 rows
def test_streamed_appends_across_chunk_boundaries(tmp_path, rng, expected, workers):
    # Irregular append sizes with a small chunk exercise partial chunks and the edge chunk.
    sizes = [1, 63, 64, 65, 7, 200, 3]
    n = sum(sizes)
    c = rng.integers(-300, 300, size=(n, 40)).astype(np.int16)
    v = (rng.random(n) + 0.1).astype(np.float32)
    path = tmp_path / "s.h5"
    with TraceWriter(path, model_id="m", k=3.0, chunk_rows=64, workers=workers, expected_tokens=expected) as w:
        w.add_layer(LayerInfo("a", "up", 40, 80, 0))
        pos = 0
        for s in sizes:
            w.append("a", c[pos : pos + s], v[pos : pos + s])
            w.append_tokens(np.arange(pos, pos + s))
            pos += s
    with SpikeTrace.open(path) as tr:
        np.testing.assert_array_equal(tr.counts("a"), c)
        np.testing.assert_array_equal(tr.vth("a"), v)
        np.testing.assert_array_equal(tr.tokens, np.arange(n))
        np.testing.assert_array_equal(tr.counts("a", slice(60, 131)), c[60:131])  # lazy row read
        np.testing.assert_array_equal(tr.vth("a", slice(300, None)), v[300:])
        assert tr.offsets is None and tr.prompt_starts.tolist() == [0]
    with h5py.File(path, "r") as f:
        assert f["layers/a/counts"].shape == (n, 40) and f["layers/a/vth"].shape == (n,)


@pytest.mark.parametrize("compression", ["gzip", None])
def test_vth_chunks_across_flushes(tmp_path, rng, compression):
    # V_th is written in whole chunks by direct chunk writes once 16,384 rows are buffered, the
    # rest (a zero-padded edge chunk) at close: values, filters and shape as HDF5's own write.
    from analysis.trace_schema import _VTH_FLUSH_ROWS

    n = 2 * _VTH_FLUSH_ROWS + 1500
    v = (rng.random(n) * 5 + 1e-3).astype(np.float32)
    c = rng.integers(-3, 4, size=(n, 4)).astype(np.int16)
    path = tmp_path / "v.h5"
    with TraceWriter(path, model_id="m", k=3.0, compression=compression, expected_tokens=n // 2) as w:
        w.add_layer(LayerInfo("a", "up", 4, 8, 0))
        for s in range(0, n, 3001):
            w.append("a", c[s : s + 3001], v[s : s + 3001])
        w.append_tokens(np.arange(n))
    with h5py.File(path, "r") as f:
        d = f["layers/a/vth"]
        assert d.shape == (n,) and d.fletcher32 and d.compression == compression and d.chunks == (1024,)
        assert d.compression_opts == (4 if compression else None)
        np.testing.assert_array_equal(d[()], v)


def test_iter_layers_streams_shared_inputs_once(tmp_path, rng):
    path = _trace(rng).save(tmp_path / "t.h5")
    with SpikeTrace.open(path) as tr:
        items = list(tr.iter_layers())
        assert [i.name for i, _, _ in items] == tr.layers
        assert items[0][1] is items[1][1]  # q and k: one read
        assert not items[0][1].flags.writeable
        assert tr.source_of("model.layers.0.self_attn.k_proj") == "model.layers.0.self_attn.q_proj"


def test_overwrite_refused_then_allowed(tmp_path, rng):
    path = _trace(rng).save(tmp_path / "t.h5")
    before = path.read_bytes()
    with pytest.raises(FileExistsError, match="t.h5.*overwrite=True"):
        _trace(np.random.default_rng(9)).save(path)
    with pytest.raises(FileExistsError):
        TraceWriter(path, model_id="m", k=3)
    assert path.read_bytes() == before
    other = _trace(np.random.default_rng(9))
    other.save(path, overwrite=True)
    with SpikeTrace.open(path) as tr:
        _assert_same(other, tr)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.h5"]  # no temp files left


def test_exception_keeps_previous_file(tmp_path, rng):
    good = _trace(rng)
    path = good.save(tmp_path / "t.h5")
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="boom"):
        with TraceWriter(path, model_id="m", k=3.0, overwrite=True) as w:
            w.add_layer(LayerInfo("a", "q", 8, 8, 0))
            w.append("a", np.ones((5, 8), np.int16), np.ones(5))
            w.append_tokens(np.arange(5))
            raise RuntimeError("boom")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.h5"]
    with SpikeTrace.open(path) as tr:
        _assert_same(good, tr)


def test_inconsistent_rows_never_commit(tmp_path):
    path = tmp_path / "bad.h5"
    with pytest.raises(ValueError, match="'b' has 3 token rows but 5 tokens"):
        with TraceWriter(path, model_id="m", k=3.0) as w:
            w.add_layer(LayerInfo("a", "q", 4, 4, 0))
            w.add_layer(LayerInfo("b", "k", 4, 4, 1))
            w.append("a", np.zeros((5, 4), np.int16), np.ones(5))
            w.append("b", np.zeros((3, 4), np.int16), np.ones(3))
            w.append_tokens(np.arange(5))
    assert not path.exists() and list(tmp_path.iterdir()) == []


_KILL_SCRIPT = textwrap.dedent(
    """
    import sys, numpy as np
    from analysis.trace import LayerInfo, TraceWriter
    rng = np.random.default_rng(0)
    w = TraceWriter(sys.argv[1], model_id="victim", k=3.0, overwrite=True, chunk_rows=64)
    w.add_layer(LayerInfo("a", "q", 512, 512, 0))
    for i in range(40):  # 40 chunks written and flushed to the temporary file
        w.append("a", rng.integers(-9, 9, size=(64, 512)), np.ones(64))
        w.append_tokens(np.arange(64))
    w._drain(block=True)
    w._f.flush()
    print("WRITING", flush=True)
    sys.stdin.read()  # parked mid-write until killed
    w.close()
    """
)


@pytest.mark.parametrize("old_file", [False, True])
def test_kill_during_write_is_atomic(tmp_path, rng, old_file):
    path = tmp_path / "victim.h5"
    if old_file:
        good = _trace(rng)
        good.save(path)
        before = path.read_bytes()
    env = {**os.environ, "PYTHONPATH": str(Path(__file__).resolve().parents[1])}
    proc = subprocess.Popen(
        [sys.executable, "-c", _KILL_SCRIPT, str(path)], stdin=subprocess.PIPE, stdout=subprocess.PIPE, env=env
    )
    try:
        line = proc.stdout.readline()
        assert line.strip() == b"WRITING", line
        temps = [p for p in tmp_path.iterdir() if p.name.startswith(".victim.h5.") and p.suffix == ".tmp"]
        assert len(temps) == 1 and temps[0].stat().st_size > 100_000  # really killed mid-write
        os.kill(proc.pid, signal.SIGKILL)
        assert proc.wait(timeout=30) == -signal.SIGKILL
    finally:
        if proc.poll() is None:
            proc.kill()
            proc.wait()
    if old_file:
        assert path.read_bytes() == before
        with SpikeTrace.open(path) as tr:
            _assert_same(good, tr)
    else:
        assert not path.exists()


def _write_small(path: Path) -> Path:
    return SpikeTrace.from_arrays(
        model_id="m", k=3, tokens=np.arange(600),
        layers=[(LayerInfo("a", "q", 64, 64, 0), np.random.default_rng(0).integers(-7, 8, (600, 64)), np.ones(600))],
    ).save(path)


def test_random_bytes_and_empty_files(tmp_path):
    junk = tmp_path / "junk.h5"
    junk.write_bytes(np.random.default_rng(0).bytes(4096))
    with pytest.raises(TraceError, match="junk.h5.*not a readable HDF5"):
        SpikeTrace.open(junk)
    empty = tmp_path / "empty.h5"
    empty.write_bytes(b"")
    with pytest.raises(TraceError, match="empty.h5"):
        SpikeTrace.open(empty)
    with pytest.raises(FileNotFoundError, match="missing.h5"):
        SpikeTrace.open(tmp_path / "missing.h5")


def test_truncated_file(tmp_path):
    path = _write_small(tmp_path / "t.h5")
    data = path.read_bytes()
    cut = tmp_path / "cut.h5"
    cut.write_bytes(data[: len(data) // 2])
    with pytest.raises(TraceError, match="cut.h5.*(corrupt|truncated)"):
        SpikeTrace.open(cut)


def test_corrupt_chunk_is_reported_on_read(tmp_path):
    path = _write_small(tmp_path / "t.h5")
    with h5py.File(path, "r") as f:
        info = f["layers"]["a"]["counts"].id.get_chunk_info(0)
    raw = bytearray(path.read_bytes())
    mid = info.byte_offset + info.size // 2
    raw[mid : mid + 16] = bytes(16)  # zero 16 bytes inside the compressed chunk
    path.write_bytes(bytes(raw))
    with SpikeTrace.open(path) as tr:  # metadata is intact
        with pytest.raises(TraceError, match="t.h5.*counts of layer 'a'"):
            tr.counts("a")


def test_foreign_hdf5_file(tmp_path):
    path = tmp_path / "foreign.h5"
    with h5py.File(path, "w") as f:
        f["data"] = np.arange(10)
    with pytest.raises(TraceError, match="foreign.h5.*not a neurosim spike trace"):
        SpikeTrace.open(path)


def test_newer_and_unknown_schema_refused(tmp_path):
    path = _write_small(tmp_path / "t.h5")
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = SCHEMA_VERSION + 1
    with pytest.raises(TraceError, match=f"t.h5.*schema version {SCHEMA_VERSION + 1} is newer"):
        SpikeTrace.open(path)
    with h5py.File(path, "r+") as f:
        f.attrs["schema_version"] = 0
    with pytest.raises(TraceError, match="unknown trace schema version 0"):
        SpikeTrace.open(path)


def test_incomplete_or_inconsistent_layout(tmp_path):
    path = _write_small(tmp_path / "t.h5")
    with h5py.File(path, "r+") as f:
        f["layers"]["a"].attrs["in_features"] = 65
    with SpikeTrace.open(path) as tr:  # opening reads only /layer_index; the group is checked on first use
        with pytest.raises(TraceError, match="layer 'a': counts are int16 \\[600, 64\\], expected int16 \\[600, 65\\]"):
            tr.counts("a")
    with h5py.File(path, "r+") as f:
        del f["layer_index"]  # without the table every group is checked at open
    with pytest.raises(TraceError, match="layer 'a': counts are int16 \\[600, 64\\], expected int16 \\[600, 65\\]"):
        SpikeTrace.open(path)
    path2 = _write_small(tmp_path / "t2.h5")
    with h5py.File(path2, "r+") as f:
        del f["tokens"]
    with pytest.raises(TraceError, match="/tokens is missing"):
        SpikeTrace.open(path2)


def test_layer_index_table(tmp_path, rng):
    mem = _trace(rng)
    path = mem.save(tmp_path / "t.h5")
    with h5py.File(path, "r") as f:
        table = f["layer_index"][()]
        assert [n.decode() if isinstance(n, bytes) else n for n in table["name"]] == mem.layers
        assert table["in_features"].tolist() == [48, 48, 33, 20]
    # A file without the table (e.g. written by another tool) opens by scanning the groups.
    with h5py.File(path, "r+") as f:
        del f["layer_index"]
    with SpikeTrace.open(path) as tr:
        _assert_same(mem, tr)
    # A table that disagrees with the groups is refused.
    path2 = mem.save(tmp_path / "t2.h5")
    with h5py.File(path2, "r+") as f:
        t = f["layer_index"][()]
        del f["layer_index"]
        f["layer_index"] = t[:3]
    with pytest.raises(TraceError, match="t2.h5: /layer_index lists 3 layers but /layers holds 4"):
        SpikeTrace.open(path2)
    path3 = mem.save(tmp_path / "t3.h5")
    with h5py.File(path3, "r+") as f:
        f["layers"]["weird%2Fname%25with.dots"].attrs["role"] = "up"
    with SpikeTrace.open(path3) as tr:
        tr.counts("..")  # other layers still read
        with pytest.raises(TraceError, match="group attributes .* disagree with /layer_index"):
            tr.counts("weird/name%with.dots")


def test_int16_overflow_is_a_clear_error(tmp_path):
    with TraceWriter(tmp_path / "o.h5", model_id="m", k=3.0) as w:
        w.add_layer(LayerInfo("a", "q", 4, 4, 0))
        with pytest.raises(ValueError, match="layer 'a': spike count 40000 does not fit int16"):
            w.append("a", np.array([[0, 1, 40000, 2]]), np.ones(1))
        with pytest.raises(ValueError, match="spike count -32769"):
            w.append("a", np.array([[0, -32769, 0, 2]]), np.ones(1))
    with pytest.raises(ValueError, match="does not fit int16"):
        SpikeTrace.from_arrays(model_id="m", k=3, tokens=[1], layers=[(LayerInfo("a", "q", 2, 2, 0), [[1, 99999]], [1.0])])


def test_writer_rejects_bad_input(tmp_path):
    with pytest.raises(FileNotFoundError, match="does not exist"):
        TraceWriter(tmp_path / "nodir" / "x.h5", model_id="m", k=3)
    with pytest.raises(ValueError, match="k must be positive"):
        TraceWriter(tmp_path / "x.h5", model_id="m", k=0)
    with pytest.raises(ValueError, match="reserved root attributes: k"):
        TraceWriter(tmp_path / "x.h5", model_id="m", k=3, attrs={"k": 1})
    with pytest.raises(ValueError, match="compression"):
        TraceWriter(tmp_path / "x.h5", model_id="m", k=3, compression="zstd")
    with pytest.raises(ValueError, match="workers must be None or an int >= 0"):
        TraceWriter(tmp_path / "x.h5", model_id="m", k=3, workers=-1)
    with pytest.raises(ValueError, match="expected_tokens must be None or an int >= 0"):
        TraceWriter(tmp_path / "x.h5", model_id="m", k=3, expected_tokens=-5)
    with pytest.raises(ValueError, match="vth_clamp"):
        TraceWriter(tmp_path / "x.h5", model_id="m", k=3, vth_clamp=(1.0, 0.5))
    w = TraceWriter(tmp_path / "x.h5", model_id="m", k=3)
    try:
        w.add_layer(LayerInfo("a", "q", 4, 4, 0))
        with pytest.raises(ValueError, match="already added"):
            w.add_layer(LayerInfo("a", "q", 4, 4, 1))
        with pytest.raises(ValueError, match="index 0 is already used"):
            w.add_layer(LayerInfo("b", "q", 4, 4, 0))
        with pytest.raises(ValueError, match="unknown role 'attn'"):
            w.add_layer(LayerInfo("c", "attn", 4, 4, 2))
        with pytest.raises(ValueError, match="same_input_as='zzz' is not an added layer"):
            w.add_layer(LayerInfo("d", "k", 4, 4, 3), same_input_as="zzz")
        with pytest.raises(ValueError, match="in_features 5 but 'a' has 4"):
            w.add_layer(LayerInfo("e", "k", 5, 4, 4), same_input_as="a")
        w.add_layer(LayerInfo("f", "k", 4, 4, 5), same_input_as="a")
        with pytest.raises(ValueError, match="shares its input with 'a'"):
            w.append("f", np.zeros((1, 4), np.int16), np.ones(1))
        with pytest.raises(ValueError, match="unknown layer 'nope'"):
            w.append("nope", np.zeros((1, 4), np.int16), np.ones(1))
        with pytest.raises(TypeError, match="integer dtype"):
            w.append("a", np.zeros((1, 4), np.float32), np.ones(1))
        with pytest.raises(ValueError, match=r"shape \[tokens, 4\]"):
            w.append("a", np.zeros((1, 5), np.int16), np.ones(1))
        with pytest.raises(ValueError, match="finite and positive"):
            w.append("a", np.zeros((2, 4), np.int16), np.array([1.0, 0.0]))
        with pytest.raises(ValueError, match="finite and positive"):
            w.append("a", np.zeros((1, 4), np.int16), np.array([np.nan]))
        with pytest.raises(ValueError, match=r"vth must have shape \[2\]"):
            w.append("a", np.zeros((2, 4), np.int16), np.ones(3))
        with pytest.raises(ValueError, match="non-negative"):
            w.append_tokens(np.array([3, -1]))
        with pytest.raises(ValueError, match=r"offsets must have shape \[2, 2\]"):
            w.append_tokens(np.array([3, 1]), offsets=np.zeros((2, 3), np.int64))
    finally:
        w.abort()
    assert list(tmp_path.iterdir()) == []


def test_reader_rejects_bad_queries(tmp_path, rng):
    tr = _trace(rng)
    with pytest.raises(KeyError, match="no layer 'nope'"):
        tr.counts("nope")
    with pytest.raises(TypeError, match="rows must be a slice"):
        tr.counts("..", rows=3)
    with pytest.raises(TypeError, match="path must be a str"):
        SpikeTrace.open(42)
    path = tr.save(tmp_path / "t.h5")
    opened = SpikeTrace.open(path)
    opened.close()
    with pytest.raises(ValueError, match="closed"):
        opened.counts("..")


def test_from_arrays_validation(rng):
    info = LayerInfo("a", "q", 3, 3, 0)
    with pytest.raises(ValueError, match="has 2 token rows but there are 3 tokens"):
        SpikeTrace.from_arrays(model_id="m", k=3, tokens=[1, 2, 3], layers=[(info, np.zeros((2, 3), int), np.ones(2))])
    with pytest.raises(ValueError, match="indices must be unique"):
        SpikeTrace.from_arrays(
            model_id="m", k=3, tokens=[1],
            layers=[(info, np.zeros((1, 3), int), np.ones(1)), (LayerInfo("b", "k", 3, 3, 0), np.zeros((1, 3), int), np.ones(1))],
        )
    with pytest.raises(ValueError, match="same_input_as='a' but their counts or vth differ"):
        SpikeTrace.from_arrays(
            model_id="m", k=3, tokens=[1],
            layers=[(info, np.zeros((1, 3), int), np.ones(1)), (LayerInfo("b", "k", 3, 3, 1, "a"), np.ones((1, 3), int), np.ones(1))],
        )
    with pytest.raises(TypeError, match=r"tuple \(LayerInfo, counts, vth\)"):
        SpikeTrace.from_arrays(model_id="m", k=3, tokens=[1], layers=[("a", np.zeros((1, 3)), np.ones(1))])
    tr = SpikeTrace.from_arrays(model_id="m", k=3, tokens=[1], layers=[(info, np.zeros((1, 3), int), np.ones(1))])
    assert not tr.counts("a").flags.writeable
    # Prompt boundaries given as an array (as SpikeTrace.prompt_starts returns them).
    tr = SpikeTrace.from_arrays(model_id="m", k=3, tokens=[1, 2], layers=[], prompt_starts=np.array([0]),
                                prompt_text=["x"])
    assert tr.prompt_starts.tolist() == [0] and tr.prompt_text == ["x"]
    with pytest.raises(ValueError, match="prompt_starts must be non-decreasing"):
        SpikeTrace.from_arrays(model_id="m", k=3, tokens=[1, 2], layers=[], prompt_starts=np.array([1]))


def test_edit_trace_is_atomic(tmp_path, rng):
    mem = _trace(rng)
    path = mem.save(tmp_path / "t.h5")
    with edit_trace(path) as f:
        f.create_group("stats").create_dataset("sparsity", data=np.array([0.5, 0.25]))
    with SpikeTrace.open(path) as tr:
        _assert_same(mem, tr)
    with h5py.File(path, "r") as f:
        np.testing.assert_array_equal(f["stats/sparsity"][()], [0.5, 0.25])
    before = path.read_bytes()
    with pytest.raises(RuntimeError, match="stop"):
        with edit_trace(path) as f:
            del f["stats"]
            raise RuntimeError("stop")
    assert path.read_bytes() == before
    assert sorted(p.name for p in tmp_path.iterdir()) == ["t.h5"]
    foreign = tmp_path / "foreign.h5"
    with h5py.File(foreign, "w") as f:
        f["x"] = 1
    with pytest.raises(TraceError, match="not a neurosim spike trace"):
        with edit_trace(foreign):
            pass


@settings(max_examples=200, deadline=None)
@given(st.text(min_size=1, max_size=30))
def test_layer_key_roundtrip(name):
    key = layer_key(name)
    assert "/" not in key and "\0" not in key and key not in (".", "..")
    assert unescape_key(key) == name


@pytest.mark.parametrize("name", ["model.layers.0.self_attn.q_proj", "couche.ü"])
def test_link_names_without_h5pys_private_helper(tmp_path, name):
    # The writer creates links through h5py's low-level calls with the name encoding and link
    # creation list of its high-level calls (h5py's private Group._e); without that helper the
    # same are built by hand: equal bytes, character set and intermediate-group flag.
    from analysis.trace_buffers import _link_name

    with h5py.File(tmp_path / "n.h5", "w") as f:
        g = f.create_group("layers")
        raw, lcpl = g._e(name, lcpl=True)
        own_raw, own = _link_name(object(), name)  # an object without _e: the fallback
        assert own_raw == raw
        assert own.get_char_encoding() == lcpl.get_char_encoding()
        assert own.get_create_intermediate_group() == lcpl.get_create_intermediate_group()
        h5py.h5g.create(g.id, own_raw, lcpl=own)
        assert name in g
