#!/bin/bash
# run_nn.sh: cnnkit bench and bench/bench_nn_torch.py side by side, same model (cfg written by
# `cnnkit summary --write-cfg`), same batch and thread count, at 1 and 2 threads; prints samples/s, the
# ratio cnnkit/PyTorch and peak RSS (from /usr/bin/time -v) of each run.
#   bench/run_nn.sh [CNNKIT_BINARY]      (default: build/cnnkit)
# Environment: STEPS (default 10), THREADS ("1 2"), CASES (default: the two goals below and the photo
# default network, cnn5d at batch 16 as `cnnkit train` runs it on a photo folder).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cnnkit=${1:-$here/../build/cnnkit}
steps=${STEPS:-10}
threads_list=${THREADS:-"1 2"}
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
# name|cnnkit arch|summary options|bench options
cases=${CASES:-"cnn-train|cnn|--input 1x128x128 --classes 10|--batch 32
cnn5d-photo-train|cnn5d|--input 3x96x96 --classes 3|--batch 16
mobilenet_v2-infer|mobilenet_v2|--input 3x224x224 --classes 1000|--batch 16 --infer"}

field() { sed -n "s/.*$1=\([0-9.]*\).*/\1/p" "$2" | tail -1; }
rss_mb() { awk '/Maximum resident set size/ {printf "%.0f", $6 / 1024}' "$1"; }

. "$here/blas_core.sh" # both sides on the same OpenBLAS kernels
# Timings on a shared machine mean little without the load beside them.
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
printf "%-20s %7s %12s %12s %7s %10s %10s\n" case threads cnnkit/s torch/s ratio cnk_rss_MB torch_rss_MB
while IFS='|' read -r name arch summary_opts bench_opts; do
    [ -n "$name" ] || continue
    # shellcheck disable=SC2086
    "$cnnkit" summary "$arch" $summary_opts --write-cfg "$tmp/$name.cfg" >/dev/null
    for t in $threads_list; do
        # shellcheck disable=SC2086
        /usr/bin/time -v "$cnnkit" bench "$tmp/$name.cfg" $bench_opts --steps "$steps" --threads "$t" \
            >"$tmp/c.out" 2>"$tmp/c.time"
        # shellcheck disable=SC2086
        /usr/bin/time -v /usr/bin/python3 "$here/bench_nn_torch.py" "$tmp/$name.cfg" $bench_opts --steps "$steps" \
            --threads "$t" >"$tmp/t.out" 2>"$tmp/t.time"
        c=$(field samples_per_s "$tmp/c.out")
        p=$(field samples_per_s "$tmp/t.out")
        printf "%-20s %7s %12s %12s %7s %10s %10s\n" "$name" "$t" "$c" "$p" \
            "$(awk -v a="$c" -v b="$p" 'BEGIN {printf "%.2f", a / b}')" "$(rss_mb "$tmp/c.time")" "$(rss_mb "$tmp/t.time")"
        sed -n 's/^ms_per_step/    cnnkit: ms_per_step/p' "$tmp/c.out"
    done
done <<<"$cases"
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
