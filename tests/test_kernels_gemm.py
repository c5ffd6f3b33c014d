"""GEMM engines (neurosim.sim.kernels_gemm) equal the reference engines bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import encoders
from neurosim.sim import replay_layer, replay_spikes
from neurosim.weights import Int8Weight
from test_activity_fast import assert_same_activity

from neurosim.sim.activity_fast import covers

COVERED = [s for s in encoders.SCHEMES if covers(s)]  # graded and NAF: replay only (test_codes_sim.py)

UNSIGNED = ("binary", "bitwise")
DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])


def _weight(rng, out_f, in_f, gs):
    q = torch.from_numpy(rng.integers(-127, 128, size=(out_f, in_f)).astype(np.int8))
    scale = torch.from_numpy(rng.uniform(1e-3, 1e-1, size=(out_f, -(-in_f // gs))).astype(np.float32))
    return Int8Weight(q, scale, gs)


def _same(a, b):
    assert a.steps == b.steps and a.clipped == b.clipped
    assert torch.equal(a.acc.cpu(), b.acc.cpu())
    assert torch.equal(a.output.cpu(), b.output.cpu())  # same float32 scaling, bit for bit
    if a.group_acc is not None:
        assert torch.equal(a.group_acc.cpu(), b.group_acc.cpu())
    assert_same_activity(a.activity, b.activity)


@pytest.mark.parametrize("device", DEVICES)
@settings(max_examples=50, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    tokens=st.integers(0, 9),
    in_f=st.integers(1, 300),
    out_f=st.integers(1, 20),
    gs=st.sampled_from([1, 7, 32, 128]),
    scheme=st.sampled_from(COVERED),
    T=st.one_of(st.none(), st.integers(1, 8)),
    bit_order=st.sampled_from(["msb", "lsb"]),
    block=st.sampled_from([1, 8, 32]),
    signed=st.booleans(),
    clip=st.booleans(),
    engine=st.sampled_from(["gemm", "planes"]),
    chunk=st.one_of(st.none(), st.integers(1, 4)),
)
def test_gemm_engines_equal_the_reference(device, seed, tokens, in_f, out_f, gs, scheme, T, bit_order, block, signed,
                                          clip, engine, chunk):
    rng = np.random.default_rng(seed)
    split = scheme in UNSIGNED and signed
    hi = 40 if T is None else encoders.count_range(scheme, T)[1] + (3 if clip else 0)
    lo = -hi if (signed and (split or scheme in encoders.SIGNED)) else 0
    counts = rng.integers(lo, hi + 1, size=(tokens, in_f))
    counts[rng.random(counts.shape) < 0.5] = 0
    if T is not None and not clip:
        rlo, rhi = encoders.count_range(scheme, T)
        counts = np.clip(counts, -rhi if split else rlo, rhi)
    w = _weight(rng, out_f, in_f, gs)
    vth = rng.uniform(0.01, 2.0, size=tokens).astype(np.float32)
    kw = dict(block_columns=block, sign_split=split, clip=clip, keep_group_acc=True, device=device, token_chunk=chunk)
    ref = replay_layer(w, counts, vth, scheme, T, bit_order, engine="dense", **kw)
    _same(replay_layer(w, counts, vth, scheme, T, bit_order, engine=engine, **kw), ref)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("engine", ["gemm", "planes"])
@pytest.mark.parametrize("scheme", COVERED)
def test_explicit_trains(device, engine, scheme):
    """Trains that are not canonical encodings (IF-neuron output): planes are summed as sent."""
    rng = np.random.default_rng(7)
    lo = -1 if scheme in encoders.BIPOLAR else 0
    spikes = rng.integers(lo, 2, size=(5, 6, 140)).astype(np.int8)
    w = _weight(rng, 11, 140, 32)
    vth = np.ones(6, np.float32)
    for order in ("msb", "lsb"):
        a = replay_spikes(w, spikes, vth, scheme, order, engine=engine, device=device, keep_group_acc=True, block_columns=16)
        b = replay_spikes(w, spikes, vth, scheme, order, engine="events", device=device, keep_group_acc=True, block_columns=16)
        _same(a, b)


def test_wide_counts_use_float64_and_stay_exact():
    """Counts up to 2**20 with 128-wide groups pass 2**24: the float64 path keeps exactness."""
    rng = np.random.default_rng(9)
    counts = rng.integers(-(2**20), 2**20, size=(4, 256))
    w = _weight(rng, 8, 256, 128)
    a = replay_layer(w, counts, np.ones(4, np.float32), "bitwise-signed", engine="gemm", keep_group_acc=True)
    assert torch.equal(a.acc, torch.from_numpy(counts) @ w.q.to(torch.int64).T)
    _same(a, replay_layer(w, counts, np.ones(4, np.float32), "bitwise-signed", engine="dense", keep_group_acc=True))


def test_integer_weights_unit_scale():
    rng = np.random.default_rng(3)
    q = torch.from_numpy(rng.integers(-30000, 30000, size=(5, 700)).astype(np.int16))
    counts = rng.integers(-7, 8, size=(4, 700))
    for engine in ("gemm", "planes"):
        a = replay_layer(q, counts, np.ones(4, np.float32), "bitwise-signed", 3, engine=engine)
        assert torch.equal(a.acc, torch.from_numpy(counts) @ q.to(torch.int64).T)
        _same(a, replay_layer(q, counts, np.ones(4, np.float32), "bitwise-signed", 3, engine="dense"))
