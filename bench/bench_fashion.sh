#!/bin/bash
# bench_fashion.sh: end to end on Fashion-MNIST (60,000 train + 10,000 test 28x28 images, Debian's
# dataset-fashion-mnist): the built-in `cnn` trained by `cnnkit train --input idx` and the identical PyTorch
# model (bench/bench_fashion_torch.py builds it from the same cfg), same threads, batch, optimiser, learning-rate
# schedule and epochs, no validation split, no augmentation. Prints seconds per epoch (wall), the process CPU
# seconds per epoch, the ratio cnnkit/PyTorch, the test accuracy after EPOCHS epochs and the peak RSS.
# The wall time is what a user waits for; on a machine shared with other jobs the CPU time is the steadier
# number (both processes are single-threaded with THREADS=1).
#   bench/bench_fashion.sh [CNNKIT_BINARY]      (default: build/cnnkit)
# Environment: EPOCHS (default 3), THREADS (1), BATCH (32), DATA (/usr/share/datasets/fashion-mnist),
#              RANKS ("" = no MPI run; e.g. "1 2" also times cnnkit under mpirun with that many ranks,
#              THREADS threads each, on SUBSET (12000) training images for one epoch: samples/s and efficiency;
#              ONLY_RANKS=1 skips the cnnkit vs PyTorch part).
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
cnnkit=$(realpath "${1:-$here/../build/cnnkit}")
epochs=${EPOCHS:-3}
threads=${THREADS:-1}
batch=${BATCH:-32}
data=${DATA:-/usr/share/datasets/fashion-mnist}
ranks=${RANKS:-}
subset=${SUBSET:-12000}
[ -e "$data/train-images-idx3-ubyte.gz" ] || { echo "bench_fashion.sh: no Fashion-MNIST in $data (apt-get install dataset-fashion-mnist)" >&2; exit 1; }
tmp=$(mktemp -d)
trap 'rm -rf "$tmp"' EXIT
export OPENBLAS_NUM_THREADS=$threads OMP_NUM_THREADS=$threads
. "$here/blas_core.sh" # both sides on the same OpenBLAS kernels

rss_mb() { awk '/Maximum resident set size/ {printf "%.0f", $6 / 1024}' "$1"; }
cpu_s() { awk '/User time|System time/ {s += $4} END {printf "%.1f", s}' "$1"; }
epoch_seconds() { # the "12.3s" field of each epoch line on stdin, averaged
  tr '\r' '\n' | awk '/^epoch/ {for (i = 1; i <= NF; i++) if ($i ~ /^[0-9.]+s$/) {sub("s", "", $i); s += $i; n++}}
    END {if (n) printf "%.1f", s / n}'
}

if [ -z "${ONLY_RANKS:-}" ]; then
  "$cnnkit" summary cnn --input 1x28x28 --classes 10 --write-cfg "$tmp/cnn.cfg" >/dev/null
  /usr/bin/time -v "$cnnkit" train "$data" --input idx --arch cnn --epochs "$epochs" --batch-size "$batch" \
    --threads "$threads" --val-fraction 0 --no-cache -o "$tmp/m.cnk" >"$tmp/c.out" 2>"$tmp/c.err"
  /usr/bin/time -v /usr/bin/python3 "$here/bench_fashion_torch.py" "$tmp/cnn.cfg" "$data" --epochs "$epochs" \
    --batch "$batch" --threads "$threads" >"$tmp/t.out" 2>"$tmp/t.err"

  c_epoch=$(epoch_seconds <"$tmp/c.err")
  t_epoch=$(sed -n 's/.*seconds_per_epoch=\([0-9.]*\).*/\1/p' "$tmp/t.out")
  c_acc=$(sed -n 's/^test accuracy: //p' "$tmp/c.out")
  t_acc=$(sed -n 's/.*test_accuracy=\([0-9.]*\).*/\1/p' "$tmp/t.out")
  c_cpu=$(awk -v s="$(cpu_s "$tmp/c.err")" -v e="$epochs" 'BEGIN {printf "%.1f", s / e}')
  t_cpu=$(awk -v s="$(cpu_s "$tmp/t.err")" -v e="$epochs" 'BEGIN {printf "%.1f", s / e}')
  echo "Fashion-MNIST, cnn (1x28x28), batch $batch, $threads thread(s), $epochs epoch(s), Adam + cosine lr"
  printf "%-8s %12s %14s %10s %12s\n" "" "s/epoch" "cpu_s/epoch" "test_acc" "peak_RSS_MB"
  printf "%-8s %12s %14s %10s %12s\n" cnnkit "$c_epoch" "$c_cpu" "$c_acc" "$(rss_mb "$tmp/c.err")"
  printf "%-8s %12s %14s %10s %12s\n" pytorch "$t_epoch" "$t_cpu" "$t_acc" "$(rss_mb "$tmp/t.err")"
  awk -v a="$c_epoch" -v b="$t_epoch" -v c="$c_cpu" -v d="$t_cpu" \
    'BEGIN {printf "ratio cnnkit/pytorch: wall %.2f, cpu %.2f (above 1 = cnnkit slower)\n", a / b, c / d}'
  grep '^epoch' "$tmp/t.out" | sed 's/^/  pytorch: /'
  tr '\r' '\n' <"$tmp/c.err" | grep '^epoch' | sed 's/^/  cnnkit:  /'
