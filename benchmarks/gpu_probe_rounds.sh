#!/bin/bash
# Host-probe rounds interleaved with the host-bound workloads they predict (docs/gpu-regimes.md,
# "Interleaved probe rounds"). Host time on a VM drifts by +-25 % within minutes, so a probe taken
# in one run and a workload taken in another compare two host states; here every round measures the
# probe (SmolLM2 prefill 1024 and decode b1) next to the targets, and the fit pools each workload's
# rounds by their median. Rows go to $OUT/probe_rounds.csv (append them to hw_models/data/gpu_measurements.csv).
# Run from a copy of the repository on a CUDA machine: bash benchmarks/gpu_probe_rounds.sh [ROUNDS] [REGIME] [PROBE]
# PROBE: smollm2 (the Llama code path's probe, default) or qwen05b (the Qwen2 code path's probe, Qwen2.5-0.5B shape).
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH=$PWD:${PYTHONPATH} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
O=${OUT:-/tmp/gpu_out}; mkdir -p "$O"; R=${1:-5}; REG=${2:-eager}; PROBE=${3:-smollm2}; CSV="$O/probe_rounds.csv"
ARGS=(--preset h200_sxm --regimes "$REG" --min-seconds 3 --idle-seconds 2 --csv "$CSV")
{ date -u; nvidia-smi --query-gpu=name,driver_version,power.limit --format=csv; } > "$O/probe_machine.txt" 2>&1
for i in $(seq 1 "$R"); do
  echo "=== round $i $(date -u +%T)"
  # the probe (prefill 1024, decode b1) and its prefill 4096 target, in one process
  python3 -m benchmarks.gpu_energy "${ARGS[@]}" --models "$PROBE" --modes prefill,decode --prefill-lens 1024,4096 \
      --batches 1 --decode-tokens 128 --prompt-len 1024
  # the 7B decode targets at batch 1 and 16
  python3 -m benchmarks.gpu_energy "${ARGS[@]}" --models qwen7b --modes decode --batches 1,16 \
      --decode-tokens 128 --prompt-len 1024
done > "$O/probe_rounds.log" 2>&1
date -u >> "$O/probe_rounds.log"
