"""A trace (with a /stats group) written by the code before the architecture split still reads identically.

tests/data/trace_v1_main.h5 was written by the main-branch writer (commit 6ed0cde) and
tests/data/trace_v1_main.json holds what that code read back from it.
"""
from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest

from analysis.stats import read_stats
from analysis.trace import SpikeTrace

DATA = Path(__file__).parent / "data"


@pytest.fixture(scope="module")
def expected() -> dict:
    return json.loads((DATA / "trace_v1_main.json").read_text())


def test_old_trace_reads_identically(expected):
    with SpikeTrace.open(DATA / "trace_v1_main.h5") as tr:
        assert tr.model_id == expected["model_id"]
        assert tr.k == expected["k"]
        assert list(tr.vth_clamp) == expected["vth_clamp"]
        assert tr.layers == expected["layers"]
        assert tr.tokens.tolist() == expected["tokens"]
        assert tr.offsets.tolist() == expected["offsets"]
        assert tr.prompt_starts.tolist() == expected["prompt_starts"]
        assert tr.prompt_text == expected["prompt_text"]
        for key, value in expected["attrs"].items():
            got = tr.attrs[key]
            assert (got.tolist() if hasattr(got, "tolist") else got) == value
        infos = [[i.name, i.role, i.in_features, i.out_features, i.index, i.same_input_as] for i in map(tr.layer, tr.layers)]
        assert infos == expected["infos"]
        for name in tr.layers:
            assert tr.counts(name).tolist() == expected["counts"][name]
            np.testing.assert_array_equal(tr.vth(name), np.asarray(expected["vth"][name], dtype=np.float32))


def test_old_stats_group_reads_identically(expected):
    got = read_stats(DATA / "trace_v1_main.h5").summary("model")
    want = expected["stats_summary"]["model"]
    assert set(want) <= set(got)  # issue 16 added temporal_sparsity (0 pairs in old files: n/a)
    for key, value in want.items():
        assert got[key] == pytest.approx(value) if isinstance(value, float) else got[key] == value, key


def test_old_trace_resaves(tmp_path, expected):
    with SpikeTrace.open(DATA / "trace_v1_main.h5") as tr:
        out = tr.save(tmp_path / "copy.h5")
    with SpikeTrace.open(out) as copy:
        assert copy.layers == expected["layers"]
        for name in copy.layers:
            assert copy.counts(name).tolist() == expected["counts"][name]
