"""Encoder edges (issue 15): count overflow, 0-d counts, big-endian arrays, oversized trains."""
from __future__ import annotations

import numpy as np
import pytest
import torch

import encoders as E
from analysis.trace import LayerInfo, SpikeTrace, TraceWriter
from neurosim.capture import counts_int16
from neurosim.sim import replay_layer

# ---------------------------------------------------------------- overflow (point 3)


@pytest.mark.parametrize("value", [3e13, 1e30, 3e38, 1e300, -3e13])
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_count_beyond_int32_is_refused_not_wrapped(value, kind):
    x = np.array([[value, 1.0]])
    x = torch.from_numpy(x) if kind == "torch" else x
    # mean|x| / k > VTH_MAX: V_th sits at its clamp (1e4), so |x| / V_th exceeds int32
    with pytest.raises(ValueError, match=r"overflow.*int32 limit 2147483647") as e:
        E.spike_counts(x)
    assert f"{abs(value) / 1e4:.4g}" in str(e.value)  # names the largest |x / V_th|
    # with clip the count saturates and is reported
    sc = E.spike_counts(x, clip=("ternary", 7))
    assert int(sc.counts[0, 0]) == (7 if value > 0 else -7) and sc.n_clipped == 1


def test_counts_near_the_int32_limit_keep_their_sign():
    sc = E.spike_counts(np.array([[2.1e13, 1.0], [-2.1e13, 1.0]]))
    assert sc.counts[0, 0] > 2.09e9 and sc.counts[1, 0] < -2.09e9
    assert sc.counts.dtype == np.int32 and float(sc.vth[0]) == E.VTH_MAX


def test_unclamped_threshold_bounds_counts_by_k_times_channels():
    # V_th = mean|x| / k: one outlier in a row of n gives |s| = k * n, far inside int32
    x = np.zeros((1, 1000))
    x[0, 3] = 5e3  # mean|x| = 5, V_th = 5 / 3 (no clamp)
    sc = E.spike_counts(x, k=3.0)
    assert int(sc.counts[0, 3]) == 3000 and int(np.abs(sc.counts).sum()) == 3000


def test_capture_counts_beyond_int16_are_refused():
    # V_th clamped at 1e4: 3.2e8 -> 32000 fits int16, 3.3e8 -> 33000 must not wrap
    c, vth = counts_int16(torch.tensor([[3.2e8, 1.0], [-3.2768e8, 1.0]]), 3.0)
    assert c[:, 0].tolist() == [32000, -32768] and c.dtype == torch.int16
    for v in (3.3e8, -3.3e8, 1e30):
        with pytest.raises(ValueError, match=r"does not fit int16 .*clamped to at most 10000"):
            counts_int16(torch.tensor([[v, 1.0]]), 3.0)
    with pytest.raises(ValueError, match="does not fit int16 .*smaller k"):
        counts_int16(torch.tensor([[1.0] + [0.0] * 20000]), 3.0)  # |s| = k * C = 60003


# ---------------------------------------------------------------- 0-d counts (point 7)


@pytest.mark.parametrize("scheme", E.SCHEMES)
@pytest.mark.parametrize("kind", ["numpy", "torch"])
def test_zero_dim_count_gives_a_one_dim_train(scheme, kind):
    v = -5 if scheme in E.SIGNED else 5
    c = np.array(v) if kind == "numpy" else torch.tensor(v)
    s = E.encode(c, scheme)
    assert tuple(s.shape) == (E.default_steps(c, scheme),)
    assert s.tolist() == E.encode(np.array([v]), scheme)[:, 0].tolist()
    back = E.decode(s, scheme)
    assert tuple(back.shape) == () and int(back) == v
    ev = E.to_events(s, max_value=E.get_scheme(scheme).payload_max)  # graded events carry their payload
    assert ev.shape == () and len(ev) == int(np.count_nonzero(np.asarray(s)))
    assert E.encode(c, scheme, T=8).shape[0] == 8


# ---------------------------------------------------------------- big-endian (point 7)


