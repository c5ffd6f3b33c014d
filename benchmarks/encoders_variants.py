"""CUDA kernel variants of encoders._triton, measured in one run: grid, decode unroll, block.

Counts and shape as benchmarks/encoders.py (int16 in [0, 15], (12, 1024, 2048), default T).
For each variant of the module's knobs (``PROGRAMS_PER_SM``: programs per streaming
multiprocessor, 0 = one program per block; ``DECODE_UNROLL``: decode steps loaded
together; ``BLOCK`` / ``NUM_WARPS``) and each scheme, printed:
  * device time of the encode kernel with the range and of the decode kernel (CUDA events
    around 20 back-to-back launches, no host waits in between), and of the copy of the
    train's bytes (torch ``copy_`` into a reused buffer: the floor);
  * wall time of the public pair ``encode(out=)`` + ``decode(out=)`` against the copy,
    interleaved rounds: best over best, and the median of the rounds' own ratios.
Every variant's train and counts are checked against the counts.

Usage: python benchmarks/encoders_variants.py [--rounds 10] [--schemes ...] [--configs 0 1 ...]
"""
from __future__ import annotations

import argparse
import os
import statistics
import sys
import time

sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import torch

import encoders as E
from encoders import _modes, schemes

CONFIGS = [  # PROGRAMS_PER_SM, DECODE_UNROLL, BLOCK, NUM_WARPS
    (0, 1, 2048, 4),  # one program per block, one decode step at a time (the previous kernels' shape)
    (4, 4, 2048, 4),
    (8, 4, 2048, 4),
    (16, 4, 2048, 4),
    (8, 1, 2048, 4),
    (8, 8, 2048, 4),
    (16, 4, 1024, 2),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", type=int, nargs="+", default=[12, 1024, 2048])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--schemes", nargs="+",
                    default=["bitwise-signed", "bitwise", "bitwise-twos", "bitwise-naf", "binary", "graded"])
    ap.add_argument("--configs", type=int, nargs="+", help="indices into CONFIGS (default all)")
    ap.add_argument("--best-args", help="write benchmarks/encoders.py's --triton-* arguments of the variant with "
                                        "the least device time (encode + decode summed over the schemes) here")
    args = ap.parse_args()
    kern = schemes._gpu_kernels()
    gen = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 16, tuple(args.shape), generator=gen, dtype=torch.int16).cuda()
    flat = counts.reshape(-1)
    n = flat.numel()
    print(f"counts {tuple(counts.shape)} int16 on {torch.cuda.get_device_name()}, torch {torch.__version__}, "
          f"triton {kern.triton.__version__}, {time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; "
          f"{torch.cuda.get_device_properties(0).multi_processor_count} SMs")
    configs = [CONFIGS[i] for i in args.configs] if args.configs else CONFIGS
    total = {cfg: 0.0 for cfg in configs}
    for scheme in args.schemes:
        sch = E.get_scheme(scheme)
        T = E.default_steps(counts, scheme)
        mode = _modes.mode_for(sch)
        _, reach, _, acc_t = schemes._decode_plan(sch, T, "msb")
        lo, hi = sch.spike_values
        train = torch.empty((T,) + tuple(counts.shape), dtype=torch.int8, device="cuda")
        back = torch.empty(tuple(counts.shape), dtype=acc_t, device="cuda")
        src = torch.ones(train.numel(), dtype=torch.int8, device="cuda")
        dst = torch.zeros_like(src)
        for pps, unroll, block, warps in configs:
            kern.PROGRAMS_PER_SM, kern.DECODE_UNROLL, kern.BLOCK, kern.NUM_WARPS = pps, unroll, block, warps
            E.encode(counts, scheme, out=train)
            E.decode(train, scheme, out=back)
            assert torch.equal(back.to(torch.int16), counts), (scheme, pps, unroll, block)
            words = kern._words(counts.device)

            def device_us(fn) -> float:
                fn()
                start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
                start.record()
                for _ in range(20):
                    fn()
                end.record()
                end.synchronize()
                return start.elapsed_time(end) / 20 * 1e3

            enc = device_us(lambda: kern._encode_launch(flat, mode, T, True, train, True))
            dec = device_us(lambda: kern._decode_launch(train, mode, True, lo, hi, reach, back, n, T))
            cp = device_us(lambda: dst.copy_(src))
            words.flag.zero_()

            def pair():
                E.encode(counts, scheme, out=train)
                E.decode(train, scheme, out=back)

            fns = {"copy": lambda: dst.copy_(src), "pair": pair}
            times = {k: [] for k in fns}
            for fn in fns.values():
                fn()
            for _ in range(args.rounds):
                for k, fn in fns.items():
                    torch.cuda.synchronize()
                    t0 = time.perf_counter()
                    fn()
                    torch.cuda.synchronize()
                    times[k].append(time.perf_counter() - t0)
            total[(pps, unroll, block, warps)] += enc + dec
            ratio = min(times["pair"]) / min(times["copy"])
            med = statistics.median(p / c for p, c in zip(times["pair"], times["copy"]))
            assert torch.equal(back.to(torch.int16), counts)
            print(f"{scheme:15s} T={T:2d} programs/SM {pps:2d} unroll {unroll} block {block:4d} warps {warps}: "
                  f"device us encode+range {enc:6.1f} decode {dec:6.1f} copy {cp:5.1f} | wall us pair "
                  f"{min(times['pair']) * 1e6:6.1f} copy {min(times['copy']) * 1e6:5.1f} "
                  f"pair/copy {ratio:.2f}x / {med:.2f}x", flush=True)
    for cfg, us in sorted(total.items(), key=lambda kv: kv[1]):
        print(f"programs/SM {cfg[0]:2d} unroll {cfg[1]} block {cfg[2]:4d} warps {cfg[3]}: "
              f"encode + decode device us summed over the schemes {us:7.1f}")
    if args.best_args:
        pps, unroll, block, warps = min(total, key=total.get)
        with open(args.best_args, "w") as f:
            f.write(f"--triton-programs-per-sm {pps} --triton-decode-unroll {unroll} "
                    f"--triton-block {block} --triton-warps {warps}\n")


if __name__ == "__main__":
    main()
