#!/bin/bash
# cnnkit train -> eval -> predict on a tiny generated audio set: the files a run writes, the report,
# predict applying exactly the training preprocessing (its probabilities equal the report's), --resume
# ending with the same model as an uninterrupted run, a corrupt file giving exit 1, and usage/fatal exit codes.
set -u
BIN=${CNK_BIN:-cnnkit}
PY=/usr/bin/python3
T="${CNK_BUILD_DIR:-.}/tmp-cli-train-$$"
rm -rf "$T" && mkdir -p "$T"
fail() { echo "FAIL: $*"; exit 1; }
expect_rc() { # expected, actual, what
    [ "$1" = "$2" ] || fail "$3: exit code $2, expected $1"
}
COMMON=(--batch-size 8 --no-cache --threads 1)
export XDG_CACHE_HOME="$T/xdg-cache" # eval/predict use the default cache: a private one, never a stale user cache

"$BIN" demo --out "$T" --generate-only --clips 6 --seconds 0.5 --sr 8000 > /dev/null 2>&1
expect_rc 0 $? "demo --generate-only"
D="$T/data"
[ "$(find "$D" -name '*.wav' | wc -l)" = 24 ] || fail "expected 24 generated clips"

# --- train with a report
"$BIN" train "$D" -o "$T/m.cnk" --epochs 3 --val-fraction 0.2 "${COMMON[@]}" --report "$T/rep" \
    > "$T/train.out" 2> "$T/train.err"
expect_rc 0 $? "train"
for f in m.cnk m.cnk.split.csv m.cnk.ckpt rep/report.html rep/report.txt rep/metrics.json rep/history.csv \
         rep/curves.png rep/confusion.png rep/predictions.csv; do
    [ -s "$T/$f" ] || fail "train did not write $f"
done
grep -q '^test accuracy: ' "$T/train.out" || fail "no test accuracy in the summary"
# the report says what was done to the clips (the summary's preprocessing line), whose rate is in it
grep -qE 'preprocessing</th><td class="l">mel, [0-9]+ Hz, FFT' "$T/rep/report.html" || fail "the report lacks the preprocessing"
# and how the model was trained: the optimiser and the spectrogram augmentation
grep -qE 'training</th><td class="l">adam, weight decay 0.0001; weight average 0.995; time shifts, time and frequency masks, pitch changes of \+-15%, tempo changes of \+-30%' "$T/rep/report.html" ||
    fail "the report lacks the training row"
[ "$(wc -l < "$T/rep/history.csv")" = 4 ] || fail "history.csv should have a header and 3 epochs"
grep -q '^epoch   3/3' "$T/train.err" || fail "no per-epoch line on stderr"
ls "$T" | grep -q '\.tmp\.' && fail "a temporary file was left behind"
# the split file lists every clip once
[ "$(tail -n +2 "$T/m.cnk.split.csv" | wc -l)" = 24 ] || fail "split file should list 24 clips"

# --- eval on the whole folder
"$BIN" eval "$T/m.cnk" "$D" > "$T/eval.out" 2> "$T/eval.err"
expect_rc 0 $? "eval"
grep -qE '^ +accuracy +[0-9.]+ +24$' "$T/eval.out" || fail "eval report lacks accuracy over 24 clips"
"$BIN" eval "$T/m.cnk" "$D" --report "$T/evalrep" > /dev/null 2>&1
expect_rc 0 $? "eval --report"
[ -s "$T/evalrep/metrics.json" ] || fail "eval --report wrote no metrics.json"

# --- predict: the probabilities equal the ones training's evaluation wrote (same preprocessing)
"$BIN" predict "$T/m.cnk" "$D" --format csv > "$T/pred.csv" 2> "$T/pred.err"
expect_rc 0 $? "predict csv"
[ "$(tail -n +2 "$T/pred.csv" | wc -l)" = 24 ] || fail "predict should give 24 rows"
"$PY" - "$T/rep/predictions.csv" "$T/pred.csv" <<'PYEOF' || fail "predict differs from training's evaluation"
import csv, sys
rep = {r["path"]: r for r in csv.DictReader(open(sys.argv[1]))}
pred = {r["path"]: r for r in csv.DictReader(open(sys.argv[2]))}
assert len(rep) >= 4, len(rep)
for path, r in rep.items():
    p = pred[path]
    assert p["predicted"] == r["predicted"], (path, p["predicted"], r["predicted"])
    for k in r:
        if k.startswith("p_"):
            assert abs(float(p[k]) - float(r[k])) < 2e-6, (path, k, p[k], r[k])