fi

# ---- data-parallel: 1 vs N ranks (mpirun), one epoch of the first SUBSET training images ----------------------
[ -n "$ranks" ] || exit 0
command -v mpirun >/dev/null || { echo "bench_fashion.sh: RANKS needs mpirun (openmpi-bin)" >&2; exit 1; }
/usr/bin/python3 - "$data" "$tmp/sub" "$subset" <<'EOF'
import gzip, os, struct, sys
src, dst, n_train = sys.argv[1], sys.argv[2], int(sys.argv[3])
os.makedirs(dst)
def cut(stem, count):  # the first count records of an IDX file
    data = gzip.open(os.path.join(src, stem + ".gz")).read()
    ndim = data[3]
    dims = struct.unpack(">%dI" % ndim, data[4:4 + 4 * ndim])
    record = 1
    for d in dims[1:]:
        record *= d
    head = data[:4] + struct.pack(">%dI" % ndim, count, *dims[1:])
    body = data[4 + 4 * ndim:4 + 4 * ndim + count * record]
    gzip.open(os.path.join(dst, stem + ".gz"), "wb", compresslevel=1).write(head + body)
for kind in ("images-idx3-ubyte", "labels-idx1-ubyte"):
    cut("train-" + kind, n_train)
    cut("t10k-" + kind, 1000)  # the test images only feed the accuracy line
EOF
echo
echo "data-parallel (mpirun, $threads thread(s) per rank), one epoch of $subset images, global batch $batch"
echo "(cpu_s = CPU seconds of all ranks together; cpu_efficiency = 1-rank CPU / N-rank CPU for the same work, the"
echo " steadier figure when other jobs share the machine)"
printf "%-6s %10s %10s %11s %14s %8s %15s\n" ranks s/epoch samples/s efficiency comm_s_rank0 cpu_s cpu_efficiency
base=""
base_cpu=""
for n in $ranks; do
  /usr/bin/time -v -o "$tmp/r$n.time" mpirun --oversubscribe --allow-run-as-root -x OPENBLAS_NUM_THREADS -x OMP_NUM_THREADS -np "$n" "$cnnkit" train \
    "$tmp/sub" --input idx --arch cnn --epochs 1 --batch-size "$batch" --threads "$threads" --val-fraction 0 \
    --no-cache -o "$tmp/r$n.cnk" >"$tmp/r$n.out" 2>"$tmp/r$n.err"
  s=$(epoch_seconds <"$tmp/r$n.err")
  comm=$(sed -n 's/.*allreduces, \([0-9.]*\) s waiting.*/\1/p' "$tmp/r$n.out")
  sps=$(awk -v n="$subset" -v s="$s" 'BEGIN {printf "%.1f", n / s}')
  cpu=$(cpu_s "$tmp/r$n.time")
  [ -n "$base" ] || base=$sps
  [ -n "$base_cpu" ] || base_cpu=$cpu
  printf "%-6s %10s %10s %11s %14s %8s %15s\n" "$n" "$s" "$sps" \
    "$(awk -v a="$sps" -v b="$base" -v n="$n" 'BEGIN {printf "%.2f", a / (b * n)}')" "${comm:--}" "$cpu" \
    "$(awk -v a="$base_cpu" -v b="$cpu" 'BEGIN {printf "%.2f", a / b}')"
done
