#!/usr/bin/env bash
# The GPU checks and benchmarks of docs/speed.md ("GPU"), as one run on a CUDA machine:
#   1. the CUDA tests (tests/modeling/test_cuda.py, the CUDA attention kernels against the reference);
#   2. random-weight Ettin 17m, 150m and 1b (`ettin-rerank init`), each benched on SciFact pairs:
#      ours-bf16 (unpadded, variable-length flash kernel) against sentence-transformers bf16 with its
#      best attention there (flash_attention_2 when flash-attn is installed, else SDPA), same run;
#      17m and 150m also in fp32 (ours-exact against st-default), the reference for score deviations;
#   3. 17m on long documents (2,000-8,000 tokens, scored whole), bf16 against bf16.
# Runs from the repository root without installing the package (PYTHONPATH=src), on the machine's own
# torch, transformers and sentence-transformers. SHARED: a folder laid out as ../shared (SciFact, the
# ModernBERT tokenizer); OUT: where the test log and bench JSON go. Each step has its own time limit, so one
# that hangs leaves the others their time.
#
#   SHARED=../shared OUT=bench-results/gpu bash benchmarks/gpu.sh
set -uo pipefail
SHARED=${SHARED:-../shared}
OUT=${OUT:-bench-results/gpu}
QUERIES=${QUERIES:-30}  # x 100 documents: 3,000 pairs, truncated at 512 tokens (the published setting)
SIZES=${SIZES:-17m 150m 1b}
MODELS=${MODELS:-/tmp/ettin-gpu-models}
PYTHON=${PYTHON:-python3}
DEVICE=${DEVICE:-cuda}  # cpu: a dry run of this script where no GPU is
mkdir -p "$OUT" "$MODELS"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1 TOKENIZERS_PARALLELISM=true

step() { echo; echo "=== $* ($(date -u +%T))"; }

step environment
nvidia-smi --query-gpu=name,driver_version,memory.total,clocks.max.sm --format=csv 2>&1
"$PYTHON" - <<'EOF' 2>&1
import importlib, sys, torch
print("python", sys.version.split()[0], "torch", torch.__version__, "cuda", torch.version.cuda,
      "device", torch.cuda.get_device_name() if torch.cuda.is_available() else None)
for name in ("transformers", "sentence_transformers", "tokenizers", "flash_attn"):
    try:
        print(name, importlib.import_module(name).__version__)
    except ImportError as error:
        print(name, "missing:", error)
from ettin_rerank.modeling.attention import default_backend
print("our bf16 attention on cuda:", default_backend(torch.device("cuda"), torch.bfloat16))
if torch.cuda.is_available():  # the ceiling for the bench's GFLOP/s: a large bf16 matmul, median of 10
    import statistics
    a, b = (torch.randn(8192, 8192, device="cuda", dtype=torch.bfloat16) for _ in range(2))
    times = []
    for _ in range(13):
        start, end = torch.cuda.Event(enable_timing=True), torch.cuda.Event(enable_timing=True)
        start.record(); a @ b; end.record(); torch.cuda.synchronize()
        times.append(start.elapsed_time(end) / 1e3)
    print(f"bf16 matmul peak: {2 * 8192**3 / statistics.median(times[3:]) / 1e12:.0f} TFLOP/s")
EOF

step CUDA tests
ETTIN_RERANK_SHARED_DIR="$(cd "$SHARED" && pwd)" PYTEST_DISABLE_PLUGIN_AUTOLOAD=1 timeout 240 "$PYTHON" -m pytest -q -p no:cacheprovider -rs tests/modeling/test_cuda.py \
    tests/modeling/test_attention_paths.py 2>&1 | tee "$OUT/tests.log"

for size in $SIZES; do
    step "$size: init and bench"
    timeout 200 "$PYTHON" -m ettin_rerank init --size "$size" --tokenizer "$SHARED/tokenizers/modernbert" "$MODELS/$size" 2>&1 | tail -1
    engines=ours-bf16,st-bf16
    repeats=5
    # fp32 too (the reference for score deviations) where it is cheap; 1b: half precision only
    if [ "$size" != 1b ]; then engines=ours-bf16,st-bf16,ours-exact,st-default; fi
    if [ "$size" != 17m ]; then repeats=3; fi
    timeout 240 "$PYTHON" -m ettin_rerank bench --model "$MODELS/$size" --data "$SHARED/data/scifact" --workload beir-short \
        --num-queries "$QUERIES" --docs-per-query 100 --device "$DEVICE" --repeats "$repeats" \
        --st-batch-size 64 --engines "$engines" --out "$OUT/gpu-$size.json" --chart "$MODELS/$size.png" --quiet 2>&1 | grep -v "^wrote"
done
step "17m: long documents (2,000-8,000 tokens, whole)"
timeout 150 "$PYTHON" -m ettin_rerank bench --model "$MODELS/17m" --data "$SHARED/data/scifact" --workload long \
    --num-docs 40 --device "$DEVICE" --repeats 3 --engines ours-bf16,st-bf16 --out "$OUT/gpu-17m-long.json" \
    --chart "$MODELS/17m-long.png" --quiet 2>&1 | grep -v "^wrote"
step done
