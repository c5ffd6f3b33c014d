"""The capture's writer thread, host staging ring and device-side counts (CPU, and CUDA when present).

A tiny random-weight Llama (built from a config, so it also runs where the embedded GGUF
cannot travel) checks that the counts a capture stores equal encoders.spike_counts of
the same inputs on the same device bit for bit, and that failures (NaN activations,
counts outside int16, a writer thread that fails) surface in the caller and leave no file.
"""
from __future__ import annotations

import threading
import time

import numpy as np
import pytest
import torch

import encoders
from analysis import trace_writer
from analysis.trace import LayerInfo, SpikeTrace, TraceWriter
from analysis.trace_async import AsyncTraceWriter
from neurosim.capture import _cache_kwargs, capture, counts_int16, linear_layers
from neurosim.capture_stage import HostRing, check_status, counts_device
from neurosim.models import LoadedModel

DEVICES = ["cpu"] + (["cuda"] if torch.cuda.is_available() else [])
TEXT = "When in the Course of human events, it becomes necessary for one people to dissolve the political bands."


# ----------------------------------------------------------------------------- host ring
def test_ring_hands_out_fifo_slices_and_wraps():
    ring = HostRing(1024)
    never = lambda: None  # noqa: E731
    a, b, c = (ring.take(300, never) for _ in range(3))  # 320-byte aligned slices: 0, 320, 640
    assert [s.start for s in (a, b, c)] == [0, 320, 640]
    ring.release(b)  # out of order: space comes back only once a is released too
    assert ring._fit(320) is None
    ring.release(a)
    d = ring.take(600, never)  # wraps to the start (the end has 64 bytes left)
    assert d.start == 0
    ring.release(c)
    e = ring.take(300, never)  # [640, 1024) is free again
    assert e.start == 640
    with pytest.raises(ValueError, match="does not fit the 1024-byte staging ring"):
        ring.take(2000, never)
    counts, status = ring.views(e, 3, 5, 4)
    assert counts.shape == (3, 5) and counts.dtype == torch.int16 and status.shape == (4,)


def test_ring_waits_for_release_and_gives_up_on_a_failure():
    ring = HostRing(256)
    s = ring.take(256, lambda: None)
    threading.Timer(0.1, ring.release, (s,)).start()
    t = time.perf_counter()
    ring.take(256, lambda: None)  # blocks until the timer releases s
    assert time.perf_counter() - t >= 0.05

    def failed():
        raise RuntimeError("the writer died")

    with pytest.raises(RuntimeError, match="the writer died"):
        ring.take(64, failed)  # full, nobody releases: the check ends the wait
    drained = []
    ring2 = HostRing(128)
    s2 = ring2.take(128, lambda: None)
    ring2.take(128, lambda: None, on_full=lambda: (drained.append(1), ring2.release(s2)))
    assert drained == [1]


# ----------------------------------------------------------------------------- device counts
@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_device_counts_equal_spike_counts(device, dtype):
    g = torch.Generator().manual_seed(3)
    x = (torch.randn(37, 300, generator=g) * torch.rand(37, 1, generator=g) * 5).to(device, dtype)
    x[0, 0] = 0.5 * float(x[0].float().abs().mean() / 3)  # a half-way tie
    for k in (1.0, 3.0, 3.7):
        ref = encoders.spike_counts(x, k)
        counts, status = counts_device(x, k)
        assert counts.dtype == torch.int16 and counts.device.type == device
        assert torch.equal(counts.to(torch.int32), ref.counts)
        assert torch.equal(status[:37], ref.vth)  # bit-exact V_th
        check_status("l", k, status.cpu().numpy(), 37)  # no error


def test_serial_cpu_pass_equals_torch_divide_and_round():
    """The numba pass behind counts_int16(out=...) on the CPU: float32 quotients (not float64),
    ties to even, bit for bit what torch computes, on inputs where the two precisions differ."""
    from neurosim.capture_stage import div_round_into

    rng = np.random.default_rng(0)
    x = torch.from_numpy((rng.integers(-1000, 1000, (300, 700)) + 0.5).astype(np.float32) * np.float32(0.3))
    vth = torch.from_numpy((0.3 * (1 + rng.standard_normal((300, 1)) * 1e-7)).astype(np.float32))
    f64 = np.rint(x.double().numpy() / vth.double().numpy()).astype(np.int16)
    out = torch.empty(300, 700, dtype=torch.int16)
    assert div_round_into(x, vth, out)
    ref = torch.round(x / vth).to(torch.int16)
    assert torch.equal(out, ref) and (out.numpy() != f64).any()  # the case tells float32 from float64
    assert not div_round_into(x.double(), vth, out) and not div_round_into(x.t(), vth, out)  # unsuited: refused
    for k in (1.0, 3.0):  # through counts_int16 with buffers, ties included
        ties = x.clone()
        v = (ties.abs().mean(-1, keepdim=True) / k).clamp(encoders.VTH_MIN, encoders.VTH_MAX)
        ties[:, :100] = (torch.from_numpy(rng.integers(-9, 9, (300, 100)).astype(np.float32)) + 0.5) * v
        counts, vth2 = counts_int16(ties, k, work=torch.empty(300, 700), out=out)
        ref = encoders.spike_counts(ties, k)
        assert torch.equal(counts.to(torch.int32), ref.counts) and torch.equal(vth2, ref.vth)


