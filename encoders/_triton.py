"""Triton kernels for CUDA encode/decode: one read of the counts, one write of the train.

The torch step loop (:mod:`encoders._kernels` over torch ops, T launches and temporaries
per call) stays the reference every kernel is tested against bit for bit. Here encode is
one launch: each program loads a block of counts once and writes its slots of the ``T``
planes; decode is one launch: each program reads its slots of every plane once, checks
the spike values, sums them by Horner's rule (or plainly, for rate and graded codes) and
writes the counts; a program that saw a bad value raises a flag, which the host reads
(the reference path then names the value). Arithmetic is 32-bit where every value fits
(counts of at most 2 bytes, shifts below 31), else 64-bit.

Encode can also find the counts' range in the same pass (``extremes=True``; with ``T = 0``
it is a min/max kernel alone): each program reduces its block and raises two words with
``atomic_max``; the last program (a ticket counter) copies them to pinned host memory,
where decode's kernel writes its flag too, so the host reads both after one wait on the
stream, with no copy launched. Neither the range words nor the flag are cleared between
calls (a clearing launch costs as much as the read-back): every call stamps its own number
(``epoch``) into them, so a word from an earlier call never wins, and the host keeps one
set of words per thread and device (calls of one thread are sequential: each reads its
words back before returning). Compiled kernels are cached and launched directly after
their first JIT launch (see :func:`_launch`); an H200 measured both against the JIT
launcher and device words in ``benchmarks/encoders_parts.py``.

Triton ships with the CUDA builds of torch; without it (or without CUDA) the torch path
runs. Tests run these kernels on CPU tensors under ``TRITON_INTERPRET=1``.
"""
from __future__ import annotations

import threading

import torch

from . import _modes
from ._modes import wide_words

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - CPU-only torch builds
    triton = None

BLOCK = 2048  # slots per program: 8 KB of int32 counts or 2 KB per int8 plane
NUM_WARPS = 4
MAX_T_CHUNK = 64  # steps per program (a long rate train spreads over a second grid axis)
EPOCH_BITS = 32  # range words: call number << 32 | the value offset into [0, 2**32)
MAX_EPOCH = 2**31 - 2  # epochs are int32 kernel arguments; after this many calls the words are cleared once

