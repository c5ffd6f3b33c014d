"""Encoder comparison: events, steps and clipping per scheme checked against the encoders."""
from __future__ import annotations

import h5py
import numpy as np
import pytest

import encoders as E
from analysis.compare import comparison_markdown, comparison_to_hdf5, compare_encoders
from analysis.stats import DEFAULT_BUDGETS, SpikeStats

SIGN_SPLIT = ("binary", "bitwise")


def _layers():
    rng = np.random.default_rng(11)
    a = np.round(rng.laplace(scale=2.0, size=(20, 48))).astype(np.int16)
    a[2, 3] = -40  # widens ternary and two's complement T for layer a
    b = np.round(rng.normal(scale=1.0, size=(30, 16))).astype(np.int16)  # another token count
    return {"model.layers.0.mlp.up_proj": a, "model.layers.0.mlp.down_proj": b}


def _stats(layers):
    st = SpikeStats()
    for name, c in layers.items():
        st.update(name, None, c)
    return st


def _lossless(c, scheme):
    data = np.abs(c) if scheme in SIGN_SPLIT else c
    train = E.encode(data, scheme)
    return train.shape[0], int(np.count_nonzero(train))  # events (graded: one per non-zero payload)


def _at_budget(c, scheme, T):
    lo, hi = E.count_range(scheme, T)
    lo = -hi if scheme in SIGN_SPLIT else lo
    clipped = np.clip(c.astype(np.int64), lo, hi)
    data = np.abs(clipped) if scheme in SIGN_SPLIT else clipped
    return int(np.count_nonzero(E.encode(data, scheme, T=T))), int((clipped != c).sum())


@pytest.mark.parametrize("scheme", E.SCHEMES)
def test_model_row_sums_layers_each_at_its_own_int2spike_T(scheme):
    layers = _layers()
    row = {r["scheme"]: r for r in compare_encoders(_stats(layers))}[scheme]
    Ts, evs = zip(*(_lossless(c, scheme) for c in layers.values()))
    lines = 2 if scheme in SIGN_SPLIT else 1
    assert row["steps_needed"] == max(Ts) and row["steps_needed_min"] == min(Ts)
    assert row["events"] == sum(evs)
    assert row["events_per_token"] == pytest.approx(sum(e / c.shape[0] for e, c in zip(evs, layers.values())))
    slots = sum(lines * c.size * T for c, T in zip(layers.values(), Ts))
    assert row["sparsity"] == pytest.approx(1 - sum(evs) / slots)
    B = DEFAULT_BUDGETS[scheme]
    ev_b, clip_b = zip(*(_at_budget(c, scheme, B) for c in layers.values()))
    assert row["budget_steps"] == B
    assert row["events_at_budget"] == sum(ev_b)
    assert row["clipped_at_budget"] == sum(clip_b)
    values = sum(c.size for c in layers.values())
    assert row["sparsity_at_budget"] == pytest.approx(1 - sum(ev_b) / (lines * values * B))
    assert sum(row["firing_rate_per_step"]) * lines * values == pytest.approx(sum(ev_b))


def test_signed_and_sign_split_twins_send_the_same_events_on_twice_the_lines():
    rows = {r["scheme"]: r for r in compare_encoders(_stats(_layers()))}
    for split, signed in (("binary", "ternary"), ("bitwise", "bitwise-signed")):
        assert rows[split]["events"] == rows[signed]["events"]
        assert rows[split]["lines_per_channel"] == 2 and rows[signed]["lines_per_channel"] == 1
        assert rows[split]["sparsity_at_budget"] > rows[signed]["sparsity_at_budget"]
    # bitwise needs log2 steps, unit codes need |s| steps; bitwise sends fewer spikes losslessly
    assert rows["bitwise-signed"]["steps_needed"] == 6 and rows["ternary"]["steps_needed"] == 40
    assert rows["bitwise-signed"]["events"] < rows["ternary"]["events"]


def test_budgets_and_bit_order():
    st = _stats(_layers())
    msb = {r["scheme"]: r for r in compare_encoders(st, budgets={"bitwise-signed": 2})}
    lsb = {r["scheme"]: r for r in compare_encoders(st, budgets={"bitwise-signed": 2}, bit_order="lsb")}
    assert msb["bitwise-signed"]["budget_steps"] == 2 and msb["bitwise-signed"]["budget_range"] == "[-3, 3]"
    assert msb["ternary"]["budget_steps"] == DEFAULT_BUDGETS["ternary"]
    for s in E.BITWISE:  # same events, steps reversed
        assert lsb[s]["events_at_budget"] == msb[s]["events_at_budget"]
        assert lsb[s]["firing_rate_per_step"] == msb[s]["firing_rate_per_step"][::-1]
        assert msb[s]["bit_order"].startswith("MSB first") and lsb[s]["bit_order"].startswith("LSB first")
    assert msb["ternary"]["bit_order"].startswith("n/a")
    with pytest.raises(ValueError, match="bit_order"):
        compare_encoders(st, bit_order="middle")
    with pytest.raises(ValueError, match="unknown scheme"):
        compare_encoders(st, schemes=("morse",))
    with pytest.raises(ValueError, match="exact statistics"):
        compare_encoders(st, budgets={"bitwise": 12})
    with pytest.raises(ValueError, match="empty"):
        compare_encoders(SpikeStats())


def test_counts_array_and_per_layer_rows_and_outputs(tmp_path):
    layers = _layers()
    c = next(iter(layers.values()))
    rows = compare_encoders(c)
    assert [r["scheme"] for r in rows] == list(E.SCHEMES)
    assert rows[3]["events"] == _lossless(c, "bitwise-signed")[1]
    per = compare_encoders(_stats(layers), per_layer=True)
    assert len(per) == 2 * len(E.SCHEMES)
    assert {r["layer"] for r in per} == set(layers)
    md = comparison_markdown(rows)
    assert md.count("\n") == 1 + len(rows) and "| bitwise-twos |" in md
    assert comparison_markdown(per).startswith("| layer |")
    with h5py.File(tmp_path / "c.h5", "w") as f:
        comparison_to_hdf5(f.create_group("encoders"), rows)
    with h5py.File(tmp_path / "c.h5", "r") as f:
        g = f["encoders/bitwise-twos"]
        assert g.attrs["events"] == rows[4]["events"]
        np.testing.assert_allclose(g["firing_rate_per_step"][()], rows[4]["firing_rate_per_step"])
        assert "| scheme |" in f["encoders"].attrs["table_markdown"]
