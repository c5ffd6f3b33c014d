"""Encoders: exact roundtrips, the Int2Spike reference semantics, and clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st
from hypothesis.extra.numpy import arrays

import encoders as E

UNSIGNED = ("binary", "bitwise")

# ---------------------------------------------------------------- reference examples


@pytest.mark.parametrize(
    "value, scheme, expected",
    [
        (5, "bitwise", [1, 0, 1]),
        (-5, "bitwise-signed", [-1, 0, -1]),
        (-5, "bitwise-twos", [1, 0, 1, 1]),
        (5, "bitwise-twos", [0, 1, 0, 1]),
        (3, "binary", [1, 1, 1]),
        (-3, "ternary", [-1, -1, -1]),
        (0, "bitwise", [0]),
    ],
)
def test_reference_examples(value, scheme, expected):
    assert E.encode(np.array([value]), scheme)[:, 0].tolist() == expected


def test_binary_and_ternary_fire_ones_first_then_silence():
    s = E.encode(np.array([2, -1, 0]), "ternary", T=4)
    assert s.T.tolist() == [[1, 1, 0, 0], [-1, 0, 0, 0], [0, 0, 0, 0]]
    s = E.encode(np.array([2, 0]), "binary", T=3)
    assert s.T.tolist() == [[1, 1, 0], [0, 0, 0]]


def test_lsb_order_reverses_steps():
    msb = E.encode(np.array([6, 1]), "bitwise", T=4)
    lsb = E.encode(np.array([6, 1]), "bitwise", T=4, bit_order="lsb")
    np.testing.assert_array_equal(lsb, msb[::-1])
    assert msb[:, 0].tolist() == [0, 1, 1, 0]


@pytest.mark.parametrize(
    "scheme, counts, T",
    [
        ("binary", [0, 3, 7], 7),
        ("ternary", [-9, 2, 0], 9),
        ("bitwise", [0, 8, 7], 4),
        ("bitwise", [0, 0], 1),
        ("bitwise-signed", [-7, 3], 3),
        ("bitwise-signed", [-8, 3], 4),
        ("bitwise-twos", [-7, 3], 4),
        ("bitwise-twos", [0, 1], 2),
        ("bitwise-twos", [-8, 0], 5),
    ],
)
def test_default_steps_follow_int2spike(scheme, counts, T):
    c = np.array(counts)
    assert E.default_steps(c, scheme) == T
    assert E.encode(c, scheme).shape == (T, len(counts))


def test_count_range_examples():
    assert E.count_range("bitwise-signed", 3) == (-7, 7)
    assert E.count_range("bitwise-twos", 4) == (-8, 7)
    assert E.count_range("bitwise", 3) == (0, 7)
    assert E.count_range("ternary", 5) == (-5, 5)


def test_step_weights_twos_msb_negative():
    assert E.step_weights("bitwise-twos", 4).tolist() == [-8, 4, 2, 1]
    assert E.step_weights("bitwise-twos", 4, "lsb").tolist() == [1, 2, 4, -8]
    assert E.step_weights("ternary", 3).tolist() == [1, 1, 1]


def test_matches_a_per_step_reference_loop():
    """Step for step equal to an independent loop of the Int2Spike neuron dynamics."""
    rng = np.random.default_rng(1)
    c = rng.integers(-12, 13, size=(6, 11))
    # ternary: emit sign(remaining) each step, subtract it
    rem, steps = c.copy(), []
    for _ in range(12):
        s = np.sign(rem)
        steps.append(s)
        rem = rem - s
    np.testing.assert_array_equal(E.encode(c, "ternary"), np.stack(steps))
    # bitwise unsigned: bit (T-1-t) of the value at step t
    u = np.abs(c)
    ref = np.stack([(u >> (4 - 1 - t)) & 1 for t in range(4)])
    np.testing.assert_array_equal(E.encode(u, "bitwise"), ref)


# ---------------------------------------------------------------- property-based roundtrips

# unit-spike trains (graded payloads have their own tests in tests/test_codes.py)
SCHEME_ORDER = [(s, o) for s in E.SCHEMES if not E.get_scheme(s).graded for o in ("msb", "lsb")]


def _counts(signed: bool, max_abs: int):
    lo = -max_abs if signed else 0
    return arrays(np.int64, st.tuples(st.integers(0, 4), st.integers(1, 6)), elements=st.integers(lo, max_abs))


@pytest.mark.parametrize("scheme, order", SCHEME_ORDER)
@settings(max_examples=40, deadline=None)
@given(data=st.data())
def test_roundtrip_small(scheme, order, data):
    c = data.draw(_counts(scheme in E.SIGNED, 40))
    extra = data.draw(st.integers(0, 3))
    T = E.default_steps(c, scheme) + extra
    s = E.encode(c, scheme, T=T, bit_order=order)
    assert s.dtype == np.int8 and s.shape == (T,) + c.shape
    np.testing.assert_array_equal(E.decode(s, scheme, bit_order=order), c)
    ev = E.to_events(s)
    np.testing.assert_array_equal(E.from_events(ev), s)
    np.testing.assert_array_equal(E.unpack_spikes(E.pack_spikes(s)), s)


@pytest.mark.parametrize("scheme", ["bitwise", "bitwise-signed", "bitwise-twos"])
@pytest.mark.parametrize("order", ["msb", "lsb"])
@settings(max_examples=30, deadline=None)
@given(data=st.data())
def test_roundtrip_integer_extremes(scheme, order, data):
    dtype = data.draw(st.sampled_from([np.int8, np.int16, np.int32, np.int64]))
    info = np.iinfo(dtype)
    lo, hi = (max(info.min, -(2**62)), min(info.max, 2**62)) if scheme in E.SIGNED else (0, min(info.max, 2**62))
    extremes = [lo, hi, 0, lo + 1, hi - 1]
    vals = data.draw(st.lists(st.sampled_from(extremes) | st.integers(lo, hi), min_size=1, max_size=8))
    c = np.array(vals, dtype=dtype)
    s = E.encode(c, scheme, bit_order=order)
    np.testing.assert_array_equal(E.decode(s, scheme, bit_order=order), c.astype(np.int64))


def test_torch_in_torch_out_and_float_integral_accepted():
    c = torch.tensor([[3, -2], [0, 7]], dtype=torch.float32)
    s = E.encode(c, "bitwise-signed")
    assert isinstance(s, torch.Tensor) and s.dtype == torch.int8
    assert torch.equal(E.decode(s, "bitwise-signed"), c.long())


@pytest.mark.skipif(not torch.cuda.is_available(), reason="needs CUDA")
def test_cuda_roundtrip():
    c = torch.randint(-20, 21, (64, 128), device="cuda")
    for scheme in ("ternary", "bitwise-signed", "bitwise-twos"):
        s = E.encode(c, scheme)
        assert s.device.type == "cuda"
        assert torch.equal(E.decode(s, scheme), c)


# ---------------------------------------------------------------- quantizer


def test_gaussian_k3_gives_report_fraction():
    x = np.random.default_rng(0).standard_normal((2000, 1024)).astype(np.float32)
    counts, vth = E.spike_counts(x, k=3.0)
    frac = float((np.abs(counts) <= 7).mean())
    assert abs(frac - 0.954) < 0.003  # SpikingBrain report (arXiv:2509.05276): Gaussian ~0.954 (report 0.951)
    np.testing.assert_allclose(vth, np.abs(x).mean(axis=1) / 3.0, rtol=1e-6)
    assert counts.dtype == np.int32 and vth.shape == (2000,)


def test_laplace_k3_fraction():
    x = np.random.default_rng(0).laplace(size=(2000, 1024))
    counts, _ = E.spike_counts(x, k=3.0)
    assert abs(float((np.abs(counts) <= 7).mean()) - 0.918) < 0.004


def test_vth_clamp_and_dim():
    x = torch.zeros(3, 8)
    counts, vth = E.spike_counts(x)
    assert torch.all(vth == torch.tensor(E.VTH_MIN)) and torch.all(counts == 0)
    x = torch.full((2, 4), 1e6)
    _, vth = E.spike_counts(x, k=1.0)
    assert torch.all(vth == E.VTH_MAX)
    x = torch.randn(5, 7)
    _, vth0 = E.spike_counts(x, dim=0)
    assert vth0.shape == (7,)


def test_clip_reports_clipped_values():
    x = np.array([[1.0, 1.0, 1.0, 30.0]])  # mean|x| = 8.25, vth = 2.75 -> counts [0,0,0,11]
    res = E.spike_counts(x, k=3.0, clip=("bitwise-signed", 3))
    assert res.counts.tolist() == [[0, 0, 0, 7]] and res.n_clipped == 1
    clipped, n = E.clip_counts(np.array([-9, 3, 8]), "bitwise-twos", 4)
    assert clipped.tolist() == [-8, 3, 7] and n == 2


# ---------------------------------------------------------------- errors


@pytest.mark.parametrize(
    "counts, scheme, T, match",
    [
        (np.array([1.5]), "ternary", None, "integer-valued"),
        (np.array([np.nan]), "ternary", None, "non-finite"),
        (np.array([np.inf]), "bitwise", None, "non-finite"),
        (np.array([-1]), "binary", None, "non-negative"),
        (np.array([-1]), "bitwise", None, "non-negative"),
        (np.array([9]), "bitwise", 3, r"value 9 .* needs T >= 4"),
        (np.array([-9]), "bitwise-twos", 4, r"value -9 .* needs T >= 5"),
        (np.array([4]), "ternary", 3, r"needs T >= 4"),
        (np.array([1]), "quaternary", None, "unknown scheme"),
        (np.array([1]), "bitwise", -1, "non-negative integer"),
        (np.array([1]), "bitwise", 2.5, "non-negative integer"),
    ],
)
def test_encode_errors(counts, scheme, T, match):
    with pytest.raises(ValueError, match=match):
        E.encode(counts, scheme, T=T)


def test_type_errors():
    with pytest.raises(TypeError, match="numeric"):
        E.encode(np.array(["a"]), "binary")
    with pytest.raises(TypeError, match="integer"):
        E.encode(np.array([True]), "binary")
    with pytest.raises(TypeError, match="numpy array or a torch tensor"):
        E.encode([1, 2], "binary")
    with pytest.raises(TypeError):
        E.spike_counts(np.ones((2, 3)), k="3")


def test_decode_and_event_errors():
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        E.decode(np.array([[-1]], dtype=np.int8), "bitwise")
    with pytest.raises(ValueError, match="leading time axis"):
        E.decode(np.array(1, dtype=np.int8), "binary")
    with pytest.raises(ValueError, match="NaN or inf"):
        E.spike_counts(np.array([[1.0, np.nan]]))
    with pytest.raises(ValueError, match="positive"):
        E.spike_counts(np.ones((2, 3)), k=0)
    ev = E.to_events(np.array([[1, 0]], dtype=np.int8))
    bad = E.SpikeEvents(ev.step + 5, ev.index, ev.polarity, ev.shape, ev.T)
    with pytest.raises(ValueError, match="step outside"):
        E.from_events(bad)
    with pytest.raises(ValueError, match=r"\{-1, 0, 1\}"):
        E.to_events(np.array([[2]], dtype=np.int8))


def test_events_records_and_multi_index():
    s = E.encode(np.array([[3, -2], [0, 1]]), "ternary")
    ev = E.to_events(s)
    assert len(ev) == int(np.abs(s).sum())
    tok, ch = ev.multi_index()
    assert tok.tolist() == [0, 0, 1, 0, 0, 0] and ch.tolist() == [0, 1, 1, 0, 1, 0]
    rec = ev.to_records()
    assert rec.dtype == E.EVENT_DTYPE and rec["polarity"].tolist() == ev.polarity.tolist()


def test_packed_is_one_bit_per_slot():
    s = E.encode(np.random.default_rng(0).integers(0, 16, size=(64, 128)), "bitwise")
    p = E.pack_spikes(s)
    assert p.sign is None and p.nbytes == s.size // 8
