#!/usr/bin/env bash
# Leave-one-speaker-out on FSDD with cnnkit's defaults: for each speaker, `cnnkit train` with that speaker's
# 500 clips as the test set (--test-match) and the other four speakers' clips split 90/10 (clip level,
# stratified) into training and validation. Run from the repository root after building:
#     datasets/experiments/fsdd_loso.sh [OUT_DIR]
# Environment: CNNKIT (default build/cnnkit), SHARED (default ../shared), THREADS (default: all cores),
# SPEAKERS (default "george jackson lucas nicolas theo"), EXTRA (more `cnnkit train` options).
# Writes OUT_DIR/<speaker>.txt (each run's output) and OUT_DIR/summary.txt (accuracy, wall time and the kept
# epoch's validation loss and accuracy per speaker, and the mean accuracy).
set -euo pipefail
CNNKIT=${CNNKIT:-build/cnnkit}
SHARED=${SHARED:-../shared}
SPEAKERS=${SPEAKERS:-george jackson lucas nicolas theo}
OUT=${1:-fsdd_loso}
FSDD="$SHARED/datasets/fsdd"
THREADS_OPT=()
[ -n "${THREADS:-}" ] && THREADS_OPT=(--threads "$THREADS")
read -r -a EXTRA_OPT <<< "${EXTRA:-}"
[ -x "$CNNKIT" ] || { echo "fsdd_loso.sh: $CNNKIT not found (build first, or set CNNKIT)" >&2; exit 2; }
[ -d "$FSDD" ] || { echo "fsdd_loso.sh: $FSDD not found (set SHARED)" >&2; exit 2; }
mkdir -p "$OUT"
: > "$OUT/summary.txt"
for s in $SPEAKERS; do
    start=$(date +%s.%N)
    "$CNNKIT" train "$FSDD" --test-match "_${s}_" "${THREADS_OPT[@]}" "${EXTRA_OPT[@]}" -o "$OUT/$s.cnk" \
        > "$OUT/$s.txt" 2>&1
    end=$(date +%s.%N)
    acc=$(sed -n 's/.*test accuracy[^0-9]*\([0-9.]*\).*/\1/p' "$OUT/$s.txt" | tail -n 1)
    # the kept model's epoch (the last one saved) and its validation numbers: what a choice may look at
    best=$(grep '[*]saved' "$OUT/$s.txt" | tail -n 1 |
        sed -n 's|^epoch *\([0-9]*\)/.*val loss \([0-9.]*\) acc \([0-9.]*\).*|best epoch \1, val loss \2 acc \3|p' || true)
    printf '%-8s test accuracy %s  wall %.0f s  (load %s)  %s\n' "$s" "$acc" "$(echo "$end - $start" | bc)" \
        "$(cut -d' ' -f1-3 /proc/loadavg)" "$best" | tee -a "$OUT/summary.txt"
done
awk '{ sum += $4; n++ } END { if (n) printf "mean test accuracy over %d speakers: %.4f\n", n, sum / n }' \
    "$OUT/summary.txt" | tee -a "$OUT/summary.txt"
