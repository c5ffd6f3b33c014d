#!/usr/bin/env python
"""Print the tables of docs/gpu-regimes.md from the code and the recorded measurements (no GPU).

    python benchmarks/gpu_regime_tables.py [--csv hw_models/data/gpu_measurements.csv]

1. The fitted regimes (hw_models.gpu_regimes.FITTED_REGIMES): host profile and GPU side.
2. J/token and s/token [low, high] of decode at batch 1 (1024-token prompt) for each GPU and regime.
3. The out-of-sample table (hw_models.gpu_calibration.out_of_sample); tests/test_hw_calibration.py
   checks that docs/gpu-regimes.md holds exactly this table.
"""
from __future__ import annotations

import argparse
import csv
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

import hw_models as hm  # noqa: E402
from hw_models.gpu_calibration import out_of_sample, out_of_sample_markdown  # noqa: E402
from hw_models.gpu_regimes import FITTED_REGIMES  # noqa: E402


def fitted_table() -> str:
    lines = ["| GPU | regime | host per layer, prefill | host per layer, decode step | prefill compute | "
             "memory power fraction | J/token range factor | s/token range factor |", "|---|---|---|---|---|---|---|---|"]
    for (gpu, name), r in FITTED_REGIMES.items():
        dec = r.decode_host_s_per_layer if r.decode_host_s_per_layer is not None else r.host_s_per_layer
        eff = r.compute_efficiency if r.compute_efficiency is not None else f"{r.kernel_profile} kernel profile"
        lines.append(f"| {gpu} | {name} | {r.host_s_per_layer * 1e3:.3f} ms | {dec * 1e3:.3f} ms | "
                     f"{eff} | {r.memory_power_fraction} | {r.energy_spread[0]:.2f}-"
                     f"{r.energy_spread[1]:.2f} | {r.time_spread[0]:.2f}-{r.time_spread[1]:.2f} |")
    return "\n".join(lines)


def decode_b1_table() -> str:
    lines = ["| GPU | regime | SmolLM2-135M J/token [low, high] | s/token | Qwen2.5-7B J/token [low, high] | s/token "
             "| calibrated |", "|---|---|---|---|---|---|---|"]
    for g in ("h200", "h100", "a100"):
        for reg in hm.REGIMES:
            cells = []
            for shape in (hm.SMOLLM2_135M, hm.QWEN25_7B):
                p = hm.predict_forward(hm.get_gpu(g), shape, "decode", batch=1, prompt_len=1024, context=1088,
                                       regime=reg)
                cells.append(f"{p['energy_per_token_j']:.3g} [{p['energy_per_token_j_low']:.3g}, "
                             f"{p['energy_per_token_j_high']:.3g}]")
                cells.append(f"{p['latency_per_token_s'] * 1e3:.3g} ms [{p['latency_per_token_s_low'] * 1e3:.3g}, "
                             f"{p['latency_per_token_s_high'] * 1e3:.3g}]")
            lines.append(f"| {hm.get_gpu(g).name} | {reg} | {' | '.join(cells)} | {p['calibrated']} |")
    return "\n".join(lines)


def main(argv: list[str] | None = None) -> int:
    ap = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    ap.add_argument("--csv", default=str(REPO / "hw_models" / "data" / "gpu_measurements.csv"))
    args = ap.parse_args(argv)
    with open(args.csv, newline="", encoding="utf-8") as fh:
        rows = list(csv.DictReader(fh))
    res = out_of_sample(rows)
    print(fitted_table(), decode_b1_table(), out_of_sample_markdown(res), sep="\n\n")
    print(f"\n{sum(r['within'] for r in res)} of {len(res)} out-of-sample predictions within 30 %")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
