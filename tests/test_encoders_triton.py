"""Triton encode/decode kernels (encoders._triton) equal the reference step loops bit for bit.

On a CUDA machine the kernels run compiled on the GPU; elsewhere under Triton's interpreter
(``TRITON_INTERPRET=1``) on CPU tensors, the same kernel source. Skipped without triton.
"""
from __future__ import annotations

import importlib
import os

import numpy as np
import pytest
import torch
from hypothesis import given, settings
from hypothesis import strategies as st

CUDA = torch.cuda.is_available()
if not CUDA:
    os.environ["TRITON_INTERPRET"] = "1"  # read when the kernels are decorated (module import)
triton = pytest.importorskip("triton")

import encoders as E  # noqa: E402
from encoders import _modes, _triton  # noqa: E402
from encoders._kernels import NUMPY, decode_steps, encode_steps  # noqa: E402

DEVICE = "cuda" if CUDA else "cpu"
DTYPES = [np.int8, np.int16, np.int32, np.int64, np.uint8]


def _interpreter_shim() -> None:
    """Triton < 3.9's interpreter takes ``int()`` of a 1-element array for a runtime loop
    bound, which numpy 2 refuses; 3.9 squeezes it first. Do the same for older versions."""
    from triton.runtime import interpreter

    if hasattr(interpreter, "_neurosim_shim"):
        return
    patch = interpreter._patch_lang_tensor

    def patched(tensor, scope):
        patch(tensor, scope)
        scope.set_attr(tensor, "__index__", lambda self: int(self.handle.data.reshape(-1)[0]))

    interpreter._patch_lang_tensor = patched
    interpreter._neurosim_shim = True


if not CUDA:
    _interpreter_shim()
    if not isinstance(_triton._encode_kernel, triton.runtime.interpreter.InterpretedFunction):
        _triton = importlib.reload(_triton)  # imported earlier without the interpreter


def reference_train(c: np.ndarray, scheme: str, T: int, msb: bool) -> np.ndarray:
    """The step loops (graded: the payload at step 0)."""
    sch = E.get_scheme(scheme)
    if c.ndim == 0:  # the step loops take arrays (encode reshapes a 0-d count to one slot)
        return reference_train(c.reshape(1), scheme, T, msb).reshape(T)
    if sch.graded:
        out = np.zeros((T,) + c.shape, np.int8)
        if T:
            out[0] = c
        return out
    return encode_steps(NUMPY, c.astype(np.int64), sch, T, msb)


def counts_for(rng, scheme: str, T: int, shape, dtype, sign_split: bool) -> np.ndarray:
    """Counts in the range ``T`` steps carry (clipped to the dtype and to the +-2**62 that
    encode accepts), both ends included."""
    lo, hi = E.count_range(scheme, T)
    info = np.iinfo(dtype)
    lo, hi = max(lo, int(info.min), -(2**62)), min(hi, int(info.max), 2**62)
    if sign_split:  # an unsigned scheme's two lines: |s| of each sign (neurosim.sim.events)
        lo = 0
    c = rng.integers(lo, hi, size=shape, endpoint=True, dtype=np.int64)
    if c.size >= 2:  # clipped counts sit on the window's edges: always test both
        c.flat[0], c.flat[-1] = lo, hi
    return c.astype(dtype)


def whole_dtype_counts(rng, dtype, shape) -> np.ndarray:
    """Counts anywhere in ``dtype``'s range (in range for a window or not), one of the dtype's
    two ends always among them when there are two or more."""
    info = np.iinfo(dtype)
    c = rng.integers(int(info.min), int(info.max), size=shape, endpoint=True, dtype=np.int64).astype(dtype)
    if c.size >= 2:
        c.flat[rng.integers(c.size)] = info.min if rng.integers(2) else info.max
    return c


