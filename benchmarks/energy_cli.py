"""`neurosim energy TRACE` against `neurosim inspect TRACE` on the same trace (target <= 3x).

Captures the shipped text with the embedded SmolLM2-135M (``--tokens`` tokens, lm_head
included) once, then times both commands as fresh processes (interpreter start and
imports included, as a user sees them), interleaved, ``--repeats`` times; prints the best
time of each and the ratio energy / inspect. Energy prices the trace from its counts
(``neurosim.sim.activity_fast``): the model is not loaded.

Usage: python benchmarks/energy_cli.py [--tokens 128] [--repeats 3]
"""
from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]


def _time(cmd: list[str], env: dict[str, str]) -> float:
    t = time.perf_counter()
    subprocess.run(cmd, check=True, env=env, stdout=subprocess.DEVNULL, cwd=REPO)
    return time.perf_counter() - t


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("--tokens", type=int, default=128)
    ap.add_argument("--repeats", type=int, default=3)
    ap.add_argument("--trace", help="an existing trace (default: capture one)")
    args = ap.parse_args(argv)
    env = dict(os.environ, HF_HUB_OFFLINE="1", PYTHONPATH=str(REPO) + os.pathsep + os.environ.get("PYTHONPATH", ""))
    with tempfile.TemporaryDirectory() as tmp:
        trace = args.trace
        if trace is None:
            sys.path.insert(0, str(REPO))
            from neurosim.capture import capture
            from neurosim.models import load_model

            text = (REPO / "neurosim" / "data" / "declaration_of_independence.txt").read_text(encoding="utf-8")
            trace = str(Path(tmp) / "bench.h5")
            capture(load_model(), text, trace, k=3.0, include_lm_head=True, max_tokens=args.tokens, progress=False).close()
        py = [sys.executable, "-m", "neurosim.cli"]
        energy = py + ["energy", trace, "--quiet"]
        inspect = py + ["inspect", trace]
        best = {"energy": float("inf"), "inspect": float("inf")}
        for _ in range(max(1, args.repeats)):
            best["inspect"] = min(best["inspect"], _time(inspect, env))
            best["energy"] = min(best["energy"], _time(energy, env))
    print(f"trace: {args.tokens} tokens (SmolLM2-135M, lm_head included); best of {args.repeats}, fresh processes")
    print(f"neurosim inspect: {best['inspect']:.2f} s")
    print(f"neurosim energy:  {best['energy']:.2f} s")
    print(f"ratio energy / inspect: {best['energy'] / best['inspect']:.2f}x (target <= 3x)")
    return 0


if __name__ == "__main__":
    sys.exit(main())
