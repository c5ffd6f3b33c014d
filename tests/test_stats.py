"""Spike statistics: report definitions checked against the encoders, exact merges, HDF5."""
from __future__ import annotations

import pickle

import h5py
import numpy as np
import pytest
import torch

import encoders as E
from analysis import stats as S
from analysis.stats import SpikeStats, read_stats, write_stats

SIGN_SPLIT = ("binary", "bitwise")


def _counts(seed: int = 0, rows: int = 40, cols: int = 96, big: bool = True) -> np.ndarray:
    """Laplace-like counts with a long tail, a never-firing channel and (optionally) |s| > 1023."""
    rng = np.random.default_rng(seed)
    c = np.round(rng.laplace(scale=2.5, size=(rows, cols))).astype(np.int16)
    c[:, 5] = 0  # never fires
    if big:
        c[3, 7], c[4, 8], c[5, 9], c[6, 10] = 5000, -4096, -1024, 1024
    return c


def _brute_spikes(c: np.ndarray, scheme: str, T: int, bit_order: str = "msb") -> np.ndarray:
    """Dense train of the counts clipped to the window, via the encoders (sign-split: |s|)."""
    lo, hi = E.count_range(scheme, T)
    if scheme in SIGN_SPLIT:
        v = np.minimum(np.abs(c.astype(np.int64)), hi)
    else:
        v = np.clip(c.astype(np.int64), lo, hi)
    return np.abs(E.encode(v, scheme, T=T, bit_order=bit_order)).astype(np.int64)


WINDOWS = [("binary", 7), ("ternary", 7), ("ternary", 2), ("bitwise", 3), ("bitwise-signed", 3),
           ("bitwise-signed", 5), ("bitwise-twos", 4), ("bitwise-twos", 2), ("bitwise-twos", 10)]


@pytest.mark.parametrize("scheme, T", WINDOWS)
def test_window_spikes_and_per_step_rates_match_encoded_trains(scheme, T):
    c = _counts()
    st = SpikeStats().update_trace([("layer", c, None)], progress=False).group()
    for order in ("msb", "lsb"):
        train = _brute_spikes(c, scheme, T, order)
        assert st.window_events(scheme, T) == train.sum()
        np.testing.assert_array_equal(st.events_per_step(scheme, T, order), train.sum(axis=(1, 2)))
    lines = 2 if scheme in SIGN_SPLIT else 1
    assert st.sparsity(scheme, T) == pytest.approx(1 - train.sum() / (lines * c.size * T), abs=1e-15)
    lo, hi = E.count_range(scheme, T)
    lo = -hi if scheme in SIGN_SPLIT else lo
    assert st.clipped(scheme, T) == int(((c < lo) | (c > hi)).sum())


@pytest.mark.parametrize("scheme", E.SCHEMES)
def test_lossless_events_and_steps_needed_match_int2spike_default(scheme):
    c = _counts()
    st = SpikeStats().update_trace([("layer", c, None)], progress=False).group()
    data = np.abs(c) if scheme in SIGN_SPLIT else c
    if E.get_scheme(scheme).graded:  # payloads beyond the bits are clipped: still one event per non-zero count
        data = np.clip(data, *E.count_range(scheme, 1))
    train = E.encode(data, scheme)  # Int2Spike default T, lossless
    assert st.steps_needed(scheme) == train.shape[0]
    assert st.lossless_events(scheme) == int(np.count_nonzero(train))
    if scheme == "bitwise-twos":  # a wider window sign-extends negatives: more events
        wide = E.encode(c, scheme, T=train.shape[0] + 3)
        assert st.lossless_events(scheme, train.shape[0] + 3) == int(wide.astype(np.int64).sum())