@settings(max_examples=40 if CUDA else 120, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.lists(st.integers(0, 9), min_size=0, max_size=3),
    scheme=st.sampled_from(list(E.SCHEMES)),
    T=st.integers(0, 64),
    msb=st.booleans(),
    dtype=st.sampled_from(DTYPES),
    sign_split=st.booleans(),
)
def test_kernels_equal_the_reference(seed, shape, scheme, T, msb, dtype, sign_split):
    sch = E.get_scheme(scheme)
    T = min(T, 20) if sch.rate else min(T, 3) if sch.graded else T
    if sch.max_steps is not None and T > sch.max_steps - (0 if sch.twos or sch.naf else 1):
        T = sch.max_steps - 1
    if sch.twos and T == 0:
        T = 1
    rng = np.random.default_rng(seed)
    c = counts_for(rng, scheme, T, shape, dtype, sign_split and not sch.signed)
    mode = _modes.mode_for(sch)
    got = _triton.encode_triton(torch.from_numpy(c).to(DEVICE), mode, T, msb).cpu().numpy()
    ref = reference_train(c, scheme, T, msb)
    assert got.dtype == np.int8 and got.shape == ref.shape
    np.testing.assert_array_equal(got, ref)
    if T <= 62:
        w = np.ones(T, np.int64) if sch.graded else sch.step_weights(T, "msb" if msb else "lsb")
        reach = T * sch.payload_max if sch.graded else int(np.abs(w).sum())
        lo, hi = sch.spike_values
        back = _triton.decode_triton(torch.from_numpy(got).to(DEVICE), mode, msb, lo, hi, reach, torch.int64)
        assert back is not None
        np.testing.assert_array_equal(back.cpu().numpy(), c.astype(np.int64))
        if not sch.graded:
            np.testing.assert_array_equal(back.cpu().numpy(), decode_steps(NUMPY, ref, sch, msb, np.int64))


@pytest.mark.parametrize("scheme", list(E.SCHEMES))
@pytest.mark.parametrize("msb", [True, False])
def test_programs_walk_several_blocks(scheme, msb, monkeypatch):
    """Each program walks several blocks (blocks of 64 slots, 3 programs, the last block
    partial): the train, the range, the counts decoded (T from 1 to 9, decode steps
    loaded 1 and 4 at a time) and a bad value in a program's last block all come out as
    with one block per program."""
    monkeypatch.setattr(_triton, "BLOCK", 64)
    monkeypatch.setattr(_triton, "WORD_BLOCK", 16)
    monkeypatch.setattr(_triton, "_programs", lambda blocks, t, per_sm=None: min(blocks, 3))
    sch = E.get_scheme(scheme)
    mode = _modes.mode_for(sch)
    lo_v, hi_v = sch.spike_values
    rng = np.random.default_rng(7)
    for T in ((1, 2, 3) if sch.graded else (1, 2, 4, 5, 7, 9)):  # every padding of 4 steps; word decode and not
        c = counts_for(rng, scheme, T, (64 * 7 + 20,), np.int16, False)  # 117 words: 8 blocks of 16
        tc = torch.from_numpy(c).to(DEVICE)
        train, lo, hi = _triton.encode_triton(tc, mode, T, msb, extremes=True)
        np.testing.assert_array_equal(train.cpu().numpy(), reference_train(c, scheme, T, msb))
        assert (lo, hi) == (int(c.min()), int(c.max()))
        assert _triton._encode_words_fit(tc, mode, T, train) == (mode in WORD_MODES and T <= 7)
        w = np.ones(T, np.int64) if sch.graded else sch.step_weights(T, "msb" if msb else "lsb")
        reach = T * sch.payload_max if sch.graded else int(np.abs(w).sum())
        for unroll in (1, 4):
            monkeypatch.setattr(_triton, "DECODE_UNROLL", unroll)
            back = _triton.decode_triton(train, mode, msb, lo_v, hi_v, reach, torch.int64)
            assert back is not None and np.array_equal(back.cpu().numpy(), c.astype(np.int64)), (T, unroll)
            bad = train.clone()
            bad[T - 1, 64 * 6 + 5] = lo_v - 1 if lo_v > -128 else hi_v + 1
            assert _triton.decode_triton(bad, mode, msb, lo_v, hi_v, reach, torch.int64) is None, (T, unroll)
        _, _, _, acc_t = E.schemes._decode_plan(sch, T, "msb" if msb else "lsb")
        assert _triton._words_fit(mode, lo_v, hi_v, T, c.size, train, torch.empty(4, dtype=acc_t)) == \
            (acc_t == torch.int8)  # int8 counts: four slots per word
        back = _triton.decode_triton(train, mode, msb, lo_v, hi_v, reach, acc_t)
        assert back is not None and back.dtype == acc_t and np.array_equal(back.cpu().numpy(), c.astype(acc_t_np(acc_t)))
        bad = train.clone()
        bad[T - 1, 64 * 6 + 5] = lo_v - 1 if lo_v > -128 else hi_v + 1
        assert _triton.decode_triton(bad, mode, msb, lo_v, hi_v, reach, acc_t) is None, T


