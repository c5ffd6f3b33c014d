"""Triton kernels for CUDA encode/decode: one read of the counts, one write of the train.

The torch step loop (:mod:`encoders._kernels` over torch ops, T launches and temporaries
per call) stays the reference every kernel is tested against bit for bit. Here encode is
one launch: each program loads a block of counts once and writes its slots of the ``T``
planes; decode is one launch: each program reads its slots of every plane once, checks
the spike values, sums them by Horner's rule (or plainly, for rate and graded codes) and
writes the counts; a program that saw a bad value raises a flag, which the host reads
(the reference path then names the value). Arithmetic is 32-bit where every value fits
(counts of at most 2 bytes, shifts below 31), else 64-bit. Encode's programs (a few per
streaming multiprocessor) each walk a share of the blocks, so the range below is reduced
and raised once per program. Int8 counts (T <= 7 bit steps, T <= 127 rate steps, 8-bit
graded payloads) are decoded four slots per int32 word: the spike values are checked and
summed in each byte at once (the kernel was bound by per-slot integer work, not memory).

Encode can also find the counts' range in the same pass (``extremes=True``; with ``T = 0``
it is a min/max kernel alone): each program reduces its blocks and raises two words with
``atomic_max``; the last program (a ticket counter) copies them to pinned host memory,
where decode's kernel writes its flag too, so the host reads both after one wait on the
stream, with no copy launched. Neither the range words nor the flag are cleared between
calls (a clearing launch costs as much as the read-back): every call stamps its own number
(``epoch``) into them, so a word from an earlier call never wins, and the host keeps one
set of words per thread and device (calls of one thread are sequential: each reads its
words back before returning). Compiled kernels are cached and launched directly after
their first JIT launch (:mod:`encoders.triton_launch`); an H200 measured both against the
JIT launcher and device words in ``benchmarks/encoders_parts.py`` and
``benchmarks/encoders_host.py``.

Triton ships with the CUDA builds of torch; without it (or without CUDA) the torch path
runs. Tests run these kernels on CPU tensors under ``TRITON_INTERPRET=1``.
"""
from __future__ import annotations

import threading

import torch

from . import _modes
from ._modes import wide_words
from .triton_launch import int_kind, launch, pointers

try:
    import triton
    import triton.language as tl
except ImportError:  # pragma: no cover - CPU-only torch builds
    triton = None

