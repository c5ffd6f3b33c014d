#!/bin/bash
# The GPU replay row of docs/performance.md on a CUDA machine: the benchmark at 1024 and 4096
# tokens (fused Triton kernels and the reference path, one run each size; BACKENDS overrides),
# a profile of one fused pass at 1024 tokens, then the replay tests on CUDA. Logs go to $OUT.
# Run from a copy of the repository: bash benchmarks/gpu_replay.sh [TEST_SECONDS]
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH=$PWD:${PYTHONPATH} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
O=${OUT:-/tmp/gpu_out}; mkdir -p "$O"
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import sys, torch, triton, numpy; print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'triton', triton.__version__, 'numpy', numpy.__version__)"; } > "$O/machine.txt" 2>&1
for n in 1024 4096; do
  extra=""; [ "$n" = 1024 ] && extra="--profile"
  timeout 150 python3 benchmarks/simulator.py --device cuda --random-model --tokens $n --schemes bitwise-signed \
      --engine gemm --backend "${BACKENDS:-triton,reference}" --repeats 5 $extra > "$O/replay_$n.log" 2>&1
  echo "rc $?" >> "$O/replay_$n.log"
done
timeout "${1:-150}" python3 -m pytest -v -x -p no:cacheprovider --durations=8 tests/test_replay_batch.py \
    tests/test_kernels_gemm.py tests/test_activity_fast.py -k "cuda or torch or triton or fall" > "$O/tests.log" 2>&1
echo "tests rc $?" >> "$O/tests.log"
grep -h -A3 "scheme  " "$O"/replay_*.log; grep -c PASSED "$O/tests.log"; tail -n 3 "$O/tests.log"
