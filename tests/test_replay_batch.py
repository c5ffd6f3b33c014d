"""replay_layers (neurosim.sim.batch) equals the reference replay layer by layer, bit for bit.

Three backends: ``torch`` (the reference's ops, counters kept on the device, one host read),
``triton`` (the fused kernels of neurosim.sim.kernels_triton: compiled on CUDA, interpreted
on CPU when the test session runs with ``TRITON_INTERPRET=1``, which tests/conftest.py sets
on machines without a GPU) and CUDA runs of both where a GPU is present.
"""
from __future__ import annotations

import numpy as np
import pytest
import torch
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

import encoders
from neurosim.sim import ReplaySettings, batch, prepare_weight
from neurosim.sim import kernels_triton as kt
from neurosim.sim.activity_fast import covers
from neurosim.sim.batch import LayerInput, replay_layers
from neurosim.sim.replay_core import replay_reference
from neurosim.weights import Int8Weight
from test_activity_fast import assert_same_activity

COVERED = [s for s in encoders.SCHEMES if covers(s)]
UNSIGNED = ("binary", "bitwise")
CUDA = torch.cuda.is_available()
TRITON_HERE = kt.available() and (CUDA or kt.interpreting())
needs_triton = pytest.mark.skipif(not TRITON_HERE, reason="triton not installed (or not interpreting on this CPU machine)")


