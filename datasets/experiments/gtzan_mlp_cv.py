#!/usr/bin/python3
"""GTZAN features CSV: 10-fold cross-validated accuracy of cnnkit's `mlp` against scikit-learn's MLPClassifier
on the same stratified folds, both standardised on each training fold only.

    /usr/bin/python3 datasets/experiments/gtzan_mlp_cv.py --cnnkit build/cnnkit \
        --csv ../shared/datasets/gtzan-mini/features_30_sec.csv [--folds 10] [--seed 0] [--out DIR]

For every fold the training rows go to train_K.csv and the held-out rows to test_K.csv; cnnkit trains with
its defaults (`cnnkit train train_K.csv --test-fraction 0 -o model_K.cnk`: 10% of the training rows become its
validation split for early stopping, and it fits the standardisation on the rest) and is scored with
`cnnkit eval model_K.cnk test_K.csv`. scikit-learn gets StandardScaler + MLPClassifier() with default
settings (one hidden layer of 100, adam, max_iter=200; max_iter raised to 1000 so it converges), fitted on
the same training rows. Prints one line per fold and the means; writes results.json in --out.
"""
import argparse
import csv
import json
import os
import re
import subprocess
import sys
import tempfile
import time

import numpy as np
from sklearn.model_selection import StratifiedKFold
from sklearn.neural_network import MLPClassifier
from sklearn.pipeline import make_pipeline
from sklearn.preprocessing import StandardScaler


def read_table(path):
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    return rows[0], rows[1:]


def write_rows(path, header, rows):
    with open(path, "w", newline="") as f:
        w = csv.writer(f)
        w.writerow(header)
        w.writerows(rows)


def cnnkit_accuracy(binary, train_csv, test_csv, model, threads, seed):
    t0 = time.time()
    subprocess.run([binary, "train", train_csv, "--test-fraction", "0", "-o", model, "--no-cache",
                    "--threads", str(threads), "--seed", str(seed)],
                   check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    seconds = time.time() - t0
    out = subprocess.run([binary, "eval", model, test_csv, "--no-cache"], check=True,
                         capture_output=True, text=True).stdout
    m = re.search(r"^\s*accuracy\s+([0-9.]+)\s+(\d+)\s*$", out, re.M)
    if not m:
        sys.exit("cannot find the accuracy in cnnkit eval's output:\n" + out)
    # the report rounds to 2 digits: recount from the confusion matrix for the exact value
    lines = out.split("confusion matrix", 1)[1].strip().splitlines()[2:]
    cm = np.array([[int(v) for v in line.split()[1:]] for line in lines if line.strip()])
    return np.trace(cm) / cm.sum(), seconds


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--cnnkit", required=True)
    ap.add_argument("--csv", required=True)
    ap.add_argument("--folds", type=int, default=10)
    ap.add_argument("--seed", type=int, default=0)
    ap.add_argument("--threads", type=int, default=2)
    ap.add_argument("--out", default=None)
    args = ap.parse_args()
    header, rows = read_table(args.csv)
    label_col = header.index("label")
    drop = {header.index(c) for c in ("filename", "length", "label") if c in header}
    keep = [i for i in range(len(header)) if i not in drop]
    X = np.array([[float(r[i]) for i in keep] for r in rows])
    y = np.array([r[label_col] for r in rows])
    out = args.out or tempfile.mkdtemp(prefix="gtzan-cv-")
    os.makedirs(out, exist_ok=True)
    folds = StratifiedKFold(n_splits=args.folds, shuffle=True, random_state=args.seed)
    results = []
    for k, (train_idx, test_idx) in enumerate(folds.split(X, y)):
        train_csv, test_csv = os.path.join(out, f"train_{k}.csv"), os.path.join(out, f"test_{k}.csv")
        write_rows(train_csv, header, [rows[i] for i in train_idx])
        write_rows(test_csv, header, [rows[i] for i in test_idx])
        ours, seconds = cnnkit_accuracy(args.cnnkit, train_csv, test_csv, os.path.join(out, f"model_{k}.cnk"),
                                        args.threads, args.seed + k)
        sk = make_pipeline(StandardScaler(), MLPClassifier(max_iter=1000, random_state=args.seed + k))
        sk.fit(X[train_idx], y[train_idx])
        theirs = float((sk.predict(X[test_idx]) == y[test_idx]).mean())
        results.append({"fold": k, "cnnkit": float(ours), "sklearn": theirs, "cnnkit_train_seconds": seconds})
        print(f"fold {k}: cnnkit {ours:.3f} ({seconds:.1f} s)  sklearn {theirs:.3f}", flush=True)
    mean_ours = float(np.mean([r["cnnkit"] for r in results]))
    mean_theirs = float(np.mean([r["sklearn"] for r in results]))
    print(f"mean over {args.folds} folds: cnnkit {mean_ours:.4f}  sklearn MLPClassifier {mean_theirs:.4f}")
    with open(os.path.join(out, "results.json"), "w") as f:
        json.dump({"folds": results, "cnnkit_mean": mean_ours, "sklearn_mean": mean_theirs}, f, indent=1)
    return 0 if mean_ours >= mean_theirs else 1


if __name__ == "__main__":
    sys.exit(main())
