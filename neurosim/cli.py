"""The ``neurosim`` command line.

Exit codes: 0 success, 1 a failure while working (bad file, model missing, ...),
2 a usage error (argparse). Errors go to stderr as one line; ``--debug`` shows tracebacks.
"""
from __future__ import annotations

import argparse
import sys
from pathlib import Path
from typing import Callable, Sequence

from . import __version__


class CLIError(Exception):
    """A user-facing failure: printed as one line, exit code 1."""


def _out_dir(path: str, overwrite: bool) -> Path:
    """Create ``path`` as an empty output folder, or refuse (unless ``overwrite``)."""
    p = Path(path)
    if p.exists() and not p.is_dir():
        raise CLIError(f"output path {p} exists and is not a folder")
    if p.is_dir() and any(p.iterdir()) and not overwrite:
        raise CLIError(f"output folder {p} is not empty; pass --overwrite to replace its files")
    try:
        p.mkdir(parents=True, exist_ok=True)
    except OSError as e:
        raise CLIError(f"cannot create output folder {p}: {e.strerror}") from e
    return p


# ----------------------------------------------------------------------------- demo


def cmd_demo(args: argparse.Namespace) -> int:
    """Encode Gaussian activations with every scheme; print T, spikes, sparsity; save a raster."""
    import numpy as np

    import encoders
    from analysis.plots import plot_raster, save_figure

    out = _out_dir(args.out, args.overwrite)
    rng = np.random.default_rng(args.seed)
    x = rng.standard_normal((args.tokens, args.channels)).astype(np.float32)
    counts, vth = encoders.spike_counts(x, k=args.k)
    mag = np.abs(counts)
    print(f"{args.tokens} tokens x {args.channels} channels of N(0, 1) activations, k = {args.k}")
    print(f"V_th per token: mean {vth.mean():.4f} (expected sqrt(2/pi)/k = {np.sqrt(2 / np.pi) / args.k:.4f})")
    print(f"counts: min {counts.min()}, max {counts.max()}, |s| <= 7: {(mag <= 7).mean():.3f} "
          f"(report, Gaussian: about 0.954), silent (s = 0): {(counts == 0).mean():.3f}")
    print(f"first token, first 12 channels: {counts[0, :12].tolist()}")
    print(f"{'scheme':15s} {'T':>3s} {'spikes':>9s} {'sparsity':>9s}")
    for scheme in encoders.SCHEMES:
        # Unsigned schemes carry magnitudes; the sign travels on a second line (documented).
        data = mag if scheme not in encoders.SIGNED else counts
        spikes = encoders.encode(data, scheme)
        assert np.array_equal(encoders.decode(spikes, scheme), data)
        n = int(np.count_nonzero(spikes))
        T = spikes.shape[0]
        print(f"{scheme:15s} {T:3d} {n:9d} {1 - n / max(1, spikes.size):9.3f}")
    fig = plot_raster(counts, scheme="bitwise-signed", T=3, layer="demo (Gaussian)", tokens=12, neurons=40)
    paths = save_figure(fig, out / "raster", formats=("png",))
    print(f"raster: {paths[0]}")
    return 0


# ----------------------------------------------------------------------------- parser


def build_parser() -> argparse.ArgumentParser:
    """The argument parser of every subcommand."""
    p = argparse.ArgumentParser(
        prog="neurosim",
        description="Neuromorphic simulation and spike analysis of spiking LLMs (SpikingBrain scheme).",
    )
    p.add_argument("--version", action="version", version=f"neurosim {__version__}")
    p.add_argument("--debug", action="store_true", help="show full tracebacks on errors")
    p.add_argument("--quiet", action="store_true", help="no progress bars, only results")
    sub = p.add_subparsers(dest="command", metavar="COMMAND")

    d = sub.add_parser("demo", help="encode Gaussian activations with every scheme and save a raster")
    d.add_argument("--out", default="demo_out", help="output folder (default: demo_out)")
    d.add_argument("--tokens", type=int, default=64)
    d.add_argument("--channels", type=int, default=576)
    d.add_argument("--k", type=float, default=3.0, help="threshold divisor, V_th = mean|x|/k")
    d.add_argument("--seed", type=int, default=0)
    d.add_argument("--overwrite", action="store_true", help="write into a non-empty output folder")
    d.set_defaults(func=cmd_demo)
    return p


def main(argv: Sequence[str] | None = None) -> int:
    """Entry point of the ``neurosim`` console script."""
    parser = build_parser()
    args = parser.parse_args(argv)
    if not getattr(args, "func", None):
        parser.print_help()
        return 2
    func: Callable[[argparse.Namespace], int] = args.func
    try:
        return func(args)
    except KeyboardInterrupt:
        print("neurosim: interrupted", file=sys.stderr)
        return 1
    except Exception as e:  # one clear line unless --debug
        if args.debug:
            raise
        msg = str(e) or type(e).__name__
        print(f"neurosim: error: {msg}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
