"""Faults without loss (issue 15): a full disk (tmpfs when root may mount one, RLIMIT_FSIZE
everywhere), corpus shards only complete, leftovers cleaned, modes follow the umask."""
from __future__ import annotations

import os
import re
import resource
import shutil
import stat
import subprocess
import sys
import textwrap
from pathlib import Path

import numpy as np
import pytest

from analysis import fileio
from analysis.fileio import DiskFullError, OutputError, publish_folder, stage_folder

ROOT = Path(__file__).resolve().parents[1]
NOISE = ("Traceback", "__dealloc__", "Exception ignored", "Can't write", "Segmentation")


@pytest.fixture
def tiny_disk(tmp_path):
    """A 3 MiB tmpfs (root only; skipped with the reason where mounting is not permitted)."""
    mnt = tmp_path / "disk"
    mnt.mkdir()
    r = subprocess.run(["mount", "-t", "tmpfs", "-o", "size=3m", "tmpfs", str(mnt)], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.skip(f"cannot mount a tmpfs here ({r.stderr.strip() or 'not permitted'}); the RLIMIT_FSIZE tests cover it")
    yield mnt
    subprocess.run(["umount", "-l", str(mnt)], capture_output=True)


def _fill(disk: Path, leave_mib: float) -> None:
    """Fill the disk up to ``leave_mib`` MiB free."""
    free = shutil.disk_usage(disk).free
    (disk / "filler").write_bytes(b"\0" * max(0, int(free - leave_mib * 2**20)))


def _env() -> dict:
    return {**os.environ, "PYTHONPATH": str(ROOT)}


def _check_one_line(r: subprocess.CompletedProcess, name: str) -> str:
    err = r.stderr
    assert r.returncode == 1, (r.returncode, err[-2000:])
    assert not any(n in err for n in NOISE), err[-2000:]
    lines = [ln for ln in err.splitlines() if ln.startswith("neurosim: error:")]
    assert len(lines) == 1 and name in lines[0], err[-2000:]
    return lines[0]


def _left(folder: Path) -> list[str]:
    return sorted(p.name for p in folder.rglob("*") if p.name != "filler")


# ----------------------------------------------------------------------------- full disk: tmpfs


def test_run_on_full_disk_is_one_line_exit_1(tiny_disk):
    """Was: ~240 h5py tracebacks, ~1,300 __dealloc__ lines, SIGSEGV (exit 139). The real CLI in a subprocess."""
    prompt = "The quick brown fox jumps over the lazy dog. " * 8  # ~75 tokens: a trace of ~3.6 MB
    r = subprocess.run([sys.executable, "-m", "neurosim.cli", "run", "--quiet", "--prompt", prompt,
                        "--out", str(tiny_disk / "run")], capture_output=True, text=True, env=_env(), timeout=900)
    line = _check_one_line(r, str(tiny_disk / "run"))
    assert re.search(r"disk full while writing .*trace\.h5 \(\d+\.\d MiB free on ", line), line
    assert _left(tiny_disk) == []  # nothing under the final name, no temp files


def test_corpus_on_full_disk_leaves_no_incomplete_shard(tiny_disk, smollm):
    """Was: shard-00000.h5 left under its final name without statistics."""
    from neurosim.corpus import run_corpus

    _fill(tiny_disk, 0.6)
    out = tiny_disk / "corpus"
    with pytest.raises(DiskFullError, match=r"disk full while writing .*shard-00000\.h5 \(\d+\.\d MiB free"):
        run_corpus(["A prime number has exactly two divisors: one and itself."] * 2, out, prompts_per_shard=1,
                   n_workers=0, loaded=smollm, progress=False)
    assert not list(out.glob("shard-*.h5")) and not list(out.glob(".*tmp")), _left(out)


def test_export_on_full_disk_names_disk_and_file(tiny_disk, smollm_trace):
    """Was: '10416 requested and 4578 written' without the disk or the file."""
    from neurosim.cli import main

    _fill(tiny_disk, 0.05)
    out = tiny_disk / "spikes.aer"
    r = subprocess.run([sys.executable, "-m", "neurosim.cli", "export", str(smollm_trace.path), "--format", "aer",
                        "--layer", smollm_trace.layers[6], "--out", str(out)], capture_output=True, text=True,
                       env=_env(), timeout=600)
    line = _check_one_line(r, str(out))
    assert "disk full" in line and "MiB free on" in line and "requested and" not in line, line
    assert _left(tiny_disk) == []


# ----------------------------------------------------------------------------- full disk: everywhere


def _limited(limit: int):
    def pre():
        resource.setrlimit(resource.RLIMIT_FSIZE, (limit, limit))
    return pre


def test_trace_writer_past_file_size_limit(tmp_path):
    """RLIMIT_FSIZE (EFBIG) stands in for a full disk on any machine: same clean failure."""
    script = textwrap.dedent(f"""
        import numpy as np
        from analysis.trace import LayerInfo, TraceWriter
        rng = np.random.default_rng(0)
        with TraceWriter({str(tmp_path / 't.h5')!r}, model_id="m", k=3.0) as w:
            for i in range(8):
                w.add_layer(LayerInfo(f"l{{i}}", "down", 576, 576, i))
            for _ in range(40):
                w.append_tokens(np.arange(16))
                for i in range(8):
                    w.append(f"l{{i}}", rng.integers(-900, 900, (16, 576)), np.ones(16))
    """)
    r = subprocess.run([sys.executable, "-c", f"from neurosim.cli import main\nimport sys\n"
                        f"try:\n" + textwrap.indent(script, "    ") +
                        "except OSError as e:\n    print('neurosim: error:', e, file=sys.stderr); sys.exit(1)\n"],
                       capture_output=True, text=True, env=_env(), preexec_fn=_limited(1 << 20), timeout=300)
    line = _check_one_line(r, str(tmp_path / "t.h5"))
    assert "file size limit reached while writing the trace" in line, line
    assert list(tmp_path.iterdir()) == []


def test_export_past_file_size_limit(smollm_trace, tmp_path):
    out = tmp_path / "spikes.aer"
    r = subprocess.run([sys.executable, "-m", "neurosim.cli", "export", str(smollm_trace.path), "--format", "aer",
                        "--layer", smollm_trace.layers[6], "--out", str(out)], capture_output=True, text=True,
                       env=_env(), preexec_fn=_limited(64 << 10), timeout=600)
    line = _check_one_line(r, str(out))
    assert "file size limit reached" in line, line
    assert list(tmp_path.iterdir()) == []


def test_failing_writer_in_trace_writer(tmp_path, monkeypatch):
    """A write that fails with ENOSPC inside h5py (as a full disk does): one error, temp file gone."""
    import errno

    from analysis import trace_writer
    from analysis.trace import LayerInfo, TraceWriter

    calls = {"n": 0}
    real = trace_writer.TraceWriter._write_chunk

    def failing(buf, block, start, end, data):
        calls["n"] += 1
        if calls["n"] == 3:
            raise OSError(errno.ENOSPC, "Can't write data (file write failed: errno = 28, No space left on device)")
        return real(buf, block, start, end, data)

    monkeypatch.setattr(trace_writer.TraceWriter, "_write_chunk", staticmethod(failing))
    with pytest.raises(DiskFullError, match=r"disk full while writing the trace .*t\.h5 \(\d+\.\d MiB free"):
        with TraceWriter(tmp_path / "t.h5", model_id="m", k=3.0, workers=0, chunk_rows=4) as w:
            w.add_layer(LayerInfo("l", "down", 16, 16, 0))
            w.append_tokens(np.arange(32))
            w.append("l", np.ones((32, 16), np.int16), np.ones(32))
    assert list(tmp_path.iterdir()) == []


# ----------------------------------------------------------------------------- leftovers


def test_overwrite_of_undeletable_folder_fails_clearly(tmp_path, monkeypatch):
    """Was: exit 0 and a hidden .NAME.old-PID folder left behind."""
    folder = tmp_path / "run"
    folder.mkdir()
    (folder / "old.txt").write_text("old")
    tmp = stage_folder(folder, overwrite=True)
    (tmp / "new.txt").write_text("new")
    real = shutil.rmtree

    def stuck(path, ignore_errors=False, onerror=None, **kw):  # e.g. a busy mount point inside it
        onerror(os.rmdir, str(path), (OSError, OSError(16, "Device or resource busy"), None))

    monkeypatch.setattr(fileio.shutil, "rmtree", stuck)
    with pytest.raises(OutputError, match=r"old content could not be deleted and is left in .*\.run\.old-\d+"):
        publish_folder(tmp, folder)
    monkeypatch.setattr(fileio.shutil, "rmtree", real)
    assert (folder / "new.txt").read_text() == "new"


@pytest.mark.skipif(os.geteuid() == 0, reason="root may delete anything: permissions cannot block it")
def test_overwrite_of_read_only_folder_refused_before_work(tmp_path):
    folder = tmp_path / "run"
    (folder / "sub").mkdir(parents=True)
    (folder / "sub" / "f").write_text("x")
    os.chmod(folder / "sub", 0o555)
    try:
        with pytest.raises(OutputError, match="may not be modified"):
            stage_folder(folder, overwrite=True)
        assert not [p for p in tmp_path.iterdir() if p.name.startswith(".")]
    finally:
        os.chmod(folder / "sub", 0o755)


def test_corpus_resume_cleans_stale_temps_recomputes_damaged_and_follows_umask(smollm, tmp_path):
    """Stale .shard-*.tmp of killed workers are removed by a successful --resume; a shard whose
    /stats were altered and one with a flipped byte in a counts chunk are recomputed; shards and
    manifest follow the umask."""
    import time

    from neurosim.corpus import run_corpus

    import h5py

    prompts = ["The river rose in the night.", "A prime number has exactly two divisors.", "Bees carry pollen."]
    old = os.umask(0o027)
    try:
        out = tmp_path / "c"
        first = run_corpus(prompts, out, prompts_per_shard=1, n_workers=0, loaded=smollm, progress=False)
        for p in [*out.glob("shard-*.h5"), out / "manifest.json"]:
            assert stat.S_IMODE(p.stat().st_mode) == 0o640, p
        stale = [out / ".shard-00001.h5.4242.tmp", out / "..shard-00001.h5.4242.tmp.abc123.tmp"]
        for p in stale:
            p.write_bytes(b"half a shard")
            t = time.time() - 600
            os.utime(p, (t, t))
        data = bytearray((out / "shard-00000.h5").read_bytes())
        m = re.search(rb'"hi": (\d+)', bytes(data))
        data[m.start(1)] = ord("9") if data[m.start(1)] != ord("9") else ord("8")  # one digit of the stored stats
        (out / "shard-00000.h5").write_bytes(bytes(data))
        with h5py.File(out / "shard-00001.h5", "r") as f:
            chunk = f["layers"][sorted(f["layers"])[0]]["counts"].id.get_chunk_info(0)
        data = bytearray((out / "shard-00001.h5").read_bytes())
        data[chunk.byte_offset + chunk.size // 2] ^= 0x5A  # silent damage inside the deflated counts
        (out / "shard-00001.h5").write_bytes(bytes(data))
        again = run_corpus(prompts, out, prompts_per_shard=1, n_workers=0, loaded=smollm, resume=True, progress=False)
    finally:
        os.umask(old)
    assert again.computed == 2 and again.reused == 1  # both damaged shards were recomputed
    assert again.stats == first.stats
    assert not any(p.exists() for p in stale)
    assert sorted(p.name for p in out.iterdir()) == ["manifest.json", "report.md", "shard-00000.h5", "shard-00001.h5",
                                                      "shard-00002.h5", "stats.h5"]  # no stale temp file