BLOCK = 2048  # slots per block: 4 KB of int16 counts or 2 KB per int8 plane
NUM_WARPS = 4
PROGRAMS_PER_SM = 16  # encode programs per streaming multiprocessor, each walking its share of the blocks (0: one per block)
DECODE_PROGRAMS_PER_SM = 0  # the same for decode
INTERPRETED_PROGRAMS = 3  # programs of a launch without a GPU (Triton's interpreter): every program walks blocks
DECODE_UNROLL = 1  # decode steps loaded together
WORD_DECODE = True  # int8 counts decoded four slots per int32 word where they fit (see _words_fit)
WORD_ENCODE = True  # sign-magnitude and NAF trains of T <= 7 from int8/int16 counts written four slots per int32 word
WORD_BLOCK = BLOCK // 4  # words per program of the word kernel (16 bytes per thread at 4 warps)
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

    @triton.jit
    def _raise_range(ext_ptr, res_ptr, top_v, bottom_v, epoch):  # pragma: no cover - compiled
        """Raise this program's range (counts of at most 4 bytes, reduced here, widened once) into
        ext = [max word, min word, ticket], words ``epoch << 32 | value``; the last program copies
        both words to ``res``."""
        stamp = epoch.to(tl.int64) << 32
        top = stamp + (tl.max(top_v, axis=0).to(tl.int64) + 2147483648)
        bottom = stamp + (2147483647 - tl.min(bottom_v, axis=0).to(tl.int64))
        # Most programs raise neither word: read first, so few atomics meet on the two words.
        tl.atomic_max(ext_ptr, top, mask=top > tl.load(ext_ptr))
        tl.atomic_max(ext_ptr + 1, bottom, mask=bottom > tl.load(ext_ptr + 1))
        # The last program to take a ticket (ext[2]) sees every other program's words
        # (acquire-release atomics), copies them to res (host memory when pinned, so
        # the host reads them without a copy) and puts the ticket counter back to 0.
        if tl.atomic_add(ext_ptr + 2, 1) == tl.num_programs(0) - 1:
            tl.store(res_ptr, tl.atomic_add(ext_ptr, 0))
            tl.store(res_ptr + 1, tl.atomic_add(ext_ptr + 1, 0))
            tl.atomic_xchg(ext_ptr + 2, 0)

    # ``n`` stays specialized: a multiple of 16 lets the planes' loads and stores be 16-byte vectors.
    @triton.jit(do_not_specialize=["T", "t_chunk", "epoch"])
    def _encode_kernel(c_ptr, out_ptr, ext_ptr, res_ptr, n, T, t_chunk, epoch,
                       MODE: tl.constexpr, WIDE: tl.constexpr, EXTREMES: tl.constexpr, MSB: tl.constexpr,
                       BLOCK: tl.constexpr):  # pragma: no cover - compiled
        # Each program walks blocks pid, pid + programs, ... (a grid of a few programs per SM:
        # the range is reduced and raised once per program, not once per block).
        t0 = tl.program_id(1) * t_chunk
        steps = tl.minimum(t_chunk, T - t0)
        # Slots past the end load the first count: they leave the range as it is.
        first = tl.load(c_ptr)
        if WIDE:
            first = first.to(tl.int64)
        else:
            first = first.to(tl.int32)
        top_v = tl.zeros([BLOCK], dtype=first.dtype) + first
        bottom_v = top_v
        for b in range(tl.program_id(0), tl.cdiv(n, BLOCK), tl.num_programs(0)):
            offs = tl.cast(b, tl.int64) * BLOCK + tl.arange(0, BLOCK)
            inside = offs < n
            v = tl.load(c_ptr + offs, mask=inside, other=first).to(first.dtype)
            neg = v < 0
            a = tl.where(neg, -v, v)  # |c| (in range: at most 2**62, or 2**15 in 32-bit words)
            sign = tl.where(neg, -1, 1).to(v.dtype)
            # NAF: digit k = bit k of x minus bit k of y, x = |c| + |c| >> 1, y = |c| >> 1;
            # a negative count swaps the two (the digit's sign folded in once, not per step).
            half = a >> 1
            x = tl.where(neg, half, a + half)
            y = tl.where(neg, a + half, half)
            for i in range(0, steps):
                t = t0 + i
                if MSB:
                    k = T - 1 - t  # bit weighed by this step
                else:
                    k = t
                if MODE == RATE_U:
                    d = (v > t).to(v.dtype)
                elif MODE == RATE_S:
                    d = tl.where(a > t, sign, 0)
                elif MODE == BITS_SM:
                    d = ((a >> k) & 1) * sign
                elif MODE == NAF:
                    d = ((x >> k) & 1) - ((y >> k) & 1)
                elif MODE == GRADED:
                    d = tl.where(t == 0, v, 0)
                else:  # BITS_U, BITS_TWOS: the arithmetic shift gives two's-complement bits
                    d = (v >> k) & 1
                tl.store(out_ptr + t.to(tl.int64) * n + offs, d.to(tl.int8), mask=inside)
            if EXTREMES:  # elementwise over the program's blocks, reduced once after the loop
                top_v = tl.maximum(top_v, v)
                bottom_v = tl.minimum(bottom_v, v)
        if EXTREMES:
            if tl.program_id(1) == 0:
                _raise_range(ext_ptr, res_ptr, top_v, bottom_v, epoch)

    @triton.jit(do_not_specialize=["T", "lo", "hi", "epoch"])
    def _decode_kernel(s_ptr, acc_ptr, bad_ptr, n, T, lo, hi, epoch,
                       MODE: tl.constexpr, WIDE: tl.constexpr, MSB: tl.constexpr, UNROLL: tl.constexpr,
                       BLOCK: tl.constexpr):  # pragma: no cover - compiled
        # T >= 1 (the host answers T = 0 itself). Steps from the most significant (Horner's
        # rule), UNROLL at a time so their loads are in flight together; the first group is
        # padded in front with steps that load nothing (0 * 2 + 0 keeps the sum 0). Two's
        # complement sums the bits as unsigned and sign-extends from bit T - 1 at the end.
        pad = (UNROLL - T % UNROLL) % UNROLL
        bad = tl.zeros([BLOCK], dtype=tl.int32)
        for b in range(tl.program_id(0), tl.cdiv(n, BLOCK), tl.num_programs(0)):
            offs = tl.cast(b, tl.int64) * BLOCK + tl.arange(0, BLOCK)
            inside = offs < n
            if WIDE:
                acc = tl.zeros([BLOCK], dtype=tl.int64)
            else:
                acc = tl.zeros([BLOCK], dtype=tl.int32)
            for g in range(0, T + pad, UNROLL):
                for u in tl.static_range(UNROLL):
                    j = g + u - pad  # Horner position: 0 is the most significant step
                    if MSB:
                        t = j
                    else:
                        t = T - 1 - j
                    v = tl.load(s_ptr + t.to(tl.int64) * n + offs, mask=inside & (j >= 0), other=0).to(acc.dtype)
                    bad = bad | ((v < lo) | (v > hi)).to(tl.int32)
                    if MODE == RATE_U or MODE == RATE_S or MODE == GRADED:
                        acc = acc + v
                    else:
                        acc = acc * 2 + v
            if MODE == BITS_TWOS:  # the top step weighs -2**(T-1)
                if WIDE:
                    acc = (acc << (64 - T)) >> (64 - T)
                else:
                    acc = (acc << (32 - T)) >> (32 - T)
            tl.store(acc_ptr + offs, acc.to(acc_ptr.dtype.element_ty), mask=inside)
        seen = tl.max(bad, axis=0)
        tl.store(bad_ptr, epoch, mask=seen > 0)  # every writer writes this call's number: no race to lose


    # Constants of the word kernel as int32 (bytes of 0x80, 0x7f, 0x01, 0xfe).
    H80 = tl.constexpr(-2139062144)
    H7F = tl.constexpr(2139062143)
    H01 = tl.constexpr(16843009)
    HFE = tl.constexpr(-16843010)

    @triton.jit
    def _bytes_sub(a, b):  # pragma: no cover - compiled
        """a - b in each byte of int32 words, modulo 256 (no borrow across bytes)."""
        return ((a | H80) - (b & H7F)) ^ ((a ^ ~b) & H80)

    @triton.jit
    def _bytes_add(a, b):  # pragma: no cover - compiled
        """a + b in each byte of int32 words, modulo 256 (no carry across bytes)."""
        return ((a & H7F) + (b & H7F)) ^ ((a ^ b) & H80)

    @triton.jit
    def _lane(w, j: tl.constexpr, C16: tl.constexpr):  # pragma: no cover - compiled
        """Count ``j`` of a word as int32: four int16 counts in an int64 word (``C16``), or four
        int8 counts in an int32 word (little-endian: count j of the word is slot 4 w + j)."""
        if C16:
            h = (w >> (32 * (j // 2))).to(tl.int32)  # the low 32 bits of the shifted word
            return (h << (16 - 16 * (j % 2))) >> 16
        else:
            return (w << (24 - 8 * j)) >> 24

    @triton.jit
    def _pack(x0, x1, x2, x3):  # pragma: no cover - compiled
        """The low bytes of four int32 values as the bytes of one int32 word (x0 lowest)."""
        return (x0 & 255) | ((x1 & 255) << 8) | ((x2 & 255) << 16) | (x3 << 24)

    @triton.jit(do_not_specialize=["T", "epoch"])
    def _encode_words_kernel(c_ptr, out_ptr, ext_ptr, res_ptr, n, T, epoch,
                             MODE: tl.constexpr, EXTREMES: tl.constexpr, MSB: tl.constexpr, C16: tl.constexpr,
                             BLOCK: tl.constexpr):  # pragma: no cover - compiled
        # Encode of int8/int16 counts four slots per word (``n`` words), sign-magnitude bits and
        # NAF digits (MODE BITS_SM or NAF): the bits sent at T <= 7 steps are in the low byte of
        # |c| (of the NAF's two bit rows), so four low bytes are packed into one int32 word once
        # and every step is a few operations on that word, written as one int32 word per plane.
        # (Unsigned and two's-complement bits measured no faster this way: the per-slot kernel
        # writes them.)
        first = tl.load(c_ptr)  # slots past the end load the first four counts: the range stays
        top_v = tl.zeros([BLOCK], dtype=tl.int32) + _lane(first, 0, C16)
        bottom_v = top_v
        for b in range(tl.program_id(0), tl.cdiv(n, BLOCK), tl.num_programs(0)):
            offs = tl.cast(b, tl.int64) * BLOCK + tl.arange(0, BLOCK)
            inside = offs < n
            w = tl.load(c_ptr + offs, mask=inside, other=first)
            c0 = _lane(w, 0, C16)
            c1 = _lane(w, 1, C16)
            c2 = _lane(w, 2, C16)
            c3 = _lane(w, 3, C16)
            if EXTREMES:
                top_v = tl.maximum(top_v, tl.maximum(tl.maximum(c0, c1), tl.maximum(c2, c3)))
                bottom_v = tl.minimum(bottom_v, tl.minimum(tl.minimum(c0, c1), tl.minimum(c2, c3)))
            if MODE == BITS_SM:  # bits of |c|; each byte's value when set: 1, or -1 (0xff) for a negative count
                mag = _pack(tl.abs(c0), tl.abs(c1), tl.abs(c2), tl.abs(c3))
                val = _pack(c0 >> 31, c1 >> 31, c2 >> 31, c3 >> 31) | H01
            else:  # NAF: digit k = bit k of x minus bit k of y, the rows swapped for a negative count
                a0 = tl.abs(c0)
                a1 = tl.abs(c1)
                a2 = tl.abs(c2)
                a3 = tl.abs(c3)
                xs = _pack(tl.where(c0 < 0, a0 >> 1, a0 + (a0 >> 1)), tl.where(c1 < 0, a1 >> 1, a1 + (a1 >> 1)),
                           tl.where(c2 < 0, a2 >> 1, a2 + (a2 >> 1)), tl.where(c3 < 0, a3 >> 1, a3 + (a3 >> 1)))
                ys = _pack(tl.where(c0 < 0, a0 + (a0 >> 1), a0 >> 1), tl.where(c1 < 0, a1 + (a1 >> 1), a1 >> 1),
                           tl.where(c2 < 0, a2 + (a2 >> 1), a2 >> 1), tl.where(c3 < 0, a3 + (a3 >> 1), a3 >> 1))
            for t in range(0, T):
                if MSB:
                    k = T - 1 - t
                else:
                    k = t
                if MODE == BITS_SM:
                    plane = val & (((mag >> k) & H01) * 255)
                else:
                    plane = _bytes_sub((xs >> k) & H01, (ys >> k) & H01)
                tl.store(out_ptr + tl.cast(t, tl.int64) * n + offs, plane, mask=inside)
        if EXTREMES:
            _raise_range(ext_ptr, res_ptr, top_v, bottom_v, epoch)

    @triton.jit(do_not_specialize=["T", "epoch"])
    def _decode_words_kernel(s_ptr, acc_ptr, bad_ptr, n, T, epoch,
                             MODE: tl.constexpr, MSB: tl.constexpr, BLOCK: tl.constexpr):  # pragma: no cover
        # Decode of int8 counts, four slots per int32 word (``n`` words per step): the spike
        # values are checked and summed in each byte at once. Sums stay below 256 per byte
        # (Horner's rule for T <= 7 steps, rate codes for T <= 127); signed codes sum their
        # +1 and -1 spikes apart and subtract them at the end, byte by byte.
        bad = tl.zeros([BLOCK], dtype=tl.int32)
        for b in range(tl.program_id(0), tl.cdiv(n, BLOCK), tl.num_programs(0)):
            offs = tl.cast(b, tl.int64) * BLOCK + tl.arange(0, BLOCK)
            inside = offs < n
            pos = tl.zeros([BLOCK], dtype=tl.int32)
            neg = tl.zeros([BLOCK], dtype=tl.int32)
            for i in range(0, T):
                if MSB:
                    t = i
                else:
                    t = T - 1 - i
                w = tl.load(s_ptr + t.to(tl.int64) * n + offs, mask=inside, other=0)
                if MODE == GRADED:  # payloads in [-127, 127]: a byte of -128 is the one bad value
                    x = w ^ H80
                    bad = bad | ((x - H01) & ~x & H80)  # a zero byte of x (exact for the word)
                    pos = _bytes_add(pos, w)
                elif MODE == RATE_S or MODE == BITS_SM or MODE == NAF:  # bytes 0, 1 and -1
                    one = w & H01  # spike
                    minus = (w >> 7) & H01  # its sign bit
                    bad = bad | (w ^ ((minus * 255) | one))
                    if MODE == RATE_S:
                        pos = pos + (one ^ minus)
                        neg = neg + minus
                    else:
                        pos = pos * 2 + (one ^ minus)
                        neg = neg * 2 + minus
                else:  # bytes 0 and 1
                    bad = bad | (w & HFE)
                    if MODE == RATE_U:
                        pos = pos + w
                    else:
                        pos = pos * 2 + w
            if MODE == RATE_S or MODE == BITS_SM or MODE == NAF:
                pos = _bytes_sub(pos, neg)
            elif MODE == BITS_TWOS:  # bit T - 1 weighs -2**(T-1): flip it and subtract it in each byte
                top = H01 << (T - 1)
                pos = _bytes_sub(pos ^ top, top)
            tl.store(acc_ptr + offs, pos, mask=inside)
        seen = tl.max((bad != 0).to(tl.int32), axis=0)
        tl.store(bad_ptr, epoch, mask=seen > 0)


def available() -> bool:
    """Whether the Triton kernels can run (triton importable)."""
    return triton is not None


# Read-backs through pinned host memory, which the kernels write (mapped, so no copy): the
# decode flag, and the range words the last encode program copies there; then one wait on
# the stream. False: ``.item()`` / ``.tolist()`` of device words (a pageable copy and a wait).
PINNED = True
SPIN_WAIT = True  # encode polls its pinned range words instead of waiting on the stream (benchmarks/encoders_host.py)


class _Words:
    """One thread's range words and bad-value flag on one device, and its call counter."""

    __slots__ = ("ext", "ext_host", "flag", "dummy", "epoch", "pinned", "host", "index", "streams")

    def __init__(self, device: torch.device) -> None:
        self.ext = torch.zeros(5, dtype=torch.int64, device=device)  # max, min, ticket; res (unpinned)
        self.dummy = torch.zeros(16, dtype=torch.int8, device=device)  # a train pointer for T = 0
        self.pinned = PINNED and device.type == "cuda"
        if self.pinned:
            self.ext_host = torch.zeros(2, dtype=torch.int64, pin_memory=True)
            self.flag = torch.zeros(1, dtype=torch.int32, pin_memory=True)
            self.host = (self.ext_host.numpy(), self.flag.numpy())  # views of the pinned words: cheap reads
        else:
            self.ext_host = self.ext[3:]
            self.flag = torch.zeros(1, dtype=torch.int32, device=device)
            self.host = None
        self.epoch = 0
        self.index = device.index if device.index is not None else 0
        self.streams: dict[int, torch.cuda.Stream] = {}  # torch's stream objects by raw stream, made once

    def stream(self) -> "torch.cuda.Stream":
        """The current CUDA stream of this device (its object made once per raw stream)."""
        raw = torch._C._cuda_getCurrentRawStream(self.index)
        stream = self.streams.get(raw)
        if stream is None:
            stream = self.streams[raw] = torch.cuda.current_stream(self.ext.device)
        return stream

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
            stream = self.stream()
            if SPIN_WAIT:  # the last program stamps both words: poll them until it has (or the stream is done)
                h = self.host[0]
                while int(h[0]) >> EPOCH_BITS != epoch or int(h[1]) >> EPOCH_BITS != epoch:
                    if stream.query():
                        break
            else:
                stream.synchronize()
            words = self.host[0].tolist()
        else:
            words = self.ext_host.tolist()
        if words[0] >> EPOCH_BITS != epoch or words[1] >> EPOCH_BITS != epoch:  # pragma: no cover - defensive
            words = self.ext[:2].tolist()
        return words

    def flag_word(self) -> int:
        """The bad-value flag, once the queued kernels are done."""
        if self.pinned:
            self.stream().synchronize()
            return int(self.host[1][0])
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


def _cdiv(a: int, b: int) -> int:
    """Ceiling of a / b for positive ints (``triton.cdiv`` is a JIT function: slow to call from the host)."""
    return -(-a // b)


_SMS: dict[int, int] = {}


def _programs(blocks: int, t: torch.Tensor, per_sm: int | None = None) -> int:
    """Programs along a launch's slot axis: ``per_sm`` (default ``PROGRAMS_PER_SM``) per
    streaming multiprocessor, each walking its share of ``blocks`` (one per block with 0)."""
    per_sm = PROGRAMS_PER_SM if per_sm is None else per_sm
    if not t.is_cuda:
        return max(1, min(blocks, INTERPRETED_PROGRAMS))
    if per_sm <= 0:
        return blocks
    index = t.device.index
    sms = _SMS.get(index)
    if sms is None:
        sms = _SMS[index] = torch.cuda.get_device_properties(t.device).multi_processor_count
    return max(1, min(blocks, sms * per_sm))


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
    flat = c if c.is_contiguous() else c.contiguous()
    if out is None:
        out = torch.empty((T,) + tuple(c.shape), dtype=torch.int8, device=c.device)
    if extremes and not extremes_fit(flat):
        raise ValueError(f"the range words hold counts of at most 4 bytes, got {flat.dtype}")
    words = _encode_launch(flat, mode, T, msb_first, out, extremes)
    if words is not None:
        w, epoch = words
        top, bottom = w.range_words(epoch)
        if top >> EPOCH_BITS != epoch or bottom >> EPOCH_BITS != epoch:  # pragma: no cover - a broken kernel
            raise RuntimeError("the encode kernel did not report the counts' range")
        mask = (1 << EPOCH_BITS) - 1
        return out, 2**31 - 1 - (bottom & mask), (top & mask) - 2**31
    if extremes:
        return out, 0, 0
    return out


def _encode_launch(flat: torch.Tensor, mode: int, T: int, msb_first: bool, out: torch.Tensor,
                   extremes: bool) -> tuple[_Words, int] | None:
    """Queue the encode kernel of :func:`encode_triton` on contiguous counts (nothing for no
    counts, or no steps without the range); with the range, the words it reports into and
    this call's number, read back by the caller."""
    n = flat.numel()
    if not n or not (T or extremes):
        return None
    cuda = flat.is_cuda
    w = _words(flat.device) if extremes else None
    epoch = w.next_epoch() if extremes else 0
    dest = out if T else w.dummy
    msb = bool(msb_first)
    if _encode_words_fit(flat, mode, T, dest):
        words, c16 = n // 4, flat.dtype == torch.int16
        packed = torch.int64 if c16 else torch.int32
        ptrs = pointers(flat, dest, w.ext, w.ext_host, views=(packed, torch.int32, None, None)) if extremes else \
            pointers(flat, dest, flat, flat, views=(packed, torch.int32, packed, packed))
        launch(_encode_words_kernel, (_programs(_cdiv(words, WORD_BLOCK), flat), 1),
               ("encode-words", flat.dtype, mode, extremes, msb, c16, WORD_BLOCK, int_kind(words, True)),
               ptrs, (words, T, epoch, mode, extremes, msb, c16, WORD_BLOCK), cuda, (("num_warps", NUM_WARPS),))
        return (w, epoch) if extremes else None
    t_chunk = max(1, min(T, MAX_T_CHUNK))
    grid = (_programs(_cdiv(n, BLOCK), flat), max(1, _cdiv(T, t_chunk)))
    wide = wide_words(flat.element_size(), T, mode)
    ptrs = pointers(flat, dest, w.ext, w.ext_host) if extremes else pointers(flat, dest, flat, flat)
    launch(_encode_kernel, grid, ("encode", flat.dtype, mode, wide, extremes, msb, BLOCK, int_kind(n, True),
                                  int_kind(T, False)),
           ptrs, (n, T, t_chunk, epoch, mode, wide, extremes, msb, BLOCK), cuda, (("num_warps", NUM_WARPS),))
    return (w, epoch) if extremes else None


# Modes the word encode writes, by the most steps it takes (bit codes: the bits in a count's low byte).
_WORD_ENCODE_STEPS = {_modes.BITS_SM: 7, _modes.NAF: 7}


def _encode_words_fit(flat: torch.Tensor, mode: int, T: int, out: torch.Tensor) -> bool:
    """Whether the word encode writes this train: int8 or int16 counts, ``1 <= T`` within the
    mode's bound, slots a multiple of 4, the counts aligned to their words and the train to 4 bytes."""
    if not WORD_ENCODE or T < 1 or T > _WORD_ENCODE_STEPS.get(mode, 0) or flat.numel() % 4:
        return False
    if flat.dtype not in (torch.int8, torch.int16):
        return False
    return flat.data_ptr() % (4 * flat.element_size()) == 0 and out.data_ptr() % 4 == 0


def decode_triton(s: torch.Tensor, mode: int, msb_first: bool, lo: int, hi: int, reach: int, acc_dtype: torch.dtype,
                  out: torch.Tensor | None = None) -> torch.Tensor | None:
    """Counts of an int8 train ``[T, *shape]`` in ``acc_dtype`` (into ``out`` if given), or
    None if a spike value lies outside ``[lo, hi]``. ``reach`` bounds every partial sum
    (32-bit arithmetic below 2**31); sums wrap modulo the width of ``acc_dtype``."""
    T = int(s.shape[0])
    flat = s if s.is_contiguous() else s.contiguous()
    n = flat.numel() // T if T else int(torch.Size(s.shape[1:]).numel())
    acc = torch.empty(tuple(s.shape[1:]), dtype=acc_dtype, device=s.device) if out is None else out
    if n == 0:
        return acc
    if T == 0:  # no steps: every count is 0
        return acc.zero_()
    try:
        w, epoch = _decode_launch(flat, mode, msb_first, lo, hi, reach, acc, n, T)
    except ValueError as e:  # pragma: no cover - a driver that cannot map pinned memory
        if not _words(s.device).pinned or "Pointer argument" not in str(e):
            raise
        _no_pinned()
        return decode_triton(s, mode, msb_first, lo, hi, reach, acc_dtype, out)
    if w.flag_word() == epoch:
        return None
    return acc


def _decode_launch(flat: torch.Tensor, mode: int, msb_first: bool, lo: int, hi: int, reach: int, acc: torch.Tensor,
                   n: int, T: int) -> tuple[_Words, int]:
    """Queue the decode kernel of :func:`decode_triton` (a contiguous train, ``n`` slots,
    ``T >= 1`` steps, into a contiguous ``acc``); the words its flag goes into and this
    call's number, read back by the caller."""
    w = _words(flat.device)
    epoch = w.next_epoch()
    msb = bool(msb_first)
    cuda = flat.is_cuda
    if _words_fit(mode, lo, hi, T, n, flat, acc):
        words = n // 4
        launch(_decode_words_kernel, (_programs(_cdiv(words, WORD_BLOCK), flat, DECODE_PROGRAMS_PER_SM), 1),
               ("decode-words", mode, msb, WORD_BLOCK, int_kind(words, True)),
               pointers(flat, acc, w.flag, views=(torch.int32, torch.int32, None)),
               (words, T, epoch, mode, msb, WORD_BLOCK), cuda, (("num_warps", NUM_WARPS),))
        return w, epoch
    wide = reach >= 2**31
    unroll = max(1, min(DECODE_UNROLL, T))
    launch(_decode_kernel, (_programs(_cdiv(n, BLOCK), flat, DECODE_PROGRAMS_PER_SM), 1),
           ("decode", flat.dtype, acc.dtype, mode, wide, msb, unroll, BLOCK, int_kind(n, True)),
           pointers(flat, acc, w.flag), (n, T, lo, hi, epoch, mode, wide, msb, unroll, BLOCK), cuda,
           (("num_warps", NUM_WARPS),))
    return w, epoch


# The spike values the word kernel checks, by mode.
_WORD_VALUES = {_modes.RATE_U: (0, 1), _modes.BITS_U: (0, 1), _modes.BITS_TWOS: (0, 1), _modes.RATE_S: (-1, 1),
                _modes.BITS_SM: (-1, 1), _modes.NAF: (-1, 1), _modes.GRADED: (-127, 127)}


def _words_fit(mode: int, lo: int, hi: int, T: int, n: int, flat: torch.Tensor, acc: torch.Tensor) -> bool:
    """Whether the word kernel decodes this train: int8 counts, slots a multiple of 4 and
    4-byte aligned, the mode's own spike values, and every byte's sums below 256."""
    if not WORD_DECODE or acc.dtype != torch.int8 or n % 4 or _WORD_VALUES.get(mode) != (lo, hi):
        return False
    if T > (127 if mode in (_modes.RATE_U, _modes.RATE_S) else 2**31 if mode == _modes.GRADED else 7):
        return False
    return flat.data_ptr() % 4 == 0 and acc.data_ptr() % 4 == 0 and acc.is_contiguous()
