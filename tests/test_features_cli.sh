#!/usr/bin/env bash
# `cnnkit features` end to end (../shared/CLI.md): folder mode mirrors gtzan-mini into .npy files of the
# right shape equal to the library's values, PNG output, wavelet shape = mel shape, a folder with corrupt
# files gives exit 1 with each skipped file named, usage errors exit 2, fatal input errors exit 3, and no
# temporary or partial file is ever left behind.
set -u
BIN=${CNK_BIN:?CNK_BIN not set}
SHARED=${CNK_SHARED:?CNK_SHARED not set}
PY=/usr/bin/python3
WORK=${CNK_BUILD_DIR:-.}/tmp-features-cli-$$
rm -rf "$WORK" && mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }
expect_rc() { # expected actual what
  [ "$1" = "$2" ] || fail "$3: exit code $2, expected $1"
}

# 1. Folder mode on gtzan-mini/au: mirrored tree, 10 .npy files of shape (128, 1 + n/512), exit 0.
"$BIN" features --jobs 2 "$SHARED/datasets/gtzan-mini/au" "$WORK/mel" 2> "$WORK/err1"
expect_rc 0 $? "gtzan-mini folder"
n=$(find "$WORK/mel" -name '*.npy' | wc -l)
[ "$n" = 10 ] || fail "expected 10 .npy files, found $n"
[ -f "$WORK/mel/rock/rock.00000.npy" ] || fail "tree not mirrored (no mel/rock/rock.00000.npy)"
$PY - "$WORK/mel" "$SHARED/datasets/gtzan-mini/wav" <<'PYEOF' || fail "mel .npy contents"
import glob, os, sys
import numpy as np, scipy.io.wavfile
out, wavs = sys.argv[1], sys.argv[2]
for path in sorted(glob.glob(os.path.join(out, "*", "*.npy"))):
    a = np.load(path)
    genre = os.path.basename(os.path.dirname(path))
    sr, y = scipy.io.wavfile.read(os.path.join(wavs, genre, os.path.basename(path)[:-4] + ".wav"))
    assert a.dtype == np.float32 and a.ndim == 2, (path, a.dtype, a.shape)
    assert a.shape == (128, 1 + len(y) // 512), (path, a.shape, len(y))
    assert abs(a.max() - a.min() - 80.0) < 1e-3 or a.max() - a.min() < 80.0, path  # top_db = 80
    assert np.isfinite(a).all(), path
print("mel npy ok")
PYEOF

# 2. Same file through --jobs 1 gives byte-identical output (workers are independent).
"$BIN" features --jobs 1 "$SHARED/datasets/gtzan-mini/au/rock/rock.00000.au" "$WORK/rock1.npy"
expect_rc 0 $? "single file"
cmp -s "$WORK/rock1.npy" "$WORK/mel/rock/rock.00000.npy" || fail "single-file and folder outputs differ"

# 3. PNG: grey and viridis, width = frames, height = rows.
"$BIN" features --format png "$SHARED/datasets/fsdd/0/0_george_0.wav" "$WORK/g.png"
expect_rc 0 $? "png grey"
"$BIN" features --colormap viridis --n-mels 64 "$SHARED/datasets/fsdd/0/0_george_0.wav" "$WORK/v.png"
expect_rc 0 $? "png viridis (format from extension)"
$PY - "$WORK" <<'PYEOF' || fail "png contents"
import struct, sys, zlib
def header(path):
    data = open(path, "rb").read()
    assert data[:8] == b"\x89PNG\r\n\x1a\n", path
    w, h, depth, colour = struct.unpack(">IIBB", data[16:26])
    return w, h, depth, colour
w, h, depth, colour = header(sys.argv[1] + "/g.png")
assert (h, depth, colour) == (128, 8, 0), (w, h, depth, colour)
w2, h2, depth2, colour2 = header(sys.argv[1] + "/v.png")
assert (w2, h2, depth2, colour2) == (w, 64, 8, 2), (w2, h2, depth2, colour2)
print("png ok")
PYEOF

# 4. Wavelet: (64, frames) with the same frames as mel; --power gives non-negative values; stft rows.
clip="$SHARED/datasets/gtzan-mini/wav/jazz/jazz.00000.wav"
"$BIN" features --kind wavelet --sr 8000 --hop 256 --n-fft 1024 "$clip" "$WORK/w.npy"
expect_rc 0 $? "wavelet"
"$BIN" features --kind mel --sr 8000 --hop 256 --n-fft 1024 --n-mels 40 "$clip" "$WORK/m.npy"
expect_rc 0 $? "mel at 8 kHz"
"$BIN" features --kind stft --power --sr 0 --n-fft 512 --hop 128 "$SHARED/datasets/fsdd/1/1_jackson_0.wav" "$WORK/s.npy"
expect_rc 0 $? "stft power"
$PY - "$WORK" <<'PYEOF' || fail "wavelet/stft shapes"
import sys
import numpy as np
d = sys.argv[1]
w, m, s = np.load(d + "/w.npy"), np.load(d + "/m.npy"), np.load(d + "/s.npy")
assert w.shape == (64, m.shape[1]) and m.shape[0] == 40, (w.shape, m.shape)
assert s.shape[0] == 257 and (s >= 0).all(), s.shape
print("wavelet/stft ok")
PYEOF

# 5. A folder with corrupt inputs: good files written, each bad one named on stderr, exit 1.
bad="$WORK/bad_in"
mkdir -p "$bad/a" "$bad/b/folder.wav"
cp "$SHARED/datasets/fsdd/2/2_jackson_0.wav" "$bad/a/good.wav"
echo "not audio at all" > "$bad/a/text.wav"
head -c 30000 "$SHARED/datasets/gtzan-mini/wav/pop/pop.00000.wav" > "$bad/b/truncated.wav"
: > "$bad/b/empty.au"
echo "ignored" > "$bad/notes.txt"
"$BIN" features "$bad" "$WORK/bad_out" 2> "$WORK/err5"
expect_rc 1 $? "folder with corrupt files"
for name in text.wav truncated.wav empty.au; do
  grep -q "skipped: .*$name" "$WORK/err5" || fail "stderr does not name $name: $(cat "$WORK/err5")"
done
[ -f "$WORK/bad_out/a/good.npy" ] || fail "good file not written next to bad ones"
n=$(find "$WORK/bad_out" -type f | wc -l)
[ "$n" = 1 ] || fail "expected exactly 1 output file, found $n: $(find "$WORK/bad_out" -type f)"

# 6. Usage errors: exit 2.
"$BIN" features 2> /dev/null; expect_rc 2 $? "no arguments"
"$BIN" features --kind cqt "$clip" "$WORK/x.npy" 2> /dev/null; expect_rc 2 $? "bad --kind"
"$BIN" features --hop 0 "$clip" "$WORK/x.npy" 2> /dev/null; expect_rc 2 $? "hop 0"
"$BIN" features --fmax 20000 "$clip" "$WORK/x.npy" 2> /dev/null; expect_rc 2 $? "fmax above Nyquist"
"$BIN" features --frobnicate "$clip" "$WORK/x.npy" 2> /dev/null; expect_rc 2 $? "unknown option"
"$BIN" features --help > "$WORK/help"; expect_rc 0 $? "--help"
grep -q -- "--kind mel|stft|wavelet" "$WORK/help" || fail "--help does not describe --kind"

# 7. Fatal input errors: exit 3 with one line naming the file, and no output file.
"$BIN" features "$bad/a/text.wav" "$WORK/t.npy" 2> "$WORK/err7"
expect_rc 3 $? "corrupt single file"
[ "$(wc -l < "$WORK/err7")" = 1 ] || fail "fatal error is not one line: $(cat "$WORK/err7")"
grep -q "text.wav" "$WORK/err7" || fail "fatal error does not name the file"
[ ! -e "$WORK/t.npy" ] || fail "output written for a corrupt input"
"$BIN" features "$WORK/does-not-exist.wav" "$WORK/t.npy" 2> /dev/null; expect_rc 3 $? "missing input"
"$BIN" features "$clip" "$WORK/no/such/dir/x.npy" 2> /dev/null; expect_rc 3 $? "unwritable output"
mkdir -p "$WORK/empty_dir"
"$BIN" features "$WORK/empty_dir" "$WORK/e_out" 2> /dev/null; expect_rc 3 $? "folder without audio"

# 7b. x.wav and x.au in one folder mirror onto the same x.npy: the second is skipped (exit 1), never
# overwriting the first's output.
mkdir -p "$WORK/clash/a"
cp "$clip" "$WORK/clash/a/x.wav"
cp "$clip" "$WORK/clash/a/x.au"
"$BIN" features --jobs 2 "$WORK/clash" "$WORK/clash_out" 2> "$WORK/err7b"
expect_rc 1 $? "two inputs with one output name"
grep -q "x.wav: its output would overwrite the one of .*x.au" "$WORK/err7b" \
  || fail "output clash not reported: $(cat "$WORK/err7b")"
[ -f "$WORK/clash_out/a/x.npy" ] || fail "the first of two clashing inputs was not written"

# 8. Nothing temporary left anywhere.
left=$(find "$WORK" -name '*.tmp.*' | wc -l)
[ "$left" = 0 ] || fail "temporary files left behind: $(find "$WORK" -name '*.tmp.*')"

if [ "$failures" != 0 ]; then
  echo "test_features_cli: $failures failure(s)" >&2
  exit 1
fi
echo "test_features_cli: all checks passed"
