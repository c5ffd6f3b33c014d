"""Where the wall time of a CUDA encode + decode pair goes, and what the kernel and wait options buy.

Counts and shape as benchmarks/encode_decode.py (int16 in [0, 15], (12, 1024, 2048), default T);
buffers reused (``encode(out=)`` + ``decode(out=)``), against the copy of the train's bytes
(torch ``copy_`` into a reused buffer), in interleaved rounds. Printed per scheme:
  * wall time of the copy and of the pair with each option of ``encoders._triton``:
    ``default`` (as shipped), ``per-slot encode`` (``WORD_ENCODE = False``: the per-slot
    encode kernel instead of four slots per word, for the sign-magnitude and NAF codes),
    ``stream wait`` (``SPIN_WAIT = False``: encode waits on the stream instead of polling its
    pinned range words), best / median, and the ratios;
  * the pair's timeline (median over rounds, us from the call): the public encode's checks
    before its launch, the launch, the wait for its range, the checks after it, and the same
    for decode;
  * device time of the encode kernel (per word / per slot) and of the decode kernel (CUDA
    events around 20 back-to-back launches) and of the copy.

Usage: python benchmarks/encoders_host.py [--rounds 30] [--schemes ...]  (CUDA only)
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks.timing, run as a script or as a module
    sys.path.insert(0, str(REPO))

import encoders as E  # noqa: E402
from benchmarks.timing import cuda_device_us, interleaved  # noqa: E402
from encoders import _modes, schemes, triton_launch  # noqa: E402

OPTIONS = {"default": {}, "per-slot encode": {"WORD_ENCODE": False}, "stream wait": {"SPIN_WAIT": False}}


def _with(kern, settings: dict, fn):
    """``fn`` run with the module's knobs set to ``settings`` (restored after)."""
    def run():
        saved = {k: getattr(kern, k) for k in settings}
        for k, v in settings.items():
            setattr(kern, k, v)
        try:
            fn()
        finally:
            for k, v in saved.items():
                setattr(kern, k, v)
    return run


def timeline(kern, counts, scheme, train, back, rounds: int) -> dict[str, float]:
    """Median us of each stretch of one pair (the functions wrapped to stamp the clock)."""
    marks: list[tuple[str, int]] = []
    launch, range_words, flag_word = kern.launch, kern._Words.range_words, kern._Words.flag_word

    def stamped(name, fn):
        def wrapper(*a, **k):
            marks.append((name + " start", time.perf_counter_ns()))
            try:
                return fn(*a, **k)
            finally:
                marks.append((name + " end", time.perf_counter_ns()))
        return wrapper

    encode_triton, decode_triton = kern.encode_triton, kern.decode_triton
    kern.encode_triton = stamped("kernel call", encode_triton)
    kern.decode_triton = stamped("kernel call", decode_triton)
    kern.launch = stamped("launch", launch)
    kern._Words.range_words = stamped("wait", range_words)
    kern._Words.flag_word = stamped("wait", flag_word)
    spans: dict[str, list[float]] = {}
    try:
        for _ in range(rounds + 1):
            torch.cuda.synchronize()
            marks.clear()
            marks.append(("encode call", time.perf_counter_ns()))
            E.encode(counts, scheme, out=train)
            marks.append(("encode return", time.perf_counter_ns()))
            E.decode(train, scheme, out=back)
            marks.append(("decode return", time.perf_counter_ns()))
            names = [m[0] for m in marks]
            step = ["kernel call start", "launch start", "launch end", "wait start", "wait end", "kernel call end"]
            if names != ["encode call"] + step + ["encode return"] + step + ["decode return"]:
                raise RuntimeError(f"unexpected call sequence {names}")
            t = [m[1] for m in marks]
            labels = [f"{k} {part}" for k in ("encode", "decode") for part in (
                "checks", "kernel prep", "launch", "until wait", "wait", "kernel after wait", "checks after")]
            for i, label in enumerate(labels):
                spans.setdefault(label, []).append((t[i + 1] - t[i]) / 1e3)
            spans.setdefault("pair", []).append((t[-1] - t[0]) / 1e3)
    finally:
        kern.launch, kern._Words.range_words, kern._Words.flag_word = launch, range_words, flag_word
        kern.encode_triton, kern.decode_triton = encode_triton, decode_triton
    return {k: statistics.median(v[1:]) for k, v in spans.items()}