def acc_t_np(dtype: torch.dtype) -> np.dtype:
    return torch.empty(0, dtype=dtype).numpy().dtype


@pytest.mark.parametrize("scheme", list(E.SCHEMES))
def test_word_decode_flags_every_bad_byte_in_every_lane(scheme):
    """The int8 decode on four slots per word: every int8 value outside the scheme's spike
    values is flagged (in a byte and step that vary with the value); a train of every
    allowed value in every lane decodes to the reference's counts."""
    sch = E.get_scheme(scheme)
    lo, hi = sch.spike_values
    mode = _modes.mode_for(sch)
    T = 2
    reach = 2 * sch.payload_max if sch.graded else int(np.abs(sch.step_weights(T)).sum())
    allowed = np.arange(lo, hi + 1)
    good = np.array(np.meshgrid(allowed, allowed)).reshape(2, -1).astype(np.int8)  # every pair of steps
    good = np.concatenate([good, np.zeros((2, -good.shape[1] % 4), np.int8)], axis=1)
    got = _triton.decode_triton(torch.from_numpy(good).to(DEVICE), mode, True, lo, hi, reach, torch.int8)
    ref = good.astype(np.int64).sum(0) if sch.graded else decode_steps(NUMPY, good, sch, True, np.int64)
    assert got is not None and np.array_equal(got.cpu().numpy(), ref.astype(np.int8))
    for value in sorted(set(range(-128, 128)) - set(range(lo, hi + 1))):
        s = torch.zeros((T, 8), dtype=torch.int8)
        s[value % 2, value % 8] = value  # every lane and step over the values
        assert _triton.decode_triton(s.to(DEVICE), mode, True, lo, hi, reach, torch.int8) is None, value


@settings(max_examples=30 if CUDA else 60, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    shape=st.lists(st.integers(0, 3000), min_size=0, max_size=2),
    scheme=st.sampled_from(list(E.SCHEMES)),
    T=st.integers(0, 9),
    dtype=st.sampled_from([np.int8, np.int16, np.int32, np.uint8]),
)
def test_encode_finds_the_counts_range_in_the_same_pass(seed, shape, scheme, T, dtype):
    """Counts over the whole dtype (in range for T or not): the range the kernel reports is
    the counts' min and max, and the train is the one the kernel writes without it."""
    c = whole_dtype_counts(np.random.default_rng(seed), dtype, shape)
    mode = _modes.mode_for(E.get_scheme(scheme))
    tc = torch.from_numpy(c).to(DEVICE)
    train, lo, hi = _triton.encode_triton(tc, mode, T, True, extremes=True)
    assert (lo, hi) == ((int(c.min()), int(c.max())) if c.size else (0, 0))
    assert train.shape == (T,) + c.shape
    assert torch.equal(train, _triton.encode_triton(tc, mode, T, True))


WORD_MODES = [_modes.BITS_SM, _modes.NAF]  # the modes the word encode writes


