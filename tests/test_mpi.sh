#!/usr/bin/env bash
# test_mpi.sh: data-parallel training over MPI (issue #8), with `mpirun --oversubscribe` on this machine.
# - 2 and 3 ranks with the same global batch and seed give the 1-rank weights within 1e-5 relative (a model
#   without batch norm or dropout: see pipeline/distributed.h for the documented batch-norm difference);
#   only rank 0 prints the summary and writes files.
# - With batch norm the ranks normalise their own shards (ghost batch norm): the run works and its weights
#   differ from 1 rank (so the batch really is sharded) while the test accuracy stays close.
# - Audio clips: each rank extracts its share into the shared feature cache, then all train from it; late
#   fusion (mel + wavelet) the same way, and its 2-rank run resumed from a checkpoint ends byte-identical.
# - Photos with a training source size (--train-size 48 for a 32x32 input): the warm-up decodes each photo once,
#   in the view it is read in (the cache holds the training photos at 48 only, the others at 32 only, plus the
#   test photos' evaluation view); the model says 32x32, the checkpoint 48x48, and a resumed run ends
#   byte-identical.
# - Resuming from a checkpoint with a different number of ranks (2 -> 1, 1 -> 3) ends at the 1-rank weights.
# - A rank killed with SIGKILL ends the job within seconds with an error; a stopped (hung) rank makes rank 0
#   fail with "no answer from the other ranks" after CNK_MPI_TIMEOUT seconds, exit code 3, no rank left.
# - tests/test_distributed (the collectives) with 2 ranks.
set -u
bin=${CNK_BIN:?CNK_BIN must name the cnnkit binary}
build=${CNK_BUILD_DIR:?CNK_BUILD_DIR must name the build folder}
here=$(cd "$(dirname "$0")" && pwd)
py=/usr/bin/python3
if ! grep -q '^CNK_MPI:BOOL=ON' "$build/CMakeCache.txt"; then
  echo "FAIL: this build has no MPI (cmake -DCNK_MPI=ON; needs libopenmpi-dev openmpi-bin)"
  exit 1
fi
command -v mpirun >/dev/null || { echo "FAIL: mpirun not found (apt-get install openmpi-bin)"; exit 1; }
tmp=$(mktemp -d "$build/tmp-mpi-XXXXXX")
job=""
trap '[ -n "$job" ] && kill -9 $job 2>/dev/null; rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=1 OMPI_ALLOW_RUN_AS_ROOT=1 OMPI_ALLOW_RUN_AS_ROOT_CONFIRM=1
export OMPI_MCA_btl=self,vader       # one machine: shared memory only, no network probing
export ASAN_OPTIONS=${ASAN_OPTIONS:-}:detect_leaks=0  # OpenMPI's own allocations at exit are not ours
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
mpi() { # mpi N ARGS...: cnnkit under mpirun with N ranks
  local n=$1
  shift
  mpirun --oversubscribe --allow-run-as-root -x OPENBLAS_NUM_THREADS -x ASAN_OPTIONS -x CNK_MPI_TIMEOUT \
    -np "$n" "$@"
}
export CNK_MPI_TIMEOUT=${CNK_MPI_TIMEOUT:-60}

$py "$here/ref/mpi_tool.py" make-idx "$tmp/idx" 480 120 || { echo "FAIL: could not generate the IDX set"; exit 1; }
cat >"$tmp/net.cfg" <<'EOF'
[input]
name = input
shape = 1x16x16

[conv2d]
name = conv1
filters = 8
size = 3
stride = 1
padding = same
activation = relu

[maxpool]
name = pool1
size = 2
stride = 2

[conv2d]
name = conv2
filters = 16
size = 3
stride = 1
padding = same
activation = relu

[global_avgpool]
name = gap

[dense]
name = logits
units = 4
EOF
opts=(train "$tmp/idx" --input idx --arch "$tmp/net.cfg" --epochs 3 --batch-size 32 --threads 1 --seed 7 --no-cache)
same_weights() { # same_weights A.cnk B.cnk WHAT
  $py "$here/ref/mpi_tool.py" compare "$1" "$2" 1e-5 >"$tmp/cmp.out" || fail "$3: $(cat "$tmp/cmp.out")"
  echo "$3: $(cat "$tmp/cmp.out")"
}