def micro(kern, reps: int = 2000) -> None:
    """Host cost (us per call, ``reps`` calls back to back) of the pieces of one kernel call."""
    c = torch.arange(64, dtype=torch.int16, device="cuda")
    train = torch.empty((4, 64), dtype=torch.int8, device="cuda")
    one = torch.zeros(1, dtype=torch.int32, device="cuda")
    kern.encode_triton(c, 3, 4, True, out=train)  # compiled and cached
    (compiled, direct), = [v for k, v in triton_launch._COMPILED.items()
                           if k[0][0] == "encode-words" and not k[0][3]]
    launch, function, meta, coop, pdl = direct
    addrs = [c.data_ptr(), train.data_ptr(), c.data_ptr(), c.data_ptr()]
    rest = (16, 4, 0, 3, False, True, True, kern.WORD_BLOCK)
    raw = torch._C._cuda_getCurrentRawStream(0)
    ptrs = triton_launch.pointers(c, train, c, c, views=(torch.int64, torch.int32, torch.int64, torch.int64))
    key = ("encode-words", torch.int16, 3, False, True, True, kern.WORD_BLOCK, triton_launch.int_kind(16, True))
    options = (("num_warps", kern.NUM_WARPS),)
    stream = torch.cuda.current_stream()
    pieces = {
        "torch fill_ of one word": lambda: one.fill_(0),
        "Triton launcher, C call alone": lambda: launch(1, 1, 1, raw, function, coop, pdl, None, None, meta,
                                                        None, None, None, *addrs, *rest),
        "triton_launch.launch": lambda: triton_launch.launch(kern._encode_words_kernel, (1, 1), key, ptrs, rest, True,
                                                             options),
        "encode_triton (no range)": lambda: kern.encode_triton(c, 3, 4, True, out=train),
        "raw stream pointer": lambda: torch._C._cuda_getCurrentRawStream(0),
        "current device": lambda: torch._C._cuda_getDevice(),
        "four data_ptr": lambda: [c.data_ptr(), train.data_ptr(), c.data_ptr(), c.data_ptr()],
        "stream.query()": lambda: stream.query(),
        "torch.cuda.current_stream()": lambda: torch.cuda.current_stream(),
    }
    cells = []
    for name, fn in pieces.items():
        for _ in range(50):
            fn()
        torch.cuda.synchronize()
        t0 = time.perf_counter()
        for _ in range(reps):
            fn()
        dt = (time.perf_counter() - t0) / reps * 1e6
        torch.cuda.synchronize()
        cells.append(f"{name} {dt:.2f}")
    print("host us per call (back to back): " + ", ".join(cells))
    for name in ("torch fill_ of one word", "Triton launcher, C call alone"):
        fn = pieces[name]
        times = []
        for _ in range(200):
            torch.cuda.synchronize()
            t0 = time.perf_counter_ns()
            fn()
            t1 = time.perf_counter_ns()
            stream.synchronize()
            t2 = time.perf_counter_ns()
            times.append(((t1 - t0) / 1e3, (t2 - t1) / 1e3))
        print(f"idle GPU, {name}: call {statistics.median(t[0] for t in times):.2f} us, "
              f"then wait {statistics.median(t[1] for t in times):.2f} us (median of 200)")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", type=int, nargs="+", default=[12, 1024, 2048])
    ap.add_argument("--rounds", type=int, default=30)
    ap.add_argument("--schemes", nargs="+", default=["bitwise-signed", "bitwise", "bitwise-twos", "bitwise-naf", "graded"])
    args = ap.parse_args()
    kern = schemes._gpu_kernels()
    gen = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 16, tuple(args.shape), generator=gen, dtype=torch.int16).cuda()
    print(f"counts {tuple(counts.shape)} int16 on {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"triton {kern.triton.__version__}, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; "
          f"{args.rounds} interleaved rounds")
    micro(kern)
    for scheme in args.schemes:
        sch = E.get_scheme(scheme)
        T = E.default_steps(counts, scheme)
        train = torch.empty((T,) + tuple(counts.shape), dtype=torch.int8, device="cuda")
        back = torch.empty(tuple(counts.shape), dtype=schemes._decode_plan(sch, T, "msb")[3], device="cuda")
        src = torch.ones(train.numel(), dtype=torch.int8, device="cuda")
        dst = torch.zeros_like(src)

        def pair():
            E.encode(counts, scheme, out=train)
            E.decode(train, scheme, out=back)

        fns = {"copy": lambda: dst.copy_(src)}
        fns.update({name: _with(kern, settings, pair) for name, settings in OPTIONS.items()})
        for name, fn in fns.items():
            if name != "copy":
                train.fill_(9)
                fn()
                assert torch.equal(back.to(torch.int16), counts), (scheme, name)
        times = interleaved(fns, args.rounds, True)
        copy = times["copy"]
        cells = [f"copy {min(copy) * 1e6:.0f}/{statistics.median(copy) * 1e6:.0f} us"]
        for name in OPTIONS:
            t = times[name]
            ratios = [a / b for a, b in zip(t, copy)]
            cells.append(f"{name} {min(t) * 1e6:.0f}/{statistics.median(t) * 1e6:.0f} us "
                         f"{min(t) / min(copy):.2f}x/{statistics.median(ratios):.2f}x")
        print(f"{scheme} T={T}: " + "; ".join(cells))
        line = timeline(kern, counts, scheme, train, back, args.rounds)
        print("    timeline (median us): " + ", ".join(f"{k} {v:.1f}" for k, v in line.items()))
        mode = _modes.mode_for(sch)
        flat = counts.reshape(-1)
        words = kern._words(counts.device)
        _, reach, _, acc_t = schemes._decode_plan(sch, T, "msb")
        lo, hi = sch.spike_values
        dev = {
            "encode+range per word": _with(kern, {}, lambda: kern._encode_launch(flat, mode, T, True, train, True)),
            "encode+range per slot": _with(kern, {"WORD_ENCODE": False},
                                           lambda: kern._encode_launch(flat, mode, T, True, train, True)),
            "decode": lambda: kern._decode_launch(train, mode, True, lo, hi, reach, back, flat.numel(), T),
            "copy": fns["copy"],
        }
        print("    device us: " + ", ".join(f"{k} {cuda_device_us(fn):.1f}" for k, fn in dev.items()))
        words.flag.zero_()
        pair()
        assert torch.equal(back.to(torch.int16), counts), scheme


if __name__ == "__main__":
    main()