for p in pred.values():
    total = sum(float(v) for k, v in p.items() if k.startswith("p_"))
    assert abs(total - 1) < 1e-4, total
PYEOF
"$BIN" predict "$T/m.cnk" "$D/kick/kick_000.wav" --format json --top-k 2 > "$T/pred.json"
expect_rc 0 $? "predict json"
"$PY" -c "import json,sys; d=json.load(open(sys.argv[1])); assert len(d)==1 and len(d[0]['top'])==2" "$T/pred.json" \
    || fail "predict json is not the expected JSON"
"$BIN" predict "$T/m.cnk" "$D/kick/kick_000.wav" | grep -qP '^.*kick_000\.wav\t[a-z_]+\t[01]\.[0-9]{4}$' \
    || fail "predict text row"

# --- resume: stopped after 1 epoch then resumed == 3 epochs straight
"$BIN" train "$D" -o "$T/r.cnk" --epochs 3 --val-fraction 0.2 "${COMMON[@]}" --stop-after 1 > "$T/r1.out" 2>&1
expect_rc 0 $? "train --stop-after"
grep -q -- "--resume" "$T/r1.out" || fail "an interrupted run should say how to resume"
"$BIN" train "$D" -o "$T/r.cnk" --epochs 3 --val-fraction 0.2 "${COMMON[@]}" --resume "$T/r.cnk.ckpt" > "$T/r2.out" 2>&1
expect_rc 0 $? "train --resume"
"$BIN" predict "$T/r.cnk" "$D" --format csv > "$T/pred_r.csv"
cmp -s "$T/pred.csv" "$T/pred_r.csv" || fail "the resumed model predicts differently from the uninterrupted one"
"$BIN" train "$D" -o "$T/x.cnk" --resume "$T/missing.ckpt" "${COMMON[@]}" > /dev/null 2>&1
expect_rc 3 $? "resume from a missing checkpoint"

# --- a corrupt file is reported with its path and skipped: exit 1, a model is still written
printf 'this is not audio' > "$D/pluck/zz_broken.wav"
"$BIN" train "$D" -o "$T/c.cnk" --epochs 1 "${COMMON[@]}" > "$T/c.out" 2> "$T/c.err"
expect_rc 1 $? "train with a corrupt file"
grep -q 'skipped: .*zz_broken.wav' "$T/c.err" || fail "the corrupt file is not named on stderr"
[ -s "$T/c.cnk" ] || fail "no model after a skipped file"
"$BIN" predict "$T/m.cnk" "$D/pluck/zz_broken.wav" "$D/pluck/pluck_000.wav" > "$T/pc.out" 2> "$T/pc.err"
expect_rc 1 $? "predict with a corrupt file"
[ "$(wc -l < "$T/pc.out")" = 1 ] || fail "predict should still classify the good file"
rm "$D/pluck/zz_broken.wav"

# --- the feature cache: a second run decodes nothing and trains the same model
"$BIN" train "$D" -o "$T/k1.cnk" --epochs 1 --batch-size 8 --threads 1 --cache "$T/cache" > "$T/k1.out" 2>&1
expect_rc 0 $? "train with a cache"
"$BIN" train "$D" -o "$T/k2.cnk" --epochs 1 --batch-size 8 --threads 1 --cache "$T/cache" > "$T/k2.out" 2>&1
expect_rc 0 $? "train from the cache"
grep -q '(0 files from the cache)' "$T/k1.out" || fail "the first run should compute every file"
grep -q '(24 files from the cache)' "$T/k2.out" || fail "the second run should take every file from the cache"
cmp -s "$T/k1.cnk" "$T/k2.cnk" || fail "cached features gave a different model"