# ---- 1 rank vs 2 and 3 ranks, same global batch ------------------------------------------------------------
"$bin" "${opts[@]}" -o "$tmp/one.cnk" >"$tmp/one.out" 2>"$tmp/one.err" || fail "1 rank: $(tail -n 2 "$tmp/one.err")"
for n in 2 3; do
  mkdir -p "$tmp/r$n"
  mpi $n "$bin" "${opts[@]}" -o "$tmp/r$n/m.cnk" >"$tmp/r$n/out" 2>"$tmp/r$n/err" ||
    fail "$n ranks: exit $? $(tail -n 3 "$tmp/r$n/err")"
  same_weights "$tmp/one.cnk" "$tmp/r$n/m.cnk" "$n ranks vs 1"
  [ "$(grep -c '^model:' "$tmp/r$n/out")" = 1 ] || fail "$n ranks: the summary should be printed once (by rank 0)"
  [ "$(grep -c '^epoch' "$tmp/r$n/err")" = 3 ] || fail "$n ranks: epoch lines should come from rank 0 only"
  ls "$tmp/r$n" | grep -q '\.tmp' && fail "$n ranks: temporary files left: $(ls "$tmp/r$n")"
  cmp -s "$tmp/one.cnk.split.csv" "$tmp/r$n/m.cnk.split.csv" || fail "$n ranks: the split differs from 1 rank's"
done
acc_one=$(sed -n 's/^test accuracy: //p' "$tmp/one.out")
acc_two=$(sed -n 's/^test accuracy: //p' "$tmp/r2/out")
[ -n "$acc_one" ] && [ "$acc_one" = "$acc_two" ] || fail "test accuracy 1 rank '$acc_one' vs 2 ranks '$acc_two'"

# ---- batch norm: ghost batch norm over each rank's shard -------------------------------------------------------
bn=(train "$tmp/idx" --input idx --arch cnn --epochs 3 --batch-size 32 --threads 1 --seed 7 --no-cache)
"$bin" "${bn[@]}" -o "$tmp/bn1.cnk" >"$tmp/bn1.out" 2>"$tmp/bn1.err" || fail "cnn, 1 rank: $(tail -n 2 "$tmp/bn1.err")"
mpi 2 "$bin" "${bn[@]}" -o "$tmp/bn2.cnk" >"$tmp/bn2.out" 2>"$tmp/bn2.err" || fail "cnn, 2 ranks: $(tail -n 3 "$tmp/bn2.err")"
if $py "$here/ref/mpi_tool.py" compare "$tmp/bn1.cnk" "$tmp/bn2.cnk" 1e-5 >"$tmp/cmp.out"; then
  fail "cnn with batch norm: 2 ranks equal 1 rank ($(cat "$tmp/cmp.out")): were the batches sharded?"
fi
a1=$(sed -n 's/^test accuracy: //p' "$tmp/bn1.out")
a2=$(sed -n 's/^test accuracy: //p' "$tmp/bn2.out")
echo "cnn with batch norm: test accuracy 1 rank $a1, 2 ranks $a2; weights $(cat "$tmp/cmp.out")"
awk -v a="$a1" -v b="$a2" 'BEGIN { d = a - b; exit !(a > 0.5 && b > 0.5 && d < 0.15 && d > -0.15) }' ||
  fail "cnn with batch norm: accuracies 1 rank '$a1' vs 2 ranks '$a2' should both learn and stay close"

# ---- audio: feature extraction split across ranks through the shared cache -------------------------------------
mkdir -p "$tmp/audio/zero" "$tmp/audio/one" "$tmp/cache"
for i in 0 1 2 3 4 5 6 7; do
  cp "$CNK_SHARED/datasets/fsdd/0/0_george_$i.wav" "$tmp/audio/zero/"
  cp "$CNK_SHARED/datasets/fsdd/1/1_george_$i.wav" "$tmp/audio/one/"
