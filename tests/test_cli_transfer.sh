#!/usr/bin/env bash
# `cnnkit train --from` and `--input mel+wavelet --arch fusion` end to end (../shared/CLI.md): MobileNetV1
# 0.25/128 imported from the shared .tflite as a frozen backbone on a few animals3 photos (second run: every
# backbone output from the cache, the same model), predict and eval on raw files with the saved whole
# network; a fine-tuning run stopped (--stop-after) and continued with --resume ends byte-identical, and
# checkpoints of the other kind are refused both ways; the same backbone on mel images of generated audio; a
# weighted fusion model whose report shows each
# branch, predicted and evaluated from its file; usage errors exit 2, a missing backbone exits 3 and leaves
# no model behind.
set -u
BIN=${CNK_BIN:?CNK_BIN not set}
SHARED=${CNK_SHARED:?CNK_SHARED not set}
WORK=${CNK_BUILD_DIR:-.}/tmp-cli-transfer-$$
rm -rf "$WORK" && mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
expect_rc() { # expected actual what
    [ "$1" = "$2" ] || fail "$3: exit code $2, expected $1 ($(tail -3 "$WORK/err" 2>/dev/null))"
}

"$BIN" import "$SHARED/weights/mobilenet_v1_0.25_128/mobilenet_v1_0.25_128_quant.tflite" -o "$WORK/v1.cnk" 2> "$WORK/err"
expect_rc 0 $? "import"
for c in cats dogs panda; do
    mkdir -p "$WORK/photos/$c"
    ls "$SHARED/datasets/animals3/$c" | sort | head -6 | while read -r f; do
        ln -s "$SHARED/datasets/animals3/$c/$f" "$WORK/photos/$c/$f"
    done
done

# 1. Frozen backbone: head only, backbone outputs computed once, then all from the cache.
"$BIN" train "$WORK/photos" --from "$WORK/v1.cnk" --epochs 8 --cache "$WORK/cache" -o "$WORK/a.cnk" \
    --report "$WORK/rep" > "$WORK/out" 2> "$WORK/err"
expect_rc 0 $? "train --from"
grep -q "(0 files from the cache)" "$WORK/out" && grep -q "^backbone: mobilenet_v1 (256 features per segment)" "$WORK/out" ||
    fail "first run's backbone line: $(cat "$WORK/out")"
grep -q "^test accuracy: " "$WORK/out" || fail "no test accuracy line"
[ -f "$WORK/rep/report.txt" ] && [ -f "$WORK/rep/predictions.csv" ] || fail "report files missing"
"$BIN" train "$WORK/photos" --from "$WORK/v1.cnk" --epochs 8 --cache "$WORK/cache" -o "$WORK/b.cnk" \
    > "$WORK/out2" 2> "$WORK/err"
expect_rc 0 $? "second train --from"
grep -q "(18 files from the cache)" "$WORK/out2" || fail "second run not from the cache: $(cat "$WORK/out2")"
[ "$(grep '^test accuracy' "$WORK/out")" = "$(grep '^test accuracy' "$WORK/out2")" ] || fail "cached run differs"

# 2. The saved whole network on raw files.
panda=$(ls "$WORK/photos/panda" | head -1)
"$BIN" predict "$WORK/a.cnk" "$WORK/photos/panda/$panda" --format csv > "$WORK/pred" 2> "$WORK/err"
expect_rc 0 $? "predict"
grep -Eq "(cats|dogs|panda)" "$WORK/pred" || fail "predict output: $(cat "$WORK/pred")"
"$BIN" eval "$WORK/a.cnk" "$WORK/photos" > "$WORK/eval" 2> "$WORK/err"
expect_rc 0 $? "eval"
grep -q "accuracy" "$WORK/eval" || fail "eval prints no report"

# 2b. A second phase fine-tuning the top block.
"$BIN" train "$WORK/photos" --from "$WORK/v1.cnk" --epochs 3 --finetune-epochs 1 --unfreeze 1 --finetune-lr 1e-4 \
    --cache "$WORK/cache" -o "$WORK/ft.cnk" > "$WORK/out" 2> "$WORK/err"
expect_rc 0 $? "train --from --finetune-epochs"
grep -q "^fine-tuning: 1 epochs" "$WORK/out" || fail "no fine-tuning line: $(cat "$WORK/out")"

