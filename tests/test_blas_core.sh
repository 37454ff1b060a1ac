#!/usr/bin/env bash
# test_blas_core.sh: cnnkit runs the OpenBLAS kernels its CPU's instruction sets allow, also on a CPU newer than
# the OpenBLAS release (which then falls back to its generic SSE3 kernels, "Prescott": Debian 12's OpenBLAS on
# an Emerald Rapids Xeon trains 2.1x slower with them), and it keeps a kernel set the user chose.
set -u
bin=${CNK_BIN:?CNK_BIN must name the cnnkit binary}
if [ "$(uname -m)" != x86_64 ]; then
  echo "SKIPPED: OpenBLAS's x86-64 kernel names only"
  exit 0
fi
failures=0

# blas_core [VAR=VALUE]: the kernel set `cnnkit bench` reports, with OPENBLAS_CORETYPE unset unless given.
blas_core() {
  env -u OPENBLAS_CORETYPE "$@" "$bin" bench mlp --steps 1 --warmup 0 --batch 4 --threads 1 2>&1 |
    sed -n 's/.*blas_core=\([A-Za-z0-9_]*\).*/\1/p'
}

flags=$(grep -m1 '^flags' /proc/cpuinfo)
auto=$(blas_core)
if [ -z "$auto" ]; then
  echo "FAIL: cnnkit bench printed no blas_core="
  failures=$((failures + 1))
elif echo "$flags" | grep -qw avx2 && [ "$auto" = Prescott ]; then
  echo "FAIL: this CPU has AVX2 but cnnkit runs OpenBLAS's generic SSE3 kernels (Prescott)"
  failures=$((failures + 1))
else
  echo "ok: kernels chosen for this CPU: $auto (OpenBLAS alone: $(env -u OPENBLAS_CORETYPE OPENBLAS_VERBOSE=2 \
    "$bin" --version 2>&1 | sed -n '1s/^Core: //p'))"
fi

chosen=$(blas_core OPENBLAS_CORETYPE=Prescott)
if [ "$chosen" != Prescott ]; then
  echo "FAIL: OPENBLAS_CORETYPE=Prescott was not kept: cnnkit ran '$chosen'"
  failures=$((failures + 1))
else
  echo "ok: the user's OPENBLAS_CORETYPE is kept"
fi
[ $failures -eq 0 ]
