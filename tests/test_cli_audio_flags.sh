#!/bin/bash
# cnnkit train's spectrogram clean-up flags (--top-db --trim-db --lifter --center --clip-norm): the speech
# defaults on short 8 kHz clips, the overrides landing in the model (summary's Input line), predict applying
# them (its probabilities equal training's evaluation), the feature cache keyed by them, and bad values or
# non-audio data refused with a usage error.
set -u
BIN=${CNK_BIN:-cnnkit}
PY=/usr/bin/python3
T="${CNK_BUILD_DIR:-.}/tmp-cli-audio-flags-$$"
rm -rf "$T" && mkdir -p "$T"
fail() { echo "FAIL: $*"; exit 1; }
expect_rc() { # expected, actual, what
    [ "$1" = "$2" ] || fail "$3: exit code $2, expected $1"
}
COMMON=(--batch-size 8 --epochs 1 --threads 1 --cache "$T/cache")
export XDG_CACHE_HOME="$T/xdg-cache"

"$BIN" demo --out "$T" --generate-only --clips 5 --seconds 0.5 --sr 8000 > /dev/null 2>&1
expect_rc 0 $? "demo --generate-only"
D="$T/data"

# --- defaults on short 8 kHz clips: the speech clean-up
"$BIN" train "$D" -o "$T/def.cnk" "${COMMON[@]}" > "$T/def.out" 2> "$T/def.err"
expect_rc 0 $? "train with defaults"
"$BIN" summary "$T/def.cnk" > "$T/def.sum" 2>&1
expect_rc 0 $? "summary"
grep -q "^Input: mel, 8000 Hz, FFT 512, hop 128, 64 bands, .*floor -40 dB, silence trimmed at -40 dB, 20 cepstral coefficients, centred$" \
    "$T/def.sum" || fail "summary of the default model: $(sed -n 2p "$T/def.sum")"

# --- every override, with a report to compare predict against
"$BIN" train "$D" -o "$T/ovr.cnk" "${COMMON[@]}" --top-db 60 --trim-db 0 --lifter 0 --center off --clip-norm cmvn \
    --report "$T/rep" > "$T/ovr.out" 2> "$T/ovr.err"
expect_rc 0 $? "train with overrides"
"$BIN" summary "$T/ovr.cnk" > "$T/ovr.sum" 2>&1
grep -q "^Input: mel, 8000 Hz, .*dB re each clip's peak, floor -60 dB, per-clip cmvn$" "$T/ovr.sum" \
    || fail "summary of the overridden model: $(sed -n 2p "$T/ovr.sum")"
# the changed features were computed, not taken from the default run's cache entries
grep -q "(0 files from the cache)" "$T/ovr.out" || fail "overridden features came from the cache: $(grep time: "$T/ovr.out")"
"$BIN" train "$D" -o "$T/ovr2.cnk" "${COMMON[@]}" --top-db 60 --trim-db 0 --lifter 0 --center off --clip-norm cmvn \
    > "$T/ovr2.out" 2>&1
grep -q "(20 files from the cache)" "$T/ovr2.out" || fail "a repeated run missed the cache: $(grep time: "$T/ovr2.out")"

"$BIN" predict "$T/ovr.cnk" "$D" --format csv > "$T/pred.csv" 2> "$T/pred.err"
expect_rc 0 $? "predict"
"$PY" - "$T/rep/predictions.csv" "$T/pred.csv" <<'PYEOF' || fail "predict differs from training's evaluation"
import csv, sys
rep = {r["path"]: r for r in csv.DictReader(open(sys.argv[1]))}
pred = {r["path"]: r for r in csv.DictReader(open(sys.argv[2]))}
assert len(rep) >= 4, len(rep)
for path, r in rep.items():
    for k in r:
        if k.startswith("p_"):
            assert abs(float(pred[path][k]) - float(r[k])) < 2e-6, (path, k, pred[path][k], r[k])
PYEOF

# --- bad values: usage errors naming the flag
for bad in "--top-db 0" "--top-db 81" "--trim-db -1" "--lifter -2" "--lifter x" "--center maybe" "--clip-norm std"; do
    # shellcheck disable=SC2086
    "$BIN" train "$D" -o "$T/bad.cnk" "${COMMON[@]}" $bad > /dev/null 2> "$T/bad.err"
    expect_rc 2 $? "train $bad"
    grep -q -- "${bad%% *}" "$T/bad.err" || fail "the error for $bad does not name the flag: $(cat "$T/bad.err")"
done
[ -e "$T/bad.cnk" ] && fail "a refused run wrote a model"

# --- non-audio data: a usage error naming the data
printf 'a,b,label\n1,2,x\n2,3,y\n3,1,x\n4,4,y\n5,2,x\n6,3,y\n' > "$T/rows.csv"
"$BIN" train "$T/rows.csv" -o "$T/csv.cnk" "${COMMON[@]}" --lifter 12 > /dev/null 2> "$T/csv.err"
expect_rc 2 $? "--lifter on a CSV file"
grep -q "rows.csv: .*apply to audio clips only" "$T/csv.err" || fail "CSV error: $(cat "$T/csv.err")"

rm -rf "$T"
echo "ok"
