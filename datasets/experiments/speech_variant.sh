#!/usr/bin/env bash
# Builds a screening copy of cnnkit whose speech defaults (pipeline/audio_params.c: SPEECH_TOP_DB,
# SPEECH_LIFTER, SPEECH_TRIM_DB, SPEECH_FREQ_WARP, SPEECH_TIME_STRETCH; and, for all audio below 22050 Hz,
# SPEECH_N_FFT, SPEECH_HOP, SPEECH_N_MELS) take other values, without touching the
# build directory's own binary or library: only audio_params.c is recompiled, into a copy of the pipeline
# library, and the cnnkit objects are relinked. Run from the repository root after building cnnkit:
#     datasets/experiments/speech_variant.sh OUT_BINARY -DSPEECH_LIFTER=16 -DSPEECH_FREQ_WARP=0.25f
# Environment: BUILD (the configured build directory, default build).
set -euo pipefail
BUILD=${BUILD:-build}
[ $# -ge 1 ] || { echo "usage: speech_variant.sh OUT_BINARY -DNAME=VALUE..." >&2; exit 2; }
OUT=$(realpath -m "$1")
shift
FLAGS="$BUILD/CMakeFiles/cnnkit_objects.dir/flags.make"
[ -f "$FLAGS" ] && [ -f "$BUILD/libcnnkit_pipeline.a" ] || { echo "speech_variant.sh: build cnnkit in $BUILD first" >&2; exit 2; }
WORK=$(mktemp -d)
trap 'rm -rf "$WORK"' EXIT
value() { sed -n "s/^$1 = //p" "$FLAGS"; }
# shellcheck disable=SC2046 # the flag lists are meant to split into words
eval cc $(value C_DEFINES) $(value C_INCLUDES) $(value C_FLAGS) '"$@"' -c pipeline/audio_params.c -o "$WORK/audio_params.c.o"
cp "$BUILD/libcnnkit_pipeline.a" "$WORK/"
ar r "$WORK/libcnnkit_pipeline.a" "$WORK/audio_params.c.o" 2> /dev/null
LINK=$(sed -e "s| -o cnnkit | -o $OUT |" -e "s| libcnnkit_pipeline.a | $WORK/libcnnkit_pipeline.a |" \
    "$BUILD/CMakeFiles/cnnkit.dir/link.txt")
(cd "$BUILD" && eval "$LINK")
echo "$OUT: speech defaults $*"
