#!/usr/bin/env bash
# Mel spectrogram benchmark: cnnkit (bench_mel) vs torchaudio and numpy (bench_mel_ref.py) on the same
# 30 s clips at 22050 Hz, one thread each, then the ratios. Usage: bench/run_mel.sh [BUILD_DIR] [CLIP_DIR]
set -euo pipefail
here=$(cd "$(dirname "$0")" && pwd)
build=${1:-$here/../build}
clips=${2:-$here/../../shared/datasets/gtzan-mini/wav}
repeat=${REPEAT:-3}
[ -x "$build/bench_mel" ] || { echo "run_mel.sh: $build/bench_mel not built (cmake --build $build --target bench_mel)" >&2; exit 2; }
# Timings on a shared machine mean little without the load beside them.
echo "load average before: $(cut -d' ' -f1-3 /proc/loadavg)"
ours=$(OMP_NUM_THREADS=1 "$build/bench_mel" "$clips" --repeat "$repeat")
theirs=$(/usr/bin/python3 "$here/bench_mel_ref.py" "$clips" --repeat "$repeat")
echo "$ours"
echo "$theirs"
value() { echo "$1" | awk -v key="$2" '$1 == key { sub("clips_per_s=", "", $2); print $2 }'; }
cnk=$(value "$ours" cnnkit_mel)
wav=$(value "$ours" cnnkit_wavelet64)
ta=$(value "$theirs" torchaudio_mel)
np=$(value "$theirs" numpy_mel)
awk -v c="$cnk" -v w="$wav" -v t="$ta" -v n="$np" 'BEGIN {
  printf "mel clips/s: cnnkit %.1f, torchaudio %.1f, numpy %.1f\n", c, t, n
  printf "ratio cnnkit/torchaudio=%.2f (goal >= 2)\n", c / t
  printf "ratio cnnkit/numpy=%.2f\n", c / n
  printf "ratio wavelet64_time/mel_time=%.2f (goal <= 5)\n", c / w
}'
echo "load average after: $(cut -d' ' -f1-3 /proc/loadavg)"
