#!/usr/bin/env bash
# `cnnkit import` end to end (../shared/CLI.md): the three real .tflite files import (MobileNetV2 in under a
# second), labels default to the file beside the model, damaged and unsupported files exit 3 with one line
# and leave no output behind, usage errors exit 2; `cnnkit predict` on the imported MobileNetV2 gives the
# weights README's top-1 labels.
set -u
BIN=${CNK_BIN:?CNK_BIN not set}
SHARED=${CNK_SHARED:?CNK_SHARED not set}
W="$SHARED/weights"
WORK=${CNK_BUILD_DIR:-.}/tmp-import-cli-$$
rm -rf "$WORK" && mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
expect_rc() { # expected actual what
  [ "$1" = "$2" ] || fail "$3: exit code $2, expected $1"
}
one_line() { # file what
  [ "$(wc -l < "$1")" = 1 ] || fail "$2: expected one line on stderr, got: $(cat "$1")"
}

# 1. The real files import; MobileNetV2 in under a second (wall clock, parse + dequantise + map + write).
start=$(date +%s%N)
"$BIN" import "$W/mobilenet_v2_1.0_224/mobilenet_v2_1.0_224_quant.tflite" -o "$WORK/v2.cnk" 2> "$WORK/err"
expect_rc 0 $? "import mobilenet_v2"
ms=$(( ($(date +%s%N) - start) / 1000000 ))
echo "import mobilenet_v2: ${ms} ms"
[ "${CNK_SANITIZE:-0}" = 1 ] || [ "$ms" -lt 1000 ] || fail "importing MobileNetV2 took ${ms} ms (goal < 1000)"
grep -q "mobilenet_v2 width 1.00, input 3x224x224, 1001 classes" "$WORK/err" || fail "v2 summary line: $(cat "$WORK/err")"
"$BIN" import "$W/mobilenet_v1_0.25_128/mobilenet_v1_0.25_128_quant.tflite" -o "$WORK/v1.cnk" 2> "$WORK/err"
expect_rc 0 $? "import mobilenet_v1"
grep -q "mobilenet_v1 width 0.25, input 3x128x128" "$WORK/err" || fail "v1 summary line: $(cat "$WORK/err")"
"$BIN" import "$W/yamnet/yamnet.tflite" -o "$WORK/yamnet.cnk" 2> "$WORK/err"
expect_rc 0 $? "import yamnet"
grep -q "YAMNet (mobilenet_v1 body) width 1.00, input 1x96x64, 521 classes" "$WORK/err" || fail "yamnet line: $(cat "$WORK/err")"
"$BIN" summary "$WORK/yamnet.cnk" > "$WORK/summary" 2>&1
expect_rc 0 $? "summary of the imported yamnet"
grep -q "3,729,481" "$WORK/summary" || fail "yamnet parameter count not 3,729,481"

# 2. --labels: a file with the wrong count is a fatal input error naming it; no output is left.
"$BIN" import "$W/yamnet/yamnet.tflite" --labels "$W/imagenet-test-photos/imagenet_labels.txt" -o "$WORK/bad.cnk" 2> "$WORK/err"
expect_rc 3 $? "labels with the wrong count"
one_line "$WORK/err" "wrong labels"
grep -q "imagenet_labels.txt: 1001 class names, the model has 521 classes" "$WORK/err" || fail "labels message: $(cat "$WORK/err")"
# Without a labels file beside it, the classes are class_0..class_N.
cp "$W/mobilenet_v1_0.25_128/mobilenet_v1_0.25_128_quant.tflite" "$WORK/alone.tflite"
"$BIN" import "$WORK/alone.tflite" -o "$WORK/alone.cnk" 2> "$WORK/err"
expect_rc 0 $? "import without labels"

# 3. Damaged files: truncated, not a TFLite file, empty; each exit 3, one line naming the file, no output.
head -c 300000 "$W/mobilenet_v1_0.25_128/mobilenet_v1_0.25_128_quant.tflite" > "$WORK/cut.tflite"
printf 'this is not a model' > "$WORK/text.tflite"
: > "$WORK/empty.tflite"
for f in cut text empty; do
  "$BIN" import "$WORK/$f.tflite" -o "$WORK/$f.cnk" 2> "$WORK/err"
  rc=$?
  expect_rc 3 $rc "damaged $f.tflite"
  one_line "$WORK/err" "$f.tflite"
  grep -q "$f.tflite" "$WORK/err" || fail "$f.tflite: message does not name the file: $(cat "$WORK/err")"
  [ ! -e "$WORK/$f.cnk" ] || fail "$f.tflite left an output file"
done
"$BIN" import "$WORK/missing.tflite" -o "$WORK/m.cnk" 2> /dev/null
expect_rc 3 $? "missing input"

# 4. Usage errors.
"$BIN" import 2> /dev/null; expect_rc 2 $? "no arguments"
"$BIN" import "$WORK/v1.tflite" 2> /dev/null; expect_rc 2 $? "no -o"
"$BIN" import a.tflite -o x.cnk --bogus 2> /dev/null; expect_rc 2 $? "unknown option"
"$BIN" import --help > "$WORK/help"; expect_rc 0 $? "--help"
grep -q "Usage: cnnkit import" "$WORK/help" || fail "--help text"

# 5. No temporary files anywhere.
leftovers=$(find "$WORK" -name '*.tmp.*' | wc -l)
[ "$leftovers" = 0 ] || fail "$leftovers temporary files left"

# 6. predict with the imported MobileNetV2 gives the README's top-1 labels on all 7 photos.
"$BIN" predict "$WORK/v2.cnk" "$W/imagenet-test-photos" --format csv > "$WORK/pred.csv" 2> "$WORK/err"
expect_rc 0 $? "predict with the imported MobileNetV2"
for pair in "cat.bmp:Egyptian cat" "grace_hopper.bmp:military uniform" "bird.bmp:chickadee" "parrot.jpg:macaw" \
            "owl.jpg:ruffed grouse" "hot_dog.jpg:hotdog" "dragonfly.bmp:dragonfly"; do
  file=${pair%%:*}
  label=${pair#*:}
  grep -q "$file,\"\\?$label\"\\?," "$WORK/pred.csv" || fail "predict $file: expected $label, got: $(grep "$file" "$WORK/pred.csv" | cut -c1-120)"
done

if [ "$failures" -gt 0 ]; then
  echo "$failures failure(s)" >&2
  exit 1
fi
echo "import CLI: all checks passed"