done
mpi 2 "$bin" train "$tmp/audio" --epochs 2 --threads 1 --test-fraction 0.25 --val-fraction 0.25 --cache "$tmp/cache" \
  -o "$tmp/audio.cnk" >"$tmp/audio.out" 2>"$tmp/audio.err" || fail "audio, 2 ranks: $(tail -n 3 "$tmp/audio.err")"
n_cached=$(find "$tmp/cache" -type f -name '*.npy' | wc -l)
[ "$n_cached" = 16 ] || fail "audio, 2 ranks: $n_cached of 16 clips in the feature cache"
grep -q '^test accuracy' "$tmp/audio.out" || fail "audio, 2 ranks: no summary from rank 0"
# The ranks filled the cache before the training pass read it: rank 0 found every clip there.
grep -q '(16 files from the cache)' "$tmp/audio.out" || fail "audio, 2 ranks: $(grep '^time' "$tmp/audio.out")"

# ---- late fusion (mel + wavelet): data-parallel too, both views through the shared cache, resumable ----------------
fz=(train "$tmp/audio" --input mel+wavelet --arch fusion --fusion weighted --epochs 2 --threads 1 --seed 3
  --test-fraction 0.25 --val-fraction 0.25)
mkdir -p "$tmp/fz"
mpi 2 "$bin" "${fz[@]}" --cache "$tmp/fz/cache" -o "$tmp/fz/two.cnk" >"$tmp/fz/two.out" 2>"$tmp/fz/two.err" ||
  fail "fusion, 2 ranks: $(tail -n 3 "$tmp/fz/two.err")"
n_cached=$(find "$tmp/fz/cache" -type f -name '*.npy' | wc -l)
[ "$n_cached" = 32 ] || fail "fusion, 2 ranks: $n_cached of 16 clips x 2 views in the feature cache"
grep -q '(16 files from the cache)' "$tmp/fz/two.out" || fail "fusion, 2 ranks: $(grep '^time' "$tmp/fz/two.out")"
[ "$(grep -c '^model:' "$tmp/fz/two.out")" = 1 ] || fail "fusion, 2 ranks: the summary should be printed once"
[ "$(grep -c '^epoch' "$tmp/fz/two.err")" = 2 ] || fail "fusion, 2 ranks: epoch lines should come from rank 0 only"
"$bin" "${fz[@]}" --no-cache -o "$tmp/fz/one.cnk" >"$tmp/fz/one.out" 2>"$tmp/fz/one.err" ||
  fail "fusion, 1 rank: $(tail -n 2 "$tmp/fz/one.err")"
cmp -s "$tmp/fz/one.cnk.split.csv" "$tmp/fz/two.cnk.split.csv" || fail "fusion, 2 ranks: the split differs from 1 rank's"
if $py "$here/ref/mpi_tool.py" compare "$tmp/fz/one.cnk" "$tmp/fz/two.cnk" 1e-5 >"$tmp/cmp.out"; then
  fail "fusion: 2 ranks equal 1 rank ($(cat "$tmp/cmp.out")): were the batches sharded?"
fi
mpi 2 "$bin" "${fz[@]}" --cache "$tmp/fz/cache" -o "$tmp/fz/res.cnk" --stop-after 1 >"$tmp/fz/res1.out" 2>&1 ||
  fail "fusion, 2 ranks, stop after 1 epoch: $(tail -n 2 "$tmp/fz/res1.out")"
mpi 2 "$bin" "${fz[@]}" --cache "$tmp/fz/cache" -o "$tmp/fz/res.cnk" --resume "$tmp/fz/res.cnk.ckpt" \
  >"$tmp/fz/res2.out" 2>&1 || fail "fusion, 2 ranks, resumed: $(tail -n 2 "$tmp/fz/res2.out")"
cmp -s "$tmp/fz/two.cnk" "$tmp/fz/res.cnk" || fail "fusion, 2 ranks: the resumed run differs from the straight one"
cmp -s "$tmp/fz/two.cnk.ckpt" "$tmp/fz/res.cnk.ckpt" || fail "fusion, 2 ranks: the resumed run's last checkpoint differs"

