#!/usr/bin/env bash
# test_kill_outputs.sh: `cnnkit features` over a folder killed with SIGKILL at several moments (issue #7): every
# file under a final name is complete (a .npy numpy loads with the full shape), and running the same command
# again finishes the job. Temporary files of the interrupted atomic writes may remain; they are never read.
set -u
bin=${CNK_BIN:?CNK_BIN must name the cnnkit binary}
clips=${CNK_SHARED:-$(dirname "$0")/../../shared}/datasets/gtzan-mini/wav
[ -d "$clips" ] || { echo "FAIL: $clips is missing"; exit 1; }
tmp=$(mktemp -d "${CNK_BUILD_DIR:-/tmp}/tmp-kill-outputs-XXXXXX")
pid=""
trap 'kill -9 $pid 2>/dev/null; rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=1
export XDG_CACHE_HOME="$tmp/cache" # hermetic: never features cached by an earlier (older) cnnkit
failures=0
fail() {
  echo "FAIL: $*"
  failures=$((failures + 1))
}
n_clips=$(find "$clips" -name '*.wav' | wc -l)
opts=(--kind wavelet --scales 48 --jobs 2)

# check_outputs DIR: every .npy under DIR loads as (48, frames) float32 with frames > 1000 (30 s clips).
check_outputs() {
  /usr/bin/python3 - "$1" <<'EOF'
import glob, sys
import numpy as np
bad = []
for path in glob.glob(sys.argv[1] + "/**/*.npy", recursive=True):
    try:
        a = np.load(path)
        if a.dtype != np.float32 or a.ndim != 2 or a.shape[0] != 48 or a.shape[1] < 1000 or not np.isfinite(a).all():
            bad.append(f"{path}: {a.dtype} {a.shape}")
    except Exception as e:  # a half-written file under its final name
        bad.append(f"{path}: {e}")
if bad:
    print("\n".join(bad))
sys.exit(1 if bad else 0)
EOF
}

mid_run=0
for attempt in 1 2 3 4 5 6 7 8; do
  out=$tmp/out$attempt
  "$bin" features "$clips" "$out" "${opts[@]}" >/dev/null 2>"$tmp/err" &
  pid=$!
  sleep "$(echo "0.12 * $attempt" | bc)"
  kill -9 $pid 2>/dev/null
  wait $pid 2>/dev/null
  status=$?
  pid=""
  written=$(find "$out" -name '*.npy' 2>/dev/null | wc -l)
  [ $status -eq 137 ] && [ "$written" -gt 0 ] && [ "$written" -lt "$n_clips" ] && mid_run=$((mid_run + 1))
  check_outputs "$out" || fail "attempt $attempt (exit $status, $written files): a damaged file under a final name"
  # The same command again completes the folder.
  "$bin" features "$clips" "$out" "${opts[@]}" >/dev/null 2>"$tmp/err2" || fail "re-run after the kill failed: $(tail -n 2 "$tmp/err2")"
  [ "$(find "$out" -name '*.npy' | wc -l)" -eq "$n_clips" ] || fail "re-run after the kill did not write every file"
  check_outputs "$out" || fail "attempt $attempt: a damaged file after the re-run"
  [ $mid_run -ge 2 ] && break
done
echo "killed mid-run $mid_run times"
[ $mid_run -ge 1 ] || fail "never managed to kill the run between its first and last output (machine too fast or slow)"
[ $failures -eq 0 ]
