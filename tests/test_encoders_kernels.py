"""CPU kernels over every scheme (graded and sign-split lines too) and ``out=`` buffers:
the public encode/decode give the same trains, counts and errors on the kernel path
(numba) as on the reference step loops."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import encoders as E
from encoders import _fused, _modes
from encoders._kernels import NUMPY, encode_steps

pytestmark = pytest.mark.skipif(not _fused.available(), reason="numba not installed")
DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8]


def reference_train(c: np.ndarray, scheme: str, T: int, msb: bool) -> np.ndarray:
    sch = E.get_scheme(scheme)
    if sch.graded:
        out = np.zeros((T,) + c.shape, np.int8)
        if T:
            out[0] = c
        return out
    return encode_steps(NUMPY, c.astype(np.int64).reshape(-1), sch, T, msb).reshape((T,) + c.shape)


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.lists(st.integers(0, 40), min_size=0, max_size=3),
    scheme=st.sampled_from(list(E.SCHEMES)),
    T=st.integers(0, 64),
    msb=st.booleans(),
    dtype=st.sampled_from(DTYPES),
    sign_split=st.booleans(),
)
def test_numba_kernels_equal_the_reference(seed, shape, scheme, T, msb, dtype, sign_split):
    """Every scheme, dtype, bit order, shape (empty and 0-d too); counts on both window edges
    (where clipped counts sit); an unsigned scheme's sign-split lines (|s| of each sign)."""
    sch = E.get_scheme(scheme)
    T = min(T, 20) if sch.rate else min(T, 3) if sch.graded else T
    if sch.twos and T == 0:
        T = 1
    lo, hi = sch.count_range(T)
    info = np.iinfo(dtype)
    lo, hi = max(lo, int(info.min), -(2**62)), min(hi, int(info.max), 2**62)
    if sign_split and not sch.signed:
        lo = 0
    rng = np.random.default_rng(seed)
    c = rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64)
    if c.size >= 2:
        c.flat[0], c.flat[-1] = lo, hi
    c = c.astype(dtype)
    got = _fused.encode_fused(c, sch, T, msb)
    np.testing.assert_array_equal(got, reference_train(c, scheme, T, msb))
    buf = np.full(got.shape, 7, np.int8)
    assert _fused.encode_fused(c, sch, T, msb, out=buf) is buf
    np.testing.assert_array_equal(buf, got)
    if T <= 62:
        w = np.ones(T, np.int64) if sch.graded else sch.step_weights(T, "msb" if msb else "lsb")
        back = _fused.decode_fused(got, w, sch.spike_values[0], np.int64, sch.spike_values[1])
        np.testing.assert_array_equal(back, c.astype(np.int64))
    again, lo, hi = _fused.encode_fused(c, sch, T, msb, extremes=True)  # the range found while encoding
    np.testing.assert_array_equal(again, got)
    assert (lo, hi) == ((int(c.min()), int(c.max())) if c.size else (0, 0))
    if c.size:
        assert _fused.extremes(c) == (int(c.min()), int(c.max()))


def test_decode_flags_values_outside_the_allowed_range():
    s = np.zeros((2, 70000), np.int8)
    w = np.ones(2, np.int64)
    s[1, 69999] = -128
    assert _fused.decode_fused(s, w, -127, np.int64, 127) is None
    s[1, 69999] = 127
    assert _fused.decode_fused(s, w, -127, np.int64, 127) is not None
    assert _fused.decode_fused(s, w, -1, np.int64, 1) is None