@settings(max_examples=40 if CUDA else 80, deadline=None)
@given(
    seed=st.integers(0, 2**32 - 1),
    words=st.integers(1, 300),
    mode=st.sampled_from(WORD_MODES),
    T=st.integers(1, 7),
    msb=st.booleans(),
    dtype=st.sampled_from([np.int8, np.int16]),
    offset=st.sampled_from([0, 0, 1, 4]),
)
def test_word_encode_equals_the_per_slot_kernel(seed, words, mode, T, msb, dtype, offset):
    """Four slots per word (int8/int16 counts, sign-magnitude and NAF codes up to T = 7): the train and
    the range equal the per-slot kernel's for counts over the whole dtype (in range for T or
    not), a partial last block included; counts not aligned to their words (an offset of one
    slot) take the per-slot kernel."""
    rng = np.random.default_rng(seed)
    info = np.iinfo(dtype)
    n = 4 * words
    c = np.concatenate([whole_dtype_counts(rng, dtype, offset), whole_dtype_counts(rng, dtype, n)])  # one buffer
    tc = torch.from_numpy(c).to(DEVICE)[offset:]
    fit = _triton._encode_words_fit(tc, mode, T, torch.empty((T, n), dtype=torch.int8, device=DEVICE))
    assert fit == (offset % 4 == 0), "aligned counts take the word encode, a one-slot offset does not"
    got, lo, hi = _triton.encode_triton(tc, mode, T, msb, extremes=True)
    plain = _triton.encode_triton(tc, mode, T, msb)
    saved = _triton.WORD_ENCODE
    _triton.WORD_ENCODE = False
    try:
        ref, ref_lo, ref_hi = _triton.encode_triton(tc, mode, T, msb, extremes=True)
    finally:
        _triton.WORD_ENCODE = saved
    assert (lo, hi) == (ref_lo, ref_hi) == (int(c[offset:].min()), int(c[offset:].max()))
    assert torch.equal(got, ref) and torch.equal(plain, ref)
    scheme = {_modes.BITS_SM: "bitwise-signed", _modes.NAF: "bitwise-naf"}[mode]
    rlo, rhi = E.count_range(scheme, T)
    inside = c[offset:].clip(max(rlo, int(info.min)), min(rhi, int(info.max)))  # counts T steps carry
    train = _triton.encode_triton(torch.from_numpy(inside).to(DEVICE), mode, T, msb)
    np.testing.assert_array_equal(train.cpu().numpy(), reference_train(inside, scheme, T, msb))


def test_launch_hooks_take_tritons_runner():
    """Cached kernels launch directly only while no Triton launch hook is registered (Triton
    3.6 keeps its hooks in chains that are never None: an empty chain is no hook); with a
    hook, launches go through Triton's runner, which calls it (on a GPU: counted)."""
    from triton import knobs

    from encoders import triton_launch

    assert not triton_launch.hooks()
    seen = []
    hook = seen.append
    knobs.runtime.launch_enter_hook.add(hook)
    try:
        assert triton_launch.hooks()
        c = torch.arange(-7, 8, dtype=torch.int16).repeat(8).to(DEVICE)
        for _ in range(2):  # the second launch finds the compiled kernel cached
            assert torch.equal(_triton.encode_triton(c, _modes.BITS_SM, 3, True).cpu(),
                               torch.from_numpy(reference_train(c.cpu().numpy(), "bitwise-signed", 3, True)))
        if CUDA and triton_launch.FAST_LAUNCH:
            assert len(seen) == 2, "the hook saw every launch"
    finally:
        knobs.runtime.launch_enter_hook.remove(hook)
    assert not triton_launch.hooks()


def test_words_of_an_earlier_call_never_win():
    """Range words and the bad-value flag are not cleared between calls: a later call with a
    narrower range, or without a bad value, still reads its own result; the same after the
    call numbers run out and the words are cleared; each thread has its own words."""
    import threading

    wide = torch.tensor([-300, 5, 300] * 1000, dtype=torch.int16, device=DEVICE)
    narrow = torch.tensor([1, 2, 3] * 1000, dtype=torch.int16, device=DEVICE)
    assert _triton.encode_triton(wide, _modes.BITS_SM, 0, True, extremes=True)[1:] == (-300, 300)
    assert _triton.encode_triton(narrow, _modes.BITS_SM, 0, True, extremes=True)[1:] == (1, 3)
    good = _triton.encode_triton(narrow, _modes.BITS_SM, 2, True)
    bad = good.clone()
    bad[1, 7] = 2
    assert _triton.decode_triton(bad, _modes.BITS_SM, True, -1, 1, 3, torch.int8) is None
    assert torch.equal(_triton.decode_triton(good, _modes.BITS_SM, True, -1, 1, 3, torch.int8).cpu(),
                       narrow.cpu().to(torch.int8))
    words = _triton._words(narrow.device)
    assert _triton.decode_triton(bad, _modes.BITS_SM, True, -1, 1, 3, torch.int8) is None
    long, lo, hi = _triton.encode_triton(narrow, _modes.RATE_U, 130, True, extremes=True)  # 3 chunks of steps
    assert (lo, hi) == (1, 3) and torch.equal(long, _triton.encode_triton(narrow, _modes.RATE_U, 130, True))
    assert int(words.ext[2]) == 0, "the last program puts the ticket counter back"
    words.epoch = _triton.MAX_EPOCH
    assert _triton.encode_triton(narrow, _modes.BITS_SM, 0, True, extremes=True)[1:] == (1, 3)
    assert words.epoch == 1
    assert _triton.decode_triton(good, _modes.BITS_SM, True, -1, 1, 3, torch.int8) is not None
    assert _triton.decode_triton(bad, _modes.BITS_SM, True, -1, 1, 3, torch.int8) is None
    other = []
    worker = threading.Thread(target=lambda: other.append(_triton._words(narrow.device)))
    worker.start()
    worker.join()
    assert other[0] is not words and _triton._words(narrow.device) is words


