"""Silent corruption is caught (issue 15, point 2): fletcher32 on every trace dataset, SHA-256 of
/stats and of the string tables, verified on read; `neurosim verify`; byte-level edits of a real trace."""
from __future__ import annotations

import re
import shutil
import zlib

import h5py
import numpy as np
import pytest

from analysis.checksums import fletcher32, with_fletcher32
from analysis.stats import SpikeStats, StatsDamagedError, read_stats, write_stats
from analysis.trace import SpikeTrace, TraceError
from analysis.verify import verify_trace
from neurosim.cli import main

RAW = ("Can't synchronously", "filter returned failure", "codec can't decode", "Traceback", "errno")


@pytest.fixture(scope="module")
def with_stats(smollm_trace, tmp_path_factory):
    """A copy of the real SmolLM2 trace with its /stats written (the clean reference)."""
    path = tmp_path_factory.mktemp("integrity") / "clean.h5"
    shutil.copyfile(smollm_trace.path, path)
    stats = SpikeStats.from_trace(smollm_trace, progress=False)
    write_stats(path, stats)
    return path, stats


def _copy(src, tmp_path, name="t.h5"):
    dst = tmp_path / name
    shutil.copyfile(src, dst)
    return dst


def _one_line_error(capsys, path) -> str:
    err = capsys.readouterr().err.strip()
    assert len(err.splitlines()) == 1, err
    assert str(path) in err and not any(r in err for r in RAW), err
    return err


def test_compiled_fletcher32_equals_numpy_reference():
    from analysis.checksums import fletcher32_numpy

    rng = np.random.default_rng(3)
    for n in (0, 1, 2, 3, 359, 360, 361, 720, 1001, 65536, 1 << 20, (1 << 20) + 1):
        for fill in ("random", "ones", "zeros"):
            data = {"random": rng.integers(0, 256, n, dtype=np.uint8).tobytes(), "ones": b"\xff" * n,
                    "zeros": bytes(n)}[fill]
            assert fletcher32(data) == fletcher32_numpy(data), (n, fill)


def test_fletcher32_matches_hdf5_filter(tmp_path):
    rng = np.random.default_rng(0)
    for shape, comp in (((3, 577), True), ((256, 576), True), ((5, 9), False), ((4, 576), True)):
        a = rng.integers(-300, 300, shape).astype(np.int16) if shape != (4, 576) else np.zeros(shape, np.int16)
        kw = {"compression": "gzip", "compression_opts": 1} if comp else {}
        with h5py.File(tmp_path / "f.h5", "w") as f:
            ref = f.create_dataset("ref", data=a, chunks=shape, fletcher32=True, **kw)  # HDF5 computes it
            stored = ref.id.read_direct_chunk((0, 0))[1]
            assert stored[-4:] == int(fletcher32(stored[:-4])).to_bytes(4, "little")
            d = f.create_dataset("mine", shape=shape, dtype=np.int16, chunks=shape, fletcher32=True, **kw)
            raw = zlib.compress(a.tobytes(), 1) if comp else a.tobytes()
            d.id.write_direct_chunk((0, 0), with_fletcher32(raw), filter_mask=0)
        with h5py.File(tmp_path / "f.h5", "r") as f:
            np.testing.assert_array_equal(f["mine"][()], a)  # HDF5 accepts our checksum


def test_trace_datasets_carry_fletcher32(with_stats):
    path, _ = with_stats
    with h5py.File(path, "r") as f:
        assert f.attrs["schema_minor"] == 1 and f.attrs["schema_version"] == 1
        found = []
        f.visititems(lambda n, o: found.append((n, o.fletcher32)) if isinstance(o, h5py.Dataset)
                     and not n.startswith("stats") and h5py.check_string_dtype(o.dtype) is None
                     and o.dtype.names is None else None)
        assert found and all(ok for _, ok in found), [n for n, ok in found if not ok]
        assert "layer_index_sha256" in f.attrs and "sha256" in f["stats"].attrs


def test_clean_trace_verifies(with_stats, capsys):
    path, stats = with_stats
    assert read_stats(path) == stats
    res = verify_trace(path)
    assert res.ok and res.checksums and res.has_stats, res.problems
    assert main(["verify", str(path)]) == 0
    assert "ok" in capsys.readouterr().out


def test_old_schema_trace_still_opens_and_verifies(capsys):
    from pathlib import Path

    old = Path(__file__).parent / "data" / "trace_v1_main.h5"
    with SpikeTrace.open(old) as tr:
        assert not tr.has_checksums
        tr.verify_checksums()
    assert main(["verify", str(old)]) == 0
    assert "no checksums stored" in capsys.readouterr().out


def _edit_digit_in_stats(path) -> tuple[str, str]:
    """Change one digit of a stored statistic in the file's raw bytes (the JSON counters of a layer)."""
    data = bytearray(path.read_bytes())
    m = re.search(rb'"hi": (\d+)', bytes(data))  # a layer's largest count
    assert m, "stored counters not found in the file"
    pos = m.start(1) + len(m.group(1)) - 1
    old = chr(data[pos])
    data[pos] = ord("1") if old != "1" else ord("2")
    path.write_bytes(bytes(data))
    return old, chr(data[pos])


def test_changed_digit_in_stats_is_not_trusted(with_stats, tmp_path, capsys):
    path = _copy(with_stats[0], tmp_path)
    _edit_digit_in_stats(path)
    with pytest.raises(StatsDamagedError, match=r"/stats\) are damaged"):
        read_stats(path)
    for cmd in (["inspect", str(path)], ["compare-encoders", str(path)]):
        assert main(cmd) == 1
        assert "(/stats) are damaged" in _one_line_error(capsys, path)
    assert main(["verify", str(path)]) == 1
    out = capsys.readouterr().out
    assert "SHA-256 does not match" in out and re.search(r"layer \S+ \w+: stored .*, derived ", out), out


def _flip(path, offset: int) -> None:
    data = bytearray(path.read_bytes())
    data[offset] ^= 0x5A
    path.write_bytes(bytes(data))


def test_flipped_byte_in_counts_chunk(with_stats, tmp_path, capsys):
    path = _copy(with_stats[0], tmp_path)
    with SpikeTrace.open(path) as tr:
        layer = tr.layers[3]
        src = tr.source_of(layer)
    with h5py.File(path, "r") as f:
        key = [k for k in f["layers"] if f["layers"][k].attrs["name"] == src][0]
        info = f["layers"][key]["counts"].id.get_chunk_info(0)
    _flip(path, info.byte_offset + info.size // 2)
    with SpikeTrace.open(path) as tr:  # metadata intact: opens
        with pytest.raises(TraceError, match=rf"counts of layer '{re.escape(src)}' is damaged: its checksum"):
            tr.counts(layer)
    assert main(["verify", str(path)]) == 1
    err = _one_line_error(capsys, path)
    assert "damaged" in err and src in err


@pytest.mark.parametrize("needle,commands", [(b"model_id", ("inspect", "verify")), (b"in_features", ("verify",))])
def test_flipped_byte_in_attributes(with_stats, tmp_path, capsys, needle, commands):
    """Root attributes are read by every command; a layer group's only by what reads that layer."""
    path = _copy(with_stats[0], tmp_path)
    raw = path.read_bytes()
    at = raw.find(needle)
    assert at > 0
    _flip(path, at + len(needle) + 12)  # inside the attribute's stored value (checksummed header)
    for cmd in commands:
        assert main([cmd, str(path)]) == 1
        err = _one_line_error(capsys, path)
        assert "damaged" in err or "corrupt" in err, err