if triton is not None:
    # Kernels read only constexpr globals: the modes, as constexpr copies.
    RATE_U = tl.constexpr(_modes.RATE_U)
    RATE_S = tl.constexpr(_modes.RATE_S)
    BITS_SM = tl.constexpr(_modes.BITS_SM)
    BITS_TWOS = tl.constexpr(_modes.BITS_TWOS)
    NAF = tl.constexpr(_modes.NAF)
    GRADED = tl.constexpr(_modes.GRADED)

    # ``n`` stays specialized: a multiple of 16 lets the planes' loads and stores be 16-byte vectors.
    @triton.jit(do_not_specialize=["T", "msb", "t_chunk", "epoch"])
    def _encode_kernel(c_ptr, out_ptr, ext_ptr, res_ptr, n, T, msb, t_chunk, epoch,
                       MODE: tl.constexpr, WIDE: tl.constexpr, EXTREMES: tl.constexpr,
                       BLOCK: tl.constexpr):  # pragma: no cover - compiled
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        inside = offs < n
        v = tl.load(c_ptr + offs, mask=inside, other=0)
        if WIDE:
            v = v.to(tl.int64)
        else:
            v = v.to(tl.int32)
        neg = v < 0
        a = tl.where(neg, -v, v)  # |c| (in range: at most 2**62, or 2**15 in 32-bit words)
        x = a + (a >> 1)  # NAF: digit k = bit k of x minus bit k + 1 of |c|
        t0 = tl.program_id(1) * t_chunk
        for i in range(0, tl.minimum(t_chunk, T - t0)):
            t = t0 + i
            k = msb * (T - 1 - t) + (1 - msb) * t  # bit weighed by this step
            if MODE == RATE_U:
                d = (v > t).to(v.dtype)
            elif MODE == RATE_S:
                d = (a > t).to(v.dtype)
                d = tl.where(neg, -d, d)
            elif MODE == BITS_SM:
                d = (a >> k) & 1
                d = tl.where(neg, -d, d)
            elif MODE == NAF:
                d = ((x >> k) & 1) - (((a >> k) >> 1) & 1)  # two shifts: k + 1 may be 64
                d = tl.where(neg, -d, d)
            elif MODE == GRADED:
                d = tl.where(t == 0, v, 0)
            else:  # BITS_U, BITS_TWOS: the arithmetic shift gives two's-complement bits
                d = (v >> k) & 1
            tl.store(out_ptr + t.to(tl.int64) * n + offs, d.to(tl.int8), mask=inside)
        # The range after the stores (they are under way while the block reduces).
        if EXTREMES:  # counts of at most 4 bytes: ext = [max word, min word, ticket], words epoch << 32 | value
            if tl.program_id(1) == 0:  # reduced in the words' own width, widened once
                stamp = epoch.to(tl.int64) << 32
                top = stamp + (tl.max(tl.where(inside, v, -2147483648), axis=0).to(tl.int64) + 2147483648)
                bottom = stamp + (2147483647 - tl.min(tl.where(inside, v, 2147483647), axis=0).to(tl.int64))
                # Most blocks raise neither word: read first, so few atomics meet on the two words.
                tl.atomic_max(ext_ptr, top, mask=top > tl.load(ext_ptr))
                tl.atomic_max(ext_ptr + 1, bottom, mask=bottom > tl.load(ext_ptr + 1))
                # The last program to take a ticket (ext[2]) sees every other program's words
                # (acquire-release atomics), copies them to res (host memory when pinned, so
                # the host reads them without a copy) and puts the ticket counter back to 0.
                if tl.atomic_add(ext_ptr + 2, 1) == tl.num_programs(0) - 1:
                    tl.store(res_ptr, tl.atomic_add(ext_ptr, 0))
                    tl.store(res_ptr + 1, tl.atomic_add(ext_ptr + 1, 0))
                    tl.atomic_xchg(ext_ptr + 2, 0)

    @triton.jit(do_not_specialize=["T", "msb", "lo", "hi", "epoch"])
    def _decode_kernel(s_ptr, acc_ptr, bad_ptr, n, T, msb, lo, hi, epoch,
                       MODE: tl.constexpr, WIDE: tl.constexpr, BLOCK: tl.constexpr):  # pragma: no cover - compiled
        offs = tl.program_id(0).to(tl.int64) * BLOCK + tl.arange(0, BLOCK)
        inside = offs < n
        # T >= 1 (the host answers T = 0 itself); from the most significant step (Horner's rule).
        # Which loop form each mode takes is measured (H200, device time per call, 25 M slots):
        # the first step peeled off the loop is faster for two's complement (78 against 89 us
        # at T = 5, where the loop selected -v at step 0) and graded (18 against 24 us at
        # T = 1), slower for the others (bitwise T = 4: 58 against 48 us; binary T = 15: 213
        # against 142 us).
        if MODE == BITS_TWOS or MODE == GRADED:
            t = (1 - msb) * (T - 1)
            v = tl.load(s_ptr + t.to(tl.int64) * n + offs, mask=inside, other=0)
            if WIDE:
                v = v.to(tl.int64)
            else:
                v = v.to(tl.int32)
            bad = ((v < lo) | (v > hi)).to(tl.int32)
            if MODE == BITS_TWOS:
                acc = -v  # the top step weighs -2**(T-1)
            else:
                acc = v
            for i in range(1, T):
                t = msb * i + (1 - msb) * (T - 1 - i)
                v = tl.load(s_ptr + t.to(tl.int64) * n + offs, mask=inside, other=0).to(acc.dtype)
                bad = bad | ((v < lo) | (v > hi)).to(tl.int32)
                if MODE == GRADED:
                    acc = acc + v
                else:
                    acc = acc * 2 + v
        else:
            if WIDE:
                acc = tl.zeros([BLOCK], dtype=tl.int64)
            else:
                acc = tl.zeros([BLOCK], dtype=tl.int32)
            bad = tl.zeros([BLOCK], dtype=tl.int32)
            for i in range(0, T):
                t = msb * i + (1 - msb) * (T - 1 - i)
                v = tl.load(s_ptr + t.to(tl.int64) * n + offs, mask=inside, other=0).to(acc.dtype)
                bad = bad | ((v < lo) | (v > hi)).to(tl.int32)
                if MODE == RATE_U or MODE == RATE_S:
                    acc = acc + v
                else:
                    acc = acc * 2 + v
        tl.store(acc_ptr + offs, acc.to(acc_ptr.dtype.element_ty), mask=inside)
        seen = tl.max(bad, axis=0)
        tl.store(bad_ptr, epoch, mask=seen > 0)  # every writer writes this call's number: no race to lose


