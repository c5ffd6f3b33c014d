"""CUDA kernel variants of encoders._triton, measured in one run: grids and the word decode.

Counts and shape as benchmarks/encode_decode.py (int16 in [0, 15], (12, 1024, 2048), default T).
For each variant of the module's knobs (``PROGRAMS_PER_SM`` / ``DECODE_PROGRAMS_PER_SM``:
encode / decode programs per streaming multiprocessor, 0 = one program per block;
``WORD_DECODE``: int8 counts decoded four slots per int32 word) and each scheme, printed:
  * device time of the encode kernel with the range and of the decode kernel (CUDA events
    around 20 back-to-back launches, no host waits in between), and of the copy of the
    train's bytes (torch ``copy_`` into a reused buffer: the floor);
  * wall time of the public pair ``encode(out=)`` + ``decode(out=)`` against the copy,
    interleaved rounds: best over best, and the median of the rounds' own ratios.
Every variant's train and counts are checked against the counts.

Usage: python benchmarks/encoders_variants.py [--rounds 10] [--schemes ...] [--configs 0 1 ...]
(The 11:35 UTC run of 2026-12-02 also varied BLOCK / NUM_WARPS and the decode steps loaded
together; its log is docs/measurements/h200-2026-12-02/encoders_1135_variants.txt.)
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
from encoders import _modes, schemes  # noqa: E402

CONFIGS = [  # PROGRAMS_PER_SM (encode), DECODE_PROGRAMS_PER_SM, WORD_DECODE; 0 = one program per block
    (16, 0, True),
    (16, 16, True),
    (8, 8, True),
    (32, 0, True),
    (16, 0, False),
    (0, 0, False),
]


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", type=int, nargs="+", default=[12, 1024, 2048])
    ap.add_argument("--rounds", type=int, default=10)
    ap.add_argument("--schemes", nargs="+",
                    default=["bitwise-signed", "bitwise", "bitwise-twos", "bitwise-naf", "binary", "graded"])
    ap.add_argument("--configs", type=int, nargs="+", help="indices into CONFIGS (default all)")
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
        for pps, dpps, word in configs:
            kern.PROGRAMS_PER_SM, kern.DECODE_PROGRAMS_PER_SM, kern.WORD_DECODE = pps, dpps, word
            E.encode(counts, scheme, out=train)
            E.decode(train, scheme, out=back)
            assert torch.equal(back.to(torch.int16), counts), (scheme, pps, dpps, word)
            words = kern._words(counts.device)

            enc = cuda_device_us(lambda: kern._encode_launch(flat, mode, T, True, train, True))
            dec = cuda_device_us(lambda: kern._decode_launch(train, mode, True, lo, hi, reach, back, n, T))
            cp = cuda_device_us(lambda: dst.copy_(src))
            words.flag.zero_()

            def pair():
                E.encode(counts, scheme, out=train)
                E.decode(train, scheme, out=back)

            times = interleaved({"copy": lambda: dst.copy_(src), "pair": pair}, args.rounds, cuda=True)
            total[(pps, dpps, word)] += enc + dec
            ratio = min(times["pair"]) / min(times["copy"])
            med = statistics.median(p / c for p, c in zip(times["pair"], times["copy"]))
            assert torch.equal(back.to(torch.int16), counts)
            print(f"{scheme:15s} T={T:2d} programs/SM encode {pps:2d} decode {dpps:2d} word decode {word:d}: "
                  f"device us encode+range {enc:6.1f} decode {dec:6.1f} copy {cp:5.1f} | wall us pair "
                  f"{min(times['pair']) * 1e6:6.1f} copy {min(times['copy']) * 1e6:5.1f} "
                  f"pair/copy {ratio:.2f}x / {med:.2f}x", flush=True)
    for cfg, us in sorted(total.items(), key=lambda kv: kv[1]):
        print(f"programs/SM encode {cfg[0]:2d} decode {cfg[1]:2d} word decode {cfg[2]:d}: "
              f"encode + decode device us summed over the schemes {us:7.1f}")

if __name__ == "__main__":
    main()
