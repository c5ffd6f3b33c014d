"""Encoder speed: encode + decode of counts in [0, 15], shape (12, 1024, 2048), every scheme.

This is the Int2Spike reference's own test shape (BICLab/Int2Spike on GitHub, neuron.py).
Printed, all measured in this run on this machine:
  * throughput of ``encoders.encode`` + ``encoders.decode`` (counts/s);
  * ratio to a straightforward per-step loop baseline written here (float32 output, one
    neuron update per step, as the reference's dense tensors);
  * ratio to a plain memory copy of the output's size (the physical floor);
  * bytes of the int8 train and of the bit-packed form against the float32 train.

Usage: python benchmarks/encoders.py [--shape 12 1024 2048] [--repeat 3] [--device cpu]
"""
from __future__ import annotations

import argparse
import os
import sys
import time

# This file shares its name with the `encoders` package: drop its own folder from the path.
sys.path[:] = [p for p in sys.path if os.path.abspath(p or ".") != os.path.dirname(os.path.abspath(__file__))]

import numpy as np
import torch

import encoders as E


def best_time(fn, repeat: int) -> float:
    """Best wall time of ``repeat`` calls (s); one untimed warm-up call first."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        t0 = time.perf_counter()
        fn()
        if torch.cuda.is_available():
            torch.cuda.synchronize()
        best = min(best, time.perf_counter() - t0)
    return best


def loop_baseline(x: torch.Tensor, scheme: str, T: int) -> torch.Tensor:
    """Per-step neuron loop with a float32 train: the straightforward dense implementation."""
    seq = torch.zeros((T,) + tuple(x.shape), dtype=torch.float32, device=x.device)
    rem = x.to(torch.float32)
    if scheme in ("binary", "ternary"):
        for t in range(T):
            spike = (rem > 0).float() if scheme == "binary" else torch.sign(rem)
            seq[t] = spike
            rem = rem - spike
    else:
        mag = x.long().abs()
        sign = torch.sign(x.float()) if scheme == "bitwise-signed" else 1.0
        pattern = x.long() & ((1 << T) - 1) if scheme == "bitwise-twos" else mag
        for t in range(T):
            seq[t] = ((pattern >> (T - 1 - t)) & 1).float() * (sign if scheme == "bitwise-signed" else 1.0)
    # decode: weighted sum over steps
    w = torch.tensor(E.step_weights(scheme, T), dtype=torch.float32, device=x.device)
    _ = (seq * w.view(-1, *([1] * x.dim()))).sum(0)
    return seq


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", type=int, nargs="+", default=[12, 1024, 2048])
    ap.add_argument("--repeat", type=int, default=3)
    ap.add_argument("--device", default="cpu")
    args = ap.parse_args()
    gen = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 16, tuple(args.shape), generator=gen, dtype=torch.int16).to(args.device)
    n = counts.numel()
    print(f"counts {tuple(counts.shape)} in [0, 15], {n / 1e6:.1f} M values, device {args.device}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    print(f"{'scheme':15s} {'T':>3s} {'enc+dec s':>10s} {'Mcounts/s':>10s} {'vs loop':>8s} "
          f"{'vs copy':>8s} {'int8 MB':>8s} {'packed MB':>9s} {'f32 MB':>8s}")
    for scheme in E.SCHEMES:
        T = E.default_steps(counts, scheme)

        def ours() -> None:
            s = E.encode(counts, scheme)
            E.decode(s, scheme)

        t_ours = best_time(ours, args.repeat)
        t_loop = best_time(lambda: loop_baseline(counts, scheme, T), args.repeat)
        src = torch.empty(T * n, dtype=torch.int8, device=args.device)
        dst = torch.empty_like(src)
        t_copy = best_time(lambda: dst.copy_(src), 5 * args.repeat)  # short: more repeats
        spikes = E.encode(counts, scheme)
        packed_mb = E.pack_spikes(spikes).nbytes / 1e6 if args.device == "cpu" else float("nan")
        # correctness of what was timed
        assert torch.equal(E.decode(spikes, scheme), counts.long())
        print(f"{scheme:15s} {T:3d} {t_ours:10.3f} {n / t_ours / 1e6:10.1f} {t_loop / t_ours:7.1f}x "
              f"{t_ours / t_copy:7.1f}x {spikes.numel() / 1e6:8.0f} {packed_mb:9.1f} {spikes.numel() * 4 / 1e6:8.0f}")
        del spikes, src, dst
    print("vs loop: how many times faster than the per-step float32 loop (goal >= 3x);")
    print("vs copy: encode+decode time over a memory copy of the int8 train (goal <= 3x).")


if __name__ == "__main__":
    main()