def available() -> bool:
    """Whether the Triton kernels can run (triton importable)."""
    return triton is not None


# Read-backs through pinned host memory, which the kernels write (mapped, so no copy): the
# decode flag, and the range words the last encode program copies there; then one wait on
# the stream. False: ``.item()`` / ``.tolist()`` of device words (a pageable copy and a wait).
PINNED = True


class _Words:
    """One thread's range words and bad-value flag on one device, and its call counter."""

    __slots__ = ("ext", "ext_host", "flag", "dummy", "epoch", "pinned")

    def __init__(self, device: torch.device) -> None:
        self.ext = torch.zeros(5, dtype=torch.int64, device=device)  # max, min, ticket; res (unpinned)
        self.dummy = torch.zeros(16, dtype=torch.int8, device=device)  # a train pointer for T = 0
        self.pinned = PINNED and device.type == "cuda"
        if self.pinned:
            self.ext_host = torch.zeros(2, dtype=torch.int64, pin_memory=True)
            self.flag = torch.zeros(1, dtype=torch.int32, pin_memory=True)
        else:
            self.ext_host = self.ext[3:]
            self.flag = torch.zeros(1, dtype=torch.int32, device=device)
        self.epoch = 0

    def next_epoch(self) -> int:
        """A number no earlier call on these words used (words cleared when they run out)."""
        if self.epoch >= MAX_EPOCH:
            self.ext.zero_()
            self.ext_host.zero_()
            self.flag.zero_()
            self.epoch = 0
        self.epoch += 1
        return self.epoch

    def range_words(self, epoch: int) -> list[int]:
        """The two range words of call ``epoch``, read back once the queued kernels are done
        (from the words the last program wrote; from the device words, should those lack
        this call's stamp)."""
        if self.pinned:
            torch.cuda.current_stream(self.ext.device).synchronize()
        words = self.ext_host.tolist()
        if words[0] >> EPOCH_BITS != epoch or words[1] >> EPOCH_BITS != epoch:  # pragma: no cover - defensive
            words = self.ext[:2].tolist()
        return words

    def flag_word(self) -> int:
        """The bad-value flag, once the queued kernels are done."""
        if self.pinned:
            torch.cuda.current_stream(self.ext.device).synchronize()
        return int(self.flag.item())


_LOCAL = threading.local()


def _no_pinned() -> None:  # pragma: no cover - a driver that cannot map pinned memory
    """Device words from now on (this thread's words are rebuilt on next use)."""
    global PINNED
    PINNED = False
    _LOCAL.words = {}


def _words(device: torch.device) -> _Words:
    per = getattr(_LOCAL, "words", None)
    if per is None:
        per = _LOCAL.words = {}
    w = per.get(device)
    if w is None:
        w = per[device] = _Words(device)
    return w


# Compiled kernels by everything Triton specializes them on, launched without Triton's
# per-call argument binding (the JIT launcher costs tens of microseconds a call on a busy
# host). The first launch of each key goes through the JIT, which compiles and returns it.
_COMPILED: dict[tuple, object] = {}
FAST_LAUNCH = True


def _int_kind(v: int, specialized: bool) -> tuple:
    """What Triton's specialization sees of an integer argument: its width, and (when
    specialized) whether it is 1 or a multiple of 16."""
    width = 32 if -2**31 <= v < 2**31 else 64 if -2**63 <= v < 2**63 else 65
    return (width, v == 1, v % 16 == 0) if specialized else (width,)


def _launch(kernel, grid: tuple[int, int], key: tuple, args: tuple, ptrs: tuple[torch.Tensor, ...]) -> None:
    """``kernel[grid](*args)`` (every parameter in order, constexprs included); ``key``
    names the constexprs and specialized integers, ``ptrs`` are the tensor arguments."""
    if FAST_LAUNCH and ptrs[0].is_cuda:
        key = (key, NUM_WARPS, torch.cuda.current_device()) + tuple((p.dtype, p.data_ptr() % 16 == 0) for p in ptrs)
        compiled = _COMPILED.get(key)
        if compiled is not None:
            compiled[grid + (1,)](*args)
            return
        compiled = kernel[grid](*args, num_warps=NUM_WARPS)
        if compiled is not None and hasattr(compiled, "__getitem__") and hasattr(compiled, "packed_metadata"):
            _COMPILED[key] = compiled
        return
    kernel[grid](*args, num_warps=NUM_WARPS)


