#!/usr/bin/env bash
# animals3 from scratch: the photo defaults (`cnnkit train DATA` with no options; datasets/README.md has the
# table) and the variants that can be named on the command line, on the default split (0.6 / 0.1 / 0.3, seed
# 42). Choose on the validation numbers; the test accuracy is reported, not tuned.
# Run from the repository root after building:
#     datasets/experiments/animals3.sh [OUT_DIR] [VARIANT...]
# VARIANT: default (no options), cnn (--arch cnn), cnn64 (--arch cnn --image-size 64x64 --epochs 30), old (the
# session-2 defaults), and the session-3 and -4 variants below (options_of; the session-4 networks are the
# animals3_*.cfg files next to this script); default: default cnn cnn64.
# The runs behind the defaults used --threads 1 (THREADS=1); training is deterministic per seed and thread count. Environment: CNNKIT (default build/cnnkit), SHARED (default ../shared), THREADS
# (default: all cores). Writes OUT_DIR/<variant>/ (model, report, stderr log) and appends to
# OUT_DIR/summary.txt: best epoch, its validation loss and accuracy, test accuracy, wall and user CPU time,
# load average at the end.
set -euo pipefail
CNNKIT=${CNNKIT:-build/cnnkit}
SHARED=${SHARED:-../shared}
OUT=${1:-animals3_runs}
shift || true
VARIANTS=("$@")
[ ${#VARIANTS[@]} -eq 0 ] && VARIANTS=(default cnn cnn64)
DATA="$SHARED/datasets/animals3"
HERE=$(cd "$(dirname "$0")" && pwd)
THREADS_OPT=()
[ -n "${THREADS:-}" ] && THREADS_OPT=(--threads "$THREADS")
# SEED: another split, initialisation and augmentation stream (default 42, the split above); the runs go to
# OUT_DIR/<variant>_s<SEED>/
SEED_OPT=()
SUFFIX=
[ -n "${SEED:-}" ] && SEED_OPT=(--seed "$SEED") && SUFFIX=_s$SEED
# FOLD: a folder written by animals3_folds.py (FOLD/train, val, test): the default split's test photos with
# another validation set (session 6); the runs go to OUT_DIR/<variant>_<folder name>/
DATA_OPT=("$DATA")
if [ -n "${FOLD:-}" ]; then
    DATA_OPT=(--train "$FOLD/train" --val "$FOLD/val" --test "$FOLD/test")
    SUFFIX=${SUFFIX}_$(basename "$FOLD")
fi

[ -x "$CNNKIT" ] || { echo "animals3.sh: $CNNKIT not found (build first, or set CNNKIT)" >&2; exit 2; }
[ -d "$DATA" ] || { echo "animals3.sh: $DATA not found (set SHARED)" >&2; exit 2; }
mkdir -p "$OUT"

options_of() {
    case "$1" in
    default) ;;
    cnn) echo --arch cnn ;;
    cnn64) echo --arch cnn --image-size 64x64 --epochs 30 ;;
    # session 3 (issue #4): label smoothing, test-time flips, the weight average, longer schedules, batch 16
    # (the default since: b16)
    old) echo --label-smoothing 0 --tta none --ema 0 --epochs 40 --batch-size 32 ;;
    ls) echo --label-smoothing 0.1 --tta none --ema 0 --epochs 40 --batch-size 32 ;;
    ls_tta_ema) echo --label-smoothing 0.1 --tta flip --ema 0.995 --epochs 40 --batch-size 32 ;;
    ls_tta_ema60) echo --label-smoothing 0.1 --tta flip --ema 0.995 --epochs 60 --batch-size 32 ;;
    ls_tta_ema60_112) echo --label-smoothing 0.1 --tta flip --ema 0.995 --epochs 60 --batch-size 32 --image-size 112x112 ;;
    b16) echo --label-smoothing 0.1 --tta flip --ema 0.995 --epochs 60 --batch-size 16 ;;
    # session 4: b16 spelt out (Adam, its rate and decay), whatever the binary's defaults
    adam) echo --optimizer adam --lr 0.001 --weight-decay 1e-4 --label-smoothing 0.1 --tta flip --ema 0.995 --epochs 60 --batch-size 16 ;;
    # session 4 (issue #4 again): levers on top of the b16 defaults
    mix02) echo --mixup 0.2 ;;
    sgd005) echo --optimizer sgd --lr 0.05 --weight-decay 5e-4 ;;
    sgd01) echo --optimizer sgd --lr 0.1 --weight-decay 5e-4 ;;
    adamw005) echo --optimizer adamw --weight-decay 0.05 ;;
    # session 6: random erasing (one box of 2-25% of the photo set to the mean, half the photos)
    erase05) echo --erase 0.5 ;;
    # session 7: training crops cut from a 128 x 128 source (session 5's S = 128), alone and with cnn5d
    s128) echo --train-size 128 ;;
    s128_cnn5d) echo --train-size 128 --arch "$HERE/animals3_cnn5d.cfg" ;;
    # networks as .cfg files next to this script (3 classes): a stride-2 first conv at 112 x 112 instead of
    # cnn5's conv + pool at 96; a stride-2 stem + pool at 128 with two convs in blocks 3 and 4; cnn5 with a
    # second conv in block 5
    s2_112) echo --arch "$HERE/animals3_s2_112.cfg" --image-size 112x112 ;;
    stem128) echo --arch "$HERE/animals3_stem128_vgg.cfg" --image-size 128x128 ;;
    cnn5d) echo --arch "$HERE/animals3_cnn5d.cfg" ;;
    s2_112_sgd) echo --arch "$HERE/animals3_s2_112.cfg" --image-size 112x112 --optimizer sgd --lr 0.05 --weight-decay 5e-4 ;;
    s2_112_adam) echo --arch "$HERE/animals3_s2_112.cfg" --image-size 112x112 --optimizer adam --lr 0.001 --weight-decay 1e-4 ;;
    stem128_sgd) echo --arch "$HERE/animals3_stem128_vgg.cfg" --image-size 128x128 --optimizer sgd --lr 0.05 --weight-decay 5e-4 ;;
    *) echo "animals3.sh: unknown variant $1" >&2; exit 2 ;;
    esac
}

for v in "${VARIANTS[@]}"; do
    opts=$(options_of "$v")
    dir="$OUT/$v$SUFFIX"
    rm -rf "$dir"
    mkdir -p "$dir"
    # shellcheck disable=SC2086 # opts is a list of words
    /usr/bin/time -f "%e %U" -o "$dir/time.txt" "$CNNKIT" train "${DATA_OPT[@]}" $opts "${THREADS_OPT[@]}" "${SEED_OPT[@]}" \
        -o "$dir/m.cnk" --report "$dir/report" >"$dir/stdout.txt" 2>"$dir/stderr.txt"
    best=$(grep -a 'saved' "$dir/stderr.txt" | tail -n 1 | sed 's/.*epoch *\([0-9]*\)\/.*val loss \([0-9.]*\) acc \([0-9.]*\).*/epoch \1 val_loss \2 val_acc \3/')
    test_acc=$(sed -n 's/^test accuracy: //p' "$dir/stdout.txt")
    read -r wall user <"$dir/time.txt"
    echo "$v$SUFFIX: best $best test_acc $test_acc wall ${wall}s user ${user}s load $(cut -d' ' -f1-3 /proc/loadavg)" |
        tee -a "$OUT/summary.txt"
done