@pytest.mark.parametrize("scheme", E.SCHEMES)
def test_steps_histogram_matches_steps_for_value(scheme):
    c = _counts(rows=12, cols=40)
    st = SpikeStats().update_trace([("layer", c, None)], progress=False).group()
    need = np.array([E.steps_for_value(scheme, int(v)) for v in c.ravel()])
    edges, hist = st.steps_hist(scheme)
    assert hist.sum() == c.size
    if scheme in ("binary", "ternary"):  # exact up to 1023, then power-of-two bins
        bins = np.searchsorted(edges, need, side="right") - 1
    else:
        bins = need
    np.testing.assert_array_equal(hist, np.bincount(bins, minlength=len(hist)))


def test_report_definitions_on_known_counts():
    # one token, 8 channels; bitwise-signed T=3 spikes: 0,1,1,2,2,3,3,3 (-9 clipped to 7)
    c = np.array([[0, 1, -2, 3, -5, 7, -9, 20]], dtype=np.int16)
    st = SpikeStats()
    st.update("model.layers.0.self_attn.q_proj", None, c, np.array([0.25], np.float32))
    s = st.summary()
    assert s["silence"] == 1 / 8
    assert s["spikes_per_active_channel"] == 15 / 7
    assert s["sparsity"] == 1 - 15 / 24
    assert s["sparsity_identity"] == pytest.approx(s["sparsity"], abs=1e-15)
    assert s["frac_abs_le_7"] == 6 / 8
    assert s["frac_abs_gt_16"] == 1 / 8
    assert s["clipped_fraction"] == 2 / 8
    assert s["never_firing_channels"] == 1 and s["channels"] == 8
    assert s["max_abs_count"] == 20
    assert s["vth_mean"] == 0.25
    assert st.layers["model.layers.0.self_attn.q_proj"].role == "q"  # inferred from the name
    np.testing.assert_array_equal(st.group().firing_rate_per_step("bitwise-signed", 3),
                                  np.array([4, 5, 6]) / 8)  # MSB (4s), 2s, 1s


def test_identity_holds_on_random_counts_and_channels_weighting():
    rng = np.random.default_rng(3)
    st = SpikeStats()
    st.update("a", "up", np.round(rng.normal(0, 3, (30, 64))).astype(np.int16))
    st.update("b", "down", np.round(rng.normal(0, 1, (30, 256))).astype(np.int16))
    s = st.summary()
    assert s["sparsity_identity"] == pytest.approx(s["sparsity"], rel=1e-12)
    a, b = st.summary("a"), st.summary("b")
    # aggregated silence is weighted by channels (values), not averaged over layers
    expect = (a["silence"] * 64 + b["silence"] * 256) / 320
    assert s["silence"] == pytest.approx(expect, rel=1e-12)
    assert s["silence"] != pytest.approx((a["silence"] + b["silence"]) / 2, rel=1e-3)
    assert [r["scope"] for r in st.role_table()] == ["up", "down", "model"]


def test_per_token_silence_histogram_and_never_firing():
    c = np.zeros((4, 10), np.int16)
    c[0, :9] = 1  # 10 % silent
    c[1, :5] = -2  # 50 %
    c[3, :9] = 3  # 10 %; row 2 all silent -> 100 % goes to the last bin
    st = SpikeStats()
    st.update("x", "o", c)
    h = st.group().token_silence_hist
    assert h[10] == 2 and h[50] == 1 and h[99] == 1 and h.sum() == 4
    assert st.summary()["never_firing_channels"] == 1  # channel 9
    assert st.layers["x"].channel_active.tolist() == [3] * 5 + [2] * 4 + [0]
    assert st.summary()["token_silence_p50"] == 0.105  # median token: the 10 % bin


def test_never_firing_is_per_layer_then_summed():
    st = SpikeStats()
    st.update("l0", "q", np.array([[0, 1, 0], [0, 2, 0]]))
    st.update("l1", "k", np.array([[1, 0], [0, 0]]))
    assert st.summary()["never_firing_channels"] == 3
    assert st.summary("q")["never_firing_channels"] == 2
    st.update("l0", "q", np.array([[0, 0, 5]]))  # a later chunk makes channel 2 fire
    assert st.summary("q")["never_firing_channels"] == 1


