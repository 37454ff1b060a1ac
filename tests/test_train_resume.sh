#!/usr/bin/env bash
# test_train_resume.sh: crash safety and reproducibility of `cnnkit train` (issue #7).
# - Two runs with the same seed and thread count give byte-identical model files.
# - A run killed with SIGKILL in the middle of an epoch, then continued with --resume, ends with the same model
#   file as the uninterrupted run; every file the killed run left under a final name is complete.
# - A kill between the checkpoint's two files (optimiser state written, model checkpoint not yet) still resumes
#   to the same result: no more is lost than the work since the last checkpoint.
set -u
bin=${CNK_BIN:?CNK_BIN must name the cnnkit binary}
tmp=$(mktemp -d "${CNK_BUILD_DIR:-/tmp}/tmp-train-resume-XXXXXX")
trap 'kill -9 $pid 2>/dev/null; rm -rf "$tmp"' EXIT
pid=""
export OPENBLAS_NUM_THREADS=1
export XDG_CACHE_HOME="$tmp/cache" # hermetic: never features cached by an earlier (older) cnnkit
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}

# A 3-class table with 12 noisy features: small enough for a few seconds, big enough for several steps per epoch.
rows=600
[ "${CNK_SANITIZE:-0}" = 1 ] && rows=240
awk -v rows=$rows 'BEGIN { srand(7); printf "id"; for (j = 1; j <= 12; j++) printf ",f%d", j; print ",label";
  for (i = 0; i < rows; i++) { c = i % 3; printf "r%d", i;
    for (j = 1; j <= 12; j++) printf ",%.4f", rand() + 0.4 * c * (j % 3 == c); printf ",%s\n", substr("xyz", c + 1, 1) } }' \
  >"$tmp/data.csv"
epochs=6
opts=(--epochs $epochs --batch-size 8 --patience 0 --seed 11 --threads 2 --no-cache)

train() { # train OUT.cnk [extra options...]
  local out=$1
  shift
  "$bin" train "$tmp/data.csv" "${opts[@]}" -o "$out" "$@" >"$out.stdout" 2>"$out.stderr"
}

# ---- same seed, same threads: identical files -------------------------------------------------------------
mkdir -p "$tmp/a" "$tmp/b"
start=$(date +%s.%N)
train "$tmp/a/m.cnk" || fail "reference run failed: $(tail -n 2 "$tmp/a/m.cnk.stderr")"
elapsed=$(echo "$(date +%s.%N) - $start" | bc)
train "$tmp/b/m.cnk" || fail "second run failed: $(tail -n 2 "$tmp/b/m.cnk.stderr")"
cmp -s "$tmp/a/m.cnk" "$tmp/b/m.cnk" || fail "two runs with the same seed and threads differ"
cmp -s "$tmp/a/m.cnk.split.csv" "$tmp/b/m.cnk.split.csv" || fail "two runs with the same seed split differently"
echo "reference run: ${elapsed}s for $epochs epochs"

# The same for a CNN (conv2d through OpenBLAS, batch norm, pooling) on images, with two threads.
corpus=${CNK_FIXTURES:-$(dirname "$0")/fixtures}/bad_inputs/image
mkdir -p "$tmp/img/cat" "$tmp/img/dog"
for i in 1 2 3 4 5 6 7 8; do
  cp "$corpus/good.png" "$tmp/img/cat/$i.png"
  cp "$corpus/grey.png" "$tmp/img/dog/$i.png"
done
for run in c1 c2; do
  "$bin" train "$tmp/img" --input image --image-size 20x20 --epochs 2 --batch-size 4 --seed 5 --threads 2 --no-cache \
    -o "$tmp/$run.cnk" >/dev/null 2>"$tmp/$run.err" || fail "image CNN run $run failed: $(tail -n 2 "$tmp/$run.err")"
done
cmp -s "$tmp/c1.cnk" "$tmp/c2.cnk" || fail "two image CNN runs with the same seed and threads differ"

