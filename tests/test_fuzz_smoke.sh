#!/usr/bin/env bash
# test_fuzz_smoke.sh: if the libFuzzer build exists (`make fuzz` makes $CNK_SOURCE_DIR/build-fuzz; override with
# CNK_FUZZ_BUILD), runs each prebuilt harness for a few seconds from its seeds and crashers, so a loader change
# that breaks under the instrumented build shows up in ctest. Builds nothing; without a fuzz build it says so and
# passes (the Makefile's `fuzz` step, which `make test` runs, is the real gate).
set -u
src=${CNK_SOURCE_DIR:-$(cd "$(dirname "$0")/.." && pwd)}
build=${CNK_FUZZ_BUILD:-$src/build-fuzz}
seconds=${CNK_FUZZ_SMOKE_SECONDS:-3}
shopt -s nullglob
bins=("$build"/fuzz_*)
if [ ${#bins[@]} -eq 0 ]; then
  echo "SKIPPED: no fuzz harnesses in $build (run 'make fuzz' to build them)"
  exit 0
fi
work=$(mktemp -d "${CNK_BUILD_DIR:-/tmp}/tmp-fuzz-smoke-XXXXXX")
trap 'rm -rf "$work"' EXIT
export ASAN_OPTIONS=detect_leaks=1:allocator_may_return_null=1 UBSAN_OPTIONS=print_stacktrace=1:halt_on_error=1
export OPENBLAS_NUM_THREADS=1 OMP_NUM_THREADS=1
failures=0
for bin in "${bins[@]}"; do
  [ -x "$bin" ] || continue
  t=$(basename "$bin" | sed 's/^fuzz_//')
  # A harness older than the code it tests would replay fixed crashers against the old code: say so, skip it.
  newer=$(find "$src/core" "$src/features" "$src/nn" "$src/pipeline" "$src/fuzz" -name '*.[ch]' -newer "$bin" 2>/dev/null |
    head -1)
  if [ -n "$newer" ]; then
    echo "skipped: fuzz_$t is older than $newer (rebuild with 'make fuzz')"
    continue
  fi
  mkdir -p "$work/$t/corpus" "$work/$t/artifacts"
  dirs=("$work/$t/corpus")
  [ -d "$src/fuzz/corpus/$t" ] && dirs+=("$src/fuzz/corpus/$t")
  [ -d "$src/fuzz/crashers/$t" ] && dirs+=("$src/fuzz/crashers/$t")
  "$bin" -max_total_time="$seconds" -timeout=10 -rss_limit_mb=2048 -max_len=16384 \
    -artifact_prefix="$work/$t/artifacts/" "${dirs[@]}" >"$work/$t.log" 2>&1
  rc=$?
  runs=$(grep -oE "^Done [0-9]+ runs" "$work/$t.log" | grep -oE "[0-9]+")
  if [ $rc -ne 0 ]; then
    echo "FAIL: fuzz_$t exit $rc: $(grep -m1 -E "ERROR: |runtime error|CONTRACT VIOLATION" "$work/$t.log")"
    grep -A12 -m1 -E "ERROR: |runtime error" "$work/$t.log" | grep -E "^ +#[0-9]+ .* in (cnk_|[a-z_]+ /)" | head -6
    failures=$((failures + 1))
  elif [ -z "$runs" ] || [ "$runs" -lt 10 ]; then
    echo "FAIL: fuzz_$t ran only '${runs}' inputs"
    failures=$((failures + 1))
  else
    echo "ok: fuzz_$t $runs runs in ${seconds}s"
  fi
done
[ $failures -eq 0 ]
