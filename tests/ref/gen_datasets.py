#!/usr/bin/python3
"""Reference values for tests/test_idx.c, test_csv.c and test_dataset.c, computed by numpy / Python's csv
module from the real data (never copied into the repository): Fashion-MNIST from Debian's
dataset-fashion-mnist, the GTZAN feature table from ../shared/datasets.

Run with Debian's python3:  /usr/bin/python3 tests/ref/gen_datasets.py
Writes tests/fixtures/datasets/reference.txt: one `name value` per line.
"""
import csv
import gzip
import os
import sys

import numpy as np

HERE = os.path.dirname(os.path.abspath(__file__))
ROOT = os.path.dirname(os.path.dirname(HERE))
SHARED = os.environ.get("CNK_SHARED", os.path.join(ROOT, "..", "shared"))
FASHION = "/usr/share/datasets/fashion-mnist"
OUT = os.path.join(ROOT, "tests", "fixtures", "datasets", "reference.txt")


def idx(path, header):
    with gzip.open(path) as f:
        return np.frombuffer(f.read()[header:], np.uint8)


def fashion_values():
    values = {}
    for split in ("train", "t10k"):
        images = idx(f"{FASHION}/{split}-images-idx3-ubyte.gz", 16).reshape(-1, 28, 28)
        labels = idx(f"{FASHION}/{split}-labels-idx1-ubyte.gz", 8)
        values[f"fashion_{split}_count"] = len(images)
        values[f"fashion_{split}_first_label"] = int(labels[0])
        values[f"fashion_{split}_second_label"] = int(labels[1])
        values[f"fashion_{split}_last_label"] = int(labels[-1])
        values[f"fashion_{split}_first_sum"] = int(images[0].sum())
        values[f"fashion_{split}_last_sum"] = int(images[-1].sum())
        values[f"fashion_{split}_first_centre"] = int(images[0, 14, 14])
        values[f"fashion_{split}_sum_mod_1000003"] = int(images.astype(np.int64).sum() % 1000003)
        values[f"fashion_{split}_per_class"] = int(np.bincount(labels).min())
    return values


def gtzan_values():
    path = os.path.join(SHARED, "datasets", "gtzan-mini", "features_30_sec.csv")
    with open(path, newline="") as f:
        rows = list(csv.reader(f))
    header, data = rows[0], rows[1:]
    return {
        "gtzan_columns": len(header),
        "gtzan_rows": len(data),
        "gtzan_first_length": data[0][1],
        "gtzan_first_chroma_stft_mean": data[0][2],
        "gtzan_last_chroma_stft_mean": data[-1][2],
        "gtzan_last_feature_name": header[-2],
        "gtzan_classes": len(set(r[-1] for r in data)),
    }


def main():
    values = gtzan_values()
    if os.path.exists(f"{FASHION}/train-images-idx3-ubyte.gz"):
        values.update(fashion_values())
    else:
        sys.stderr.write("dataset-fashion-mnist not installed: Fashion-MNIST values left out\n")
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    with open(OUT, "w") as f:
        for name, value in values.items():
            f.write(f"{name} {value}\n")
    print(f"wrote {OUT}")


if __name__ == "__main__":
    main()
