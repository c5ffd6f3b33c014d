"""Export speed and size for a realistic layer: Laplace activations, k = 3, 512 x 1536.

Prints, for each format, the write time (best of --repeat), events per second, file size
and bytes per event, plus speed ratios against naive baselines measured in the same run:
CSV vs ``np.savetxt`` of the same records, VCD vs a per-event Python writer, and every
format vs the encoding step (``encoders.encode`` + ``to_events``) that all of them share.

    python benchmarks/bench_export.py [--tokens 512] [--channels 1536] [--repeat 3]
"""
from __future__ import annotations

import argparse
import os
import tempfile
import time
from pathlib import Path

import numpy as np

import encoders
from neurosim.export import FORMATS, aer_records, select_layer, sidecar_path, write_layer_spikes

def best_of(fn, repeat: int) -> float:
    times = []
    for _ in range(repeat):
        t0 = time.perf_counter()
        fn()
        times.append(time.perf_counter() - t0)
    return min(times)

def naive_vcd(ls, path: Path) -> None:
    """Baseline: the obvious per-event Python writer (same changes, one f-string each)."""
    ev = ls.events
    last: dict[tuple[int, int], int] = {}
    lines: list[str] = []
    changes: dict[int, list[str]] = {}
    for g, n, p in zip(ev.timestamp.tolist(), ev.neuron.tolist(), ev.polarity.tolist()):
        wire = (n, p)
        if last.get(wire) != g - 1:
            changes.setdefault(g, []).append(f"1n{n}{'p' if p > 0 else 'n'}")
        if wire in last and last[wire] != g - 1:
            changes.setdefault(last[wire] + 1, []).append(f"0n{n}{'p' if p > 0 else 'n'}")
        last[wire] = g
    for wire, g in last.items():
        changes.setdefault(g + 1, []).append(f"0n{wire[0]}{'p' if wire[1] > 0 else 'n'}")
    for t in sorted(changes):
        lines.append(f"#{t}")
        lines.extend(changes[t])
    path.write_text("\n".join(lines) + "\n")

def run(tokens: int, channels: int, repeat: int, clip: bool, out: Path) -> None:
    rng = np.random.default_rng(0)
    x = rng.laplace(size=(tokens, channels)).astype(np.float32)
    counts, vth = encoders.spike_counts(x, k=3.0, clip=("bitwise-signed", 3) if clip else None)
    T = 3 if clip else None
    label = "clipped to [-7, 7], T = 3" if clip else "unclipped, default T"

    def encode():
        return select_layer(counts, vth, layer="bench.down_proj", layer_id=1, scheme="bitwise-signed", T=T, k=3.0).events

    t_enc = best_of(encode, repeat)
    ls = select_layer(counts, vth, layer="bench.down_proj", layer_id=1, scheme="bitwise-signed", T=T, k=3.0)
    n = len(ls.events)
    dense = tokens * channels * ls.T
    print(f"\n## {tokens} tokens x {channels} channels, bitwise-signed, {label}: T = {ls.T}, "
          f"{n:,} events ({n / dense:.1%} of {dense:,} slots)")
    print(f"encode + events: {t_enc * 1e3:8.1f} ms  ({n / t_enc / 1e6:.2f} M events/s)  [shared by all formats]")
    print(f"{'format':6} {'write ms':>9} {'M ev/s':>8} {'size MB':>8} {'B/event':>8} {'x encode':>9}")
    weight = rng.normal(size=(576, channels)).astype(np.float32)
    sizes = {}
    for fmt in FORMATS:
        path = out / f"bench.{fmt}"
        kw = {"weight": weight} if fmt == "nir" else {}
        t = best_of(lambda: write_layer_spikes(ls, fmt, path, overwrite=True, **kw), repeat)
        size = path.stat().st_size + (sidecar_path(path).stat().st_size if fmt == "npy" else 0)
        sizes[fmt] = (t, size)
        if fmt == "nir":  # the graph holds the weight and V_th, not the events
            print(f"{fmt:6} {t * 1e3:9.1f} {'-':>8} {size / 1e6:8.2f} {'-':>8} {t / t_enc:9.2f}")
        else:
            print(f"{fmt:6} {t * 1e3:9.1f} {n / t / 1e6:8.2f} {size / 1e6:8.2f} {size / n:8.2f} {t / t_enc:9.2f}")
    rec = aer_records(ls)
    table = np.stack([rec["timestamp"], rec["layer"], rec["token"], rec["neuron"], rec["polarity"]], axis=1).astype(np.int64)
    t_savetxt = best_of(lambda: np.savetxt(out / "savetxt.csv", table, fmt="%d", delimiter=","), 1)
    t_naive = best_of(lambda: naive_vcd(ls, out / "naive.vcd"), 1)
    print(f"baseline np.savetxt CSV: {t_savetxt * 1e3:8.1f} ms -> csv writer is {t_savetxt / sizes['csv'][0]:.1f}x faster")
    print(f"baseline per-event Python VCD: {t_naive * 1e3:8.1f} ms -> vcd writer is {t_naive / sizes['vcd'][0]:.1f}x faster")

def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=512)
    ap.add_argument("--channels", type=int, default=1536)
    ap.add_argument("--repeat", type=int, default=3)
    args = ap.parse_args()
    with tempfile.TemporaryDirectory() as d:
        for clip in (False, True):
            run(args.tokens, args.channels, args.repeat, clip, Path(d))
    print(f"\n(cpu count {os.cpu_count()}; numpy {np.__version__})")

if __name__ == "__main__":
    main()