def test_status_check_raises_what_counts_int16_raises():
    for x in (torch.tensor([[1.0, float("nan")], [1.0, 2.0]]), torch.tensor([[1e9] + [0.0] * 40000]),
              torch.tensor([[float("inf"), 1.0]])):
        with pytest.raises(ValueError) as direct:
            counts_int16(x, 3.0)
        _, status = counts_device(x, 3.0)
        with pytest.raises(ValueError) as staged:
            check_status("l", 3.0, status.numpy(), x.shape[0])
        assert str(staged.value) == f"layer 'l' (k=3.0): {direct.value}"


# ----------------------------------------------------------------------------- lent rows
@pytest.mark.parametrize("workers", [0, 2])
def test_lent_rows_store_the_same_file_content(tmp_path, workers):
    rng = np.random.default_rng(5)
    counts = rng.integers(-50, 50, size=(200, 40)).astype(np.int16)
    vth = rng.random(200).astype(np.float32) + 0.1
    released = []
    paths = []
    for lend in (False, True):
        path = tmp_path / f"{lend}.h5"
        with TraceWriter(path, model_id="m", k=3.0, chunk_rows=32, workers=workers) as w:
            w.add_layer(LayerInfo("a", "down", 40, 8, 0))
            w.append_tokens(np.arange(200))
            for lo, hi in ((0, 10), (10, 138), (138, 200)):  # partial, whole chunks, tail
                part = np.ascontiguousarray(counts[lo:hi])
                w.append("a", part, vth[lo:hi], release=(lambda i=lo: released.append(i)) if lend else None)
        paths.append(path)
    assert sorted(released) == [0, 10, 138]  # each lent array released exactly once
    with SpikeTrace.open(paths[0]) as a, SpikeTrace.open(paths[1]) as b:
        np.testing.assert_array_equal(a.counts("a"), counts)
        np.testing.assert_array_equal(b.counts("a"), counts)
        np.testing.assert_array_equal(b.vth("a"), vth)


def test_chunk_rows_capped_by_bytes_are_a_power_of_two(tmp_path):
    with TraceWriter(tmp_path / "t.h5", model_id="m", k=3.0) as w:
        w.add_layer(LayerInfo("wide", "down", 18944, 8, 0))  # 1 MiB / (2 * 18944) = 27 rows -> 16
        w.add_layer(LayerInfo("narrow", "down", 1536, 8, 1))  # 341 rows allowed: 256, unchanged
        w.abort()
    assert w._buffers["wide"].rows == 16 and w._buffers["narrow"].rows == 256


# ----------------------------------------------------------------------------- writer thread
@pytest.mark.parametrize("deferred", [False, True])
def test_async_writer_writes_what_a_plain_writer_writes(tmp_path, deferred):
    rng = np.random.default_rng(9)
    counts = rng.integers(-9, 9, size=(100, 16)).astype(np.int16)
    vth = np.full(100, 0.5, np.float32)
    with AsyncTraceWriter(TraceWriter(tmp_path / "t.h5", model_id="m", k=3.0, chunk_rows=8),
                          max_items=2, deferred=deferred) as w:
        w.add_layer(LayerInfo("a", "q", 16, 4, 0))
        w.add_layer(LayerInfo("b", "k", 16, 4, 1), same_input_as="a")
        w.begin_prompt("p")
        w.append_tokens(np.arange(100))
        for lo in range(0, 100, 10):  # more calls than the queue holds: the producer waits
            w.append("a", counts[lo : lo + 10].copy(), vth[lo : lo + 10].copy())
    with SpikeTrace.open(tmp_path / "t.h5") as tr:
        np.testing.assert_array_equal(tr.counts("b"), counts)
        assert tr.prompt_text == ["p"]


@pytest.mark.parametrize("deferred", [False, True])
def test_async_writer_failure_surfaces_in_the_caller(tmp_path, deferred, monkeypatch):
    real = trace_writer.TraceWriter._write_chunk
    calls = {"n": 0}

    def failing(buf, block, start, end, data):
        calls["n"] += 1
        if calls["n"] == 2:
            raise RuntimeError("simulated write failure")
        return real(buf, block, start, end, data)

    monkeypatch.setattr(trace_writer.TraceWriter, "_write_chunk", staticmethod(failing))
    (tmp_path / "t.h5").write_bytes(b"previous")
    with pytest.raises(RuntimeError, match="simulated write failure") as err:
        with AsyncTraceWriter(TraceWriter(tmp_path / "t.h5", model_id="m", k=3.0, chunk_rows=4, overwrite=True,
                                          workers=0), deferred=deferred) as w:
            w.add_layer(LayerInfo("a", "q", 8, 4, 0))
            w.append_tokens(np.arange(400))
            for lo in range(0, 400, 4):
                w.append("a", np.ones((4, 8), np.int16), np.ones(4, np.float32))
    if hasattr(err.value, "__notes__"):
        assert "trace writer thread" in err.value.__notes__[0]
    assert (tmp_path / "t.h5").read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["t.h5"]  # no temporary file left


