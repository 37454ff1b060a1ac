#!/usr/bin/python3
"""gen_parity.py: PyTorch reference fixtures for tests/test_parity.c. For a small CNN (conv, BN, pooling,
dense) and a MobileNetV2 inverted-residual block (expand 1x1, depthwise 3x3, project, residual add), built by
bench/cnk_torch.py from the same .cfg text cnnkit parses, it writes the initial weights, a batch, the logits,
the loss, every parameter gradient (cnnkit's flat order), the BN running statistics after that train-mode
forward, and the losses of 10 Adam steps. Run: /usr/bin/python3 tests/ref/gen_parity.py"""

import os
import sys

import numpy as np
import torch
import torch.nn.functional as F

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, os.path.join(HERE, "..", "..", "bench"))
from cnk_torch import (buffer_tensors, build_torch_model, get_flat_buffers, get_flat_grads,  # noqa: E402
                       get_flat_params, set_flat_buffers)

OUT = os.path.join(HERE, "..", "fixtures", "nn")

NETS = {
    "small_cnn": """# conv, BN, pooling, dense
[input]
name = x
shape = 3x12x12
[conv2d]
name = conv1
filters = 8
size = 3
padding = same
bias = 0
[batchnorm]
name = conv1_bn
activation = relu
[maxpool]
name = pool1
size = 2
stride = 2
[conv2d]
name = conv2
filters = 12
size = 3
stride = 2
padding = same
activation = relu
[avgpool]
name = pool2
size = 2
stride = 1
[global_avgpool]
name = gap
[dense]
name = logits
units = 5
""",
    "mbv2_block": """# MobileNetV2 inverted residual: expand 1x1 + BN + relu6, depthwise 3x3 + BN + relu6, project 1x1 + BN, add
[input]
name = x
shape = 8x10x10
[conv2d]
name = block_expand
filters = 48
size = 1
bias = 0
[batchnorm]
name = block_expand_bn
activation = relu6
[depthwise_conv2d]
name = block_dw
size = 3
padding = same
bias = 0
[batchnorm]
name = block_dw_bn
activation = relu6
[conv2d]
name = block_project
filters = 8
size = 1
bias = 0
[batchnorm]
name = block_project_bn
[add]
name = block_add
from = x, block_project_bn
[global_avgpool]
name = gap
[dense]
name = logits
units = 4
""",
    "winograd_cnn": """# 3x3 stride-1 convs with >= 8 channels (cnnkit's Winograd path): odd sizes, same and valid padding
[input]
name = x
shape = 3x13x13
[conv2d]
name = conv1
filters = 8
size = 3
padding = same
bias = 0
[batchnorm]
name = conv1_bn
activation = relu
[conv2d]
name = conv2
filters = 16
size = 3
padding = same
bias = 0
[batchnorm]
name = conv2_bn
activation = relu
[maxpool]
name = pool2
size = 2
stride = 2
[conv2d]
name = conv3
filters = 12
size = 3
padding = valid
activation = relu
[global_avgpool]
name = gap
[dense]
name = logits
units = 5
""",
}

BATCH = 4
ADAM_STEPS = 10
LR = 1e-2


def save(name, array):
    np.save(os.path.join(OUT, name + ".npy"), np.ascontiguousarray(np.asarray(array, dtype=np.float32)))


def generate(tag, cfg):
    torch.manual_seed(1234)
    model = build_torch_model(cfg)
    # non-trivial BN affine parameters and running statistics so every term is exercised
    rng = np.random.default_rng(7)
    means = [t.numel() for _, suffix, t in buffer_tensors(model) if suffix == "running_mean"]
    buffers = np.concatenate([np.concatenate([rng.normal(0, 0.1, n), rng.uniform(0.5, 1.5, n)]) for n in means])
    set_flat_buffers(model, buffers.astype(np.float32))
    with open(os.path.join(OUT, tag + ".cfg"), "w") as f:
        f.write(cfg)
    shape = model.shapes[0]
    x = torch.randn(BATCH, *shape)
    classes = model.shapes[-1][0]
    labels = torch.arange(BATCH) % classes
    save(tag + "_params", get_flat_params(model))
    save(tag + "_buffers", get_flat_buffers(model))
    save(tag + "_x", x.numpy())
    save(tag + "_labels", labels.numpy())

    model.train()
    logits = model(x)
    loss = F.cross_entropy(logits, labels)
    loss.backward()
    save(tag + "_logits", logits.detach().numpy())
    save(tag + "_loss", [loss.item()])
    save(tag + "_grads", get_flat_grads(model))
    save(tag + "_buffers_after", get_flat_buffers(model))
    # infer-mode logits with the updated running statistics
    model.eval()
    with torch.no_grad():
        save(tag + "_logits_infer", model(x).numpy())

    # 10 Adam steps on the same batch, from the same initial state
    torch.manual_seed(1234)
    model = build_torch_model(cfg)
    set_flat_buffers(model, buffers.astype(np.float32))
    model.train()
    opt = torch.optim.Adam(model.parameters(), lr=LR)
    losses = []
    for _ in range(ADAM_STEPS):
        opt.zero_grad()
        loss = F.cross_entropy(model(x), labels)
        loss.backward()
        opt.step()
        losses.append(loss.item())
    save(tag + "_adam_losses", losses)
    save(tag + "_adam_params", get_flat_params(model))


def main():
    os.makedirs(OUT, exist_ok=True)
    torch.set_num_threads(1)
    for tag, cfg in NETS.items():
        generate(tag, cfg)
    print("wrote", OUT)


if __name__ == "__main__":
    main()
