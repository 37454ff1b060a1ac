#!/usr/bin/env bash
# The three models of the classic genre study on spoken digits, one speaker held out, and one comparison
# report: a basic CNN on mel spectrograms, MobileNetV2 (ImageNet) transfer-learned on mel images, and the
# mel + wavelet late-fusion model. Run from the repository root after building:
#     datasets/experiments/three_models.sh [OUT_DIR]
# Environment: CNNKIT (default build/cnnkit), SHARED (default ../shared), FUSION (mean|weighted|concat,
# default concat, as cnnkit's), SPEAKER (the held-out speaker, default george), SEED (default 42), THREADS (default: all cores).
# Writes OUT_DIR/{basic,transfer,fusion}/ (each run's report), OUT_DIR/comparison/ (the side-by-side
# report) and OUT_DIR/summary.txt (test accuracies and wall times).
set -euo pipefail
CNNKIT=${CNNKIT:-build/cnnkit}
SHARED=${SHARED:-../shared}
FUSION=${FUSION:-concat}
SPEAKER=${SPEAKER:-george}
SEED=${SEED:-42}
OUT=${1:-three_models}
FSDD="$SHARED/datasets/fsdd"
MNV2="$SHARED/weights/mobilenet_v2_1.0_224/mobilenet_v2_1.0_224_quant.tflite"
THREADS_OPT=()
[ -n "${THREADS:-}" ] && THREADS_OPT=(--threads "$THREADS")

[ -x "$CNNKIT" ] || { echo "three_models.sh: $CNNKIT not found (build first, or set CNNKIT)" >&2; exit 2; }
[ -d "$FSDD" ] || { echo "three_models.sh: $FSDD not found (set SHARED)" >&2; exit 2; }
mkdir -p "$OUT"
rm -rf "$OUT/basic" "$OUT/transfer" "$OUT/fusion" "$OUT/comparison"

# The same split for all three: files of speaker $SPEAKER are the test set; the validation files (early
# stopping) are drawn from the other speakers with each speaker kept on one side. Same seed everywhere.
SPLIT=(--test-match "_${SPEAKER}_" --group-by '^[0-9]+_([a-z]+)_' --val-fraction 0.25 --seed "$SEED")

timed() { # name command...: runs it, appends "name: seconds" to the timing file
    local name=$1 start end
    shift
    start=$(date +%s.%N)
    "$@"
    end=$(date +%s.%N)
    echo "$name $(echo "$end - $start" | bc)" >> "$OUT/times.txt"
}
: > "$OUT/times.txt"

timed import "$CNNKIT" import "$MNV2" -o "$OUT/mobilenet_v2.cnk"
timed basic "$CNNKIT" train "$FSDD" --input mel "${SPLIT[@]}" "${THREADS_OPT[@]}" \
    -o "$OUT/basic.cnk" --report "$OUT/basic" | tee "$OUT/basic.txt"
timed transfer "$CNNKIT" train "$FSDD" --from "$OUT/mobilenet_v2.cnk" --freeze backbone "${SPLIT[@]}" \
    "${THREADS_OPT[@]}" -o "$OUT/transfer.cnk" --report "$OUT/transfer" | tee "$OUT/transfer.txt"
timed fusion "$CNNKIT" train "$FSDD" --input mel+wavelet --arch fusion --fusion "$FUSION" "${SPLIT[@]}" \
    "${THREADS_OPT[@]}" -o "$OUT/fusion.cnk" --report "$OUT/fusion" | tee "$OUT/fusion.txt"
"$CNNKIT" report "$OUT/basic/predictions.csv" "$OUT/transfer/predictions.csv" "$OUT/fusion/predictions.csv" \
    --names basic,transfer,fusion -o "$OUT/comparison"

{
    echo "FSDD, speaker '$SPEAKER' held out (test), seed $SEED, fusion mode $FUSION"
    sed -n '/model comparison/,/^$/p' "$OUT/comparison/report.txt"
    echo
    echo "fusion branches (from its own report):"
    sed -n '/model comparison/,/^$/p' "$OUT/fusion/report.txt"
    echo
    echo "wall times (s):"
    cat "$OUT/times.txt"
} > "$OUT/summary.txt"
cat "$OUT/summary.txt"