# ----------------------------------------------------------------------------- capture, tiny model
class _ByteTokenizer:
    """Token id = byte value (a tiny random model needs no trained vocabulary)."""

    def __call__(self, text, return_offsets_mapping=False):
        data = text.encode("utf-8")
        out = {"input_ids": list(data)}
        if return_offsets_mapping:
            out["offset_mapping"] = [(i, i + 1) for i in range(len(data))]
        return out


def _tiny(device: str, dtype: torch.dtype = torch.float32) -> LoadedModel:
    from transformers import LlamaConfig, LlamaForCausalLM

    torch.manual_seed(0)
    cfg = LlamaConfig(vocab_size=256, hidden_size=64, intermediate_size=160, num_hidden_layers=2,
                      num_attention_heads=4, num_key_value_heads=2, max_position_embeddings=512)
    model = LlamaForCausalLM(cfg).to(device=device, dtype=dtype).eval()
    return LoadedModel(model, _ByteTokenizer(), "tiny-random-llama")


def _reference_counts(lm: LoadedModel, text: str, k: float, chunk: int) -> dict[str, tuple[torch.Tensor, torch.Tensor]]:
    """encoders.spike_counts of every linear input, in the capture's own chunked forward."""
    from transformers import DynamicCache

    ids = torch.tensor([list(text.encode("utf-8"))], device=lm.device)
    got: dict[str, list] = {}
    hooks = [mod.register_forward_pre_hook(
        lambda m, a, n=name: got.setdefault(n, []).append(encoders.spike_counts(a[0].reshape(-1, a[0].shape[-1]), k)))
        for name, mod in linear_layers(lm.model, False)]
    try:
        with torch.inference_mode():
            cache = DynamicCache(config=lm.model.config)
            kw = _cache_kwargs(lm.model.model, cache)
            for s in range(0, ids.shape[1], chunk):
                lm.model.model(input_ids=ids[:, s : s + chunk], use_cache=True, **kw)
    finally:
        for h in hooks:
            h.remove()
    return {n: (torch.cat([r.counts for r in v]).cpu(), torch.cat([r.vth for r in v]).cpu()) for n, v in got.items()}


@pytest.mark.parametrize("device", DEVICES)
@pytest.mark.parametrize("dtype", [torch.float32, torch.bfloat16])
def test_tiny_capture_equals_spike_counts_bit_for_bit(tmp_path, device, dtype):
    lm = _tiny(device, dtype)
    tr = capture(lm, TEXT, tmp_path / "t.h5", chunk_tokens=16, progress=False)
    ref = _reference_counts(lm, TEXT, 3.0, 16)
    with tr:
        assert tr.attrs["capture_device"].startswith(device) and tr.n_tokens == len(TEXT)
        assert tr.layers == [n for n, _ in linear_layers(lm.model, False)]
        for name in tr.layers:
            counts, vth = ref[name]
            assert np.array_equal(tr.counts(name), counts.numpy()), name
            assert np.array_equal(tr.vth(name).view(np.uint32), vth.numpy().view(np.uint32)), name


@pytest.mark.parametrize("device", DEVICES)
def test_tiny_capture_failures_leave_no_file(tmp_path, device, monkeypatch):
    lm = _tiny(device)
    out = tmp_path / "t.h5"
    out.write_bytes(b"previous")
    down = lm.model.model.layers[1].mlp.down_proj
    h = down.register_forward_pre_hook(lambda m, a: (a[0] * float("nan"),))  # runs before the capture's hook
    try:
        with pytest.raises(ValueError, match=r"layer 'model.layers.1.mlp.down_proj' \(k=3.0\): activations contain "
                                             r"NaN or inf"):
            capture(lm, TEXT, out, chunk_tokens=16, overwrite=True, progress=False)
    finally:
        h.remove()
    with pytest.raises(ValueError, match="does not fit int16"):
        capture(lm, TEXT, out, k=1e6, overwrite=True, progress=False)
    real = trace_writer.TraceWriter._write_chunk
    calls = {"n": 0}

    def failing(buf, block, start, end, data):
        calls["n"] += 1
        if calls["n"] == 5:
            raise OSError(5, "simulated I/O error")
        return real(buf, block, start, end, data)

    monkeypatch.setattr(trace_writer.TraceWriter, "_write_chunk", staticmethod(failing))
    with pytest.raises(OSError, match="simulated I/O error"):
        capture(lm, TEXT, out, chunk_tokens=8, overwrite=True, progress=False)
    assert out.read_bytes() == b"previous"
    assert [p.name for p in tmp_path.iterdir()] == ["t.h5"]
    monkeypatch.setattr(trace_writer.TraceWriter, "_write_chunk", staticmethod(real))
    with capture(lm, TEXT, out, chunk_tokens=8, overwrite=True, progress=False) as tr:  # hooks are gone, it works
        assert tr.n_tokens == len(TEXT)