def _chunked(c: np.ndarray, vth: np.ndarray, splits: list[int]) -> SpikeStats:
    out = SpikeStats()
    for part_c, part_v in zip(np.split(c, splits), np.split(vth, splits)):
        part = SpikeStats()
        part.update("model.layers.0.mlp.up_proj", None, part_c, part_v)
        part.update("model.layers.0.mlp.down_proj", None, -part_c[:, ::2], part_v * 3)
        out.merge(part)
    return out


def test_merge_of_chunks_equals_one_pass_exactly():
    c = _counts(seed=1, rows=64)
    vth = np.random.default_rng(2).lognormal(-2, 1.5, 64).astype(np.float32)
    one = _chunked(c, vth, [])
    for splits in ([10], [1, 2, 40], [63]):
        merged = _chunked(c, vth, splits)
        assert merged == one
        assert merged.summary() == one.summary()  # including the float V_th mean, bit for bit
    # merge is commutative and handles disjoint layers
    # (over separate prompts: pieces of one prompt merge exactly only in token order, issue 16)
    a, b = SpikeStats(), SpikeStats()
    a.update("x", "q", c[:20], prompt_starts=[0])
    b.update("y", "k", c[20:], prompt_starts=[0])
    b.update("x", "q", c[20:], prompt_starts=[0])
    ab, ba = SpikeStats().merge(a).merge(b), SpikeStats().merge(b).merge(a)
    assert ab.layers["x"] == ba.layers["x"] and ab.layers["y"] == ba.layers["y"]
    single = SpikeStats()
    single.update("x", "q", c, prompt_starts=[0, 20])
    assert ab.layers["x"] == single.layers["x"]


def test_merge_differs_when_data_differs():
    c = _counts(seed=1)
    a, b = SpikeStats(), SpikeStats()
    a.update("x", "q", c)
    c2 = c.copy()
    c2[0, 0] += 1
    b.update("x", "q", c2)
    assert a != b


def test_merge_rejects_mismatches_and_keeps_state():
    a = SpikeStats()
    a.update("x", "q", np.ones((2, 4), np.int16))
    before = SpikeStats().merge(a)
    b = SpikeStats()
    b.update("x", "q", np.ones((2, 5), np.int16))
    with pytest.raises(ValueError, match="channels"):
        a.merge(b)
    with pytest.raises(ValueError, match="window"):
        a.merge(SpikeStats(window=("ternary", 7)))
    with pytest.raises(TypeError):
        a.merge({"x": 1})
    assert a == before


@pytest.mark.parametrize(
    "counts, vth, err, match",
    [
        (np.ones(4, np.int16), None, ValueError, "2-D"),
        (np.array([[0.5, 1.0]]), None, ValueError, "integers"),
        (np.array([[True, False]]), None, TypeError, "integer dtype"),
        (np.ones((2, 3), np.int16), np.ones(3), ValueError, "token rows"),
        (np.ones((2, 3), np.int16), np.array([1.0, -1.0]), ValueError, "vth"),
        (np.ones((2, 3), np.int16), np.array([1.0, np.nan]), ValueError, "vth"),
        (np.zeros((2, 0), np.int16), None, ValueError, "no channels"),
        ([[1, 2]], None, TypeError, "numpy array"),
        (np.array([[2**40]], np.int64), None, ValueError, "exceeds"),
        (np.array([[1e30]]), None, ValueError, "exceeds"),
    ],
)
def test_bad_input_is_refused_and_loses_nothing(counts, vth, err, match):
    st = SpikeStats()
    st.update("x", "q", np.ones((2, 3), np.int16))
    before = SpikeStats().merge(st)
    with pytest.raises(err, match=match):
        st.update("x", "q", counts, vth)
    assert st == before


def test_bad_arguments():
    st = SpikeStats()
    with pytest.raises(TypeError, match="argument order"):
        st.update("x", np.ones((1, 2)), np.ones((1, 2)))
    with pytest.raises(ValueError, match="non-empty"):
        st.update("", "q", np.ones((1, 2), np.int16))
    with pytest.raises(ValueError, match="unknown scheme"):
        SpikeStats(window=("unary", 3))
    with pytest.raises(ValueError, match="exact statistics"):
        SpikeStats(window=("bitwise-signed", 11))
    st.update("x", "q", np.ones((1, 2), np.int16))
    with pytest.raises(ValueError, match="unknown scope"):
        st.summary("gate")
    with pytest.raises(ValueError, match="channels"):
        st.update("x", "q", np.ones((1, 3), np.int16))


