#!/bin/sh
# Writes tests/fixtures/train_source/before.txt: FNV-1a (64-bit) hashes of the model, checkpoint and optimiser
# files of a small photo run made by a cnnkit built BEFORE the training source size (--train-size) existed
# (commit a5db288), so tests/test_train_source.c can check that a run at the input size is still that run.
# Usage: tests/ref/gen_train_source.sh /path/to/cnnkit-built-at-a5db288 [SHARED]
# The run: the first 4 cats and 4 dogs of animals3 (by name, as tests/tu_sets.h's tu_link_photos), 32 x 32,
# validation fraction 0.25, 2 epochs, seed 42, one thread, no cache.
set -eu
BIN=$1
SHARED=${2:-$(cd "$(dirname "$0")/../../.." && pwd)/shared}
OUT=$(cd "$(dirname "$0")/.." && pwd)/fixtures/train_source/before.txt
TMP=$(mktemp -d)
trap 'rm -rf "$TMP"' EXIT
for c in cats dogs; do
    mkdir -p "$TMP/photos/$c"
    ls "$SHARED/datasets/animals3/$c" | sort | head -4 | while read -r f; do
        ln -s "$SHARED/datasets/animals3/$c/$f" "$TMP/photos/$c/$f"
    done
done
"$BIN" train "$TMP/photos" --image-size 32x32 --val-fraction 0.25 --epochs 2 --threads 1 --seed 42 --no-cache -o "$TMP/m.cnk" >/dev/null
/usr/bin/python3 - "$TMP/m.cnk" "$OUT" <<'PY'
import re, sys
def fnv(path):
    h = 14695981039346656037
    for b in open(path, 'rb').read():
        h = ((h ^ b) * 1099511628211) & 0xFFFFFFFFFFFFFFFF
    return h
m, out = sys.argv[1], sys.argv[2]
with open(out, 'w') as f:
    f.write('# FNV-1a 64 of the files of the run before --train-size (tests/ref/gen_train_source.sh, cnnkit at a5db288)\n')
    for key, path in (('model', m), ('ckpt', m + '.ckpt'), ('optim', m + '.ckpt.optim-2.npy')):
        f.write('%s %016x\n' % (key, fnv(path)))
    # the history (train loss, train accuracy, val loss, val accuracy per epoch) as the checkpoint spells it
    text = open(m + '.ckpt', 'rb').read()
    for s in range(4):
        value = re.search(rb'\nckpt_h%d=([^\n]*)\n' % s, text).group(1).decode()
        f.write('ckpt_h%d %s\n' % (s, value))
PY
cat "$OUT"
