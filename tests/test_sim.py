"""Event-driven replay: bit-exact against the dense integer matmul, complete Activity, clear errors."""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

import encoders
from analysis.trace import LayerInfo, SpikeTrace
from hw_models import Activity
from neurosim.sim import replay_layer, replay_spikes, replay_trace
from neurosim.weights import Int8Weight, quantize_int8

UNSIGNED = ("binary", "bitwise")


def _int8_weight(rng: np.random.Generator, out_f: int, in_f: int, group_size: int) -> Int8Weight:
    q = torch.from_numpy(rng.integers(-127, 128, size=(out_f, in_f)).astype(np.int8))
    n_groups = -(-in_f // group_size)
    scale = torch.from_numpy(rng.uniform(1e-3, 1e-1, size=(out_f, n_groups)).astype(np.float32))
    return Int8Weight(q, scale, group_size)


def _counts(rng: np.random.Generator, tokens: int, in_f: int, scheme: str, T: int, signed: bool) -> np.ndarray:
    lo, hi = encoders.count_range(scheme, T)
    if scheme in UNSIGNED and signed:
        lo = -hi
    return rng.integers(lo, hi + 1, size=(tokens, in_f))


def _dense_int(counts, w: Int8Weight) -> torch.Tensor:
    return torch.from_numpy(np.array(counts, dtype=np.int64)) @ w.q.to(torch.int64).T


def _reference_activity(counts: np.ndarray, scheme: str, T: int, bit_order: str, out_f: int, block: int, sign_split: bool):
    """Activity fields computed independently, in numpy, from encoders.encode's dense train."""
    c = np.asarray(counts, dtype=np.int64)
    if sign_split:
        train = encoders.encode(np.clip(c, 0, None), scheme, T, bit_order) - encoders.encode(
            np.clip(-c, 0, None), scheme, T, bit_order
        )
    else:
        train = encoders.encode(c, scheme, T, bit_order)
    act = train != 0
    tokens, in_f = c.shape
    nb = -(-in_f // block)
    padded = np.zeros((T, tokens, nb * block), dtype=bool)
    padded[:, :, :in_f] = act
    hit = padded.reshape(T, tokens, nb, block).any(axis=3)  # [T, tokens, nb]
    widths = np.minimum(block, in_f - np.arange(nb) * block)
    return dict(
        events_per_step=act.sum(axis=(1, 2)),
        events_per_token=act.sum(axis=(0, 2)),
        event_hist=np.bincount(act.sum(axis=0).ravel(), minlength=T + 1),
        silent=int((c == 0).sum()),
        bytes_touched=int((hit.sum(axis=(0, 1)) * widths).sum()) * out_f,
        train=train,
    )


# ------------------------------------------------------------------------- exactness


@settings(max_examples=60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    tokens=st.integers(1, 9),
    in_f=st.integers(1, 200),
    out_f=st.integers(1, 24),
    group_size=st.sampled_from([1, 7, 32, 128]),
    scheme=st.sampled_from(encoders.SCHEMES),
    T=st.integers(1, 6),
    bit_order=st.sampled_from(["msb", "lsb"]),
    engine=st.sampled_from(["events", "dense"]),
    signed=st.booleans(),
)
def test_replay_equals_dense_integer_matmul(seed, tokens, in_f, out_f, group_size, scheme, T, bit_order, engine, signed):
    rng = np.random.default_rng(seed)
    w = _int8_weight(rng, out_f, in_f, group_size)
    counts = _counts(rng, tokens, in_f, scheme, T, signed)
    vth = rng.uniform(0.01, 2.0, size=tokens).astype(np.float32)
    split = scheme in UNSIGNED and signed
    r = replay_layer(w, counts, vth, scheme, T, bit_order, engine=engine, sign_split=split, keep_group_acc=True,
                     block_columns=8, out_chunk=int(rng.integers(1, 30)))
    assert r.acc.dtype == torch.int64
    assert torch.equal(r.acc, _dense_int(counts, w))
    # Per-group accumulators are the per-group integer matmuls; output = V_th * sum_g scale_g * acc_g.
    c64 = torch.as_tensor(counts, dtype=torch.int64)
    q64 = w.q.to(torch.int64)
    for g in range(w.scale.shape[1]):
        cols = slice(g * group_size, (g + 1) * group_size)
        assert torch.equal(r.group_acc[:, g, :], c64[:, cols] @ q64[:, cols].T)
    terms = r.group_acc.double() * w.scale.double().T.unsqueeze(0) * torch.as_tensor(vth).double()[:, None, None]
    # float32 scaling and group sum: error within a few float32 ulps of the terms' magnitude
    err = (r.output.double() - terms.sum(1)).abs()
    assert bool((err <= 4 * terms.shape[1] * 2**-24 * terms.abs().sum(1) + 1e-30).all())
    ref = _reference_activity(counts, scheme, T, bit_order, out_f, 8, split)
    a = r.activity
    np.testing.assert_array_equal(a.events_per_step, ref["events_per_step"])
    np.testing.assert_array_equal(a.events_per_token, ref["events_per_token"])
    np.testing.assert_array_equal(a.event_hist, ref["event_hist"])
    assert a.silent_inputs == ref["silent"]
    assert a.weight_bytes_touched == ref["bytes_touched"]
    assert a.synaptic_ops == a.events * out_f == a.acc_updates


# graded payloads have a fixed width: counts beyond it are clipped (tests/test_codes_sim.py)
@pytest.mark.parametrize("scheme", [s for s in encoders.SCHEMES if not encoders.get_scheme(s).graded])
@pytest.mark.parametrize("bit_order", ["msb", "lsb"])
def test_default_window_is_exact_on_heavy_tailed_counts(scheme, bit_order):
    rng = np.random.default_rng(1)
    x = rng.laplace(size=(16, 300)).astype(np.float32)
    x[3, 7] = 400.0  # one outlier, as in real down_proj inputs: a long binary/ternary window
    counts, vth = encoders.spike_counts(x)
    split = scheme in UNSIGNED
    w = _int8_weight(rng, 40, 300, 128)
    r = replay_layer(w, counts, vth, scheme, bit_order=bit_order, sign_split=split)
    assert torch.equal(r.acc, _dense_int(counts, w))
    mag = int(np.abs(counts).max())
    expected_T = encoders.steps_needed(scheme, 0, mag) if split else encoders.steps_needed(scheme, counts.min(), counts.max())
    assert r.steps == expected_T
    assert r.activity.events == int((_reference_activity(counts, scheme, r.steps, bit_order, 40, 32, split)["train"] != 0).sum())


def test_time_steps_carry_their_weight():
    """A hand-made train replays as sum_t w_t * (S_t @ q.T): MSB-first differs from LSB-first."""
    q = torch.tensor([[1, 2], [3, -4]], dtype=torch.int8)
    w = Int8Weight(q, torch.ones(2, 1), 128)
    spikes = torch.tensor([[[1, 0]], [[0, 1]], [[1, 1]]], dtype=torch.int8)  # T=3, 1 token
    msb = replay_spikes(w, spikes, torch.ones(1), "bitwise", "msb")
    lsb = replay_spikes(w, spikes, torch.ones(1), "bitwise", "lsb")
    # msb weights 4, 2, 1: channel 0 carries 4 + 1 = 5, channel 1 carries 2 + 1 = 3
    assert msb.acc.tolist() == [[5 * 1 + 3 * 2, 5 * 3 + 3 * -4]]
    # lsb weights 1, 2, 4: channel 0 carries 1 + 4 = 5, channel 1 carries 2 + 4 = 6
    assert lsb.acc.tolist() == [[5 * 1 + 6 * 2, 5 * 3 + 6 * -4]]
    twos = replay_spikes(w, spikes, torch.ones(1), "bitwise-twos", "msb")  # MSB weighs -4
    assert twos.acc.tolist() == [[-3 * 1 + 3 * 2, -3 * 3 + 3 * -4]]
    assert msb.activity.events_per_step.tolist() == [1, 1, 2]


def test_float_weights_are_quantized_to_int8_per_group():
    rng = np.random.default_rng(2)
    W = torch.from_numpy(rng.standard_normal((30, 260)).astype(np.float32)) * 0.05
    x = rng.standard_normal((12, 260)).astype(np.float32)
    counts, vth = encoders.spike_counts(x)
    r = replay_layer(W, counts, vth, "bitwise-signed")
    qw = quantize_int8(W)
    assert torch.equal(r.acc, _dense_int(counts, qw))
    # The output is the float layer on the quantized input, within INT8 weight error.
    y = torch.from_numpy(vth)[:, None] * (torch.from_numpy(counts).float() @ W.T)
    assert float((r.output - y).abs().max()) < 0.02 * float(y.abs().max())
    assert r.activity.bytes_per_weight == 1
    lin = torch.nn.Linear(260, 30, bias=False)
    lin.weight.data.copy_(W)
    assert torch.equal(replay_layer(lin, counts, vth, "ternary").acc, r.acc)


def test_integer_weights_use_unit_scale_and_stay_exact():
    rng = np.random.default_rng(3)
    q = torch.from_numpy(rng.integers(-30000, 30000, size=(5, 700)).astype(np.int16))
    counts = rng.integers(-7, 8, size=(4, 700))
    r = replay_layer(q, counts, np.ones(4, np.float32), "bitwise-signed", 3, keep_group_acc=True)
    assert torch.equal(r.acc, torch.from_numpy(counts) @ q.to(torch.int64).T)
    assert r.group_acc.shape == (4, 1, 5)
    assert r.activity.bytes_per_weight == 2
    torch.testing.assert_close(r.output.double(), r.acc.double(), rtol=1e-6, atol=0)


def test_chunking_changes_nothing():
    rng = np.random.default_rng(4)
    w = _int8_weight(rng, 70, 150, 128)
    counts = rng.integers(-7, 8, size=(23, 150))
    vth = np.full(23, 0.5, np.float32)
    for scheme in ("ternary", "bitwise-signed"):
        a = replay_layer(w, counts, vth, scheme, block_columns=16)
        b = replay_layer(w, counts, vth, scheme, block_columns=16, token_chunk=4, out_chunk=9)
        assert torch.equal(a.acc, b.acc) and torch.equal(a.output, b.output)
        for f in ("events_per_step", "events_per_token", "event_hist"):
            np.testing.assert_array_equal(getattr(a.activity, f), getattr(b.activity, f))
        assert a.activity.weight_bytes_touched == b.activity.weight_bytes_touched


# ------------------------------------------------------------------------- Activity


def test_activity_fields_by_hand():
    # 2 tokens x 4 channels, bitwise-signed T=2, blocks of 2 columns, 3 outputs.
    counts = np.array([[3, 0, -1, 0], [0, 0, 2, 0]])
    w = Int8Weight(torch.ones(3, 4, dtype=torch.int8), torch.ones(3, 1), 128)
    r = replay_layer(w, counts, np.ones(2, np.float32), "bitwise-signed", 2, block_columns=2)
    a = r.activity
    # steps (MSB first): 3 = [1, 1], -1 = [0, -1], 2 = [1, 0]
    assert a.events_per_step.tolist() == [2, 2]
    assert a.events_per_token.tolist() == [3, 1]
    assert a.events == 4 and a.synaptic_ops == 12 and a.acc_updates == 12
    assert a.dense_macs == 2 * 4 * 3
    assert a.active_inputs_per_step.tolist() == [2, 2]
    assert a.silent_inputs == 5
    assert a.event_hist.tolist() == [5, 2, 1]
    # fetched blocks (step, token): t0: tok0 {b0}, tok1 {b1}; t1: tok0 {b0, b1} -> 4 blocks of 2 cols x 3 outs
    assert a.weight_bytes_touched == 4 * 2 * 3
    assert a.weight_bytes_dense == 4 * 3
    assert a.steps == 2 and a.tokens == 2 and a.scheme == "bitwise-signed"
    assert a.sparsity == pytest.approx(1 - 4 / 16)
    assert a.synaptic_ops_per_token.tolist() == [9, 3]


def test_combine_sums_layers_with_different_windows():
    rng = np.random.default_rng(5)
    w1, w2 = _int8_weight(rng, 8, 20, 128), _int8_weight(rng, 5, 30, 128)
    c1, c2 = rng.integers(-3, 4, size=(6, 20)), rng.integers(-60, 61, size=(6, 30))
    a1 = replay_layer(w1, c1, np.ones(6, np.float32), "ternary").activity
    a2 = replay_layer(w2, c2, np.ones(6, np.float32), "ternary").activity
    tot = Activity.combine([a1, a2])
    assert tot.steps == max(a1.steps, a2.steps) == 60
    assert tot.events == a1.events + a2.events
    np.testing.assert_array_equal(tot.events_per_token, a1.events_per_token + a2.events_per_token)
    np.testing.assert_array_equal(tot.synaptic_ops_per_token, a1.events_per_token * 8 + a2.events_per_token * 5)
    assert tot.slots_in_window == 6 * 20 * a1.steps + 6 * 30 * a2.steps
    assert tot.sparsity == pytest.approx(1 - tot.events / tot.slots_in_window)
    assert tot.in_features == 0 and tot.role == ""
    with pytest.raises(ValueError, match="different token counts"):
        Activity.combine([a1, replay_layer(w1, c1[:2], np.ones(2, np.float32), "ternary").activity])
    with pytest.raises(ValueError, match="no records"):
        Activity.combine([])


def test_clip_reports_and_replays_the_clipped_counts():
    rng = np.random.default_rng(6)
    w = _int8_weight(rng, 10, 50, 128)
    counts = rng.integers(-20, 21, size=(7, 50))
    r = replay_layer(w, counts, np.ones(7, np.float32), "bitwise-signed", 3, clip=True)
    clipped = np.clip(counts, -7, 7)
    assert r.clipped == int((counts != clipped).sum()) > 0
    assert r.activity.clipped == r.clipped
    assert torch.equal(r.acc, _dense_int(clipped, w))


# ------------------------------------------------------------------------- bad input


def _w():
    return _int8_weight(np.random.default_rng(7), 6, 10, 128)


@pytest.mark.parametrize(
    "kwargs, exc, match",
    [
        (dict(counts=np.zeros((3, 11), int)), ValueError, "in_features=10"),
        (dict(counts=np.zeros((3, 10, 1), int)), ValueError, "2-D"),
        (dict(counts=np.zeros((3, 10), bool)), TypeError, "integer dtype"),
        (dict(counts=np.full((3, 10), 0.5)), ValueError, "integer-valued"),
        (dict(counts=[[1] * 10] * 3), TypeError, "numpy array or a torch tensor"),
        (dict(vth=np.ones(4, np.float32)), ValueError, r"shape \[3\]"),
        (dict(vth=-np.ones(3, np.float32)), ValueError, "positive"),
        (dict(vth=np.array([1, np.nan, 1], np.float32)), ValueError, "finite"),
        (dict(T=2), ValueError, r"count 5 is outside \[-3, 3\].*T >= 3"),
        (dict(T=0), ValueError, "positive integer"),
        (dict(scheme="binary"), ValueError, "sign_split=True"),
        (dict(scheme="ternary", sign_split=True), ValueError, "unsigned schemes"),
        (dict(scheme="bitwise-xyz"), ValueError, "unknown scheme"),
        (dict(bit_order="middle"), ValueError, "bit_order"),
        (dict(engine="gpu"), ValueError, "unknown engine"),
        (dict(block_columns=0), ValueError, "block_columns"),
        (dict(weight="W"), TypeError, "weight must be"),
        (dict(weight=torch.zeros(6, 10, 2)), ValueError, "2-D"),
        (dict(weight=Int8Weight(torch.zeros(6, 10, dtype=torch.int8), torch.ones(6, 3), 128)), ValueError, "scale has shape"),
        (dict(weight=Int8Weight(torch.zeros(6, 10, dtype=torch.int16), torch.ones(6, 1), 128)), TypeError, "int8"),
    ],
)
def test_bad_input_raises_clear_errors(kwargs, exc, match):
    args = dict(weight=_w(), counts=np.array([[5, -1, 0, 0, 0, 0, 0, 0, 0, -2]] * 3), vth=np.ones(3, np.float32),
                scheme="bitwise-signed", T=None)
    args.update(kwargs)
    with pytest.raises(exc, match=match):
        replay_layer(args.pop("weight"), args.pop("counts"), args.pop("vth"), args.pop("scheme"), args.pop("T"), **args)


def test_bad_spike_trains_raise():
    w = _w()
    with pytest.raises(ValueError, match=r"must lie in \[0, 1\]"):
        replay_spikes(w, -np.ones((2, 1, 10), np.int8), np.ones(1, np.float32), "bitwise")
    with pytest.raises(ValueError, match="3-D"):
        replay_spikes(w, np.ones((1, 10), np.int8), np.ones(1, np.float32), "ternary")
    with pytest.raises(ValueError, match="in_features=10"):
        replay_spikes(w, np.ones((2, 1, 9), np.int8), np.ones(1, np.float32), "ternary")


# ------------------------------------------------------------------------- whole trace


def _synthetic_trace(rng: np.random.Generator):
    shapes = [("blk.q", "q", 40, 24), ("blk.k", "k", 40, 8), ("blk.o", "o", 24, 40)]
    tokens = 11
    layers, weights = [], {}
    x = rng.laplace(size=(tokens, 40)).astype(np.float32)
    for i, (name, role, in_f, out_f) in enumerate(shapes):
        xi = x if in_f == 40 else rng.laplace(size=(tokens, in_f)).astype(np.float32)
        c, v = encoders.spike_counts(xi)
        same = "blk.q" if name == "blk.k" else None
        layers.append((LayerInfo(name, role, in_f, out_f, i, same), c, v))
        weights[name] = torch.from_numpy(rng.standard_normal((out_f, in_f)).astype(np.float32))
    trace = SpikeTrace.from_arrays(model_id="synthetic", k=3.0, tokens=np.arange(tokens), layers=layers)
    return trace, weights


def test_replay_trace_sums_the_layers():
    trace, weights = _synthetic_trace(np.random.default_rng(8))
    m = replay_trace(trace, weights, "bitwise-signed", progress=False, keep_outputs=True)
    assert list(m.layers) == trace.layers
    for name in trace.layers:
        r = replay_layer(weights[name], trace.counts(name), trace.vth(name), "bitwise-signed")
        assert torch.equal(m.outputs[name].acc, r.acc)
        assert torch.equal(r.acc, _dense_int(trace.counts(name), quantize_int8(weights[name])))
        np.testing.assert_array_equal(m.layers[name].events_per_step, r.activity.events_per_step)
        assert m.steps[name] == r.steps
        assert m.layers[name].role == trace.layer(name).role
    assert m.layers["blk.k"].same_input_as == "blk.q"
    assert m.total.events == sum(a.events for a in m.layers.values())
    np.testing.assert_array_equal(m.events_per_token, sum(a.events_per_token for a in m.layers.values()))
    np.testing.assert_array_equal(
        m.synaptic_ops_per_token, sum(a.events_per_token * a.out_features for a in m.layers.values())
    )
    np.testing.assert_array_equal(
        m.events_sent_per_token, m.layers["blk.q"].events_per_token + m.layers["blk.o"].events_per_token
    )
    assert m.total.synaptic_ops == int(m.synaptic_ops_per_token.sum())
    assert m.model_id == "synthetic" and m.tokens == 11


def test_replay_trace_fixed_window_and_module_weights():
    trace, weights = _synthetic_trace(np.random.default_rng(9))
    model = torch.nn.Module()
    model.blk = torch.nn.Module()
    for name, w in weights.items():
        lin = torch.nn.Linear(w.shape[1], w.shape[0], bias=False)
        lin.weight.data.copy_(w)
        setattr(model.blk, name.split(".")[1], lin)
    m = replay_trace(trace, model, "bitwise", T=3, clip=True, progress=False, layers=["blk.o", "blk.q"])
    assert list(m.layers) == ["blk.o", "blk.q"]
    assert set(m.steps.values()) == {3}
    expected = sum(int((np.abs(trace.counts(n)) > 7).sum()) for n in ("blk.o", "blk.q"))
    assert m.clipped == expected > 0
    assert all(a.sign_split for a in m.layers.values())  # bitwise carries signs on split lines
    with pytest.raises(ValueError, match="outside"):
        replay_trace(trace, model, "bitwise-signed", T=2, progress=False)


def test_replay_trace_rejects_missing_and_mismatched_weights():
    trace, weights = _synthetic_trace(np.random.default_rng(10))
    partial = {k: v for k, v in weights.items() if k != "blk.k"}
    with pytest.raises(ValueError, match="no weights for layer 'blk.k'"):
        replay_trace(trace, partial, "ternary", progress=False)
    wrong = dict(weights, **{"blk.o": torch.zeros(24, 40)})
    with pytest.raises(ValueError, match=r"'blk.o' have shape \[24, 40\].*\[40, 24\]"):
        replay_trace(trace, wrong, "ternary", progress=False)
    with pytest.raises(ValueError, match="not in the trace"):
        replay_trace(trace, weights, "ternary", layers=["blk.zz"], progress=False)
    with pytest.raises(TypeError, match="mapping"):
        replay_trace(trace, [1, 2], "ternary", progress=False)


# ------------------------------------------------------------------------- real model


@pytest.mark.slow
def test_real_trace_replays_exactly(smollm, smollm_trace):
    """Captured SmolLM2 counts, every layer of one block plus the first attention of the last."""
    mods = dict(smollm.model.named_modules())
    names = [n for n in smollm_trace.layers if n.startswith("model.layers.0.")] + [
        n for n in smollm_trace.layers if n.startswith("model.layers.29.self_attn.q_proj")
    ]
    assert len(names) == 8
    m = replay_trace(smollm_trace, smollm.model, "bitwise-signed", T=3, clip=True, layers=names,
                     keep_outputs=True, progress=False)
    total_clipped = 0
    for name in names:
        counts = smollm_trace.counts(name).astype(np.int64)
        clipped = np.clip(counts, -7, 7)
        total_clipped += int((clipped != counts).sum())
        qw = quantize_int8(mods[name].weight.detach())
        out = m.outputs[name]
        assert torch.equal(out.acc, _dense_int(clipped, qw)), name
        # the float layer on the same (clipped) counts, within INT8 weight error
        y = torch.from_numpy(np.array(smollm_trace.vth(name)))[:, None] * (torch.from_numpy(clipped).float() @ mods[name].weight.detach().T)
        assert float((out.output - y).abs().max()) < 0.03 * float(y.abs().max()), name
        ref = _reference_activity(clipped, "bitwise-signed", 3, "msb", qw.q.shape[0], 32, False)
        np.testing.assert_array_equal(m.layers[name].events_per_step, ref["events_per_step"])
        assert m.layers[name].weight_bytes_touched == ref["bytes_touched"]
    assert m.clipped == total_clipped > 0
    # q, k and v share one input in the trace; their event counts agree
    assert m.layers["model.layers.0.self_attn.k_proj"].same_input_as == "model.layers.0.self_attn.q_proj"
    np.testing.assert_array_equal(m.layers["model.layers.0.self_attn.k_proj"].events_per_token,
                                  m.layers["model.layers.0.self_attn.q_proj"].events_per_token)


@pytest.mark.slow
# graded payloads are 8 bits wide: real outliers are clipped, never exact (tests/test_codes_sim.py)
@pytest.mark.parametrize("scheme", [s for s in encoders.SCHEMES if not encoders.get_scheme(s).graded])
def test_real_counts_exact_default_windows(smollm, smollm_trace, scheme):
    """Every scheme at its exact (unclipped) window on the heaviest-tailed real layers."""
    mods = dict(smollm.model.named_modules())
    for name in ("model.layers.0.self_attn.o_proj", "model.layers.2.mlp.down_proj"):
        counts = smollm_trace.counts(name)
        qw = quantize_int8(mods[name].weight.detach())
        for engine in ("events", "dense") if scheme == "bitwise-signed" else ("events",):
            r = replay_layer(qw, counts, smollm_trace.vth(name), scheme, sign_split=scheme in UNSIGNED, engine=engine)
            assert torch.equal(r.acc, _dense_int(counts, qw)), (name, engine)
            assert r.clipped == 0
            assert r.activity.events == _expected_events(counts, scheme, r.steps), (name, engine)


def _expected_events(counts: np.ndarray, scheme: str, T: int) -> int:
    """Spikes a scheme sends for these counts: |c| (rate codes) or the set bits of the T-bit word."""
    c = counts.astype(np.int64)
    if scheme in ("binary", "ternary"):
        return int(np.abs(c).sum())
    if scheme == "graded":  # one event per non-zero count
        return int(np.count_nonzero(c))
    if scheme == "bitwise-naf":  # Reitwiesner's digit loop: a digit wherever n is odd, n -= digit, n //= 2
        n, total = np.abs(c), 0
        while n.any():
            odd = (n & 1) == 1
            total += int(odd.sum())
            n = np.where(odd, n - (2 - (n & 3)), n) >> 1
        return total
    word = c % (1 << T) if scheme == "bitwise-twos" else np.abs(c)
    return int(sum(((word >> b) & 1).sum() for b in range(T)))


def test_replay_settings_object_matches_keywords():
    """replay_with(ReplaySettings) is replay_layer's keyword form; settings are validated once."""
    from neurosim.sim import ReplaySettings, replay_layer, replay_with

    rng = np.random.default_rng(5)
    w = torch.from_numpy(rng.integers(-127, 128, (6, 16))).to(torch.int8)
    counts = rng.integers(-7, 8, (9, 16))
    vth = np.full(9, 0.5, np.float32)
    a = replay_layer(w, counts, vth, "bitwise-signed", 3, "lsb", engine="dense", block_columns=8)
    b = replay_with(w, counts, vth, ReplaySettings("bitwise-signed", 3, "lsb", block_columns=8, engine="dense"))
    assert torch.equal(a.acc, b.acc)
    assert a.activity.synaptic_ops == b.activity.synaptic_ops and a.activity.weight_bytes_touched == b.activity.weight_bytes_touched
    assert np.array_equal(a.activity.events_per_step, b.activity.events_per_step)
    s = ReplaySettings()
    assert s.with_(T=4).T == 4 and s.T is None
    with pytest.raises(ValueError, match="bit_order"):
        ReplaySettings(bit_order="mid")
    with pytest.raises(ValueError, match="unknown scheme"):
        s.with_(scheme="nope")
