"""analysis.fileio: one atomic-output module; files and folders follow the umask; one error type."""
from __future__ import annotations

import errno
import os
import stat

import numpy as np
import pytest

from analysis import fileio
from analysis.fileio import OutputError
from analysis.stats import SpikeStats, write_stats
from analysis.trace import LayerInfo, SpikeTrace
from neurosim.export import export_layer
from neurosim.report import Section, write_report

MODES = [(0o022, 0o644, 0o755), (0o077, 0o600, 0o700)]


@pytest.fixture
def umask():
    old = os.umask(0o022)
    os.umask(old)
    yield lambda m: os.umask(m)
    os.umask(old)


def _mode(p) -> int:
    return stat.S_IMODE(os.stat(p).st_mode)


def _trace(rng) -> SpikeTrace:
    info = LayerInfo(name="model.layers.0.mlp.down_proj", role="down", in_features=8, out_features=4, index=0)
    counts = rng.integers(-5, 6, size=(12, 8)).astype(np.int16)
    vth = rng.uniform(0.1, 1, size=12).astype(np.float32)
    return SpikeTrace.from_arrays(model_id="t/tiny", k=3.0, tokens=np.arange(12), layers=[(info, counts, vth)])


@pytest.mark.parametrize("mask,fmode,dmode", MODES)
def test_outputs_follow_umask(tmp_path, umask, mask, fmode, dmode):
    umask(mask)
    rng = np.random.default_rng(0)
    mem = _trace(rng)
    trace_path = mem.save(tmp_path / "t.h5")
    assert _mode(trace_path) == fmode
    stats = SpikeStats.from_trace(mem, progress=False)
    stats_path = write_stats(None, stats, out=tmp_path / "s.h5")
    assert _mode(stats_path) == fmode
    write_stats(trace_path, stats)  # edited in place: keeps the trace's mode
    assert _mode(trace_path) == fmode
    with SpikeTrace.open(trace_path) as tr:
        exported = export_layer(tr, tr.layers[0], "aer", tmp_path / "x.aer", scheme="bitwise-signed", T=4)
    assert _mode(exported) == fmode
    md, page = write_report(tmp_path, "t", {"a": 1}, [Section("s", "body")])
    assert _mode(md) == fmode and _mode(page) == fmode
    # a run folder: staged in a hidden sibling, then published
    tmp = fileio.stage_folder(tmp_path / "run")
    assert _mode(tmp) == dmode
    fileio.write_text(tmp / "report.md", "x")
    fileio.publish_folder(tmp, tmp_path / "run")
    assert _mode(tmp_path / "run") == dmode and _mode(tmp_path / "run" / "report.md") == fmode
    assert not tmp.exists()


def test_errors_name_path_and_cause(tmp_path, monkeypatch):
    with pytest.raises(OutputError, match="does not exist") as e:
        fileio.write_text(tmp_path / "nope" / "a.txt", "x")
    assert isinstance(e.value, FileNotFoundError) and isinstance(e.value, ValueError)
    fileio.write_text(tmp_path / "a.txt", "x")
    with pytest.raises(FileExistsError, match="overwrite=True"):
        fileio.write_text(tmp_path / "a.txt", "y")
    assert (tmp_path / "a.txt").read_text() == "x"
    with pytest.raises(IsADirectoryError):
        fileio.write_text(tmp_path, "y")

    def full(path):
        raise OSError(errno.ENOSPC, "No space left on device")

    monkeypatch.setattr(fileio, "_fsync_file", full)
    with pytest.raises(OutputError, match=r"cannot write .*b\.txt: disk full") as e:
        fileio.write_text(tmp_path / "b.txt", "y")
    assert e.value.errno == errno.ENOSPC
    assert sorted(p.name for p in tmp_path.iterdir()) == ["a.txt"]  # no target, no temp file


def test_folder_publish_replaces_only_after(tmp_path):
    (tmp_path / "run").mkdir()
    (tmp_path / "run" / "old.txt").write_text("old")
    with pytest.raises(FileExistsError, match="not empty"):
        fileio.stage_folder(tmp_path / "run")
    tmp = fileio.stage_folder(tmp_path / "run", overwrite=True)
    (tmp / "new.txt").write_text("new")
    assert (tmp_path / "run" / "old.txt").exists()  # untouched until published
    fileio.publish_folder(tmp, tmp_path / "run")
    assert sorted(p.name for p in tmp_path.iterdir()) == ["run"]
    assert [p.name for p in (tmp_path / "run").iterdir()] == ["new.txt"]


@pytest.mark.skipif(os.geteuid() == 0, reason="root ignores folder permissions")
def test_permission_error(tmp_path):
    ro = tmp_path / "ro"
    ro.mkdir()
    ro.chmod(0o500)
    try:
        with pytest.raises(PermissionError, match="permission denied"):
            fileio.write_text(ro / "a.txt", "x")
    finally:
        ro.chmod(0o700)


def test_writeback_starts_every_n_bytes_and_closes(tmp_path, monkeypatch):
    calls = []
    monkeypatch.setattr(fileio, "_SYNC_FILE_RANGE", lambda fd, off, n, flags: calls.append((fd, off, n, flags)))
    path = tmp_path / "w.bin"
    path.write_bytes(b"x" * 100)
    wb = fileio.Writeback(path, every=10)
    assert wb.fd is not None
    wb.wrote(4)
    wb.wrote(5)
    assert calls == []  # 9 bytes pending, below 10
    wb.wrote(1)
    assert calls == [(wb.fd, 0, 0, 2)] and wb.pending == 0  # SYNC_FILE_RANGE_WRITE over the whole file
    wb.start()
    assert len(calls) == 2
    fd = wb.fd
    wb.close()
    wb.close()  # twice is fine
    assert wb.fd is None
    with pytest.raises(OSError):
        os.fstat(fd)  # our descriptor is closed
    wb.start()  # after close: nothing to do
    assert len(calls) == 2 and path.read_bytes() == b"x" * 100


def test_writeback_is_a_no_op_without_sync_file_range(tmp_path, monkeypatch):
    monkeypatch.setattr(fileio, "_SYNC_FILE_RANGE", None)
    wb = fileio.Writeback(tmp_path / "absent.bin", every=1)
    assert wb.fd is None
    wb.wrote(5)
    wb.close()
