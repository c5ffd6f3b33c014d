"""Tokens per second of closed-loop spiking generation versus the plain model (the baseline).

Generates ``--tokens`` new tokens greedily from the README prompt with the embedded
SmolLM2-135M, once per engine, in the same run: ``float`` (the plain model, the baseline),
``dense`` (every linear layer as dense integer spike-plane products) and ``events`` (every
linear layer on the event-driven simulator). Prints prefill and decode wall time,
tokens/s, the ratio to the float model, and checks that dense and events generate the
same tokens.

Usage::

    python benchmarks/generate.py                        # 8 tokens, bitwise-signed T=3
    python benchmarks/generate.py --tokens 16 --scheme ternary
"""
from __future__ import annotations

import argparse
import datetime as _dt
import platform
import sys
from pathlib import Path

import torch

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from neurosim.generate import generate  # noqa: E402
from neurosim.models import load_model  # noqa: E402

PROMPT = "We hold these truths to be self-evident, that all men are created equal."


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--tokens", type=int, default=8)
    ap.add_argument("--scheme", default="bitwise-signed")
    ap.add_argument("--T", type=int)
    ap.add_argument("--prompt", default=PROMPT)
    args = ap.parse_args(argv)
    loaded = load_model()
    print(f"{_dt.datetime.now(_dt.timezone.utc).isoformat(timespec='seconds')}  {platform.processor() or platform.machine()}, "
          f"torch {torch.__version__}, {torch.get_num_threads()} threads")
    runs = {}
    for engine in ("float", "dense", "events"):
        g = generate(loaded, args.prompt, args.tokens, engine=engine, scheme=args.scheme, T=args.T)
        runs[engine] = g
        base = runs["float"].tokens_per_s
        print(f"{engine:7s} prefill {g.prefill_s:8.2f} s  decode {g.decode_s:8.2f} s  {g.tokens_per_s:8.4f} tok/s  "
              f"decode {g.decode_tokens_per_s:8.4f} tok/s  x{g.tokens_per_s / base:.4f} of float  text {g.text!r}")
    same = runs["dense"].new_ids == runs["events"].new_ids
    print(f"dense and events generate the same tokens: {same}")
    return 0 if same else 1


if __name__ == "__main__":
    sys.exit(main())
