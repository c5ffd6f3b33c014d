#!/bin/bash
# Every GPU row of docs/performance.md in one run on a CUDA machine; logs go to $OUT (or /tmp/gpu_out).
# Run from a copy of the repository: bash benchmarks/gpu_all.sh [MODEL_DIR_WITH_TOKENIZER]
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH=$PWD:${PYTHONPATH} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
O=${OUT:-/tmp/gpu_out}; mkdir -p "$O"
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv
  python3 -c "import torch, numba, triton; print('torch', torch.__version__, 'cuda', torch.version.cuda, 'numba', numba.__version__, 'triton', triton.__version__)"; } > "$O/machine.txt" 2>&1
timeout 150 python3 -m pytest -q -x -p no:cacheprovider tests/test_kernels_gemm.py tests/test_activity_fast.py \
    -k "not trace_activity" > "$O/tests.log" 2>&1; echo "tests rc $?" >> "$O/tests.log"
for n in 1024 4096; do
  timeout 150 python3 benchmarks/simulator.py --device cuda --random-model --tokens $n --schemes bitwise-signed \
      --engine gemm,planes --repeats 5 > "$O/simulator_$n.log" 2>&1
done
timeout 60 python3 benchmarks/encode_decode.py --device cuda --repeat 5 > "$O/encoders_cuda.log" 2>&1
if [ -n "$1" ]; then  # `neurosim run --device cuda` end to end on a local model folder (random weights)
  timeout 150 python3 - "$1" > "$O/run_cli.log" 2>&1 <<'PY'
import subprocess, sys, time
from transformers import AutoConfig, AutoModelForCausalLM
d = sys.argv[1]
AutoModelForCausalLM.from_config(AutoConfig.from_pretrained(d)).save_pretrained(d)
t = time.time()
r = subprocess.run([sys.executable, "-m", "neurosim.cli", "run", "--model", d, "--device", "cuda", "--text-file",
                    "neurosim/data/declaration_of_independence.txt", "--max-tokens", "512", "--out", "/tmp/run_cuda"])
print("neurosim run --device cuda rc", r.returncode, "in", round(time.time() - t, 1), "s")
PY
  cp /tmp/run_cuda/report.md "$O/run_report.md" 2>/dev/null
fi
ls -la "$O"