def extremes_fit(c: torch.Tensor) -> bool:
    """Whether :func:`encode_triton` can find the range of ``c`` (counts of at most 4 bytes)."""
    return c.element_size() <= 4 and not c.is_floating_point()


def encode_triton(c: torch.Tensor, mode: int, T: int, msb_first: bool, out: torch.Tensor | None = None,
                  extremes: bool = False) -> torch.Tensor | tuple[torch.Tensor, int, int]:
    """int8 train ``[T, *c.shape]`` of integer counts ``c`` (as the reference step loop
    writes it for in-range counts; any counts are safe), into ``out`` (contiguous int8 on
    c's device) if given. With ``extremes`` (counts of at most 4 bytes, see
    :func:`extremes_fit`), returns ``(train, min, max)``: the counts' range found in the
    same pass, read back once ((0, 0) when empty); ``T = 0`` then makes it a min/max pass."""
    flat = c.contiguous().reshape(-1)
    n = flat.numel()
    if out is None:
        out = torch.empty((T,) + tuple(c.shape), dtype=torch.int8, device=c.device)
    if extremes and not extremes_fit(flat):
        raise ValueError(f"the range words hold counts of at most 4 bytes, got {flat.dtype}")
    if n and (T or extremes):
        t_chunk = max(1, min(T, MAX_T_CHUNK))
        grid = (triton.cdiv(n, BLOCK), max(1, triton.cdiv(T, t_chunk)))
        wide = wide_words(flat.element_size(), T, mode)
        w = _words(c.device) if extremes else None
        epoch = w.next_epoch() if extremes else 0
        dest = out if T else w.dummy
        ext, res = (w.ext, w.ext_host) if extremes else (flat, flat)
        _launch(_encode_kernel, grid, ("encode", mode, wide, extremes, BLOCK, _int_kind(n, True), _int_kind(T, False)),
                (flat, dest, ext, res, n, T, int(msb_first), t_chunk, epoch, mode, wide, extremes, BLOCK),
                (flat, dest, ext, res))
        if extremes:
            top, bottom = w.range_words(epoch)
            if top >> EPOCH_BITS != epoch or bottom >> EPOCH_BITS != epoch:  # pragma: no cover - a broken kernel
                raise RuntimeError("the encode kernel did not report the counts' range")
            mask = (1 << EPOCH_BITS) - 1
            return out, 2**31 - 1 - (bottom & mask), (top & mask) - 2**31
    if extremes:
        return out, 0, 0
    return out


def decode_triton(s: torch.Tensor, mode: int, msb_first: bool, lo: int, hi: int, reach: int, acc_dtype: torch.dtype,
                  out: torch.Tensor | None = None) -> torch.Tensor | None:
    """Counts of an int8 train ``[T, *shape]`` in ``acc_dtype`` (into ``out`` if given), or
    None if a spike value lies outside ``[lo, hi]``. ``reach`` bounds every partial sum
    (32-bit arithmetic below 2**31); sums wrap modulo the width of ``acc_dtype``."""
    T = int(s.shape[0])
    flat = s.contiguous()
    n = flat.numel() // T if T else int(torch.Size(s.shape[1:]).numel())
    acc = torch.empty(tuple(s.shape[1:]), dtype=acc_dtype, device=s.device) if out is None else out
    if n == 0:
        return acc
    if T == 0:  # no steps: every count is 0
        return acc.zero_()
    w = _words(s.device)
    epoch = w.next_epoch()
    wide = reach >= 2**31
    try:
        _launch(_decode_kernel, (triton.cdiv(n, BLOCK), 1), ("decode", mode, wide, BLOCK, _int_kind(n, True)),
                (flat, acc, w.flag, n, T, int(msb_first), lo, hi, epoch, mode, wide, BLOCK), (flat, acc, w.flag))
    except ValueError as e:  # pragma: no cover - a driver that cannot map pinned memory
        if not w.pinned or "Pointer argument" not in str(e):
            raise
        _no_pinned()
        return decode_triton(s, mode, msb_first, lo, hi, reach, acc_dtype, out)
    if w.flag_word() == epoch:
        return None
    return acc
