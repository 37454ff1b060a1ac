#!/usr/bin/python3
"""mpi_tool.py: helpers of tests/test_mpi.sh (run with Debian's /usr/bin/python3).

    mpi_tool.py make-idx DIR [N_TRAIN] [N_TEST]   a small IDX set (16x16 images, 4 classes, gzip) in DIR:
        class c has a bright bar at rows 3c..3c+2 plus seeded noise; the standard MNIST file names.
    mpi_tool.py compare A.cnk B.cnk [RTOL]       exit 0 if the weights (params and buffers) agree within
        RTOL relative to each array's largest magnitude; prints the worst relative difference.
"""
import gzip
import os
import struct
import sys

import numpy as np

sys.path.insert(0, os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "..", "bench"))


def write_idx(path, array):
    header = struct.pack(">BBBB", 0, 0, 0x08, array.ndim) + b"".join(struct.pack(">I", d) for d in array.shape)
    with gzip.open(path, "wb") as f:
        f.write(header + array.astype(np.uint8).tobytes())


def make_idx(directory, n_train=480, n_test=120):
    os.makedirs(directory, exist_ok=True)
    rng = np.random.default_rng(8)
    for part, n in (("train", n_train), ("t10k", n_test)):
        labels = np.arange(n) % 4
        rng.shuffle(labels)
        images = rng.integers(0, 90, size=(n, 16, 16))
        for i, c in enumerate(labels):
            images[i, 3 * c + 1:3 * c + 4, 2:14] += 150
        write_idx(os.path.join(directory, f"{part}-images-idx3-ubyte.gz"), np.clip(images, 0, 255))
        write_idx(os.path.join(directory, f"{part}-labels-idx1-ubyte.gz"), labels)


def compare(a_path, b_path, rtol=1e-5):
    from cnk_torch import read_cnk
    a, b = read_cnk(a_path), read_cnk(b_path)
    worst = 0.0
    for key in ("params", "buffers"):
        x, y = a[key].astype(np.float64), b[key].astype(np.float64)
        if x.shape != y.shape:
            print(f"{key}: {x.shape} vs {y.shape}")
            return 1
        if x.size:
            scale = max(np.abs(x).max(), 1e-30)
            worst = max(worst, float(np.abs(x - y).max() / scale))
    print(f"worst relative difference {worst:.3g} (limit {rtol:g})")
    return 0 if worst <= rtol else 1


if __name__ == "__main__":
    if len(sys.argv) >= 3 and sys.argv[1] == "make-idx":
        make_idx(sys.argv[2], *(int(v) for v in sys.argv[3:5]))
    elif len(sys.argv) >= 4 and sys.argv[1] == "compare":
        sys.exit(compare(sys.argv[2], sys.argv[3], *(float(v) for v in sys.argv[4:5])))
    else:
        sys.exit(__doc__)
