"""Where encode + decode time goes: each part of the public calls timed alone, same run.

Shape and counts as benchmarks/encode_decode.py (int16 in [0, 15], (12, 1024, 2048)); buffers
reused. Wall times (host work, launches and waits included, synchronized before and after
each call, best / median of interleaved rounds) of:
  * ``copy``: torch ``copy_`` of the int8 train's size (the floor of benchmarks/encode_decode.py);
  * ``sync``: an empty synchronize (the wait the timing itself adds to every call);
  * ``extremes``: the counts' min/max read back to the host by ``encoders.schemes._extremes``
    (numba on CPU; torch ``aminmax`` on CUDA, the path of counts wider than 4 bytes);
  * ``encode kernel`` / ``decode kernel``: the kernel calls alone (numba on CPU; Triton on
    CUDA, where decode includes the read-back of its bad-value flag);
  * ``encode`` / ``decode``: the public calls with ``out=`` (everything they check);
  * ``encode fresh`` / ``decode fresh``: the public calls allocating their outputs (default
    T: on CUDA a min/max pass first);
  * ``launch``: a kernel call on 16 counts (fixed cost of one kernel call).
On CUDA also: ``read-back`` (``.item()`` of one word: a device-to-host copy and a wait),
``torch launch`` (``fill_`` of one word), ``launch jit`` (the 16-count kernel through
Triton's JIT launcher, which ``launch`` bypasses after the first call), ``min/max kernel``
(the encode kernel at T = 0 finding the counts' range, read back), ``encode kernel+range``
(the train and the range in one pass, read back: what ``encode(..., out=)`` runs), the
public calls through the JIT launcher (``jit launch``) and with the words read back from
device memory instead of pinned host memory (``device words``); and the device time of
the kernels alone (CUDA events around 20 back-to-back launches, no host waits in between).

Usage: python benchmarks/encoders_parts.py [--device cuda] [--rounds 20] [--schemes ...]
"""
from __future__ import annotations

import argparse
import statistics
import sys
import time
from pathlib import Path

import numpy as np
import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:  # benchmarks.timing, run as a script or as a module
    sys.path.insert(0, str(REPO))

