#!/usr/bin/env bash
# run.sh BUILD_DIR SECONDS [TARGET...]: runs each libFuzzer harness BUILD_DIR/fuzz_<target> for SECONDS,
# one after the other, starting from the committed seeds (fuzz/corpus/<target>) and crashers
# (fuzz/crashers/<target>). New corpus entries stay in BUILD_DIR/fuzz-corpus/; a crash, leak, timeout or
# out-of-memory input lands in BUILD_DIR/fuzz-artifacts/<target>/ and makes the script fail at the end.
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}
seconds=${2:?usage: run.sh BUILD_DIR SECONDS [TARGET...]}
shift 2
targets=("$@")
if [ ${#targets[@]} -eq 0 ]; then
  for bin in "$build"/fuzz_*; do [ -x "$bin" ] && targets+=("$(basename "$bin" | sed 's/^fuzz_//')"); done
fi
[ ${#targets[@]} -gt 0 ] || { echo "run.sh: no fuzz_* harnesses in $build (build with CNK_FUZZ=ON)" >&2; exit 2; }

export ASAN_OPTIONS=${ASAN_OPTIONS:-detect_leaks=1:allocator_may_return_null=1}
export UBSAN_OPTIONS=${UBSAN_OPTIONS:-print_stacktrace=1:halt_on_error=1}
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
failed=()
for t in "${targets[@]}"; do
  bin="$build/fuzz_$t"
  [ -x "$bin" ] || { echo "run.sh: $bin is missing" >&2; failed+=("$t(missing)"); continue; }
  work="$build/fuzz-corpus/$t"
  artifacts="$build/fuzz-artifacts/$t"
  mkdir -p "$work" "$artifacts"
  dirs=("$work")
  [ -d "$here/corpus/$t" ] && dirs+=("$here/corpus/$t")
  [ -d "$here/crashers/$t" ] && dirs+=("$here/crashers/$t")
  log="$build/fuzz-$t.log"
  stamp="$build/fuzz-$t.started"
  touch "$stamp"
  echo "== fuzz_$t for ${seconds}s (log: $log)"
  # -rss_limit_mb: an input that makes a loader allocate gigabytes is a finding (absurd sizes must be refused).
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 -print_final_stats=1 \
    -artifact_prefix="$artifacts/" "${dirs[@]}" >"$log" 2>&1
  rc=$?
  grep -E "^stat::(number_of_executed_units|new_units_added)|^Done [0-9]+ runs" "$log" | tr '\n' ' '
  echo
  if [ $rc -ne 0 ]; then
    echo "fuzz_$t FAILED (exit $rc): $(grep -m1 -E "ERROR: |runtime error|CONTRACT VIOLATION" "$log")"
    find "$artifacts" -type f -newer "$stamp" | sed "s|^|  |" # this run's findings only
    failed+=("$t")
  fi
done
if [ ${#failed[@]} -gt 0 ]; then
  echo "fuzzing found problems in: ${failed[*]}. Reproduce: $build/fuzz_<target> <artifact>; keep the input" \
       "in fuzz/crashers/<target>/ once fixed (tests/test_fuzz_regressions replays it)." >&2
  exit 1
fi
echo "fuzzing: no crash, leak, timeout or contract violation in ${targets[*]}"
