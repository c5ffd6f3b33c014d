"""Issue 16 codes: bitwise-naf (non-adjacent form) and graded spikes, in the encoders."""
from __future__ import annotations

import math

import numpy as np
import pytest
from hypothesis import given, settings
from hypothesis import strategies as st

import encoders as E

ints = st.integers(-(2**40), 2**40)


@settings(max_examples=300, deadline=None)
@given(n=ints)
def test_naf_property_roundtrip_and_fewer_spikes(n):
    T = E.steps_for_value("bitwise-naf", n)
    assert T <= math.ceil(math.log2(abs(n) + 1)) + 1  # the T rule's upper bound
    train = E.encode(np.array([n]), "bitwise-naf", T=T)[:, 0].astype(np.int64)
    assert set(train.tolist()) <= {-1, 0, 1}
    nz = train != 0
    assert not np.any(nz[1:] & nz[:-1]), train  # no two adjacent non-zero digits
    assert T == 0 or train[0] != 0  # T is exact: the MSB digit is used
    assert int(E.decode(train[:, None], "bitwise-naf", dtype=np.int64)[0]) == n
    signed = int(np.count_nonzero(E.encode(np.array([n]), "bitwise-signed")))
    assert int(nz.sum()) <= signed  # never more spikes than sign-magnitude
    assert int(E.get_scheme("bitwise-naf").events(np.array([n]), T)[0]) == int(nz.sum())


def test_naf_budget_carries_minus7_to_7():
    sch = E.get_scheme("bitwise-naf")
    assert sch.budget == 4 and sch.count_range(4) == (-10, 10) and sch.count_range(3) == (-5, 5)
    assert E.encode(np.array([7]), "bitwise-naf", T=4)[:, 0].tolist() == [1, 0, 0, -1]  # 100-1
    assert E.steps_for_value("bitwise-naf", 7) == 4 and E.steps_for_value("bitwise-naf", 5) == 3
    with pytest.raises(ValueError, match="needs T >= 4"):
        E.encode(np.array([6]), "bitwise-naf", T=3)


@settings(max_examples=50, deadline=None)
@given(c=st.lists(st.integers(-127, 127), min_size=1, max_size=30), order=st.sampled_from(["msb", "lsb"]))
def test_naf_lsb_is_msb_reversed(c, order):
    a = np.array(c)
    msb = E.encode(a, "bitwise-naf", T=8)
    lsb = E.encode(a, "bitwise-naf", T=8, bit_order="lsb")
    assert np.array_equal(msb[::-1], lsb)
    assert np.array_equal(E.decode(E.encode(a, "bitwise-naf", T=8, bit_order=order), "bitwise-naf", order), a)


@settings(max_examples=100, deadline=None)
@given(c=st.lists(st.integers(-127, 127), min_size=0, max_size=30))
def test_graded_one_event_per_nonzero_count(c):
    a = np.array(c, dtype=np.int64).reshape(-1, 1)
    train = E.encode(a, "graded")
    assert train.shape == (1,) + a.shape
    assert np.array_equal(train[0], a)  # the payload is the count
    assert np.array_equal(E.decode(train, "graded"), a)
    assert int(np.count_nonzero(train)) == int(E.get_scheme("graded").events(a, 1).sum())


def test_graded_payload_bits_and_errors():
    g = E.get_scheme("graded")
    assert g.payload_bits == 8 and g.count_range(1) == (-127, 127) and g.count_range(0) == (0, 0)
    g16 = g.with_payload_bits(16)
    assert g16.count_range(1) == (-32767, 32767)
    assert E.encode(np.array([1000]), g16.name if False else g16)[0, 0] == 1000
    assert E.encode(np.array([1000]), g16).dtype == np.int16
    with pytest.raises(ValueError, match="8-bit payload"):
        E.encode(np.array([128]), "graded")
    assert E.encode(np.array([-5, 3]), "graded", T=3).tolist() == [[-5, 3], [0, 0], [0, 0]]  # T > 1: silent tail
    with pytest.raises(ValueError, match="payload_bits"):
        g.with_payload_bits(40)
    with pytest.raises(ValueError, match="only graded"):
        E.get_scheme("ternary").with_payload_bits(8)