# 2c. The same run stopped after phase one's second epoch, then after its last (phase two not begun), each
# time continued with --resume: the same model, byte for byte. The files at phase one's end plus phase two's
# first optimiser file (what a kill between the two files of that checkpoint leaves) resume the same too. A
# transfer checkpoint is refused by a plain run (one line naming it, exit 3), a plain checkpoint by a transfer
# run.
ft_opts=(--from "$WORK/v1.cnk" --epochs 3 --finetune-epochs 1 --unfreeze 1 --finetune-lr 1e-4 --cache "$WORK/cache")
"$BIN" train "$WORK/photos" "${ft_opts[@]}" -o "$WORK/r.cnk" --stop-after 2 > "$WORK/out" 2> "$WORK/err"
expect_rc 0 $? "train --from --stop-after 2"
grep -q "^stopped after 2 epochs; continue with --resume $WORK/r.cnk.ckpt" "$WORK/out" ||
    fail "no continuation line: $(cat "$WORK/out")"
[ "$(wc -l < "$WORK/out")" = 1 ] || fail "an interrupted run prints only how to continue: $(cat "$WORK/out")"
[ -f "$WORK/r.cnk.ckpt" ] && [ -f "$WORK/r.cnk.ckpt.optim-2.npy" ] && [ ! -e "$WORK/r.cnk.ckpt.optim-1.npy" ] ||
    fail "checkpoint files after 2 epochs: $(ls "$WORK")"
"$BIN" train "$WORK/photos" "${ft_opts[@]}" -o "$WORK/r.cnk" --resume "$WORK/r.cnk.ckpt" --stop-after 1 \
    > "$WORK/out" 2> "$WORK/err"
expect_rc 0 $? "train --from --resume --stop-after 1"
grep -aq "^ckpt_phase=1" "$WORK/r.cnk.ckpt" || fail "the checkpoint is not phase one's"
mkdir -p "$WORK/torn" && cp -p "$WORK"/r.cnk* "$WORK/torn/"
"$BIN" train "$WORK/photos" "${ft_opts[@]}" -o "$WORK/r.cnk" --resume "$WORK/r.cnk.ckpt" > "$WORK/out" 2> "$WORK/err"
expect_rc 0 $? "train --from --resume"
grep -q "^fine-tuning: 1 epochs" "$WORK/out" || fail "resumed run, no fine-tuning line: $(cat "$WORK/out")"
cmp -s "$WORK/ft.cnk" "$WORK/r.cnk" || fail "stopped + resumed transfer model differs from the uninterrupted one"
cmp -s "$WORK/ft.cnk.ckpt" "$WORK/r.cnk.ckpt" || fail "stopped + resumed checkpoint differs from the uninterrupted one"
[ -f "$WORK/r.cnk.ckpt.optim-4.npy" ] && [ ! -e "$WORK/r.cnk.ckpt.optim-3.npy" ] || fail "optimiser files: $(ls "$WORK")"
cp -p "$WORK/r.cnk.ckpt.optim-4.npy" "$WORK/torn/"
"$BIN" train "$WORK/photos" "${ft_opts[@]}" -o "$WORK/torn/r.cnk" --resume "$WORK/torn/r.cnk.ckpt" > /dev/null \
    2> "$WORK/err"
expect_rc 0 $? "resume of a checkpoint torn between phase one and two"
cmp -s "$WORK/ft.cnk" "$WORK/torn/r.cnk" || fail "torn checkpoint + resume differs from the uninterrupted run"
"$BIN" train "$WORK/photos" --epochs 3 --no-cache -o "$WORK/r.cnk" --resume "$WORK/r.cnk.ckpt" > /dev/null 2> "$WORK/err"
expect_rc 3 $? "a transfer checkpoint given to a plain run"
[ "$(wc -l < "$WORK/err")" = 1 ] && grep -q "r.cnk.ckpt: a transfer-learning checkpoint" "$WORK/err" ||
    fail "plain run given a transfer checkpoint: $(cat "$WORK/err")"
"$BIN" train "$WORK/photos" --epochs 1 --image-size 16x16 --no-cache -o "$WORK/p.cnk" > /dev/null 2> "$WORK/err"
expect_rc 0 $? "a small plain run"
"$BIN" train "$WORK/photos" "${ft_opts[@]}" -o "$WORK/r.cnk" --resume "$WORK/p.cnk.ckpt" > /dev/null 2> "$WORK/err"
expect_rc 3 $? "a plain checkpoint given to a transfer run"
[ "$(wc -l < "$WORK/err")" = 1 ] && grep -q "p.cnk.ckpt: a plain training checkpoint" "$WORK/err" ||
    fail "transfer run given a plain checkpoint: $(cat "$WORK/err")"

