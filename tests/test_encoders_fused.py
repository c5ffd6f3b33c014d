"""Fused numba encode/decode (encoders._fused) equal the numpy step loops bit for bit."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import encoders as E
from encoders import _fused
from encoders._kernels import NUMPY, decode_steps, encode_steps

pytestmark = pytest.mark.skipif(not _fused.available(), reason="numba not installed")
DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8]


@settings(max_examples=150, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.lists(st.integers(0, 9), min_size=1, max_size=3),
    scheme=st.sampled_from([s for s in E.SCHEMES if _fused.covers(E.get_scheme(s))]),
    T=st.integers(0, 63),
    msb=st.booleans(),
    dtype=st.sampled_from(DTYPES),
)
def test_encode_decode_equal_the_reference(seed, shape, scheme, T, msb, dtype):
    rng = np.random.default_rng(seed)
    if scheme in ("binary", "ternary"):
        T = min(T, 20)
    if scheme == "bitwise-twos" and T == 0:
        T = 1
    lo, hi = E.count_range(scheme, T)
    info = np.iinfo(dtype)
    lo, hi = max(lo, int(info.min)), min(hi, int(info.max))
    c = rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64).astype(dtype)
    ref = encode_steps(NUMPY, c.astype(np.int64), E.get_scheme(scheme), T, msb)
    got = _fused.encode_fused(c, E.get_scheme(scheme), T, msb)
    assert got.dtype == np.int8 and got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)
    if T <= 62:
        w = E.step_weights(scheme, T, "msb" if msb else "lsb")
        back = _fused.decode_fused(got, w, -1 if scheme in E.BIPOLAR else 0, np.int64)
        np.testing.assert_array_equal(back, decode_steps(NUMPY, ref, E.get_scheme(scheme), msb, np.int64))
        np.testing.assert_array_equal(back, c.astype(np.int64))


def test_decode_flags_bad_values():
    s = np.zeros((3, 100), np.int8)
    s[1, 7] = -1
    assert _fused.decode_fused(s, E.step_weights("bitwise", 3), 0, np.int64) is None
    s[1, 7] = 2
    assert _fused.decode_fused(s, E.step_weights("ternary", 3), -1, np.int64) is None


@pytest.mark.parametrize("scheme", [s for s in E.SCHEMES if _fused.covers(E.get_scheme(s))])
def test_public_api_uses_the_fused_path_and_agrees(scheme, monkeypatch):
    """Arrays above the size threshold go through the kernels; results equal the step loop."""
    rng = np.random.default_rng(1)
    lo = -7 if scheme in E.SIGNED else 0
    c = rng.integers(lo, 8, size=(40, 2000)).astype(np.int16)
    fast = E.encode(c, scheme)
    fast_back = E.decode(fast, scheme, dtype=np.int64)
    monkeypatch.setattr(_fused, "MIN_ELEMENTS", 1 << 62)  # force the reference path
    np.testing.assert_array_equal(fast, E.encode(c, scheme))
    np.testing.assert_array_equal(fast_back, E.decode(fast, scheme, dtype=np.int64))
    np.testing.assert_array_equal(fast_back, c)
    bad = fast.copy()
    bad[0, 0, 0] = 2
    monkeypatch.setattr(_fused, "MIN_ELEMENTS", 1)
    with pytest.raises(ValueError, match="must lie in"):
        E.decode(bad, scheme)
    t = torch.from_numpy(c)
    assert torch.equal(E.decode(E.encode(t, scheme), scheme, dtype=torch.int64), t.long())
