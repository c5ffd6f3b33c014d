"""Issue 16 item 3: temporal sparsity (prompt-aware, exact across chunkings) and delta statistics."""
from __future__ import annotations

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

from analysis.stats import SpikeStats
from analysis.stats_accumulator import delta_counts


def _brute(c: np.ndarray, starts: list[int]) -> tuple[int, int]:
    same = pairs = 0
    for t in range(1, c.shape[0]):
        if t in starts:
            continue
        same += int((c[t] == c[t - 1]).sum())
        pairs += c.shape[1]
    return same, pairs


def _fed(c: np.ndarray, starts: list[int], cuts: list[int], delta: bool = False) -> SpikeStats:
    """Stream ``c`` in pieces cut at ``cuts``; each piece gets the prompt starts inside it."""
    out = SpikeStats(delta=delta)
    edges = [0] + sorted(set(cuts)) + [c.shape[0]]
    for a, b in zip(edges[:-1], edges[1:]):
        here = [s - a for s in starts if a <= s < b]
        out.update("model.layers.0.mlp.down_proj", None, c[a:b], prompt_starts=here)
    return out


@settings(max_examples=60, deadline=None)
@given(data=st.data())
def test_temporal_sparsity_exact_for_any_chunking(data):
    rows = data.draw(st.integers(1, 30))
    rng = np.random.default_rng(data.draw(st.integers(0, 2**16)))
    c = rng.integers(-2, 3, size=(rows, 7)) * (rng.random((rows, 7)) < 0.6)
    starts = sorted({0} | set(data.draw(st.lists(st.integers(0, rows - 1), max_size=4))))
    cuts = data.draw(st.lists(st.integers(1, max(rows - 1, 1)), max_size=4))
    one = _fed(c, starts, [])
    piece = _fed(c, starts, cuts)
    same, pairs = _brute(c, starts)
    st_one = one.group()
    assert (st_one.temporal_same, st_one.temporal_pairs) == (same, pairs)
    assert piece == one
    s = one.summary()["temporal_sparsity"]
    assert (np.isnan(s) and pairs == 0) or s == same / pairs
    # delta statistics: the histogram of s_t - s_(t-1), first token of each prompt sending s_0
    d = c.astype(np.int64).copy()
    d[1:] -= c[:-1]
    d[starts] = c[starts]
    want = SpikeStats()
    want.update("model.layers.0.mlp.down_proj", None, d, prompt_starts=starts)
    got = _fed(c, starts, cuts, delta=True)
    assert np.array_equal(got.group().hist, want.group().hist)
    assert got.group().values == want.group().values


def test_delta_counts_and_merge_rules():
    c = np.array([[1, 2], [1, 3], [0, 3], [5, 5]])
    np.testing.assert_array_equal(delta_counts(c, np.array([0, 3]), None), [[1, 2], [0, 1], [-1, 0], [5, 5]])
    np.testing.assert_array_equal(delta_counts(c[:1], np.zeros(0, np.int64), np.array([1, 1])), [[0, 1]])
    with pytest.raises(ValueError, match="delta"):
        SpikeStats(delta=True).merge(SpikeStats())
    with pytest.raises(ValueError, match="non-negative"):
        SpikeStats().update("x", "q", c, prompt_starts=[-1])