@pytest.mark.parametrize("scheme", list(E.SCHEMES))
def test_decode_flags_each_out_of_range_value(scheme):
    sch = E.get_scheme(scheme)
    lo, hi = sch.spike_values
    mode = _modes.mode_for(sch)
    for bad in sorted({lo - 1, hi + 1} & set(range(-128, 128))):
        s = torch.zeros((3, 5000), dtype=torch.int8)
        s[2, 4321] = bad
        got = _triton.decode_triton(s.to(DEVICE), mode, True, lo, hi, 7 if not sch.graded else 3 * 127, torch.int16)
        assert got is None, bad


def test_sums_wrap_to_the_result_dtype_like_the_reference():
    """Graded trains of several steps: payload sums wrap to int8 as the reference's cast does."""
    s = torch.full((3, 40), 100, dtype=torch.int8)
    got = _triton.decode_triton(s.to(DEVICE), _modes.GRADED, True, -127, 127, 3 * 127, torch.int8)
    assert torch.equal(got.cpu(), torch.full((40,), 300, dtype=torch.int64).to(torch.int8))


def test_out_buffers_are_written_in_place():
    c = torch.arange(-7, 8, dtype=torch.int16).repeat(50).to(DEVICE)
    train = torch.full((3, c.numel()), 9, dtype=torch.int8, device=DEVICE)
    assert _triton.encode_triton(c, _modes.BITS_SM, 3, True, out=train) is train
    back = torch.empty(c.numel(), dtype=torch.int8, device=DEVICE)
    assert _triton.decode_triton(train, _modes.BITS_SM, True, -1, 1, 7, torch.int8, out=back) is back
    assert torch.equal(back.cpu(), c.cpu().to(torch.int8))


def test_without_triton_the_public_api_takes_the_torch_path(monkeypatch):
    from encoders import schemes

    monkeypatch.setattr(schemes, "_GPU", False)
    assert schemes._gpu_kernels() is None
    c = torch.arange(-7, 8).to(DEVICE)
    assert torch.equal(E.decode(E.encode(c, "bitwise-signed"), "bitwise-signed").long(), c)


