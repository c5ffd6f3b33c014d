"""Statistics speed: SpikeStats.update on one layer's counts, against a direct baseline.

The baseline, measured in the same run, computes only the report's headline numbers for
one scheme the straightforward way: encode the dense bitwise-signed 3-step train with
``encoders.encode`` (counts clipped to the window), count its spikes and the zero counts,
and histogram |s| with ``np.unique``. ``SpikeStats.update`` computes all of that plus the
exact value histogram (every scheme and window derives from it), per-token and per-channel
counters and the V_th histogram, in one pass.

Printed: values/s of both, the ratio, merge time of two accumulators, and the time to
write the statistics of a SmolLM2-sized model (211 layers) to HDF5.

Usage: python benchmarks/stats.py [--tokens 2048] [--channels 1536] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time


import numpy as np

import encoders as E
from analysis.stats import SpikeStats, write_stats


def best_time(fn, repeat: int) -> float:
    """Best wall time of ``repeat`` calls (s) after one untimed warm-up call."""
    fn()
    best = float("inf")
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        best = min(best, time.perf_counter() - t0)
    return best


def baseline(c: np.ndarray) -> tuple[int, int, np.ndarray]:
    """Spikes (bitwise-signed, T=3), zero counts and the |s| histogram, the direct way."""
    train = E.encode(np.clip(c, -7, 7), "bitwise-signed", T=3)
    values, freq = np.unique(np.abs(c), return_counts=True)
    return int(np.count_nonzero(train)), int(np.count_nonzero(c == 0)), np.stack([values, freq])


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=2048)
    ap.add_argument("--channels", type=int, default=1536)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    rng = np.random.default_rng(0)
    x = rng.laplace(size=(args.tokens, args.channels)).astype(np.float32)
    c, vth = E.spike_counts(x, k=3)
    c = c.astype(np.int16)  # as stored in traces
    n = c.size

    def ours() -> None:
        SpikeStats().update("model.layers.0.mlp.down_proj", "down", c, vth)

    t_base = best_time(lambda: baseline(c), args.repeat)
    t_ours = best_time(ours, args.repeat)
    spikes, zeros, _ = baseline(c)
    st = SpikeStats()
    st.update("x", "down", c, vth)
    assert st.group().window_events("bitwise-signed", 3) == spikes and st.group().zeros == zeros
    print(f"counts int16 [{args.tokens}, {args.channels}] ({n / 1e6:.1f} M values), best of {args.repeat}")
    print(f"  baseline (encode + count + np.unique): {t_base * 1e3:8.1f} ms  {n / t_base / 1e6:7.1f} M values/s")
    print(f"  SpikeStats.update (all statistics):    {t_ours * 1e3:8.1f} ms  {n / t_ours / 1e6:7.1f} M values/s")
    print(f"  ratio baseline / SpikeStats:           {t_base / t_ours:8.2f} x")

    # a SmolLM2-135M-sized model: 30 blocks x 7 layers + lm_head, statistics merged and written
    shapes = [576] * 6 + [1536]
    parts = []
    for half in range(2):
        s = SpikeStats()
        for i in range(211):
            s.update(f"model.layers.{i // 7}.l{i % 7}", "up", c[half * 8 : half * 8 + 8, : shapes[i % 7]], vth[:8])
        parts.append(s)
    t_merge = best_time(lambda: SpikeStats().merge(parts[0]).merge(parts[1]), args.repeat)
    merged = SpikeStats().merge(parts[0]).merge(parts[1])
    with tempfile.TemporaryDirectory() as d:
        t_write = best_time(lambda: write_stats(None, merged, out=os.path.join(d, "s.h5"), overwrite=True), 1)
        size = os.path.getsize(os.path.join(d, "s.h5"))
    print(f"211-layer model: merge of two accumulators {t_merge * 1e3:.1f} ms; "
          f"write_stats {t_write * 1e3:.0f} ms, {size / 1e6:.2f} MB")


if __name__ == "__main__":
    main()
