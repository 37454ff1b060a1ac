#!/bin/bash
# `cnnkit report` end to end: files written, metrics.json valid and equal to scikit-learn's on the same
# predictions CSV, several files compared, the text report on stdout; bad inputs exit 3 (usage errors 2)
# with one line naming the file and line, and leave no directory behind.
set -u
BIN=${CNK_BIN:?CNK_BIN must point to the cnnkit binary}
FIX=${CNK_FIXTURES:?CNK_FIXTURES must point to tests/fixtures}/metrics
PY=/usr/bin/python3
WORK=${CNK_BUILD_DIR:-.}/tmp-report-cli-$$
rm -rf "$WORK" && mkdir -p "$WORK"
trap 'rm -rf "$WORK"' EXIT
failures=0
fail() { echo "FAIL: $*" >&2; failures=$((failures + 1)); }

# ---- a good report, compared with scikit-learn ----
out="$WORK/r1"
"$BIN" report "$FIX/random_3.csv" -o "$out" >"$WORK/stdout" 2>"$WORK/stderr"
rc=$?
[ $rc -eq 0 ] || fail "report on random_3.csv exited $rc: $(cat "$WORK/stderr")"
for f in report.txt metrics.json confusion.csv predictions.csv confusion.png f1.png report.html; do
    [ -s "$out/$f" ] || fail "missing or empty $f"
done
[ -s "$WORK/stderr" ] && fail "unexpected stderr output: $(cat "$WORK/stderr")"
$PY -m json.tool "$out/metrics.json" >/dev/null || fail "metrics.json does not parse"
cmp -s "$out/report.txt" "$WORK/stdout" || fail "stdout differs from report.txt"
head -c "$(stat -c %s "$FIX/random_3.report.txt")" "$WORK/stdout" | cmp -s - "$FIX/random_3.report.txt" ||
    fail "stdout does not start with scikit-learn's classification_report"

# The charts draw class names through pango: names in CJK scripts need a font that has them, which `make`
# installs (scripts/install-deps.sh: fonts-wqy-zenhei); without one they come out as boxes.
[ -n "$(fc-list ':charset=732b 72d7 718a' family 2>/dev/null)" ] ||
    fail "no installed font draws CJK class names (fonts-wqy-zenhei missing: run scripts/install-deps.sh build)"

# metrics.json against scikit-learn computed here from the CSVs (quoted and unicode names too).
check_sklearn() { # csv dir [csv dir ...], all in one Python start (scikit-learn takes a while to import)
    $PY - "$@" <<'EOF'
import csv, json, math, sys
from sklearn.metrics import classification_report, confusion_matrix, log_loss
def check(csv_path, json_path):
    rows = list(csv.DictReader(open(csv_path, encoding="utf-8", newline="")))
    y = [r["label"] for r in rows]; p = [r["predicted"] for r in rows]
    m = json.load(open(json_path, encoding="utf-8"))
    classes = sorted(set(y) | set(p))
    assert m["classes"] == classes, (m["classes"], classes)
    rep = classification_report(y, p, output_dict=True, zero_division=0)
    close = lambda a, b: abs(a - b) <= 1e-12
    assert close(m["accuracy"], rep["accuracy"])
    for c in classes:
        for k, j in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert close(m["per_class"][c][k], rep[c][j]), (c, k)
        assert m["per_class"][c]["support"] == rep[c]["support"]
    for k, j in (("macro_avg", "macro avg"), ("weighted_avg", "weighted avg")):
        for a, b in (("precision", "precision"), ("recall", "recall"), ("f1", "f1-score")):
            assert close(m[k][a], rep[j][b]), (k, a)
    assert m["confusion_matrix"] == confusion_matrix(y, p, labels=classes).tolist()
    pcols = [c for c in rows[0] if c.startswith("p_")]
    if len(pcols) >= 2:
        order = sorted(pcols)
        probs = [[float(r[c]) for c in order] for r in rows]
        assert close(m["log_loss"], log_loss(y, probs, labels=[c[2:] for c in order]))
args = sys.argv[1:]
bad = 0
for i in range(0, len(args), 2):
    try:
        check(args[i], args[i + 1] + "/metrics.json")
    except AssertionError as e:
        print("metrics.json differs from scikit-learn for %s: %r" % (args[i], e), file=sys.stderr)
        bad += 1
sys.exit(1 if bad else 0)
EOF
}
pairs=("$FIX/random_3.csv" "$out")
for case in quoted unicode never_predicted only_predicted classes_50 ties; do
    "$BIN" report "$FIX/$case.csv" -o "$WORK/$case" -q 2>"$WORK/stderr" || fail "report on $case.csv failed: $(cat "$WORK/stderr")"
    pairs+=("$FIX/$case.csv" "$WORK/$case")