@pytest.mark.parametrize("scheme", list(E.SCHEMES))
@pytest.mark.parametrize("order", ["msb", "lsb"])
def test_public_api_on_the_kernel_path_agrees_with_the_torch_path(scheme, order, monkeypatch):
    """encode/decode dispatch to the kernels (on CUDA; here on CPU tensors through the
    interpreter); trains, counts, dtypes, ``out=`` buffers and errors equal the torch path's."""
    from encoders import _fused, schemes

    if not CUDA:  # send CPU tensors down the CUDA dispatch, past the numba kernels
        monkeypatch.setattr(schemes, "_triton_device", lambda t: True)
        monkeypatch.setattr(_fused, "MIN_ELEMENTS", 1 << 62)
    sch = E.get_scheme(scheme)
    g = torch.Generator().manual_seed(3)
    lo = -7 if sch.signed else 0
    c = torch.randint(lo, 8, (33, 1001), generator=g, dtype=torch.int16).to(DEVICE)
    calls = []
    real = schemes._gpu_kernels()
    for name in ("encode_triton", "decode_triton"):
        monkeypatch.setattr(real, name, lambda *a, _f=getattr(real, name), _n=name, **k: calls.append(_n) or _f(*a, **k))
    fast = E.encode(c, scheme, bit_order=order)
    back = E.decode(fast, scheme, order)
    # default T: a min/max pass (the encode kernel at T = 0), then the train (graded: T = 1, one pass)
    assert calls == ["encode_triton"] * (1 if sch.graded else 2) + ["decode_triton"], "the Triton kernels did not run"
    calls.clear()
    train_out = torch.empty_like(fast)
    back_out = torch.empty_like(back)
    wide_out = torch.empty(back.shape, dtype=torch.int64, device=DEVICE)
    assert E.encode(c, scheme, bit_order=order, out=train_out) is train_out
    assert E.decode(train_out, scheme, order, out=back_out) is back_out
    assert E.decode(train_out, scheme, order, dtype=torch.int64, out=wide_out) is wide_out
    assert calls == ["encode_triton"] + ["decode_triton"] * 2, "T from out: one pass, no separate min/max"
    bad = fast.clone()
    bad[0, 0, 0] = 2 if sch.spike_values[1] == 1 else -128
    longer = torch.empty((fast.shape[0] + 1,) + tuple(fast.shape[1:]), dtype=fast.dtype, device=DEVICE)
    short = torch.empty((2,) + tuple(fast.shape[1:]), dtype=fast.dtype, device=DEVICE)
    calls_with_errors = (
        lambda: E.decode(bad, scheme, order),
        lambda: E.encode(c * 40, scheme, T=2),
        lambda: E.encode(c * 40, scheme, T=2, out=short),  # T given and out: range error after the pass
        lambda: E.encode(c, scheme, bit_order=order, out=longer),  # default T differs from out's: shape error
        lambda: E.encode(c * 40, scheme, out=short),  # T from out, counts out of its range
    )
    errors = []
    for call in calls_with_errors:
        with pytest.raises(ValueError) as info:
            call()
        errors.append(str(info.value))
    monkeypatch.setattr(schemes, "_GPU", False)  # the torch reference path
    ref = E.encode(c, scheme, bit_order=order)
    ref_back = E.decode(ref, scheme, order)
    assert fast.dtype == ref.dtype and back.dtype == ref_back.dtype
    assert torch.equal(fast, ref) and torch.equal(train_out, ref)
    assert torch.equal(back, ref_back) and torch.equal(back_out, ref_back)
    assert torch.equal(wide_out, c.long()) and torch.equal(back.long(), c.long())
    for call, message in zip(calls_with_errors, errors):
        with pytest.raises(ValueError) as info:
            call()
        assert str(info.value) == message


COMPILED = [(k, m, False) for k in ("encode", "decode") for m in range(7)] + \
    [(k, m, True) for k in ("encode", "decode") for m in (_modes.BITS_TWOS, _modes.NAF)] + \
    [("encode-extremes", m, False) for m in range(7)] + [("encode-extremes", _modes.NAF, True)] + \
    [("decode-words", m, False) for m in range(7)] + \
    [(k, m, c16) for k in ("encode-words", "encode-words-extremes") for m in WORD_MODES for c16 in (False, True)]

_COMPILE_SCRIPT = r"""
import json, re, sys
import triton
from triton.backends import backends
from triton.backends.compiler import GPUTarget
from triton.compiler import ASTSource
from encoders import _triton as K
if "nvidia" not in backends:
    print(json.dumps(None)); sys.exit()
ENC = {"c_ptr": "*i16", "out_ptr": "*i8", "ext_ptr": "*i64", "res_ptr": "*i64", "n": "i32", "T": "i32",
       "t_chunk": "i32", "epoch": "i32"}
SIGS = {
    "encode": (K._encode_kernel, ENC, (0, 1, 2, 3, 4), {"EXTREMES": False, "MSB": True}),
    "encode-extremes": (K._encode_kernel, ENC, (0, 1, 2, 3, 4), {"EXTREMES": True, "MSB": True}),
    "decode": (K._decode_kernel, {"s_ptr": "*i8", "acc_ptr": "*i8", "bad_ptr": "*i32", "n": "i32", "T": "i32",
                                  "lo": "i32", "hi": "i32", "epoch": "i32"}, (0, 1, 2, 3),
               {"MSB": True, "UNROLL": K.DECODE_UNROLL}),
    "decode-words": (K._decode_words_kernel, {"s_ptr": "*i32", "acc_ptr": "*i32", "bad_ptr": "*i32", "n": "i32",
                                              "T": "i32", "epoch": "i32"}, (0, 1, 2, 3), {"MSB": True}),
}
WORDS = {"out_ptr": "*i32", "ext_ptr": "*i64", "res_ptr": "*i64", "n": "i32", "T": "i32", "epoch": "i32"}
for c16 in (False, True):
    sig = {"c_ptr": "*i64" if c16 else "*i32", **WORDS}
    SIGS[f"encode-words-{c16}"] = (K._encode_words_kernel, sig, (0, 1, 2, 3, 4), {"EXTREMES": False, "MSB": True})
    SIGS[f"encode-words-extremes-{c16}"] = (K._encode_words_kernel, sig, (0, 1, 2, 3, 4),
                                            {"EXTREMES": True, "MSB": True})
found = {}
for kernel, mode, wide in json.loads(sys.argv[1]):
    words = kernel.startswith("encode-words")  # ``wide`` names the int16 counts there
    fn, sig, aligned, extra = SIGS[f"{kernel}-{wide}" if words else kernel]
    base = {"MODE": mode, "BLOCK": K.WORD_BLOCK} if kernel == "decode-words" else \
        {"MODE": mode, "C16": wide, "BLOCK": K.WORD_BLOCK} if words else {"MODE": mode, "WIDE": wide, "BLOCK": K.BLOCK}
    src = ASTSource(fn=fn, signature=sig, constexprs={**base, **extra},
                    attrs={(i,): [["tt.divisibility", 16]] for i in aligned})
    ptx = triton.compile(src, target=GPUTarget("cuda", 90, 32), options={"num_warps": K.NUM_WARPS}).asm["ptx"]
    found[f"{kernel}-{mode}-{wide}"] = [sorted(set(re.findall(r"ld\.global[.\w]*", ptx))),
                                        sorted(set(re.findall(r"st\.global[.\w]*", ptx))),
                                        sorted(set(re.findall(r"atom\.global[.\w]*", ptx)))]
print(json.dumps(found))
"""