# 3. Audio on the image backbone (mel images), and the late-fusion model.
"$BIN" demo --generate-only --out "$WORK/audio" --clips 5 --seconds 0.5 --sr 8000 > /dev/null 2> "$WORK/err"
expect_rc 0 $? "demo --generate-only"
AUDIO="$WORK/audio"
[ -d "$AUDIO/data" ] && AUDIO="$AUDIO/data"
"$BIN" train "$AUDIO" --from "$WORK/v1.cnk" --epochs 3 --no-cache -o "$WORK/mel.cnk" > "$WORK/out" 2> "$WORK/err"
expect_rc 0 $? "train --from on audio"
grep -q "mel-image" "$WORK/out" || fail "audio transfer does not use mel images: $(cat "$WORK/out")"
wav=$(find "$AUDIO" -name '*.wav' | sort | head -1)
"$BIN" predict "$WORK/mel.cnk" "$wav" > "$WORK/pred" 2> "$WORK/err"
expect_rc 0 $? "predict with the mel-image model"

"$BIN" train "$AUDIO" --input mel+wavelet --arch fusion --fusion weighted --epochs 2 --no-cache \
    -o "$WORK/f.cnk" --report "$WORK/frep" > "$WORK/out" 2> "$WORK/err"
expect_rc 0 $? "train fusion"
grep -q "^branches: mel " "$WORK/out" || fail "no branch accuracies: $(cat "$WORK/out")"
for m in "fusion (weighted)" "mel branch" "wavelet branch"; do
    grep -q "$m" "$WORK/frep/report.txt" || fail "report lacks '$m'"
done
"$BIN" predict "$WORK/f.cnk" "$wav" --format json > "$WORK/pred" 2> "$WORK/err"
expect_rc 0 $? "predict with the fusion model"
"$BIN" eval "$WORK/f.cnk" "$AUDIO" > "$WORK/eval" 2> "$WORK/err"
expect_rc 0 $? "eval with the fusion model"

# 4. Errors.
"$BIN" train "$AUDIO" --input mel+wavelet --fusion max -o "$WORK/x.cnk" > /dev/null 2> "$WORK/err"
expect_rc 2 $? "--fusion max"
"$BIN" train "$AUDIO" --fusion mean -o "$WORK/x.cnk" > /dev/null 2> "$WORK/err"
expect_rc 2 $? "--fusion without mel+wavelet"
"$BIN" train "$AUDIO" --freeze backbone -o "$WORK/x.cnk" > /dev/null 2> "$WORK/err"
expect_rc 2 $? "--freeze without --from"
"$BIN" train "$AUDIO" --finetune-epochs 2 -o "$WORK/x.cnk" > /dev/null 2> "$WORK/err"
expect_rc 2 $? "--finetune-epochs without --from"
"$BIN" train "$WORK/photos" --from "$WORK/v1.cnk" --train-size 128 -o "$WORK/x.cnk" > /dev/null 2> "$WORK/err"
expect_rc 3 $? "--train-size with --from (photos keep the backbone's own recipe)"
grep -q -- "--train-size" "$WORK/err" || fail "the refusal does not name --train-size: $(cat "$WORK/err")"
"$BIN" train "$WORK/photos" --from "$WORK/v1.cnk" --erase 0.5 -o "$WORK/x.cnk" > /dev/null 2> "$WORK/err"
expect_rc 3 $? "--erase with --from"
grep -q -- "--erase" "$WORK/err" || fail "the refusal does not name --erase: $(cat "$WORK/err")"
"$BIN" train "$WORK/photos" --from "$WORK/missing.cnk" -o "$WORK/x.cnk" > /dev/null 2> "$WORK/err"
expect_rc 3 $? "missing backbone"
[ "$(wc -l < "$WORK/err")" = 1 ] || fail "missing backbone: expected one line, got: $(cat "$WORK/err")"
grep -q "missing.cnk" "$WORK/err" || fail "the error does not name the file"
[ ! -e "$WORK/x.cnk" ] || fail "a model was written despite the error"

if [ "$failures" -gt 0 ]; then
    echo "$failures failure(s)" >&2
    exit 1
fi
echo "all transfer/fusion CLI checks passed"
