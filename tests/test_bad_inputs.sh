#!/usr/bin/env bash
# test_bad_inputs.sh: `cnnkit` ($CNK_BIN) over the bad-input corpus (tests/fixtures/bad_inputs, made by
# tests/ref/gen_bad_inputs.py; MANIFEST.tsv says what each file must give). For every run: no exit by signal,
# no sanitizer report, the exit code CLI.md gives (0 ok, 1 some inputs skipped, 3 fatal input), a fatal error
# is ONE stderr line naming the file, no output file and no temporary file left behind. Folder runs must
# process the rest of the folder and name each skipped file. Things git cannot store (a directory named .wav,
# an unreadable file, a FIFO) are made here.
set -u
bin=${CNK_BIN:?CNK_BIN must name the cnnkit binary}
corpus=${CNK_FIXTURES:-$(dirname "$0")/fixtures}/bad_inputs
[ -f "$corpus/MANIFEST.tsv" ] || { echo "missing $corpus/MANIFEST.tsv (run tests/ref/gen_bad_inputs.py)"; exit 1; }
tmp=$(mktemp -d "${CNK_BUILD_DIR:-/tmp}/tmp-bad-inputs-XXXXXX")
trap 'chmod -R u+rwX "$tmp" 2>/dev/null; rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=1
export XDG_CACHE_HOME="$tmp/cache" # hermetic: never features cached by an earlier (older) cnnkit
failures=0
checks=0

fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# run LABEL CMD...: runs with stdout/stderr captured in $tmp/out, $tmp/err; sets $code.
run() {
  local label=$1
  shift
  timeout "${limit:-300}" "$@" >"$tmp/out" 2>"$tmp/err" </dev/null
  code=$?
  checks=$((checks + 1))
  if [ $code -eq 124 ]; then fail "$label: hung (killed after ${limit:-300} s)"; fi
  if [ $code -gt 128 ]; then fail "$label: killed by signal $((code - 128)) ($(tail -n 3 "$tmp/err" | tr '\n' ' '))"; fi
  if grep -qE "AddressSanitizer|LeakSanitizer|runtime error:|UndefinedBehaviorSanitizer" "$tmp/err"; then
    fail "$label: sanitizer report: $(grep -m1 -E "ERROR|runtime error" "$tmp/err")"
  fi
}

# allowed CODE "0|3": 0 if CODE is one of the alternatives.
allowed() {
  local IFS='|'
  for c in $2; do [ "$1" = "$c" ] && return 0; done
  return 1
}

# check_fatal LABEL FILE WORD: stderr is exactly one line that names FILE (and WORD, "a|b" = either).
check_fatal() {
  local label=$1 file=$2 word=$3 lines
  lines=$(grep -c . "$tmp/err")
  if [ "$lines" -ne 1 ]; then
    fail "$label: expected one error line, got $lines: $(head -c 400 "$tmp/err" | tr '\n' '|')"
  elif ! grep -qF -- "$file" "$tmp/err"; then
    fail "$label: the error does not name the file: $(cat "$tmp/err")"
  elif [ -n "$word" ] && ! grep -qiE -- "$word" "$tmp/err"; then
    fail "$label: the error does not say '$word': $(cat "$tmp/err")"
  fi
}

# no_leftovers DIR: no temporary file of an atomic write remains.
no_leftovers() {
  local left
  left=$(find "$1" -name '*.tmp.*' 2>/dev/null | head -3)
  [ -z "$left" ] || fail "temporary files left behind: $left"
}

# The command that reads one corpus file of a kind, writing under $tmp/o.
command_for() {
  local kind=$1 file=$2
  case $kind in
    audio) echo "$bin features $file $tmp/o/features.npy --jobs 1" ;;
    cfg | model) echo "$bin summary $file" ;;
    tflite) echo "$bin import $file -o $tmp/o/imported.cnk" ;;
    csv) echo "$bin train $file --epochs 1 --threads 1 --no-cache -o $tmp/o/model.cnk" ;;
    image) [ -n "${image_model:-}" ] && echo "$bin predict $image_model $file" ;;
  esac
}