@pytest.fixture(scope="module")
def hopper_ptx(tmp_path_factory):
    """PTX memory instructions of every kernel variant compiled for sm_90, in a fresh process
    (compiling needs no GPU: Triton ships ptxas; the interpreter must be off there) with an
    empty cache, so the source really compiles."""
    import json
    import subprocess
    import sys

    env = {k: v for k, v in os.environ.items() if k != "TRITON_INTERPRET"}
    env["TRITON_CACHE_DIR"] = str(tmp_path_factory.mktemp("triton_cache"))
    root = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
    env["PYTHONPATH"] = root + os.pathsep + env.get("PYTHONPATH", "")
    run = subprocess.run([sys.executable, "-c", _COMPILE_SCRIPT, json.dumps(COMPILED)], env=env, cwd=root,
                         capture_output=True, text=True, timeout=600)
    assert run.returncode == 0, run.stderr[-3000:]
    found = json.loads(run.stdout.strip().splitlines()[-1])
    if found is None:
        pytest.skip("triton without its NVIDIA backend")
    return found


@pytest.mark.skipif(CUDA, reason="on a GPU the kernels compile and run in the tests above")
@pytest.mark.parametrize("kernel,mode,wide", COMPILED)
def test_kernels_compile_for_hopper_with_16_byte_memory_access(kernel, mode, wide, hopper_ptx):
    """The interpreted source also compiles for sm_90 (the interpreter is lenient, e.g. about
    non-constexpr globals); with planes of a multiple of 16 slots, every global load and
    store of counts and train is a 16-byte vector (the other accesses are the flag word,
    encode's load of the first count (the value of slots past the end) and, with the range,
    the range words: an 8-byte load and a 64-bit atomic max each, the ticket's atomic add and
    exchange, and the last program's two 8-byte result stores)."""
    loads, stores, atomics = hopper_ptx[f"{kernel}-{mode}-{wide}"]
    extremes = kernel.endswith("extremes")
    words = kernel.startswith("encode-words")  # counts loaded as words: int64 (four int16 counts, ``wide``) or int32
    first = {"ld.global.b64" if wide else "ld.global.b32"} if words else {"ld.global.b16"}
    others = (first if kernel.startswith("encode") else set()) | ({"ld.global.b64"} if extremes else set())
    vector = "ld.global.v2.b64" if words and wide else "ld.global.v4.b32"
    assert loads and set(loads) - others <= {vector}, loads
    assert vector in loads
    assert stores and set(stores) - {"st.global.b32", "st.global.b64"} <= {"st.global.v4.b32"}, stores
    assert "st.global.v4.b32" in stores and ("st.global.b64" in stores) == extremes
    assert {a.split(".")[-2] for a in atomics} == ({"max", "add", "exch"} if extremes else set()), atomics
    assert all(".acq_rel." in a for a in atomics), atomics