done
check_sklearn "${pairs[@]}" || fail "metrics.json differs from scikit-learn"
grep -q '"a,b"' "$WORK/quoted/metrics.json" || fail "class name with a comma lost"
grep -q 'say &quot;hi&quot;' "$WORK/quoted/report.html" || fail "class name with quotes not HTML-escaped"

# Class names that are not valid UTF-8 or hold control characters or PLplot's '#': still a clean report,
# valid JSON, and nothing printed by PLplot.
printf 'label,predicted\n"a\001b#c",x\340\200\257y\nx\340\200\257y,"a\001b#c"\ncat\377,cat\377\n' >"$WORK/odd.csv"
"$BIN" report "$WORK/odd.csv" -o "$WORK/odd" -q 2>"$WORK/stderr" || fail "odd class names: report failed: $(cat "$WORK/stderr")"
[ -s "$WORK/stderr" ] && fail "odd class names: stderr output: $(cat "$WORK/stderr")"
$PY -m json.tool "$WORK/odd/metrics.json" >/dev/null || fail "odd class names: metrics.json is not valid JSON"

# ---- several models side by side ----
cmp_out="$WORK/compare"
"$BIN" report "$FIX/unicode.csv" "$FIX/random_3.csv" "$FIX/quoted.csv" --names 'fusion,audio,image' -o "$cmp_out" -q \
    2>"$WORK/stderr" || fail "comparison report failed: $(cat "$WORK/stderr")"
[ -s "$cmp_out/comparison.csv" ] || fail "comparison.csv missing"
$PY -c '
import json, sys
m = json.load(open(sys.argv[1]))
assert [x["name"] for x in m["models"]] == ["fusion", "audio", "image"], m["models"]
assert abs(m["models"][1]["accuracy"] - 0.82) < 1e-12
' "$cmp_out/metrics.json" || fail "metrics.json models list wrong"
grep -q "^model comparison" "$cmp_out/report.txt" || fail "report.txt has no comparison table"

# ---- rerun over an existing report replaces it ----
"$BIN" report "$FIX/binary.csv" -o "$out" -q 2>"$WORK/stderr" || fail "rewriting an existing report failed: $(cat "$WORK/stderr")"
grep -q '"classes": \["no", "yes"\]' "$out/metrics.json" || fail "old report not replaced"