def test_torch_and_small_int_inputs_give_the_same_stats():
    c = _counts(big=False)
    a, b, d = SpikeStats(), SpikeStats(), SpikeStats()
    a.update("x", "q", c)
    b.update("x", "q", torch.from_numpy(c.astype(np.int32)))
    d.update("x", "q", np.clip(c, -128, 127).astype(np.int8))
    assert a == b
    assert d.group().values == c.size


def test_vth_mean_is_exact_and_percentiles_follow_the_data():
    rng = np.random.default_rng(5)
    v = rng.lognormal(-3, 1.0, 5000).astype(np.float32)
    st = SpikeStats()
    st.update("x", "q", np.zeros((5000, 2), np.int16), v)
    g = st.group()
    assert g.vth_mean() == pytest.approx(float(np.sum(v.astype(np.float64))) / v.size, rel=1e-14)
    width = 10 ** (1 / S.VTH_BINS_PER_DECADE)  # one log bin
    for q in (5, 50, 95):
        ref = np.percentile(v, q)
        assert ref / width <= g.vth_percentile(q) <= ref * width
    assert g.vth_percentile(0) == pytest.approx(float(v.min()))
    assert g.vth_percentile(100) == pytest.approx(float(v.max()))
    assert g.vth_hist.sum() == 5000


def test_gaussian_and_laplace_activations_match_the_reference_sanity_values():
    # arXiv:2509.05276 sanity check: Gaussian k=3 -> about 0.954 of |s| <= 7, Laplace about 0.918
    rng = np.random.default_rng(7)
    for sample, expect in ((rng.normal(size=(400, 1024)), 0.954), (rng.laplace(size=(400, 1024)), 0.918)):
        counts, vth = E.spike_counts(sample.astype(np.float32), k=3)
        st = SpikeStats()
        st.update("x", "up", counts, vth)
        assert st.summary()["frac_abs_le_7"] == pytest.approx(expect, abs=0.004)


def test_hdf5_roundtrip_is_exact_and_documented(tmp_path):
    c = _counts(seed=4)
    st = SpikeStats()
    st.update("model.layers.0.self_attn.q_proj", None, c, np.full(c.shape[0], 0.1, np.float32))
    st.update("model.layers.0.mlp.down_proj", None, c[:, :50] * 3, np.full(c.shape[0], 7.0, np.float32))
    st.update("odd/name %", "other", c[:2, :3])  # escaped as an HDF5 key, name kept exactly
    path = tmp_path / "stats.h5"
    assert write_stats(None, st, out=path) == path
    back = read_stats(path)
    assert back == st
    assert back.summary() == st.summary()
    with h5py.File(path, "r") as f:
        g = f["stats"]
        assert g.attrs["window_scheme"] == "bitwise-signed" and g.attrs["window_steps"] == 3
        assert "silence" in g.attrs["definitions"]
        layers = g["layers"]
        assert [n.decode() for n in layers["name"][()]][:2] == ["model.layers.0.self_attn.q_proj",
                                                                "model.layers.0.mlp.down_proj"]
        assert layers["hist"].shape == (3, 2 * S.EXACT_MAX + 1) and layers["hist"].attrs["units"] == "values"
        assert layers["role"][0] == b"q"
        np.testing.assert_array_equal(layers["hist"][0], st.layers["model.layers.0.self_attn.q_proj"].state.hist)
        assert g["layer_table"]["silence"][1] == pytest.approx(st.summary("model.layers.0.mlp.down_proj")["silence"])
        assert g["model"].attrs["silence"] == pytest.approx(st.summary()["silence"])
        assert set(g["roles"].keys()) == {"q", "down", "other"}
        assert g["encoders/bitwise-signed"].attrs["events"] > 0
    assert not [p for p in tmp_path.iterdir() if p.name.endswith(".tmp")]


