#!/usr/bin/python3
"""Writes tests/fixtures/core/*.npy with numpy, so test_core proves cnnkit reads what numpy writes
(and test_core checks numpy's header bytes against what cnnkit writes)."""
import os
import numpy as np

out = os.path.join(os.path.dirname(__file__), "..", "fixtures", "core")
os.makedirs(out, exist_ok=True)
a = (np.arange(12, dtype=np.float32).reshape(3, 4) - 5.5) / 3
np.save(os.path.join(out, "f32_3x4.npy"), a)
np.save(os.path.join(out, "f64_5.npy"), np.linspace(-1, 1, 5))
np.save(os.path.join(out, "f32_2x3x2.npy"), np.arange(12, dtype=np.float32).reshape(2, 3, 2))
with open(os.path.join(out, "f32_3x4.npy"), "rb") as f:
    assert f.read(6) == b"\x93NUMPY"
