#!/usr/bin/env python3
"""Validation folds for comparing photo recipes without touching the test split.

Reads the split a default run wrote (MODEL.cnk.split.csv: path,split) and writes, for K = 1..N, a folder
OUT/foldK/{train,val,test}/<class>/ of symbolic links for `cnnkit train --train .. --val .. --test ..`:
the test split is the run's own (never used to choose), and each fold's validation set is 1/6 of the run's
training photos per class (as many as its own validation split), disjoint from the run's validation split and
from the other folds'; the rest of the non-test photos are the fold's training set. With the run's own split
as fold 0 the validation sets of the folds are disjoint, so N + 1 folds compare recipes on (N + 1) times as
many validation photos as one run has.

    animals3_folds.py SPLIT_CSV OUT [--folds 2] [--seed 2026]
"""
import argparse
import collections
import os
import sys

import numpy as np


def read_split(path):
    rows = collections.defaultdict(lambda: collections.defaultdict(list))
    with open(path) as f:
        header = f.readline().strip()
        if header != "path,split":
            sys.exit(f"{path}: expected the header 'path,split', got '{header}'")
        for line in f:
            file, split = line.rstrip("\n").rsplit(",", 1)
            rows[os.path.basename(os.path.dirname(file))][split].append(file)
    return rows


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("split_csv")
    ap.add_argument("out")
    ap.add_argument("--folds", type=int, default=2)
    ap.add_argument("--seed", type=int, default=2026)
    a = ap.parse_args()
    rows = read_split(a.split_csv)
    rng = np.random.RandomState(a.seed)
    for k in range(1, a.folds + 1):
        if os.path.exists(os.path.join(a.out, f"fold{k}")):
            sys.exit(f"{a.out}/fold{k} exists: remove it first")
    picks = {}
    for cls in sorted(rows):
        train = sorted(rows[cls]["train"])
        n_val = len(rows[cls]["val"])
        if n_val * a.folds > len(train):
            sys.exit(f"class {cls}: {len(train)} training photos cannot give {a.folds} folds of {n_val}")
        picks[cls] = [train[i] for i in rng.permutation(len(train))]
    for k in range(1, a.folds + 1):
        base = os.path.join(a.out, f"fold{k}")
        for cls in sorted(rows):
            n_val = len(rows[cls]["val"])
            val = set(picks[cls][(k - 1) * n_val:k * n_val])
            pool = sorted(rows[cls]["train"] + rows[cls]["val"])
            parts = {"val": sorted(val), "train": [p for p in pool if p not in val], "test": sorted(rows[cls]["test"])}
            for split, files in parts.items():
                d = os.path.join(base, split, cls)
                os.makedirs(d)
                for file in files:
                    os.symlink(os.path.abspath(file), os.path.join(d, os.path.basename(file)))
            print(f"fold{k} {cls}: train {len(parts['train'])} val {len(parts['val'])} test {len(parts['test'])}")


if __name__ == "__main__":
    main()