# ---- SIGKILL in the middle of an epoch, then --resume ------------------------------------------------------
# Kill half an epoch after the first checkpoint appears; repeat a few times with a later kill if the run ended
# before it could be killed (a very fast machine).
mkdir -p "$tmp/k"
killed=0
for attempt in 1 2 3; do
  rm -f "$tmp/k"/*
  # cnnkit itself in the background (not the train function: $! would be a subshell, and killing that would
  # leave cnnkit running on).
  "$bin" train "$tmp/data.csv" "${opts[@]}" -o "$tmp/k/m.cnk" >"$tmp/k/m.cnk.stdout" 2>"$tmp/k/m.cnk.stderr" &
  pid=$!
  t0=$(date +%s.%N)
  while kill -0 $pid 2>/dev/null && [ ! -e "$tmp/k/m.cnk.ckpt" ]; do sleep 0.02; done
  t1=$(date +%s.%N)
  # Time to the first checkpoint ~ setup + one epoch; half an epoch later the run is mid-epoch.
  delay=$(echo "($t1 - $t0) * 0.5 * $attempt" | bc)
  sleep "$delay"
  if kill -0 $pid 2>/dev/null; then
    kill -9 $pid
    wait $pid 2>/dev/null
    status=$?
    pid=""
    if [ $status -eq 137 ]; then
      killed=1
      pgrep -f -- "-o $tmp/k/m.cnk" >/dev/null && fail "cnnkit still runs after the kill"
      break
    fi
  else
    wait $pid
    pid=""
  fi
done
if [ $killed -ne 1 ]; then
  fail "could not kill the run mid-training (it finished first)"
else
  done_epochs=$(grep -a -oE "ckpt_epoch=[0-9]+" "$tmp/k/m.cnk.ckpt" | head -1 | cut -d= -f2)
  echo "killed after ${done_epochs:-?} complete epochs"
  [ -n "$done_epochs" ] && [ "$done_epochs" -lt $epochs ] || fail "the killed run had already finished training"
  # Whatever the kill left under a final name is whole (temporary files may remain; they are never read).
  for f in "$tmp/k/m.cnk" "$tmp/k/m.cnk.ckpt"; do
    [ -e "$f" ] || continue
    "$bin" summary "$f" >/dev/null 2>"$tmp/summary.err" || fail "$(basename "$f") is damaged after the kill: $(cat "$tmp/summary.err")"
  done
  train "$tmp/k/m.cnk" --resume "$tmp/k/m.cnk.ckpt" || fail "--resume failed: $(tail -n 2 "$tmp/k/m.cnk.stderr")"
  cmp -s "$tmp/a/m.cnk" "$tmp/k/m.cnk" || fail "killed + resumed model differs from the uninterrupted one"
  find "$tmp/k" -name '*.tmp.*' | grep -q . && echo "note: the kill left temporary files: $(ls "$tmp/k" | grep '\.tmp\.' | tr '\n' ' ')"
fi

# ---- a clean stop (--stop-after) and a torn checkpoint ----------------------------------------------------
# Epoch 2's complete state, then epoch 3 run and only its optimiser-state files kept: that is what a kill
# between writing the optimiser state and the model checkpoint of epoch 3 leaves behind.
mkdir -p "$tmp/s" "$tmp/t"
train "$tmp/s/m.cnk" --stop-after 2 || fail "--stop-after 2 failed: $(tail -n 2 "$tmp/s/m.cnk.stderr")"
cp -p "$tmp/s/"* "$tmp/t/"
train "$tmp/s/m.cnk" --resume "$tmp/s/m.cnk.ckpt" --stop-after 1 ||
  fail "resume for one epoch failed: $(tail -n 2 "$tmp/s/m.cnk.stderr")"
for f in "$tmp/s/"*optim*; do cp -p "$f" "$tmp/t/"; done
train "$tmp/s/m.cnk" --resume "$tmp/s/m.cnk.ckpt" || fail "clean stop + resume failed: $(tail -n 2 "$tmp/s/m.cnk.stderr")"
cmp -s "$tmp/a/m.cnk" "$tmp/s/m.cnk" || fail "stopped + resumed model differs from the uninterrupted one"
if train "$tmp/t/m.cnk" --resume "$tmp/t/m.cnk.ckpt"; then
  cmp -s "$tmp/a/m.cnk" "$tmp/t/m.cnk" || fail "torn checkpoint + resume differs from the uninterrupted run"
else
  fail "a torn checkpoint (optimiser state of epoch 3, model of epoch 2) cannot be resumed: $(tail -n 1 "$tmp/t/m.cnk.stderr")"
fi

[ $failures -eq 0 ] && echo "train resume: all checks passed"
[ $failures -eq 0 ]