import encoders as E  # noqa: E402
from benchmarks.timing import cuda_device_us, interleaved  # noqa: E402
from encoders import _fused, _modes, schemes  # noqa: E402


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--shape", type=int, nargs="+", default=[12, 1024, 2048])
    ap.add_argument("--rounds", type=int, default=20)
    ap.add_argument("--device", default="cpu")
    ap.add_argument("--schemes", nargs="+",
                    default=["bitwise", "bitwise-signed", "bitwise-twos", "bitwise-naf", "graded", "binary"])
    ap.add_argument("--threads", type=int, help="CPU threads for torch and the numba kernels alike")
    args = ap.parse_args()
    if args.threads:
        torch.set_num_threads(args.threads)
    cuda = args.device.startswith("cuda")
    gen = torch.Generator().manual_seed(0)
    counts = torch.randint(0, 16, tuple(args.shape), generator=gen, dtype=torch.int16).to(args.device)
    tiny = counts.reshape(-1)[:16].clone()
    kern = schemes._gpu_kernels() if cuda else None
    print(f"counts {tuple(counts.shape)} int16, device {args.device} "
          f"({torch.cuda.get_device_name() if cuda else 'cpu'}), torch {torch.__version__}, "
          f"{time.strftime('%Y-%m-%d %H:%M', time.gmtime())} UTC; wall us best / median of {args.rounds} rounds")

    for scheme in args.schemes:
        sch = E.get_scheme(scheme)
        T = E.default_steps(counts, scheme)
        mode = _modes.mode_for(sch)
        train = E.encode(counts, scheme)
        back = E.decode(train, scheme)
        w, reach, acc_np, acc_t = schemes._decode_plan(sch, T, "msb")
        lo, hi = sch.spike_values
        src = torch.ones(train.numel(), dtype=torch.int8, device=args.device)
        dst = torch.zeros_like(src)
        tiny_train = torch.empty((T, 16), dtype=torch.int8, device=args.device)
        if cuda:
            enc_k = lambda: kern.encode_triton(counts, mode, T, True, out=train)  # noqa: E731
            dec_k = lambda: kern.decode_triton(train, mode, True, lo, hi, reach, acc_t, out=back)  # noqa: E731
            launch = lambda: kern.encode_triton(tiny, mode, T, True, out=tiny_train)  # noqa: E731
        else:
            enc_k = lambda: _fused.encode_fused(counts.numpy(), sch, T, True, out=train.numpy())  # noqa: E731
            dec_k = lambda: _fused.decode_fused(train.numpy(), w, lo, acc_np, hi, out=back.numpy())  # noqa: E731
            launch = lambda: _fused.encode_fused(tiny.numpy(), sch, T, True, out=tiny_train.numpy())  # noqa: E731
        parts = {
            "copy": lambda: dst.copy_(src),
            "sync": lambda: None,
            "extremes": lambda: schemes._extremes(counts),
            "encode kernel": enc_k,
            "decode kernel": dec_k,
            "encode": lambda: E.encode(counts, scheme, out=train),
            "decode": lambda: E.decode(train, scheme, out=back),
            "encode fresh": lambda: E.encode(counts, scheme),
            "decode fresh": lambda: E.decode(train, scheme),
            "launch": launch,
        }
        if cuda:
            word = torch.zeros(1, dtype=torch.int32, device=args.device)
            tiny_grid = (1, 1)

            from encoders import triton_launch

            fast_default = triton_launch.FAST_LAUNCH  # False on Triton versions the direct launch was not written for

            def variant(fn, fast: bool = True, pinned: bool = True):
                """``fn`` with the JIT launcher instead of the cached kernels, or device words."""
                def run():
                    triton_launch.FAST_LAUNCH = fast and fast_default
                    kern._LOCAL.words = pinned_words if pinned else device_words
                    try:
                        fn()
                    finally:
                        triton_launch.FAST_LAUNCH, kern._LOCAL.words = fast_default, pinned_words
                return run

            pinned_words = {counts.device: kern._Words(counts.device)}
            kern.PINNED = False
            device_words = {counts.device: kern._Words(counts.device)}
            kern.PINNED = True
            kern._LOCAL.words = pinned_words
            parts.update({
                "read-back": lambda: word.item(),
                "torch launch": lambda: word.fill_(0),
                "launch jit": lambda: kern._encode_kernel[tiny_grid](
                    tiny, tiny_train, tiny, tiny, 16, T, T, 0, mode, False, False, True, kern.BLOCK,
                    num_warps=kern.NUM_WARPS),
                "min/max kernel": lambda: kern.encode_triton(counts, mode, 0, True, extremes=True),
                "encode kernel+range": lambda: kern.encode_triton(counts, mode, T, True, out=train, extremes=True),
                "encode jit launch": variant(parts["encode"], fast=False),
                "decode jit launch": variant(parts["decode"], fast=False),
                "encode device words": variant(parts["encode"], pinned=False),
                "decode device words": variant(parts["decode"], pinned=False),
            })
        times = interleaved(parts, args.rounds, cuda)
        cells = [f"{k} {min(v) * 1e6:.0f}/{statistics.median(v) * 1e6:.0f}" for k, v in times.items()]
        print(f"{scheme} T={T}: " + ", ".join(cells))
        if cuda:  # device time of the kernels alone (launched directly: no read-back)
            words = kern._words(counts.device)
            n = counts.numel()

            def enc_direct(steps: int, ext: bool):
                dest = train if steps else words.dummy
                return lambda: kern._encode_launch(counts, mode, steps, True, dest, ext)  # noqa: E731

            dec_direct = lambda: kern._decode_launch(train, mode, True, lo, hi, reach, back, n, T)  # noqa: E731
            for name, fn in (("encode kernel", enc_direct(T, False)), ("encode kernel+range", enc_direct(T, True)),
                             ("min/max kernel", enc_direct(0, True)), ("decode kernel", dec_direct),
                             ("copy", parts["copy"])):
                print(f"    device time, {name}: {cuda_device_us(fn):.1f} us per call")
            words.flag.zero_()
            E.encode(counts, scheme, out=train)  # rewrite the train the direct launches may have overwritten
            E.decode(train, scheme, out=back)
        assert np.array_equal(back.cpu().numpy(), counts.cpu().numpy())


if __name__ == "__main__":
    main()