# --- usage (2) and fatal (3) errors
"$BIN" train "$D" --epochs 1 > /dev/null 2>&1;                   expect_rc 2 $? "train without -o"
"$BIN" train "$D" -o "$T/u.cnk" --epochs zero > /dev/null 2>&1;  expect_rc 2 $? "train --epochs zero"
"$BIN" train "$D" -o "$T/u.cnk" --bogus > /dev/null 2>&1;        expect_rc 2 $? "train --bogus"
"$BIN" train "$T/nowhere" -o "$T/u.cnk" > /dev/null 2>&1;        expect_rc 3 $? "train on a missing folder"
"$BIN" train "$D" -o "$T/u.cnk" --arch nosuch "${COMMON[@]}" > /dev/null 2> "$T/arch.err"; expect_rc 2 $? "train --arch nosuch"
grep -q 'nosuch: no such .cfg file nor built-in architecture (built-ins: .*cnn4d' "$T/arch.err" ||
    fail "--arch nosuch should list the built-in names: $(cat "$T/arch.err")"
"$BIN" train "$D" -o "$T/u.cnk" --tta sideways > /dev/null 2>&1;  expect_rc 2 $? "train --tta sideways"
"$BIN" train "$D" -o "$T/u.cnk" --ema 1 > /dev/null 2>&1;         expect_rc 2 $? "train --ema 1"
"$BIN" train "$D" -o "$T/u.cnk" --label-smoothing 1 > /dev/null 2>&1; expect_rc 2 $? "train --label-smoothing 1"
"$BIN" train "$D" -o "$T/u.cnk" --mixup 2 > /dev/null 2>&1;       expect_rc 2 $? "train --mixup 2"
"$BIN" train "$D" -o "$T/u.cnk" --erase 1.5 > /dev/null 2>&1;      expect_rc 2 $? "train --erase 1.5"
"$BIN" train "$D" -o "$T/u.cnk" --erase 0.5 "${COMMON[@]}" 2> "$T/erase.err" > /dev/null
expect_rc 2 $? "train --erase 0.5 on audio"
grep -q -- "--erase: random erasing applies to image folders only" "$T/erase.err" || fail "--erase on audio: $(cat "$T/erase.err")"
"$BIN" train "$D" -o "$T/u.cnk" --tta flip "${COMMON[@]}" > /dev/null 2>&1; expect_rc 2 $? "train --tta flip on audio"
"$BIN" train "$D" -o "$T/u.cnk" --eval-crop 0 > /dev/null 2>&1;   expect_rc 2 $? "train --eval-crop 0"
"$BIN" train "$D" -o "$T/u.cnk" --eval-crop 1.5 2> "$T/crop.err" > /dev/null; expect_rc 2 $? "train --eval-crop 1.5"
grep -q -- "bad value '1.5' for --eval-crop" "$T/crop.err" || fail "--eval-crop 1.5: $(cat "$T/crop.err")"
"$BIN" train "$D" -o "$T/u.cnk" --eval-crop 0.9 "${COMMON[@]}" 2> "$T/crop.err" > /dev/null
expect_rc 2 $? "train --eval-crop 0.9 on audio"
grep -q "evaluation crop applies to image folders only" "$T/crop.err" || fail "--eval-crop on audio: $(cat "$T/crop.err")"
"$BIN" train "$D" -o "$T/u.cnk" --test-fraction 0 --report "$T/urep" "${COMMON[@]}" > /dev/null 2>&1
expect_rc 2 $? "--report without a test split"
[ -e "$T/u.cnk" ] && fail "a failed run left a model file"
"$BIN" eval "$T/m.cnk" > /dev/null 2>&1;                         expect_rc 2 $? "eval without DATA"
"$BIN" eval "$T/rep/report.txt" "$D" > /dev/null 2>&1;           expect_rc 3 $? "eval with a non-model"
"$BIN" predict "$T/m.cnk" "$D" --format xml > /dev/null 2>&1;    expect_rc 2 $? "predict --format xml"
"$BIN" predict "$T/nomodel.cnk" "$D" > /dev/null 2>&1;           expect_rc 3 $? "predict with a missing model"
"$BIN" train --help | grep -q -- '--group-by' || fail "train --help"
"$BIN" demo --help | grep -q -- '--data' || fail "demo --help"

rm -rf "$T"
echo "test_cli_train: all checks passed"