def test_write_stats_refuses_to_overwrite_and_leaves_file_intact(tmp_path):
    st = SpikeStats()
    st.update("x", "q", np.ones((2, 3), np.int16))
    path = tmp_path / "s.h5"
    write_stats(None, st, out=path)
    before = path.read_bytes()
    with pytest.raises(FileExistsError):
        write_stats(None, st, out=path)
    st2 = SpikeStats()
    st2.update("y", "k", np.zeros((2, 3), np.int16))
    write_stats(None, st2, out=path, overwrite=True)
    assert read_stats(path) == st2 and path.read_bytes() != before
    with pytest.raises(ValueError, match="no /stats"):
        with h5py.File(tmp_path / "empty.h5", "w"):
            pass
        read_stats(tmp_path / "empty.h5")
    with pytest.raises(ValueError, match="give a trace"):
        write_stats(None, st)


def test_interrupted_write_leaves_no_file(tmp_path, monkeypatch):
    st = SpikeStats()
    st.update("x", "q", np.ones((2, 3), np.int16))
    path = tmp_path / "s.h5"

    def boom(self, group):
        group.attrs["partial"] = 1
        raise RuntimeError("disk full")

    monkeypatch.setattr(SpikeStats, "to_hdf5", boom)
    with pytest.raises(RuntimeError):
        write_stats(None, st, out=path)
    assert list(tmp_path.iterdir()) == []


def test_from_hdf5_refuses_foreign_and_newer_groups(tmp_path):
    with h5py.File(tmp_path / "f.h5", "w") as f:
        g = f.create_group("stats")
        with pytest.raises(ValueError, match="no spike statistics"):
            SpikeStats.from_hdf5(g)
        g.attrs["stats_schema_version"] = S.STATS_SCHEMA_VERSION + 1
        with pytest.raises(ValueError, match="newer"):
            SpikeStats.from_hdf5(g)


# ----------------------------------------------------------------------------- real model


@pytest.mark.slow
def test_real_trace_statistics_match_direct_computation(smollm_trace, tmp_path):
    import shutil

    from analysis.trace import SpikeTrace

    st = SpikeStats.from_trace(smollm_trace, progress=False)
    assert list(st.layers) == smollm_trace.layers  # model order kept
    zeros = values = le7 = spikes = 0
    last = (None, 0)  # q/k/v and gate/up share their input array: encode it once
    for info, c, v in smollm_trace.iter_layers():
        ls = st.layers[info.name]
        assert (ls.role, ls.channels, ls.index) == (info.role, info.in_features, info.index)
        assert ls.state.rows == smollm_trace.n_tokens
        assert ls.state.vth_n == v.size
        zeros += int(np.count_nonzero(c == 0))
        values += c.size
        le7 += int(np.count_nonzero(np.abs(c) <= 7))
        if c is not last[0]:
            last = (c, int(np.count_nonzero(_brute_spikes(c, "bitwise-signed", 3))))
        spikes += last[1]
    s = st.summary()
    assert s["silence"] == zeros / values
    assert s["frac_abs_le_7"] == le7 / values
    assert s["sparsity"] == pytest.approx(1 - spikes / (3 * values), abs=1e-15)
    assert s["sparsity_identity"] == pytest.approx(s["sparsity"], abs=1e-12)
    # a real LLM: a silent minority, most counts small, a long tail past 16
    assert 0.05 < s["silence"] < 0.5 and s["frac_abs_le_7"] > 0.8 and s["max_abs_count"] > 16
    # token chunks merged == one pass, on real data
    half = smollm_trace.n_tokens // 2
    a, b = SpikeStats(), SpikeStats()
    for info, c, v in smollm_trace.iter_layers():
        a.update(info, None, c[:half], v[:half])
        b.update(info, None, c[half:], v[half:])
    assert a.merge(b) == st
    assert SpikeStats.from_trace(smollm_trace.path, progress=False, chunk_rows=17) == st  # from the file, in chunks
    # /stats written into (a copy of) the trace, atomically; the trace data is untouched
    copy = tmp_path / "trace.h5"
    shutil.copyfile(smollm_trace.path, copy)
    assert write_stats(copy, st) == copy
    assert read_stats(copy) == st
    name = smollm_trace.layers[-1]
    with SpikeTrace.open(copy) as t2:
        np.testing.assert_array_equal(t2.counts(name), smollm_trace.counts(name))
    with h5py.File(copy, "r") as f:
        assert f["stats/model"].attrs["silence"] == s["silence"]
        assert "bitwise-twos" in f["stats/encoders"]