# ---- an image model for `predict` (built by training on a folder that mixes good and broken images) ------
image_model=""
imgs=$tmp/images
mkdir -p "$imgs/cat" "$imgs/dog"
for i in 1 2 3 4 5 6; do
  cp "$corpus/image/good.png" "$imgs/cat/c$i.png"
  cp "$corpus/image/grey.png" "$imgs/dog/d$i.png"
done
cp "$corpus/image/good.jpg" "$imgs/cat/c7.jpg"
cp "$corpus/image/truncated.png" "$corpus/image/text.png" "$corpus/image/huge_100000x100000.png" "$imgs/cat/"
cp "$corpus/image/empty.jpg" "$corpus/image/huge_100000x100000.bmp" "$imgs/dog/"
run "train on an image folder with broken files" "$bin" train "$imgs" --input image --image-size 16x16 --epochs 1 \
  --threads 1 --no-cache -o "$tmp/img.cnk"
if grep -q "not available in this build" "$tmp/err"; then
  echo "NOTE: image input is not available in this cnnkit build: image checks skipped"
else
  [ $code -eq 1 ] || fail "image folder train: exit $code, expected 1 (broken files skipped): $(tail -n 2 "$tmp/err")"
  [ -f "$tmp/img.cnk" ] || fail "image folder train: no model written"
  for bad in cat/truncated.png cat/text.png cat/huge_100000x100000.png dog/empty.jpg dog/huge_100000x100000.bmp; do
    grep -qF "$imgs/$bad" "$tmp/err" || fail "image folder train: $bad not reported as skipped"
  done
  [ -f "$tmp/img.cnk" ] && image_model=$tmp/img.cnk
fi
if [ -n "$image_model" ]; then
  # predict over the same folder: one row per readable image, each broken one named, exit 1.
  run "predict over an image folder with broken files" "$bin" predict "$image_model" "$imgs"
  [ $code -eq 1 ] || fail "image folder predict: exit $code, expected 1: $(tail -n 2 "$tmp/err")"
  for good in cat/c1.png cat/c7.jpg dog/d6.png; do
    grep -qF "$imgs/$good" "$tmp/out" || fail "image folder predict: no row for $good"
  done
  for bad in cat/truncated.png dog/empty.jpg dog/huge_100000x100000.bmp; do
    grep -qF "$imgs/$bad" "$tmp/err" || fail "image folder predict: $bad not reported as skipped"
    ! grep -qF "$imgs/$bad" "$tmp/out" || fail "image folder predict: a prediction for the broken $bad"
  done
fi
no_leftovers "$tmp"

