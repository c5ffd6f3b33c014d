"""encoders.code: the Scheme registry is the one place scheme facts live."""
from __future__ import annotations

import ast
from pathlib import Path

import numpy as np
import pytest

import encoders as E
from encoders.code import REGISTRY, SpikeCode, get_scheme

ROOT = Path(__file__).resolve().parents[1]
PACKAGES = ("encoders", "hw_models", "neurosim", "analysis")


def test_old_name_sets_match_properties():
    # issue 16 added bitwise-naf and graded after the five Int2Spike schemes (order kept)
    assert E.SCHEMES == ("binary", "ternary", "bitwise", "bitwise-signed", "bitwise-twos", "bitwise-naf", "graded")
    assert E.SIGNED == {"ternary", "bitwise-signed", "bitwise-twos", "bitwise-naf", "graded"}
    assert E.BITWISE == {"bitwise", "bitwise-signed", "bitwise-twos", "bitwise-naf"}
    assert E.BIPOLAR == {"ternary", "bitwise-signed", "bitwise-naf", "graded"}
    assert {s.name for s in REGISTRY.values() if s.needs_sign_split} == {"binary", "bitwise"}
    assert {s.name for s in REGISTRY.values() if s.rate} == {"binary", "ternary"}
    assert get_scheme("binary").signed_twin == "ternary" and get_scheme("bitwise").signed_twin == "bitwise-signed"
    assert [s.wire_id for s in REGISTRY.values()] == [0, 1, 2, 3, 4, 5, 6]  # file-format ids never change
    assert {n: s.budget for n, s in REGISTRY.items()} == {
        "binary": 7, "ternary": 7, "bitwise": 3, "bitwise-signed": 3, "bitwise-twos": 4, "bitwise-naf": 4,
        "graded": 1}


@pytest.mark.parametrize("name", list(REGISTRY))
def test_scheme_methods_agree_with_encoder(name):
    sch = get_scheme(name)
    for T in range(0, 6):
        lo, hi = sch.count_range(T)
        assert (lo, hi) == E.count_range(name, T)
        if T:
            vals = np.arange(lo, hi + 1)
            train = E.encode(vals, name, T=T)
            assert np.array_equal(sch.step_weights(T) @ train.astype(np.int64), vals)
            assert np.array_equal(sch.events(vals, T), np.count_nonzero(train, axis=0))
            assert max(sch.steps_for_value(v) for v in vals) <= T


def test_spike_code_validates_once():
    code = SpikeCode("bitwise-twos", 4, "lsb")
    assert code.scheme is get_scheme("bitwise-twos") and code.count_range() == (-8, 7)
    assert code.step_weights().tolist() == [1, 2, 4, -8]
    with pytest.raises(ValueError, match="bit_order"):
        SpikeCode("bitwise", 3, "middle")
    with pytest.raises(ValueError, match="T must be a non-negative integer"):
        SpikeCode("ternary", -1)
    with pytest.raises(ValueError, match="exceeds 64 steps"):
        SpikeCode("bitwise", 65)
    with pytest.raises(ValueError, match="unknown scheme 'nope'"):
        get_scheme("nope")


def _string_constants(path: Path) -> set[str]:
    return {n.value for n in ast.walk(ast.parse(path.read_text())) if isinstance(n, ast.Constant) and isinstance(n.value, str)}


def test_scheme_names_spelled_in_few_package_files():
    """A scheme's name is a string literal in at most three package files (encoders + defaults)."""
    files = [p for pkg in PACKAGES for p in (ROOT / pkg).rglob("*.py")]
    consts = {p: _string_constants(p) for p in files}
    for name in REGISTRY:
        where = sorted(str(p.relative_to(ROOT)) for p, c in consts.items() if name in c)
        assert len(where) <= 3, (name, where)
        assert "encoders/code.py" in where