# ---- photos with a training source size: each photo decoded once, in the view it is read in -------------------------
mkdir -p "$tmp/ts/photos/cats" "$tmp/ts/photos/dogs"
for c in cats dogs; do
  for f in $(ls "$CNK_SHARED/datasets/animals3/$c" | sort | head -6); do
    ln -s "$CNK_SHARED/datasets/animals3/$c/$f" "$tmp/ts/photos/$c/$f"
  done
done
ts=(train "$tmp/ts/photos" --image-size 32x32 --train-size 48 --epochs 2 --threads 1 --seed 5 --val-fraction 0.25
  --test-fraction 0.25 --cache "$tmp/ts/cache")
mpi 2 "$bin" "${ts[@]}" -o "$tmp/ts/two.cnk" >"$tmp/ts/two.out" 2>"$tmp/ts/two.err" ||
  fail "--train-size, 2 ranks: $(tail -n 3 "$tmp/ts/two.err")"
"$bin" summary "$tmp/ts/two.cnk" 2>&1 | grep -q '^Input: image 3x32x32,' ||
  fail "--train-size, 2 ranks: the model's input is not 32x32: $("$bin" summary "$tmp/ts/two.cnk" 2>&1 | sed -n 2p)"
grep -aqx 'ckpt_train_size=48x48' "$tmp/ts/two.cnk.ckpt" ||
  fail "--train-size, 2 ranks: no ckpt_train_size=48x48 in the checkpoint"
grep -q '(12 files from the cache)' "$tmp/ts/two.out" || fail "--train-size, 2 ranks: $(grep '^time' "$tmp/ts/two.out")"
# Cache entries by their arrays' shape (in the .npy header) against the split: the training photos at 48 x 48, the
# validation and test photos at 32 x 32, and the test photos once more in the evaluation view (its central crop).
n_train=$(grep -c ',train$' "$tmp/ts/two.cnk.split.csv")
n_other=$(grep -c ',val$\|,test$' "$tmp/ts/two.cnk.split.csv")
n_test=$(grep -c ',test$' "$tmp/ts/two.cnk.split.csv")
find "$tmp/ts/cache" -type f -name '*.npy' | while read -r f; do head -c 256 "$f" | tr -d '\0' |
  grep -ao "'shape': ([^)]*)"; done >"$tmp/ts/shapes"
n48=$(grep -c "'shape': (3, 48, 48)" "$tmp/ts/shapes")
n32=$(grep -c "'shape': (3, 32, 32)" "$tmp/ts/shapes")
n_all=$(find "$tmp/ts/cache" -type f | wc -l)
echo "--train-size, 2 ranks: cache entries $n48 at 48x48, $n32 at 32x32 ($n_all files); split $n_train train, $n_other others, $n_test test"
[ $((n_train + n_other)) = 12 ] && [ "$n_test" -gt 0 ] || fail "--train-size, 2 ranks: the split file lists $n_train + $n_other photos"
[ "$n48" = "$n_train" ] || fail "--train-size, 2 ranks: $n48 cache entries at 48x48, expected one per training photo ($n_train)"
[ "$n32" = $((n_other + n_test)) ] ||
  fail "--train-size, 2 ranks: $n32 cache entries at 32x32, expected one per validation or test photo and one per test photo's evaluation view ($n_other + $n_test)"
[ "$n_all" = $((n48 + n32)) ] || fail "--train-size, 2 ranks: $n_all files in the cache, $((n48 + n32)) entries"
mpi 2 "$bin" "${ts[@]}" -o "$tmp/ts/res.cnk" --stop-after 1 >"$tmp/ts/res1.out" 2>&1 ||
  fail "--train-size, 2 ranks, stop after 1 epoch: $(tail -n 2 "$tmp/ts/res1.out")"
grep -aqx 'ckpt_train_size=48x48' "$tmp/ts/res.cnk.ckpt" || fail "--train-size, 2 ranks, stopped: no ckpt_train_size=48x48"
mpi 2 "$bin" "${ts[@]}" -o "$tmp/ts/res.cnk" --resume "$tmp/ts/res.cnk.ckpt" >"$tmp/ts/res2.out" 2>&1 ||
  fail "--train-size, 2 ranks, resumed: $(tail -n 2 "$tmp/ts/res2.out")"