def _counts(scheme: str, n: int = 70000, kind: str = "numpy"):
    rng = np.random.default_rng(5)
    sch = E.get_scheme(scheme)
    c = rng.integers(-7 if sch.signed else 0, 8, size=(7, n // 7)).astype(np.int16)
    return torch.from_numpy(c) if kind == "torch" else c


@pytest.mark.parametrize("kind", ["numpy", "torch"])
@pytest.mark.parametrize("scheme", list(E.SCHEMES))
@pytest.mark.parametrize("min_elements", [1, 1 << 62])  # kernel path, reference path
def test_out_buffers_receive_what_fresh_calls_return(scheme, kind, min_elements, monkeypatch):
    monkeypatch.setattr(_fused, "MIN_ELEMENTS", min_elements)
    c = _counts(scheme, kind=kind)
    fresh = E.encode(c, scheme, bit_order="lsb")
    fresh_back = E.decode(fresh, scheme, "lsb")
    train = np.full(fresh.shape, 5, np.int8) if kind == "numpy" else torch.full(fresh.shape, 5, dtype=torch.int8)
    back = np.empty_like(fresh_back) if kind == "numpy" else torch.empty_like(fresh_back)
    assert E.encode(c, scheme, bit_order="lsb", out=train) is train
    assert E.decode(train, scheme, "lsb", out=back) is back
    np.testing.assert_array_equal(np.asarray(train), np.asarray(fresh))
    np.testing.assert_array_equal(np.asarray(back), np.asarray(fresh_back))
    wide = np.empty(fresh_back.shape, np.int64) if kind == "numpy" else torch.empty(fresh_back.shape, dtype=torch.int64)
    assert E.decode(train, scheme, "lsb", dtype=np.int64 if kind == "numpy" else torch.int64, out=wide) is wide
    np.testing.assert_array_equal(np.asarray(wide), np.asarray(c).astype(np.int64))


@pytest.mark.parametrize("scheme", list(E.SCHEMES))
def test_kernel_and_reference_paths_agree_through_the_public_api(scheme, monkeypatch):
    """Same trains, counts, dtypes and errors (bad spike values, too small a T, negative
    counts for an unsigned scheme) on both paths."""
    c = _counts(scheme)
    results, errors = [], []
    for min_elements in (1, 1 << 62):
        monkeypatch.setattr(_fused, "MIN_ELEMENTS", min_elements)
        train = E.encode(c, scheme)
        back = E.decode(train, scheme)
        results.append((train, back))
        bad = train.copy()
        bad[0, 0, 0] = -128 if E.get_scheme(scheme).graded else 2
        found = []
        calls = [lambda: E.decode(bad, scheme), lambda: E.encode(c * 40, scheme, T=2),
                 lambda: E.encode(c + 0.5, scheme), lambda: E.encode(np.where(c == 0, np.nan, c), scheme)]
        if not E.get_scheme(scheme).signed:
            calls.append(lambda: E.encode(c - 9, scheme))
        for call in calls:
            with pytest.raises(ValueError) as info:
                call()
            found.append(str(info.value))
        errors.append(found)
    (t1, b1), (t2, b2) = results
    assert t1.dtype == t2.dtype and b1.dtype == b2.dtype
    np.testing.assert_array_equal(t1, t2)
    np.testing.assert_array_equal(b1, b2)
    assert errors[0] == errors[1]


def test_out_errors_are_clear():
    c = _counts("bitwise-signed")
    train = E.encode(c, "bitwise-signed")
    with pytest.raises(TypeError, match="out must be a numpy array"):
        E.encode(c, "bitwise-signed", out=torch.from_numpy(train))
    with pytest.raises(ValueError, match="out has shape"):
        E.encode(c, "bitwise-signed", out=train[:2])
    with pytest.raises(TypeError, match="out has dtype"):
        E.encode(c, "bitwise-signed", out=train.astype(np.int16))
    with pytest.raises(ValueError, match="C-contiguous"):
        E.encode(c, "bitwise-signed", out=np.empty(train.shape[::-1], np.int8).T)
    ro = train.copy()
    ro.flags.writeable = False
    with pytest.raises(ValueError, match="read-only"):
        E.encode(c, "bitwise-signed", out=ro)
    with pytest.raises(TypeError, match="out has dtype"):
        E.decode(train, "bitwise-signed", out=np.empty(c.shape, np.int64))
    with pytest.raises(ValueError, match="out has shape"):
        E.decode(train, "bitwise-signed", out=np.empty(c.shape[::-1], np.int8))
    with pytest.raises(TypeError, match="out must be a torch tensor"):
        E.decode(torch.from_numpy(train), "bitwise-signed", out=np.empty(c.shape, np.int8))


def test_every_scheme_has_a_kernel_mode():
    for scheme in E.SCHEMES:
        assert _modes.mode_for(E.get_scheme(scheme)) is not None
    assert _modes.mode_for(E.get_scheme("graded").with_payload_bits(16)) is None


@pytest.mark.parametrize("scheme", list(E.SCHEMES))
def test_one_pass_range_check_raises_what_the_separate_check_raises(scheme, monkeypatch):
    """With T given (or graded), the kernel finds the counts' range while encoding and the
    checks run after it: every error, and which of several comes first, is unchanged."""
    c = _counts(scheme)
    big = c.astype(np.int64)
    big[3, 5] = 2**62 + 1
    bad_out = np.empty((3,) + c.shape, np.int16)
    right = E.encode(c, scheme)
    cases = [(c * 40, {"T": 2}), (c - 9, {"T": 8}), (big, {"T": 5}), (c - 9, {"T": -1}), (c - 9, {"T": 2.5}),
             (c - 9, {"T": True}), (c * 40, {"T": 3, "out": bad_out}), (c, {"T": 3, "out": bad_out}),
             (c * 9, {"T": 70}), (c * 40, {"T": 4, "max_bytes": 10}), (c * 40, {}),
             # T left to the data, out given: its leading dimension is taken, then confirmed
             (c, {"out": np.empty((9,) + c.shape, np.int8)}), (c, {"out": np.empty(right.shape, np.int8)}),
             (c - 9, {"out": np.empty(right.shape, np.int8)}), (c * 40, {"out": np.empty(right.shape, np.int8)}),
             (c * 40, {"out": np.empty((70,) + c.shape, np.int8)})]
    outcomes = []
    for min_elements in (1, 1 << 62):
        monkeypatch.setattr(_fused, "MIN_ELEMENTS", min_elements)
        found = []
        for counts, kw in cases:
            try:
                res = E.encode(counts, scheme, **kw)
                found.append(("ok", res.shape, res.tobytes()))
            except (TypeError, ValueError) as e:
                found.append((type(e).__name__, str(e)))
        outcomes.append(found)
    assert outcomes[0] == outcomes[1]
    assert any(o[0] == "ValueError" for o in outcomes[0])
