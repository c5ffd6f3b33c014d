#!/bin/bash
# Capture rows of docs/performance.md on a CUDA machine, and `neurosim run --device cuda` end to end
# for a SmolLM2-shaped and a Qwen2.5-7B-shaped local folder (random weights made there).
# Run from a copy of the repository: bash benchmarks/gpu_capture.sh TOKENIZER_DIR [STAGES]; logs go to $OUT.
# STAGES (default "models bench cli floors"): run them in two calls on a warm machine if time is short.
cd "$(dirname "$0")/.." || exit 1
export PYTHONPATH=$PWD:${PYTHONPATH} HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=false
O=${OUT:-/tmp/gpu_out}; W=${WORK:-/tmp/ns_capture}; TOK=$(realpath "$1"); mkdir -p "$O" "$W"
STAGES=${2:-models bench cli floors}
TEXT=neurosim/data/declaration_of_independence.txt
{ date -u; nvidia-smi --query-gpu=name,driver_version,memory.total --format=csv; nproc; df -h /tmp
  python3 -c "import sys, torch, transformers, h5py, numpy; from analysis import trace_writer as t
print('python', sys.version.split()[0], 'torch', torch.__version__, 'cuda', torch.version.cuda, 'transformers',
      transformers.__version__, 'h5py', h5py.__version__, 'numpy', numpy.__version__, 'deflate', t._isal)"
} > "$O/machine.txt" 2>&1
if [[ $STAGES == *models* ]]; then  # model folders (the 7B in the background) while the CUDA tests run
  ( timeout 100 python3 benchmarks/random_models.py --shape qwen2.5-7b --tokenizer "$TOK" --out "$W/qwen7b"
    timeout 40 python3 benchmarks/random_models.py --shape smollm2-135m --tokenizer "$TOK" --out "$W/smol" --dtype float32
  ) > "$O/models.log" 2>&1 &
  timeout 60 python3 -m pytest -q -x -p no:cacheprovider tests/test_capture_async.py -k "cuda or ring or status or lent" \
      > "$O/tests.log" 2>&1; echo "tests rc $?" >> "$O/tests.log"
  wait
fi
if [[ $STAGES == *bench* ]]; then
  timeout 90 python3 benchmarks/capture.py --device cuda --dtype bfloat16 --model "$W/qwen7b" --tokens 1024 --repeats ${REPEATS:-2} \
      --skip-memory --skip-ppl --chunk-tokens 1024 --json "$O/capture_7b.json" > "$O/capture_7b.log" 2>&1
  echo "capture.py rc $?" >> "$O/capture_7b.log"
fi
run() {  # name model tokens: the CLI end to end, its time and the start of its report
  local t0=$(date +%s%N)
  timeout ${CLI_TIMEOUT:-120} python3 -m neurosim.cli run --model "$W/$2" --device cuda --text-file $TEXT --max-tokens "$3" \
      --out "$W/run_$1" --overwrite --quiet > "$O/run_$1.log" 2>&1
  echo "neurosim run --device cuda ($2, $3 tokens) rc $? in $(( ($(date +%s%N) - t0) / 1000000 )) ms" >> "$O/run_$1.log"
  head -c 20000 "$W/run_$1/report.md" >> "$O/run_$1.log" 2>/dev/null
}
if [[ $STAGES == *cli* ]]; then run smol smol 512 & run qwen qwen7b 128 & wait; fi
if [[ $STAGES == *floors* ]]; then
  timeout ${FLOORS_TIMEOUT:-45} python3 benchmarks/capture_floors.py --tokens 1024 --dir /tmp --threads 1,4,14 > "$O/floors.log" 2>&1
fi
ls -la "$O"