cmp -s "$tmp/ts/two.cnk" "$tmp/ts/res.cnk" || fail "--train-size, 2 ranks: the resumed run's model differs from the straight one"
cmp -s "$tmp/ts/two.cnk.ckpt" "$tmp/ts/res.cnk.ckpt" || fail "--train-size, 2 ranks: the resumed run's last checkpoint differs"
n_after=$(find "$tmp/ts/cache" -type f | wc -l)
[ "$n_after" = "$n_all" ] || fail "--train-size, 2 ranks: the stopped and resumed runs added $((n_after - n_all)) cache files"

# ---- resume with a different number of ranks ---------------------------------------------------------------------
mkdir -p "$tmp/res_a" "$tmp/res_b"
mpi 2 "$bin" "${opts[@]}" -o "$tmp/res_a/m.cnk" --stop-after 1 >"$tmp/res_a/out1" 2>&1 || fail "2 ranks, stop after 1 epoch"
"$bin" train "$tmp/idx" --input idx --arch "$tmp/net.cfg" --threads 1 --seed 7 --no-cache -o "$tmp/res_a/m.cnk" \
  --resume "$tmp/res_a/m.cnk.ckpt" >"$tmp/res_a/out2" 2>&1 || fail "resume on 1 rank: $(tail -n 2 "$tmp/res_a/out2")"
same_weights "$tmp/one.cnk" "$tmp/res_a/m.cnk" "2 ranks then resumed on 1"
"$bin" "${opts[@]}" -o "$tmp/res_b/m.cnk" --stop-after 2 >"$tmp/res_b/out1" 2>&1 || fail "1 rank, stop after 2 epochs"
mpi 3 "$bin" train "$tmp/idx" --input idx --arch "$tmp/net.cfg" --threads 1 --seed 7 --no-cache -o "$tmp/res_b/m.cnk" \
  --resume "$tmp/res_b/m.cnk.ckpt" >"$tmp/res_b/out2" 2>&1 || fail "resume on 3 ranks: $(tail -n 3 "$tmp/res_b/out2")"
same_weights "$tmp/one.cnk" "$tmp/res_b/m.cnk" "1 rank then resumed on 3"

# ---- faults: a killed rank, a hung rank ----------------------------------------------------------------------------
$py "$here/ref/mpi_tool.py" make-idx "$tmp/big" 2000 40 || fail "could not generate the larger IDX set"
long=(train "$tmp/big" --input idx --arch "$tmp/net.cfg" --epochs 500 --batch-size 32 --threads 1 --no-cache)
rank_pid() { # rank_pid MODEL RANK: the pid of that rank of the job writing MODEL
  local p
  for p in $(pgrep -f -- "-o $1"); do
    tr '\0' '\n' <"/proc/$p/environ" 2>/dev/null | grep -qx "OMPI_COMM_WORLD_RANK=$2" && echo "$p" && return
  done
}
fault_run() { # fault_run NAME SIGNAL: starts 2 ranks, sends SIGNAL to rank 1 after the first epoch; sets
  local name=$1 sig=$2 # elapsed (seconds until mpirun ended) and code (its exit status)
  mpi 2 "$bin" "${long[@]}" -o "$tmp/$name.cnk" >"$tmp/$name.out" 2>"$tmp/$name.err" &
  job=$!
  for _ in $(seq 1 600); do grep -q '^epoch' "$tmp/$name.err" 2>/dev/null && break; sleep 0.1; done
  local victim
  victim=$(rank_pid "$tmp/$name.cnk" 1)
  [ -n "$victim" ] || { fail "$name: rank 1 not found"; return; }
  local start
  start=$(date +%s.%N)
  kill -"$sig" "$victim"
  code=0
  for _ in $(seq 1 300); do kill -0 $job 2>/dev/null || break; sleep 0.1; done
  if kill -0 $job 2>/dev/null; then
    fail "$name: the job still runs 30 s after rank 1 got SIG$sig"
    kill -9 "$victim" $job 2>/dev/null
  fi
  wait $job
  code=$?
  job=""
  elapsed=$(echo "$(date +%s.%N) - $start" | bc)
  echo "$name: SIG$sig to rank 1 -> mpirun ended after ${elapsed} s with exit code $code"
  [ -z "$(rank_pid "$tmp/$name.cnk" 0)" ] || fail "$name: rank 0 is still running"
}
fault_run killed KILL
[ "$code" != 0 ] || fail "killed: exit code 0 after a rank was killed"
grep -q 'rank 1.*signal 9\|rank 1.*Killed\|another rank' "$tmp/killed.err" ||
  fail "killed: no message naming the dead rank: $(tail -n 5 "$tmp/killed.err")"
