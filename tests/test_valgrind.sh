#!/usr/bin/env bash
# test_valgrind.sh: a small end-to-end run of `cnnkit` under Valgrind memcheck (issue #7): features of a few
# clips (a folder with a broken file), training on a CSV table, summary, predict and report. Any invalid read or
# write, use of uninitialised memory, or definite/indirect leak fails the test (--error-exitcode=9).
# Valgrind cannot run sanitizer builds, nor AVX-512 code (which -march=native emits on this kind of machine):
# `make test` runs this test from its own portable build (build-valgrind, CNK_NATIVE=OFF); other builds skip it.
set -u
bin=${CNK_BIN:?CNK_BIN must name the cnnkit binary}
corpus=${CNK_FIXTURES:-$(dirname "$0")/fixtures}/bad_inputs
cache=${CNK_BUILD_DIR:-.}/CMakeCache.txt
if [ "${CNK_SANITIZE:-0}" = 1 ]; then
  echo "SKIPPED: sanitizer build (Valgrind cannot run it); make test runs this test in build-valgrind"
  exit 0
fi
if [ -f "$cache" ] && ! grep -q "^CNK_NATIVE:BOOL=OFF" "$cache"; then
  echo "SKIPPED: -march=native build (Valgrind 3.19 has no AVX-512); make test runs this test in build-valgrind"
  exit 0
fi
command -v valgrind >/dev/null || { echo "FAIL: valgrind is not installed (make deps-test installs it)"; exit 1; }
tmp=$(mktemp -d "${CNK_BUILD_DIR:-/tmp}/tmp-valgrind-XXXXXX")
trap 'rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=1
export OMP_NUM_THREADS=1
export XDG_CACHE_HOME="$tmp/cache" # hermetic: never features cached by an earlier (older) cnnkit
failures=0

# vg LABEL EXPECTED_EXIT cnnkit-args...: one cnnkit run under memcheck.
vg() {
  local label=$1 expect=$2
  shift 2
  # --trace-children: cnnkit restarts itself when OpenBLAS does not know the CPU (apps/main.c); memcheck follows.
  valgrind -q --trace-children=yes --suppressions="$(dirname "$0")/valgrind.supp" --leak-check=full --show-leak-kinds=definite,indirect --errors-for-leak-kinds=definite,indirect \
    --track-origins=yes --error-exitcode=9 --log-file="$tmp/vg-%p.log" "$bin" "$@" >"$tmp/out" 2>"$tmp/err"
  local code=$?
  local report
  report=$(cat "$tmp"/vg-*.log 2>/dev/null)
  rm -f "$tmp"/vg-*.log
  if [ $code -eq 9 ] || [ -n "$report" ]; then
    echo "FAIL: $label: memcheck errors:"
    echo "$report" | head -40
    failures=$((failures + 1))
  elif [ $code -ne "$expect" ]; then
    echo "FAIL: $label: exit $code, expected $expect: $(tail -n 3 "$tmp/err")"
    failures=$((failures + 1))
  else
    echo "ok: $label"
  fi
}

mkdir -p "$tmp/clips/a" "$tmp/feat"
cp "$corpus/audio/good_tone.wav" "$tmp/clips/a/one.wav"
cp "$corpus/audio/good_tone.flac" "$tmp/clips/a/two.flac"
cp "$corpus/audio/truncated.wav" "$tmp/clips/a/broken.wav"
vg "features over a folder with a broken clip" 1 features "$tmp/clips" "$tmp/feat" --jobs 2 --n-mels 32
vg "features, wavelet, one file" 0 features "$corpus/audio/good_tone.au" "$tmp/w.npy" --kind wavelet --scales 16 --jobs 1

awk 'BEGIN { srand(3); print "f1,f2,f3,f4,label"; for (i = 0; i < 60; i++) { c = i % 2;
  printf "%.3f,%.3f,%.3f,%.3f,%s\n", rand() + c, rand(), rand() - c, rand(), c ? "yes" : "no" } }' >"$tmp/t.csv"
vg "train on a CSV" 0 train "$tmp/t.csv" --epochs 2 --batch-size 8 --threads 2 --no-cache -o "$tmp/m.cnk" \
  --report "$tmp/report"
vg "eval on a CSV" 0 eval "$tmp/m.cnk" "$tmp/t.csv" --report "$tmp/eval-report"
vg "summary" 0 summary "$tmp/m.cnk"
# An image model (trained without Valgrind: only its use is under test), then predict over a folder with a
# broken image.
mkdir -p "$tmp/img/a" "$tmp/img/b"
for i in 1 2 3 4; do
  cp "$corpus/image/good.png" "$tmp/img/a/$i.png"
  cp "$corpus/image/grey.png" "$tmp/img/b/$i.png"
done
"$bin" train "$tmp/img" --input image --image-size 12x12 --epochs 1 --threads 1 --no-cache -o "$tmp/img.cnk" \
  >/dev/null 2>&1 || echo "note: could not train the image model"
cp "$corpus/image/truncated.png" "$tmp/img/a/broken.png"
cp "$corpus/image/good.jpg" "$tmp/img/b/5.jpg"
cp "$corpus/image/grey16.pgm" "$tmp/img/b/6.pgm" # 16-bit grey for an RGB model: stb 2.27 over-reads it unless helped
[ -f "$tmp/img.cnk" ] && vg "predict over an image folder with a broken file" 1 predict "$tmp/img.cnk" "$tmp/img"
vg "summary of a damaged model" 3 summary "$corpus/model/flipped_byte_60.cnk"
vg "import of a damaged TFLite file" 3 import "$corpus/tflite/vector_length_outside.tflite" -o "$tmp/i.cnk"
printf 'path,label,predicted,p_no,p_yes\na,no,no,0.9,0.1\nb,yes,no,0.6,0.4\nc,yes,yes,0.2,0.8\n' >"$tmp/pred.csv"
vg "report" 0 report "$tmp/pred.csv" -o "$tmp/rep2"

echo "valgrind: $failures failures"
[ $failures -eq 0 ]
