#!/usr/bin/python3
"""bench_fashion_torch.py: the PyTorch side of bench/bench_fashion.sh: the model identical to cnnkit's (built by
cnk_torch.py from the cfg `cnnkit summary cnn --input 1x28x28 --classes 10 --write-cfg` writes) trained on
Fashion-MNIST the way `cnnkit train DIR --input idx --val-fraction 0` does: pixels standardised with the
training set's mean and std, shuffled mini-batches, Adam with L2 weight decay, cosine learning rate per epoch
down to 2% of the base rate, no augmentation; then the accuracy on the 10,000 test images.
Prints one line per epoch and, last, `seconds_per_epoch=<mean> test_accuracy=<a>`. Run with /usr/bin/python3.

    bench_fashion_torch.py CFG DIR [--epochs 1] [--batch 32] [--threads 1] [--lr 1e-3] [--wd 1e-4] [--seed 42]
"""

import argparse
import gzip
import math
import os
import sys
import time

import numpy as np

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import torch  # noqa: E402
import torch.nn.functional as F  # noqa: E402

from cnk_torch import build_torch_model  # noqa: E402


def read_idx(path):
    opener = gzip.open if path.endswith(".gz") else open
    with opener(path, "rb") as f:
        data = f.read()
    ndim = data[3]
    dims = [int.from_bytes(data[4 + 4 * i:8 + 4 * i], "big") for i in range(ndim)]
    return np.frombuffer(data, dtype=np.uint8, offset=4 + 4 * ndim).reshape(dims)


def find(directory, stem):
    for name in (stem + ".gz", stem):
        path = os.path.join(directory, name)
        if os.path.exists(path):
            return path
    raise SystemExit(f"bench_fashion_torch.py: {directory}: no {stem}[.gz]")


def load(directory, part):
    images = read_idx(find(directory, f"{part}-images-idx3-ubyte"))
    labels = read_idx(find(directory, f"{part}-labels-idx1-ubyte"))
    return images, labels.astype(np.int64)


def main():
    ap = argparse.ArgumentParser(description=__doc__.split("\n")[0])
    ap.add_argument("cfg")
    ap.add_argument("data")
    ap.add_argument("--epochs", type=int, default=1)
    ap.add_argument("--batch", type=int, default=32)
    ap.add_argument("--threads", type=int, default=1)
    ap.add_argument("--lr", type=float, default=1e-3)
    ap.add_argument("--wd", type=float, default=1e-4)
    ap.add_argument("--seed", type=int, default=42)
    args = ap.parse_args()

    torch.set_num_threads(args.threads)
    torch.manual_seed(args.seed)
    train_x, train_y = load(args.data, "train")
    test_x, test_y = load(args.data, "t10k")
    # One scalar mean/std over every training pixel, as cnnkit's preprocessing of in-memory images.
    pixels = train_x.astype(np.float64)
    mean, std = pixels.mean(), pixels.std()
    del pixels

    def as_input(x):
        return torch.from_numpy(((x.astype(np.float32) - mean) / std)[:, None, :, :].astype(np.float32))

    xs, ys = as_input(train_x), torch.from_numpy(train_y)
    xt, yt = as_input(test_x), torch.from_numpy(test_y)
    with open(args.cfg) as f:
        model = build_torch_model(f.read())
    opt = torch.optim.Adam(model.parameters(), lr=args.lr, weight_decay=args.wd)
    min_lr = args.lr * 0.02
    gen = torch.Generator().manual_seed(args.seed)
    n = xs.shape[0]
    n_batches = (n + args.batch - 1) // args.batch
    if n_batches > 1 and n % args.batch == 1:  # as cnnkit: no batch of one sample for batch norm
        n_batches -= 1
    times = []
    for epoch in range(args.epochs):
        lr = min_lr + (args.lr - min_lr) * (1 + math.cos(math.pi * epoch / args.epochs)) / 2
        for group in opt.param_groups:
            group["lr"] = lr
        model.train()
        order = torch.randperm(n, generator=gen)
        start = time.perf_counter()
        loss_sum, correct = 0.0, 0
        for b in range(n_batches):
            idx = order[b * args.batch:(b + 1) * args.batch]
            x, y = xs[idx], ys[idx]
            logits = model(x)
            loss = F.cross_entropy(logits, y)
            opt.zero_grad(set_to_none=True)
            loss.backward()
            opt.step()
            loss_sum += loss.item() * len(idx)
            correct += (logits.argmax(1) == y).sum().item()
        seconds = time.perf_counter() - start
        times.append(seconds)
        seen = min(n, n_batches * args.batch)
        print(f"epoch {epoch + 1}/{args.epochs} train loss {loss_sum / seen:.4f} acc {correct / seen:.4f} "
              f"lr {lr:.2e} {seconds:.1f}s", flush=True)
    model.eval()
    correct = 0
    with torch.no_grad():
        for b in range(0, xt.shape[0], 256):
            correct += (model(xt[b:b + 256]).argmax(1) == yt[b:b + 256]).sum().item()
    print(f"seconds_per_epoch={sum(times) / len(times):.2f} test_accuracy={correct / xt.shape[0]:.4f}")


if __name__ == "__main__":
    main()
