#!/usr/bin/env bash
# Issue 23's CPU bars as one run on whatever CPU this is (docs/speed.md, "Where issue 23's bars stand"):
#   1. random-weight Ettin 17m (`ettin-rerank init`), the short workload (1 query x 100 SciFact
#      documents): ours exact against sentence-transformers fp32, our int8 against the peers' int8;
#   2. the bundled model, 1,000 SciFact pairs cut at 256 tokens: our int8 against exact (speed and
#      ranking) and against ONNX Runtime's int8;
#   3. where each engine's time goes (`benchmarks/time_split.py`): the 17m's exact against
#      sentence-transformers, the bundled model's int8 against exact.
# Every engine runs on the same CORES (taskset) with --threads equal to their count, so a many-core
# host measures what a 2-core laptop would. OpenVINO's rows need `openvino` and `nncf`; where they are
# missing the bench reports them `not measured` and the other rows still run.
# Runs from the repository root without installing the package (PYTHONPATH=src). SHARED: a folder laid
# out as ../shared (SciFact, the ModernBERT tokenizer); OUT: where the bench JSON and logs go.
#
#   SHARED=../shared OUT=bench-results/cpu CORES=0,1 bash benchmarks/cpu_bars.sh
set -uo pipefail
SHARED=${SHARED:-../shared}
OUT=${OUT:-bench-results/cpu}
CORES=${CORES:-0,1}  # or "auto": the first two CPUs on distinct physical cores
PYTHON=${PYTHON:-python3}
MODELS=${MODELS:-/tmp/ettin-cpu-models}
BUNDLED_REPEATS=${BUNDLED_REPEATS:-4}
BUNDLED_QUERIES=${BUNDLED_QUERIES:-10}  # x 100 documents: the bar's 1,000 pairs
ENGINES_17M=${ENGINES_17M:-ours-exact,st-default,ours-int8,onnx-ours-int8,openvino-int8}
ENGINES_BUNDLED=${ENGINES_BUNDLED:-ours-exact,ours-int8,onnx-ours-int8,openvino-int8,st-default}
mkdir -p "$OUT" "$MODELS"
export PYTHONPATH="$PWD/src${PYTHONPATH:+:$PYTHONPATH}" HF_HUB_OFFLINE=1 PYTHONUNBUFFERED=1
if [ "$CORES" = auto ]; then
    CORES=$(for siblings in /sys/devices/system/cpu/cpu[0-9]*/topology/thread_siblings_list; do
        cut -d, -f1 <"$siblings" | cut -d- -f1; done | sort -un | head -2 | paste -sd,)
fi
threads=$(( $(tr ',' '\n' <<<"$CORES" | wc -l) ))
pin() { if command -v taskset >/dev/null; then taskset -c "$CORES" "$@"; else "$@"; fi; }
step() { echo; echo "=== $* ($(date -u +%T))"; }

step environment
lscpu | grep -E '^(Model name|Socket|Core|Thread)' 2>&1
grep -m1 -o -w -E 'avx2|fma|avx512f|avx512_vnni|avx_vnni|avx512_bf16|avx512_fp16|amx_bf16|amx_int8' /proc/cpuinfo \
    | sort -u | tr '\n' ' '; echo
"$PYTHON" - <<'EOF' 2>&1
import importlib, sys
print("python", sys.version.split()[0])
for name in ("torch", "transformers", "sentence_transformers", "onnxruntime", "openvino", "nncf"):
    try:
        print(name, importlib.import_module(name).__version__)
    except ImportError as error:
        print(name, "missing:", error)
EOF
echo "cores $CORES, threads $threads"

step "17m: init and the short workload"
timeout 120 "$PYTHON" -m ettin_rerank init --size 17m --tokenizer "$SHARED/tokenizers/modernbert" "$MODELS/17m" 2>&1 | tail -1
pin timeout "${TIMEOUT_17M:-300}" "$PYTHON" -m ettin_rerank bench --model "$MODELS/17m" --data "$SHARED/data/scifact" \
    --workload beir-short --num-queries 1 --repeats 5 --threads "$threads" \
    --engines "$ENGINES_17M" \
    --out "$OUT/cpu-17m.json" --quiet 2>&1 | grep -v "^wrote"

step "bundled model: int8 against exact, 1,000 pairs at 256 tokens"
pin timeout "${TIMEOUT_BUNDLED:-480}" "$PYTHON" -m ettin_rerank bench --model src/ettin_rerank/default_model \
    --data "$SHARED/data/scifact" --workload beir-short --num-queries "$BUNDLED_QUERIES" \
    --docs-per-query 100 --threads "$threads" --repeats "$BUNDLED_REPEATS" --max-length 256 \
    --engines "$ENGINES_BUNDLED" \
    --out "$OUT/cpu-bundled.json" --quiet 2>&1 | grep -v "^wrote"
step "where the time goes: linears, attention, the rest (torch profiler; docs/speed.md, \"Packing in the scoring thread\")"
pin timeout "${TIMEOUT_SPLIT:-600}" "$PYTHON" benchmarks/time_split.py --model "$MODELS/17m" \
    --data "$SHARED/data/scifact" --engines ours-exact,st-default --rounds 3 --threads "$threads" 2>&1 \
    | tee "$OUT/split-17m.txt"
pin timeout "${TIMEOUT_SPLIT:-600}" "$PYTHON" benchmarks/time_split.py --model src/ettin_rerank/default_model \
    --data "$SHARED/data/scifact" --engines ours-int8,ours-exact --num-queries 3 --max-length 256 \
    --rounds 3 --threads "$threads" 2>&1 | tee "$OUT/split-bundled.txt"

step done
