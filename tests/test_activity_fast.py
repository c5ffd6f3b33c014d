"""Activity from counts (neurosim.sim.activity_fast) equals the replay's Activity field for field."""
from __future__ import annotations

import dataclasses

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import encoders
from hw_models import Activity
from neurosim.sim import replay_layer, replay_trace
from neurosim.sim.activity_fast import layer_activity, trace_activity
from neurosim.weights import Int8Weight

from neurosim.sim.activity_fast import covers

COVERED = [s for s in encoders.SCHEMES if covers(s)]  # graded and NAF: replay only (test_codes_sim.py)

UNSIGNED = ("binary", "bitwise")


def assert_same_activity(a: Activity, b: Activity) -> None:
    for f in dataclasses.fields(Activity):
        x, y = getattr(a, f.name), getattr(b, f.name)
        if isinstance(x, np.ndarray) or isinstance(y, np.ndarray):
            assert x is not None and y is not None, f.name
            np.testing.assert_array_equal(np.asarray(x), np.asarray(y), err_msg=f.name)
            assert np.asarray(x).dtype == np.asarray(y).dtype, f.name
        else:
            assert x == y, (f.name, x, y)


def _weight(rng, out_f, in_f):
    q = torch.from_numpy(rng.integers(-127, 128, size=(out_f, in_f)).astype(np.int8))
    return Int8Weight(q, torch.ones(out_f, -(-in_f // 128)), 128)


@settings(max_examples=80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    tokens=st.integers(0, 7),
    in_f=st.integers(1, 150),
    out_f=st.integers(1, 9),
    scheme=st.sampled_from(COVERED),
    T=st.one_of(st.none(), st.integers(1, 9)),
    bit_order=st.sampled_from(["msb", "lsb"]),
    block=st.sampled_from([1, 3, 8, 32, 200]),
    signed=st.booleans(),
    spread=st.integers(0, 40),
    clip=st.booleans(),
    sparsity=st.floats(0.0, 1.0),
)
def test_activity_equals_replay(seed, tokens, in_f, out_f, scheme, T, bit_order, block, signed, spread, clip, sparsity):
    rng = np.random.default_rng(seed)
    split = scheme in UNSIGNED and signed
    lo = -spread if (signed and (split or scheme in encoders.SIGNED)) else 0
    counts = rng.integers(lo, spread + 1, size=(tokens, in_f))
    counts[rng.random(counts.shape) < sparsity] = 0
    if T is not None and not clip:
        rlo, rhi = encoders.count_range(scheme, T)
        counts = np.clip(counts, -rhi if split else rlo, rhi)
    w = _weight(rng, out_f, in_f)
    r = replay_layer(w, counts, np.ones(tokens, np.float32), scheme, T, bit_order, block_columns=block,
                     sign_split=split, clip=clip, name="x", role="q", same_input_as="y")
    a, steps = layer_activity(counts, in_f, out_f, scheme, T, bit_order, block_columns=block, sign_split=split,
                              clip=clip, name="x", role="q", same_input_as="y")
    assert steps == r.steps
    assert_same_activity(a, r.activity)


@pytest.mark.parametrize("scheme", COVERED)
def test_long_windows_and_bit_patterns(scheme):
    """Heavy tails: binary/ternary windows of hundreds of steps, bitwise windows past 16 bits."""
    rng = np.random.default_rng(3)
    counts = rng.laplace(scale=2.0, size=(5, 70)).round().astype(np.int64)
    counts[1, 3] = 300
    counts[2, 5] = -70000 if scheme not in ("binary", "ternary") else -250
    split = scheme in UNSIGNED
    w = _weight(rng, 4, 70)
    for order in ("msb", "lsb"):
        r = replay_layer(w, counts, np.ones(5, np.float32), scheme, None, order, sign_split=split, block_columns=16)
        a, _ = layer_activity(counts, 70, 4, scheme, None, order, sign_split=split, block_columns=16)
        assert_same_activity(a, r.activity)


def test_errors_match_the_replay():
    with pytest.raises(ValueError, match="only non-negative"):
        layer_activity(np.array([[-1, 2]]), 2, 3, "bitwise")
    with pytest.raises(ValueError, match="outside"):
        layer_activity(np.array([[9, 2]]), 2, 3, "bitwise-signed", 3)
    with pytest.raises(ValueError, match="in_features=3"):
        layer_activity(np.array([[1, 2]]), 3, 3, "ternary")
    with pytest.raises(ValueError, match="block_columns"):
        layer_activity(np.array([[1, 2]]), 2, 3, "ternary", block_columns=0)
    with pytest.raises(ValueError, match="unknown scheme"):
        layer_activity(np.array([[1, 2]]), 2, 3, "morse")
    with pytest.raises(TypeError):
        layer_activity([[1, 2]], 2, 3, "ternary")


def test_trace_activity_equals_replay_trace(smollm, smollm_trace):
    """The real trace: every layer's record and the total, with the report's clipped 3-step window."""
    layers = smollm_trace.layers[:9]
    for scheme, T in (("bitwise-signed", 3), ("binary", 7)):
        rep = replay_trace(smollm_trace, smollm.model, scheme, T, clip=True, layers=layers, progress=False)
        fast = trace_activity(smollm_trace, scheme, T, clip=True, layers=layers)
        assert fast.steps == rep.steps and fast.clipped == rep.clipped and fast.model_id == rep.model_id
        for name in layers:
            assert_same_activity(fast.layers[name], rep.layers[name])
        assert_same_activity(fast.total, rep.total)
    with pytest.raises(ValueError, match="not in the trace"):
        trace_activity(smollm_trace, "ternary", layers=["nope"])


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    tokens=st.integers(0, 6),
    in_f=st.integers(1, 90),
    scheme=st.sampled_from(COVERED),
    T=st.integers(1, 62),
    bit_order=st.sampled_from(["msb", "lsb"]),
    block=st.sampled_from([1, 5, 32]),
)
def test_torch_tally_equals_numpy_tally(seed, tokens, in_f, scheme, T, bit_order, block):
    """The torch counters (used where counts live on a GPU) equal the numpy ones."""
    from neurosim.sim.activity_fast import count_tally, count_tally_torch

    rng = np.random.default_rng(seed)
    if scheme in ("binary", "ternary"):
        T = min(T, 30)
    lo, hi = encoders.count_range(scheme, T)
    lo = -hi if scheme in UNSIGNED else lo  # sign-split lines carry |c|
    counts = rng.integers(max(lo, -(2**40)), min(hi, 2**40), size=(tokens, in_f), endpoint=True)
    nb = -(-in_f // block)
    dev = "cuda" if torch.cuda.is_available() else "cpu"
    a = count_tally(counts, scheme, T, bit_order, nb, block)
    b = count_tally_torch(torch.from_numpy(counts).to(dev), scheme, T, bit_order, nb, block)
    for f in ("events_per_step", "events_per_token", "event_hist", "block_fetches"):
        assert torch.equal(getattr(a, f), getattr(b, f)), f


@pytest.mark.parametrize("scheme", [s for s in encoders.SCHEMES if not covers(s)])
def test_schemes_outside_the_count_only_path_are_refused(scheme):
    c = np.array([[3, -2, 0, 5]])
    with pytest.raises(ValueError, match="does not cover scheme"):
        layer_activity(c, 4, 4, scheme)
    with pytest.raises(ValueError, match="does not cover scheme"):
        replay_layer(torch.ones(4, 4, dtype=torch.int8), c, np.ones(1, np.float32), scheme, engine="gemm")