awk -v t="$elapsed" 'BEGIN { exit !(t < 10) }' || fail "killed: took ${elapsed} s (limit 10 s)"
CNK_MPI_TIMEOUT=2 fault_run stopped STOP
[ "$code" = 3 ] || fail "stopped: exit code $code, expected 3"
grep -q 'cnnkit train: rank 0 of 2: no answer from the other ranks for' "$tmp/stopped.err" ||
  fail "stopped: no clear error from rank 0: $(tail -n 5 "$tmp/stopped.err")"
awk -v t="$elapsed" 'BEGIN { exit !(t < 10) }' || fail "stopped: took ${elapsed} s (limit 10 s with a 2 s timeout)"

# ---- cnnkit features split across ranks: the same files as one process, each broken file named once ----------
mkdir -p "$tmp/feat_in/a"
cp "$CNK_SHARED"/datasets/gtzan-mini/au/*/*.au "$tmp/feat_in/a/"
echo "not audio" > "$tmp/feat_in/a/broken.wav"
"$bin" features --jobs 1 "$tmp/feat_in" "$tmp/feat_one" 2>"$tmp/feat_one.err"
[ $? = 1 ] || fail "features, 1 process: expected exit 1 (one broken file)"
mpi 2 "$bin" features "$tmp/feat_in" "$tmp/feat_two" >"$tmp/feat_two.out" 2>"$tmp/feat_two.err"
code=$?
[ $code = 1 ] || fail "features, 2 ranks: exit $code, expected 1 (one broken file): $(tail -n 3 "$tmp/feat_two.err")"
[ "$(grep -c 'broken.wav' "$tmp/feat_two.err")" = 1 ] || fail "features, 2 ranks: the broken file should be named once"
[ "$(grep -c 'wrote 10 files' "$tmp/feat_two.err")" = 1 ] || fail "features, 2 ranks: rank 0 alone reports 10 files written"
(cd "$tmp/feat_one" && find . -type f | sort | xargs md5sum) >"$tmp/feat_one.sum"
(cd "$tmp/feat_two" && find . -type f | sort | xargs md5sum) >"$tmp/feat_two.sum"
cmp -s "$tmp/feat_one.sum" "$tmp/feat_two.sum" || fail "features, 2 ranks: outputs differ from one process"
[ "$(wc -l <"$tmp/feat_two.sum")" = 10 ] || fail "features, 2 ranks: expected 10 outputs"

# ---- the collectives' unit tests with 2 ranks -------------------------------------------------------------------
mkdir -p "$tmp/dist/data/0" "$tmp/dist/data/1" "$tmp/dist/cache"
for i in 0 1 2 3 4; do
  cp "$CNK_SHARED/datasets/fsdd/0/0_jackson_$i.wav" "$tmp/dist/data/0/"
  cp "$CNK_SHARED/datasets/fsdd/1/1_jackson_$i.wav" "$tmp/dist/data/1/"
done
CNK_DIST_DATA=$tmp/dist/data CNK_DIST_CACHE=$tmp/dist/cache mpi 2 -x CNK_DIST_DATA -x CNK_DIST_CACHE -x CNK_SHARED \
  "$build/tests/test_distributed" >"$tmp/dist.out" 2>&1 || fail "test_distributed with 2 ranks: $(grep -E 'ERROR|LINE|FAIL' "$tmp/dist.out" | head -5)"
[ "$(grep -c 'PASSED  \] 7 test' "$tmp/dist.out")" = 2 ] || fail "test_distributed: both ranks should pass 7 tests"

[ $failures = 0 ] && echo "test_mpi: all passed"
exit $((failures > 0))