# ---- every corpus file through the command that reads its kind -----------------------------------------
while IFS=$'\t' read -r kind rel expect word; do
  case $kind in '#'* | '') continue ;; esac
  file=$corpus/$rel
  cmd=$(command_for "$kind" "$file") || true
  [ -n "$cmd" ] || continue
  rm -rf "$tmp/o"
  mkdir -p "$tmp/o"
  # predict reports a file it cannot read as skipped (exit 1) rather than fatal.
  [ "$kind" = image ] && expect=${expect//3/1|3}
  # shellcheck disable=SC2086
  run "$rel" $cmd
  if ! allowed "$code" "$expect"; then
    fail "$rel: exit $code, expected $expect: $(head -c 300 "$tmp/err" | tr '\n' '|')"
  elif [ "$code" = 3 ]; then
    check_fatal "$rel" "$rel" "$word"
    [ -z "$(ls -A "$tmp/o")" ] || fail "$rel: failed but left output: $(ls "$tmp/o")"
  elif [ "$code" = 1 ]; then
    grep -qF -- "$rel" "$tmp/err" || fail "$rel: skipped without naming the file: $(cat "$tmp/err")"
    [ -z "$word" ] || grep -qiE -- "$word" "$tmp/err" || fail "$rel: the message does not say '$word': $(cat "$tmp/err")"
  fi
  no_leftovers "$tmp/o"
done <"$corpus/MANIFEST.tsv"

# ---- the CSV reader behind `cnnkit report` (predictions files) -------------------------------------------
for rel in csv/empty.csv csv/ragged.csv csv/duplicate_header.csv csv/unterminated_quote.csv csv/header_only.csv \
  csv/good.csv; do
  rm -rf "$tmp/rep"
  run "report $rel" "$bin" report "$corpus/$rel" -o "$tmp/rep"
  [ $code -eq 3 ] || fail "report $rel: exit $code, expected 3: $(head -c 300 "$tmp/err")"
  check_fatal "report $rel" "$rel" ""
  [ ! -e "$tmp/rep" ] || [ -z "$(ls -A "$tmp/rep")" ] || fail "report $rel: failed but left files in the report folder"
done

# ---- inputs git cannot store ----------------------------------------------------------------------------
mkdir -p "$tmp/odd/dir.wav" "$tmp/o2"
run "a directory named .wav" "$bin" features "$tmp/odd/dir.wav" "$tmp/o2/dir.npy" --jobs 1
allowed "$code" "1|2|3" || fail "a directory named .wav: exit $code, expected an error: $(cat "$tmp/err")"
[ ! -e "$tmp/o2/dir.npy" ] || fail "a directory named .wav: wrote an output file"

cp "$corpus/audio/good_tone.wav" "$tmp/odd/locked.wav"
chmod 000 "$tmp/odd/locked.wav"
if [ "$(id -u)" != 0 ]; then # root reads anything: the check means nothing there
  run "an unreadable file" "$bin" features "$tmp/odd/locked.wav" "$tmp/o2/locked.npy" --jobs 1
  [ $code -eq 3 ] || fail "an unreadable file: exit $code, expected 3"
  check_fatal "an unreadable file" "$tmp/odd/locked.wav" ""
fi
ln -s "$tmp/nowhere.wav" "$tmp/odd/dangling.wav"
run "a dangling symlink" "$bin" features "$tmp/odd/dangling.wav" "$tmp/o2/dangling.npy" --jobs 1
[ $code -eq 3 ] || fail "a dangling symlink: exit $code, expected 3"
check_fatal "a dangling symlink" "$tmp/odd/dangling.wav" ""
run "a missing file" "$bin" summary "$tmp/odd/missing.cnk"
[ $code -eq 3 ] || fail "a missing model: exit $code, expected 3"
check_fatal "a missing model" "$tmp/odd/missing.cnk" ""

# Named pipes given by name: opening one for reading blocks until a writer comes, so a loader that opens before
# checking what the path is hangs forever. Each must fail (or be skipped) within seconds.
mkfifo "$tmp/odd/pipe.cnk" "$tmp/odd/pipe.cfg" "$tmp/odd/pipe.tflite" "$tmp/odd/pipe.csv" "$tmp/odd/pipe.wav" \
  "$tmp/odd/pipe.png"
fifo_case() { # fifo_case LABEL ALLOWED-CODES FIFO cnnkit-args...
  local label=$1 allowed_codes=$2 fifo=$3
  shift 3
  limit=20 run "$label" "$@"
  [ $code -eq 124 ] && return
  allowed "$code" "$allowed_codes" || fail "$label: exit $code, expected $allowed_codes: $(head -c 300 "$tmp/err")"
  grep -qF -- "$fifo" "$tmp/err" || fail "$label: the message does not name the pipe: $(head -c 300 "$tmp/err")"
}
fifo_case "summary of a named pipe (.cnk)" 3 "$tmp/odd/pipe.cnk" "$bin" summary "$tmp/odd/pipe.cnk"
fifo_case "summary of a named pipe (.cfg)" 3 "$tmp/odd/pipe.cfg" "$bin" summary "$tmp/odd/pipe.cfg"
fifo_case "import of a named pipe" 3 "$tmp/odd/pipe.tflite" "$bin" import "$tmp/odd/pipe.tflite" -o "$tmp/o2/p.cnk"
fifo_case "report of a named pipe" 3 "$tmp/odd/pipe.csv" "$bin" report "$tmp/odd/pipe.csv" -o "$tmp/o2/rep"
fifo_case "train on a named pipe" 2\|3 "$tmp/odd/pipe.csv" "$bin" train "$tmp/odd/pipe.csv" -o "$tmp/o2/t.cnk"
fifo_case "features of a named pipe" 3 "$tmp/odd/pipe.wav" "$bin" features "$tmp/odd/pipe.wav" "$tmp/o2/p.npy"
if [ -n "$image_model" ]; then
  fifo_case "predict on a named pipe (image model)" 1\|3 "$tmp/odd/pipe.png" "$bin" predict "$image_model" "$tmp/odd/pipe.png"
fi

# ---- a folder run processes the rest of the folder -------------------------------------------------------
# The GTZAN layout with its known corrupt jazz.00054.wav, plus every broken audio file of the corpus.
genres=$tmp/genres
mkdir -p "$genres/jazz" "$genres/blues" "$genres/blues/dir.wav" "$tmp/feat"
cp "$corpus/audio/good_tone.wav" "$genres/jazz/jazz.00053.wav"
cp "$corpus/audio/good_tone.flac" "$genres/jazz/jazz.00055.flac"
cp "$corpus/audio/good_tone.au" "$genres/blues/blues.00001.au"
cp "$corpus/audio/truncated.wav" "$genres/jazz/jazz.00054.wav"
n_bad=0
while IFS=$'\t' read -r kind rel expect word; do
  [ "$kind" = audio ] && [ "$expect" = 3 ] || continue
  base=$(basename "$rel") # keep the extension in the stem: a.wav and a.au would both become a.npy
  cp "$corpus/$rel" "$genres/blues/bad_${base%.*}_${base##*.}.${base##*.}"
  n_bad=$((n_bad + 1))
done <"$corpus/MANIFEST.tsv"
mkfifo "$genres/blues/fifo.wav" # a reader that opened it would block forever
# Names with a comma and a line break: the output mirrors them, the skip message stays one line.
cp "$corpus/audio/good_tone.wav" "$genres/jazz/odd, name
one.wav"
cp "$corpus/audio/text.wav" "$genres/blues/odd
broken.wav"
chmod 000 "$genres/blues/bad_text_wav.wav"
run "features over a folder with broken files" "$bin" features "$genres" "$tmp/feat" --jobs 2
[ $code -eq 1 ] || fail "folder run: exit $code, expected 1: $(tail -n 3 "$tmp/err" | tr '\n' '|')"
for good in jazz/jazz.00053 jazz/jazz.00055 blues/blues.00001; do
  [ -s "$tmp/feat/$good.npy" ] || fail "folder run: $good.npy was not written (the rest of the folder must be processed)"
done
grep -qF "$genres/jazz/jazz.00054.wav" "$tmp/err" || fail "folder run: the corrupt jazz.00054.wav was not named"
[ -s "$tmp/feat/jazz/odd, name
one.npy" ] || fail "folder run: the clip whose name has a comma and a line break was not processed"
[ "$(grep -c "broken.wav" "$tmp/err")" -eq 1 ] && grep -q "odd.broken.wav" "$tmp/err" ||
  fail "folder run: a broken file whose name has a line break is not named on one line: $(grep -A1 "odd" "$tmp/err")"
named=0
for f in "$genres"/blues/bad_*; do
  if grep -qF "$f" "$tmp/err"; then named=$((named + 1)); else fail "folder run: $(basename "$f") not named"; fi
  [ ! -e "$tmp/feat/blues/$(basename "${f%.*}").npy" ] || fail "folder run: output written for broken $f"
done
[ $named -eq $n_bad ] || fail "folder run: $named of $n_bad broken files named"
no_leftovers "$tmp/feat"

echo "bad inputs: $checks runs, $failures failures"
[ $failures -eq 0 ]