def test_popcount_and_bit_length_helpers_with_and_without_numpy2(monkeypatch):
    v = np.array([0, 1, 2, 3, 7, 8, 255, 1023, 1024, 2**31 - 1, 2**40 + 5], dtype=np.int64)
    pop = [bin(int(x)).count("1") for x in v]
    assert S.popcount(v).tolist() == pop
    assert S.bit_length(v).tolist() == [int(x).bit_length() for x in v]
    if hasattr(np, "bitwise_count"):
        monkeypatch.delattr(np, "bitwise_count")  # the numpy < 2 path: byte lookup table
    assert S.popcount(v).tolist() == pop


def test_layers_sharing_an_input_are_computed_once_with_the_same_result():
    from analysis.trace import LayerInfo, SpikeTrace

    rng = np.random.default_rng(8)
    c, v = E.spike_counts(rng.laplace(size=(30, 64)).astype(np.float32), k=3)
    c2, v2 = E.spike_counts(rng.normal(size=(30, 64)).astype(np.float32), k=3)
    infos = [LayerInfo("b.q_proj", "q", 64, 64, 0), LayerInfo("b.k_proj", "k", 64, 16, 1, same_input_as="b.q_proj"),
             LayerInfo("b.v_proj", "v", 64, 16, 2, same_input_as="b.q_proj"), LayerInfo("b.o_proj", "o", 64, 64, 3)]
    data = [(c, v), (c, v), (c, v), (c2, v2)]
    tr = SpikeTrace.from_arrays(model_id="m", k=3.0, tokens=np.arange(30),
                                layers=[(i, d[0].astype(np.int16), d[1]) for i, d in zip(infos, data)])
    fast = SpikeStats.from_trace(tr, progress=False)
    slow = SpikeStats()
    for info, (cc, vv) in zip(infos, data):
        slow.update(info, None, cc.copy(), vv.copy())
    assert fast == slow
    for rows in (1, 7, 30, 100):  # read in token-row chunks: the same statistics
        assert SpikeStats.from_trace(tr, progress=False, chunk_rows=rows) == slow
    with pytest.raises(ValueError, match="chunk_rows"):
        SpikeStats.from_trace(tr, progress=False, chunk_rows=0)
    with pytest.raises(TypeError, match="SpikeTrace"):
        SpikeStats.from_trace([("x", c, v)], progress=False, chunk_rows=5)
    assert pickle.loads(pickle.dumps(fast)) == fast  # ships between processes (Dask workers)
    assert fast.layers["b.k_proj"].role == "k" and fast.layers["b.k_proj"].out_features == 16
    fast.layers["b.q_proj"].channel_active[0] += 1  # no storage is shared between layers
    assert fast.layers["b.k_proj"].channel_active[0] == slow.layers["b.k_proj"].channel_active[0]


def test_layers_are_ordered_by_index_then_insertion():
    class Info:
        def __init__(self, name, index):
            self.name, self.role, self.index, self.in_features, self.out_features = name, "up", index, 2, 2

    st = SpikeStats()
    c = np.ones((1, 2), np.int16)
    for layer in (Info("b", 1), "x", Info("a", 0), "y", Info("c", 2)):
        st.update(layer, None, c)
    assert [ls.name for ls in st.ordered_layers()] == ["a", "b", "c", "x", "y"]
