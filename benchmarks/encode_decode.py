"""Encoder speed: encode + decode of counts in [0, 15], shape (12, 1024, 2048), every scheme.

This is the Int2Spike reference's own test shape (BICLab/Int2Spike on GitHub, neuron.py).
Printed, all measured in this run on this machine, repeats interleaved (one call of each
variant per round, so load swings hit all of them alike), best and median of the rounds:
  * ``copy``: a memory copy of the int8 train's size into a reused buffer (torch
    ``copy_``, the same thread count as the kernels): the physical floor;
  * ``fcopy``: the same copy into a buffer allocated on every call (``torch.empty_like`` +
    ``copy_``): the floor of ``fresh`` (on CPU it pays the first touch of new pages too);
  * ``reuse``: ``encoders.encode(..., out=train)`` + ``encoders.decode(..., out=counts)``
    into buffers reused across calls, as the copy reuses its own: the like-for-like ratio;
  * ``fresh``: ``encode`` + ``decode`` allocating their outputs on every call (on CPU the
    first touch of 100-400 MB of fresh pages costs about a copy of its own);
  * ``loop``: a straightforward per-step loop with a float32 train, one neuron update per
    step, as the reference's dense tensors (how many times slower than ``fresh``);
  * bytes of the int8 train and of the bit-packed form against the float32 train.
Ratios over the copy: best over best, and the median of the rounds' own ratios (each call
over the copy timed just before it, so both saw the same load on a shared machine);
``fresh/fcopy`` likewise over the fresh-buffer copy.
Each call runs everything the public functions do: the counts' min/max (default T, range
check), the spike-value check of decode and the kernels (numba on CPU, Triton on CUDA when
importable, else the torch step loops).

Usage: python benchmarks/encode_decode.py [--shape 12 1024 2048] [--repeat 5] [--device cpu]
       [--schemes binary ternary ...] [--threads N] [--json FILE]
"""
from __future__ import annotations

import argparse
import datetime
import json
import os
import platform
import statistics
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks.timing, run as a script or as a module
    sys.path.insert(0, str(REPO))

import encoders as E  # noqa: E402
from benchmarks.timing import interleaved  # noqa: E402


def loop_baseline(x: torch.Tensor, scheme: str, T: int) -> torch.Tensor:
    """Per-step neuron loop with a float32 train: the straightforward dense implementation."""
    sch = E.get_scheme(scheme)
    seq = torch.zeros((T,) + tuple(x.shape), dtype=torch.float32, device=x.device)
    if sch.graded:
        if T:
            seq[0] = x.float()
        return seq.sum(0)
    rem = x.to(torch.float32)
    if sch.rate:
        for t in range(T):
            spike = (rem > 0).float() if not sch.bipolar else torch.sign(rem)
            seq[t] = spike
            rem = rem - spike
    else:
        mag = x.long().abs()
        sign = torch.sign(x.float()) if sch.bipolar else 1.0
        if sch.naf:  # encoders.naf_digits in torch ops (on the counts' device)
            h = mag >> 1
            c = h ^ (mag + h)
            plus, minus = (mag + h) & c, h & c
        else:
            plus, minus = (x.long() & ((1 << T) - 1) if sch.twos else mag), None
        for t in range(T):
            bit = ((plus >> (T - 1 - t)) & 1).float()
            if minus is not None:
                bit = bit - ((minus >> (T - 1 - t)) & 1).float()
            seq[t] = bit * sign
    w = torch.tensor(E.step_weights(scheme, T), dtype=torch.float32, device=x.device)
    return (seq * w.view(-1, *([1] * x.dim()))).sum(0)  # decode: weighted sum over steps