def test_big_endian_arrays_are_accepted_everywhere(tmp_path):
    counts = np.array([[5, -3, 0, 7], [1, 2, -8, 0]])
    be = counts.astype(">i4")
    for scheme in ("ternary", "bitwise-signed", "bitwise-twos"):
        assert np.array_equal(E.encode(be, scheme), E.encode(counts, scheme))
    assert np.array_equal(E.encode(be.astype(">f8"), "ternary"), E.encode(counts, "ternary"))
    train = E.encode(counts, "bitwise-signed")
    assert np.array_equal(E.decode(train.astype(">i2"), "bitwise-signed"), counts)
    ev, ev_be = E.to_events(train), E.to_events(train.astype(">i4"))
    assert np.array_equal(ev.step, ev_be.step) and np.array_equal(ev.index, ev_be.index)
    assert E.pack_spikes(train.astype(">i2")).nbytes == E.pack_spikes(train).nbytes
    assert E.default_steps(be, "ternary") == 8
    assert np.array_equal(E.clip_counts(be, "ternary", 4)[0], np.clip(counts, -4, 4))
    x = np.random.default_rng(0).normal(size=(3, 16))
    ref = E.spike_counts(x)
    got = E.spike_counts(x.astype(">f8"))
    assert np.array_equal(got.counts, ref.counts) and np.array_equal(got.vth, ref.vth)
    # the simulator and the trace writer accepted them already: they must agree
    w = torch.randint(-20, 20, (6, 4), dtype=torch.int8)
    vth = np.ones(2)
    a = replay_layer(w, be, vth.astype(">f8"), "ternary")
    b = replay_layer(w, counts, vth, "ternary")
    assert torch.equal(a.output, b.output)
    path = tmp_path / "be.h5"
    with TraceWriter(path, model_id="m", k=3.0) as tw:
        tw.add_layer(LayerInfo("a", "q", 4, 4, 0))
        tw.append("a", counts.astype(">i2"), vth.astype(">f4"))
        tw.append_tokens(np.arange(2).astype(">i8"))
    with SpikeTrace.open(path) as tr:
        assert np.array_equal(tr.counts("a"), counts)


# ---------------------------------------------------------------- train size (point 7)


@pytest.mark.parametrize("value, scheme", [(2**62, "binary"), (-(2**62), "ternary"), (2**40, "binary")])
def test_oversized_train_is_refused_before_allocating(value, scheme):
    with pytest.raises(ValueError, match=r"spike train of T=\d+ steps x 1 counts takes .*above the 4 GiB limit"):
        E.encode(np.array([value]), scheme)


def test_train_size_limit_can_be_set(monkeypatch):
    c = np.full((100, 100), 3)
    with pytest.raises(ValueError, match=r"T=8 steps x 10000 counts takes 80000 bytes, above the 1000 bytes"):
        E.encode(c, "bitwise", T=8, max_bytes=1000)
    monkeypatch.setenv(E.schemes.MAX_TRAIN_BYTES_ENV, "20000")
    assert E.encode(c, "bitwise", T=2).shape == (2, 100, 100)  # exactly 20000 bytes: allowed
    with pytest.raises(ValueError, match="above the 20000 bytes limit"):
        E.encode(c, "ternary")
    assert E.encode(c, "ternary", max_bytes=10**6).shape == (3, 100, 100)  # the argument wins
    monkeypatch.setenv(E.schemes.MAX_TRAIN_BYTES_ENV, "lots")
    with pytest.raises(ValueError, match="NEUROSIM_MAX_TRAIN_BYTES='lots' is not a number"):
        E.encode(c, "ternary")


def test_large_count_with_few_elements_roundtrips():
    # one spike per unit of count: 2**24 steps for 3 counts (48 MiB), encoded a block of steps
    # per vectorized pass rather than one Python iteration per step
    c = np.array([2**24, -(2**23), 0])
    s = E.encode(c, "ternary")
    assert s.shape == (2**24, 3)
    assert int(s[:, 0].sum()) == 2**24 and int(s[:, 1].sum()) == -(2**23) and not s[:, 2].any()
    assert s[2**23 - 1, 1] == -1 and s[2**23, 1] == 0  # ones first, then silence
    assert np.array_equal(E.decode(s, "ternary"), c)
