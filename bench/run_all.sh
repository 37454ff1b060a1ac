#!/usr/bin/env bash
# `make bench`: every side-by-side benchmark in one run — mel vs torchaudio/numpy, CNN training and
# inference vs PyTorch, and one Fashion-MNIST epoch vs PyTorch. Usage: bench/run_all.sh [BUILD_DIR]
set -uo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=$(cd "${1:-$here/../build}" && pwd)
status=0
echo "== Mel spectrograms (bench/run_mel.sh) =="
bash "$here/run_mel.sh" "$build" || status=1
echo
echo "== CNN training and inference vs PyTorch (bench/run_nn.sh) =="
bash "$here/run_nn.sh" "$build/cnnkit" || status=1
echo
echo "== Fashion-MNIST end to end vs PyTorch (bench/bench_fashion.sh) =="
EPOCHS=${EPOCHS:-1} bash "$here/bench_fashion.sh" "$build/cnnkit" || status=1
exit $status
