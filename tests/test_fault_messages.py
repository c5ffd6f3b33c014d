"""Messages for faults an operator meets (issue 15, point 6): a damaged corpus manifest on
``--resume`` and a trace this user may not read each give one line with the file and the way out."""
from __future__ import annotations

import contextlib
import io
import json
import os
import shutil
import stat
import tempfile
from pathlib import Path

import numpy as np
import pytest

from analysis.trace import LayerInfo, SpikeTrace, TraceError, TraceWriter
from neurosim.cli import main
from neurosim.corpus import run_corpus

GOOD_ENTRY = {"index": 0, "file": "shard-00000.h5", "first_prompt": 0, "prompts": 2, "digest": "ab" * 32,
              "tokens": 17, "bytes": 4096, "seconds": 1.5, "status": "done"}


def _manifest(**over):
    m = {"version": 1, "prompts": 2, "settings": {}, "shards": [dict(GOOD_ENTRY)]}
    m.update(over)
    return json.dumps(m)


def _entry(**over):
    return _manifest(shards=[{**GOOD_ENTRY, **over}])


def _without(key):
    e = dict(GOOD_ENTRY)
    del e[key]
    return _manifest(shards=[e])


BAD_MANIFESTS = [
    ("{not json", r"invalid JSON \(Expecting property name"),
    ("", r"invalid JSON"),
    ("[1, 2]", "holds a JSON array where an object is expected"),
    ('"text"', "holds a JSON string where an object is expected"),
    (json.dumps({"shards": []}), "'version' key is missing"),
    (_manifest(version=7), "manifest version 7, expected 1"),
    (_manifest(shards={"0": GOOD_ENTRY}), "'shards' is a JSON object, expected an array"),
    (json.dumps({"version": 1}), "'shards' key is missing"),
    (_manifest(shards=[[0, "shard-00000.h5"]]), r"shards\[0\] is a JSON array, expected an object"),
    (_without("index"), r"shards\[0\] lacks the 'index' key"),
    (_without("tokens"), r"shards\[0\] lacks the 'tokens' key"),
    (_entry(index="0"), r"shards\[0\]\.index is a JSON string, expected an integer"),
    (_entry(file=5), r"shards\[0\]\.file is a JSON integer, expected a string"),
    (_entry(tokens=None), r"shards\[0\]\.tokens is a JSON null, expected an integer"),
    (_entry(seconds="fast"), r"shards\[0\]\.seconds is a JSON string, expected a number"),
    (_manifest(shards=[GOOD_ENTRY, GOOD_ENTRY]), "shard index 0 is listed twice"),
]


@pytest.mark.parametrize("text, what", BAD_MANIFESTS)
def test_bad_manifest_on_resume_is_one_line_with_the_way_out(text, what, tmp_path, capsys):
    corpus = tmp_path / "prompts.txt"
    corpus.write_text("one prompt\nanother prompt\n")
    out = tmp_path / "run"
    out.mkdir()
    (out / "manifest.json").write_text(text)
    rc = main(["run", "--corpus", str(corpus), "--out", str(out), "--resume", "--workers", "0", "--quiet"])
    err = capsys.readouterr().err
    assert rc == 1 and err.count("\n") == 1, err
    assert err.startswith(f"neurosim: error: corpus manifest {out / 'manifest.json'}: ")
    assert "delete it to recompute every shard, or start over with --overwrite" in err
    assert __import__("re").search(what, err), err
    assert (out / "manifest.json").read_text() == text  # nothing lost: the run stopped before writing
    with pytest.raises(ValueError, match=what):  # the library says the same
        run_corpus(["one prompt"], out, resume=True, n_workers=0, progress=False)


def test_manifest_naming_another_file_does_not_reuse_it(tmp_path):
    from neurosim.corpus import ShardSpec, _shard_complete

    spec = ShardSpec(0, 0, ["p"], str(tmp_path / "shard-00000.h5"), "ab" * 32)
    entry = {**GOOD_ENTRY, "file": "../elsewhere.h5"}
    assert not _shard_complete(tmp_path, entry, spec)


# ------------------------------------------------------------------ unreadable trace


def _small_trace(path: Path) -> Path:
    with TraceWriter(path, model_id="m", k=3.0) as w:
        w.add_layer(LayerInfo("a", "q", 4, 4, 0))
        w.append("a", np.arange(12, dtype=np.int16).reshape(3, 4), np.ones(3))
        w.append_tokens(np.arange(3))
    return path


def _as_unprivileged(fn) -> str:
    """``fn()``'s exception as 'Type: message' (or 'ok'), run where file modes apply: as root
    (which reads any file) in a forked child that drops to uid/gid nobody first."""

    def attempt() -> str:
        try:
            fn()
        except Exception as e:  # noqa: BLE001 - the message is what the test inspects
            return f"{type(e).__name__}: {e}"
        return "ok"

    if os.geteuid() != 0:
        return attempt()
    r, w = os.pipe()
    pid = os.fork()
    if pid == 0:  # child: never returns into pytest
        try:
            os.close(r)
            os.setgid(65534)
            os.setuid(65534)
            msg = attempt()
        except BaseException as e:  # noqa: BLE001
            msg = f"child failed: {e!r}"
        os.write(w, msg.encode())
        os._exit(0)
    os.close(w)
    with os.fdopen(r, "rb") as f:
        msg = f.read().decode()
    os.waitpid(pid, 0)
    return msg


@pytest.fixture
def unreadable_trace():
    d = Path(tempfile.mkdtemp(prefix="neurosim-perm-"))  # not under root's private pytest folder
    try:
        d.chmod(0o755)
        p = _small_trace(d / "t.h5")
        with SpikeTrace.open(p) as tr:  # readable by its owner
            assert tr.n_tokens == 3
        p.chmod(0)
        yield p
    finally:
        shutil.rmtree(d, ignore_errors=True)


def test_unreadable_trace_is_permission_denied_not_corrupt(unreadable_trace):
    assert stat.S_IMODE(unreadable_trace.stat().st_mode) == 0
    msg = _as_unprivileged(lambda: SpikeTrace.open(unreadable_trace))
    assert msg.startswith(f"PermissionError: {unreadable_trace}: permission denied"), msg
    assert "corrupt" not in msg and "truncated" not in msg

    def inspect() -> None:
        err = io.StringIO()
        with contextlib.redirect_stderr(err), contextlib.redirect_stdout(io.StringIO()):
            rc = main(["inspect", str(unreadable_trace)])
        raise RuntimeError(f"rc={rc} {err.getvalue()}")

    msg = _as_unprivileged(inspect)
    assert msg.startswith(f"RuntimeError: rc=1 neurosim: error: {unreadable_trace}: permission denied"), msg
    assert msg.count("\n") == 1


def test_corrupt_trace_is_still_called_corrupt(tmp_path):
    p = tmp_path / "bad.h5"
    p.write_bytes(b"\x89HDF\r\n\x1a\n" + b"\0" * 64)
    with pytest.raises(TraceError, match="corrupt, truncated or of another format"):
        SpikeTrace.open(p)