def _best_med(v: list[float]) -> tuple[float, float]:
    return min(v), statistics.median(v)


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", type=int, nargs="+", default=[12, 1024, 2048])
    ap.add_argument("--repeat", type=int, default=5, help="interleaved rounds")
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--schemes", nargs="+", default=list(E.SCHEMES))
    ap.add_argument("--json", help="also write the measurements to this file")
    ap.add_argument("--threads", type=int, help="CPU threads for torch and the numba kernels alike")
    ap.add_argument("--triton-block", type=int, help="slots per Triton program (default encoders._triton.BLOCK)")
    ap.add_argument("--triton-warps", type=int, help="warps per Triton program (default encoders._triton.NUM_WARPS)")
    ap.add_argument("--triton-programs-per-sm", type=int,
                    help="Triton programs per SM, each walking blocks; 0 = one per block "
                         "(default encoders._triton.PROGRAMS_PER_SM)")
    ap.add_argument("--triton-decode-unroll", type=int,
                    help="decode steps loaded together (default encoders._triton.DECODE_UNROLL)")
    ap.add_argument("--triton-jit-launch", action="store_true",
                    help="launch through Triton's JIT launcher on every call (default: cached compiled kernels)")
    ap.add_argument("--triton-device-words", action="store_true",
                    help="read the range words and the decode flag back from device memory (default: pinned host)")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    if args.triton_block or args.triton_warps or args.triton_jit_launch or args.triton_device_words \
            or args.triton_programs_per_sm is not None or args.triton_decode_unroll:
        from encoders import _triton

        if args.triton_programs_per_sm is not None:
            _triton.PROGRAMS_PER_SM = args.triton_programs_per_sm
        _triton.DECODE_UNROLL = args.triton_decode_unroll or _triton.DECODE_UNROLL

        _triton.BLOCK = args.triton_block or _triton.BLOCK
        _triton.NUM_WARPS = args.triton_warps or _triton.NUM_WARPS
        from encoders import triton_launch

        triton_launch.FAST_LAUNCH = triton_launch.FAST_LAUNCH and not args.triton_jit_launch
        _triton.PINNED = not args.triton_device_words
    cuda = args.device.startswith("cuda")
    gen = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 16, tuple(args.shape), generator=gen, dtype=torch.int16).to(args.device)
    n = counts.numel()
    try:
        import triton
        triton_v = triton.__version__
    except ImportError:
        triton_v = "absent"
    from encoders import _fused

    env = {
        "date_utc": datetime.datetime.now(datetime.timezone.utc).strftime("%Y-%m-%d %H:%M"),
        "device": torch.cuda.get_device_name() if cuda else (platform.processor() or platform.machine()),
        "torch": torch.__version__, "triton": triton_v, "numba": getattr(_fused.numba, "__version__", "absent"),
        "threads": torch.get_num_threads(), "cpus": os.cpu_count(),
        "load_avg": os.getloadavg()[0] if hasattr(os, "getloadavg") else None,
    }
    if cuda and triton_v != "absent":
        from encoders import _triton, triton_launch

        env["triton_block"], env["triton_warps"] = _triton.BLOCK, _triton.NUM_WARPS
        env["triton_programs_per_sm"], env["triton_decode_unroll"] = _triton.PROGRAMS_PER_SM, _triton.DECODE_UNROLL
        env["triton_decode_programs_per_sm"], env["triton_word_decode"] = _triton.DECODE_PROGRAMS_PER_SM, \
            _triton.WORD_DECODE
        env["triton_fast_launch"], env["triton_pinned_words"] = triton_launch.FAST_LAUNCH, _triton.PINNED
    print(f"counts {tuple(counts.shape)} int16 in [0, 15], {n / 1e6:.1f} M values, device {args.device} "
          f"({env['device']}), torch {env['torch']}, triton {triton_v}, numba {env['numba']}, "
          f"{env['threads']} threads, {env['date_utc']} UTC, load average {env['load_avg']}"
          + (f", Triton block {env['triton_block']} x {env['triton_warps']} warps, "
             f"{env['triton_programs_per_sm']} / {env['triton_decode_programs_per_sm']} encode / decode programs per SM "
             f"(0: one per block), decode steps {env['triton_decode_unroll']} at a time, "
             f"{'word' if env['triton_word_decode'] else 'slot'} decode of int8 counts, "
             f"{'cached' if env['triton_fast_launch'] else 'JIT'} launches, "
             f"{'pinned' if env['triton_pinned_words'] else 'device'} words" if "triton_block" in env else ""))
    print(f"{args.repeat} interleaved rounds; times in ms as best / median; ratios are time over the copy's")
    print(f"{'scheme':15s} {'T':>3s} {'copy ms':>13s} {'fcopy ms':>13s} {'reuse ms':>13s} {'fresh ms':>13s} "
          f"{'reuse/copy':>11s} {'fresh/copy':>11s} {'fresh/fcopy':>11s} {'loop/fresh':>10s} {'int8 MB':>8s} "
          f"{'packed MB':>9s}")
    rows = []
    for scheme in args.schemes:
        T = E.default_steps(counts, scheme)
        train = E.encode(counts, scheme)
        back = E.decode(train, scheme)
        src = torch.empty(train.numel() * train.element_size(), dtype=torch.int8, device=args.device)
        dst = torch.empty_like(src)
        src.fill_(1)
        dst.fill_(0)  # touched once, as reused buffers are

        def reuse() -> None:
            E.decode(E.encode(counts, scheme, out=train), scheme, out=back)

        def fresh() -> None:
            E.decode(E.encode(counts, scheme), scheme)

        t = interleaved({"copy": lambda: dst.copy_(src), "reuse": reuse, "fcopy": lambda: torch.empty_like(src).copy_(src),
                         "fresh": fresh}, args.repeat, cuda)
        t_loop = interleaved({"loop": lambda: loop_baseline(counts, scheme, T)}, max(1, args.repeat // 2), cuda)["loop"]
        # correctness of what was timed
        assert torch.equal(back.long(), counts.long()) and torch.equal(E.decode(E.encode(counts, scheme), scheme), back)
        assert torch.equal(loop_baseline(counts, scheme, T).long(), counts.long())
        bit_packable = E.get_scheme(scheme).spike_values[1] == 1
        packed_mb = E.pack_spikes(train).nbytes / 1e6 if not cuda and bit_packable else float("nan")
        (cb, cm), (rb, _), (fb, _), (fcb, fcm) = (_best_med(t[k]) for k in ("copy", "reuse", "fresh", "fcopy"))
        # per round: each call over the copy timed just before it (the same load)
        r_reuse = statistics.median(r / c for r, c in zip(t["reuse"], t["copy"]))
        r_fresh = statistics.median(f / c for f, c in zip(t["fresh"], t["copy"]))
        r_fresh_f = statistics.median(f / c for f, c in zip(t["fresh"], t["fcopy"]))
        row = {"scheme": scheme, "T": T, "copy_s": t["copy"], "fresh_copy_s": t["fcopy"], "reuse_s": t["reuse"],
               "fresh_s": t["fresh"], "loop_s": t_loop, "reuse_over_copy": [rb / cb, r_reuse],
               "fresh_over_copy": [fb / cb, r_fresh], "fresh_over_fresh_copy": [fb / fcb, r_fresh_f],
               "int8_mb": train.numel() / 1e6, "packed_mb": packed_mb}
        rows.append(row)
        rm, fm = statistics.median(t["reuse"]), statistics.median(t["fresh"])
        print(f"{scheme:15s} {T:3d} {cb * 1e3:6.2f}/{cm * 1e3:6.2f} {fcb * 1e3:6.2f}/{fcm * 1e3:6.2f} "
              f"{rb * 1e3:6.2f}/{rm * 1e3:6.2f} {fb * 1e3:6.2f}/{fm * 1e3:6.2f} {rb / cb:5.2f}/{r_reuse:5.2f} "
              f"{fb / cb:5.2f}/{r_fresh:5.2f} {fb / fcb:5.2f}/{r_fresh_f:5.2f} "
              f"{min(t_loop) / fb:9.1f}x {train.numel() / 1e6:8.0f} {packed_mb:9.1f}")
        del train, back, src, dst
    print("reuse/copy, fresh/copy: encode+decode time over a copy of the int8 train (goal <= 3x): best over best /")
    print("median of the rounds' ratios (each call over the copy timed just before it, under the same load);")
    print("fresh/fcopy: fresh calls over a copy into a buffer allocated on each call, likewise;")
    print("loop/fresh: how many times faster than the per-step float32 loop (goal >= 3x).")
    if args.json:
        with open(args.json, "w") as f:
            json.dump({"env": env, "shape": args.shape, "rounds": args.repeat, "rows": rows}, f, indent=1)


if __name__ == "__main__":
    main()