# ---- bad inputs: exit 3, one line naming the file (and line), nothing left behind ----
bad() { # name expected_code stderr_pattern csv_text
    local name=$1 code=$2 pattern=$3
    printf '%b' "$4" >"$WORK/$name.csv"
    "$BIN" report "$WORK/$name.csv" -o "$WORK/out-$name" >/dev/null 2>"$WORK/err-$name"
    local rc=$?
    [ $rc -eq "$code" ] || fail "$name: exit $rc, expected $code ($(cat "$WORK/err-$name"))"
    grep -q -- "$pattern" "$WORK/err-$name" || fail "$name: stderr '$(cat "$WORK/err-$name")' lacks '$pattern'"
    [ "$(wc -l <"$WORK/err-$name")" -eq 1 ] || fail "$name: stderr is not one line: $(cat "$WORK/err-$name")"
    [ -e "$WORK/out-$name" ] && fail "$name: left a report directory behind"
    ls "$WORK" | grep -q "out-$name.tmp" && fail "$name: left a temporary directory behind"
}
bad missing_column 3 "$WORK/missing_column.csv:1: no column 'predicted'" 'label,guess\ncat,dog\n'
bad empty 3 "empty.csv: empty file" ''
bad header_only 3 "header_only.csv:1: no predictions" 'label,predicted\n'
bad ragged 3 "ragged.csv:3: 3 fields, but the header has 2" 'label,predicted\ncat,dog\ncat,dog,extra\n'
bad unquoted_comma 3 "unquoted_comma.csv:3: 4 fields, but the header has 2" 'label,predicted\n"a,b","a,b"\na,b,a,b\n'
bad open_quote 3 "open_quote.csv:3: quoted field never closed" 'label,predicted\ncat,dog\n"cat,dog\n'
bad stray_quote 3 "stray_quote.csv:2:" 'label,predicted\nca"t,dog\n'
bad unknown_class 3 "unknown_class.csv:3: predicted 'cow' has no 'p_cow' column" \
    'label,predicted,p_cat,p_dog\ncat,dog,0.4,0.6\ncat,cow,0.5,0.5\n'
bad quoted_unknown 3 "quoted_unknown.csv:2: label 'a,b' has no 'p_a,b' column" \
    'label,predicted,p_a,p_b\n"a,b",a,0.5,0.5\n'
bad bad_number 3 "bad_number.csv:2: column 'p_dog': 'lots' is not a number" \
    'label,predicted,p_cat,p_dog\ncat,dog,0.4,lots\n'
bad negative 3 "negative.csv:2: column 'p_dog': probability -0.1 is negative" \
    'label,predicted,p_cat,p_dog\ncat,dog,1.1,-0.1\n'
bad empty_label 3 "empty_label.csv:3: empty label" 'label,predicted\ncat,cat\n,cat\n'
"$BIN" report "$WORK/does-not-exist.csv" -o "$WORK/out-nofile" 2>"$WORK/err" >/dev/null
[ $? -eq 3 ] || fail "missing input file: expected exit 3"
[ -e "$WORK/out-nofile" ] && fail "missing input file left a directory"

# a folder with other content is refused and left alone
mkdir -p "$WORK/precious" && echo keep >"$WORK/precious/notes.txt"
"$BIN" report "$FIX/binary.csv" -o "$WORK/precious" >/dev/null 2>"$WORK/err"
[ $? -eq 3 ] || fail "non-report folder: expected exit 3"
[ "$(ls "$WORK/precious")" = "notes.txt" ] || fail "non-report folder was modified"

# ---- usage errors: exit 2 ----
usage() { # expected-pattern args...
    local pattern=$1
    shift
    "$BIN" report "$@" >/dev/null 2>"$WORK/err"
    local rc=$?
    [ $rc -eq 2 ] || fail "usage '$*': exit $rc, expected 2"
    grep -q -- "$pattern" "$WORK/err" || fail "usage '$*': stderr lacks '$pattern': $(cat "$WORK/err")"
}
usage "no output directory" "$FIX/binary.csv"
usage "no PREDICTIONS.csv" -o "$WORK/x"
usage "unknown option" "$FIX/binary.csv" -o "$WORK/x" --frobnicate
usage "gives 1 name for 2 files" "$FIX/binary.csv" "$FIX/ties.csv" -o "$WORK/x" --names one
[ -e "$WORK/x" ] && fail "usage error left a directory"
"$BIN" report --help | grep -q "Usage: cnnkit report" || fail "--help"

if [ $failures -ne 0 ]; then
    echo "$failures check(s) failed" >&2
    exit 1
fi
echo "test_report_cli: all checks passed"
