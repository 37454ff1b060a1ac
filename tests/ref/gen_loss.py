#!/usr/bin/env python3
"""Reference for nn/loss.c's label-smoothed softmax cross-entropy: PyTorch's
CrossEntropyLoss(label_smoothing=s, ignore_index=-1) on seeded logits (loss and gradient w.r.t. the logits).
Run with Debian's python: /usr/bin/python3 tests/ref/gen_loss.py  ->  tests/fixtures/loss/*.npy"""
import os

import numpy as np
import torch

OUT = os.path.join(os.path.dirname(os.path.abspath(__file__)), "..", "fixtures", "loss")
os.makedirs(OUT, exist_ok=True)

rng = np.random.default_rng(7)
BATCH, CLASSES = 9, 5
logits = (rng.standard_normal((BATCH, CLASSES)) * 3).astype(np.float32)
logits[2] += np.array([40, 0, 0, 0, 0], dtype=np.float32)  # a confident sample: the log-sum-exp must not overflow
labels = rng.integers(0, CLASSES, BATCH).astype(np.int32)
labels[4] = -1  # ignored: no loss, no gradient, not counted in the mean
np.save(os.path.join(OUT, "logits.npy"), logits)
np.save(os.path.join(OUT, "labels.npy"), labels.astype(np.float32))
for name, s in (("0", 0.0), ("01", 0.1), ("03", 0.3)):
    z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
    loss = torch.nn.CrossEntropyLoss(label_smoothing=s, ignore_index=-1)(z, torch.tensor(labels, dtype=torch.long))
    loss.backward()
    np.save(os.path.join(OUT, f"loss_{name}.npy"), np.array([loss.item()], dtype=np.float32))
    np.save(os.path.join(OUT, f"grad_{name}.npy"), z.grad.numpy().astype(np.float32))
    print(f"smoothing {s}: loss {loss.item():.6f}")

# Probability targets (mixup's blended labels): two classes mixed 0.7 / 0.3 per row, smoothing 0.1.
second = (labels + 1 + rng.integers(0, CLASSES - 1, BATCH)) % CLASSES
soft = np.zeros((BATCH, CLASSES), dtype=np.float32)
rows = np.arange(BATCH)
soft[rows, np.maximum(labels, 0)] += 0.7
soft[rows, second] += 0.3
np.save(os.path.join(OUT, "soft_targets.npy"), soft)
z = torch.tensor(logits, dtype=torch.float64, requires_grad=True)
loss = torch.nn.CrossEntropyLoss(label_smoothing=0.1)(z, torch.tensor(soft, dtype=torch.float64))
loss.backward()
np.save(os.path.join(OUT, "loss_soft.npy"), np.array([loss.item()], dtype=np.float32))
np.save(os.path.join(OUT, "grad_soft.npy"), z.grad.numpy().astype(np.float32))
print(f"soft targets, smoothing 0.1: loss {loss.item():.6f}")