def _weight(rng, out_f, in_f, gs):
    q = torch.from_numpy(rng.integers(-127, 128, size=(out_f, in_f)).astype(np.int8))
    scale = torch.from_numpy(rng.uniform(1e-3, 1e-1, size=(out_f, -(-in_f // gs))).astype(np.float32))
    return Int8Weight(q, scale, gs)


def _layers(rng, n_layers, scheme, T, clip, split, signed, max_in=200, max_tokens=24, gs_choices=(1, 7, 32, 128),
            dtype=np.int64, min_tokens=0):
    out = []
    for i in range(n_layers):
        tokens = int(rng.integers(min_tokens, max_tokens + 1))
        in_f, out_f = int(rng.integers(1, max_in + 1)), int(rng.integers(1, 70))
        gs = int(rng.choice(gs_choices))
        hi = 20 if T is None else encoders.count_range(scheme, T)[1] + (3 if clip else 0)
        lo = -hi if (signed and (split or scheme in encoders.SIGNED)) else 0
        c = rng.integers(lo, hi + 1, size=(tokens, in_f))
        c[rng.random(c.shape) < 0.4] = 0
        if T is not None and not clip:
            rlo, rhi = encoders.count_range(scheme, T)
            c = np.clip(c, -rhi if split else rlo, rhi)
        vth = rng.uniform(0.01, 2.0, size=tokens).astype(np.float32)
        out.append(LayerInput(_weight(rng, out_f, in_f, gs), torch.from_numpy(c.astype(dtype)), torch.from_numpy(vth),
                              name=f"layer{i}", role="r", same_input_as="layer0" if i == 2 else None))
    return out


def _unfused_output(r, op, vth):
    """``V_th * sum_g scale_g * acc_g`` with every product and sum rounded (the interpreter's fma)."""
    ga = r.group_acc.to(torch.float32)
    scale = op.scale.T.to(ga.device)
    y = ga[:, 0, :] * scale[0]
    for g in range(1, ga.shape[1]):
        y = y + ga[:, g, :] * scale[g]
    return y * vth.unsqueeze(1)


def _check(got, ref, fused, layers, device):
    assert len(got) == len(ref)
    for a, b, L, kind in zip(got, ref, layers, fused):
        assert (a.name, a.role, a.scheme, a.steps, a.bit_order, a.clipped) == (b.name, b.role, b.scheme, b.steps,
                                                                              b.bit_order, b.clipped)
        assert a.acc.dtype == torch.int64 and a.output.dtype == torch.float32
        assert torch.equal(a.acc.cpu(), b.acc.cpu())
        assert torch.equal(a.group_acc.cpu(), b.group_acc.cpu())
        if kind == "triton" and device.type == "cpu":  # interpreted: its fma rounds twice
            want = _unfused_output(a, prepare_weight(L.weight, "cpu", need_tables=False), L.vth.to(torch.float32))
            assert torch.equal(a.output, want)
        else:
            assert torch.equal(a.output.cpu(), b.output.cpu())
        assert_same_activity(a.activity, b.activity)


def _run(layers, s, backend):
    """replay_layers with the kind each layer ran by recorded."""
    kinds = []
    orig_t, orig_q = batch._queue_triton, batch._queue_torch

    def qt(p, *a):
        kinds.append("triton")
        return orig_t(p, *a)

    def qq(p, *a):
        kinds.append("torch")
        return orig_q(p, *a)

    batch._queue_triton, batch._queue_torch = qt, qq
    try:
        return replay_layers(layers, s, backend=backend), kinds
    finally:
        batch._queue_triton, batch._queue_torch = orig_t, orig_q


DEVICES = ["cpu"] + (["cuda"] if CUDA else [])
BACKENDS = ["torch"] + (["triton"] if TRITON_HERE else [])


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BACKENDS)
@settings(max_examples=25, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(
    seed=st.integers(0, 2**32 - 1),
    n_layers=st.integers(0, 3),
    scheme=st.sampled_from(COVERED),
    T=st.one_of(st.none(), st.integers(1, 8)),
    bit_order=st.sampled_from(["msb", "lsb"]),
    block=st.sampled_from([1, 3, 8, 32, 200]),
    signed=st.booleans(),
    clip=st.booleans(),
    chunk=st.one_of(st.none(), st.integers(1, 7)),
    dtype=st.sampled_from([np.int64, np.int16, np.int32]),
)
def test_batch_equals_reference(device, backend, seed, n_layers, scheme, T, bit_order, block, signed, clip, chunk, dtype):
    if backend == "triton" and device == "cpu" and not kt.interpreting():
        pytest.skip("triton runs on CPU tensors only in its interpreter")
    rng = np.random.default_rng(seed)
    split = scheme in UNSIGNED and signed
    layers = _layers(rng, n_layers, scheme, T, clip, split, signed, dtype=dtype)
    s = ReplaySettings(scheme, T, bit_order, block, device, clip, split, "gemm", chunk, None, True)
    got, kinds = _run(layers, s, backend)
    ref = [replay_reference(L.weight, L.counts, L.vth, s, name=L.name, role=L.role, same_input_as=L.same_input_as)
           for L in layers]
    _check(got, ref, kinds, layers, torch.device(device))
    if backend == "torch":
        assert set(kinds) <= {"torch"}


@needs_triton
def test_triton_takes_the_fused_path_for_the_report_window():
    """bitwise-signed T=3 on INT8 weights in groups of 128 (the benchmark's layers) runs the kernels."""
    rng = np.random.default_rng(5)
    dev = "cuda" if CUDA else "cpu"
    layers = _layers(rng, 3, "bitwise-signed", 3, True, False, True, max_in=300, gs_choices=(128,))
    s = ReplaySettings("bitwise-signed", 3, "msb", 32, dev, True, False, "gemm", None, None, True)
    got, kinds = _run(layers, s, "triton")
    assert kinds == ["triton"] * 3
    ref = [replay_reference(L.weight, L.counts, L.vth, s, name=L.name, role=L.role, same_input_as=L.same_input_as)
           for L in layers]
    _check(got, ref, kinds, layers, torch.device(dev))


@needs_triton
def test_layers_beyond_the_kernels_fall_back_to_torch():
    """Counts that do not fit INT8 (bitwise-signed T=8 reaches 255) and float64 accumulators run the torch ops."""
    rng = np.random.default_rng(6)
    dev = "cuda" if CUDA else "cpu"
    layers = _layers(rng, 2, "bitwise-signed", 8, False, False, True, gs_choices=(128,))
    s = ReplaySettings("bitwise-signed", 8, "msb", 32, dev, False, False, "gemm", None, None, True)
    got, kinds = _run(layers, s, "triton")
    assert kinds == ["torch", "torch"]
    ref = [replay_reference(L.weight, L.counts, L.vth, s, name=L.name, role=L.role) for L in layers]
    _check(got, ref, kinds, layers, torch.device(dev))


def _error(fn):
    with pytest.raises((ValueError, TypeError)) as e:
        fn()
    return e.type, str(e.value)


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("backend", BACKENDS)
def test_deferred_errors_name_the_first_bad_layer(device, backend):
    if backend == "triton" and device == "cpu" and not kt.interpreting():
        pytest.skip("triton runs on CPU tensors only in its interpreter")
    rng = np.random.default_rng(11)
    s = ReplaySettings("bitwise-signed", 3, "msb", 32, device, False, False, "gemm")

    def fresh():
        return _layers(rng, 4, "bitwise-signed", 3, False, False, True, max_in=140, max_tokens=12, gs_choices=(128,),
                       min_tokens=1)

    # A threshold that is not finite and positive, found after the replay, names its layer.
    layers = fresh()
    layers[1].vth = layers[1].vth.clone()
    layers[1].vth[0] = float("nan")
    kind, msg = _error(lambda: replay_layers(layers, s, backend=backend))
    assert kind is ValueError and msg == "layer 'layer1': vth must be finite and positive"
    # A count outside the window: the reference's message; the first bad layer wins.
    layers = fresh()
    layers[2].counts = layers[2].counts.clone()
    layers[2].counts[0, 0] = 9
    layers[3].vth = -layers[3].vth
    ref = _error(lambda: replay_reference(layers[2].weight, layers[2].counts, layers[2].vth, s, name="layer2"))
    assert _error(lambda: replay_layers(layers, s, backend=backend)) == ref
    assert "layer 'layer2'" in ref[1] and "outside [-7, 7]" in ref[1]
    # A host error in a later layer (wrong width) comes after an earlier layer's deferred error...
    layers = fresh()
    layers[0].vth = layers[0].vth.clone()
    layers[0].vth[-1] = 0.0
    layers[3].counts = torch.zeros((2, 5), dtype=torch.int64)
    assert _error(lambda: replay_layers(layers, s, backend=backend))[1] == "layer 'layer0': vth must be finite and positive"
    # ... and is raised as the reference raises it when the earlier layers are good.
    layers = fresh()
    layers[3].counts = torch.zeros((2, 5), dtype=torch.int64)
    kind, msg = _error(lambda: replay_layers(layers, s, backend=backend))
    assert kind is ValueError and "layer 'layer3'" in msg and "input channels" in msg
    # Negative counts for an unsigned scheme without sign_split, and T=None (window from the data).
    layers = fresh()
    u = ReplaySettings("bitwise", None, "msb", 32, device, False, False, "gemm")
    kind, msg = _error(lambda: replay_layers(layers, u, backend=backend))
    assert kind is ValueError and "carries only non-negative counts" in msg and "layer 'layer0'" in msg
    layers = fresh()
    layers[1].vth = torch.full_like(layers[1].vth, float("inf"))
    n = ReplaySettings("bitwise-signed", None, "msb", 32, device, False, False, "gemm")
    assert _error(lambda: replay_layers(layers, n, backend=backend))[1] == "layer 'layer1': vth must be finite and positive"


def test_bad_arguments():
    s = ReplaySettings("bitwise-signed", 3, engine="gemm")
    with pytest.raises(TypeError, match="ReplaySettings"):
        replay_layers([], {"scheme": "bitwise-signed"})
    with pytest.raises(ValueError, match="unknown backend"):
        replay_layers([], s, backend="cuda")
    assert replay_layers([], s, backend="torch") == []
    with pytest.raises(ValueError, match="count-only"):
        replay_layers([], ReplaySettings("bitwise-naf", 3, engine="gemm"), backend="torch")
    rng = np.random.default_rng(1)
    L = _layers(rng, 1, "bitwise-signed", 3, False, False, True)[0]
    with pytest.raises(TypeError, match="vth must be"):
        replay_layers([LayerInput(L.weight, L.counts, [1.0] * int(L.counts.shape[0]))], s, backend="torch")


def test_other_engines_and_cpu_default_run_the_reference():
    rng = np.random.default_rng(2)
    layers = _layers(rng, 2, "ternary", 3, True, False, True, max_in=60)
    for engine in ("events", "gemm"):
        s = ReplaySettings("ternary", 3, "lsb", 8, "cpu", True, False, engine, None, None, True)
        got, kinds = _run(layers, s, None)  # CPU default: the reference, layer by layer
        assert kinds == []
        ref = [replay_reference(L.weight, L.counts, L.vth, s, name=L.name, role=L.role,
                                same_input_as=L.same_input_as) for L in layers]
        _check(got, ref, ["ref"] * 2, layers, torch.device("cpu"))


def test_addcmul_rounding_probe():
    """The probe names the rounding of addcmul_ here; it decides the kernels' fused multiply-add."""
    fuses = kt.addcmul_fuses(torch.device("cpu"))
    assert fuses in (True, False)
    y = torch.full((1, 1), -1.0)
    y.addcmul_(torch.full((1, 1), 1 + 2.0**-12), torch.full((1,), 1 + 2.0**-12))
    assert float(y) == (2.0**-11 + 2.0**-24 if fuses else 2.0**-11)


@pytest.mark.skipif(not CUDA, reason="needs a GPU")
def test_replay_layer_on_cuda_takes_the_batch_path():
    """replay_layer / replay_with with the gemm engine on CUDA go through replay_layers."""
    from neurosim.sim import layer, replay_layer

    rng = np.random.default_rng(8)
    L = _layers(rng, 1, "bitwise-signed", 3, False, False, True, gs_choices=(128,))[0]
    orig = layer.replay_layers
    calls = []
    layer.replay_layers = lambda *a, **k: calls.append(1) or orig(*a, **k)
    try:
        r = replay_layer(L.weight, L.counts, L.vth, "bitwise-signed", 3, device="cuda", engine="gemm", name="x")
    finally:
        layer.replay_layers = orig
    assert calls == [1]
    s = ReplaySettings("bitwise-signed", 3, device="cuda", engine="gemm")
    ref = replay_reference(L.weight, L.counts, L.vth, s, name="x")
    assert torch.equal(r.acc, ref.acc) and torch.equal(r.output, ref.output)
    assert_same_activity(r.activity, ref.activity)


class _Info:
    def __init__(self, L):
        self.out_features, self.in_features = (int(d) for d in L.weight.q.shape)
        self.role, self.same_input_as = L.role, L.same_input_as


class _Trace:
    """The parts of analysis.trace.SpikeTrace that replay_trace reads."""

    model_id = "synthetic"

    def __init__(self, layers):
        self._by = {L.name: L for L in layers}
        self.layers = list(self._by)

    def layer(self, name):
        return _Info(self._by[name])

    def counts(self, name):
        return self._by[name].counts.numpy()

    def vth(self, name):
        return self._by[name].vth.numpy()


@pytest.mark.parametrize("batch_bytes", [1, 1 << 30])
def test_replay_trace_batches_gemm_layers(monkeypatch, batch_bytes):
    """replay_trace with the gemm engine replays layers in batches (one per layer or all together)
    and records what the dense engine records."""
    from neurosim.sim import model, replay_trace

    monkeypatch.setattr(model, "BATCH_BYTES", batch_bytes)
    rng = np.random.default_rng(4)
    layers = _layers(rng, 4, "bitwise-signed", 3, True, False, True, max_in=150, min_tokens=3, max_tokens=3,
                     gs_choices=(32,))
    trace = _Trace(layers)
    weights = {L.name: L.weight for L in layers}
    calls = []
    orig = model.replay_layers
    monkeypatch.setattr(model, "replay_layers", lambda p, s: calls.append(len(p)) or orig(p, s))
    a = replay_trace(trace, weights, "bitwise-signed", 3, clip=True, engine="gemm", keep_outputs=True, progress=False)
    b = replay_trace(trace, weights, "bitwise-signed", 3, clip=True, engine="dense", keep_outputs=True, progress=False)
    assert calls == ([1, 1, 1, 1] if batch_bytes == 1 else [4])
    assert a.steps == b.steps and a.clipped == b.clipped and list(a.layers) == list(b.layers)
    for name in a.layers:
        assert_same_activity(a.layers[name], b.layers[name])
        assert torch.equal(a.outputs[name].acc, b.outputs[name].acc)
        assert torch.equal(a.outputs[name].output, b.outputs[name].output)
    assert_same_activity(a.total, b.total)
