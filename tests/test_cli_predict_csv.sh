#!/bin/bash
# cnnkit predict with a model trained on a CSV table: rows of CSV files are classified (with or without the
# label column, in any row order), named FILE:ROW by their identifier column, with exactly the probabilities
# the training run's test evaluation gave; files that are not usable CSVs are reported and skipped (exit 1).
set -u
BIN=${CNK_BIN:-cnnkit}
PY=/usr/bin/python3
T="${CNK_BUILD_DIR:-.}/tmp-cli-predict-csv-$$"
rm -rf "$T" && mkdir -p "$T"
fail() { echo "FAIL: $*"; exit 1; }
expect_rc() { [ "$1" = "$2" ] || fail "$3: exit code $2, expected $1"; }

# Three Gaussian classes in 4 features, an identifier column first and the label column in the middle.
"$PY" - "$T" <<'PYEOF'
import csv, sys
import numpy as np
rng = np.random.default_rng(7)
rows = []
for k, name in enumerate(["ant", "bee", "cow"]):
    for i in range(40):
        x = rng.normal(loc=3.0 * k, scale=1.0, size=4)
        rows.append([f"{name}{i:02d}.dat", *(f"{v:.5f}" for v in x[:2]), name, *(f"{v:.5f}" for v in x[2:])])
header = ["filename", "f1", "f2", "label", "f3", "f4"]
with open(f"{sys.argv[1]}/train.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow(header)
    w.writerows(rows)
# the same rows without labels, in reverse order
with open(f"{sys.argv[1]}/unlabelled.csv", "w", newline="") as f:
    w = csv.writer(f)
    w.writerow([h for h in header if h != "label"])
    w.writerows([r[:3] + r[4:] for r in reversed(rows)])
PYEOF

"$BIN" train "$T/train.csv" -o "$T/m.cnk" --epochs 20 --seed 3 --threads 1 --no-cache --report "$T/rep" \
    > "$T/train.out" 2> "$T/train.err"
expect_rc 0 $? "train on the CSV"

"$BIN" predict "$T/m.cnk" "$T/unlabelled.csv" --format csv > "$T/pred.csv" 2> "$T/pred.err"
expect_rc 0 $? "predict on the unlabelled CSV"
[ "$(tail -n +2 "$T/pred.csv" | wc -l)" = 120 ] || fail "predict should give 120 rows"
"$PY" - "$T/rep/predictions.csv" "$T/pred.csv" "$T/unlabelled.csv" <<'PYEOF' || fail "CSV predictions differ from training's evaluation"
import csv, sys
rep = list(csv.DictReader(open(sys.argv[1])))
pred = {r["path"]: r for r in csv.DictReader(open(sys.argv[2]))}
src = sys.argv[3]
assert len(rep) >= 30, len(rep)
for r in rep: # every test row of the training run: same class and probabilities, found by FILE:ROW name
    p = pred[f"{src}:{r['path']}"]
    assert p["predicted"] == r["predicted"], (r["path"], p["predicted"], r["predicted"])
    for c in ("ant", "bee", "cow"):
        assert abs(float(p["p_" + c]) - float(r["p_" + c])) < 2e-6, (r["path"], c, p["p_" + c], r["p_" + c])
right = sum(p["predicted"] == name.split(":")[1][:3] for name, p in pred.items())
assert right >= 110, right
PYEOF

# The labelled file predicts the same (its label column is not a feature), text format.
"$BIN" predict "$T/m.cnk" "$T/train.csv" > "$T/pred.txt" 2>&1
expect_rc 0 $? "predict on the labelled CSV"
grep -q "^$T/train.csv:cow07.dat	cow	" "$T/pred.txt" || fail "no row for cow07.dat: $(head -3 "$T/pred.txt")"

# A CSV of the wrong width and a WAV file are reported and skipped; the good file's rows still come out.
printf 'a,b\n1,2\n' > "$T/narrow.csv"
printf 'RIFF' > "$T/x.wav"
"$BIN" predict "$T/m.cnk" "$T/narrow.csv" "$T/x.wav" "$T/unlabelled.csv" > "$T/mixed.txt" 2> "$T/mixed.err"
expect_rc 1 $? "predict with bad files among good"
[ "$(wc -l < "$T/mixed.txt")" = 120 ] || fail "the good file's 120 rows should still be printed"
grep -q "narrow.csv: 2 numeric columns per row, the model expects 4" "$T/mixed.err" || fail "no message for narrow.csv: $(cat "$T/mixed.err")"
grep -q "x.wav: not a .csv file" "$T/mixed.err" || fail "no message for x.wav: $(cat "$T/mixed.err")"
"$BIN" predict "$T/m.cnk" "$T/narrow.csv" > /dev/null 2>&1
expect_rc 3 $? "predict with nothing usable"
rm -rf "$T"
echo "ok"
