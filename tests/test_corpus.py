"""Corpus runs on Dask: exact merge equals one process; resume skips complete shards."""
from __future__ import annotations

import json

import pytest

from neurosim.corpus import read_corpus, run_corpus

PROMPTS = [
    "The river rose in the night and the village woke to water in the streets.",
    "A prime number has exactly two divisors: one and itself.",
    "She tuned the old radio until a faint voice read the shipping forecast.",
    "Bees carry pollen between flowers, and the orchard blooms again each spring.",
    "The compiler rejected the program because a variable was never declared.",
]


@pytest.fixture(scope="module")
def corpus_file(tmp_path_factory):
    p = tmp_path_factory.mktemp("corpus") / "prompts.txt"
    p.write_text("\n".join(PROMPTS[:2]) + "\n\n" + "\n".join(PROMPTS[2:]) + "\n")
    return p


@pytest.fixture(scope="module")
def one_process(corpus_file, smollm, tmp_path_factory):
    out = tmp_path_factory.mktemp("single")
    return run_corpus(corpus_file, out, prompts_per_shard=len(PROMPTS), n_workers=0, loaded=smollm, progress=False)


def test_read_corpus_file_and_folder(corpus_file, tmp_path):
    assert read_corpus(corpus_file) == PROMPTS  # the blank line is skipped
    for i, t in enumerate(PROMPTS[:3]):
        (tmp_path / f"{i:02d}.txt").write_text(t + "\n")
    (tmp_path / "notes.md").write_text("ignored")
    assert read_corpus(tmp_path) == PROMPTS[:3]
    with pytest.raises(FileNotFoundError, match="does not exist"):
        read_corpus(tmp_path / "missing.txt")
    (tmp_path / "empty.txt").unlink(missing_ok=True)
    empty = tmp_path / "e"
    empty.mkdir()
    with pytest.raises(ValueError, match="no prompts"):
        read_corpus(empty)


@pytest.mark.slow
def test_local_cluster_merge_equals_one_process(corpus_file, one_process, tmp_path):
    out = tmp_path / "dask"
    res = run_corpus(corpus_file, out, prompts_per_shard=2, n_workers=2, progress=False)
    assert len(res.shards) == 3 and res.computed == 3
    assert res.tokens == one_process.tokens > 50
    assert res.stats == one_process.stats  # exact: integer counters and histograms
    assert res.stats.summary() == one_process.stats.summary()
    manifest = json.loads((out / "manifest.json").read_text())
    assert [s["file"] for s in manifest["shards"]] == ["shard-00000.h5", "shard-00001.h5", "shard-00002.h5"]


@pytest.mark.slow
def test_resume_recomputes_only_missing_or_broken_shards(corpus_file, one_process, smollm, tmp_path):
    out = tmp_path / "resume"
    first = run_corpus(corpus_file, out, prompts_per_shard=2, n_workers=0, loaded=smollm, progress=False)
    mtimes = {p.name: p.stat().st_mtime_ns for p in out.glob("shard-*.h5")}
    (out / "shard-00001.h5").unlink()  # lost in an interruption
    (out / "shard-00002.h5").write_bytes(b"not hdf5")  # half-written by something else
    with pytest.raises(FileExistsError, match="resume"):
        run_corpus(corpus_file, out, prompts_per_shard=2, n_workers=0, loaded=smollm, progress=False)
    again = run_corpus(corpus_file, out, prompts_per_shard=2, n_workers=0, loaded=smollm, resume=True, progress=False)
    assert again.reused == 1 and again.computed == 2
    assert (out / "shard-00000.h5").stat().st_mtime_ns == mtimes["shard-00000.h5"]
    assert again.stats == first.stats == one_process.stats
